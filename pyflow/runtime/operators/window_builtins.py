"""Built-in window aggregations (sum, min, max, count, mean) as Flink AggregateFunctions, for
the windows the vectorized path cannot take (custom triggers, lateness, sessions, count windows).
They produce the same rows as the vectorized path: key field(s), window_start, window_end, and the
aggregate's column."""

from __future__ import annotations

from typing import Any

from pyflow.errors import RecordError
from pyflow.runtime.operators.key_selector import KeySelector
from pyflow.runtime.operators.window_operator import AggregateWindow


def _getter(field: str | int | None):
    def get(row: Any) -> Any:
        if isinstance(row, dict):
            return row[field]
        if isinstance(row, tuple):
            return row[field if isinstance(field, int) else int(str(field).lstrip("f"))]
        if field in (None, "value", 0):
            return row
        return getattr(row, str(field))

    return get


class BuiltinAggregate:
    """create_accumulator / add / get_result / merge for one built-in aggregate of one field."""

    def __init__(self, kind: str, field: str | int | None):
        self.kind = kind
        self.field = field
        self.get = _getter(field)

    def create_accumulator(self) -> list:
        return [0, None]  # count, value (sum / min / max)

    def add(self, value: Any, acc: list) -> list:
        acc[0] += 1
        if self.kind == "count":
            return acc
        try:
            v = self.get(value)
        except (KeyError, IndexError, AttributeError, ValueError) as e:
            raise RecordError(f"Window {self.kind}({self.field!r}): the record {value!r} has no such field") from e
        if v is None:
            acc[0] -= 1  # nulls are ignored, as in the vectorized path
            return acc
        if acc[1] is None:
            acc[1] = v
        elif self.kind in ("sum", "mean"):
            acc[1] += v
        elif self.kind == "min":
            acc[1] = min(acc[1], v)
        else:
            acc[1] = max(acc[1], v)
        return acc

    def merge(self, a: list, b: list) -> list:
        if b[1] is None:
            return [a[0] + b[0], a[1]]
        if a[1] is None:
            return [a[0] + b[0], b[1]]
        combine = {"sum": lambda x, y: x + y, "mean": lambda x, y: x + y, "min": min, "max": max, "count": lambda x, y: x}
        return [a[0] + b[0], combine[self.kind](a[1], b[1])]

    def get_result(self, acc: list) -> Any:
        if self.kind == "count":
            return acc[0]
        if self.kind == "mean":
            return acc[1] / acc[0] if acc[0] else None
        return acc[1]


class KeyWindowRow:
    """ProcessWindowFunction that shapes the aggregate into the output row."""

    def __init__(self, kind: str, field: str | int | None, key_names: list[str], include_window: bool):
        self.column = "count" if kind == "count" else (field if isinstance(field, str) else f"f{field}")
        self.key_names = key_names
        self.include_window = include_window

    def process(self, key: Any, context: Any, elements: Any):
        row: dict[str, Any] = {}
        if len(self.key_names) == 1:
            row[self.key_names[0]] = key
        elif self.key_names:
            row.update(zip(self.key_names, key))
        if self.include_window:
            window = context.window()
            row["window_start"] = window.start
            row["window_end"] = window.end
        for value in elements:
            row[self.column] = value
        yield row


def builtin_window_function(kind: str, field: str | int | None, selector: KeySelector, *, include_window: bool,
                            all_windows: bool) -> AggregateWindow:
    if all_windows:
        names: list[str] = []
    elif selector.fields is not None:
        names = [f if isinstance(f, str) else f"f{f}" for f in selector.fields]
    else:
        names = ["key"]
    return AggregateWindow(BuiltinAggregate(kind, field), KeyWindowRow(kind, field, names, include_window))
