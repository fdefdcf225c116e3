"""Rows <-> record batches: the one place that decides how Python values live in Arrow.

Every stream in pyflow carries ``pyarrow.RecordBatch`` es. Row functions (``map``,
``flat_map``, ``filter``, ``process``) see Python values; this module converts between the
two, once per batch and column-wise, so no operator ever loops over rows itself.

The *row kind* of a batch is stored in its schema metadata under ``ROW_KIND_KEY``:

``tuple``
    Python tuples; columns ``f0, f1, ...`` (Flink's tuple field names).
``dict``
    dicts with ``str`` keys; one column per key. Batches without the metadata key (read from
    files, built by hand) are dict batches.
``scalar``
    one value per row (int, float, str, bytes, bool, None, datetime/date/time/timedelta,
    Decimal, numpy scalars, and lists/dicts of those); one column ``value``.
``object``
    anything else; one binary column ``__pyobj__`` holding one pickle per row.

Invariants
----------
* A conversion never changes a value silently: when Arrow would (mixed types in a column,
  tuples nested inside values that Arrow turns into lists, dicts with differing keys that Arrow
  pads with ``None``, naive and aware datetimes mixed, ints too large for int64, subclasses
  such as ``IntEnum`` or namedtuples) the *whole* batch falls back to the object kind. The
  documented exceptions, as Arrow and ``concat_batches`` do: ints and floats mixed in one
  column become float64; numpy scalars come back as Python scalars; Decimals come back with
  the column's common scale; aware datetimes come back in the column's (first) time zone.
* Schema metadata survives slicing, ``filter``, ``take`` and :func:`concat_batches`.
* Object columns are pickled with pickle protocol 5. Classes that the receiving process could
  not import by name (defined in ``__main__``, in a function, or in a module registered with
  ``cloudpickle.register_pickle_by_value``) are shipped *once per batch* by value, in a class
  table in the schema metadata (``CLASS_TABLE_KEY``), not once per row; functions in records
  (lambdas) are pickled by value with cloudpickle.

Example::

    >>> batch = rows_to_batch([(1, "a"), (2, "b")])
    >>> row_kind(batch), batch.schema.names
    ('tuple', ['f0', 'f1'])
    >>> batch_to_rows(batch)
    [(1, 'a'), (2, 'b')]
"""

from __future__ import annotations

import functools

import datetime as _dt
import decimal
import io
import pickle
import sys
import types
import uuid
from operator import itemgetter
from typing import Any, Iterable, Sequence

import cloudpickle
import numpy as np
import pyarrow as pa

from pyflow.errors import ProgramError, RecordError, SerializationError

__all__ = [
    "ROW_KIND_KEY",
    "CLASS_TABLE_KEY",
    "OBJECT_COLUMN",
    "SCALAR_COLUMN",
    "TUPLE",
    "DICT",
    "SCALAR",
    "OBJECT",
    "KINDS",
    "row_kind",
    "with_row_kind",
    "rows_to_batch",
    "batch_to_rows",
    "object_batch",
    "concat_batches",
    "schema_of_rows",
    "field_index",
    "tuple_field_name",
]

ROW_KIND_KEY = b"pyflow.row"
#: Schema metadata key of an object batch's class table (see module docstring).
CLASS_TABLE_KEY = b"pyflow.classes"
TUPLE, DICT, SCALAR, OBJECT = "tuple", "dict", "scalar", "object"
KINDS = (TUPLE, DICT, SCALAR, OBJECT)
OBJECT_COLUMN = "__pyobj__"
#: event timestamps (epoch ms, int64) travel with their records in this hidden column, once a
#: stream has timestamps (assign_timestamps_and_watermarks); row functions never see it
TIMESTAMP_COLUMN = "__pyflow_ts__"
SCALAR_COLUMN = "value"

_KIND_BYTES = {k: k.encode() for k in KINDS}
_BYTES_KIND = {v: k for k, v in _KIND_BYTES.items()}
_NONE_TYPE = type(None)
_REPR_LIMIT = 200
_ARROW_CONVERSION_ERRORS = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    OverflowError,
    TypeError,
    ValueError,
)


def tuple_field_name(position: int) -> str:
    """Column name of tuple field ``position`` (``f0``, ``f1``, ... as in Flink)."""
    return f"f{position}"


# ---------------------------------------------------------------------------------------------
# row kind metadata


def row_kind(schema_or_batch: pa.Schema | pa.RecordBatch | pa.Table) -> str:
    """Row kind of a schema or batch; batches without pyflow metadata are ``dict`` batches.

    >>> row_kind(pa.record_batch({"a": [1]}))
    'dict'
    """
    schema = schema_or_batch if isinstance(schema_or_batch, pa.Schema) else schema_or_batch.schema
    metadata = schema.metadata
    if metadata:
        kind = metadata.get(ROW_KIND_KEY)
        if kind is not None:
            try:
                return _BYTES_KIND[kind]
            except KeyError:
                raise RecordError(
                    f"Unknown row kind {kind!r} in batch metadata; expected one of "
                    f"{', '.join(KINDS)}"
                ) from None
    if len(schema) == 1 and schema[0].name == OBJECT_COLUMN and _is_binary(schema[0].type):
        return OBJECT  # an object batch whose metadata was dropped by a foreign tool
    return DICT


def with_row_kind(batch_or_schema, kind: str):
    """Return ``batch_or_schema`` (a RecordBatch, Table or Schema) marked with row ``kind``.

    Zero-copy; other metadata keys are kept.

    >>> row_kind(with_row_kind(pa.record_batch({"f0": [1]}), TUPLE))
    'tuple'
    """
    try:
        value = _KIND_BYTES[kind]
    except KeyError:
        raise ValueError(f"Unknown row kind {kind!r}; choose one of: {', '.join(KINDS)}") from None
    schema = batch_or_schema if isinstance(batch_or_schema, pa.Schema) else batch_or_schema.schema
    metadata = schema.metadata
    if metadata is not None and metadata.get(ROW_KIND_KEY) == value:
        return batch_or_schema
    new_metadata = dict(metadata) if metadata else {}
    new_metadata[ROW_KIND_KEY] = value
    if isinstance(batch_or_schema, pa.Schema):
        return batch_or_schema.with_metadata(new_metadata)
    return batch_or_schema.replace_schema_metadata(new_metadata)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t)


# ---------------------------------------------------------------------------------------------
# column conversion: a list of Python values -> one Arrow array, or None if that would be lossy

_DIRECT_TYPES: dict[type, pa.DataType] = {
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
    bytes: pa.binary(),
    bool: pa.bool_(),
}
_INFERRED_TYPES = frozenset(
    {_dt.datetime, _dt.date, _dt.time, _dt.timedelta, decimal.Decimal}
)
_NESTED_TYPES = frozenset({list, dict})
_LARGE = {pa.string(): pa.large_string(), pa.binary(): pa.large_binary()}
# numpy scalar type -> the Python type it is treated as (values come back as Python scalars)
_NUMPY_AS: dict[type, type | None] = {}


def _numpy_as(t: type) -> type | None:
    try:
        return _NUMPY_AS[t]
    except KeyError:
        pass
    if issubclass(t, np.bool_):
        as_type = bool
    elif issubclass(t, np.integer):
        as_type = int
    elif issubclass(t, np.floating):
        as_type = float
    elif issubclass(t, np.str_):
        as_type = str
    elif issubclass(t, np.bytes_):
        as_type = bytes
    else:
        as_type = None
    _NUMPY_AS[t] = as_type
    return as_type


def _column_array(values: list) -> pa.Array | None:
    """Convert one column of Python values, or return None when Arrow cannot hold it exactly."""
    kinds = set(map(type, values))
    kinds.discard(_NONE_TYPE)
    if not kinds:
        return pa.nulls(len(values))
    if len(kinds) == 1:
        (t,) = kinds
    else:
        normalized = {t if t in _DIRECT_TYPES else _numpy_as(t) for t in kinds}
        if normalized == {int, float}:
            t = float
        elif len(normalized) == 1 and None not in normalized:
            (t,) = normalized
        else:
            return None  # mixed types in one column
    arrow_type = _DIRECT_TYPES.get(t)
    verify = False
    if arrow_type is None:
        if t in _INFERRED_TYPES:
            if t is _dt.datetime and not _same_awareness(values):
                return None
        elif t in _NESTED_TYPES:
            verify = True
        else:
            as_type = _numpy_as(t) if issubclass(t, np.generic) else None
            if as_type is None:
                return None  # custom classes, subclasses (IntEnum, namedtuple), tuples...
            arrow_type = _DIRECT_TYPES[as_type]
    try:
        array = pa.array(values, type=arrow_type)
        if isinstance(array, pa.ChunkedArray):  # more than 2 GiB of str/bytes
            array = pa.array(values, type=_LARGE.get(array.type, array.type))
            if isinstance(array, pa.ChunkedArray):
                return None
    except _ARROW_CONVERSION_ERRORS:
        return None
    if verify and array.to_pylist() != values:
        return None  # Arrow changed nested values: tuples -> lists, padded dict keys, ...
    return array


def _same_awareness(values: list) -> bool:
    awareness = {v.tzinfo is not None for v in values if v is not None}
    return len(awareness) <= 1


# ---------------------------------------------------------------------------------------------
# rows -> batch


def rows_to_batch(rows: Sequence[Any], schema: pa.Schema | None = None) -> pa.RecordBatch:
    """Convert Python rows to one RecordBatch.

    Without ``schema`` the row kind and the column types are inferred (see the module
    docstring); values Arrow cannot hold exactly make the whole batch an object batch. With
    ``schema`` the rows are converted to exactly that schema (tuple rows by position, dict rows
    by name, scalar rows to its one field); a row that does not fit raises
    :class:`~pyflow.errors.RecordError` naming its index, its value and the schema. Ints are
    accepted for float fields, floats never for integer fields; nested values are converted by
    Arrow (tuples become lists, keys of nested dicts that the struct lacks are dropped).

    >>> rows_to_batch([{"a": 1}, {"a": 2}]).to_pydict()
    {'a': [1, 2]}
    >>> row_kind(rows_to_batch([object()]))
    'object'
    """
    if not isinstance(rows, list):
        rows = list(rows)
    if schema is not None:
        return _rows_to_schema(rows, schema)
    if not rows:
        return object_batch(rows)
    row_types = set(map(type, rows))
    if len(row_types) == 1:
        (row_type,) = row_types
        if row_type is tuple:
            return _tuples_to_batch(rows) or object_batch(rows)
        if row_type is dict:
            return _dicts_to_batch(rows) or object_batch(rows)
    if tuple in row_types or dict in row_types:
        return object_batch(rows)  # None rows, or a mix of row shapes
    array = _column_array(rows)
    if array is None:
        return object_batch(rows)
    return pa.RecordBatch.from_arrays([array], schema=_scalar_schema(array.type))


def _scalar_schema(arrow_type: pa.DataType) -> pa.Schema:
    return pa.schema([pa.field(SCALAR_COLUMN, arrow_type)], metadata={ROW_KIND_KEY: b"scalar"})


def _tuples_to_batch(rows: list[tuple]) -> pa.RecordBatch | None:
    lengths = set(map(len, rows))
    if len(lengths) != 1:
        return None  # ragged tuples
    (width,) = lengths
    if width == 0:
        return None  # a batch without columns cannot count its rows
    arrays = []
    for position in range(width):
        array = _column_array(list(map(itemgetter(position), rows)))
        if array is None:
            return None
        arrays.append(array)
    fields = [pa.field(tuple_field_name(i), a.type) for i, a in enumerate(arrays)]
    schema = pa.schema(fields, metadata={ROW_KIND_KEY: b"tuple"})
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _dicts_to_batch(rows: list[dict]) -> pa.RecordBatch | None:
    keys = list(rows[0])
    if not keys or not all(type(k) is str for k in keys):
        return None
    if set(map(len, rows)) != {len(keys)}:
        return None  # differing keys
    arrays = []
    try:
        for key in keys:
            array = _column_array(list(map(itemgetter(key), rows)))
            if array is None:
                return None
            arrays.append(array)
    except KeyError:
        return None  # differing keys
    fields = [pa.field(k, a.type) for k, a in zip(keys, arrays)]
    schema = pa.schema(fields, metadata={ROW_KIND_KEY: b"dict"})
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        text = f"<{type(value).__qualname__} object, repr failed: {exc}>"
    if len(text) > _REPR_LIMIT:
        text = text[: _REPR_LIMIT - 3] + "..."
    return text


def _schema_text(schema: pa.Schema) -> str:
    return ", ".join(
        f"{f.name}: {f.type}{'' if f.nullable else ' not null'}" for f in schema
    ) or "(no fields)"


def _row_error(index: int, row: Any, schema: pa.Schema, reason: str) -> RecordError:
    return RecordError(
        f"Row {index} does not fit the stream's schema: {reason}. Row: {_short_repr(row)}; "
        f"expected schema: {_schema_text(schema)}. Emit rows that match the declared schema "
        f"or declare a schema that matches the rows."
    )


def _schema_kind(schema: pa.Schema, rows: list) -> str:
    metadata = schema.metadata
    if metadata and ROW_KIND_KEY in metadata:
        return row_kind(schema)
    first = next((r for r in rows if r is not None), None)
    if isinstance(first, dict):
        return DICT
    if isinstance(first, tuple) or (isinstance(first, list) and len(schema) != 1):
        return TUPLE
    if len(schema) == 1:
        return SCALAR  # a list here is one list-typed value
    return DICT


def _rows_to_schema(rows: list, schema: pa.Schema) -> pa.RecordBatch:
    kind = _schema_kind(schema, rows)
    if kind == OBJECT:
        return object_batch(rows)
    out_schema = with_row_kind(schema, kind)
    if not rows:
        empty = [pa.array([], type=f.type) for f in schema]
        return pa.RecordBatch.from_arrays(empty, schema=out_schema)
    if kind == SCALAR:
        if len(schema) != 1:
            raise RecordError(
                f"A scalar stream needs a schema with exactly one field, got: "
                f"{_schema_text(schema)}"
            )
        columns = [rows]
    elif kind == TUPLE:
        columns = _tuple_columns(rows, schema)
    else:
        columns = _dict_columns(rows, schema)
    arrays = []
    for field, values in zip(schema, columns):
        if pa.types.is_integer(field.type):
            _check_integers(values, field, rows, schema)
        try:
            array = pa.array(values, type=field.type)
        except _ARROW_CONVERSION_ERRORS:
            index, reason = _find_bad_value(values, field)
            raise _row_error(index, rows[index], schema, reason) from None
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if not field.nullable and array.null_count:
            index = next(i for i, v in enumerate(values) if v is None)
            raise _row_error(index, rows[index], schema, f"field '{field.name}' must not be None")
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=out_schema)


def _tuple_columns(rows: list, schema: pa.Schema) -> list[list]:
    width = len(schema)
    if not set(map(type, rows)) <= {tuple, list}:
        for index, row in enumerate(rows):
            if not isinstance(row, (tuple, list)):
                reason = f"expected a tuple, got {type(row).__qualname__}"
                raise _row_error(index, row, schema, reason)
    if set(map(len, rows)) != {width}:
        index = next(i for i, r in enumerate(rows) if len(r) != width)
        reason = f"expected a tuple of {width} fields, got {len(rows[index])}"
        raise _row_error(index, rows[index], schema, reason)
    return [list(map(itemgetter(i), rows)) for i in range(width)]


def _dict_columns(rows: list, schema: pa.Schema) -> list[list]:
    names = schema.names
    if set(map(type, rows)) != {dict}:
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                reason = f"expected a dict, got {type(row).__qualname__}"
                raise _row_error(index, row, schema, reason)
    columns = []
    for name in names:
        try:
            columns.append(list(map(itemgetter(name), rows)))
        except KeyError:
            index = next(i for i, r in enumerate(rows) if name not in r)
            raise _row_error(index, rows[index], schema, f"missing key '{name}'") from None
    if set(map(len, rows)) != {len(names)}:
        expected = set(names)
        for index, row in enumerate(rows):
            extra = [k for k in row if k not in expected]
            if extra:
                raise _row_error(
                    index, row, schema, f"unexpected key(s) {', '.join(map(repr, extra))}"
                )
    return columns


def _check_integers(values: list, field: pa.Field, rows: list, schema: pa.Schema) -> None:
    """Arrow would truncate 2.5 to 2 in an integer column; a declared schema must not."""
    kinds = set(map(type, values))
    if kinds <= {int, _NONE_TYPE}:
        return
    for index, value in enumerate(values):
        if value is not None and type(value) is not int and _numpy_as(type(value)) is not int:
            reason = (
                f"field '{field.name}' expects {field.type}, got "
                f"{type(value).__qualname__} {_short_repr(value)}"
            )
            raise _row_error(index, rows[index], schema, reason)


def _find_bad_value(values: list, field: pa.Field) -> tuple[int, str]:
    for index, value in enumerate(values):
        try:
            pa.array([value], type=field.type)
        except _ARROW_CONVERSION_ERRORS:
            return index, (
                f"field '{field.name}' expects {field.type}, got "
                f"{type(value).__qualname__} {_short_repr(value)}"
            )
    return 0, f"field '{field.name}' cannot be converted to {field.type}"  # pragma: no cover


def schema_of_rows(rows: Sequence[Any]) -> pa.Schema:
    """Schema (with row kind) that :func:`rows_to_batch` infers for ``rows``."""
    return rows_to_batch(rows).schema


# ---------------------------------------------------------------------------------------------
# batch -> rows


def timestamps(batch: pa.RecordBatch) -> pa.Array | None:
    """The records' event timestamps, or None when the stream has none."""
    index = batch.schema.get_field_index(TIMESTAMP_COLUMN)
    return batch.column(index) if index >= 0 else None


def without_timestamps(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.Array | None]:
    """The batch without its timestamp column, and that column (None when absent)."""
    index = batch.schema.get_field_index(TIMESTAMP_COLUMN)
    if index < 0:
        return batch, None
    return batch.remove_column(index), batch.column(index)


def with_timestamps(batch: pa.RecordBatch, ts: pa.Array | np.ndarray | Sequence[int] | None) -> pa.RecordBatch:
    """``batch`` carrying ``ts`` as its timestamps (replacing any); None leaves it unchanged."""
    if ts is None:
        return batch
    if not isinstance(ts, pa.Array):
        ts = pa.array(ts, pa.int64())
    index = batch.schema.get_field_index(TIMESTAMP_COLUMN)
    if index >= 0:
        batch = batch.remove_column(index)
    return batch.append_column(pa.field(TIMESTAMP_COLUMN, pa.int64()), ts)


def batch_to_rows(batch: pa.RecordBatch) -> list[Any]:
    """Convert a RecordBatch back to Python rows of its row kind (see module docstring).

    >>> batch_to_rows(rows_to_batch([1, 2, None]))
    [1, 2, None]
    """
    if batch.schema.get_field_index(TIMESTAMP_COLUMN) >= 0:
        batch = without_timestamps(batch)[0]
    kind = row_kind(batch)
    if kind == TUPLE:
        if batch.num_columns == 0:
            return [()] * batch.num_rows
        return list(zip(*map(_column_to_list, batch.columns)))
    if kind == DICT:
        if batch.num_columns == 0:
            return [{} for _ in range(batch.num_rows)]
        names = batch.schema.names
        if len(set(names)) != len(names):
            raise RecordError(
                f"A dict batch has duplicate column names ({', '.join(names)}); rename them "
                f"before turning rows into dicts"
            )
        return pa.StructArray.from_arrays(batch.columns, fields=list(batch.schema)).to_pylist()
    if kind == SCALAR:
        return _column_to_list(batch.column(0))
    return _load_objects(batch)


def _column_to_list(column: pa.Array) -> list:
    t = column.type
    if column.null_count == 0 and (pa.types.is_integer(t) or pa.types.is_floating(t)):
        return column.to_numpy().tolist()
    return column.to_pylist()


# ---------------------------------------------------------------------------------------------
# object batches: one pickle per row, classes that cannot travel by name in a per-batch table

# class -> table key (None: pickled by name). A plain dict: classes are few and long-lived, and
# the lookup runs once per pickled object of a non-builtin type.
_CLASS_KEYS: dict[type, str | None] = {}
_CLASS_REGISTRY: dict[str, type] = {}  # key -> class, for every class table this process loaded
_TABLE_DUMPS: dict[frozenset, bytes] = {}
_TABLE_LOADS: dict[bytes, dict[str, type]] = {}
_CACHE_LIMIT = 256

try:  # cloudpickle's registry of modules to pickle by value (private API, optional)
    from cloudpickle.cloudpickle import _PICKLE_BY_VALUE_MODULES as _BY_VALUE_MODULES
except ImportError:  # pragma: no cover
    _BY_VALUE_MODULES = set()


def _registered_class(key: str) -> type:
    """Unpickling hook: the class ``key`` of an object batch's class table."""
    try:
        return _CLASS_REGISTRY[key]
    except KeyError:
        raise SerializationError(
            f"A record refers to class key {key!r} that is in no class table this process "
            f"has loaded; object rows must be decoded with batch_to_rows on their batch"
        ) from None


def _class_key(cls: type) -> str | None:
    """Key of a class that must travel by value, or None when pickle finds it by name."""
    try:
        return _CLASS_KEYS[cls]
    except KeyError:
        pass
    key = None if _importable(cls) else uuid.uuid4().hex
    _CLASS_KEYS[cls] = key
    return key


def _importable(cls: Any) -> bool:
    module_name = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", None)
    if not module_name or not qualname or module_name == "__main__" or "<locals>" in qualname:
        return False
    module = sys.modules.get(module_name)
    if module is None or _registered_by_value(module_name):
        return False
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return target is cls


def _registered_by_value(module_name: str) -> bool:
    if not _BY_VALUE_MODULES:
        return False
    parts = module_name.split(".")
    return any(".".join(parts[:i]) in _BY_VALUE_MODULES for i in range(1, len(parts) + 1))


class _RecordPickler(pickle.Pickler):
    """The C pickler; classes that cannot travel by name go to the batch's class table.

    Functions that cannot travel by name (lambdas, closures) are embedded by value with
    cloudpickle. cloudpickle's own reducers (code objects, mappingproxies, ...) are used
    through a flat dispatch table, so lookups stay in C.
    """

    def __init__(self, file: io.BytesIO):
        super().__init__(file, protocol=5)
        # read now, so reducers registered with copyreg after import are honoured
        self.dispatch_table = dict(cloudpickle.CloudPickler.dispatch_table)
        self.classes: dict[str, type] = {}

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type):
            key = _class_key(obj)
            if key is None:
                return NotImplemented
            self.classes[key] = obj
            return _registered_class, (key,)
        if isinstance(obj, types.FunctionType) and not _importable(obj):
            return cloudpickle.loads, (cloudpickle.dumps(obj, protocol=5),)
        return NotImplemented


def _dumps_with_class_table(values: list) -> tuple[list[bytes], dict[str, type]]:
    buffer = io.BytesIO()
    pickler = _RecordPickler(buffer)
    out = []
    for value in values:
        try:
            pickler.dump(value)
        except Exception as exc:  # noqa: BLE001 - anything pickle raises means "cannot ship"
            raise SerializationError(
                f"Cannot serialize a record of type {type(value).__module__}."
                f"{type(value).__qualname__}: {type(exc).__name__}: {exc}. Records that pyflow "
                f"cannot store in Arrow columns are pickled; make the object picklable (e.g. "
                f"define __getstate__/__reduce__, drop open files, locks or sockets) or emit "
                f"plain tuples/dicts instead. Value: {_short_repr(value)}"
            ) from exc
        out.append(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
        pickler.clear_memo()
    return out, pickler.classes


def _class_table_bytes(classes: dict[str, type]) -> bytes:
    cache_key = frozenset(classes)
    blob = _TABLE_DUMPS.get(cache_key)
    if blob is None:
        try:
            blob = cloudpickle.dumps(classes, protocol=5)
        except Exception as exc:  # noqa: BLE001
            names = ", ".join(c.__qualname__ for c in classes.values())
            raise SerializationError(f"Cannot serialize record class(es) {names}: {exc}") from exc
        if len(_TABLE_DUMPS) >= _CACHE_LIMIT:
            _TABLE_DUMPS.clear()
        _TABLE_DUMPS[cache_key] = blob
    return blob


def _load_class_table(blob: bytes) -> dict[str, type]:
    classes = _TABLE_LOADS.get(blob)
    if classes is None:
        try:
            classes = cloudpickle.loads(blob)
        except Exception as exc:  # noqa: BLE001
            raise SerializationError(
                f"Cannot load the record classes of an object batch: {type(exc).__name__}: {exc}"
            ) from exc
        for key, cls in classes.items():
            _CLASS_REGISTRY[key] = cls
            _CLASS_KEYS[cls] = key
        if len(_TABLE_LOADS) >= _CACHE_LIMIT:
            _TABLE_LOADS.clear()
        _TABLE_LOADS[blob] = classes
    return classes


def _object_schema(arrow_type: pa.DataType, table: bytes | None) -> pa.Schema:
    metadata = {ROW_KIND_KEY: b"object"}
    if table is not None:
        metadata[CLASS_TABLE_KEY] = table
    return pa.schema([pa.field(OBJECT_COLUMN, arrow_type)], metadata=metadata)


class _NeedsClassTable(Exception):
    """Internal: plain pickle is not enough for this batch."""


def object_batch(values: Iterable[Any]) -> pa.RecordBatch:
    """An object batch: one pickled value per row in the binary column ``__pyobj__``.

    Plain ``pickle`` (protocol 5) is used where the values' classes can be found by name in
    any process. Otherwise (classes from ``__main__`` or a function, lambdas, values plain
    pickle refuses) the batch is pickled by a pickler that puts such classes, by value with
    cloudpickle, once into a class table in the schema metadata and embeds lambdas with
    cloudpickle. A value that cannot be pickled at all raises
    :class:`~pyflow.errors.SerializationError` naming its type.

    >>> batch_to_rows(object_batch([{1, 2}, None]))
    [{1, 2}, None]
    """
    if not isinstance(values, list):
        values = list(values)
    table = None
    try:
        if _BY_VALUE_MODULES or (values and b"__main__" in pickle.dumps(values[0], 5)):
            raise _NeedsClassTable
        dumps = pickle.dumps
        data = [dumps(v, 5) for v in values]
        if b"__main__" in b"".join(data):
            raise _NeedsClassTable
    except Exception:  # noqa: BLE001 - retried below; real failures are reported there
        data, classes = _dumps_with_class_table(values)
        if classes:
            table = _class_table_bytes(classes)
    array = pa.array(data, type=pa.binary())
    if isinstance(array, pa.ChunkedArray):
        array = pa.array(data, type=pa.large_binary())
    return pa.RecordBatch.from_arrays([array], schema=_object_schema(array.type, table))


def _load_objects(batch: pa.RecordBatch) -> list[Any]:
    metadata = batch.schema.metadata
    if metadata:
        table = metadata.get(CLASS_TABLE_KEY)
        if table is not None:
            _load_class_table(table)
    column = batch.column(0)
    try:
        return list(map(pickle.loads, column.to_pylist()))
    except SerializationError:
        raise
    except Exception as exc:  # noqa: BLE001
        hint = ""
        if isinstance(exc, (ModuleNotFoundError, AttributeError)):
            hint = (
                " The record's class must be importable where it is decoded: ship its module "
                "with the job or define it in the job script."
            )
        raise SerializationError(
            f"Cannot deserialize an object record: {type(exc).__name__}: {exc}.{hint}"
        ) from exc


# ---------------------------------------------------------------------------------------------
# concatenation


def concat_batches(batches: Sequence[pa.RecordBatch]) -> pa.RecordBatch:
    """Concatenate batches of one stream into one batch, keeping the row kind.

    Same schemas take Arrow's zero-copy-ish fast path. Differing column types (int64 vs
    double, null-typed vs typed) are unified with ``promote_options="permissive"`` and cast;
    batches that cannot be unified without changing rows (different row kinds or fields,
    incompatible types) are all converted to one object batch.
    An empty list gives an empty object batch.

    >>> b = concat_batches([rows_to_batch([1]), rows_to_batch([2.5])])
    >>> b.schema.field("value").type, batch_to_rows(b)
    (DataType(double), [1.0, 2.5])
    """
    batches = list(batches)
    if not batches:
        return object_batch([])
    non_empty = [b for b in batches if b.num_rows]
    if not non_empty:
        return batches[0]
    batches = non_empty
    if len(batches) == 1:
        return batches[0]
    first = batches[0].schema
    if all(b.schema.equals(first, check_metadata=True) for b in batches[1:]):
        return pa.concat_batches(batches)
    kinds = {row_kind(b) for b in batches}
    if len(kinds) == 1:
        (kind,) = kinds
        if kind == OBJECT:
            return _concat_object_batches(batches)
        unified = _unify(batches, kind)
        if unified is not None:
            return unified
    rows: list[Any] = []
    for b in batches:
        rows.extend(batch_to_rows(b))
    return object_batch(rows)


def _concat_object_batches(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    classes: dict[str, type] = {}
    large = False
    for b in batches:
        table = (b.schema.metadata or {}).get(CLASS_TABLE_KEY)
        if table is not None:
            classes.update(_load_class_table(table))
        large = large or pa.types.is_large_binary(b.schema[0].type)
    arrow_type = pa.large_binary() if large else pa.binary()
    schema = _object_schema(arrow_type, _class_table_bytes(classes) if classes else None)
    columns = [b.column(0).cast(arrow_type) for b in batches]
    return pa.RecordBatch.from_arrays([pa.concat_arrays(columns)], schema=schema)


def _unify(batches: list[pa.RecordBatch], kind: str) -> pa.RecordBatch | None:
    names = batches[0].schema.names
    name_set = set(names)
    aligned = []
    for b in batches:
        b_names = b.schema.names
        if b_names != names:
            if kind != DICT or set(b_names) != name_set or len(b_names) != len(names):
                return None
            b = b.select(names)
        aligned.append(b)
    schemas = [b.schema.remove_metadata() for b in aligned]
    try:
        target = pa.unify_schemas(schemas, promote_options="permissive")
    except _ARROW_CONVERSION_ERRORS:
        return None
    for schema in schemas:
        for field, target_field in zip(schema, target):
            if not _same_shape(field.type, target_field.type):
                return None
    metadata = dict(batches[0].schema.metadata or {})
    metadata[ROW_KIND_KEY] = _KIND_BYTES[kind]
    target = target.with_metadata(metadata)
    try:
        cast = [b.cast(target) if not b.schema.equals(target) else b for b in aligned]
        cast = [b.replace_schema_metadata(metadata) for b in cast]
        return pa.concat_batches(cast)
    except _ARROW_CONVERSION_ERRORS:
        return None


def _same_shape(source: pa.DataType, target: pa.DataType) -> bool:
    """False when promoting ``source`` to ``target`` would add struct fields (dict keys)."""
    if pa.types.is_null(source):
        return True
    if pa.types.is_struct(source):
        if not pa.types.is_struct(target) or source.num_fields != target.num_fields:
            return False
        return all(
            _same_shape(source.field(i).type, target.field(source.field(i).name).type)
            for i in range(source.num_fields)
        )
    if _is_list(source):
        return hasattr(target, "value_type") and _same_shape(source.value_type, target.value_type)
    return True


# ---------------------------------------------------------------------------------------------
# fields


def field_index(schema: pa.Schema | pa.RecordBatch, name_or_pos: str | int) -> int:
    """Index of a field given by name (``"price"``, ``"f0"``) or position (``0``).

    >>> field_index(rows_to_batch([(1, "a")]).schema, "f1")
    1
    """
    if not isinstance(schema, pa.Schema):
        schema = schema.schema
    names = schema.names
    if isinstance(name_or_pos, (int, np.integer)) and not isinstance(name_or_pos, (bool, np.bool_)):
        position = int(name_or_pos)
        if 0 <= position < len(names):
            return position
        raise RecordError(
            f"Field position {position} is out of range: the stream has {len(names)} field(s): "
            f"{_field_list(schema)}"
        )
    if isinstance(name_or_pos, str):
        index = schema.get_field_index(name_or_pos)
        if index >= 0:
            return index
        if names.count(name_or_pos) > 1:
            raise RecordError(f"Field name '{name_or_pos}' is ambiguous: it occurs more than once")
        raise RecordError(
            f"No field '{name_or_pos}' in the stream; available fields: {_field_list(schema)}"
        )
    raise ProgramError(
        f"A field is given by name (str) or position (int), got {type(name_or_pos).__qualname__} "
        f"{_short_repr(name_or_pos)}"
    )


def _field_list(schema: pa.Schema) -> str:
    if not len(schema):
        return "(none)"
    return ", ".join(f"{i}: {f.name} ({f.type})" for i, f in enumerate(schema))


@functools.lru_cache(maxsize=256)
def numpy_dtype(arrow_type: pa.DataType) -> np.dtype:
    """The numpy dtype that holds values of ``arrow_type`` (what ``to_numpy`` gives), without
    pyarrow's ``to_pandas_dtype``, which needs pandas in some pyarrow builds."""
    return pa.array([], type=arrow_type).to_numpy(zero_copy_only=False).dtype
