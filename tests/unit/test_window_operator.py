"""WindowOperator (Flink's generic window operator), driven directly: batches with timestamps,
watermarks and a controllable processing-time clock in, captured rows with their timestamps out.

Every expected output is computed by hand from Flink's rules: a window fires when the watermark
passes its max timestamp (end - 1), its rows carry that max timestamp, a late element within the
allowed lateness fires the window again, and beyond it the element is dropped (or side-output).
"""

from __future__ import annotations

import random

import cloudpickle
import pytest

from pyflow.api.windowing import (
    MAX_WATERMARK, MIN_WATERMARK, CountTrigger, EventTimeSessionWindows, GlobalWindows,
    ProcessingTimeSessionWindows, PurgingTrigger, SlidingEventTimeWindows, TimeWindow, Trigger, TriggerResult,
    TumblingEventTimeWindows, TumblingProcessingTimeWindows,
)
from pyflow.errors import ProgramError, RecordError
from pyflow.runtime import records
from pyflow.runtime.network.events import Watermark
from pyflow.runtime.operators.base import OperatorContext, Output
from pyflow.runtime.operators.functions import OutputTag
from pyflow.runtime.operators.key_selector import KeySelector
from pyflow.runtime.operators.window_operator import (
    CONTENTS_STATE, MERGING_SETS_STATE, AggregateWindow, ProcessWindow, ReduceWindow, WindowOperator,
)
from pyflow.state import ValueStateDescriptor


class Capture(Output):
    """Rows with their timestamps, and watermarks, in the order the operator emitted them."""

    def __init__(self):
        self.events: list = []

    def collect(self, batch):
        ts = records.timestamps(batch)
        self.events += [("row", row, t) for row, t in zip(records.batch_to_rows(batch), ts.to_pylist())]

    def emit_watermark(self, watermark):
        self.events.append(("watermark", watermark.timestamp))

    def emit_watermark_status(self, status):
        pass

    @property
    def rows(self) -> list:
        return [(row, t) for kind, *rest in self.events if kind == "row" for row, t in [rest]]

    def take(self) -> list:
        rows, self.events = self.rows, []
        return rows


class SideCapture(Capture):
    """An output with side outputs, as the task's outputs have."""

    def __init__(self):
        super().__init__()
        self.side: list = []

    def collect_side(self, tag, batch):
        ts = records.timestamps(batch).to_pylist()
        self.side += [(tag, row, t) for row, t in zip(records.batch_to_rows(batch), ts)]


def window_operator(assigner, function, *, output=None, clock=None, **kwargs):
    op = WindowOperator("Window(test)", KeySelector(fields=(0,)), assigner, function=function, **kwargs)
    out = output if output is not None else Capture()
    ctx = OperatorContext("task", "Window(test)", 0, 1, 128)
    if clock is not None:
        ctx.processing_time = clock
    op.setup(ctx, out)
    op.open()
    return op, out


def feed(op, rows, timestamps=None):
    op.process_batch(records.with_timestamps(records.rows_to_batch(rows), timestamps))


def advance(op, watermark):
    """What the task does: set the operator's event time, then hand it the watermark."""
    op.ctx.current_watermark = watermark
    op.process_watermark(Watermark(watermark))


def sum_values(a, b):
    return (a[0], a[1] + b[1])


class SumAndCount:
    """An AggregateFunction: (sum, count) of the rows' values."""

    def create_accumulator(self):
        return (0, 0)

    def add(self, value, acc):
        return (acc[0] + value[1], acc[1] + 1)

    def get_result(self, acc):
        return acc

    def merge(self, a, b):
        return (a[0] + b[0], a[1] + b[1])


class Describe:
    """A ProcessWindowFunction: (key, start, end, the window's elements in arrival order)."""

    def process(self, key, context, elements):
        w = context.window()
        yield (key, w.start, w.end, list(elements))


class Values(Describe):
    """(key, start, end, the values of the window's (key, value) rows in arrival order)."""

    def process(self, key, context, elements):
        return super().process(key, context, [value for _, value in elements])


def no_state_left(op) -> bool:
    return not list(op._backend.keys(CONTENTS_STATE)) and not list(op._backend.keys(MERGING_SETS_STATE))


# -- time windows ---------------------------------------------------------------------------------


def test_tumbling_event_time_reduce_over_out_of_order_input():
    op, out = window_operator(TumblingEventTimeWindows.of(10), ReduceWindow(sum_values))
    feed(op, [("a", 1), ("a", 2), ("b", 5), ("a", 4)], [12, 3, 7, 9])
    advance(op, 8)
    assert out.events == [("watermark", 8)]
    advance(op, 9)  # [0, 10) ends: its max timestamp 9 is reached; outputs go before the watermark
    assert out.events == [("watermark", 8), ("row", ("a", 6), 9), ("row", ("b", 5), 9), ("watermark", 9)]
    out.events.clear()
    feed(op, [("a", 8), ("b", 1), ("a", 16)], [15, 19, 11])
    advance(op, 19)
    assert out.take() == [(("a", 25), 19), (("b", 1), 19)]  # keys never mix
    advance(op, 1000)
    assert out.take() == [] and no_state_left(op)
    assert op.num_late_records_dropped == 0


@pytest.mark.parametrize("seed", range(5))
def test_tumbling_windows_match_a_brute_force_count_over_random_disorder(seed):
    """Bounded out-of-orderness watermarks over random input, lateness 0: every window fires
    once with exactly the elements that arrived before the watermark passed its end; the others
    are counted as dropped."""
    rng = random.Random(seed)
    op, out = window_operator(TumblingEventTimeWindows.of(7), ReduceWindow(sum_values))
    expected: dict = {}
    dropped = 0
    watermark = MIN_WATERMARK
    for _ in range(40):
        rows, stamps = [], []
        for _ in range(rng.randint(0, 6)):
            key, ts = rng.choice("abc"), rng.randint(0, 120)
            rows.append((key, 1))
            stamps.append(ts)
            start = ts - ts % 7
            if start + 6 <= watermark:
                dropped += 1
            else:
                expected[(key, start)] = expected.get((key, start), 0) + 1
        if rows:
            feed(op, rows, stamps)
        if rng.random() < 0.5:
            watermark = max(watermark, rng.randint(0, 120))
            advance(op, watermark)
    advance(op, MAX_WATERMARK)
    got = {(row[0], ts - 6): row[1] for row, ts in out.rows}
    assert len(got) == len(out.rows)  # each (key, window) fired once
    assert got == expected and op.num_late_records_dropped == dropped
    assert no_state_left(op)


def test_sliding_event_time_aggregate_with_a_process_function():
    function = AggregateWindow(SumAndCount(), Describe())
    op, out = window_operator(SlidingEventTimeWindows.of(10, 5), function)
    feed(op, [("k", 1), ("k", 2)], [3, 7])  # 3 -> [-5,5) [0,10); 7 -> [0,10) [5,15)
    advance(op, 4)
    assert out.take() == [(("k", -5, 5, [(1, 1)]), 4)]
    feed(op, [("k", 3), ("k", 4)], [12, 6])  # 12 -> [5,15) [10,20); 6 -> [0,10) [5,15)
    advance(op, 100)
    assert out.take() == [
        (("k", 0, 10, [(7, 3)]), 9),
        (("k", 5, 15, [(9, 3)]), 14),
        (("k", 10, 20, [(3, 1)]), 19),
    ]
    assert no_state_left(op)


def test_sliding_element_with_some_windows_late_is_kept_in_the_others():
    op, out = window_operator(SlidingEventTimeWindows.of(10, 5), AggregateWindow(SumAndCount()))
    advance(op, 10)
    feed(op, [("k", 5)], [8])  # [0,10) is late (cleanup 9 <= 10), [5,15) is not
    advance(op, 20)
    assert out.take() == [((5, 1), 14)]
    assert op.num_late_records_dropped == 0


def test_allowed_lateness_fires_again_then_drops_and_counts():
    op, out = window_operator(TumblingEventTimeWindows.of(10), ReduceWindow(sum_values),
                              allowed_lateness_ms=5)
    feed(op, [("k", 1), ("k", 2)], [2, 5])
    advance(op, 9)
    assert out.take() == [(("k", 3), 9)]
    feed(op, [("k", 4)], [7])  # late, but within the lateness: fires at once with the update
    assert out.take() == [(("k", 7), 9)]
    advance(op, 12)
    feed(op, [("k", 8)], [1])
    assert out.take() == [(("k", 15), 9)]
    advance(op, 14)  # cleanup time 9 + 5: the window's state goes, nothing is emitted
    assert out.take() == [] and not list(op._backend.keys(CONTENTS_STATE))
    feed(op, [("k", 16), ("k", 32)], [3, 20])  # 3 is beyond the lateness; 20 is on time
    assert op.num_late_records_dropped == 1
    advance(op, 100)
    assert out.take() == [(("k", 32), 29)]
    assert op.late_records == [] and no_state_left(op)


def late_rows_of(op, out):
    if isinstance(out, SideCapture):
        return out.side
    return [("late", row, t) for batch in op.late_records
            for row, t in zip(records.batch_to_rows(batch), records.timestamps(batch).to_pylist())]


@pytest.mark.parametrize("output", [SideCapture, Capture], ids=["collect_side", "late_records"])
def test_elements_beyond_the_lateness_go_to_the_late_output(output):
    op, out = window_operator(TumblingEventTimeWindows.of(10), ReduceWindow(sum_values),
                              allowed_lateness_ms=5, late_output_tag=OutputTag("late"), output=output())
    feed(op, [("k", 1)], [2])
    advance(op, 20)
    assert out.take() == [(("k", 1), 9)]
    # 9 is beyond the lateness; 14 and 15 fall in [10, 20), which the watermark passed but whose
    # cleanup time (24) it did not: that window fires with every element, as in Flink
    feed(op, [("k", 2), ("j", 3), ("k", 4), ("k", 5)], [14, 22, 9, 15])
    assert late_rows_of(op, out) == [("late", ("k", 4), 9)]  # with its own timestamp
    assert op.num_late_records_dropped == 0  # side-output elements are not dropped (Flink)
    assert out.take() == [(("k", 2), 19), (("k", 7), 19)]
    advance(op, 100)
    assert out.take() == [(("j", 3), 29)]


# -- session windows ------------------------------------------------------------------------------


def test_session_windows_merge_out_of_order_elements():
    op, out = window_operator(EventTimeSessionWindows.with_gap(10), ProcessWindow(Values()))
    # u: 1 and 5 make [1, 15); 30 opens [30, 40); 20 opens [20, 30), which touches [30, 40)
    feed(op, [("u", 1), ("u", 30), ("v", 100), ("u", 5), ("u", 20)], [1, 30, 100, 5, 20])
    advance(op, 100)
    assert out.take() == [(("u", 1, 15, [1, 5]), 14), (("u", 20, 40, [30, 20]), 39)]
    advance(op, 200)
    assert out.take() == [(("v", 100, 110, [100]), 109)]
    assert no_state_left(op)


def test_a_late_element_bridging_two_sessions_yields_one_merged_result():
    op, out = window_operator(EventTimeSessionWindows.with_gap(10), ProcessWindow(Values()),
                              allowed_lateness_ms=20)
    feed(op, [("k", 0), ("k", 15)], [0, 15])  # sessions [0, 10) and [15, 25)
    advance(op, 12)
    assert out.take() == [(("k", 0, 10, [0]), 9)]  # fired, but kept for the allowed lateness
    feed(op, [("k", 7)], [7])  # late but within the lateness: [7, 17) joins both sessions
    advance(op, 30)
    assert out.take() == [(("k", 0, 25, [0, 15, 7]), 24)]
    advance(op, 44)  # cleanup time of [0, 25): 24 + 20
    assert out.take() == [] and no_state_left(op)
    feed(op, [("k", 5)], [5])  # its session [5, 15) is past its cleanup time
    assert op.num_late_records_dropped == 1
    advance(op, 1000)
    assert out.take() == [] and no_state_left(op)


def test_session_merging_merges_trigger_state():
    op, out = window_operator(EventTimeSessionWindows.with_gap(10), ProcessWindow(Values()),
                              trigger=CountTrigger.of(3))
    feed(op, [("k", 0), ("k", 20), ("k", 9)], [0, 20, 9])  # [0, 19) with count 2, [20, 30) with 1
    assert out.take() == []
    feed(op, [("k", 15)], [15])  # [15, 25) joins both: counts 2 + 1, then + 1 -> fires
    assert out.take() == [(("k", 0, 30, [0, 9, 20, 15]), 29)]
    advance(op, 29)  # cleanup: CountTrigger does not fire on time
    assert out.take() == [] and no_state_left(op)
    assert list(op._backend.keys("count")) == []


class NoMerge(Trigger):
    def on_element(self, element, timestamp, window, ctx):
        return TriggerResult.CONTINUE

    def on_event_time(self, time, window, ctx):
        return TriggerResult.CONTINUE

    def on_processing_time(self, time, window, ctx):
        return TriggerResult.CONTINUE

    def clear(self, window, ctx):
        pass


def test_sessions_need_a_trigger_that_can_merge():
    with pytest.raises(ProgramError, match=r"'Sessions'.*NoMerge\(\) cannot merge windows"):
        WindowOperator("Sessions", KeySelector(fields=(0,)), EventTimeSessionWindows.with_gap(10),
                       trigger=NoMerge(), function=ProcessWindow(Describe()))


# -- count windows --------------------------------------------------------------------------------


def test_tumbling_count_window_reduce_per_key():
    op, out = window_operator(GlobalWindows.create(), ReduceWindow(sum_values),
                              trigger=PurgingTrigger.of(CountTrigger.of(3)))
    feed(op, [("a", 1), ("b", 10), ("a", 2), ("a", 3), ("b", 20), ("a", 4), ("b", 30)])  # no timestamps
    assert out.take() == [(("a", 6), MAX_WATERMARK), (("b", 60), MAX_WATERMARK)]
    feed(op, [("a", 5), ("a", 6)])
    assert out.take() == [(("a", 15), MAX_WATERMARK)]
    advance(op, MAX_WATERMARK)  # the global window never ends
    assert out.take() == []


def test_sliding_count_window_evicts_all_but_the_last_elements():
    values = ProcessWindow(lambda key, ctx, xs: [[x[1] for x in xs]])
    op, out = window_operator(GlobalWindows.create(), values, trigger=CountTrigger.of(2), evictor_count=3)
    feed(op, [("k", i) for i in range(1, 8)])
    assert out.take() == [([1, 2], MAX_WATERMARK), ([2, 3, 4], MAX_WATERMARK), ([4, 5, 6], MAX_WATERMARK)]
    op._contents.set_current_namespace(op.assigner.assign_windows(None, None, None)[0])
    op._backend.set_current_key("k")
    assert [x[1] for x in op._contents.get()] == [4, 5, 6, 7]  # evicted elements left the window


def test_an_evictor_with_reduce_or_aggregate_is_not_yet_supported():
    for function in (ReduceWindow(sum_values), AggregateWindow(SumAndCount())):
        with pytest.raises(ProgramError, match="evictor .* is not yet supported; use process()"):
            WindowOperator("Count Window", KeySelector(fields=(0,)), GlobalWindows.create(),
                           trigger=CountTrigger.of(2), function=function, evictor_count=3)


# -- processing time ------------------------------------------------------------------------------


def test_tumbling_processing_time_windows_follow_the_clock():
    now = [1_003.0]
    op, out = window_operator(TumblingProcessingTimeWindows.of(10), ReduceWindow(sum_values),
                              clock=lambda: now[0])
    feed(op, [("a", 1), ("b", 2)])
    now[0] = 1_007.0
    feed(op, [("a", 3)])
    op.on_processing_time(now[0])
    assert out.take() == []
    now[0] = 1_012.0
    feed(op, [("a", 4)])  # [1010, 1020)
    op.on_processing_time(now[0])  # the timer at 1009 is due
    assert out.take() == [(("a", 4), 1_009), (("b", 2), 1_009)]
    now[0] = 1_019.0
    op.on_processing_time(now[0])
    assert out.take() == [(("a", 4), 1_019)]
    advance(op, MAX_WATERMARK)  # watermarks do not close processing-time windows
    assert out.take() == [] and no_state_left(op)


def test_processing_time_sessions_merge_and_drop_the_merged_windows_timers():
    now = [100.0]
    op, out = window_operator(ProcessingTimeSessionWindows.with_gap(10), ProcessWindow(Values()),
                              clock=lambda: now[0])
    feed(op, [("k", 1)])  # [100, 110)
    now[0] = 105.0
    feed(op, [("k", 2)])  # [105, 115): the session is [100, 115)
    now[0] = 110.0
    op.on_processing_time(now[0])  # the timer of [100, 110) was deleted by the merge
    assert out.take() == []
    now[0] = 114.0
    op.on_processing_time(now[0])
    assert out.take() == [(("k", 100, 115, [1, 2]), 114)]
    assert no_state_left(op)


# -- window functions -----------------------------------------------------------------------------


class CountFirings:
    """A rich ProcessWindowFunction with per-window and per-key state, and clear()."""

    def __init__(self):
        self.calls: list = []

    def open(self, runtime_context):
        self.calls.append("open")

    def close(self):
        self.calls.append("close")

    def process(self, key, context, elements):
        firings = context.window_state().get_state(ValueStateDescriptor("firings", default=0))
        firings.update(firings.value() + 1)
        total = context.global_state().get_state(ValueStateDescriptor("total", default=0))
        total.update(total.value() + 1)
        yield (key, context.window().start, len(elements), firings.value(), total.value(),
               context.current_watermark())

    def clear(self, context):
        self.calls.append(("clear", context.window()))
        context.window_state().get_state(ValueStateDescriptor("firings", default=0)).clear()


def test_process_window_function_context_state_and_lifecycle():
    function = CountFirings()
    op, out = window_operator(TumblingEventTimeWindows.of(10), ProcessWindow(function),
                              allowed_lateness_ms=10)
    assert function.calls == ["open"]
    feed(op, [("k", 1), ("k", 2)], [1, 2])
    advance(op, 9)
    feed(op, [("k", 3)], [3])  # a late firing of the same window
    feed(op, [("k", 4)], [15])
    advance(op, 30)
    assert out.take() == [(("k", 0, 2, 1, 1, 9), 9), (("k", 0, 3, 2, 2, 9), 9), (("k", 10, 1, 1, 3, 30), 19)]
    assert function.calls == ["open", ("clear", TimeWindow(0, 10)), ("clear", TimeWindow(10, 20))]
    assert not list(op._backend.keys("firings")) and list(op._backend.keys("total")) == ["k"]
    op.close()
    op.close()  # idempotent
    assert function.calls[-1] == "close" and function.calls.count("close") == 1


def test_reduce_with_a_process_window_function():
    def describe(key, context, reduced):
        return [(key, context.window().end, reduced[0][1])]

    op, out = window_operator(TumblingEventTimeWindows.of(10), ReduceWindow(sum_values, describe))
    feed(op, [("x", 2), ("x", 3), ("y", 4)], [0, 9, 10])
    advance(op, 100)
    assert out.take() == [(("x", 10, 5), 9), (("y", 20, 4), 19)]


def test_aggregate_needs_merge_for_sessions():
    class NoMergeCount:
        def create_accumulator(self):
            return 0

        def add(self, value, acc):
            return acc + 1

        def get_result(self, acc):
            return acc

    with pytest.raises(ProgramError, match="'Sessions': session windows merge .* NoMergeCount has no merge"):
        WindowOperator("Sessions", KeySelector(fields=(0,)), EventTimeSessionWindows.with_gap(10),
                       function=AggregateWindow(NoMergeCount()))
    op, out = window_operator(TumblingEventTimeWindows.of(10), AggregateWindow(NoMergeCount()))
    feed(op, [("k", 1), ("k", 2)], [0, 5])
    advance(op, 9)
    assert out.take() == [(2, 9)]  # merge is needed only when windows merge


def test_per_window_state_is_refused_for_merging_windows():
    op, _ = window_operator(EventTimeSessionWindows.with_gap(10), ProcessWindow(CountFirings()))
    feed(op, [("k", 1)], [0])
    with pytest.raises(ProgramError, match="Per-window state .* not allowed with merging windows"):
        advance(op, 100)


def test_the_operator_ships_with_cloudpickle():
    op = WindowOperator("Window", KeySelector(fields=(0,)), TumblingEventTimeWindows.of(10),
                        function=ReduceWindow(lambda a, b: (a[0], a[1] * b[1])), allowed_lateness_ms=3)
    copy = cloudpickle.loads(cloudpickle.dumps(op))
    out = Capture()
    copy.setup(OperatorContext("task", "Window", 0, 1, 128), out)
    copy.open()
    feed(copy, [("k", 2), ("k", 3)], [1, 2])
    advance(copy, 9)
    assert out.take() == [(("k", 6), 9)]
    assert copy.describe()["trigger"] == "EventTimeTrigger()"


# -- errors ---------------------------------------------------------------------------------------


def test_event_time_windows_need_timestamps():
    op, _ = window_operator(TumblingEventTimeWindows.of(10), ReduceWindow(sum_values))
    with pytest.raises(RecordError, match=r"'Window\(test\)' uses the event-time .*\('k', 1\) has no"):
        feed(op, [("k", 1)])
    with pytest.raises(RecordError, match=r"\('k', 2\) has no timestamp"):
        feed(op, [("k", 1), ("k", 2)], [5, MIN_WATERMARK])


def test_bad_arguments_are_program_errors():
    key = KeySelector(fields=(0,))
    tumbling = TumblingEventTimeWindows.of(10)
    with pytest.raises(ProgramError, match="must be a ReduceWindow, AggregateWindow or ProcessWindow"):
        WindowOperator("W", key, tumbling, function=sum_values)
    with pytest.raises(ProgramError, match="allowed lateness must be a non-negative"):
        WindowOperator("W", key, tumbling, function=ReduceWindow(sum_values), allowed_lateness_ms=-1)
    with pytest.raises(ProgramError, match="count must be a positive integer"):
        WindowOperator("W", key, tumbling, function=ProcessWindow(Describe()), evictor_count=0)
    with pytest.raises(ProgramError, match="got the class Describe, not an instance"):
        ProcessWindow(Describe)
    with pytest.raises(ProgramError, match="aggregate.. needs an AggregateFunction .* lacks create_acc"):
        AggregateWindow(object())
    with pytest.raises(ProgramError, match="trigger must be a Trigger instance .* lacks on_element"):
        WindowOperator("W", key, tumbling, trigger=object(), function=ReduceWindow(sum_values))
    with pytest.raises(ProgramError, match="late data output must be an OutputTag"):
        WindowOperator("W", key, tumbling, function=ReduceWindow(sum_values), late_output_tag=3)
    with pytest.raises(ProgramError, match="reduce.. needs a function of two values"):
        ReduceWindow(42)
    op, _ = window_operator(tumbling, ProcessWindow(lambda key, ctx, xs: len(xs)))
    feed(op, [("k", 1)], [1])
    with pytest.raises(ProgramError, match="returned int 1; it must yield its results"):
        advance(op, 9)
