"""Training (run/train.py with run/optimizer.py's CpuAdam) and loading a checkpoint (store/checkpoints.py) leave
torch's compiler stack, torch._dynamo (about 70 MB and half a second), unimported: in a process of their own, since
the test process may have imported it already, and both in one process, since each such process imports torch.

Loading once did import it: check_sizes builds the model on torch's meta device, and a blur there ran torch's
Python reference ops, on every `invlab sweep`, report or measure."""

import subprocess
import sys

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


def _compiler_stack_after(stages: list[str], folder) -> list[bool]:
    """Whether torch._dynamo is imported after each stage, the stages run in turn in one new process."""
    code = f"import sys, torch\nFOLDER = {str(folder)!r}\n" + "".join(
        f"{stage}\nprint('torch._dynamo' in sys.modules)\n" for stage in stages)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [line == "True" for line in out.split()]


def test_training_and_loading_a_checkpoint_do_not_import_the_compiler_stack(tmp_path):
    trained, loaded = _compiler_stack_after([TRAIN, LOAD], tmp_path)
    if trained:  # then loading's own effect is seen only in a process of its own
        (loaded,) = _compiler_stack_after([LOAD], tmp_path)
    assert (trained, loaded) == (False, False), f"torch._dynamo imported by training: {trained}, by loading: {loaded}"
