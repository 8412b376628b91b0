"""il.measure and il.layer_profile leave the process as they found it: torch's thread count, the TF32 flags,
torch's RNG, and the user's model (each submodule's train/eval mode, every parameter's device)."""

import pytest
import torch
from torch import nn

import invariance_lab as il

SIDE = 8


class Meddler(nn.Module):
    """A model whose forward pass changes process state, as some libraries do: threads, TF32, the RNG."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")
        self.norm = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        torch.set_num_threads(1)
        torch.backends.cuda.matmul.allow_tf32 = not torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = not torch.backends.cudnn.allow_tf32
        torch.rand(3)  # draws from torch's global generator
        return self.fc(self.norm(self.conv(x)).mean(dim=(-2, -1)))


def images(n=6):
    return torch.rand(n, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(1))


def state():
    return (torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.random.get_rng_state())


CALLS = {
    "measure": lambda m, dev: il.measure(m, images(), dx=[-1, 0, 1], mode="circular", device=dev),
    "layer_profile": lambda m, dev: il.layer_profile(m, images(), shifts=[-1, 0, 1], mode="circular", device=dev),
}


@pytest.fixture
def two_threads():
    was = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(was)


@pytest.mark.parametrize("call", list(CALLS))
def test_threads_tf32_and_rng_are_given_back(call, two_threads):
    model = Meddler()
    torch.manual_seed(123)
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = True, False
    threads, matmul, cudnn, rng = state()
    try:
        CALLS[call](model, "cpu")
        now = state()
        assert now[:3] == (threads, matmul, cudnn)
        assert torch.equal(now[3], rng)  # the next random numbers are the ones the caller would have drawn
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@pytest.mark.parametrize("call", list(CALLS))
def test_each_submodules_mode_is_given_back(call):
    m = Meddler().train()
    m.norm.eval()  # a frozen BatchNorm inside a training model: it must stay frozen
    CALLS[call](m, "cpu")
    assert m.training and m.conv.training and m.fc.training and not m.norm.training
    m.eval()
    CALLS[call](m, "cpu")
    assert not any(s.training for s in m.modules())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("call", list(CALLS))
def test_the_models_device_and_tf32_are_given_back_after_a_cuda_measurement(call):
    m = Meddler()
    m.fc.cuda()  # spread over two devices: each parameter goes back to its own
    before = {n: p.device for n, p in [*m.named_parameters(), *m.named_buffers()]}
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = True, True
    try:
        CALLS[call](m, "cuda")  # resolve_device turns TF32 off for the measurement
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == tf32
        assert {n: p.device for n, p in [*m.named_parameters(), *m.named_buffers()]} == before
        m.cpu()
        CALLS[call](m, "cuda")
        assert all(p.device.type == "cpu" for p in [*m.parameters(), *m.buffers()])
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True


def test_reading_options_of_image_files_are_refused_for_a_tensor():
    for kwargs in ({"size": 4}, {"colour": "rgb"}):
        with pytest.raises(il.InvlabError, match="size and colour say how to read a folder of image files"):
            il.measure(Meddler(), images(), dx=[0, 1], mode="circular", **kwargs)
