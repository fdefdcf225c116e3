"""Operators on keyed streams: reduce (a user function) and the built-in aggregations.

STREAMING semantics (Flink's default): every input record yields the updated value of its key.
BATCH semantics (``execution.runtime-mode: BATCH``): only the final value per key is emitted, when
the input ends - what Flink's batch execution does for the same program.
"""

from __future__ import annotations

from typing import Any, Callable

import pyarrow as pa

from pyflow.runtime import records
from pyflow.runtime.operators.aggregations import KeyedAggregation
from pyflow.runtime.operators.base import StreamOperator
from pyflow.runtime.operators.functions import UserFunctionOperator
from pyflow.runtime.operators.key_selector import KEY_COLUMN, KeySelector


class KeyedReduceOperator(UserFunctionOperator):
    keyed = True

    def __init__(self, name: str, function: Any, call: Callable, key_selector: KeySelector,
                 output_schema: pa.Schema | None = None):
        super().__init__(name, function, call, output_schema)
        self.key_selector = key_selector

    def open(self) -> None:
        super().open()
        self._state: dict[Any, Any] = {}

    def process_batch(self, batch: pa.RecordBatch) -> None:
        rows = records.batch_to_rows(batch)
        keys = self.key_selector.keys(batch, rows)
        state = self._state
        fn = self.call
        rolling = not self.ctx.batch_mode
        out = []
        missing = object()
        for key, row in zip(keys, rows):
            current = state.get(key, missing)
            value = row if current is missing else fn(current, row)
            state[key] = value
            if rolling:
                out.append(value)
        self.emit_rows(out, records.timestamps(batch) if rolling else None)

    def end_input(self) -> None:
        if self.ctx.batch_mode:
            self.emit_rows(list(self._state.values()))


class KeyedAggregationOperator(StreamOperator):
    """sum / min / max / min_by / max_by / count on a keyed stream, computed on whole batches.

    ``combined``: in BATCH mode its input are partial aggregates from a LocalAggregationOperator
    (counts arrive as a ``count`` column to be summed)."""

    keyed = True

    def __init__(self, name: str, kind: str, fields: list[str], key_selector: KeySelector, combined: bool = False):
        self.name = name
        self.kind = kind
        self.fields = fields
        self.key_selector = key_selector
        self.combined = combined

    def open(self) -> None:
        self._aggregation: KeyedAggregation | None = None

    def _aggregation_for(self, schema: pa.Schema, key_fields: list[str]) -> KeyedAggregation:
        if self._aggregation is None:
            if self.combined and self.ctx.batch_mode and self.kind == "count":
                # partial counts from the local aggregation: their sum is the count
                self._aggregation = KeyedAggregation("sum", ["count"], key_fields, rolling=False)
                return self._aggregation
            # tuple positions (sum(1)) name the columns f0, f1, ... of the stream's schema
            fields = [schema.field(records.field_index(schema, f)).name for f in self.fields]
            self._aggregation = KeyedAggregation(self.kind, fields, key_fields, rolling=not self.ctx.batch_mode)
        return self._aggregation

    def process_batch(self, batch: pa.RecordBatch) -> None:
        batch, ts = records.without_timestamps(batch)
        keyed, key_fields = self.key_selector.with_key_column(batch)
        out = self._aggregation_for(batch.schema, key_fields).add(keyed)
        if out is not None and out.num_rows:
            # rolling: one output per input record, which keeps that record's timestamp
            self.output.collect(records.with_timestamps(self._strip(out), ts))

    def end_input(self) -> None:
        if self._aggregation is not None:
            out = self._aggregation.finish()
            if out is not None and out.num_rows:
                self.output.collect(self._strip(out))

    def _strip(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if KEY_COLUMN not in batch.schema.names:
            return batch
        if self.kind == "count":
            # a key function's key is the output's "key" column
            index = batch.schema.get_field_index(KEY_COLUMN)
            return batch.rename_columns(["key" if i == index else n for i, n in enumerate(batch.schema.names)])
        return batch.drop_columns([KEY_COLUMN])

    def describe(self) -> dict[str, Any]:
        return {"aggregation": self.kind, "fields": self.fields, "key": self.key_selector.describe()}


class LocalAggregationOperator(KeyedAggregationOperator):
    """The local half of a BATCH keyed aggregation (Flink's local-global aggregation): chained in
    front of the hash exchange, it aggregates what its subtask sees and sends one partial row per
    key at the end of its input, so the exchange carries partials instead of every record. In
    STREAMING mode it passes batches on untouched (the rolling aggregation needs every record)."""

    keyed = False

    def process_batch(self, batch: pa.RecordBatch) -> None:
        if not self.ctx.batch_mode:
            self.output.collect(batch)
            return
        batch = records.without_timestamps(batch)[0]
        keyed, key_fields = self.key_selector.with_key_column(batch)
        self._aggregation_for(batch.schema, key_fields).add(keyed)

    def end_input(self) -> None:
        if self.ctx.batch_mode and self._aggregation is not None:
            out = self._aggregation.finish()
            if out is not None and out.num_rows:
                self.output.collect(out)
