"""The fuzzer's per-check time limit (fuzzing._time_limit): an alarm that something swallowed fires again."""

import signal
import time

import pytest

from symgrad import fuzzing

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="no interval timers here")


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_swallowed_alarm_fires_again():
    # as Python does with an exception raised in a gc callback: the first alarm is lost
    swallowed = 0
    start = time.monotonic()
    with pytest.raises(fuzzing._Timeout), fuzzing._time_limit(0.05):
        try:
            _spin(30.0)
        except fuzzing._Timeout:
            swallowed += 1
        _spin(30.0)  # the check goes on: the next alarm must end it
    assert swallowed == 1
    assert time.monotonic() - start < 20.0


def test_a_check_within_the_limit_is_not_interrupted_and_no_alarm_outlives_it():
    with fuzzing._time_limit(5.0):
        _spin(0.05)
    _spin(1.5)  # a timer left running would raise here, after its interval
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
