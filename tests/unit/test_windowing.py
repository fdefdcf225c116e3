"""Windows, assigners, triggers and the merging window set (pure logic, Flink's semantics).

Expectations are computed by hand (or, for random data, by the element-at-a-time path).
Triggers are driven through :class:`FakeTriggerContext`, an in-memory window-operator stand-in.
"""

from __future__ import annotations

import itertools
import pickle
import random
from datetime import timedelta

import numpy as np
import pytest

from pyflow.api.windowing import (
    MAX_WATERMARK, MIN_WATERMARK, ContinuousEventTimeTrigger, CountTrigger, DynamicEventTimeSessionWindows,
    EventTimeSessionWindows, EventTimeTrigger, GlobalWindow, GlobalWindows, NeverTrigger, OnMergeContext,
    ProcessingTimeSessionWindows, ProcessingTimeTrigger, PurgingTrigger, SessionWindowTimeGapExtractor,
    SlidingEventTimeWindows, SlidingProcessingTimeWindows, TimeWindow, Trigger, TriggerResult,
    TumblingEventTimeWindows, TumblingProcessingTimeWindows, WindowAssignerContext, to_millis,
)
from pyflow.errors import ProgramError
from pyflow.runtime.operators.windows import (
    MergingWindowSet, assign_sliding, assign_tumbling, cleanup_time, element_late_mask, is_element_late,
    is_window_late, window_late_mask, window_start_with_offset,
)

W = TimeWindow
CONTINUE, FIRE, PURGE, FIRE_AND_PURGE = (
    TriggerResult.CONTINUE, TriggerResult.FIRE, TriggerResult.PURGE, TriggerResult.FIRE_AND_PURGE)


# -- the window operator stand-in -----------------------------------------------------------------


class Clock(WindowAssignerContext):
    def __init__(self, now: int):
        self.now = now

    def get_current_processing_time(self) -> int:
        return self.now


class DictReducingState:
    def __init__(self, store: dict, key: tuple, reduce):
        self.store, self.key, self.reduce = store, key, reduce

    def get(self):
        return self.store.get(self.key)

    def add(self, value) -> None:
        current = self.store.get(self.key)
        self.store[self.key] = value if current is None else self.reduce(current, value)

    def clear(self) -> None:
        self.store.pop(self.key, None)


class FakeTriggerContext(OnMergeContext):
    """Timers as sets of (time, window), state as a dict (name, window) -> value. ``window`` is
    the window of the current call; ``merged_windows`` those merged into it (for on_merge)."""

    def __init__(self, watermark: int = MIN_WATERMARK, processing_time: int = 0):
        self.watermark = watermark
        self.processing_time = processing_time
        self.event_timers: set = set()
        self.processing_timers: set = set()
        self.state: dict = {}
        self.window = None
        self.merged_windows: list = []

    def at(self, window, merged_windows=()) -> FakeTriggerContext:
        self.window, self.merged_windows = window, list(merged_windows)
        return self

    def get_current_processing_time(self):
        return self.processing_time

    def get_current_watermark(self):
        return self.watermark

    def register_processing_time_timer(self, time):
        self.processing_timers.add((time, self.window))

    def register_event_time_timer(self, time):
        self.event_timers.add((time, self.window))

    def delete_processing_time_timer(self, time):
        self.processing_timers.discard((time, self.window))

    def delete_event_time_timer(self, time):
        self.event_timers.discard((time, self.window))

    def get_partitioned_state(self, descriptor):
        return DictReducingState(self.state, (descriptor.name, self.window), descriptor.reduce)

    def merge_partitioned_state(self, descriptor):
        target = self.get_partitioned_state(descriptor)
        for window in self.merged_windows:
            value = self.state.pop((descriptor.name, window), None)
            if value is not None:
                target.add(value)


# -- windows ----------------------------------------------------------------------------------------


def test_time_window_basics():
    w = W(0, 10)
    assert w.max_timestamp() == 9
    assert w.intersects(W(10, 20)) and W(10, 20).intersects(w)  # touching windows intersect
    assert w.intersects(W(-5, 0)) and w.intersects(W(3, 4))
    assert not w.intersects(W(11, 20)) and not w.intersects(W(-5, -1))
    assert w.cover(W(5, 15)) == W(0, 15) and W(20, 30).cover(w) == W(0, 30)
    assert sorted([W(5, 6), W(0, 10), W(0, 5)]) == [W(0, 5), W(0, 10), W(5, 6)]
    assert len({W(0, 10), W(0, 10), W(0, 11)}) == 2
    with pytest.raises(AttributeError):
        w.start = 3
    assert pickle.loads(pickle.dumps(w)) == w


def test_global_window_is_a_singleton():
    assert GlobalWindow() is GlobalWindow.get()
    assert GlobalWindow.get().max_timestamp() == MAX_WATERMARK == 2**63 - 1
    assert pickle.loads(pickle.dumps(GlobalWindow.get())) is GlobalWindow.get()
    assert GlobalWindow.get() == GlobalWindow() and len({GlobalWindow(), GlobalWindow.get()}) == 1
    assert GlobalWindows.create().assign_windows("x", None, None) == [GlobalWindow.get()]
    assert not GlobalWindows.create().is_event_time()
    assert isinstance(GlobalWindows.create().default_trigger(), NeverTrigger)


@pytest.mark.parametrize("timestamp,offset,size,start", [
    (0, 0, 10, 0), (9, 0, 10, 0), (10, 0, 10, 10), (11, 0, 10, 10),
    (-1, 0, 10, -10), (-10, 0, 10, -10), (-11, 0, 10, -20),
    (-15, 0, 10, -20),  # Flink's Java % gives -10 here, a window without the timestamp
    (5, 3, 10, 3), (3, 3, 10, 3), (2, 3, 10, -7), (13, 3, 10, 13),
    (6, -3, 10, -3), (7, -3, 10, 7), (-4, -3, 10, -13),
    (1_700_000_000_123, 0, 60_000, 1_699_999_980_000),
])
def test_window_start_with_offset(timestamp, offset, size, start):
    assert TimeWindow.get_window_start_with_offset(timestamp, offset, size) == start
    assert window_start_with_offset(np.array([timestamp]), offset, size).tolist() == [start]
    assert start <= timestamp < start + size


# -- assigners ----------------------------------------------------------------------------------


def test_tumbling_event_time_boundaries():
    assigner = TumblingEventTimeWindows.of(timedelta(seconds=5))
    assert assigner.assign_windows("a", 0, None) == [W(0, 5000)]
    assert assigner.assign_windows("a", 4999, None) == [W(0, 5000)]
    assert assigner.assign_windows("a", 5000, None) == [W(5000, 10000)]
    assert assigner.assign_windows("a", -1, None) == [W(-5000, 0)]
    assert assigner.assign_windows("a", -5000, None) == [W(-5000, 0)]
    assert assigner.assign_windows("a", -5001, None) == [W(-10000, -5000)]
    assert assigner.is_event_time() and not assigner.is_merging()
    assert isinstance(assigner.default_trigger(), EventTimeTrigger)


def test_tumbling_offsets():
    # days in UTC+8: offset -8 h
    days = TumblingEventTimeWindows.of(timedelta(days=1), timedelta(hours=-8))
    day, hour = 86_400_000, 3_600_000
    assert days.assign_windows(None, 0, None) == [W(-8 * hour, 16 * hour)]
    assert days.assign_windows(None, 16 * hour, None) == [W(16 * hour, day + 16 * hour)]
    assert days.assign_windows(None, 16 * hour - 1, None) == [W(-8 * hour, 16 * hour)]
    shifted = TumblingEventTimeWindows.of(10, 3)
    assert shifted.assign_windows(None, 2, None) == [W(-7, 3)]
    assert shifted.assign_windows(None, 3, None) == [W(3, 13)]
    assert shifted.assign_windows(None, -8, None) == [W(-17, -7)]


def test_sliding_event_time_windows_latest_first():
    assigner = SlidingEventTimeWindows.of(10, 5)
    assert assigner.assign_windows(None, 5, None) == [W(5, 15), W(0, 10)]
    assert assigner.assign_windows(None, 4, None) == [W(0, 10), W(-5, 5)]
    assert assigner.assign_windows(None, 0, None) == [W(0, 10), W(-5, 5)]
    assert assigner.assign_windows(None, -1, None) == [W(-5, 5), W(-10, 0)]
    assert assigner.assign_windows(None, -6, None) == [W(-10, 0), W(-15, -5)]
    assert isinstance(assigner.default_trigger(), EventTimeTrigger)


def test_sliding_with_a_slide_that_does_not_divide_the_size():
    assigner = SlidingEventTimeWindows.of(10, 3)
    assert assigner.assign_windows(None, 0, None) == [W(0, 10), W(-3, 7), W(-6, 4), W(-9, 1)]
    assert assigner.assign_windows(None, 1, None) == [W(0, 10), W(-3, 7), W(-6, 4)]
    assert assigner.assign_windows(None, 2, None) == [W(0, 10), W(-3, 7), W(-6, 4)]


def test_sliding_with_gaps_between_windows_and_offsets():
    hopping = SlidingEventTimeWindows.of(3, 5)  # slide > size: some timestamps fall in no window
    assert hopping.assign_windows(None, 0, None) == [W(0, 3)]
    assert hopping.assign_windows(None, 2, None) == [W(0, 3)]
    assert hopping.assign_windows(None, 3, None) == []
    assert hopping.assign_windows(None, 4, None) == []
    assert hopping.assign_windows(None, -3, None) == [W(-5, -2)]
    shifted = SlidingEventTimeWindows.of(10, 5, offset=2)
    assert shifted.assign_windows(None, 6, None) == [W(2, 12), W(-3, 7)]
    assert shifted.assign_windows(None, 7, None) == [W(7, 17), W(2, 12)]


def test_session_windows_assign_a_gap_long_window():
    assigner = EventTimeSessionWindows.with_gap(timedelta(seconds=10))
    assert assigner.assign_windows(None, 1000, None) == [W(1000, 11000)]
    assert assigner.assign_windows(None, -1, None) == [W(-1, 9999)]
    assert assigner.is_merging() and assigner.is_event_time()
    assert isinstance(assigner.default_trigger(), EventTimeTrigger)


def test_dynamic_session_gap():
    assigner = EventTimeSessionWindows.with_dynamic_gap(lambda element: element["gap"])
    assert isinstance(assigner, DynamicEventTimeSessionWindows) and assigner.is_merging()
    assert assigner.assign_windows({"gap": 5}, 100, None) == [W(100, 105)]
    assert assigner.assign_windows({"gap": timedelta(seconds=1)}, 100, None) == [W(100, 1100)]

    class ByLength(SessionWindowTimeGapExtractor):
        def extract(self, element):
            return len(element)

    assert EventTimeSessionWindows.with_dynamic_gap(ByLength()).assign_windows("abc", 0, None) == [W(0, 3)]
    processing = ProcessingTimeSessionWindows.with_dynamic_gap(len)
    assert processing.assign_windows("ab", None, Clock(50)) == [W(50, 52)]
    with pytest.raises(ProgramError, match=r"returned 0 for '': a session gap must be a positive duration"):
        EventTimeSessionWindows.with_dynamic_gap(len).assign_windows("", 0, None)
    with pytest.raises(ProgramError, match="got the class ByLength, not an instance"):
        EventTimeSessionWindows.with_dynamic_gap(ByLength)


def test_processing_time_assigners_use_the_operator_clock():
    clock = Clock(12_345)
    assert TumblingProcessingTimeWindows.of(1000).assign_windows("x", None, clock) == [W(12_000, 13_000)]
    assert SlidingProcessingTimeWindows.of(1000, 500).assign_windows("x", 1, clock) == [
        W(12_000, 13_000), W(11_500, 12_500)]
    assert ProcessingTimeSessionWindows.with_gap(100).assign_windows("x", None, clock) == [W(12_345, 12_445)]
    for assigner in (TumblingProcessingTimeWindows.of(1000), SlidingProcessingTimeWindows.of(1000, 500),
                     ProcessingTimeSessionWindows.with_gap(100)):
        assert not assigner.is_event_time()
        assert isinstance(assigner.default_trigger(), ProcessingTimeTrigger)


@pytest.mark.parametrize("assigner", [
    TumblingEventTimeWindows.of(10), SlidingEventTimeWindows.of(10, 5), EventTimeSessionWindows.with_gap(10),
    EventTimeSessionWindows.with_dynamic_gap(len),
])
@pytest.mark.parametrize("timestamp", [None, MIN_WATERMARK])
def test_event_time_assigners_need_timestamps(assigner, timestamp):
    with pytest.raises(ProgramError, match=f"{type(assigner).__name__} got a record without a timestamp"):
        assigner.assign_windows("x", timestamp, None)


# -- vectorized assignment -----------------------------------------------------------------------


def _per_element(assigner, timestamps):
    rows, starts, ends = [], [], []
    for i, ts in enumerate(timestamps.tolist()):
        for w in assigner.assign_windows(None, ts, None):
            rows.append(i)
            starts.append(w.start)
            ends.append(w.end)
    return rows, starts, ends


@pytest.mark.parametrize("assigner", [
    TumblingEventTimeWindows.of(1), TumblingEventTimeWindows.of(7), TumblingEventTimeWindows.of(1000, -300),
    TumblingEventTimeWindows.of(60_000, 59_999), SlidingEventTimeWindows.of(10, 5),
    SlidingEventTimeWindows.of(10, 3), SlidingEventTimeWindows.of(10, 10), SlidingEventTimeWindows.of(3, 5),
    SlidingEventTimeWindows.of(1000, 100, 37), SlidingEventTimeWindows.of(1000, 300, -299),
    SlidingEventTimeWindows.of(5, 1),
])
@pytest.mark.parametrize("seed", range(3))
def test_assign_batch_equals_per_element_assignment(assigner, seed):
    rng = np.random.default_rng(seed)
    timestamps = np.concatenate([
        rng.integers(-5000, 5000, 500), rng.integers(-10**15, 10**15, 200), np.arange(-25, 25)])
    rows, starts, ends = assigner.assign_batch(timestamps)
    assert rows.dtype == starts.dtype == ends.dtype == np.int64
    assert (rows.tolist(), starts.tolist(), ends.tolist()) == _per_element(assigner, timestamps)


def test_sliding_batch_repeats_rows_size_over_slide_times():
    rows, starts, ends = SlidingEventTimeWindows.of(timedelta(minutes=1), timedelta(seconds=15)).assign_batch(
        np.array([0, 59_999, 60_000], dtype=np.int64))
    assert rows.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert starts.tolist() == [0, -15_000, -30_000, -45_000, 45_000, 30_000, 15_000, 0,
                               60_000, 45_000, 30_000, 15_000]
    assert (ends - starts).tolist() == [60_000] * 12


def test_assign_batch_edge_inputs():
    for fn in (lambda t: assign_tumbling(t, 10), lambda t: assign_sliding(t, 10, 5)):
        rows, starts, ends = fn(np.array([], dtype=np.int64))
        assert len(rows) == len(starts) == len(ends) == 0
        rows, starts, ends = fn([])
        assert len(rows) == 0 and starts.dtype == np.int64
        assert fn(np.array([5], dtype=np.int32))[1].tolist() == fn([5])[1].tolist()
        with pytest.raises(ProgramError, match="integer millisecond timestamps, got an array of float64"):
            fn(np.array([1.5]))


# -- validation and durations ----------------------------------------------------------------------


@pytest.mark.parametrize("make,message", [
    (lambda: TumblingEventTimeWindows.of(-5),
     "TumblingEventTimeWindows.of(size=-5): size must be a positive duration"),
    (lambda: TumblingProcessingTimeWindows.of(0),
     "TumblingProcessingTimeWindows.of(size=0): size must be a positive duration"),
    (lambda: TumblingEventTimeWindows.of(timedelta(seconds=-1)),
     "TumblingEventTimeWindows.of(size=datetime.timedelta(days=-1, seconds=86399)): size must be a positive duration"),
    (lambda: TumblingEventTimeWindows.of(10, 10),
     "TumblingEventTimeWindows.of(size=10, offset=10): offset must satisfy abs(offset) < size (10 >= 10 ms)"),
    (lambda: TumblingEventTimeWindows.of(10, -12),
     "TumblingEventTimeWindows.of(size=10, offset=-12): offset must satisfy abs(offset) < size (12 >= 10 ms)"),
    (lambda: SlidingEventTimeWindows.of(10, 0),
     "SlidingEventTimeWindows.of(size=10, slide=0): slide must be a positive duration"),
    (lambda: SlidingProcessingTimeWindows.of(-1, 5),
     "SlidingProcessingTimeWindows.of(size=-1, slide=5): size must be a positive duration"),
    (lambda: SlidingEventTimeWindows.of(10, 5, 5),
     "SlidingEventTimeWindows.of(size=10, slide=5, offset=5): offset must satisfy abs(offset) < slide (5 >= 5 ms)"),
    (lambda: EventTimeSessionWindows.with_gap(0),
     "EventTimeSessionWindows.with_gap(gap=0): gap must be a positive duration"),
    (lambda: ProcessingTimeSessionWindows.with_gap(-3),
     "ProcessingTimeSessionWindows.with_gap(gap=-3): gap must be a positive duration"),
    (lambda: TumblingEventTimeWindows.of("5s"),
     "TumblingEventTimeWindows.of(size='5s'): expected a datetime.timedelta or integer milliseconds, got str '5s'"),
    (lambda: TumblingEventTimeWindows.of(5.0),
     "TumblingEventTimeWindows.of(size=5.0): expected a datetime.timedelta or integer milliseconds, got float 5.0"),
    (lambda: TumblingEventTimeWindows.of(True),
     "TumblingEventTimeWindows.of(size=True): expected a datetime.timedelta or integer milliseconds, got bool True"),
    (lambda: TumblingEventTimeWindows.of(10, None),
     "TumblingEventTimeWindows.of(size=10, offset=None): expected a datetime.timedelta or integer milliseconds"),
    (lambda: TumblingEventTimeWindows.of(timedelta(microseconds=1500)),
     "TumblingEventTimeWindows.of(size=datetime.timedelta(microseconds=1500)): "
     "datetime.timedelta(microseconds=1500) is not a whole number of milliseconds"),
    (lambda: CountTrigger.of(0), "CountTrigger.of(count=0): count must be a positive integer"),
    (lambda: CountTrigger.of(2.0), "CountTrigger.of(count=2.0): count must be a positive integer"),
    (lambda: PurgingTrigger.of(CountTrigger), "PurgingTrigger.of(trigger=<class"),
    (lambda: ContinuousEventTimeTrigger.of(0),
     "ContinuousEventTimeTrigger.of(interval=0): interval must be a positive duration"),
])
def test_validation_messages(make, message):
    with pytest.raises(ProgramError) as error:
        make()
    assert str(error.value).startswith(message)


def test_timedelta_and_int_milliseconds_are_equivalent():
    assert to_millis(timedelta(days=1, seconds=1, milliseconds=1), "x") == 86_401_001
    assert to_millis(timedelta(milliseconds=-3), "x") == -3
    assert to_millis(np.int64(7), "x") == 7 and type(to_millis(np.int64(7), "x")) is int
    pairs = [
        (TumblingEventTimeWindows.of(timedelta(seconds=5), timedelta(seconds=1)), TumblingEventTimeWindows.of(5000, 1000)),
        (TumblingProcessingTimeWindows.of(timedelta(minutes=1)), TumblingProcessingTimeWindows.of(60_000)),
        (SlidingEventTimeWindows.of(timedelta(seconds=10), timedelta(seconds=5)), SlidingEventTimeWindows.of(10_000, 5000)),
        (SlidingProcessingTimeWindows.of(timedelta(seconds=10), timedelta(seconds=5), timedelta(milliseconds=-1)),
         SlidingProcessingTimeWindows.of(10_000, 5000, -1)),
        (EventTimeSessionWindows.with_gap(timedelta(minutes=30)), EventTimeSessionWindows.with_gap(1_800_000)),
        (ProcessingTimeSessionWindows.with_gap(timedelta(milliseconds=1)), ProcessingTimeSessionWindows.with_gap(1)),
    ]
    for by_timedelta, by_int in pairs:
        assert by_timedelta == by_int and hash(by_timedelta) == hash(by_int)
        assert by_timedelta.assign_windows(None, 123_456, Clock(654_321)) == by_int.assign_windows(
            None, 123_456, Clock(654_321))
    assert TumblingEventTimeWindows.of(5000) != TumblingProcessingTimeWindows.of(5000)
    assert TumblingEventTimeWindows.of(5000) != TumblingEventTimeWindows.of(5000, 1)
    assert repr(TumblingEventTimeWindows.of(timedelta(seconds=5))) == "TumblingEventTimeWindows(size=5000, offset=0)"
    assert ContinuousEventTimeTrigger.of(timedelta(seconds=2)).interval == 2000


# -- the merging window set -------------------------------------------------------------------------


def _sessions(gap=10):
    return MergingWindowSet(EventTimeSessionWindows.with_gap(gap))


def _recording():
    calls = []
    return calls, lambda *args: calls.append(args)


def test_merge_windows_sorts_and_merges_runs():
    calls = []
    TimeWindow.merge_windows([W(20, 30), W(0, 10), W(5, 12), W(40, 50), W(12, 15), W(0, 10)],
                             lambda merged, result: calls.append((merged, result)))
    assert calls == [([W(0, 10), W(5, 12), W(12, 15)], W(0, 15))]
    calls.clear()
    TimeWindow.merge_windows([W(0, 10), W(10, 20), W(21, 30), W(25, 26)],
                             lambda merged, result: calls.append((merged, result)))
    assert calls == [([W(0, 10), W(10, 20)], W(0, 20)), ([W(21, 30), W(25, 26)], W(21, 30))]


def test_a_new_window_alone_is_its_own_state_window():
    windows = _sessions()
    calls, callback = _recording()
    assert windows.add_window(W(0, 10), callback) == W(0, 10)
    assert windows.add_window(W(30, 40), callback) == W(30, 40)
    assert calls == []
    assert windows.get_state_window(W(0, 10)) == W(0, 10)
    assert windows.persist() == {W(0, 10): W(0, 10), W(30, 40): W(30, 40)}


def test_an_overlapping_window_extends_the_session():
    windows = _sessions()
    calls, callback = _recording()
    windows.add_window(W(0, 10), callback)
    assert windows.add_window(W(5, 15), callback) == W(0, 15)
    # merged away: [0, 10) (the new window has no state); state stays in [0, 10)
    assert calls == [(W(0, 15), [W(0, 10)], W(0, 10), [])]
    assert windows.persist() == {W(0, 15): W(0, 10)}
    assert windows.add_window(W(15, 25), callback) == W(0, 25)  # touching merges
    assert calls[-1] == (W(0, 25), [W(0, 15)], W(0, 10), [])
    assert windows.get_state_window(W(0, 25)) == W(0, 10) and W(0, 15) not in windows


def test_a_window_inside_a_session_changes_nothing():
    windows = _sessions()
    calls, callback = _recording()
    windows.add_window(W(0, 10), callback)
    windows.add_window(W(5, 15), callback)
    calls.clear()
    assert windows.add_window(W(2, 12), callback) == W(0, 15)
    assert windows.add_window(W(0, 10), callback) == W(0, 15)
    assert calls == [] and windows.persist() == {W(0, 15): W(0, 10)}


def test_a_late_element_bridges_two_sessions():
    windows = _sessions()
    calls, callback = _recording()
    windows.add_window(W(0, 10), callback)
    windows.add_window(W(20, 30), callback)
    assert windows.add_window(W(10, 20), callback) == W(0, 30)
    assert calls == [(W(0, 30), [W(0, 10), W(20, 30)], W(0, 10), [W(20, 30)])]
    assert windows.persist() == {W(0, 30): W(0, 10)}


def test_bridging_merged_sessions_names_their_state_windows():
    windows = _sessions()
    calls, callback = _recording()
    for window in (W(0, 10), W(5, 15), W(30, 40), W(35, 45)):
        windows.add_window(window, callback)
    assert windows.persist() == {W(0, 15): W(0, 10), W(30, 45): W(30, 40)}
    calls.clear()
    assert windows.add_window(W(14, 31), callback) == W(0, 45)
    assert calls == [(W(0, 45), [W(0, 15), W(30, 45)], W(0, 10), [W(30, 40)])]
    assert windows.persist() == {W(0, 45): W(0, 10)}


def _reference_sessions(timestamps, gap):
    sessions = []
    for ts in sorted(timestamps):
        if sessions and ts <= sessions[-1][1]:
            sessions[-1][1] = max(sessions[-1][1], ts + gap)
            sessions[-1][2].append(ts)
        else:
            sessions.append([ts, ts + gap, [ts]])
    return {W(start, end): sorted(members) for start, end, members in sessions}


@pytest.mark.parametrize("timestamps", [[0, 10, 20, 35, 36], [0, 5, 30, 60, 25, 14], [3, 3, 3, 13, 24]])
def test_sessions_merge_alike_in_every_order(timestamps):
    gap = 10
    expected = _reference_sessions(timestamps, gap)
    for order in itertools.permutations(timestamps):
        windows = _sessions(gap)
        contents: dict = {}  # state window -> elements: the operator's window state

        def merge(result, merged_windows, state_window, merged_state_windows):
            assert result not in merged_windows
            assert all(w in windows for w in [result]) and not any(w in windows for w in merged_windows)
            assert state_window in contents
            for other in merged_state_windows:
                contents[state_window] += contents.pop(other)

        for ts in order:
            window = windows.add_window(W(ts, ts + gap), merge)
            contents.setdefault(windows.get_state_window(window), []).append(ts)
        mapping = windows.persist()
        assert set(mapping) == set(expected)
        assert {w: sorted(contents[mapping[w]]) for w in mapping} == expected
        assert len(set(mapping.values())) == len(mapping) == len(contents)


def test_an_equal_window_keeps_its_merged_state_window():
    # with dynamic gaps a new window can equal a merged one; its state must stay where it is
    windows = MergingWindowSet(EventTimeSessionWindows.with_dynamic_gap(lambda gap: gap))
    calls, callback = _recording()
    windows.add_window(W(0, 5), callback)
    assert windows.add_window(W(3, 10), callback) == W(0, 10)
    assert windows.add_window(W(0, 10), callback) == W(0, 10)
    assert windows.persist() == {W(0, 10): W(0, 5)} and len(calls) == 1


def test_a_new_window_covering_a_session_takes_over_its_state_window():
    windows = MergingWindowSet(EventTimeSessionWindows.with_dynamic_gap(lambda gap: gap))
    calls, callback = _recording()
    windows.add_window(W(2, 5), callback)
    assert windows.add_window(W(0, 10), callback) == W(0, 10)
    assert calls == [(W(0, 10), [W(2, 5)], W(2, 5), [])]
    assert windows.persist() == {W(0, 10): W(2, 5)}


def test_retire_persist_and_restore():
    windows = _sessions()
    assert not windows.changed
    windows.add_window(W(0, 10), lambda *a: None)
    windows.add_window(W(5, 15), lambda *a: None)
    windows.add_window(W(50, 60), lambda *a: None)
    assert windows.changed
    state = windows.persist()
    restored = MergingWindowSet.restore(EventTimeSessionWindows.with_gap(10),
                                        pickle.loads(pickle.dumps(state)))
    assert not restored.changed and restored.persist() == state
    assert restored.get_state_window(W(0, 15)) == W(0, 10)
    restored.retire_window(W(0, 15))
    assert restored.changed and restored.persist() == {W(50, 60): W(50, 60)}
    assert restored.get_state_window(W(0, 15)) is None
    with pytest.raises(ValueError, match=r"TimeWindow\(start=0, end=15\) is not in the in-flight window set"):
        restored.retire_window(W(0, 15))
    state[W(99, 100)] = W(99, 100)
    assert W(99, 100) not in windows  # persist() is a copy


# -- triggers ---------------------------------------------------------------------------------------


def test_trigger_result_flags():
    assert [(r.is_fire(), r.is_purge()) for r in (CONTINUE, FIRE, PURGE, FIRE_AND_PURGE)] == [
        (False, False), (True, False), (False, True), (True, True)]


def test_event_time_trigger():
    trigger, window = EventTimeTrigger.create(), W(0, 10)
    ctx = FakeTriggerContext(watermark=5).at(window)
    assert trigger.on_element("a", 3, window, ctx) == CONTINUE
    assert ctx.event_timers == {(9, window)}
    assert trigger.on_event_time(8, window, ctx) == CONTINUE
    assert trigger.on_processing_time(9, window, ctx) == CONTINUE
    assert trigger.on_event_time(9, window, ctx) == FIRE
    ctx.watermark = 9  # watermark at the window end: a late element within lateness fires at once
    assert trigger.on_element("b", 2, window, ctx) == FIRE
    trigger.clear(window, ctx)
    assert ctx.event_timers == set()
    assert trigger.can_merge()
    ctx.at(W(0, 20), [W(0, 10), W(10, 20)])
    trigger.on_merge(W(0, 20), ctx)
    assert ctx.event_timers == {(19, W(0, 20))}
    ctx.watermark = 19
    trigger.on_merge(W(5, 20), ctx.at(W(5, 20)))  # watermark already past: no timer
    assert (19, W(5, 20)) not in ctx.event_timers


def test_processing_time_trigger():
    trigger, window = ProcessingTimeTrigger.create(), W(100, 200)
    ctx = FakeTriggerContext(processing_time=150).at(window)
    assert trigger.on_element("a", None, window, ctx) == CONTINUE
    assert ctx.processing_timers == {(199, window)} and ctx.event_timers == set()
    assert trigger.on_event_time(199, window, ctx) == CONTINUE
    assert trigger.on_processing_time(199, window, ctx) == FIRE
    trigger.clear(window, ctx)
    assert ctx.processing_timers == set()
    trigger.on_merge(W(100, 300), ctx.at(W(100, 300)))
    assert ctx.processing_timers == {(299, W(100, 300))}
    ctx.processing_time = 400
    trigger.on_merge(W(100, 350), ctx.at(W(100, 350)))
    assert (349, W(100, 350)) not in ctx.processing_timers


def test_count_trigger_fires_every_n_elements_per_window():
    trigger = CountTrigger.of(3)
    ctx = FakeTriggerContext()
    a, b = W(0, 10), W(10, 20)
    results = [trigger.on_element(i, i, a, ctx.at(a)) for i in range(7)]
    assert results == [CONTINUE, CONTINUE, FIRE, CONTINUE, CONTINUE, FIRE, CONTINUE]
    assert trigger.on_element("x", 10, b, ctx.at(b)) == CONTINUE
    assert ctx.state == {("count", a): 1, ("count", b): 1}
    assert trigger.on_event_time(9, a, ctx.at(a)) == CONTINUE
    assert trigger.on_processing_time(9, a, ctx.at(a)) == CONTINUE
    trigger.clear(a, ctx.at(a))
    assert ctx.state == {("count", b): 1}
    assert repr(trigger) == "CountTrigger(3)"


def test_count_trigger_merges_counts():
    trigger = CountTrigger.of(3)
    ctx = FakeTriggerContext()
    a, b, merged = W(0, 10), W(10, 20), W(0, 20)
    trigger.on_element(1, 1, a, ctx.at(a))
    trigger.on_element(2, 11, b, ctx.at(b))
    assert trigger.can_merge()
    trigger.on_merge(merged, ctx.at(merged, [a, b]))
    assert ctx.state == {("count", merged): 2}
    assert trigger.on_element(3, 5, merged, ctx.at(merged)) == FIRE


def test_purging_trigger_turns_fires_into_fire_and_purge():
    trigger = PurgingTrigger.of(CountTrigger.of(2))
    ctx = FakeTriggerContext()
    window = GlobalWindow.get()
    assert [trigger.on_element(i, None, window, ctx.at(window)) for i in range(4)] == [
        CONTINUE, FIRE_AND_PURGE, CONTINUE, FIRE_AND_PURGE]
    assert trigger.can_merge()
    trigger.on_element(9, None, window, ctx.at(window))
    trigger.clear(window, ctx.at(window))
    assert ctx.state == {}
    assert repr(trigger) == "PurgingTrigger(CountTrigger(2))"

    timed = PurgingTrigger.of(EventTimeTrigger.create())
    window = W(0, 10)
    assert timed.on_element("a", 1, window, ctx.at(window)) == CONTINUE
    assert timed.on_event_time(9, window, ctx) == FIRE_AND_PURGE
    assert timed.on_event_time(5, window, ctx) == CONTINUE
    assert PurgingTrigger.of(ProcessingTimeTrigger()).on_processing_time(9, window, ctx) == FIRE_AND_PURGE
    timed.on_merge(W(0, 20), ctx.at(W(0, 20)))
    assert (19, W(0, 20)) in ctx.event_timers
    assert not PurgingTrigger.of(NeverTrigger()).can_merge()


def test_continuous_event_time_trigger():
    trigger = ContinuousEventTimeTrigger.of(10)
    window = W(0, 35)
    ctx = FakeTriggerContext(watermark=0).at(window)
    assert trigger.on_element("a", 3, window, ctx) == CONTINUE
    assert ctx.event_timers == {(34, window), (10, window)}
    assert trigger.on_element("b", 17, window, ctx) == CONTINUE  # next fire already set
    assert ctx.state == {("fire-time", window): 10}
    assert trigger.on_event_time(10, window, ctx) == FIRE
    assert ctx.state == {("fire-time", window): 20} and (20, window) in ctx.event_timers
    assert trigger.on_event_time(15, window, ctx) == CONTINUE
    assert trigger.on_event_time(20, window, ctx) == FIRE
    assert trigger.on_event_time(30, window, ctx) == FIRE
    assert ctx.state == {("fire-time", window): 34}  # capped at the window's max timestamp
    assert trigger.on_event_time(34, window, ctx) == FIRE
    trigger.clear(window, ctx)
    assert ctx.state == {} and (34, window) not in ctx.event_timers
    ctx.watermark = 40
    assert trigger.on_element("late", 5, window, ctx) == FIRE


def test_never_trigger_and_custom_triggers():
    never, ctx = NeverTrigger(), FakeTriggerContext()
    window = GlobalWindow.get()
    assert never.on_element("a", None, window, ctx) == CONTINUE
    assert never.on_event_time(MAX_WATERMARK, window, ctx) == CONTINUE
    assert never.on_processing_time(1, window, ctx) == CONTINUE
    never.on_merge(window, ctx)
    never.clear(window, ctx)

    class Incomplete(Trigger):
        def on_element(self, element, timestamp, window, ctx):
            return FIRE

    with pytest.raises(TypeError):
        Incomplete()

    class FireOnRed(Incomplete):
        def on_event_time(self, time, window, ctx):
            return CONTINUE

        def on_processing_time(self, time, window, ctx):
            return CONTINUE

        def clear(self, window, ctx):
            pass

    assert FireOnRed().on_element("red", 0, window, ctx) == FIRE and not FireOnRed().can_merge()
    with pytest.raises(ProgramError, match="FireOnRed does not support merging windows"):
        FireOnRed().on_merge(W(0, 1), ctx)


# -- late data ------------------------------------------------------------------------------------


def test_cleanup_time_and_lateness():
    window = W(0, 10)
    assert cleanup_time(window, 0) == 9 and cleanup_time(window, 5) == 14
    assert cleanup_time(window, 5, is_event_time=False) == 9
    assert cleanup_time(W(0, MAX_WATERMARK), 10) == MAX_WATERMARK  # saturates
    assert cleanup_time(GlobalWindow.get(), 1000) == MAX_WATERMARK
    assert not is_window_late(window, 8, 0) and is_window_late(window, 9, 0)
    assert not is_window_late(window, 13, 5) and is_window_late(window, 14, 5)
    assert not is_window_late(window, 100, 5, is_event_time=False)
    assert not is_window_late(GlobalWindow.get(), MAX_WATERMARK - 1, 0)
    assert is_window_late(GlobalWindow.get(), MAX_WATERMARK, 0)
    assert not is_element_late(9, 8, 0) and is_element_late(9, 9, 0) and is_element_late(3, 9, 0)
    assert not is_element_late(5, 9, 5) and is_element_late(4, 9, 5)
    assert not is_element_late(MAX_WATERMARK - 1, MAX_WATERMARK - 1, 10)
    assert is_element_late(MAX_WATERMARK - 1, MAX_WATERMARK, 10)
    assert not is_element_late(0, 100, 0, is_event_time=False)


@pytest.mark.parametrize("watermark", [MIN_WATERMARK, -20, 0, 7, 10**15, MAX_WATERMARK - 1, MAX_WATERMARK])
@pytest.mark.parametrize("lateness", [0, 3, 1000, MAX_WATERMARK])
def test_late_masks_equal_the_scalar_rules(watermark, lateness):
    values = np.array([MIN_WATERMARK, -30, -1, 0, 4, 7, 8, 10, 11, 10**15, MAX_WATERMARK - 5, MAX_WATERMARK],
                      dtype=np.int64)
    assert element_late_mask(values, watermark, lateness).tolist() == [
        is_element_late(int(v), watermark, lateness) for v in values]
    ends = values[1:]  # window [end - 10, end)
    assert window_late_mask(ends, watermark, lateness).tolist() == [
        is_window_late(W(int(e) - 10, int(e)), watermark, lateness) for e in ends]


def test_sliding_batch_on_dense_random_data():
    rng = random.Random(7)
    assigner = SlidingEventTimeWindows.of(rng.randint(2, 50), rng.randint(1, 20))
    timestamps = np.array([rng.randint(-1000, 1000) for _ in range(2000)], dtype=np.int64)
    rows, starts, ends = assigner.assign_batch(timestamps)
    assert (rows.tolist(), starts.tolist(), ends.tolist()) == _per_element(assigner, timestamps)
    assert np.all((starts <= timestamps[rows]) & (timestamps[rows] < ends))
