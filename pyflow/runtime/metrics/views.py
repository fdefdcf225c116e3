"""Views over counters and wait timers: rates (Flink's MeterView) and time per second (Flink's
TimerGauge), computed from samples taken when the metrics are read.

Counting stays on the hot path's own terms: a task adds batch sizes to plain ``int`` counters and
measures its waits with a :class:`WaitTimer` around the waits that already exist (the input gate's
poll, a full subpartition queue, a rate-limited source's sleep). Nothing here runs per record.

:class:`MetricViews` turns cumulative values into Flink's derived metrics:

* ``<counter>PerSecond``: the counter's rate over the last :data:`METER_WINDOW_S` seconds;
* ``idleTimeMsPerSecond``, ``backPressuredTimeMsPerSecond`` and ``busyTimeMsPerSecond`` (the
  rest, so that the three add up to 1000): shares of the last update interval.

A new sample is kept at most every :data:`UPDATE_INTERVAL_S` seconds, when someone reads (a
heartbeat, a Prometheus scrape), so the values change every few seconds, as Flink's views do,
without a thread of their own. Flink divides by the full window from the start, so its rates
creep up during a task's first minute; here, until the window is full, a rate is over the time
the task has run, and before the first interval passed, the values are over the time since the
first sample.

>>> views = MetricViews()
>>> _ = views.observe(0.0, {"numRecordsIn": 0}, idle_ms=0.0, backpressured_ms=0.0)
>>> views.observe(5.0, {"numRecordsIn": 500}, idle_ms=1000.0, backpressured_ms=2500.0)
{'numRecordsInPerSecond': 100.0, 'idleTimeMsPerSecond': 200, 'backPressuredTimeMsPerSecond': 500, 'busyTimeMsPerSecond': 300}
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Mapping

__all__ = ["METER_WINDOW_S", "UPDATE_INTERVAL_S", "MetricViews", "WaitTimer", "time_shares"]

#: the span of a rate (Flink's MeterView default: 60 s)
METER_WINDOW_S = 60.0
#: at most one new sample per this many seconds (Flink's views update every 5 s)
UPDATE_INTERVAL_S = 5.0


class WaitTimer:
    """Total time one thread spent in a kind of wait, including a wait going on now.

    The waiting thread calls :meth:`start` and :meth:`stop` around its wait; any thread may read
    :meth:`total_s`. The state is one tuple, replaced at once, so a reader never sees half an
    update.

    >>> clock = iter([0.0, 2.0, 3.0, 3.5]).__next__
    >>> timer = WaitTimer(clock)
    >>> timer.start(); timer.stop(); timer.start()
    >>> timer.total_s()  # 2 s done, plus 0.5 s of the wait going on now
    2.5
    """

    __slots__ = ("_state", "_clock")

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        #: (seconds of finished waits, start of the wait going on now or None)
        self._state: tuple[float, float | None] = (0.0, None)

    def start(self) -> None:
        self._state = (self._state[0], self._clock())

    def stop(self) -> None:
        total, since = self._state
        if since is not None:
            self._state = (total + max(0.0, self._clock() - since), None)

    def total_s(self) -> float:
        total, since = self._state
        return total if since is None else total + max(0.0, self._clock() - since)

    @property
    def waiting(self) -> bool:
        return self._state[1] is not None


def time_shares(elapsed_s: float, idle_ms: float, backpressured_ms: float) -> dict[str, int]:
    """Milliseconds per second idle, backpressured and busy (the rest) over ``elapsed_s`` in which
    ``idle_ms`` and ``backpressured_ms`` were spent waiting; the three add up to 1000.

    >>> time_shares(2.0, idle_ms=500.0, backpressured_ms=0.0)
    {'idleTimeMsPerSecond': 250, 'backPressuredTimeMsPerSecond': 0, 'busyTimeMsPerSecond': 750}
    """
    idle = min(1000, max(0, round(idle_ms / elapsed_s)))
    backpressured = min(1000 - idle, max(0, round(backpressured_ms / elapsed_s)))
    return {"idleTimeMsPerSecond": idle, "backPressuredTimeMsPerSecond": backpressured,
            "busyTimeMsPerSecond": 1000 - idle - backpressured}


class MetricViews:
    """Rates of counters and time shares of one task, from samples of its cumulative values.

    ``observe(now_s, counters, idle_ms, backpressured_ms)`` returns ``<name>PerSecond`` for every
    counter and, once any time has passed, the three time shares. Thread-safe: readers on several
    threads (heartbeats, scrapes) share the samples.
    """

    def __init__(self, window_s: float = METER_WINDOW_S, interval_s: float = UPDATE_INTERVAL_S):
        self.window_s = window_s
        self.interval_s = interval_s
        self._lock = threading.Lock()
        #: (time, counters, idle ms, backpressured ms), oldest first, spanning about one window
        self._samples: deque[tuple[float, dict[str, float], float, float]] = deque()

    def observe(self, now_s: float, counters: Mapping[str, float], *, idle_ms: float,
                backpressured_ms: float) -> dict[str, float]:
        with self._lock:
            samples = self._samples
            live = (now_s, dict(counters), idle_ms, backpressured_ms)
            if not samples or now_s - samples[-1][0] >= self.interval_s:
                samples.append(live)
                while len(samples) > 1 and samples[1][0] <= now_s - self.window_s:
                    samples.popleft()
            if len(samples) >= 2:
                first, head, previous = samples[0], samples[-1], samples[-2]
            else:
                first = previous = samples[0]
                head = live  # before the first interval: over the time since the first sample
            return self._values(first, previous, head)

    @staticmethod
    def _values(first, previous, head) -> dict[str, float]:
        out: dict[str, float] = {}
        span = head[0] - first[0]
        for name, value in head[1].items():
            base = first[1].get(name, 0)
            out[f"{name}PerSecond"] = max(0.0, (value - base) / span) if span > 0 else 0.0
        elapsed = head[0] - previous[0]
        if elapsed > 0:
            out.update(time_shares(elapsed, head[2] - previous[2], head[3] - previous[3]))
        return out
