"""Key selectors: which part of a record is its key, computed for a whole batch at once."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa

from pyflow.errors import RecordError
from pyflow.runtime import records
from pyflow.state.key_groups import hash_columns, hash_objects

#: column holding computed keys when a key function feeds a vectorized operator
KEY_COLUMN = "__key__"


class KeySelector:
    """Selects keys by field names/positions (vectorized) or by a function of the row.

    ``KeySelector(fields=("word",))``, ``KeySelector(fields=(0,))`` (tuple streams: position 0 is
    column ``f0``), or ``KeySelector(function=lambda row: row["a"] % 10)``.
    """

    def __init__(self, fields: Sequence[str | int] | None = None,
                 function: Callable[[Any], Any] | None = None, operator_name: str = "key_by"):
        if (fields is None) == (function is None):
            raise ValueError("give either fields or a function")
        self.fields = tuple(fields) if fields is not None else None
        self.function = function
        self.operator_name = operator_name

    @property
    def is_function(self) -> bool:
        return self.function is not None

    def column_names(self, schema: pa.Schema) -> list[str]:
        assert self.fields is not None
        names = []
        for f in self.fields:
            names.append(schema.field(records.field_index(schema, f)).name)
        return names

    def key_arrays(self, batch: pa.RecordBatch) -> list[pa.Array]:
        if self.fields is not None and records.row_kind(batch) != records.OBJECT:
            return [batch.column(n) for n in self.column_names(batch.schema)]
        return [self._function_keys_array(batch)]

    def keys(self, batch: pa.RecordBatch, rows: list[Any] | None = None) -> list[Any]:
        """The Python key of every row (a tuple for several fields; None without fields)."""
        if self.fields == ():
            return [None] * batch.num_rows
        if self.fields is not None and records.row_kind(batch) != records.OBJECT:
            columns = [a.to_pylist() for a in self.key_arrays(batch)]
            return columns[0] if len(columns) == 1 else list(zip(*columns))
        return self._apply(batch if rows is None else None, rows)

    def hashes(self, batch: pa.RecordBatch) -> np.ndarray:
        if self.fields is not None and records.row_kind(batch) != records.OBJECT:
            return hash_columns(self.key_arrays(batch))
        # equal keys hash equally whichever way a batch is stored (typed columns or objects)
        return hash_objects(self._apply(batch, None))

    def with_key_column(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[str]]:
        """The batch with its key columns available by name, for vectorized keyed operators."""
        if self.fields is not None and records.row_kind(batch) != records.OBJECT:
            return batch, self.column_names(batch.schema)
        keys = self._function_keys_array(batch)
        return batch.append_column(KEY_COLUMN, keys), [KEY_COLUMN]

    def _apply(self, batch: pa.RecordBatch | None, rows: list[Any] | None) -> list[Any]:
        if rows is None:
            rows = records.batch_to_rows(batch)
        fn = self.function or self._field_getter()
        out = []
        for row in rows:
            try:
                out.append(fn(row))
            except Exception as e:
                what = "key function" if self.function else f"key field(s) {self.describe()}"
                raise RecordError(
                    f"The {what} of '{self.operator_name}' raised {type(e).__name__}: {e} "
                    f"on the record {_short(row)}; fix the key or filter such records out "
                    "before key_by()"
                ) from e
        return out

    def _field_getter(self) -> Callable[[Any], Any]:
        """Field keys read from Python rows: a batch whose values had to be kept as objects
        (mixed types) still has its fields, by name (dicts), position (tuples) or attribute."""
        fields = self.fields
        assert fields is not None

        def one(row: Any, f: str | int) -> Any:
            if isinstance(row, dict):
                return row[f]
            if isinstance(row, tuple):
                return row[f if isinstance(f, int) else int(str(f).lstrip("f"))]
            return getattr(row, str(f))

        if len(fields) == 1:
            return lambda row: one(row, fields[0])
        return lambda row: tuple(one(row, f) for f in fields)

    def _function_keys_array(self, batch: pa.RecordBatch) -> pa.Array:
        keys = self._apply(batch, None)
        try:
            return pa.array(keys)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise RecordError(
                f"The keys returned by the key function of '{self.operator_name}' cannot be held in "
                f"an Arrow column ({e}); return str, int, float or tuple keys of one type"
            ) from e

    def describe(self) -> str:
        if self.fields is not None:
            return ",".join(str(f) for f in self.fields)
        return getattr(self.function, "__qualname__", repr(self.function))


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
