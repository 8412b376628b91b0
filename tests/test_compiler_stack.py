"""Training (run/train.py with run/optimizer.py's CpuAdam) and loading a checkpoint (store/checkpoints.py) leave
torch's compiler stack, torch._dynamo (about 70 MB and half a second), unimported: in a process of their own, since
the test process may have imported it already, and both in one process, since each such process imports torch.

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


def _stages(stages: list[str]) -> str:
    """A script that runs the stages in turn (their files in FOLDER), printing after each whether torch._dynamo
    is imported."""
    return "import sys, torch\n" + "".join(f"{stage}\nprint('torch._dynamo' in sys.modules)\n" for stage in stages)


# run first in the new process that conftest.fresh_process shares with another test's script: nothing before it
fresh_script("compiler_stack", _stages([TRAIN, LOAD]), first=True)


def _compiler_stack_after(stages: list[str], folder) -> list[bool]:
    """Whether torch._dynamo is imported after each stage, the stages run in turn in one new process."""
    code = f"FOLDER = {str(folder)!r}\n" + _stages(stages)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [line == "True" for line in out.split()]


def test_training_and_loading_a_checkpoint_do_not_import_the_compiler_stack(fresh_process, tmp_path):
    status, out, error = fresh_process["compiler_stack"]
    assert status == 0, error
    trained, loaded = [line == "True" for line in out.split()]
    if trained:  # then loading's own effect is seen only in a process of its own
        (loaded,) = _compiler_stack_after([LOAD], tmp_path)
    assert (trained, loaded) == (False, False), f"torch._dynamo imported by training: {trained}, by loading: {loaded}"
