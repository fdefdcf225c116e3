"""KeyedProcessFunction: keyed state per key, timers in timestamp order and once per key and time,
processing-time timers on a controllable clock (operator driven directly)."""

from __future__ import annotations

import pytest

from pyflow import KeyedProcessFunction, ProcessFunction, ProgramError
from pyflow.runtime import records
from pyflow.runtime.network.events import Watermark
from pyflow.runtime.operators.base import OperatorContext, Output
from pyflow.runtime.operators.functions import ProcessOperator
from pyflow.runtime.operators.key_selector import KeySelector
from pyflow.runtime.operators.keyed_process import KeyedProcessOperator
from pyflow.state import ListStateDescriptor, ValueStateDescriptor


class Capture(Output):
    def __init__(self):
        self.rows, self.watermarks = [], []

    def collect(self, batch):
        ts = records.timestamps(batch)
        self.rows += list(zip(records.batch_to_rows(batch), ts.to_pylist() if ts is not None else [None] * batch.num_rows))

    def emit_watermark(self, wm):
        self.watermarks.append(wm.timestamp)

    def emit_watermark_status(self, status):
        pass


def keyed_operator(function, clock=None):
    op = KeyedProcessOperator("Keyed Process", function, function.process_element, KeySelector(fields=(0,)))
    out = Capture()
    ctx = OperatorContext("t", "Keyed Process", 0, 1, 128)
    if clock is not None:
        ctx.processing_time = clock
    op.setup(ctx, out)
    op.open()
    return op, out


def batch(rows, ts=None):
    return records.with_timestamps(records.rows_to_batch(rows), ts)


class CountAndTimeout(KeyedProcessFunction):
    """Counts per key; an event-time timer 10 ms after each record emits the count once."""

    def open(self, ctx):
        self.count = ctx.get_state(ValueStateDescriptor("count", default=0))
        self.seen = ctx.get_state(ListStateDescriptor("seen"))

    def process_element(self, value, ctx):
        self.count.update(self.count.value() + 1)
        self.seen.add(value[1])
        ctx.timer_service().register_event_time_timer(ctx.timestamp() + 10)
        return []

    def on_timer(self, timestamp, ctx):
        yield (ctx.get_current_key(), timestamp, self.count.value(), list(self.seen.get()), ctx.time_domain())


def test_state_is_per_key_and_timers_fire_in_order_once_per_key_and_time():
    op, out = keyed_operator(CountAndTimeout())
    op.process_batch(batch([("a", 1), ("b", 2), ("a", 3)], [100, 105, 100]))  # a registers 110 twice
    op.process_watermark(Watermark(109))
    assert out.rows == [] and out.watermarks == [109]
    op.process_watermark(Watermark(200))
    assert out.rows == [(("a", 110, 2, [1, 3], "EVENT_TIME"), 110), (("b", 115, 1, [2], "EVENT_TIME"), 115)]
    op.process_watermark(Watermark(300))  # fired timers never fire again
    assert len(out.rows) == 2 and out.watermarks == [109, 200, 300]


class Reminder(KeyedProcessFunction):
    def process_element(self, value, ctx):
        ctx.timer_service().register_processing_time_timer(ctx.timer_service().current_processing_time() + 1000)
        yield value

    def on_timer(self, timestamp, ctx):
        yield ("reminder", ctx.get_current_key(), timestamp, ctx.time_domain())


def test_processing_time_timers_follow_the_operators_clock():
    now = [5_000.0]
    op, out = keyed_operator(Reminder(), clock=lambda: now[0])
    op.process_batch(batch([("x", 1)]))
    op.on_processing_time(now[0])
    assert out.rows == [(("x", 1), None)]
    now[0] = 5_999.0
    op.on_processing_time(now[0])
    assert len(out.rows) == 1
    now[0] = 6_000.0
    op.on_processing_time(now[0])
    assert out.rows[1] == (("reminder", "x", 6_000, "PROCESSING_TIME"), 6_000)


def test_timers_and_state_need_a_keyed_stream():
    class Timer(ProcessFunction):
        def process_element(self, value, ctx):
            ctx.timer_service().register_event_time_timer(1)

    op = ProcessOperator("Process", Timer(), Timer().process_element)
    op.setup(OperatorContext("t", "Process", 0, 1, 128), Capture())
    op.open()
    with pytest.raises(ProgramError, match="only supported on keyed streams"):
        op.process_batch(batch([1]))

    from pyflow.runtime.operators.functions import RuntimeContext

    with pytest.raises(ProgramError, match="Keyed state is only available on keyed streams"):
        RuntimeContext(OperatorContext("t", "Map", 0, 1, 128)).get_state(ValueStateDescriptor("v"))
