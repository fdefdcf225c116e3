"""Durations in the API: a ``datetime.timedelta`` or integer milliseconds, everywhere."""

from __future__ import annotations

import datetime

from pyflow.errors import ProgramError


def to_millis(value: int | datetime.timedelta, what: str, *, allow_zero: bool = False) -> int:
    """``value`` in milliseconds; ``what`` names the argument in the error for a bad value.

    >>> to_millis(datetime.timedelta(seconds=5), "gap")
    5000
    """
    if isinstance(value, datetime.timedelta):
        ms = value // datetime.timedelta(milliseconds=1)
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = value
    else:
        raise ProgramError(f"{what} must be a datetime.timedelta or integer milliseconds, got {value!r}")
    if ms < 0 or (ms == 0 and not allow_zero):
        raise ProgramError(f"{what} must be a {'non-negative' if allow_zero else 'positive'} duration, got {value!r}")
    return ms
