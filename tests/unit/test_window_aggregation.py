"""Vectorized window aggregations, driven directly: hand-computed windows over out-of-order input."""

from __future__ import annotations

import pytest

from pyflow import ProgramError, RecordError, SlidingEventTimeWindows, TumblingEventTimeWindows, TumblingProcessingTimeWindows
from pyflow.runtime import records
from pyflow.runtime.network.events import Watermark
from pyflow.runtime.operators.base import OperatorContext, Output
from pyflow.runtime.operators.key_selector import KeySelector
from pyflow.runtime.operators.window_aggregation import WindowAggregationOperator


class Capture(Output):
    def __init__(self):
        self.rows = []

    def collect(self, batch):
        ts = records.timestamps(batch).to_pylist()
        self.rows += [dict(r, _ts=t) for r, t in zip(records.batch_to_rows(batch), ts)]

    def emit_watermark(self, wm):
        pass

    def emit_watermark_status(self, status):
        pass


def operator(assigner, aggregations, key=("k",), clock=None):
    op = WindowAggregationOperator("Window Aggregation", KeySelector(fields=key), assigner, aggregations)
    out = Capture()
    ctx = OperatorContext("t", "w", 0, 1, 128)
    if clock:
        ctx.processing_time = clock
    op.setup(ctx, out)
    op.open()
    return op, out


def feed(op, rows, ts):
    op.process_batch(records.with_timestamps(records.rows_to_batch(rows), ts))


def advance(op, wm):
    op.ctx.current_watermark = wm
    op.process_watermark(Watermark(wm))


def test_tumbling_count_sum_mean_over_out_of_order_input():
    op, out = operator(TumblingEventTimeWindows.of(10), [("count", None), ("sum", "v")])
    feed(op, [{"k": "a", "v": 1}, {"k": "a", "v": 2}, {"k": "b", "v": 4}, {"k": "a", "v": 8}], [3, 12, 5, 9])
    advance(op, 8)
    assert out.rows == []  # window [0, 10) ends at max timestamp 9
    feed(op, [{"k": "a", "v": 16}], [7])  # out of order, still on time
    advance(op, 9)
    by_key = {r["k"]: r for r in out.rows}
    assert by_key["a"] == {"k": "a", "window_start": 0, "window_end": 10, "count": 3, "v": 1 + 8 + 16, "_ts": 9}
    assert by_key["b"]["count"] == 1 and by_key["b"]["v"] == 4
    out.rows.clear()
    advance(op, 2**63 - 1)
    assert out.rows == [{"k": "a", "window_start": 10, "window_end": 20, "count": 1, "v": 2, "_ts": 19}]


def test_two_aggregates_of_one_field_would_share_a_column_name():
    with pytest.raises(ProgramError, match="both produce the column 'v'"):
        operator(TumblingEventTimeWindows.of(10), [("sum", "v"), ("mean", "v")])[0].process_batch(
            records.with_timestamps(records.rows_to_batch([{"k": "a", "v": 1}]), [1]))


def test_mean():
    op, out = operator(TumblingEventTimeWindows.of(10), [("mean", "v")])
    feed(op, [{"k": "a", "v": 1}, {"k": "a", "v": 2}], [1, 2])
    advance(op, 100)
    assert out.rows[0]["v"] == pytest.approx(1.5)


def test_sliding_windows_count_a_row_in_each_window():
    op, out = operator(SlidingEventTimeWindows.of(10, 5), [("count", None), ("max", "v")])
    feed(op, [{"k": "a", "v": 1}, {"k": "a", "v": 7}], [7, 12])
    advance(op, 2**63 - 1)
    got = sorted((r["window_start"], r["window_end"], r["count"], r["v"]) for r in out.rows)
    assert got == [(0, 10, 1, 1), (5, 15, 2, 7), (10, 20, 1, 7)]


def test_late_rows_are_counted_not_silently_mixed_in():
    op, out = operator(TumblingEventTimeWindows.of(10), [("count", None)])
    feed(op, [{"k": "a"}], [1])
    advance(op, 9)
    feed(op, [{"k": "a"}, {"k": "a"}], [2, 15])  # ts 2: its window fired already
    advance(op, 2**63 - 1)
    assert [(r["window_start"], r["count"]) for r in out.rows] == [(0, 1), (10, 1)]
    assert op.num_late_records_dropped == 1


def test_window_all_and_processing_time():
    now = [1_000.0]
    op, out = operator(TumblingProcessingTimeWindows.of(100), [("count", None)], key=(), clock=lambda: now[0])
    op.process_batch(records.rows_to_batch([{"v": 1}, {"v": 2}]))
    op.on_processing_time(now[0])
    assert out.rows == []
    now[0] = 1_100.0
    op.on_processing_time(now[0])
    assert out.rows == [{"window_start": 1_000, "window_end": 1_100, "count": 2, "_ts": 1_099}]


def test_errors_name_the_cause():
    op, _ = operator(TumblingEventTimeWindows.of(10), [("sum", "s")])
    with pytest.raises(RecordError, match="cannot compute sum\\('s'\\).*type string"):
        feed(op, [{"k": "a", "s": "x"}], [1])
    op2, _ = operator(TumblingEventTimeWindows.of(10), [("count", None)])
    with pytest.raises(RecordError, match="event-time windows but its records have no timestamps"):
        op2.process_batch(records.rows_to_batch([{"k": "a"}]))
