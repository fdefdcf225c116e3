"""The runtime side of Flink's windows: window types, the contracts a window operator implements,
the merging window set of session windows, late-data rules, and vectorized window assignment.

Everything here is pure: no I/O, no threads, no clocks. The window operator owns the state and
the timers; it drives the objects here and implements :class:`TriggerContext` and
:class:`WindowAssignerContext` for the assigners and triggers of :mod:`pyflow.api.windowing`,
which re-exports the public names (``TimeWindow``, ``GlobalWindow``, ``TriggerResult``, ...).
They are defined here because ``runtime`` never imports ``api``.

Times are integer milliseconds since the epoch, as Flink's ``long`` timestamps; the watermark
range is ``[MIN_WATERMARK, MAX_WATERMARK]`` (Java's ``Long.MIN_VALUE`` / ``Long.MAX_VALUE``, from
:mod:`pyflow.runtime.network.events`). ``MAX_WATERMARK`` is also the max timestamp of the
:class:`GlobalWindow`; ``MIN_WATERMARK`` as a record's timestamp means "no timestamp".

Window start (Flink's ``TimeWindow.getWindowStartWithOffset``)::

    start = timestamp - (timestamp - offset + size) % size

computed with floor modulo (Python's and numpy's ``%``), so ``start <= timestamp < start + size``
for every timestamp, negative ones included. Flink computes it with Java's truncating ``%``,
which agrees for every ``timestamp >= offset - size`` and, below that, yields a window that does
not contain the timestamp; pyflow does not reproduce that.

Example::

    >>> import numpy as np
    >>> rows, starts, ends = assign_sliding(np.array([7, 12]), size=10, slide=5)
    >>> rows.tolist(), starts.tolist(), ends.tolist()
    ([0, 0, 1, 1], [5, 0, 10, 5], [15, 10, 20, 15])
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from pyflow.errors import ProgramError
from pyflow.runtime.network.events import MAX_WATERMARK, MIN_WATERMARK

__all__ = [
    "MAX_WATERMARK",
    "MIN_WATERMARK",
    "GlobalWindow",
    "MergingWindowSet",
    "OnMergeContext",
    "ReducingState",
    "TimeWindow",
    "TriggerContext",
    "TriggerResult",
    "Window",
    "WindowAssignerContext",
    "assign_sliding",
    "assign_tumbling",
    "cleanup_time",
    "element_late_mask",
    "is_element_late",
    "is_window_late",
    "window_late_mask",
    "window_start_with_offset",
]

# -- windows ------------------------------------------------------------------------------------


class Window(abc.ABC):
    """A bucket of elements (Flink's ``Window``). Windows are immutable and hashable: they are
    the namespaces of the window operator's state and timers."""

    __slots__ = ()

    @abc.abstractmethod
    def max_timestamp(self) -> int:
        """The largest timestamp that still belongs to this window."""


@dataclass(frozen=True, slots=True, order=True)
class TimeWindow(Window):
    """The half-open interval ``[start, end)`` of milliseconds (Flink's ``TimeWindow``).

    Ordered by ``(start, end)``.

    >>> w = TimeWindow(0, 10)
    >>> w.max_timestamp(), w.intersects(TimeWindow(10, 20)), w.cover(TimeWindow(5, 15))
    (9, True, TimeWindow(start=0, end=15))
    """

    start: int
    end: int

    def max_timestamp(self) -> int:
        return self.end - 1

    def intersects(self, other: TimeWindow) -> bool:
        """Whether the windows overlap or touch (``[0, 10)`` and ``[10, 20)`` do, as in Flink:
        session windows that touch merge)."""
        return self.start <= other.end and self.end >= other.start

    def cover(self, other: TimeWindow) -> TimeWindow:
        """The smallest window containing both."""
        return TimeWindow(min(self.start, other.start), max(self.end, other.end))

    @staticmethod
    def get_window_start_with_offset(timestamp: int, offset: int, window_size: int) -> int:
        """Flink's ``TimeWindow.getWindowStartWithOffset`` (see the module docstring)."""
        return window_start_with_offset(timestamp, offset, window_size)

    @staticmethod
    def merge_windows(windows: Iterable[TimeWindow],
                      callback: Callable[[list[TimeWindow], TimeWindow], None]) -> None:
        """Flink's ``TimeWindow.mergeWindows``: sort by start, merge each run of intersecting
        windows, and call ``callback(to_be_merged, merge_result)`` for every run of more than one
        distinct window. ``to_be_merged`` is sorted and free of duplicates."""
        groups: list[tuple[TimeWindow, dict[TimeWindow, None]]] = []
        cover: TimeWindow | None = None
        members: dict[TimeWindow, None] = {}
        for candidate in sorted(windows):
            if cover is None:
                cover, members = candidate, {candidate: None}
            elif cover.intersects(candidate):
                cover = cover.cover(candidate)
                members[candidate] = None
            else:
                groups.append((cover, members))
                cover, members = candidate, {candidate: None}
        if cover is not None:
            groups.append((cover, members))
        for result, merged in groups:
            if len(merged) > 1:
                callback(list(merged), result)


class GlobalWindow(Window):
    """The one window of :class:`~pyflow.api.windowing.GlobalWindows` (a singleton).

    >>> GlobalWindow.get() is GlobalWindow(), GlobalWindow.get().max_timestamp() == MAX_WATERMARK
    (True, True)
    """

    __slots__ = ()
    _instance: GlobalWindow | None = None

    def __new__(cls) -> GlobalWindow:
        if GlobalWindow._instance is None:
            GlobalWindow._instance = super().__new__(cls)
        return GlobalWindow._instance

    @classmethod
    def get(cls) -> GlobalWindow:
        return cls()

    def max_timestamp(self) -> int:
        return MAX_WATERMARK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GlobalWindow)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "GlobalWindow()"

    def __reduce__(self):
        return (GlobalWindow, ())


# -- the contracts the window operator implements -------------------------------------------------


class TriggerResult(enum.Enum):
    """What a trigger tells the window operator to do with a window (Flink's ``TriggerResult``):
    FIRE emits the window's contents, PURGE clears them (the window itself stays until its
    cleanup time)."""

    CONTINUE = (False, False)
    FIRE_AND_PURGE = (True, True)
    FIRE = (True, False)
    PURGE = (False, True)

    def is_fire(self) -> bool:
        return self.value[0]

    def is_purge(self) -> bool:
        return self.value[1]


class ReducingState(Protocol):
    """What ``TriggerContext.get_partitioned_state(ReducingStateDescriptor)`` returns: the state
    of the current key in the current window, folded with the descriptor's ``reduce_function``."""

    def get(self) -> Any:
        """The reduced value, ``None`` when empty."""

    def add(self, value: Any) -> None:
        """``value`` if empty, else ``reduce_function(current, value)``."""

    def clear(self) -> None:
        ...


class TriggerContext(abc.ABC):
    """What a trigger may do (Flink's ``Trigger.TriggerContext``), implemented by the window
    operator for the current key and window. Timers are per (key, window) and deduplicated;
    a timer fires ``trigger.on_event_time`` / ``on_processing_time`` with that window."""

    @abc.abstractmethod
    def get_current_processing_time(self) -> int:
        ...

    @abc.abstractmethod
    def get_current_watermark(self) -> int:
        ...

    @abc.abstractmethod
    def register_processing_time_timer(self, time: int) -> None:
        ...

    @abc.abstractmethod
    def register_event_time_timer(self, time: int) -> None:
        ...

    @abc.abstractmethod
    def delete_processing_time_timer(self, time: int) -> None:
        ...

    @abc.abstractmethod
    def delete_event_time_timer(self, time: int) -> None:
        ...

    @abc.abstractmethod
    def get_partitioned_state(self, descriptor: Any) -> ReducingState:
        """The trigger's state named by ``descriptor`` (a
        :class:`pyflow.state.descriptors.ReducingStateDescriptor` for the built-in triggers),
        scoped to the current key and window: the keyed state backend's state object with the
        window as its namespace."""


class OnMergeContext(TriggerContext):
    """The context of ``Trigger.on_merge`` (Flink's ``Trigger.OnMergeContext``): the window is
    the merge result; its state windows' trigger state must be folded into it first."""

    @abc.abstractmethod
    def merge_partitioned_state(self, descriptor: Any) -> None:
        """Fold the ``descriptor`` state of every merged window into the merge result's."""


class WindowAssignerContext(abc.ABC):
    """What an assigner may ask (Flink's ``WindowAssigner.WindowAssignerContext``)."""

    @abc.abstractmethod
    def get_current_processing_time(self) -> int:
        ...


# -- session windows in flight ------------------------------------------------------------------

MergeFunction = Callable[[Window, list, Window, list], None]


class MergingWindowSet:
    """The session windows in flight for one key, and the state window of each (Flink's
    ``MergingWindowSet``).

    When windows merge, their state is not moved: the merge result keeps the state *namespace*
    of one of the merged windows (its **state window**), and the others' state is merged into
    it. So a window's state lives under ``get_state_window(window)``, which is not the window
    itself once it has merged.

    Invariants: the in-flight windows never intersect each other (a new window that touches or
    overlaps any of them merges with them); every in-flight window maps to exactly one state
    window; state windows are distinct.

    The set is restored per key from the operator's keyed state, changed, and written back with
    :meth:`persist` (a plain ``dict`` window -> state window) when :attr:`changed`.

    ``assigner`` is the merging assigner; only its ``merge_windows(windows, callback)`` is used.

    >>> from types import SimpleNamespace
    >>> sessions = SimpleNamespace(merge_windows=TimeWindow.merge_windows)  # EventTimeSessionWindows
    >>> windows = MergingWindowSet(sessions)
    >>> windows.add_window(TimeWindow(0, 10), lambda *merge: None)
    TimeWindow(start=0, end=10)
    >>> windows.add_window(TimeWindow(5, 15), lambda *merge: print(merge))
    (TimeWindow(start=0, end=15), [TimeWindow(start=0, end=10)], TimeWindow(start=0, end=10), [])
    TimeWindow(start=0, end=15)
    >>> windows.persist()
    {TimeWindow(start=0, end=15): TimeWindow(start=0, end=10)}
    """

    def __init__(self, assigner: Any, state: Mapping[Window, Window] | None = None):
        self.assigner = assigner
        self._mapping: dict[Window, Window] = dict(state or {})
        self._initial = dict(self._mapping)

    @classmethod
    def restore(cls, assigner: Any, state: Mapping[Window, Window] | None) -> MergingWindowSet:
        return cls(assigner, state)

    def persist(self) -> dict[Window, Window]:
        """The mapping window -> state window, a new dict (store it in the operator's state)."""
        return dict(self._mapping)

    @property
    def changed(self) -> bool:
        """Whether the mapping differs from the one this set was restored from (Flink writes
        the state back only then)."""
        return self._mapping != self._initial

    def get_state_window(self, window: Window) -> Window | None:
        """The window whose namespace holds ``window``'s state; ``None`` if not in flight."""
        return self._mapping.get(window)

    def retire_window(self, window: Window) -> None:
        """Forget a window that was purged and cleaned up (after firing and purging it)."""
        if self._mapping.pop(window, None) is None:
            raise ValueError(f"Window {window!r} is not in the in-flight window set")

    def add_window(self, new_window: Window, merge_callback: MergeFunction) -> Window:
        """Add ``new_window``, merge it with every in-flight window it touches, and return the
        window it ended up in (the merge result, or ``new_window`` itself).

        For each merge, before returning, calls
        ``merge_callback(merge_result, merged_windows, state_window_result, merged_state_windows)``:

        * ``merge_result``: the new in-flight window, replacing ``merged_windows``;
        * ``merged_windows``: the in-flight windows merged away (never ``new_window``, which has
          no state yet), sorted; the operator deletes their triggers' timers
          (``trigger.clear``) and calls ``trigger.on_merge(merge_result)``;
        * ``state_window_result``: the state window of ``merge_result``, one of the merged
          windows' state windows; it keeps its state;
        * ``merged_state_windows``: the other merged windows' state windows, whose state the
          operator merges into ``state_window_result`` and then clears.

        No callback is made when ``new_window`` falls inside one in-flight window without
        extending it (nothing changes but the returned window).
        """
        merges: list[tuple[Window, list[Window]]] = []
        self.assigner.merge_windows(
            [*self._mapping, new_window], lambda merged, result: merges.append((result, list(merged))))

        result_window = new_window
        merged_new_window = False
        for merge_result, merged_windows in merges:
            if new_window in merged_windows:
                merged_windows.remove(new_window)
                merged_new_window = True
                result_window = merge_result
            # the merge result keeps the state window of (any) one of the merged windows
            state_window = self._mapping[merged_windows[0]]
            merged_state_windows = [self._mapping.pop(w) for w in merged_windows if w in self._mapping]
            self._mapping[merge_result] = state_window
            merged_state_windows.remove(state_window)
            # a new window inside one in-flight window merges nothing
            if not (len(merged_windows) == 1 and merged_windows[0] == merge_result):
                merge_callback(merge_result, merged_windows, state_window, merged_state_windows)

        if not merged_new_window:
            # a new, self-contained window; or one equal to an in-flight window, which keeps its
            # state window (Flink overwrites it with the window itself, losing merged state)
            self._mapping.setdefault(result_window, result_window)
        return result_window

    def __contains__(self, window: object) -> bool:
        return window in self._mapping

    def __iter__(self) -> Iterator[Window]:
        return iter(self._mapping)

    def __len__(self) -> int:
        return len(self._mapping)

    def __repr__(self) -> str:
        return f"MergingWindowSet({self._mapping!r})"


# -- late data (Flink's WindowOperator) ---------------------------------------------------------


def cleanup_time(window: Window, allowed_lateness: int, is_event_time: bool = True) -> int:
    """When the window's state is dropped: ``max_timestamp + allowed_lateness`` in event time,
    saturating at :data:`MAX_WATERMARK`; ``max_timestamp`` in processing time (Flink's
    ``WindowOperator.cleanupTime``). The operator registers a timer for it."""
    if not is_event_time:
        return window.max_timestamp()
    return min(window.max_timestamp() + allowed_lateness, MAX_WATERMARK)


def is_window_late(window: Window, watermark: int, allowed_lateness: int,
                   is_event_time: bool = True) -> bool:
    """Whether an event-time window is past its cleanup time: the operator then skips it for an
    incoming element (Flink's ``WindowOperator.isWindowLate``). Never in processing time."""
    return is_event_time and cleanup_time(window, allowed_lateness) <= watermark


def is_element_late(timestamp: int, watermark: int, allowed_lateness: int,
                    is_event_time: bool = True) -> bool:
    """Whether an element is late beyond the allowed lateness (Flink's
    ``WindowOperator.isElementLate``): ``timestamp + allowed_lateness <= watermark``. Flink sends
    an element to the late-data side output when it is late *and* every window it was assigned
    to was late (skipped)."""
    return is_event_time and min(timestamp + allowed_lateness, MAX_WATERMARK) <= watermark


def element_late_mask(timestamps: Any, watermark: int, allowed_lateness: int) -> np.ndarray:
    """:func:`is_element_late` for an array of event timestamps."""
    return _at_most(_int64(timestamps), watermark, watermark - allowed_lateness)


def window_late_mask(window_ends: Any, watermark: int, allowed_lateness: int) -> np.ndarray:
    """:func:`is_window_late` for event-time windows ``[start, end)`` given by an array of their
    ends (as :func:`assign_tumbling` and :func:`assign_sliding` return them)."""
    return _at_most(_int64(window_ends), watermark, watermark - allowed_lateness + 1)


def _at_most(values: np.ndarray, watermark: int, threshold: int) -> np.ndarray:
    # min(x + d, MAX) <= watermark: always at the final watermark, else x <= watermark - d
    if watermark >= MAX_WATERMARK or threshold > MAX_WATERMARK:
        return np.ones(len(values), dtype=bool)
    if threshold < MIN_WATERMARK:
        return np.zeros(len(values), dtype=bool)
    return values <= threshold


# -- vectorized assignment -----------------------------------------------------------------------


def window_start_with_offset(timestamp, offset: int, window_size: int):
    """Flink's ``TimeWindow.getWindowStartWithOffset`` for an int or an int64 array (floor
    modulo; see the module docstring)."""
    # (timestamp - offset + size) % size == (timestamp - offset) % size under floor modulo,
    # and the short form cannot overflow int64 for |offset| < size
    return timestamp - (timestamp - offset) % window_size


def _int64(timestamps: Any) -> np.ndarray:
    array = np.asarray(timestamps)
    if array.ndim != 1:
        raise ProgramError(f"window assignment needs a 1-d array of timestamps, got shape {array.shape}")
    if len(array) == 0:
        return np.empty(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise ProgramError(
            f"window assignment needs integer millisecond timestamps, got an array of {array.dtype}")
    return array.astype(np.int64, copy=False)


def assign_tumbling(timestamps: Any, size: int,
                    offset: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tumbling windows of ``size`` ms for every timestamp: ``(row_index, window_start,
    window_end)``, int64 arrays with one entry per row (``row_index`` is ``arange(n)``)."""
    ts = _int64(timestamps)
    starts = window_start_with_offset(ts, offset, size)
    return np.arange(len(ts), dtype=np.int64), starts, starts + size


def assign_sliding(timestamps: Any, size: int, slide: int,
                   offset: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sliding windows of ``size`` ms every ``slide`` ms for every timestamp: ``(row_index,
    window_start, window_end)``, int64 arrays with one entry per (row, window) pair.

    Rows stay in input order; each row is repeated once per window it falls in (``size / slide``
    times when the slide divides the size; ``ceil`` or ``floor`` of that otherwise; possibly
    zero times when ``slide > size``), its windows in Flink's order: latest start first.
    """
    ts = _int64(timestamps)
    n = len(ts)
    per_row = -(-size // slide)  # ceil: the most windows a timestamp can fall in
    last_start = window_start_with_offset(ts, offset, slide)
    if per_row == 1:
        keep = last_start > ts - size
        rows = np.flatnonzero(keep).astype(np.int64)
        starts = last_start[keep]
        return rows, starts, starts + size
    starts = last_start[:, None] - np.arange(per_row, dtype=np.int64)[None, :] * slide
    keep = starts > (ts - size)[:, None]
    rows = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], (n, per_row))[keep]
    starts = starts[keep]
    return rows, starts, starts + size
