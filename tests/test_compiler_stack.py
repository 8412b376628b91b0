"""Training (run/train.py with run/optimizer.py's CpuAdam), loading a checkpoint (store/checkpoints.py) and
measuring a model's feature maps (nn/maps.py, for a model of your own and every `invlab measure`) leave torch's
compiler stack, torch._dynamo (about 70 MB and a second of CPU with sympy), unimported: in a process of their own,
since the test process may have imported it already, and all in one process, since each such process imports torch.

Measuring did import it: torch wraps a dispatch mode's __torch_dispatch__ in torch._dynamo.disable unless the mode
says it need not (nn/maps._LiveBytes._should_skip_dynamo).

Loading once did import it: check_sizes builds the model on torch's meta device, and a blur there ran torch's
Python reference ops, on every `invlab sweep`, report or measure."""

import subprocess
import sys

from conftest import fresh_script

TRAIN = """
from invariance_lab.run.train import train_model
from invariance_lab.nn.models import resolve_spec
from invariance_lab.schema.train import TrainConfig
x, y = torch.rand(8, 1, 8, 8), torch.arange(8) % 2
train_model(resolve_spec({'arch': 'conv_gap', 'channels': [2]}), x, y, x, y, TrainConfig(epochs=1), noise=0.0,
            seed=0, num_classes=2, canvas=8, device=torch.device('cpu'))
"""

LOAD = """
import pandas as pd
from invariance_lab.store.checkpoints import load_checkpoint, save_checkpoint
from invariance_lab.nn.models import build_model, resolve_spec
model = build_model(resolve_spec({'arch': 'conv_gap', 'downsample': 'blur_stride', 'channels': [4, 4]}),
                    num_classes=2, canvas=16)
path = FOLDER + '/m.pt'
save_checkpoint(path, model, name='m', seed=0, data=dict(canvas=16, letters=['A', 'B']), train=dict(epochs=1),
                classes=['A', 'B'], history=pd.DataFrame(dict(epoch=[1])))
load_checkpoint(path, torch.device('cpu'))
"""

MAPS = """
from invariance_lab.nn.maps import feature_map_bytes
net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1, padding_mode='circular'), torch.nn.Flatten(),
                          torch.nn.Linear(2 * 8 * 8, 2))
feature_map_bytes({'mine': net}, torch.rand(2, 1, 8, 8))
"""


def _stages(stages: list[str]) -> str:
    """A script that runs the stages in turn (their files in FOLDER), printing after each whether torch._dynamo
    is imported."""
    return "import sys, torch\n" + "".join(f"{stage}\nprint('torch._dynamo' in sys.modules)\n" for stage in stages)


# run first in the new process that conftest.fresh_process shares with another test's script: nothing before it
STAGES = {"training": TRAIN, "loading": LOAD, "measuring": MAPS}
fresh_script("compiler_stack", _stages(list(STAGES.values())), first=True)


def _compiler_stack_after(stages: list[str], folder) -> list[bool]:
    """Whether torch._dynamo is imported after each stage, the stages run in turn in one new process."""
    code = f"FOLDER = {str(folder)!r}\n" + _stages(stages)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [line == "True" for line in out.split()]


def test_training_loading_and_measuring_do_not_import_the_compiler_stack(fresh_process, tmp_path):
    status, out, error = fresh_process["compiler_stack"]
    after = [line == "True" for line in out.split()]
    assert status == 0 and len(after) == len(STAGES), (out, error)  # a line after each stage, nothing else
    if any(after):  # a stage after the first that imported it is seen only in a process of its own
        first = after.index(True)
        after[first + 1:] = [_compiler_stack_after([stage], tmp_path)[0] for stage in list(STAGES.values())[first + 1:]]
    assert not any(after), f"torch._dynamo imported by {dict(zip(STAGES, after))}"
