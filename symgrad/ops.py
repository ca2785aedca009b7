"""``symgrad.ops`` is :mod:`symgrad.ir.ops` (an import path the README documents)."""

import sys

from symgrad.ir import ops as _module

sys.modules[__name__] = _module
