"""WindowAggregationOperator: built-in window aggregations (sum, min, max, count, mean) computed
on whole Arrow batches, for tumbling and sliding windows with the default trigger.

Per batch, rows are assigned to their windows with numpy (a sliding window repeats a row once per
window it falls in), late rows are set aside, and the rest are partially aggregated with Arrow's
``group_by`` per (key, window). Partials are merged when event time advances, and every window
whose end the watermark has passed is emitted as one row: the key field(s), ``window_start``,
``window_end`` (epoch ms) and one column per aggregate (``count``, or the aggregated field's name),
with the window's max timestamp as the row's timestamp - what Flink emits for the same program.

Rows that arrive after their window fired (late, with allowed lateness 0) are counted in
``num_late_records_dropped``. Programs that need triggers, allowed lateness or a late side output
use the generic WindowOperator instead (WindowedStream chooses).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyflow.errors import ProgramError, RecordError
from pyflow.runtime import records
from pyflow.runtime.network.events import Watermark
from pyflow.runtime.operators.base import StreamOperator
from pyflow.runtime.operators.key_selector import KEY_COLUMN, KeySelector

#: partial columns per aggregate kind, and how partials merge
_PARTIALS = {
    "sum": (("sum",), ("sum",)),
    "min": (("min",), ("min",)),
    "max": (("max",), ("max",)),
    "count": (("count",), ("sum",)),
    "mean": (("sum", "count"), ("sum", "sum")),
}
WINDOW_START, WINDOW_END = "window_start", "window_end"


class WindowAggregationOperator(StreamOperator):
    keyed = True

    def __init__(self, name: str, key_selector: KeySelector, assigner: Any,
                 aggregations: Sequence[tuple[str, str | int | None]]):
        self.name = name
        self.key_selector = key_selector
        self.assigner = assigner
        self.aggregations = list(aggregations)  # (kind, field); field None for count

    def open(self) -> None:
        self._partials: list[pa.Table] = []
        self._key_names: list[str] | None = None
        self._fields: list[tuple[str, str, str]] | None = None  # (kind, field name, output name)
        self.num_late_records_dropped = 0
        self._max_fired_end = -(2**63)

    # ---- input ---------------------------------------------------------------------------------

    def _resolve(self, schema: pa.Schema, key_names: list[str]) -> None:
        fields = []
        for kind, field in self.aggregations:
            if kind == "count":
                fields.append((kind, "", "count"))
                continue
            name = schema.field(records.field_index(schema, field)).name
            t = schema.field(name).type
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
                    or (kind in ("min", "max") and (pa.types.is_temporal(t) or pa.types.is_string(t)))):
                raise RecordError(
                    f"'{self.name}' cannot compute {kind}({name!r}): the field has type {t}; {kind} needs "
                    "a numeric field" + (" (or a comparable one)" if kind in ("min", "max") else ""))
            fields.append((kind, name, name))
        outputs = [o for _, _, o in fields]
        for o in set(outputs):
            if outputs.count(o) > 1:
                raise ProgramError(
                    f"'{self.name}': two aggregates both produce the column '{o}'; compute them in "
                    "separate window operations")
        self._fields = fields
        self._key_names = key_names

    def process_batch(self, batch: pa.RecordBatch) -> None:
        batch, ts = records.without_timestamps(batch)
        keyed, key_names = self.key_selector.with_key_column(batch)
        if self._fields is None:
            self._resolve(batch.schema, key_names)
        if self.assigner.is_event_time():
            if ts is None:
                raise RecordError(
                    f"'{self.name}' uses event-time windows but its records have no timestamps; call "
                    "assign_timestamps_and_watermarks(...) (or from_source(..., watermark_strategy)) first")
            times = ts.to_numpy(zero_copy_only=False)
        else:
            times = np.full(batch.num_rows, int(self.ctx.processing_time()), dtype=np.int64)
        rows, starts, ends = self.assigner.assign_batch(times)
        if len(rows) == 0:
            return
        # a window is late once the watermark passed its max timestamp (it already fired)
        on_time = (ends - 1) > self.ctx.current_watermark
        if not on_time.all():
            late_rows = np.unique(rows[~on_time])
            still_used = np.unique(rows[on_time])
            self.num_late_records_dropped += int(len(np.setdiff1d(late_rows, still_used)))
            rows, starts, ends = rows[on_time], starts[on_time], ends[on_time]
            if len(rows) == 0:
                return
        columns = {name: keyed.column(name).take(pa.array(rows)) for name in key_names}
        columns[WINDOW_START] = pa.array(starts, pa.int64())
        columns[WINDOW_END] = pa.array(ends, pa.int64())
        for kind, name, _ in self._fields:
            if name and name not in columns:
                columns[name] = keyed.column(name).take(pa.array(rows))
        table = pa.table(columns)
        self._partials.append(self._group(table, merge=False))
        if len(self._partials) > 64:  # bound the pending list: merge into one
            self._partials = [self._merged()]

    def _group(self, table: pa.Table, merge: bool) -> pa.Table:
        specs = []
        names = []
        for kind, name, _ in self._fields:
            partial_kinds, merge_ops = _PARTIALS[kind]
            for pk, mop in zip(partial_kinds, merge_ops):
                column = f"{pk}:{kind}:{name}"
                if merge:
                    specs.append((column, mop))
                elif pk == "count":
                    specs.append(((name or WINDOW_START), "count"))
                else:
                    specs.append((name, pk))
                names.append(column)
        keys = self._key_names + [WINDOW_START, WINDOW_END]
        grouped = table.group_by(keys, use_threads=False).aggregate(specs)
        # aggregates come in spec order, after the keys (pyarrow >= 14) or before them (older);
        # taken by position, because two aggregates of one field share a name
        columns = grouped.columns
        if grouped.column_names[:len(keys)] == keys:
            key_columns, aggregates = columns[:len(keys)], columns[len(keys):]
        else:
            aggregates, key_columns = columns[:len(specs)], columns[len(specs):]
        return pa.Table.from_arrays(list(aggregates) + list(key_columns), names=names + keys)

    def _merged(self) -> pa.Table:
        if len(self._partials) == 1:
            return self._partials[0]
        return self._group(pa.concat_tables(self._partials, promote_options="permissive"), merge=True)

    # ---- output --------------------------------------------------------------------------------

    def _fire(self, up_to: int) -> None:
        """Emit every window whose max timestamp (end - 1) is at or below ``up_to``."""
        if not self._partials:
            return
        table = self._merged()
        due = pc.less_equal(pc.subtract(table[WINDOW_END], 1), up_to)
        ready = table.filter(due)
        rest = table.filter(pc.invert(due))
        self._partials = [rest] if rest.num_rows else []
        if ready.num_rows == 0:
            return
        out: dict[str, Any] = {}
        for name in self._key_names:
            out["key" if name == KEY_COLUMN else name] = ready[name]
        out[WINDOW_START] = ready[WINDOW_START]
        out[WINDOW_END] = ready[WINDOW_END]
        for kind, name, output in self._fields:
            if kind == "mean":
                total = pc.cast(ready[f"sum:mean:{name}"], pa.float64())
                out[output] = pc.divide(total, pc.cast(ready[f"count:mean:{name}"], pa.float64()))
            else:
                out[output] = ready[f"{_PARTIALS[kind][0][0]}:{kind}:{name}"]
        result = pa.table(out).combine_chunks()
        ts = pc.subtract(result[WINDOW_END], 1)
        for batch in result.to_batches():
            batch = records.with_row_kind(batch, records.DICT)
            n = batch.num_rows
            self.output.collect(records.with_timestamps(batch, ts.slice(0, n).combine_chunks()))
            ts = ts.slice(n)

    def process_watermark(self, watermark: Watermark) -> None:
        if self.assigner.is_event_time():
            self._fire(watermark.timestamp)
        self.output.emit_watermark(watermark)

    def on_processing_time(self, now_ms: float) -> None:
        if not self.assigner.is_event_time():
            self._fire(int(self.ctx.processing_time()) - 1)

    def end_input(self) -> None:
        # a bounded input: event-time windows fired with the final watermark; processing-time
        # windows that are still open fire now (Flink fires them at the end of input too)
        if not self.assigner.is_event_time():
            self._fire(2**63 - 1)

    def describe(self) -> dict[str, Any]:
        return {"window": repr(self.assigner), "aggregations": [f"{k}({f or ''})" for k, f in self.aggregations]}
