"""Vectorized keyed aggregations: Flink's ``KeyedStream.sum/min/max/min_by/max_by`` and ``count``.

:class:`KeyedAggregation` owns the state of one aggregation over the keys of one parallel
operator instance and computes on whole Arrow batches with numpy; no per-row Python runs
(per-*key* Python runs once per distinct key in a batch, to map it to a state slot).

Two modes, as in Flink:

* ``rolling=True`` (STREAMING): :meth:`KeyedAggregation.add` returns one output row per input
  row, in input order: the aggregate so far for that row's key, exactly the records Flink's
  rolling aggregation emits one by one.
* ``rolling=False`` (BATCH): :meth:`~KeyedAggregation.add` returns ``None`` and
  :meth:`~KeyedAggregation.finish` returns one row per key, keys in order of first appearance.

Output, per kind (Flink's ``SumAggregator`` / ``ComparableAggregator``):

* ``sum``/``min``/``max``: the input schema (metadata included); the aggregated fields hold the
  aggregate, every other field the value of the **first** record seen for the key. A sum of
  integers is ``int64`` (``uint64`` stays ``uint64``) and wraps on overflow like Java's ``long``;
  a sum of floats is ``float64``.
* ``min_by``/``max_by``: the whole record holding the minimum/maximum of the field; on ties the
  **first** such record wins.
* ``count``: the key fields followed by ``count`` (``int64``), row kind ``dict``.

Nulls in an aggregated field are ignored: they neither reset nor change the aggregate, and the
aggregate is null while a key has seen only nulls (``min_by``/``max_by`` then keep the key's
first record). For ``min``/``max``/``min_by``/``max_by`` a float NaN is ignored like a null; a sum
propagates NaN. Rolling float sums are added pairwise within a batch, so the last bits may differ
from strictly sequential addition.

``min``/``max``/``min_by``/``max_by`` compare integers, floats, bools, dates, times, timestamps
and durations directly, and strings, binaries and decimals by rank; ``sum`` takes integers and
floats. Key fields may be of any type ``pyarrow.compute.dictionary_encode`` supports (others go
through their Python values, slowly). Keys are compared by Python equality, so ``0.0`` and
``-0.0`` are one key and all NaNs are one key.

Example::

    >>> import pyarrow as pa
    >>> agg = KeyedAggregation("sum", ["n"], ["word"], rolling=True)
    >>> out = agg.add(pa.record_batch({"word": ["a", "b", "a"], "n": [1, 2, 3]}))
    >>> out.column("n").to_pylist()
    [1, 2, 4]
    >>> state = agg.snapshot()
    >>> KeyedAggregation.restore(state).add(pa.record_batch({"word": ["a"], "n": [10]})).to_pylist()
    [{'word': 'a', 'n': 14}]
"""

from __future__ import annotations

from pyflow.runtime.records import numpy_dtype

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyflow.errors import ProgramError, RecordError

__all__ = ["AGGREGATION_KINDS", "KeyedAggregation"]

#: The kinds :class:`KeyedAggregation` computes.
AGGREGATION_KINDS = ("sum", "min", "max", "min_by", "max_by", "count")

ROW_KIND_KEY = b"pyflow.row"  # as pyflow.runtime.records.ROW_KIND_KEY
_SNAPSHOT_KEY = b"pyflow.aggregation"
_SNAPSHOT_SCHEMA_KEY = b"pyflow.aggregation.input_schema"
_SNAPSHOT_VERSION = 1
_COUNT_FIELD = "count"

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min
_UINT64_MAX = np.iinfo(np.uint64).max


class _NaNKey:
    """The one Python key all float NaN keys map to (NaN != NaN would split them)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NaN"


_NAN_KEY = _NaNKey()


# -- small numpy helpers ------------------------------------------------------------------------


def _grow(arr: np.ndarray, size: int, fill) -> np.ndarray:
    """``arr`` with room for at least ``size`` entries; new entries hold ``fill``."""
    if size <= len(arr):
        return arr
    new = np.full(max(size, 2 * len(arr), 64), fill, dtype=arr.dtype)
    new[: len(arr)] = arr
    return new


def _valid_mask(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=bool)
    return arr.is_valid().to_numpy(zero_copy_only=False)


def _fixed_width_values(arr: pa.Array, dtype: np.dtype) -> np.ndarray:
    """The values buffer of a fixed-width array, zero-copy; null slots hold garbage."""
    return np.frombuffer(
        arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize
    )


def _as_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


# -- comparison codes -----------------------------------------------------------------------------


def _is_direct_comparable(t: pa.DataType) -> bool:
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or (pa.types.is_temporal(t) and t.bit_width in (32, 64))
    )


def _is_rank_comparable(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_decimal(t)
    )


def _code_dtype(t: pa.DataType) -> np.dtype:
    if pa.types.is_floating(t):
        return np.dtype(np.float64)
    if pa.types.is_unsigned_integer(t) and t.bit_width == 64:
        return np.dtype(np.uint64)
    return np.dtype(np.int64)


def _direct_codes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(codes, valid): numbers ordered like the values; NaN counts as invalid."""
    t = arr.type
    valid = _valid_mask(arr)
    if pa.types.is_boolean(t):
        codes = arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.int64)
    elif pa.types.is_floating(t):
        codes = _fixed_width_values(arr, numpy_dtype(t)).astype(np.float64)
        nan = np.isnan(codes)
        if nan.any():
            valid = valid & ~nan
    elif pa.types.is_integer(t):
        codes = _fixed_width_values(arr, numpy_dtype(t)).astype(_code_dtype(t))
    else:  # temporal
        storage = np.dtype(np.int32 if t.bit_width == 32 else np.int64)
        codes = _fixed_width_values(arr, storage).astype(np.int64)
    return codes, valid


def _codes_to_arrow(codes: np.ndarray, has: np.ndarray, t: pa.DataType) -> pa.Array:
    """The inverse of :func:`_direct_codes` (and the sum output): values, null where not ``has``."""
    mask = ~has
    if pa.types.is_boolean(t):
        return pa.array(codes.astype(bool), type=t, mask=mask)
    if pa.types.is_floating(t):
        if t.bit_width == 16:
            return pa.array(codes.astype(np.float16), type=t, mask=mask)
        return pa.array(codes.astype(numpy_dtype(t)), type=t, mask=mask)
    if pa.types.is_integer(t):
        return pa.array(codes.astype(numpy_dtype(t)), type=t, mask=mask)
    storage = np.int32 if t.bit_width == 32 else np.int64
    return pa.array(codes.astype(storage), mask=mask).view(t)


def _fill_for(op: np.ufunc, dtype: np.dtype):
    """The identity of min/max for ``dtype`` (what an invalid value is replaced with)."""
    if dtype == np.float64:
        return np.inf if op is np.minimum else -np.inf
    if dtype == np.uint64:
        return _UINT64_MAX if op is np.minimum else 0
    return _INT64_MAX if op is np.minimum else _INT64_MIN


def _at_least_as_good(op: np.ufunc, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a <= b if op is np.minimum else a >= b


# -- key encoding ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Encoded:
    """One batch's keys: local ids (dense, in order of first appearance) and their slots."""

    n: int
    ids: np.ndarray  # local id of each row
    k: int  # number of distinct keys in the batch
    first_pos: np.ndarray  # first row of each local id
    local_slots: np.ndarray  # state slot of each local id
    exists: np.ndarray  # bool per local id: the slot held state before this batch
    new_locals: np.ndarray  # local ids that opened a new slot, in slot order
    row_slots: np.ndarray  # state slot of each row


def _freeze(value):
    """A hashable, canonical Python key for a value of a nested type."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, float) and math.isnan(value):
        return _NAN_KEY
    return value


def _python_keys(arr: pa.Array) -> list:
    """The Python values of a key column, as dict keys (NaN canonical, nested types frozen)."""
    values = arr.to_pylist()
    t = arr.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_floating(t):
        return [_NAN_KEY if (v is not None and math.isnan(v)) else v for v in values]
    if pa.types.is_nested(t):
        return [_freeze(v) for v in values]
    return values


def _dictionary_ids(column: pa.Array) -> tuple[np.ndarray, pa.Array | None, int]:
    """(ids, dictionary, size) with ids in order of first appearance; dictionary None when the
    type has no Arrow kernel (then ids come from Python values)."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_floating(column.type):
        # Arrow tells 0.0 from -0.0 and NaNs apart by their bits; Python keys do not.
        if column.type.bit_width == 16:
            column = column.cast(pa.float32())
        zero, nan = pa.scalar(0.0, column.type), pa.scalar(float("nan"), column.type)
        column = pc.if_else(pc.equal(column, zero), zero, column)
        column = pc.if_else(pc.is_nan(column), nan, column)
    try:
        encoded = pc.dictionary_encode(column, null_encoding="encode")
    except pa.ArrowNotImplementedError:
        local: dict = {}
        ids = np.fromiter(
            (local.setdefault(_freeze(v), len(local)) for v in column.to_pylist()),
            dtype=np.int64,
            count=len(column),
        )
        return ids, None, len(local)
    indices = encoded.indices
    ids = _fixed_width_values(indices, numpy_dtype(indices.type))
    return ids.astype(np.int64), encoded.dictionary, len(encoded.dictionary)


def _first_positions(ids: np.ndarray) -> np.ndarray:
    """The first row of each local id, given ids numbered in order of first appearance."""
    running_max = np.maximum.accumulate(ids)
    is_first = np.empty(len(ids), dtype=bool)
    is_first[0] = True
    np.greater(running_max[1:], running_max[:-1], out=is_first[1:])
    return np.flatnonzero(is_first)


def _make_encoded(n, ids, k, first_pos, local_slots, old_num_slots) -> _Encoded:
    exists = local_slots < old_num_slots
    return _Encoded(
        n=n,
        ids=ids,
        k=k,
        first_pos=first_pos,
        local_slots=local_slots,
        exists=exists,
        new_locals=np.flatnonzero(~exists),
        row_slots=local_slots[ids],
    )


class _KeyIndex:
    """Maps keys to dense state slots ``0, 1, 2, ...`` in order of first appearance."""

    def __init__(self) -> None:
        self.slots: dict = {}
        self.num_slots = 0

    def encode(self, key_columns: Sequence[pa.Array]) -> _Encoded:
        n = len(key_columns[0])
        if len(key_columns) == 1:
            ids, dictionary, k = _dictionary_ids(key_columns[0])
            first_pos = _first_positions(ids)
            if dictionary is not None:
                uniques = _python_keys(dictionary)
            else:
                uniques = _python_keys(key_columns[0].take(first_pos))
        else:
            combined = None
            bound = 1
            for column in key_columns:
                col_ids, _, size = _dictionary_ids(column)
                size = max(size, 1)
                if combined is None:
                    combined, bound = col_ids, size
                    continue
                if bound * size >= 2**62:  # re-densify before the product could overflow
                    combined, _, bound = _dictionary_ids(pa.array(combined))
                combined = combined * size + col_ids
                bound *= size
            ids, _, k = _dictionary_ids(pa.array(combined))
            first_pos = _first_positions(ids)
            index = pa.array(first_pos)
            uniques = list(zip(*(_python_keys(c.take(index)) for c in key_columns)))

        old_num_slots = self.num_slots
        get = self.slots.get
        local_slots = np.fromiter(map(get, uniques, repeat(-1, k)), dtype=np.int64, count=k)
        merged = False
        if (local_slots < 0).any():
            slots = self.slots
            for local in np.flatnonzero(local_slots < 0).tolist():
                key = uniques[local]
                slot = slots.get(key)
                if slot is None:
                    slot = slots[key] = self.num_slots
                    self.num_slots += 1
                else:
                    merged = True
                local_slots[local] = slot
        if merged:
            # Keys Arrow told apart but Python equates (none known after normalization):
            # fold their local ids into one, keeping the order of first appearance.
            unique_slots, first_local, inverse = np.unique(
                local_slots, return_index=True, return_inverse=True
            )
            order = np.argsort(first_local)
            new_id = np.empty(len(order), dtype=np.int64)
            new_id[order] = np.arange(len(order), dtype=np.int64)
            ids = new_id[inverse][ids]
            first_pos = first_pos[first_local[order]]
            local_slots = unique_slots[order]
            k = len(local_slots)
        return _make_encoded(n, ids, k, first_pos, local_slots, old_num_slots)

    def rebuild(self, key_columns: Sequence[pa.Array]) -> None:
        """Restore: slot ``i`` holds the key in row ``i`` of ``key_columns``."""
        if len(key_columns) == 1:
            keys = _python_keys(key_columns[0])
        else:
            keys = list(zip(*(_python_keys(c) for c in key_columns)))
        self.slots = {key: slot for slot, key in enumerate(keys)}
        self.num_slots = len(keys)


def _is_int_like_key(t: pa.DataType) -> bool:
    return _is_direct_comparable(t)  # ints, floats, bools, dates/times/timestamps/durations


def _int_key_codes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64 codes, valid) such that equal codes <=> equal Python keys (floats: -0.0 is 0.0,
    all NaNs are one)."""
    codes, valid = _direct_codes(arr)  # floats: NaN marked invalid here
    if codes.dtype == np.float64:
        nan = np.isnan(codes)
        codes = np.where(codes == 0.0, 0.0, codes)
        codes[nan] = np.nan
        valid = _valid_mask(arr)
        return codes.view(np.int64), valid
    return codes.view(np.int64), valid


_FIB = np.uint64(0x9E3779B97F4A7C15)


class _Int64SlotTable:
    """An open-addressing hash table int64 -> slot, probed and filled with numpy."""

    def __init__(self, capacity: int = 1024):
        self._alloc(capacity)
        self.count = 0

    def _alloc(self, capacity: int) -> None:
        self.capacity = capacity
        self._shift = np.uint64(64 - (capacity.bit_length() - 1))
        self._mask = capacity - 1
        self.keys = np.zeros(capacity, dtype=np.int64)
        self.values = np.full(capacity, -1, dtype=np.int64)

    def _buckets(self, keys: np.ndarray) -> np.ndarray:
        return ((keys.view(np.uint64) * _FIB) >> self._shift).astype(np.int64)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        result = np.full(len(keys), -1, dtype=np.int64)
        todo = np.arange(len(keys))
        buckets = self._buckets(keys)
        while len(todo):
            found = self.values[buckets]
            hit = (found >= 0) & (self.keys[buckets] == keys[todo])
            result[todo[hit]] = found[hit]
            probe = (found >= 0) & ~hit
            todo = todo[probe]
            buckets = (buckets[probe] + 1) & self._mask
        return result

    def insert(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Insert distinct keys that are not in the table yet."""
        if 2 * (self.count + len(keys)) > self.capacity:
            old_keys, old_values = self.keys[self.values >= 0], self.values[self.values >= 0]
            capacity = self.capacity
            while 2 * (self.count + len(keys)) > capacity:
                capacity *= 2
            self._alloc(capacity)
            self._insert(old_keys, old_values)
        self._insert(keys, values)
        self.count += len(keys)

    def _insert(self, keys: np.ndarray, values: np.ndarray) -> None:
        todo = np.arange(len(keys))
        buckets = self._buckets(keys)
        while len(todo):
            free = np.flatnonzero(self.values[buckets] < 0)
            _, first = np.unique(buckets[free], return_index=True)
            winners = free[first]  # one key per free bucket
            self.keys[buckets[winners]] = keys[todo[winners]]
            self.values[buckets[winners]] = values[todo[winners]]
            rest = np.ones(len(todo), dtype=bool)
            rest[winners] = False
            todo = todo[rest]
            buckets = (buckets[rest] + 1) & self._mask


class _IntKeyIndex:
    """:class:`_KeyIndex` for one numeric, bool or temporal key column, without per-key Python."""

    def __init__(self) -> None:
        self.table = _Int64SlotTable()
        self.null_slot = -1
        self.num_slots = 0

    def _assign(self, uniques: pa.Array) -> np.ndarray:
        codes, valid = _int_key_codes(uniques)
        local_slots = np.full(len(uniques), -1, dtype=np.int64)
        all_valid = valid.all()
        if all_valid:
            local_slots[:] = self.table.lookup(codes)
        else:
            local_slots[valid] = self.table.lookup(codes[valid])
            local_slots[~valid] = self.null_slot
        missing = np.flatnonzero(local_slots < 0)
        if len(missing):
            new_slots = self.num_slots + np.arange(len(missing), dtype=np.int64)
            local_slots[missing] = new_slots
            self.num_slots += len(missing)
            if all_valid:
                self.table.insert(codes[missing], new_slots)
            else:
                missing_valid = valid[missing]
                self.table.insert(codes[missing[missing_valid]], new_slots[missing_valid])
                if not missing_valid.all():
                    self.null_slot = int(new_slots[~missing_valid][0])
        return local_slots

    def encode(self, key_columns: Sequence[pa.Array]) -> _Encoded:
        (column,) = key_columns
        old_num_slots = self.num_slots
        ids, dictionary, k = _dictionary_ids(column)
        first_pos = _first_positions(ids)
        local_slots = self._assign(dictionary)
        return _make_encoded(len(column), ids, k, first_pos, local_slots, old_num_slots)

    def rebuild(self, key_columns: Sequence[pa.Array]) -> None:
        (column,) = key_columns
        self.table = _Int64SlotTable()
        self.null_slot = -1
        self.num_slots = 0
        self._assign(column)


# -- segments: rows grouped by key, for the per-row (rolling) scans ----------------------------


class _Segments:
    """The rows of one batch sorted (stably) by local key id, with segmented scans over them."""

    def __init__(self, enc: _Encoded):
        ids, k, n = enc.ids, enc.k, enc.n
        if k <= 1 << 16:
            order = np.argsort(ids.astype(np.uint16), kind="stable")  # radix sort
        else:
            order = np.argsort(ids, kind="stable")
        counts = np.bincount(ids, minlength=k)
        starts = np.zeros(k, dtype=np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        self.n = n
        self.order = order
        self.sorted_ids = ids[order]
        self.starts = starts
        self.last = starts + counts - 1  # sorted position of each local id's last row
        self.pos = np.arange(n, dtype=np.int64) - starts[self.sorted_ids]
        self.max_len = int(counts.max()) if k else 0

    def sort(self, values: np.ndarray) -> np.ndarray:
        return values[self.order]

    def unsort(self, sorted_values: np.ndarray) -> np.ndarray:
        out = np.empty_like(sorted_values)
        out[self.order] = sorted_values
        return out

    def cumsum(self, sorted_values: np.ndarray) -> np.ndarray:
        """Running sum within each segment (integers: exact, wrapping)."""
        total = np.cumsum(sorted_values)
        before = total[self.starts] - sorted_values[self.starts]
        return total - before[self.sorted_ids]

    def scan(self, sorted_values: np.ndarray, op: np.ufunc) -> np.ndarray:
        """Running ``op`` (add, minimum, maximum) within each segment, in log2(longest) steps."""
        out = sorted_values.copy()
        pos = self.pos
        step = 1
        while step < self.max_len:
            combined = op(out[step:], out[:-step])
            out[step:] = np.where(pos[step:] >= step, combined, out[step:])
            step *= 2
        return out


# -- row stores -----------------------------------------------------------------------------------


class _RowStore:
    """Append-only rows (an Arrow table in a few chunks) addressed by a global row index."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self._chunks: list[pa.Table] = []
        self.num_rows = 0

    def append(self, table: pa.Table) -> int:
        start = self.num_rows
        if table.num_rows == 0:
            return start
        self._chunks.append(table)
        self.num_rows += table.num_rows
        # Merge like a binary counter: O(log n) chunks, each row copied O(log n) times.
        while len(self._chunks) > 1 and self._chunks[-2].num_rows <= 2 * self._chunks[-1].num_rows:
            tail = self._chunks.pop()
            self._chunks[-1] = pa.concat_tables([self._chunks[-1], tail]).combine_chunks()
        return start

    def table(self) -> pa.Table:
        if not self._chunks:
            return self.schema.empty_table()
        if len(self._chunks) == 1:
            return self._chunks[0]
        return pa.concat_tables(self._chunks)

    def take(self, indices: np.ndarray) -> pa.Table:
        return self.table().take(pa.array(indices, type=pa.int64()))

    def replace(self, table: pa.Table) -> None:
        self._chunks = [table] if table.num_rows else []
        self.num_rows = table.num_rows


def _to_batch(table: pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    arrays = [_as_array(c) for c in table.columns]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# -- per-field accumulators for sum / min / max ---------------------------------------------------


class _SlotAccumulator:
    """An aggregate kept as one numpy value (``acc``) and a has-a-value flag (``has``) per key slot."""

    index: int
    out_type: pa.DataType
    acc: np.ndarray
    has: np.ndarray

    def grow(self, num_slots: int) -> None:
        raise NotImplementedError

    def result(self, num_slots: int) -> pa.Array:
        return _codes_to_arrow(self.acc[:num_slots], self.has[:num_slots], self.out_type)

    def snapshot(self, num_slots: int) -> dict[str, pa.Array]:
        return {
            f"acc.{self.index}": pa.array(self.acc[:num_slots]),
            f"has.{self.index}": pa.array(self.has[:num_slots]),
        }

    def restore(self, table: pa.Table, num_slots: int) -> None:
        self.grow(num_slots)
        self.acc[:num_slots] = table.column(f"acc.{self.index}").to_numpy()
        self.has[:num_slots] = table.column(f"has.{self.index}").to_numpy()


class _SumField(_SlotAccumulator):
    def __init__(self, index: int, in_type: pa.DataType):
        self.index = index
        if pa.types.is_floating(in_type):
            self.out_type = pa.float64()
        elif pa.types.is_unsigned_integer(in_type) and in_type.bit_width == 64:
            self.out_type = pa.uint64()
        else:
            self.out_type = pa.int64()
        self.dtype = numpy_dtype(self.out_type)
        self.acc = np.zeros(0, dtype=self.dtype)
        self.has = np.zeros(0, dtype=bool)

    def _values(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        values = _fixed_width_values(arr, numpy_dtype(arr.type)).astype(self.dtype)
        valid = _valid_mask(arr)
        if arr.null_count:
            values = np.where(valid, values, 0)
        return values, valid

    def grow(self, num_slots: int) -> None:
        self.acc = _grow(self.acc, num_slots, 0)
        self.has = _grow(self.has, num_slots, False)

    def rolling(self, arr: pa.Array, enc: _Encoded, seg: _Segments, num_slots: int) -> pa.Array:
        values, valid = self._values(arr)
        values, valid = seg.sort(values), seg.sort(valid)
        if self.dtype == np.float64:
            running = seg.scan(values, np.add)
        else:
            running = seg.cumsum(values)
        has_run = seg.cumsum(valid.astype(np.int64)) > 0
        slots = enc.local_slots[seg.sorted_ids]
        out = self.acc[slots] + running
        out_has = self.has[slots] | has_run
        last_slots = enc.local_slots
        self.acc[last_slots] = out[seg.last]
        self.has[last_slots] = out_has[seg.last]
        return _codes_to_arrow(seg.unsort(out), seg.unsort(out_has), self.out_type)

    def final(self, arr: pa.Array, enc: _Encoded, num_slots: int) -> None:
        values, valid = self._values(arr)
        slots = enc.row_slots
        if arr.null_count:
            slots, values = slots[valid], values[valid]
        np.add.at(self.acc, slots, values)
        self.has[slots] = True



class _MinMaxField(_SlotAccumulator):
    """``min``/``max`` of a directly comparable field: numpy codes per slot."""

    def __init__(self, index: int, in_type: pa.DataType, op: np.ufunc):
        self.index = index
        self.out_type = in_type
        self.op = op
        self.dtype = _code_dtype(in_type)
        self.fill = _fill_for(op, self.dtype)
        self.acc = np.zeros(0, dtype=self.dtype)
        self.has = np.zeros(0, dtype=bool)

    def grow(self, num_slots: int) -> None:
        self.acc = _grow(self.acc, num_slots, self.fill)
        self.has = _grow(self.has, num_slots, False)

    def _codes(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        codes, valid = _direct_codes(arr)
        if not valid.all():
            codes = np.where(valid, codes, self.dtype.type(self.fill))
        return codes, valid

    def rolling(self, arr: pa.Array, enc: _Encoded, seg: _Segments, num_slots: int) -> pa.Array:
        codes, valid = self._codes(arr)
        running = seg.scan(seg.sort(codes), self.op)
        has_run = seg.cumsum(seg.sort(valid).astype(np.int64)) > 0
        slots = enc.local_slots[seg.sorted_ids]
        # Slots without a value hold the fill, the identity of op.
        out = self.op(self.acc[slots], running)
        out_has = self.has[slots] | has_run
        self.acc[enc.local_slots] = out[seg.last]
        self.has[enc.local_slots] = out_has[seg.last]
        return _codes_to_arrow(seg.unsort(out), seg.unsort(out_has), self.out_type)

    def final(self, arr: pa.Array, enc: _Encoded, num_slots: int) -> None:
        codes, valid = self._codes(arr)
        slots = enc.row_slots
        if not valid.all():
            slots, codes = slots[valid], codes[valid]
        self.op.at(self.acc, slots, codes)
        self.has[slots] = True



class _ArgBest:
    """The row holding the min/max of one field per slot, first row winning ties.

    The rows live in a :class:`_RowStore` (``best_row[slot]`` indexes it); directly comparable
    fields keep their best value as a numpy code per slot, others are ranked batch by batch
    together with the current best values of the batch's keys.
    """

    def __init__(self, field_index: int, field_type: pa.DataType, op: np.ufunc, schema: pa.Schema):
        self.field_index = field_index  # column of the compared field in the stored rows
        self.op = op
        self.direct = _is_direct_comparable(field_type)
        self.dtype = _code_dtype(field_type) if self.direct else np.dtype(np.int64)
        self.fill = _fill_for(op, self.dtype)
        self.store = _RowStore(schema)
        self.best_row = np.zeros(0, dtype=np.int64)
        self.has = np.zeros(0, dtype=bool)
        self.codes = np.zeros(0, dtype=self.dtype)

    def grow(self, num_slots: int) -> None:
        self.best_row = _grow(self.best_row, num_slots, -1)
        self.has = _grow(self.has, num_slots, False)
        self.codes = _grow(self.codes, num_slots, self.fill)

    def _batch_and_state_codes(self, column: pa.Array, enc: _Encoded, state_rows: pa.Table | None):
        """Codes of the batch rows and, per local id, of the slot's current best."""
        state_locals = np.flatnonzero(enc.exists)
        state_code = np.full(enc.k, self.fill, dtype=self.dtype)
        if self.direct:
            codes, valid = _direct_codes(column)
            state_code[state_locals] = self.codes[enc.local_slots[state_locals]]
        else:
            values = column
            if state_rows is not None and state_rows.num_rows:
                values = pa.concat_arrays(
                    [_as_array(state_rows.column(self.field_index)).cast(column.type), column]
                )
            ranks = pc.rank(values, sort_keys="ascending", tiebreaker="dense")
            ranks = ranks.to_numpy().astype(np.int64)
            m = len(values) - len(column)
            codes, valid = ranks[m:], _valid_mask(column)
            state_code[state_locals] = ranks[:m]
        if not valid.all():
            codes = np.where(valid, codes, self.dtype.type(self.fill))
        state_has = np.zeros(enc.k, dtype=bool)
        state_has[state_locals] = self.has[enc.local_slots[state_locals]]
        return codes.astype(self.dtype, copy=False), valid, state_code, state_has

    def _state_rows(self, enc: _Encoded) -> tuple[np.ndarray, pa.Table | None]:
        state_locals = np.flatnonzero(enc.exists)
        if len(state_locals) == 0:
            return state_locals, None
        return state_locals, self.store.take(self.best_row[enc.local_slots[state_locals]])

    def _commit(self, enc, batch_wins, batch_rows, out_code, out_has, batch, num_slots) -> None:
        """Per local id: the new best; rows from the batch are appended to the store."""
        slots = enc.local_slots
        if batch_wins.any():
            winners = np.flatnonzero(batch_wins)
            start = self.store.append(batch.take(pa.array(batch_rows[winners])))
            self.best_row[slots[winners]] = start + np.arange(len(winners), dtype=np.int64)
        self.has[slots] = out_has
        if self.direct:
            self.codes[slots] = out_code
        if self.store.num_rows > 2 * num_slots + 4096:  # drop rows that are no one's best
            self.store.replace(self.store.take(self.best_row[:num_slots]).combine_chunks())
            self.best_row[:num_slots] = np.arange(num_slots, dtype=np.int64)

    def rolling(
        self, enc: _Encoded, seg: _Segments, batch: pa.Table, column: pa.Array, num_slots: int
    ):
        """(source table, row index into it per input row) of the best row so far per row."""
        state_locals, state_rows = self._state_rows(enc)
        codes, valid, state_code, state_has = self._batch_and_state_codes(column, enc, state_rows)
        c = seg.sort(codes)
        v = seg.sort(valid)
        run = seg.scan(c, self.op)
        has_run = seg.cumsum(v.astype(np.int64)) > 0
        n = seg.n
        changed = seg.pos == 0
        changed[1:] |= (has_run[1:] & ~has_run[:-1]) | (run[1:] != run[:-1])
        best_sorted = np.maximum.accumulate(np.where(changed, np.arange(n), 0))
        within_row = seg.order[best_sorted]  # batch row holding the best within the batch

        li = seg.sorted_ids
        ex, sh, sc = enc.exists[li], state_has[li], state_code[li]
        state_wins = ex & (
            (sh & (~has_run | _at_least_as_good(self.op, sc, run))) | (~sh & ~has_run)
        )
        out_has = (ex & sh) | has_run
        out_code = np.where(state_wins, sc, run)

        m = len(state_locals)
        state_pos = np.zeros(enc.k, dtype=np.int64)
        state_pos[state_locals] = np.arange(m, dtype=np.int64)
        source_index = np.where(state_wins, state_pos[li], m + within_row)

        last = seg.last
        self._commit(
            enc,
            ~state_wins[last],
            within_row[last],
            out_code[last],
            out_has[last],
            batch,
            num_slots,
        )
        if state_rows is None:
            source = batch
        else:
            source = pa.concat_tables([state_rows, batch])
        return source, seg.unsort(source_index)

    def final(self, enc: _Encoded, batch: pa.Table, column: pa.Array, num_slots: int) -> None:
        _, state_rows = self._state_rows(enc) if not self.direct else (None, None)
        codes, valid, state_code, state_has = self._batch_and_state_codes(column, enc, state_rows)
        k, ids = enc.k, enc.ids
        local_best = np.full(k, self.fill, dtype=self.dtype)
        self.op.at(local_best, ids, codes)
        local_has = np.bincount(ids[valid], minlength=k) > 0
        candidates = valid & (codes == local_best[ids])
        best_pos = np.full(k, enc.n, dtype=np.int64)
        np.minimum.at(best_pos, ids[candidates], np.flatnonzero(candidates))
        best_pos = np.where(local_has, best_pos, enc.first_pos)

        ex = enc.exists
        state_wins = ex & (
            (state_has & (~local_has | _at_least_as_good(self.op, state_code, local_best)))
            | (~state_has & ~local_has)
        )
        out_has = (ex & state_has) | local_has
        out_code = np.where(state_wins, state_code, local_best)
        self._commit(enc, ~state_wins, best_pos, out_code, out_has, batch, num_slots)

    def best_rows(self, num_slots: int) -> pa.Table:
        return self.store.take(self.best_row[:num_slots])

    def restore(self, rows: pa.Table, has: np.ndarray) -> None:
        num_slots = rows.num_rows
        self.grow(num_slots)
        self.store.replace(rows)
        self.best_row[:num_slots] = np.arange(num_slots, dtype=np.int64)
        self.has[:num_slots] = has
        if self.direct and num_slots:
            codes, _ = _direct_codes(_as_array(rows.column(self.field_index)))
            self.codes[:num_slots] = np.where(has, codes, self.dtype.type(self.fill))


class _RankMinMaxField:
    """``min``/``max`` of a field compared by rank (strings, binaries, decimals)."""

    def __init__(self, index: int, in_type: pa.DataType, op: np.ufunc):
        self.index = index
        self.out_type = in_type
        self.best = _ArgBest(0, in_type, op, pa.schema([pa.field("value", in_type)]))

    def grow(self, num_slots: int) -> None:
        self.best.grow(num_slots)

    def rolling(self, arr: pa.Array, enc: _Encoded, seg: _Segments, num_slots: int) -> pa.Array:
        # While a key has seen only nulls its best row is its first, whose value is null.
        source, index = self.best.rolling(enc, seg, pa.table({"value": arr}), arr, num_slots)
        return _as_array(source.column(0).take(pa.array(index)))

    def final(self, arr: pa.Array, enc: _Encoded, num_slots: int) -> None:
        self.best.final(enc, pa.table({"value": arr}), arr, num_slots)

    def result(self, num_slots: int) -> pa.Array:
        return _as_array(self.best.best_rows(num_slots).column(0))

    def snapshot(self, num_slots: int) -> dict[str, pa.Array]:
        return {
            f"val.{self.index}": self.result(num_slots),
            f"has.{self.index}": pa.array(self.best.has[:num_slots]),
        }

    def restore(self, table: pa.Table, num_slots: int) -> None:
        values = _as_array(table.column(f"val.{self.index}"))
        self.best.restore(pa.table({"value": values}), table.column(f"has.{self.index}").to_numpy())


# -- the operator's aggregation -------------------------------------------------------------------


def _as_batch(batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    if isinstance(batch, pa.RecordBatch):
        return batch
    if isinstance(batch, pa.Table):
        arrays = [_as_array(c) for c in batch.columns]
        return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
    raise ProgramError(
        f"KeyedAggregation.add takes a pyarrow.RecordBatch, not {type(batch).__name__}"
    )


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


def _describe_fields(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name} ({f.type})" for f in schema) or "(none)"


class KeyedAggregation:
    """The state and computation of one keyed aggregation in one parallel operator instance.

    ``kind`` is one of :data:`AGGREGATION_KINDS`; ``fields`` are the aggregated columns (one or
    more for ``sum``/``min``/``max``, exactly one for ``min_by``/``max_by``, none for ``count``);
    ``key_fields`` are the key columns of the input batches. ``rolling`` picks STREAMING (one
    output row per input row) or BATCH (one row per key from :meth:`finish`) semantics.

    The first batch fixes the input schema; later batches must have the same fields and types.

    >>> agg = KeyedAggregation("max_by", ["score"], ["team"], rolling=False)
    >>> batch = {"team": ["x", "x", "y"], "name": ["a", "b", "c"], "score": [3, 5, 1]}
    >>> agg.add(pa.record_batch(batch))
    >>> agg.finish().to_pydict()
    {'team': ['x', 'y'], 'name': ['b', 'c'], 'score': [5, 1]}
    """

    def __init__(self, kind: str, fields: Sequence[str], key_fields: Sequence[str], rolling: bool):
        if kind not in AGGREGATION_KINDS:
            raise ProgramError(
                f"Unknown aggregation {kind!r}; choose one of: {', '.join(AGGREGATION_KINDS)}"
            )
        fields = [fields] if isinstance(fields, str) else list(fields)
        key_fields = [key_fields] if isinstance(key_fields, str) else list(key_fields)
        if kind == "count" and fields:
            raise ProgramError(f"count takes no fields, got {fields}; it counts records per key")
        if kind in ("min_by", "max_by") and len(fields) != 1:
            raise ProgramError(f"{kind} takes exactly one field, got {fields}")
        if kind in ("sum", "min", "max") and not fields:
            raise ProgramError(f"{kind} needs at least one field to aggregate")
        if len(set(fields)) != len(fields):
            raise ProgramError(f"{kind} got a field more than once: {fields}")
        if not key_fields:
            raise ProgramError(f"{kind} needs at least one key field")
        if len(set(key_fields)) != len(key_fields):
            raise ProgramError(f"{kind} got a key field more than once: {key_fields}")
        if kind == "count" and _COUNT_FIELD in key_fields:
            raise ProgramError(
                f"count writes a column {_COUNT_FIELD!r}, which is also a key field; rename the "
                "key field"
            )
        self.kind = kind
        self.fields = fields
        self.key_fields = key_fields
        self.rolling = bool(rolling)
        self._input_schema: pa.Schema | None = None
        self._output_schema: pa.Schema | None = None
        self._store_schema: pa.Schema | None = None
        self._index: _KeyIndex | _IntKeyIndex = _KeyIndex()
        self._key_idx: list[int] = []
        self._first: _RowStore | None = None  # first record (count: first key) per slot
        self._accs: list = []
        self._best: _ArgBest | None = None
        self._counts = np.zeros(0, dtype=np.int64)

    def __repr__(self) -> str:
        mode = "rolling" if self.rolling else "final"
        return (
            f"KeyedAggregation({self.kind}, fields={self.fields}, keys={self.key_fields}, "
            f"{mode}, keys_seen={self.num_keys})"
        )

    @property
    def num_keys(self) -> int:
        """How many distinct keys the state holds."""
        return self._index.num_slots

    @property
    def output_schema(self) -> pa.Schema | None:
        """The schema of the output batches, known once the first batch was added."""
        return self._output_schema

    # -- setup --------------------------------------------------------------------------------

    def _field_index(self, schema: pa.Schema, name: str, role: str) -> int:
        index = schema.get_field_index(name)
        if index < 0:
            what = "key field" if role == "key" else "field"
            raise RecordError(
                f"{self.kind} over {what} {name!r}: the records have no field {name!r}; "
                f"available fields: {_describe_fields(schema)}"
            )
        return index

    def _init(self, schema: pa.Schema) -> None:
        key_idx = [self._field_index(schema, name, "key") for name in self.key_fields]
        field_idx = [self._field_index(schema, name, "value") for name in self.fields]
        # Stored rows: the input fields, all nullable (batches may differ in nullability only).
        store_schema = pa.schema([f.with_nullable(True) for f in schema])
        output_schema = pa.schema(store_schema, metadata=schema.metadata)  # fields nullable
        accs: list = []
        best = None
        for name, index in zip(self.fields, field_idx):
            t = schema.field(index).type
            if self.kind == "sum":
                if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
                    raise RecordError(
                        f"sum over field {name!r} needs integers or floats, but {name!r} is "
                        f"{t}; available fields: {_describe_fields(schema)}"
                    )
                acc = _SumField(index, t)
                field = output_schema.field(index).with_type(acc.out_type)
                output_schema = output_schema.set(index, field)
                accs.append(acc)
            elif not (_is_direct_comparable(t) or _is_rank_comparable(t)):
                raise RecordError(
                    f"{self.kind} over field {name!r} needs comparable values (numbers, bools, "
                    f"dates and times, strings, binaries, decimals), but {name!r} is {t}; "
                    f"available fields: {_describe_fields(schema)}"
                )
            elif self.kind in ("min", "max"):
                op = np.minimum if self.kind == "min" else np.maximum
                if _is_direct_comparable(t):
                    accs.append(_MinMaxField(index, t, op))
                else:
                    accs.append(_RankMinMaxField(index, t, op))
            else:
                op = np.minimum if self.kind == "min_by" else np.maximum
                best = _ArgBest(index, t, op, store_schema)
        if self.kind == "count":
            metadata = dict(schema.metadata or {})
            metadata[ROW_KIND_KEY] = b"dict"
            key_schema = pa.schema([store_schema.field(i) for i in key_idx])
            output_schema = key_schema.append(pa.field(_COUNT_FIELD, pa.int64())).with_metadata(
                metadata
            )
            self._first = _RowStore(key_schema)
        elif self.kind in ("sum", "min", "max"):
            self._first = _RowStore(store_schema)
        if len(key_idx) == 1 and _is_int_like_key(schema.field(key_idx[0]).type):
            self._index = _IntKeyIndex()
        self._input_schema = schema
        self._store_schema = store_schema
        self._output_schema = output_schema
        self._key_idx = key_idx
        self._accs = accs
        self._best = best

    def _check_schema(self, schema: pa.Schema) -> None:
        expected = self._input_schema
        if schema.names != expected.names or schema.types != expected.types:
            raise RecordError(
                f"{self.kind} aggregation got records with fields {_describe_fields(schema)} "
                f"after records with fields {_describe_fields(self._input_schema)}; all records "
                "of a keyed stream must have the same fields and types"
            )

    def _grow(self, num_slots: int) -> None:
        for acc in self._accs:
            acc.grow(num_slots)
        if self._best is not None:
            self._best.grow(num_slots)
        if self.kind == "count":
            self._counts = _grow(self._counts, num_slots, 0)

    # -- processing ---------------------------------------------------------------------------

    def add(self, batch: pa.RecordBatch) -> pa.RecordBatch | None:
        """Aggregate one batch; rolling: return one output row per input row, else ``None``."""
        batch = _as_batch(batch)
        if self._input_schema is None:
            self._init(batch.schema)
        else:
            self._check_schema(batch.schema)
        if batch.num_rows == 0:
            return _empty_batch(self._output_schema) if self.rolling else None

        key_columns = [batch.column(i) for i in self._key_idx]
        enc = self._index.encode(key_columns)
        num_slots = self._index.num_slots
        self._grow(num_slots)
        table = pa.Table.from_arrays(batch.columns, schema=self._store_schema)
        if self._first is not None and len(enc.new_locals):
            firsts = pa.array(enc.first_pos[enc.new_locals])
            source = table if self.kind != "count" else table.select(self._key_idx)
            self._first.append(source.take(firsts))

        if not self.rolling:
            if self.kind == "count":
                local_counts = np.bincount(enc.ids, minlength=enc.k)
                self._counts[enc.local_slots] += local_counts
            elif self._best is not None:
                column = batch.column(self._best.field_index)
                self._best.final(enc, table, column, num_slots)
            else:
                for acc in self._accs:
                    acc.final(batch.column(acc.index), enc, num_slots)
            return None

        seg = _Segments(enc)
        if self.kind == "count":
            slots = enc.local_slots[seg.sorted_ids]
            running = self._counts[slots] + seg.pos + 1
            self._counts[enc.local_slots] = running[seg.last]
            arrays = [*key_columns, pa.array(seg.unsort(running))]
            return pa.RecordBatch.from_arrays(arrays, schema=self._output_schema)
        if self._best is not None:
            column = batch.column(self._best.field_index)
            source, index = self._best.rolling(enc, seg, table, column, num_slots)
            return _to_batch(source.take(pa.array(index)), self._output_schema)
        replaced = {acc.index for acc in self._accs}
        kept = [i for i in range(batch.num_columns) if i not in replaced]
        arrays: list = [None] * batch.num_columns
        if kept:
            base = self._first.table().select(kept).take(pa.array(enc.row_slots))
            for i, column in zip(kept, base.columns):
                arrays[i] = _as_array(column)
        for acc in self._accs:
            arrays[acc.index] = acc.rolling(batch.column(acc.index), enc, seg, num_slots)
        return pa.RecordBatch.from_arrays(arrays, schema=self._output_schema)

    def finish(self) -> pa.RecordBatch | None:
        """BATCH mode: one row per key (keys in order of first appearance); ``None`` when
        rolling or when no batch was ever added. The state is kept."""
        if self.rolling or self._input_schema is None:
            return None
        num_slots = self._index.num_slots
        if self.kind == "count":
            keys = self._first.table()
            arrays = [_as_array(c) for c in keys.columns]
            arrays.append(pa.array(self._counts[:num_slots]))
            return pa.RecordBatch.from_arrays(arrays, schema=self._output_schema)
        if self._best is not None:
            return _to_batch(self._best.best_rows(num_slots), self._output_schema)
        base = self._first.table()
        arrays = [_as_array(c) for c in base.columns]
        for acc in self._accs:
            arrays[acc.index] = acc.result(num_slots)
        if not num_slots:
            return _empty_batch(self._output_schema)
        return pa.RecordBatch.from_arrays(arrays, schema=self._output_schema)

    # -- checkpoints --------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state as Arrow IPC stream bytes: one row per key (see :meth:`restore`)."""
        description = {
            "version": _SNAPSHOT_VERSION,
            "kind": self.kind,
            "fields": self.fields,
            "key_fields": self.key_fields,
            "rolling": self.rolling,
        }
        metadata = {_SNAPSHOT_KEY: json.dumps(description).encode()}
        if self._input_schema is None:
            table = pa.table({}).replace_schema_metadata(metadata)
        else:
            metadata[_SNAPSHOT_SCHEMA_KEY] = self._input_schema.serialize().to_pybytes()
            num_slots = self._index.num_slots
            if self._best is not None:
                records = self._best.best_rows(num_slots)
            else:
                records = self._first.table()
            columns: dict[str, pa.Array] = {
                f"rec.{i}": _as_array(c) for i, c in enumerate(records.columns)
            }
            for acc in self._accs:
                columns.update(acc.snapshot(num_slots))
            if self._best is not None:
                columns["has"] = pa.array(self._best.has[:num_slots])
            if self.kind == "count":
                columns["count"] = pa.array(self._counts[:num_slots])
            table = pa.table(columns).replace_schema_metadata(metadata)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    @classmethod
    def restore(cls, data: bytes) -> KeyedAggregation:
        """A new aggregation holding the state :meth:`snapshot` wrote."""
        try:
            table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
            description = json.loads(table.schema.metadata[_SNAPSHOT_KEY])
        except (pa.ArrowInvalid, KeyError, TypeError, ValueError) as exc:
            raise ProgramError(f"Not a keyed aggregation snapshot: {exc}") from exc
        if description.get("version") != _SNAPSHOT_VERSION:
            raise ProgramError(
                f"Keyed aggregation snapshot version {description.get('version')} is not "
                f"supported; this pyflow reads version {_SNAPSHOT_VERSION}"
            )
        agg = cls(
            description["kind"],
            description["fields"],
            description["key_fields"],
            description["rolling"],
        )
        schema_bytes = table.schema.metadata.get(_SNAPSHOT_SCHEMA_KEY)
        if schema_bytes is None:
            return agg
        agg._init(pa.ipc.read_schema(pa.py_buffer(schema_bytes)))
        num_slots = table.num_rows
        rec_names = sorted(
            (n for n in table.column_names if n.startswith("rec.")), key=lambda n: int(n[4:])
        )
        rec_schema = agg._first.schema if agg._first is not None else agg._store_schema
        records = pa.Table.from_arrays(
            [_as_array(table.column(n)) for n in rec_names], schema=rec_schema
        )
        key_columns = (
            records.columns if agg.kind == "count" else [records.column(i) for i in agg._key_idx]
        )
        agg._index.rebuild([_as_array(c) for c in key_columns])
        agg._grow(num_slots)
        if agg._first is not None:
            agg._first.replace(records)
        for acc in agg._accs:
            acc.restore(table, num_slots)
        if agg._best is not None:
            agg._best.restore(records, table.column("has").to_numpy(zero_copy_only=False))
        if agg.kind == "count":
            agg._counts[:num_slots] = table.column("count").to_numpy()
        return agg
