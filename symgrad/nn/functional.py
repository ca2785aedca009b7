"""``symgrad.nn.functional`` is :mod:`symgrad.tape.functional` (``import symgrad.nn.functional as F``)."""

import sys

from symgrad.tape import functional as _module

sys.modules[__name__] = _module
