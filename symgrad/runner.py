"""``symgrad.runner`` is :mod:`symgrad.checking.runner` (an import path the README documents)."""

import sys

from symgrad.checking import runner as _module

sys.modules[__name__] = _module
