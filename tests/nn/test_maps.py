"""nn/maps.py beside torch's compiler: a model compiled with torch.compile measures as the plain model does, and
the compiler does not trace the measuring dispatch mode (it recompiled its __torch_dispatch__ at every operation,
with a warning, when the mode asked torch not to keep the compiler out)."""

import warnings

import torch

from invariance_lab.nn.maps import feature_map_bytes


def test_a_compiled_model_measures_as_the_plain_one_without_compiling_the_measurement():
    torch.manual_seed(0)
    chain = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 4, 3, padding=1))
    x = torch.rand(2, 1, 8, 8)
    plain = feature_map_bytes({"mine": chain}, x)
    compiled = torch.compile(chain, backend="eager")  # no code generated: the compiler's tracing alone
    compiled(x)
    from torch._dynamo.utils import counters  # imported by torch.compile above

    frames = dict(counters["frames"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the recompile-limit warning, among others
        assert feature_map_bytes({"mine": compiled}, x) == plain
    assert dict(counters["frames"]) == frames
