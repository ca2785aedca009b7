"""Run a script with ``symgrad`` standing in for ``torch``: ``python run_as_torch.py script.py``.

``import torch``, ``import torch.nn.functional as F``, ``from torch import autograd`` and the like
all find symgrad's modules.
"""

import runpy
import sys

import symgrad
import symgrad.nn
import symgrad.nn.functional

STAND_INS = {
    "torch": symgrad,
    "torch.nn": symgrad.nn,
    "torch.nn.functional": symgrad.nn.functional,
    "torch.autograd": symgrad.autograd,
    "torch.optim": symgrad.optim,
}

if __name__ == "__main__":
    sys.modules.update(STAND_INS)
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
