"""Durations in the API: a ``datetime.timedelta`` or integer milliseconds, everywhere."""

from __future__ import annotations

import numbers
from datetime import timedelta

import numpy as np

from pyflow.errors import ProgramError


def to_millis(value: timedelta | int, what: str) -> int:
    """``value`` (a ``timedelta`` or integer milliseconds) as integer milliseconds.

    ``what`` names the value in the user's call for the error message, e.g.
    ``"TumblingEventTimeWindows.of(size='5s')"``. Bools, floats, strings and timedeltas with a
    fraction of a millisecond are refused.

    >>> to_millis(timedelta(seconds=1, milliseconds=5), "size"), to_millis(1005, "size")
    (1005, 1005)
    """
    if isinstance(value, timedelta):
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        if micros % 1000:
            raise ProgramError(f"{what}: {value!r} is not a whole number of milliseconds")
        return micros // 1000
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    raise ProgramError(
        f"{what}: expected a datetime.timedelta or integer milliseconds, got "
        f"{type(value).__name__} {value!r}")


def non_negative_millis(value: timedelta | int, what: str, *, allow_zero: bool = False) -> int:
    """``to_millis`` for durations that cannot be negative (or zero, unless ``allow_zero``).

    >>> non_negative_millis(timedelta(seconds=5), "gap")
    5000
    """
    ms = to_millis(value, what)
    if ms < 0 or (ms == 0 and not allow_zero):
        raise ProgramError(f"{what} must be a {'non-negative' if allow_zero else 'positive'} duration, got {value!r}")
    return ms
