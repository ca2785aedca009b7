"""``symgrad.cases`` is :mod:`symgrad.checking.cases` (an import path the README documents)."""

import sys

from symgrad.checking import cases as _module

sys.modules[__name__] = _module
