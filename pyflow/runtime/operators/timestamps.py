"""TimestampsAndWatermarksOperator: gives records their event timestamps and emits watermarks
(Flink's operator behind ``assign_timestamps_and_watermarks``).

Timestamps come from a field (vectorized: integer epoch milliseconds or an Arrow timestamp
column) or from a function of the record. Watermarks are periodic (every
``pipeline.auto-watermark-interval``): the largest timestamp seen, minus the allowed
out-of-orderness, minus 1 ms, as Flink's BoundedOutOfOrdernessWatermarks. With idleness set, a
subtask that sees no records for that long tells its consumers it is idle, so that it does not
hold back their watermark, and becomes active again with its next record.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyflow.errors import RecordError
from pyflow.runtime import records
from pyflow.runtime.network.events import MIN_WATERMARK, Watermark, WatermarkStatus
from pyflow.runtime.operators.base import StreamOperator


class TimestampsAndWatermarksOperator(StreamOperator):
    def __init__(self, name: str, *, field: str | int | None, function: Callable[[Any, int | None], int] | None,
                 out_of_orderness_ms: int | None, idleness_ms: int | None):
        self.name = name
        self.field = field
        self.function = function
        self.out_of_orderness_ms = out_of_orderness_ms  # None: no watermarks (timestamps only)
        self.idleness_ms = idleness_ms

    def open(self) -> None:
        self._max_ts = MIN_WATERMARK
        self._emitted = MIN_WATERMARK
        self._idle = False
        self._last_record = time.monotonic()

    # ---- timestamps ------------------------------------------------------------------------------

    def _timestamps(self, batch: pa.RecordBatch) -> np.ndarray:
        if self.function is None:
            index = records.field_index(batch.schema, self.field)
            column = batch.column(index)
            name = batch.schema.field(index).name
            try:
                if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
                    column = pc.cast(pc.cast(column, pa.timestamp("ms")), pa.int64())
                elif not pa.types.is_integer(column.type):
                    raise RecordError(
                        f"The timestamp field '{name}' of '{self.name}' has type {column.type}; it must "
                        "hold epoch milliseconds (an integer) or Arrow timestamps")
                column = pc.cast(column, pa.int64())
            except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
                raise RecordError(f"The timestamp field '{name}' of '{self.name}' cannot be read: {e}") from e
            if column.null_count:
                row = records.batch_to_rows(batch)[pc.index(pc.is_null(column), True).as_py()]
                raise RecordError(
                    f"A record without a timestamp reached '{self.name}': field '{name}' is null in "
                    f"{_short(row)}; give every record a timestamp or filter such records out first")
            return column.to_numpy()
        fn = self.function
        previous = records.timestamps(batch)
        prev = previous.to_pylist() if previous is not None else [None] * batch.num_rows
        out = np.empty(batch.num_rows, dtype=np.int64)
        for i, (row, p) in enumerate(zip(records.batch_to_rows(batch), prev)):
            ts = fn(row, p)
            if not isinstance(ts, (int, np.integer)) or isinstance(ts, bool):
                raise RecordError(
                    f"The timestamp assigner of '{self.name}' returned {ts!r} for {_short(row)}; it "
                    "must return epoch milliseconds as an int")
            out[i] = ts
        return out

    def process_batch(self, batch: pa.RecordBatch) -> None:
        ts = self._timestamps(batch)
        if len(ts):
            self._max_ts = max(self._max_ts, int(ts.max()))
        self._last_record = time.monotonic()
        if self._idle:
            self._idle = False
            self.output.emit_watermark_status(WatermarkStatus(idle=False))
        self.output.collect(records.with_timestamps(batch, pa.array(ts, pa.int64())))

    # ---- watermarks --------------------------------------------------------------------------------

    def current_watermark(self) -> int:
        if self.out_of_orderness_ms is None or self._max_ts == MIN_WATERMARK:
            return MIN_WATERMARK
        return self._max_ts - self.out_of_orderness_ms - 1

    def _emit_watermark(self) -> None:
        wm = self.current_watermark()
        if wm > self._emitted:
            self._emitted = wm
            self.output.emit_watermark(Watermark(wm))

    def on_processing_time(self, now_ms: float) -> None:
        # the task calls this every pipeline.auto-watermark-interval (after every batch for 0)
        self._emit_watermark()
        now = time.monotonic()
        if self.idleness_ms is not None and not self._idle and (now - self._last_record) * 1000 >= self.idleness_ms:
            self._idle = True
            self.output.emit_watermark_status(WatermarkStatus(idle=True))

    def process_watermark(self, watermark: Watermark) -> None:
        # upstream watermarks are replaced by this operator's own, except the final one
        if watermark.timestamp == 2**63 - 1:
            self._emitted = watermark.timestamp
            self.output.emit_watermark(watermark)

    def end_input(self) -> None:
        self._emit_watermark()

    def describe(self) -> dict[str, Any]:
        return {"timestamps": self.field if self.function is None else "function",
                "outOfOrdernessMs": self.out_of_orderness_ms, "idlenessMs": self.idleness_ms}


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
