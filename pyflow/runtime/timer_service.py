"""InternalTimerService: event-time and processing-time timers of a keyed operator.

Timers are (timestamp, key, namespace) triples, kept in one heap per time domain. A timer is
registered at most once per (timestamp, key, namespace) - registering it again does nothing - and
fires once: event-time timers when the watermark reaches their timestamp, processing-time timers
when the wall clock does, always in timestamp order. Pure: the operator decides when to advance.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Hashable, Iterator

EVENT_TIME = "EVENT_TIME"
PROCESSING_TIME = "PROCESSING_TIME"


class _TimerHeap:
    def __init__(self):
        self._heap: list[tuple[int, int, Hashable, Any]] = []
        self._registered: set[tuple[int, Hashable, Any]] = set()
        self._order = itertools.count()  # ties: registration order

    def add(self, timestamp: int, key: Hashable, namespace: Any) -> None:
        entry = (timestamp, key, namespace)
        if entry in self._registered:
            return
        self._registered.add(entry)
        heapq.heappush(self._heap, (timestamp, next(self._order), key, namespace))

    def delete(self, timestamp: int, key: Hashable, namespace: Any) -> None:
        # lazy: the heap entry is skipped when it surfaces
        self._registered.discard((timestamp, key, namespace))

    def pop_until(self, time: int) -> Iterator[tuple[int, Hashable, Any]]:
        """Timers with timestamp <= time, in order; timers registered while iterating at or
        below ``time`` fire in the same pass (Flink fires them too)."""
        heap = self._heap
        while heap and heap[0][0] <= time:
            timestamp, _, key, namespace = heapq.heappop(heap)
            entry = (timestamp, key, namespace)
            if entry not in self._registered:
                continue
            self._registered.discard(entry)
            yield timestamp, key, namespace

    def peek(self) -> int | None:
        while self._heap and (self._heap[0][0], self._heap[0][2], self._heap[0][3]) not in self._registered:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._registered)

    def snapshot(self) -> list[tuple[int, Hashable, Any]]:
        return sorted(self._registered, key=lambda e: e[0])


class InternalTimerService:
    def __init__(self):
        self.event_time = _TimerHeap()
        self.processing_time = _TimerHeap()

    def register_event_time_timer(self, timestamp: int, key: Hashable, namespace: Any = None) -> None:
        self.event_time.add(int(timestamp), key, namespace)

    def register_processing_time_timer(self, timestamp: int, key: Hashable, namespace: Any = None) -> None:
        self.processing_time.add(int(timestamp), key, namespace)

    def delete_event_time_timer(self, timestamp: int, key: Hashable, namespace: Any = None) -> None:
        self.event_time.delete(int(timestamp), key, namespace)

    def delete_processing_time_timer(self, timestamp: int, key: Hashable, namespace: Any = None) -> None:
        self.processing_time.delete(int(timestamp), key, namespace)

    def advance_watermark(self, watermark: int) -> Iterator[tuple[int, Hashable, Any]]:
        return self.event_time.pop_until(watermark)

    def advance_processing_time(self, now_ms: int) -> Iterator[tuple[int, Hashable, Any]]:
        return self.processing_time.pop_until(now_ms)

    def snapshot(self) -> dict[str, list]:
        return {EVENT_TIME: self.event_time.snapshot(), PROCESSING_TIME: self.processing_time.snapshot()}

    def restore(self, data: dict[str, list]) -> None:
        for entry in data.get(EVENT_TIME, []):
            self.event_time.add(*entry)
        for entry in data.get(PROCESSING_TIME, []):
            self.processing_time.add(*entry)
