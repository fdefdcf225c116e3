"""Stable key hashing and Flink's key groups.

This module owns the one definition of "which parallel instance owns a key". A key is hashed
to an unsigned 64-bit integer, the hash picks one of ``max_parallelism`` *key groups*, and each
parallel operator instance owns a contiguous range of key groups (Flink's
``KeyGroupRangeAssignment``)::

    key_group      = hash % max_parallelism
    operator_index = key_group * parallelism // max_parallelism

Key groups are the unit in which keyed state is checkpointed and redistributed on rescaling, so
the hash must be the same in every process, on every machine and in every release: Python's
``hash()`` is salted per process (``PYTHONHASHSEED``) and is never used here.

Invariants of the hash (the tests check each one):

* ``hash_object(v) == hash_array(pa.array([v]))[0]`` for ``v`` of type ``int``, ``float``,
  ``str``, ``bytes``, ``bool`` and ``None``, with the array in the type ``pa.array`` infers
  (and for any integer width, signed or unsigned, holding the same number). A tuple hashes like
  :func:`hash_columns` over its elements, so ``hash_object((a, b))`` equals
  ``hash_columns([pa.array([a]), pa.array([b])])[0]``; a 1-tuple hashes like its element.
* Integers of every width and bools hash by value (``True`` like ``1``, as ``True == 1``);
  dates, times, timestamps and durations hash like their integer storage value (so a timestamp
  hashes differently in another unit).
* Floats hash by their float64 bit pattern after mapping ``-0.0`` to ``0.0`` and every NaN to
  one NaN. An integral float does **not** hash like the equal integer (``1.0`` vs ``1``): the
  Arrow types differ, and a keyed stream has one key type.
* ``str`` and ``bytes`` hash their UTF-8 / raw bytes with BLAKE2b (8-byte digest), so ``"ab"``
  and ``b"ab"`` hash alike; they are different keys all the same.
* Nulls (``None``) hash to the constant :data:`NULL_HASH`.
* Any other Python value hashes the bytes of ``pickle.dumps(value, protocol=5)``: such a key
  must pickle to the same bytes every time it is equal (true for built-in containers of the
  types above in a fixed order, dataclasses and namedtuples of them; **not** for sets, whose
  pickle follows the salted ``hash()`` order, or for dicts built in different orders).
  Lists, structs and decimals in Arrow arrays take this path through their Python values.

Example::

    >>> import pyarrow as pa
    >>> hashes = hash_array(pa.array([1, 2, 3]))
    >>> int(hashes[0]) == hash_object(1)
    True
    >>> channels_for_hashes(hashes, max_parallelism=128, parallelism=3).tolist()  # doctest: +SKIP
    [1, 0, 2]
"""

from __future__ import annotations

from pyflow.runtime.records import numpy_dtype

import hashlib
import math
import pickle
import struct
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyflow.errors import ProgramError

__all__ = [
    "NULL_HASH",
    "UPPER_BOUND_MAX_PARALLELISM",
    "assign_to_key_group",
    "channels_for_hashes",
    "check_max_parallelism",
    "compute_default_max_parallelism",
    "compute_operator_index_for_key_group",
    "hash_array",
    "hash_columns",
    "hash_object",
    "hash_objects",
    "key_group_range",
]

#: Flink's ``KeyGroupRangeAssignment.UPPER_BOUND_MAX_PARALLELISM``.
UPPER_BOUND_MAX_PARALLELISM = 1 << 15
_DEFAULT_LOWER_BOUND_MAX_PARALLELISM = 1 << 7

_MASK = 0xFFFF_FFFF_FFFF_FFFF
_GOLDEN = 0x9E37_79B9_7F4A_7C15
_MUL1 = 0xBF58_476D_1CE4_E5B9
_MUL2 = 0x94D0_49BB_1331_11EB
_COMBINE = 31
_CANONICAL_NAN_BITS = 0x7FF8_0000_0000_0000

#: The hash of a null (``None``) key, whatever its type.
NULL_HASH = 0x6A09_E667_F3BC_C908
#: The hash of the empty tuple (a key with no fields).
_EMPTY_TUPLE_HASH = 0xBB67_AE85_84CA_A73B

_U64 = np.uint64
_NP_GOLDEN = _U64(_GOLDEN)
_NP_MUL1 = _U64(_MUL1)
_NP_MUL2 = _U64(_MUL2)
_NP_NULL = _U64(NULL_HASH)
_NP_COMBINE = _U64(_COMBINE)
_S30, _S27, _S31 = _U64(30), _U64(27), _U64(31)


# -- the mixing function, once for Python ints and once for numpy arrays ----------------------


def _mix(x: int) -> int:
    """splitmix64: a bijection on 64-bit integers with good avalanche (Python ints)."""
    x = (x + _GOLDEN) & _MASK
    x = ((x ^ (x >> 30)) * _MUL1) & _MASK
    x = ((x ^ (x >> 27)) * _MUL2) & _MASK
    return x ^ (x >> 31)


def _mix_np(x: np.ndarray) -> np.ndarray:
    """splitmix64 over a uint64 array; returns a new array (wrapping arithmetic, no warnings)."""
    x = x + _NP_GOLDEN
    x ^= x >> _S30
    x *= _NP_MUL1
    x ^= x >> _S27
    x *= _NP_MUL2
    x ^= x >> _S31
    return x


def _combine(h: int, c: int) -> int:
    return _mix((h * _COMBINE + c) & _MASK)


def _combine_np(h: np.ndarray, c: np.ndarray) -> np.ndarray:
    return _mix_np(h * _NP_COMBINE + c)


def _hash_bytes(data: bytes | bytearray | memoryview) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _float_bits(value: float) -> int:
    if math.isnan(value):
        return _CANONICAL_NAN_BITS
    if value == 0.0:
        value = 0.0  # -0.0 -> 0.0
    return struct.unpack("<Q", struct.pack("<d", value))[0]


# -- Python values ------------------------------------------------------------------------------


def hash_object(value: Any) -> int:
    """The stable 64-bit hash of one Python key value (see the module docstring for the rules).

    >>> hash_object(42) == int(hash_array(pa.array([42], pa.int8()))[0])
    True
    >>> hash_object(("a", 1)) == int(hash_columns([pa.array(["a"]), pa.array([1])])[0])
    True
    """
    if value is None:
        return NULL_HASH
    tp = type(value)
    if tp is str:
        return _hash_bytes(value.encode("utf-8"))
    if tp is int or tp is bool:
        return _mix(value & _MASK)
    if tp is float:
        return _mix(_float_bits(value))
    if tp is bytes:
        return _hash_bytes(value)
    if tp is tuple:
        return _hash_tuple(value)
    # Subclasses and numpy scalars: same rules as the base type they behave like.
    if isinstance(value, (bool, np.bool_)):
        return _mix(int(value))
    if isinstance(value, (int, np.integer)):
        return _mix(int(value) & _MASK)
    if isinstance(value, (float, np.floating)):
        return _mix(_float_bits(float(value)))
    if isinstance(value, str):
        return _hash_bytes(str(value).encode("utf-8"))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _hash_bytes(bytes(value))
    if isinstance(value, tuple):  # namedtuples equal plain tuples, so they hash alike
        return _hash_tuple(tuple(value))
    return _hash_bytes(pickle.dumps(value, protocol=5))


def _hash_tuple(value: tuple) -> int:
    if not value:
        return _EMPTY_TUPLE_HASH
    h = hash_object(value[0])
    for item in value[1:]:
        h = _combine(h, hash_object(item))
    return h


_FAST_TYPES: dict[type, pa.DataType] = {
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
    bytes: pa.binary(),
    bool: pa.bool_(),
}


def hash_objects(values: Sequence[Any]) -> np.ndarray:
    """:func:`hash_object` of each value, as a uint64 array, vectorized where the values allow.

    Values of one built-in type (``int``, ``float``, ``str``, ``bytes``, ``bool``, with ``None``
    mixed in) go through Arrow and :func:`hash_array`; tuples of one length are hashed column
    by column; anything else is hashed one value at a time.

    >>> hash_objects(["a", None, "b"]).tolist() == [hash_object(v) for v in ["a", None, "b"]]
    True
    """
    n = len(values)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    types = set(map(type, values))
    has_none = type(None) in types
    types.discard(type(None))
    if not types:
        return np.full(n, _NP_NULL, dtype=np.uint64)
    if len(types) == 1:
        (tp,) = types
        arrow_type = _FAST_TYPES.get(tp)
        if arrow_type is not None:
            try:
                return hash_array(pa.array(values, type=arrow_type))
            except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
                pass  # e.g. an int beyond int64: one at a time below
        elif tp is tuple and not has_none and len(widths := set(map(len, values))) == 1:
            (width,) = widths
            if width:
                h = hash_objects(list(map(itemgetter(0), values)))
                for i in range(1, width):
                    h = _combine_np(h, hash_objects(list(map(itemgetter(i), values))))
                return h
    return np.fromiter((hash_object(v) for v in values), dtype=np.uint64, count=n)


# -- Arrow arrays -------------------------------------------------------------------------------


def _fixed_width_numpy(arr: pa.Array, dtype: np.dtype) -> np.ndarray:
    """The values buffer of a fixed-width array as numpy, zero-copy (null slots hold garbage)."""
    buf = arr.buffers()[1]
    return np.frombuffer(buf, dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _apply_nulls(arr: pa.Array, hashes: np.ndarray) -> np.ndarray:
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        hashes = np.where(valid, hashes, _NP_NULL)
    return hashes


def _int_storage_dtype(t: pa.DataType) -> np.dtype | None:
    if pa.types.is_integer(t):
        return numpy_dtype(t)
    if pa.types.is_temporal(t) and t.bit_width in (32, 64):
        return np.dtype(np.int32 if t.bit_width == 32 else np.int64)
    return None


def _hash_binary_like(arr: pa.Array) -> np.ndarray:
    """BLAKE2b of each distinct value's bytes, computed once per distinct value."""
    encoded = pc.dictionary_encode(arr)  # nulls stay null in the indices
    dictionary = encoded.dictionary
    if not pa.types.is_binary(dictionary.type) and not pa.types.is_large_binary(dictionary.type):
        dictionary = dictionary.cast(pa.large_binary())
    distinct = np.fromiter(
        (_hash_bytes(b) for b in dictionary.to_pylist()), dtype=np.uint64, count=len(dictionary)
    )
    indices = encoded.indices
    idx = _fixed_width_numpy(indices, numpy_dtype(indices.type))
    if indices.null_count:
        idx = np.where(indices.is_valid().to_numpy(zero_copy_only=False), idx, 0)
    if len(distinct) == 0:
        return np.full(len(arr), _NP_NULL, dtype=np.uint64)
    return _apply_nulls(indices, distinct[idx])


def _is_view(t: pa.DataType) -> bool:
    is_string_view = getattr(pa.types, "is_string_view", None)  # pyarrow >= 16
    return is_string_view is not None and (is_string_view(t) or pa.types.is_binary_view(t))


def _hash_plain_array(arr: pa.Array) -> np.ndarray:
    t = arr.type
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    if pa.types.is_null(t):
        return np.full(n, _NP_NULL, dtype=np.uint64)
    if pa.types.is_dictionary(t):
        distinct = hash_array(arr.dictionary)
        indices = arr.indices
        idx = _fixed_width_numpy(indices, numpy_dtype(indices.type))
        if len(distinct) == 0:
            return np.full(n, _NP_NULL, dtype=np.uint64)
        idx = np.where(idx < len(distinct), idx, 0) if indices.null_count else idx
        return _apply_nulls(arr, distinct[idx])
    if isinstance(t, pa.ExtensionType):
        return _hash_plain_array(arr.storage)
    dtype = _int_storage_dtype(t)
    if dtype is not None:
        values = _fixed_width_numpy(arr, dtype).astype(np.int64).view(np.uint64)
        return _apply_nulls(arr, _mix_np(values))
    if pa.types.is_boolean(t):
        values = arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint64)
        return _apply_nulls(arr, _mix_np(values))
    if pa.types.is_floating(t):
        values = _fixed_width_numpy(arr, numpy_dtype(t)).astype(np.float64)
        values = np.where(values == 0.0, 0.0, values)  # -0.0 -> 0.0 (and a fresh copy)
        bits = np.where(np.isnan(values), _U64(_CANONICAL_NAN_BITS), values.view(np.uint64))
        return _apply_nulls(arr, _mix_np(bits))
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    ):
        return _hash_binary_like(arr)
    if pa.types.is_fixed_size_binary(t) or _is_view(t):
        return _hash_binary_like(arr.cast(pa.large_binary()))
    # Lists, structs, maps, decimals, unions, ...: through their Python values.
    return np.fromiter((hash_object(v) for v in arr.to_pylist()), dtype=np.uint64, count=n)


def hash_array(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The stable 64-bit hash of each row of ``arr`` as a uint64 numpy array.

    Integers, bools, temporal types and floats are hashed in numpy; strings and binaries once
    per distinct value; other types through their Python values (slow, but stable).

    >>> hash_array(pa.array([None, 7])).tolist() == [NULL_HASH, hash_object(7)]
    True
    """
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 1:
            return _hash_plain_array(arr.chunk(0))
        if arr.num_chunks == 0:
            return np.empty(0, dtype=np.uint64)
        return np.concatenate([_hash_plain_array(c) for c in arr.chunks])
    if not isinstance(arr, pa.Array):
        arr = pa.array(arr)
    return _hash_plain_array(arr)


def hash_columns(columns: Sequence[pa.Array | pa.ChunkedArray]) -> np.ndarray:
    """The stable hash of each row of several key columns, mixed in column order.

    One column hashes exactly like :func:`hash_array`; for more, ``h = mix(h * 31 + c)`` over the
    columns' hashes, which is what :func:`hash_object` does for a tuple.

    >>> a, b = pa.array([1, 2]), pa.array(["x", "y"])
    >>> hash_columns([a, b]).tolist() == [hash_object((1, "x")), hash_object((2, "y"))]
    True
    """
    if len(columns) == 0:
        raise ProgramError("hash_columns needs at least one key column; a key has no fields")
    h = hash_array(columns[0])
    for column in columns[1:]:
        c = hash_array(column)
        if len(c) != len(h):
            raise ProgramError(
                f"Key columns differ in length ({len(h)} vs {len(c)}); all key columns must "
                "come from the same batch"
            )
        h = _combine_np(h, c)
    return h


# -- key groups ---------------------------------------------------------------------------------


def check_max_parallelism(max_parallelism: int, parallelism: int) -> None:
    """Raise :class:`ProgramError` unless ``1 <= parallelism <= max_parallelism <= 32768``.

    >>> check_max_parallelism(128, 4)
    """
    if not 1 <= max_parallelism <= UPPER_BOUND_MAX_PARALLELISM:
        raise ProgramError(
            f"Max parallelism {max_parallelism} is out of range; set pipeline.max-parallelism "
            f"to a value between 1 and {UPPER_BOUND_MAX_PARALLELISM}"
        )
    if parallelism < 1:
        raise ProgramError(f"Parallelism {parallelism} must be at least 1")
    if parallelism > max_parallelism:
        raise ProgramError(
            f"Parallelism {parallelism} is larger than the max parallelism {max_parallelism}; "
            f"set pipeline.max-parallelism to at least {parallelism} (it cannot change once a "
            "job has keyed state in a checkpoint) or lower the parallelism to at most "
            f"{max_parallelism}"
        )


def compute_default_max_parallelism(parallelism: int) -> int:
    """Flink's default max parallelism: ``parallelism * 1.5`` rounded up to a power of two,
    at least 128 and at most 32768.

    >>> compute_default_max_parallelism(4), compute_default_max_parallelism(200)
    (128, 512)
    """
    wanted = max(parallelism + parallelism // 2, 1)
    rounded = 1 << (wanted - 1).bit_length()
    return min(max(rounded, _DEFAULT_LOWER_BOUND_MAX_PARALLELISM), UPPER_BOUND_MAX_PARALLELISM)


def assign_to_key_group(hashes: np.ndarray, max_parallelism: int) -> np.ndarray:
    """The key group of each hash: ``hash % max_parallelism``, as int32.

    Flink applies murmur to Java's weak ``hashCode()`` first; our hashes are already mixed.

    >>> assign_to_key_group(np.array([0, 129], dtype=np.uint64), 128).tolist()
    [0, 1]
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    return (hashes % _U64(max_parallelism)).astype(np.int32)


def compute_operator_index_for_key_group(
    max_parallelism: int, parallelism: int, key_group: int | np.ndarray
) -> int | np.ndarray:
    """The operator index owning ``key_group``: ``key_group * parallelism // max_parallelism``.

    >>> [compute_operator_index_for_key_group(128, 3, group) for group in (42, 43)]
    [0, 1]
    """
    if isinstance(key_group, np.ndarray):
        return (key_group.astype(np.int64) * parallelism // max_parallelism).astype(np.int32)
    return int(key_group) * parallelism // max_parallelism


def key_group_range(max_parallelism: int, parallelism: int, operator_index: int) -> range:
    """The key groups owned by one operator instance (Flink's
    ``computeKeyGroupRangeForOperatorIndex``), as a ``range``.

    >>> [key_group_range(128, 3, i) for i in range(3)]
    [range(0, 43), range(43, 86), range(86, 128)]
    """
    check_max_parallelism(max_parallelism, parallelism)
    if not 0 <= operator_index < parallelism:
        raise ProgramError(
            f"Operator index {operator_index} is out of range for parallelism {parallelism}"
        )
    start = (operator_index * max_parallelism + parallelism - 1) // parallelism
    end = ((operator_index + 1) * max_parallelism - 1) // parallelism
    return range(start, end + 1)


def channels_for_hashes(hashes: np.ndarray, max_parallelism: int, parallelism: int) -> np.ndarray:
    """The output channel (operator index, int32) of each key hash.

    >>> channels_for_hashes(hash_objects([1, 2, 3]), 128, 1).tolist()
    [0, 0, 0]
    """
    key_groups = assign_to_key_group(hashes, max_parallelism)
    return compute_operator_index_for_key_group(max_parallelism, parallelism, key_groups)
