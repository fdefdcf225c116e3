"""Watermark generation and the valve that combines input channels (pure)."""

from __future__ import annotations

import datetime

import pyarrow as pa
import pytest

from pyflow import ProgramError, RecordError, WatermarkStrategy
from pyflow.runtime import records
from pyflow.runtime.network.events import MAX_WATERMARK, MIN_WATERMARK, Watermark, WatermarkStatus
from pyflow.runtime.operators.base import OperatorContext, Output
from pyflow.runtime.watermark_valve import WatermarkValve


# ---- the valve -------------------------------------------------------------------------------------


def test_the_task_watermark_is_the_minimum_over_channels():
    v = WatermarkValve(2)
    assert v.input_watermark(0, 100) is None  # channel 1 has none yet
    assert v.input_watermark(1, 50) == 50
    assert v.input_watermark(1, 200) == 100
    assert v.input_watermark(0, 150) == 150
    assert v.input_watermark(0, 120) is None  # a channel never goes back


def test_idle_channels_do_not_hold_the_watermark_back():
    v = WatermarkValve(2)
    v.input_watermark(0, 10)
    assert v.input_status(0, idle=True) == (None, None)
    assert v.input_watermark(1, 500) == 500
    # channel 0 active again behind the output: it waits until it catches up
    assert v.input_status(0, idle=False) == (None, None)
    assert v.input_watermark(0, 20) is None
    assert v.input_watermark(1, 900) == 900
    assert v.input_watermark(0, 950) is None  # 950 >= 900: rejoins
    assert v.input_watermark(1, 1000) == 950


def test_all_channels_idle_makes_the_task_idle_and_back():
    v = WatermarkValve(2)
    v.input_status(0, idle=True)
    assert v.input_status(1, idle=True) == (None, True)
    assert v.input_status(1, idle=False) == (None, False)


def test_a_finished_input_sends_the_maximum():
    v = WatermarkValve(2)
    v.input_watermark(0, MAX_WATERMARK)
    assert v.input_watermark(1, 7) == 7
    assert v.input_watermark(1, MAX_WATERMARK) == MAX_WATERMARK


# ---- the timestamp / watermark operator ---------------------------------------------------------------


class Capture(Output):
    def __init__(self):
        self.items = []

    def collect(self, batch):
        self.items.append(("batch", records.batch_to_rows(batch), records.timestamps(batch).to_pylist()))

    def emit_watermark(self, wm):
        self.items.append(("wm", wm.timestamp))

    def emit_watermark_status(self, status):
        self.items.append(("idle", status.idle))


def operator(strategy):
    op = strategy.create_operator("Timestamps/Watermarks")
    out = Capture()
    op.setup(OperatorContext("t", "op", 0, 1, 128), out)
    op.open()
    return op, out


def test_bounded_out_of_orderness_from_a_field():
    op, out = operator(WatermarkStrategy.for_bounded_out_of_orderness(datetime.timedelta(seconds=5))
                       .with_timestamp_assigner("ts"))
    op.process_batch(records.rows_to_batch([{"ts": 10_000, "v": 1}, {"ts": 12_000, "v": 2}, {"ts": 9_000, "v": 3}]))
    op.on_processing_time(0)
    assert out.items == [("batch", [{"ts": 10_000, "v": 1}, {"ts": 12_000, "v": 2}, {"ts": 9_000, "v": 3}],
                          [10_000, 12_000, 9_000]), ("wm", 12_000 - 5_000 - 1)]
    op.on_processing_time(0)  # no new data: no new watermark
    assert len(out.items) == 2


def test_monotonous_timestamps_from_arrow_timestamps_and_from_a_function():
    op, out = operator(WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner("at"))
    at = pa.array([1_000, 2_000], pa.timestamp("ms"))
    op.process_batch(pa.record_batch({"at": at, "v": [1, 2]}))
    op.on_processing_time(0)
    assert out.items[0][2] == [1_000, 2_000] and out.items[1] == ("wm", 1_999)
    op2, out2 = operator(WatermarkStrategy.for_monotonous_timestamps()
                         .with_timestamp_assigner(lambda row, _: row[1] * 1000))
    op2.process_batch(records.rows_to_batch([("a", 3), ("b", 4)]))
    assert out2.items[0] == ("batch", [("a", 3), ("b", 4)], [3_000, 4_000])


def test_idleness_and_reactivation(monkeypatch):
    import pyflow.runtime.operators.timestamps as module

    clock = [100.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    op, out = operator(WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner("ts")
                       .with_idleness(datetime.timedelta(seconds=2)))
    op.process_batch(records.rows_to_batch([{"ts": 5}]))
    clock[0] += 1.9
    op.on_processing_time(0)
    assert ("idle", True) not in out.items
    clock[0] += 0.2
    op.on_processing_time(0)
    assert out.items[-1] == ("idle", True)
    op.process_batch(records.rows_to_batch([{"ts": 6}]))
    assert ("idle", False) in out.items


def test_a_record_without_a_timestamp_names_the_operator():
    op, _ = operator(WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner("ts"))
    with pytest.raises(RecordError, match="A record without a timestamp reached 'Timestamps/Watermarks'.*'ts'"):
        op.process_batch(records.rows_to_batch([{"ts": 1, "v": 1}, {"ts": None, "v": 2}]))
    op2, _ = operator(WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner("v"))
    with pytest.raises(RecordError, match="timestamp field 'v' .* has type string"):
        op2.process_batch(records.rows_to_batch([{"v": "x"}]))


def test_strategy_validation():
    with pytest.raises(ProgramError, match="must be a non-negative duration"):
        WatermarkStrategy.for_bounded_out_of_orderness(-1)
    with pytest.raises(ProgramError, match="no timestamp assigner"):
        WatermarkStrategy.for_monotonous_timestamps().create_operator("x")
    with pytest.raises(ProgramError, match="with_timestamp_assigner"):
        WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(3.5)
    assert MIN_WATERMARK < 0 < MAX_WATERMARK
    assert Watermark(1) == Watermark(1) and WatermarkStatus(True).idle
