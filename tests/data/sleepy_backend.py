"""A test backend, copied by tests into a temporary folder on sys.path and named as ``module:SleepyBackend``.

The symgrad tape, except that an expression using the input ``slow`` hangs
(for the timeout tests: the worker running it must be killed).
"""

import time

from symgrad.backends import Backend, get


class SleepyBackend(Backend):
    name = "sleepy"

    def gradients(self, expr, inputs, wrt, order, grad_output):
        if "slow" in inputs:
            time.sleep(120)
        return get("symgrad").gradients(expr, inputs, wrt, order, grad_output)
