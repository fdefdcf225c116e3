"""Stable key hashing and Flink's key-group assignment (pyflow.state.key_groups)."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import os
import pickle
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pyflow.errors import ProgramError
from pyflow.state import (
    NULL_HASH,
    assign_to_key_group,
    channels_for_hashes,
    check_max_parallelism,
    compute_default_max_parallelism,
    compute_operator_index_for_key_group,
    hash_array,
    hash_columns,
    hash_object,
    hash_objects,
    key_group_range,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

SAMPLE_KEYS = [0, 1, -1, 2**40, 1.5, -0.0, "hello", "", "Grüße", b"\x00\xff", True, None, (1, "a")]

# Pinned values: the hash is part of the checkpoint format (key groups of keyed state), so it
# must not change between releases. splitmix64(0) is the well-known 0xE220A8397B1DCDAF.
GOLDEN = {
    0: 0xE220A8397B1DCDAF,
    1: 10451216379200822465,
    -1: 16490336266968443936,
    1.5: 15481881892811333770,
    "hello": 9022087748821825191,
    None: 7640891576956012808,
    (1, "a"): 10978603137598674974,
}


def _hashes_in_subprocess(seed: str) -> list[int]:
    code = (
        "import json, sys\n"
        "from pyflow.state.key_groups import hash_object, hash_array, hash_objects\n"
        "import pyarrow as pa\n"
        f"keys = {SAMPLE_KEYS!r}\n"
        "out = [hash_object(k) for k in keys]\n"
        "out += [int(h) for h in hash_array(pa.array(['a', 'b', None, 'a']))]\n"
        "out += [int(h) for h in hash_objects([('x', i) for i in range(5)])]\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_hashes_are_identical_across_processes_with_different_hash_seeds():
    first = _hashes_in_subprocess("1")
    second = _hashes_in_subprocess("4242")
    local = [hash_object(k) for k in SAMPLE_KEYS]
    local += [int(h) for h in hash_array(pa.array(["a", "b", None, "a"]))]
    local += [int(h) for h in hash_objects([("x", i) for i in range(5)])]
    assert first == second == local


@pytest.mark.parametrize("key", list(GOLDEN))
def test_hashes_are_pinned(key):
    assert hash_object(key) == GOLDEN[key]


@pytest.mark.parametrize(
    "values, arrow_type",
    [
        ([0, 1, -1, 2**62, -(2**63), None], pa.int64()),
        ([0, 1, -1, 127, -128, None], pa.int8()),
        ([0, 1, -1, 2**15 - 1, None], pa.int16()),
        ([0, 1, -1, 2**31 - 1, None], pa.int32()),
        ([0, 1, 255, None], pa.uint8()),
        ([0, 1, 2**32 - 1, None], pa.uint32()),
        ([0, 1, 2**64 - 1, 2**63, None], pa.uint64()),
        ([True, False, None], pa.bool_()),
        ([0.0, -0.0, 1.5, -2.25, float("inf"), float("nan"), 1e300, None], pa.float64()),
        ([0.0, -0.0, 1.5, float("nan"), None], pa.float32()),
        ([0.0, 1.5, None], pa.float16()),
        (["", "a", "hello world", "Grüße", "日本", None, "a"], pa.string()),
        (["", "a", "Grüße", None], pa.large_string()),
        (["a", "bb", None], pa.string_view()),
        ([b"", b"\x00", b"\xff\xfe", None], pa.binary()),
        ([b"", b"\x00", None], pa.large_binary()),
        ([b"ab", b"cd", None], pa.binary(2)),
        ([None, None], pa.null()),
        ([[1, 2], [], None], pa.list_(pa.int64())),
        ([{"a": 1, "b": "x"}, None], pa.struct([("a", pa.int64()), ("b", pa.string())])),
        ([decimal.Decimal("1.50"), None], pa.decimal128(5, 2)),
    ],
)
def test_hash_object_equals_hash_array(values, arrow_type):
    arr = pa.array(values, type=arrow_type)
    expected = [hash_object(v) for v in arr.to_pylist()]
    assert hash_array(arr).tolist() == expected
    # The Python values hash the same as their natural Arrow form too.
    if arrow_type in (pa.int64(), pa.float64(), pa.string(), pa.binary(), pa.bool_()):
        assert [hash_object(v) for v in values] == expected


def test_integers_hash_by_value_whatever_their_width():
    for arrow_type in (pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint64()):
        assert hash_array(pa.array([5, 0], arrow_type)).tolist() == [hash_object(5), hash_object(0)]
    assert hash_object(True) == hash_object(1)
    assert hash_object(np.int32(7)) == hash_object(7)
    assert hash_object(np.float32(0.5)) == hash_object(0.5)
    assert hash_object(2**64 + 3) == hash_object(3)  # ints wrap to 64 bits


def test_float_normalization_and_no_int_float_equality():
    assert hash_object(-0.0) == hash_object(0.0)
    assert hash_object(float("nan")) == hash_object(-float("nan"))
    nan_bits = np.array([0x7FF8000000000001, 0xFFF8000000000000], dtype=np.uint64)
    assert len(set(hash_array(pa.array(nan_bits.view(np.float64))).tolist())) == 1
    # Documented: 1.0 is a float64 key, 1 an int64 key; they do not hash alike.
    assert hash_object(1.0) != hash_object(1)


def test_temporal_arrays_hash_like_their_integer_storage():
    dates = pa.array([datetime.date(1970, 1, 2), None])
    assert hash_array(dates).tolist() == [hash_object(1), NULL_HASH]
    ts = pa.array([0, 10], pa.timestamp("ms"))
    assert hash_array(ts).tolist() == [hash_object(0), hash_object(10)]
    assert hash_array(pa.array([5], pa.duration("s"))).tolist() == [hash_object(5)]


def test_dictionary_and_chunked_arrays():
    values = ["x", None, "y", "x"]
    expected = [hash_object(v) for v in values]
    assert hash_array(pa.array(values).dictionary_encode()).tolist() == expected
    assert hash_array(pa.chunked_array([values[:1], values[1:]])).tolist() == expected
    assert hash_array(pa.chunked_array([], pa.int64())).tolist() == []
    assert hash_array(pa.array([], pa.string())).tolist() == []


def test_sliced_arrays_hash_their_own_rows():
    arr = pa.array([1, 2, None, 4, 5], pa.int32()).slice(1, 3)
    assert hash_array(arr).tolist() == [hash_object(2), NULL_HASH, hash_object(4)]
    sarr = pa.array(["a", "b", None, "d"]).slice(1, 3)
    assert hash_array(sarr).tolist() == [hash_object("b"), NULL_HASH, hash_object("d")]


def test_hash_columns_matches_tuples():
    a = pa.array([1, 2, None])
    b = pa.array(["x", None, "z"])
    c = pa.array([0.5, 1.5, 2.5])
    assert hash_columns([a]).tolist() == hash_array(a).tolist()
    expected = [hash_object(t) for t in [(1, "x", 0.5), (2, None, 1.5), (None, "z", 2.5)]]
    assert hash_columns([a, b, c]).tolist() == expected
    # Column order matters.
    assert hash_columns([b, a]).tolist() != hash_columns([a, b]).tolist()
    assert hash_object((5,)) == hash_object(5)
    with pytest.raises(ProgramError):
        hash_columns([])


def test_hash_objects_matches_hash_object_for_all_paths():
    Point = namedtuple("Point", "x y")
    cases = [
        [1, 2, None, -5],
        [1.5, None, float("nan")],
        ["a", "b", None],
        [b"a", None],
        [True, None, False],
        [(1, "a"), (2, None), (3, "c")],
        [(1, "a"), (2,)],  # ragged tuples
        [(1, "a"), None],
        [Point(1, 2), (1, 2)],
        [1, "a", 2.5, None],  # mixed types
        [2**70, 1],  # beyond int64
        [datetime.date(2020, 1, 1), frozenset([1, 2])],
        [None, None],
        [],
    ]
    for values in cases:
        assert hash_objects(values).tolist() == [hash_object(v) for v in values], values
    assert hash_object(Point(1, 2)) == hash_object((1, 2))


def test_other_objects_hash_their_pickle():
    value = datetime.date(2020, 1, 1)
    digest = hashlib.blake2b(pickle.dumps(value, protocol=5), digest_size=8).digest()
    assert hash_object(value) == int.from_bytes(digest, "little")
    assert hash_object([1, 2]) != hash_object([2, 1])


def test_key_groups_are_uniform():
    max_parallelism = 128
    n = 200_000
    for hashes in (
        hash_array(pa.array(np.arange(n))),
        hash_array(pa.array([f"user-{i}" for i in range(n)])),
        hash_array(pa.array(np.arange(n, dtype=np.float64) * 0.25)),
    ):
        groups = assign_to_key_group(hashes, max_parallelism)
        assert groups.dtype == np.int32
        assert groups.min() >= 0 and groups.max() < max_parallelism
        counts = np.bincount(groups, minlength=max_parallelism)
        expected = n / max_parallelism
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        # 127 degrees of freedom: mean 127, sd ~16; 250 is far out in the tail.
        assert chi2 < 250, chi2


def test_flink_operator_index_and_ranges_on_known_examples():
    # Flink: KeyGroupRangeAssignment for maxParallelism=128, parallelism=3.
    assert key_group_range(128, 3, 0) == range(43)
    assert key_group_range(128, 3, 1) == range(43, 86)
    assert key_group_range(128, 3, 2) == range(86, 128)
    assert compute_operator_index_for_key_group(128, 3, 0) == 0
    assert compute_operator_index_for_key_group(128, 3, 42) == 0
    assert compute_operator_index_for_key_group(128, 3, 43) == 1
    assert compute_operator_index_for_key_group(128, 3, 85) == 1
    assert compute_operator_index_for_key_group(128, 3, 86) == 2
    assert compute_operator_index_for_key_group(128, 3, 127) == 2
    groups = np.arange(128, dtype=np.int32)
    indices = compute_operator_index_for_key_group(128, 3, groups)
    assert indices.dtype == np.int32
    assert indices.tolist() == [compute_operator_index_for_key_group(128, 3, g) for g in range(128)]
    assert key_group_range(1, 1, 0) == range(1)
    assert key_group_range(10, 10, 9) == range(9, 10)


@pytest.mark.parametrize(
    "max_parallelism, parallelism", [(128, 1), (128, 3), (128, 7), (10, 10), (32768, 100), (7, 3)]
)
def test_key_group_ranges_cover_all_groups_disjointly(max_parallelism, parallelism):
    seen = []
    for index in range(parallelism):
        rng = key_group_range(max_parallelism, parallelism, index)
        assert len(rng) > 0
        for group in (rng.start, rng.stop - 1):
            assert (
                compute_operator_index_for_key_group(max_parallelism, parallelism, group) == index
            )
        seen.extend(rng)
    assert seen == list(range(max_parallelism))


def test_channels_for_hashes_agree_with_ranges():
    hashes = hash_objects(list(range(10_000)))
    channels = channels_for_hashes(hashes, 128, 3)
    assert channels.dtype == np.int32
    groups = assign_to_key_group(hashes, 128)
    for channel, group in zip(channels[:500].tolist(), groups[:500].tolist()):
        assert group in key_group_range(128, 3, channel)
    assert set(channels.tolist()) == {0, 1, 2}


def test_check_max_parallelism():
    check_max_parallelism(128, 128)
    with pytest.raises(ProgramError, match=r"200.*128.*pipeline\.max-parallelism"):
        check_max_parallelism(128, 200)
    with pytest.raises(ProgramError, match="pipeline.max-parallelism"):
        check_max_parallelism(0, 1)
    with pytest.raises(ProgramError, match="pipeline.max-parallelism"):
        check_max_parallelism(40000, 1)
    with pytest.raises(ProgramError):
        check_max_parallelism(128, 0)
    with pytest.raises(ProgramError):
        key_group_range(128, 3, 3)


def test_default_max_parallelism_follows_flink():
    assert compute_default_max_parallelism(1) == 128
    assert compute_default_max_parallelism(86) == 256  # 86 * 1.5 = 129 -> 256
    assert compute_default_max_parallelism(200) == 512
    assert compute_default_max_parallelism(100_000) == 32768
