"""Checking: compare a backend's gradients with the symbolic reference, case files, reports, suites.

Above :mod:`symgrad.tape`, :mod:`symgrad.symbolic` and :mod:`symgrad.backends`; the shells sit on top."""
