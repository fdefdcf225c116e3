"""Windows, window assigners and triggers, named and behaving as in Apache Flink.

A window assigner puts each element of a keyed stream into zero or more windows; a trigger
decides when a window is evaluated (fired) and when its contents are dropped (purged)::

    stream.key_by(...).window(TumblingEventTimeWindows.of(timedelta(seconds=5)))
    stream.key_by(...).window(EventTimeSessionWindows.with_gap(timedelta(minutes=10)))
    stream.key_by(...).window(GlobalWindows.create()).trigger(PurgingTrigger.of(CountTrigger.of(100)))

Durations (sizes, slides, offsets, gaps) are a ``datetime.timedelta`` or integer milliseconds;
times are integer milliseconds since the epoch. Window starts follow Flink's
``TimeWindow.getWindowStartWithOffset`` with floor modulo, so negative timestamps fall in the
window that contains them (see :mod:`pyflow.runtime.operators.windows`).

Assigners, triggers and windows are pure objects: the window operator holds the state and the
timers and passes a context (:class:`TriggerContext`) to each trigger call. A custom trigger
subclasses :class:`Trigger`:

>>> class FireOnRed(Trigger):
...     def on_element(self, element, timestamp, window, ctx):
...         return TriggerResult.FIRE if element == "red" else TriggerResult.CONTINUE
...     def on_event_time(self, time, window, ctx):
...         return TriggerResult.CONTINUE
...     def on_processing_time(self, time, window, ctx):
...         return TriggerResult.CONTINUE
...     def clear(self, window, ctx):
...         pass
>>> TumblingEventTimeWindows.of(timedelta(seconds=5)).assign_windows("red", 7_500, None)
[TimeWindow(start=5000, end=10000)]
>>> FireOnRed().on_element("red", 7_500, TimeWindow(5000, 10000), None)
<TriggerResult.FIRE: (True, False)>
"""

from __future__ import annotations

import abc
import numbers
import operator
from datetime import timedelta
from typing import Any, Callable

import numpy as np

from pyflow.api.functions import Function, resolve
from pyflow.api.durations import to_millis
from pyflow.errors import ProgramError
from pyflow.runtime.operators.windows import (
    MAX_WATERMARK, MIN_WATERMARK, GlobalWindow, OnMergeContext, ReducingState,
    TimeWindow, TriggerContext, TriggerResult, Window, WindowAssignerContext, assign_sliding,
    assign_tumbling, window_start_with_offset,
)
from pyflow.state.descriptors import ReducingStateDescriptor

__all__ = [
    "MAX_WATERMARK",
    "MIN_WATERMARK",
    "ContinuousEventTimeTrigger",
    "CountTrigger",
    "DynamicEventTimeSessionWindows",
    "DynamicProcessingTimeSessionWindows",
    "EventTimeSessionWindows",
    "EventTimeTrigger",
    "GlobalWindow",
    "GlobalWindows",
    "MergingWindowAssigner",
    "NeverTrigger",
    "OnMergeContext",
    "ProcessingTimeSessionWindows",
    "ProcessingTimeTrigger",
    "PurgingTrigger",
    "ReducingState",
    "SessionWindowTimeGapExtractor",
    "SlidingEventTimeWindows",
    "SlidingProcessingTimeWindows",
    "TimeWindow",
    "Trigger",
    "TriggerContext",
    "TriggerResult",
    "TumblingEventTimeWindows",
    "TumblingProcessingTimeWindows",
    "Window",
    "WindowAssigner",
    "WindowAssignerContext",
    "to_millis",
]


# -- durations ----------------------------------------------------------------------------------


def _call(method: str, **args: Any) -> str:
    """How the user called ``method``; an ``offset`` of int 0 (the default) is left out."""
    shown = ", ".join(f"{name}={value!r}" for name, value in args.items()
                      if not (name == "offset" and type(value) is int and value == 0))
    return f"{method}({shown})"


def _positive(value: Any, name: str, call: str) -> int:
    millis = to_millis(value, call)
    if millis <= 0:
        raise ProgramError(f"{call}: {name} must be a positive duration")
    return millis


def _offset(value: Any, bound_name: str, bound: int, call: str) -> int:
    millis = to_millis(value, call)
    if abs(millis) >= bound:
        raise ProgramError(
            f"{call}: offset must satisfy abs(offset) < {bound_name} ({abs(millis)} >= {bound} ms)")
    return millis


def _timestamp(timestamp: Any, assigner: WindowAssigner) -> int:
    if timestamp is None or timestamp == MIN_WATERMARK:
        name = type(assigner).__name__
        raise ProgramError(
            f"{name} got a record without a timestamp; assign timestamps and watermarks to the "
            f"stream before an event-time window, or use a processing-time window instead")
    return timestamp


# -- assigners ----------------------------------------------------------------------------------


class WindowAssigner(abc.ABC):
    """Assigns each element to zero or more windows (Flink's ``WindowAssigner``)."""

    @abc.abstractmethod
    def assign_windows(self, element: Any, timestamp: int | None,
                       ctx: WindowAssignerContext | None) -> list[Window]:
        """The windows of ``element``; ``timestamp`` is its event time (``None`` if it has none),
        ``ctx`` gives the current processing time to processing-time assigners."""

    @abc.abstractmethod
    def default_trigger(self) -> Trigger:
        """The trigger used unless ``WindowedStream.trigger(...)`` replaces it."""

    @abc.abstractmethod
    def is_event_time(self) -> bool:
        """Whether windows are in event time (watermarks close them, lateness applies)."""

    def is_merging(self) -> bool:
        return False

    def _params(self) -> tuple:
        return tuple(vars(self).items())

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._params() == self._params()

    def __hash__(self) -> int:
        return hash((type(self), self._params()))

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value!r}" for name, value in self._params())
        return f"{type(self).__name__}({args})"


class MergingWindowAssigner(WindowAssigner):
    """An assigner whose windows merge (sessions; Flink's ``MergingWindowAssigner``). The window
    operator keeps a :class:`MergingWindowSet` per key for it."""

    def is_merging(self) -> bool:
        return True

    @abc.abstractmethod
    def merge_windows(self, windows: list[Window], callback: Callable[[list[Window], Window], None]) -> None:
        """Call ``callback(to_be_merged, merge_result)`` for each group of windows that merge."""


class _Tumbling(WindowAssigner):
    def __init__(self, size: timedelta | int, offset: timedelta | int = 0):
        call = _call(f"{type(self).__name__}.of", size=size, offset=offset)
        self.size = _positive(size, "size", call)
        self.offset = _offset(offset, "size", self.size, call)

    @classmethod
    def of(cls, size: timedelta | int, offset: timedelta | int = 0):
        """Windows of ``size``, starting at ``offset`` past every multiple of ``size`` since the
        epoch (an offset of -8 h gives days in UTC+8)."""
        return cls(size, offset)

    def _windows(self, timestamp: int) -> list[Window]:
        start = window_start_with_offset(timestamp, self.offset, self.size)
        return [TimeWindow(start, start + self.size)]

    def assign_batch(self, timestamps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(row_index, window_start, window_end)`` for an int64 array of timestamps (event
        times, or the current processing time per row): one window per row, rows in order."""
        return assign_tumbling(timestamps, self.size, self.offset)


class _EventTime:
    """Windows of the records' event timestamps, fired by the watermark."""

    def assign_windows(self, element, timestamp, ctx):
        return self._windows(_timestamp(timestamp, self))

    def default_trigger(self) -> Trigger:
        return EventTimeTrigger()

    def is_event_time(self) -> bool:
        return True


class _ProcessingTime:
    """Windows of the operator's processing time, fired by the wall clock."""

    def assign_windows(self, element, timestamp, ctx):
        return self._windows(ctx.get_current_processing_time())

    def default_trigger(self) -> Trigger:
        return ProcessingTimeTrigger()

    def is_event_time(self) -> bool:
        return False


class TumblingEventTimeWindows(_EventTime, _Tumbling):
    """Fixed-size, non-overlapping event-time windows.

    >>> TumblingEventTimeWindows.of(10).assign_windows(None, -1, None)
    [TimeWindow(start=-10, end=0)]
    """



class TumblingProcessingTimeWindows(_ProcessingTime, _Tumbling):
    """Fixed-size, non-overlapping windows of the operator's processing time."""



class _Sliding(WindowAssigner):
    def __init__(self, size: timedelta | int, slide: timedelta | int, offset: timedelta | int = 0):
        call = _call(f"{type(self).__name__}.of", size=size, slide=slide, offset=offset)
        self.size = _positive(size, "size", call)
        self.slide = _positive(slide, "slide", call)
        self.offset = _offset(offset, "slide", self.slide, call)

    @classmethod
    def of(cls, size: timedelta | int, slide: timedelta | int, offset: timedelta | int = 0):
        """Windows of ``size`` starting every ``slide`` (at ``offset`` past every multiple of
        ``slide``); an element falls in about ``size / slide`` windows."""
        return cls(size, slide, offset)

    def _windows(self, timestamp: int) -> list[Window]:
        # Flink's order: latest window first
        windows: list[Window] = []
        start = window_start_with_offset(timestamp, self.offset, self.slide)
        while start > timestamp - self.size:
            windows.append(TimeWindow(start, start + self.size))
            start -= self.slide
        return windows

    def assign_batch(self, timestamps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(row_index, window_start, window_end)`` for an int64 array of timestamps: each row
        repeated once per window it falls in, rows in order, each row's windows in the order of
        :meth:`assign_windows`."""
        return assign_sliding(timestamps, self.size, self.slide, self.offset)


class SlidingEventTimeWindows(_EventTime, _Sliding):
    """Fixed-size event-time windows that start every ``slide`` and so may overlap.

    >>> SlidingEventTimeWindows.of(10, 5).assign_windows(None, 5, None)
    [TimeWindow(start=5, end=15), TimeWindow(start=0, end=10)]
    """



class SlidingProcessingTimeWindows(_ProcessingTime, _Sliding):
    """Sliding windows of the operator's processing time."""



class SessionWindowTimeGapExtractor(Function):
    """The session gap of an element, for ``with_dynamic_gap`` (a plain callable works too)."""

    def extract(self, element: Any) -> timedelta | int:
        raise NotImplementedError


class _Sessions(MergingWindowAssigner):
    def __init__(self, gap: timedelta | int):
        self.gap = _positive(gap, "gap", _call(f"{type(self).__name__}.with_gap", gap=gap))

    def merge_windows(self, windows, callback) -> None:
        TimeWindow.merge_windows(windows, callback)


class _DynamicSessions(MergingWindowAssigner):
    def __init__(self, extractor: Any):
        self.extractor = extractor
        self._extract = resolve(extractor, "extract", f"{self._public_name()}.with_dynamic_gap",
                                SessionWindowTimeGapExtractor)

    @classmethod
    def _public_name(cls) -> str:
        return cls.__name__.replace("Dynamic", "", 1)

    def _params(self) -> tuple:
        return (("extractor", self.extractor),)

    def _window(self, element: Any, timestamp: int) -> list[Window]:
        gap = self._extract(element)
        call = (f"the session gap extractor of {self._public_name()}.with_dynamic_gap returned {gap!r} "
                f"for {element!r}")
        millis = to_millis(gap, call)
        if millis <= 0:
            raise ProgramError(f"{call}: a session gap must be a positive duration")
        return [TimeWindow(timestamp, timestamp + millis)]

    def merge_windows(self, windows, callback) -> None:
        TimeWindow.merge_windows(windows, callback)


class EventTimeSessionWindows(_Sessions):
    """Event-time sessions: an element opens ``[timestamp, timestamp + gap)``, and windows that
    overlap or touch merge, so a session ends after ``gap`` without elements.

    >>> EventTimeSessionWindows.with_gap(timedelta(seconds=10)).assign_windows(None, 1000, None)
    [TimeWindow(start=1000, end=11000)]
    """

    @classmethod
    def with_gap(cls, gap: timedelta | int) -> EventTimeSessionWindows:
        return cls(gap)

    @staticmethod
    def with_dynamic_gap(extractor: Callable[[Any], timedelta | int] | SessionWindowTimeGapExtractor
                         ) -> DynamicEventTimeSessionWindows:
        """Sessions whose gap each element sets: ``extractor(element)`` (or ``.extract``)."""
        return DynamicEventTimeSessionWindows(extractor)

    def assign_windows(self, element, timestamp, ctx):
        timestamp = _timestamp(timestamp, self)
        return [TimeWindow(timestamp, timestamp + self.gap)]

    def default_trigger(self) -> Trigger:
        return EventTimeTrigger()

    def is_event_time(self) -> bool:
        return True


class ProcessingTimeSessionWindows(_Sessions):
    """Sessions of the operator's processing time (see :class:`EventTimeSessionWindows`)."""

    @classmethod
    def with_gap(cls, gap: timedelta | int) -> ProcessingTimeSessionWindows:
        return cls(gap)

    @staticmethod
    def with_dynamic_gap(extractor: Callable[[Any], timedelta | int] | SessionWindowTimeGapExtractor
                         ) -> DynamicProcessingTimeSessionWindows:
        return DynamicProcessingTimeSessionWindows(extractor)

    def assign_windows(self, element, timestamp, ctx):
        now = ctx.get_current_processing_time()
        return [TimeWindow(now, now + self.gap)]

    def default_trigger(self) -> Trigger:
        return ProcessingTimeTrigger()

    def is_event_time(self) -> bool:
        return False


class DynamicEventTimeSessionWindows(_DynamicSessions):
    """Event-time sessions with a gap per element; made by ``EventTimeSessionWindows.with_dynamic_gap``."""

    def assign_windows(self, element, timestamp, ctx):
        return self._window(element, _timestamp(timestamp, self))

    def default_trigger(self) -> Trigger:
        return EventTimeTrigger()

    def is_event_time(self) -> bool:
        return True


class DynamicProcessingTimeSessionWindows(_DynamicSessions):
    """Processing-time sessions with a gap per element."""

    def assign_windows(self, element, timestamp, ctx):
        return self._window(element, ctx.get_current_processing_time())

    def default_trigger(self) -> Trigger:
        return ProcessingTimeTrigger()

    def is_event_time(self) -> bool:
        return False


class GlobalWindows(WindowAssigner):
    """Every element in the one :class:`GlobalWindow`; its default trigger never fires, so give
    it one (count windows are ``GlobalWindows`` + ``PurgingTrigger.of(CountTrigger.of(n))``)."""

    @classmethod
    def create(cls) -> GlobalWindows:
        return cls()

    def assign_windows(self, element, timestamp, ctx):
        return [GlobalWindow.get()]

    def default_trigger(self) -> Trigger:
        return NeverTrigger()

    def is_event_time(self) -> bool:
        return False


# -- triggers -----------------------------------------------------------------------------------


class Trigger(abc.ABC):
    """Decides when a window fires and purges (Flink's ``Trigger``).

    Each method gets the window and a :class:`TriggerContext` for the current key and window, and
    returns a :class:`TriggerResult`. Keep state in ``ctx.get_partitioned_state(descriptor)``
    (descriptors from :mod:`pyflow.state.descriptors`), never on the trigger: one trigger object
    serves every key and window. ``clear`` must delete the
    timers and state the trigger made for the window.
    """

    @abc.abstractmethod
    def on_element(self, element: Any, timestamp: int | None, window: Window,
                   ctx: TriggerContext) -> TriggerResult:
        """Called for every element added to ``window``."""

    @abc.abstractmethod
    def on_event_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        """Called when an event-time timer the trigger registered fires."""

    @abc.abstractmethod
    def on_processing_time(self, time: int, window: Window, ctx: TriggerContext) -> TriggerResult:
        """Called when a processing-time timer the trigger registered fires."""

    def can_merge(self) -> bool:
        """Whether the trigger supports merging windows (sessions need it)."""
        return False

    def on_merge(self, window: Window, ctx: OnMergeContext) -> None:
        """Called when windows merged into ``window``; re-register timers and merge state."""
        raise ProgramError(f"{type(self).__name__} does not support merging windows (session windows)")

    @abc.abstractmethod
    def clear(self, window: Window, ctx: TriggerContext) -> None:
        """Delete the timers and state of ``window`` (it is being dropped)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EventTimeTrigger(Trigger):
    """Fires once the watermark passes the window's end (the default of event-time assigners)."""

    @classmethod
    def create(cls) -> EventTimeTrigger:
        return cls()

    def on_element(self, element, timestamp, window, ctx):
        if window.max_timestamp() <= ctx.get_current_watermark():
            return TriggerResult.FIRE  # a late element in a window still within its lateness
        ctx.register_event_time_timer(window.max_timestamp())
        return TriggerResult.CONTINUE

    def on_event_time(self, time, window, ctx):
        return TriggerResult.FIRE if time == window.max_timestamp() else TriggerResult.CONTINUE

    def on_processing_time(self, time, window, ctx):
        return TriggerResult.CONTINUE

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window, ctx):
        # only if the watermark has not passed the merged window, else the timer would fire late
        if window.max_timestamp() > ctx.get_current_watermark():
            ctx.register_event_time_timer(window.max_timestamp())

    def clear(self, window, ctx):
        ctx.delete_event_time_timer(window.max_timestamp())


class ProcessingTimeTrigger(Trigger):
    """Fires when the processing time passes the window's end (the default of processing-time
    assigners)."""

    @classmethod
    def create(cls) -> ProcessingTimeTrigger:
        return cls()

    def on_element(self, element, timestamp, window, ctx):
        ctx.register_processing_time_timer(window.max_timestamp())
        return TriggerResult.CONTINUE

    def on_event_time(self, time, window, ctx):
        return TriggerResult.CONTINUE

    def on_processing_time(self, time, window, ctx):
        return TriggerResult.FIRE

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window, ctx):
        if window.max_timestamp() > ctx.get_current_processing_time():
            ctx.register_processing_time_timer(window.max_timestamp())

    def clear(self, window, ctx):
        ctx.delete_processing_time_timer(window.max_timestamp())


class CountTrigger(Trigger):
    """Fires every ``count`` elements of a window (does not purge: wrap it in
    :class:`PurgingTrigger` for count windows)."""

    STATE = ReducingStateDescriptor("count", operator.add)

    def __init__(self, count: int):
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count <= 0:
            raise ProgramError(f"CountTrigger.of(count={count!r}): count must be a positive integer")
        self.count = int(count)

    @classmethod
    def of(cls, count: int) -> CountTrigger:
        return cls(count)

    def on_element(self, element, timestamp, window, ctx):
        state = ctx.get_partitioned_state(self.STATE)
        state.add(1)
        if state.get() >= self.count:
            state.clear()
            return TriggerResult.FIRE
        return TriggerResult.CONTINUE

    def on_event_time(self, time, window, ctx):
        return TriggerResult.CONTINUE

    def on_processing_time(self, time, window, ctx):
        return TriggerResult.CONTINUE

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window, ctx):
        ctx.merge_partitioned_state(self.STATE)

    def clear(self, window, ctx):
        ctx.get_partitioned_state(self.STATE).clear()

    def __repr__(self) -> str:
        return f"CountTrigger({self.count})"


class PurgingTrigger(Trigger):
    """Turns every FIRE of the wrapped trigger into FIRE_AND_PURGE."""

    def __init__(self, nested: Trigger):
        if not isinstance(nested, Trigger):
            raise ProgramError(f"PurgingTrigger.of(trigger={nested!r}): expected a Trigger, got "
                               f"{type(nested).__name__}")
        self.nested = nested

    @classmethod
    def of(cls, nested: Trigger) -> PurgingTrigger:
        return cls(nested)

    @staticmethod
    def _purging(result: TriggerResult) -> TriggerResult:
        return TriggerResult.FIRE_AND_PURGE if result.is_fire() else result

    def on_element(self, element, timestamp, window, ctx):
        return self._purging(self.nested.on_element(element, timestamp, window, ctx))

    def on_event_time(self, time, window, ctx):
        return self._purging(self.nested.on_event_time(time, window, ctx))

    def on_processing_time(self, time, window, ctx):
        return self._purging(self.nested.on_processing_time(time, window, ctx))

    def can_merge(self) -> bool:
        return self.nested.can_merge()

    def on_merge(self, window, ctx):
        self.nested.on_merge(window, ctx)

    def clear(self, window, ctx):
        self.nested.clear(window, ctx)

    def __repr__(self) -> str:
        return f"PurgingTrigger({self.nested!r})"


class ContinuousEventTimeTrigger(Trigger):
    """Fires every ``interval`` of event time within a window, and at its end (Flink's
    ``ContinuousEventTimeTrigger``)."""

    STATE = ReducingStateDescriptor("fire-time", min)

    def __init__(self, interval: timedelta | int):
        call = _call("ContinuousEventTimeTrigger.of", interval=interval)
        self.interval = _positive(interval, "interval", call)

    @classmethod
    def of(cls, interval: timedelta | int) -> ContinuousEventTimeTrigger:
        return cls(interval)

    def on_element(self, element, timestamp, window, ctx):
        if window.max_timestamp() <= ctx.get_current_watermark():
            return TriggerResult.FIRE
        ctx.register_event_time_timer(window.max_timestamp())
        state = ctx.get_partitioned_state(self.STATE)
        if state.get() is None:
            self._register_next(timestamp - timestamp % self.interval, window, ctx, state)
        return TriggerResult.CONTINUE

    def on_event_time(self, time, window, ctx):
        if time == window.max_timestamp():
            return TriggerResult.FIRE
        state = ctx.get_partitioned_state(self.STATE)
        if state.get() == time:
            state.clear()
            self._register_next(time, window, ctx, state)
            return TriggerResult.FIRE
        return TriggerResult.CONTINUE

    def on_processing_time(self, time, window, ctx):
        return TriggerResult.CONTINUE

    def _register_next(self, time: int, window: Window, ctx: TriggerContext, state: ReducingState) -> None:
        next_fire = min(time + self.interval, window.max_timestamp())
        state.add(next_fire)
        ctx.register_event_time_timer(next_fire)

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window, ctx):
        ctx.merge_partitioned_state(self.STATE)
        next_fire = ctx.get_partitioned_state(self.STATE).get()
        if next_fire is not None:
            ctx.register_event_time_timer(next_fire)

    def clear(self, window, ctx):
        state = ctx.get_partitioned_state(self.STATE)
        next_fire = state.get()
        if next_fire is not None:
            ctx.delete_event_time_timer(next_fire)
            state.clear()

    def __repr__(self) -> str:
        return f"ContinuousEventTimeTrigger({self.interval})"


class NeverTrigger(Trigger):
    """Never fires (the default trigger of :class:`GlobalWindows`; Flink's
    ``GlobalWindows.NeverTrigger``)."""

    def on_element(self, element, timestamp, window, ctx):
        return TriggerResult.CONTINUE

    def on_event_time(self, time, window, ctx):
        return TriggerResult.CONTINUE

    def on_processing_time(self, time, window, ctx):
        return TriggerResult.CONTINUE

    def on_merge(self, window, ctx):
        pass

    def clear(self, window, ctx):
        pass


GlobalWindows.NeverTrigger = NeverTrigger
