"""Vectorized keyed aggregations against a record-by-record reference (Flink's semantics)."""

from __future__ import annotations

import datetime
import decimal
import math
import time

import numpy as np
import pyarrow as pa
import pytest

from pyflow.errors import ProgramError, RecordError
from pyflow.runtime.operators.aggregations import AGGREGATION_KINDS, KeyedAggregation

ROW = b"pyflow.row"


# -- the reference: Flink's rolling aggregation, one record at a time ---------------------------


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _key_of(record: dict, key_fields) -> tuple:
    return tuple(
        "NaN" if isinstance(v, float) and math.isnan(v) else v
        for v in (record[k] for k in key_fields)
    )


class Reference:
    def __init__(self, kind, fields, key_fields):
        self.kind, self.fields, self.key_fields = kind, fields, key_fields
        self.state: dict = {}

    def add(self, record: dict) -> dict:
        key = _key_of(record, self.key_fields)
        kind = self.kind
        if kind == "count":
            count = self.state.get(key, (None, 0))[1] + 1
            self.state[key] = (record, count)
            out = {k: self.state[key][0][k] for k in self.key_fields}
            out["count"] = count
            return out
        if kind in ("sum", "min", "max"):
            if key not in self.state:
                self.state[key] = (dict(record), {f: None for f in self.fields})
            first, acc = self.state[key]
            for f in self.fields:
                v = record[f]
                if kind == "sum":
                    if v is not None:
                        acc[f] = v if acc[f] is None else acc[f] + v
                elif not _missing(v) and (
                    acc[f] is None or (v < acc[f] if kind == "min" else v > acc[f])
                ):
                    acc[f] = v
            out = dict(first)
            out.update(acc)
            return out
        # min_by / max_by
        (f,) = self.fields
        v = record[f]
        if key not in self.state:
            self.state[key] = (record, None if _missing(v) else v)
        else:
            best_v = self.state[key][1]
            if not _missing(v) and (
                best_v is None or (v < best_v if kind == "min_by" else v > best_v)
            ):
                self.state[key] = (record, v)
        return dict(self.state[key][0])

    def final(self) -> list[dict]:
        out = []
        for value in self.state.values():
            if self.kind == "count":
                row = {k: value[0][k] for k in self.key_fields}
                row["count"] = value[1]
            elif self.kind in ("sum", "min", "max"):
                row = dict(value[0])
                row.update(value[1])
            else:
                row = dict(value[0])
            out.append(row)
        return out


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def assert_rows_equal(actual: list[dict], expected: list[dict]) -> None:
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.keys() == e.keys(), (i, a, e)
        for name in a:
            assert _same(a[name], e[name]), (i, name, a, e)


# -- random data --------------------------------------------------------------------------------


def random_batches(seed: int, num_batches: int = 5, max_rows: int = 300, num_keys: int = 25):
    rng = np.random.default_rng(seed)
    batches = []
    for b in range(num_batches):
        n = int(rng.integers(1, max_rows)) if b != 2 else 1

        def nulls(values, p=0.1):
            return [None if rng.random() < p else v for v in values]

        k_int = nulls(rng.integers(0, num_keys, n).tolist(), 0.05)
        k_str = nulls([f"key{i}" for i in rng.integers(0, num_keys // 3 + 1, n)], 0.05)
        v_int = nulls(rng.integers(-50, 50, n).tolist())
        v_float = nulls(np.round(rng.normal(0, 10, n), 3).tolist())
        v_small = nulls(rng.integers(-5, 5, n).tolist())  # many ties
        v_str = nulls([f"s{i:02d}" for i in rng.integers(0, 40, n)])
        v_u8 = nulls(rng.integers(0, 255, n).tolist())
        v_ts = nulls(
            [
                datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=int(s))
                for s in rng.integers(0, 1000, n)
            ]
        )
        v_bool = nulls((rng.random(n) < 0.5).tolist())
        v_dec = nulls([decimal.Decimal(int(i)).scaleb(-2) for i in rng.integers(-500, 500, n)])
        seq = list(range(b * 1000, b * 1000 + n))
        batch = pa.record_batch(
            {
                "k_int": pa.array(k_int, pa.int64()),
                "k_str": pa.array(k_str, pa.string()),
                "v_int": pa.array(v_int, pa.int32()),
                "v_float": pa.array(v_float, pa.float64()),
                "v_small": pa.array(v_small, pa.int64()),
                "v_str": pa.array(v_str, pa.string()),
                "v_u8": pa.array(v_u8, pa.uint8()),
                "v_ts": pa.array(v_ts, pa.timestamp("us")),
                "v_bool": pa.array(v_bool, pa.bool_()),
                "v_dec": pa.array(v_dec, pa.decimal128(6, 2)),
                "v_bin": pa.array([None if v is None else v.encode() for v in v_str], pa.binary()),
                "seq": pa.array(seq, pa.int64()),
            }
        ).replace_schema_metadata({ROW: b"dict"})
        batches.append(batch)
    return batches


KEY_CHOICES = [["k_int"], ["k_str"], ["k_str", "k_int"]]
FIELD_CHOICES = {
    "sum": [["v_int"], ["v_float"], ["v_int", "v_float", "v_u8"]],
    "min": [["v_int"], ["v_float", "v_str"], ["v_ts", "v_bool", "v_u8"]],
    "max": [["v_small"], ["v_float", "v_str"], ["v_ts", "v_bool", "v_dec"]],
    "min_by": [["v_small"], ["v_float"], ["v_str"], ["v_ts"], ["v_dec"]],
    "max_by": [["v_small"], ["v_float"], ["v_str"], ["v_bool"], ["v_bin"]],
    "count": [[]],
}
CASES = [
    (kind, fields, keys)
    for kind in AGGREGATION_KINDS
    for fields in FIELD_CHOICES[kind]
    for keys in KEY_CHOICES
]


def _run_reference(kind, fields, keys, batches):
    ref = Reference(kind, fields, keys)
    rolling = [[ref.add(r) for r in batch.to_pylist()] for batch in batches]
    return rolling, ref.final()


@pytest.mark.parametrize("kind, fields, keys", CASES)
@pytest.mark.parametrize("seed", [1, 2])
def test_rolling_matches_reference(kind, fields, keys, seed):
    batches = random_batches(seed)
    expected, _ = _run_reference(kind, fields, keys, batches)
    agg = KeyedAggregation(kind, fields, keys, rolling=True)
    for batch, want in zip(batches, expected):
        out = agg.add(batch)
        assert out.num_rows == batch.num_rows
        assert out.schema.metadata[ROW] == b"dict"
        assert_rows_equal(out.to_pylist(), want)
    assert agg.finish() is None


@pytest.mark.parametrize("kind, fields, keys", CASES)
@pytest.mark.parametrize("seed", [1, 2])
def test_final_matches_reference(kind, fields, keys, seed):
    batches = random_batches(seed)
    _, expected = _run_reference(kind, fields, keys, batches)
    agg = KeyedAggregation(kind, fields, keys, rolling=False)
    for batch in batches:
        assert agg.add(batch) is None
    out = agg.finish()
    assert out.schema.metadata[ROW] == b"dict"
    assert_rows_equal(out.to_pylist(), expected)
    assert agg.num_keys == len(expected)


@pytest.mark.parametrize("kind, fields, keys", [c for c in CASES if c[2] != ["k_str"]])
@pytest.mark.parametrize("rolling", [True, False])
def test_sliced_batches_with_offsets(kind, fields, keys, rolling):
    # Batches cut from one table share buffers and start at an offset (as to_batches gives).
    whole = pa.Table.from_batches(random_batches(4, num_batches=6)).combine_chunks()
    big = whole.to_batches()[0]
    batches = [big.slice(start, 97) for start in (3, 100, 201, 298)]
    assert [b.num_rows for b in batches] == [97] * 4 and batches[1].column(0).offset == 100
    expected, expected_final = _run_reference(kind, fields, keys, batches)
    agg = KeyedAggregation(kind, fields, keys, rolling=rolling)
    for batch, want in zip(batches, expected):
        out = agg.add(batch)
        if rolling:
            assert_rows_equal(out.to_pylist(), want)
    if not rolling:
        assert_rows_equal(agg.finish().to_pylist(), expected_final)


@pytest.mark.parametrize("rolling", [True, False])
def test_many_keys_and_long_segments(rolling):
    # Many keys (the > 65536 local-ids sort path) and one very hot key (many scan steps).
    rng = np.random.default_rng(7)
    n = 80_000
    keys = np.concatenate([np.arange(70_000), np.zeros(10_000, dtype=np.int64)])
    rng.shuffle(keys)
    values = rng.integers(-1000, 1000, n)
    batch = pa.record_batch({"k": keys, "v": values, "f": values * 0.5})
    for kind, fields in [("sum", ["v", "f"]), ("max_by", ["v"]), ("min", ["v"]), ("count", [])]:
        agg = KeyedAggregation(kind, fields, ["k"], rolling=rolling)
        ref = Reference(kind, fields, ["k"])
        rows = batch.to_pylist()
        expected = [ref.add(r) for r in rows]
        out = agg.add(batch)
        if rolling:
            assert_rows_equal(out.to_pylist(), expected)
        else:
            assert_rows_equal(agg.finish().to_pylist(), ref.final())


# -- Flink semantics, one by one ----------------------------------------------------------------


def _batch(**columns):
    return pa.record_batch(columns).replace_schema_metadata({ROW: b"dict"})


def test_sum_keeps_first_record_for_other_fields():
    agg = KeyedAggregation("sum", ["n"], ["k"], rolling=True)
    out = agg.add(_batch(k=["a", "a", "a"], n=[1, 2, 3], tag=["first", "second", "third"]))
    assert out.column("tag").to_pylist() == ["first", "first", "first"]
    assert out.column("n").to_pylist() == [1, 3, 6]
    out = agg.add(_batch(k=["a"], n=[10], tag=["fourth"]))
    assert out.to_pylist() == [{"k": "a", "n": 16, "tag": "first"}]


def test_min_and_max_keep_first_record_but_min_by_takes_the_record():
    batch = _batch(k=["a", "a", "a"], n=[5, 2, 7], tag=["x", "y", "z"])
    out = KeyedAggregation("min", ["n"], ["k"], rolling=True).add(batch)
    assert out.to_pylist()[-1] == {"k": "a", "n": 2, "tag": "x"}
    out = KeyedAggregation("min_by", ["n"], ["k"], rolling=True).add(batch)
    assert out.to_pylist()[-1] == {"k": "a", "n": 2, "tag": "y"}
    out = KeyedAggregation("max_by", ["n"], ["k"], rolling=True).add(batch)
    assert [r["tag"] for r in out.to_pylist()] == ["x", "x", "z"]


@pytest.mark.parametrize("rolling", [True, False])
def test_ties_keep_the_first_record_across_batches(rolling):
    for kind in ("min_by", "max_by"):
        agg = KeyedAggregation(kind, ["n"], ["k"], rolling=rolling)
        first = agg.add(_batch(k=["a", "a"], n=[3, 3], tag=["first", "second"]))
        second = agg.add(_batch(k=["a", "a"], n=[3, 3], tag=["third", "fourth"]))
        if rolling:
            assert first.column("tag").to_pylist() == ["first", "first"]
            assert second.column("tag").to_pylist() == ["first", "first"]
        else:
            assert agg.finish().column("tag").to_pylist() == ["first"]


def test_nulls_are_ignored_and_do_not_reset():
    agg = KeyedAggregation("sum", ["n"], ["k"], rolling=True)
    out = agg.add(_batch(k=["a", "a", "a", "a"], n=pa.array([None, 1, None, 2], pa.int64())))
    assert out.column("n").to_pylist() == [None, 1, 1, 3]
    agg = KeyedAggregation("max_by", ["n"], ["k"], rolling=True)
    out = agg.add(
        _batch(k=["a", "a", "a"], n=pa.array([None, None, 4], pa.int64()), tag=["x", "y", "z"])
    )
    assert out.column("tag").to_pylist() == ["x", "x", "z"]  # first record until a value shows
    agg = KeyedAggregation("min", ["f"], ["k"], rolling=False)
    agg.add(_batch(k=["a", "a", "b"], f=[float("nan"), 2.0, float("nan")]))
    assert agg.finish().column("f").to_pylist() == [2.0, None]  # NaN ignored like null


def test_sum_types_widen_and_keep_metadata():
    batch = pa.record_batch(
        {
            "k": [1, 1],
            "i8": pa.array([100, 100], pa.int8()),
            "f32": pa.array([0.5, 0.25], pa.float32()),
            "u64": pa.array([2**63, 1], pa.uint64()),
        }
    ).replace_schema_metadata({ROW: b"tuple", b"other": b"kept"})
    agg = KeyedAggregation("sum", ["i8", "f32", "u64"], ["k"], rolling=False)
    agg.add(batch)
    out = agg.finish()
    assert out.schema.field("i8").type == pa.int64()
    assert out.schema.field("f32").type == pa.float64()
    assert out.schema.field("u64").type == pa.uint64()
    assert out.to_pylist() == [{"k": 1, "i8": 200, "f32": 0.75, "u64": 2**63 + 1}]
    assert out.schema.metadata == {ROW: b"tuple", b"other": b"kept"}
    rolled = KeyedAggregation("sum", ["i8"], ["k"], rolling=True).add(batch)
    assert rolled.schema.metadata[ROW] == b"tuple"


def test_count_output_is_keys_then_count_as_dict_rows():
    batch = pa.record_batch({"f0": ["a", "b", "a"], "f1": [1, 2, 3]}).replace_schema_metadata(
        {ROW: b"tuple"}
    )
    agg = KeyedAggregation("count", [], ["f0"], rolling=True)
    out = agg.add(batch)
    assert out.schema.names == ["f0", "count"]
    assert out.schema.metadata[ROW] == b"dict"
    assert out.to_pylist() == [
        {"f0": "a", "count": 1},
        {"f0": "b", "count": 1},
        {"f0": "a", "count": 2},
    ]
    agg = KeyedAggregation("count", [], ["f0", "f1"], rolling=False)
    agg.add(batch)
    agg.add(batch)
    assert agg.finish().to_pylist() == [
        {"f0": "a", "f1": 1, "count": 2},
        {"f0": "b", "f1": 2, "count": 2},
        {"f0": "a", "f1": 3, "count": 2},
    ]


def test_float_keys_nan_and_signed_zero_are_one_key_each():
    agg = KeyedAggregation("count", [], ["x"], rolling=False)
    agg.add(pa.record_batch({"x": [float("nan"), 0.0, -0.0, None]}))
    agg.add(pa.record_batch({"x": [float("nan"), -0.0, None]}))
    rows = agg.finish().to_pylist()
    assert [r["count"] for r in rows] == [2, 3, 2]


@pytest.mark.parametrize("rolling", [True, False])
def test_keys_arrow_tells_apart_but_python_equates_share_a_slot(monkeypatch, rolling):
    from pyflow.runtime.operators import aggregations

    original = aggregations._python_keys
    monkeypatch.setattr(aggregations, "_python_keys", lambda arr: [v[0] for v in original(arr)])
    agg = KeyedAggregation("sum", ["v"], ["k"], rolling=rolling)
    first = agg.add(pa.record_batch({"k": ["a0", "b5", "a1", "b4", "a0"], "v": [1, 2, 3, 4, 5]}))
    second = agg.add(pa.record_batch({"k": ["c3", "c2", "a1"], "v": [10, 20, 30]}))
    if rolling:
        assert first.column("v").to_pylist() == [1, 2, 4, 6, 9]
        assert first.column("k").to_pylist() == ["a0", "b5", "a0", "b5", "a0"]
        assert second.column("v").to_pylist() == [10, 30, 39]
    else:
        assert agg.finish().to_pylist() == [
            {"k": "a0", "v": 39},
            {"k": "b5", "v": 6},
            {"k": "c3", "v": 30},
        ]


def test_other_key_types():
    batch = pa.record_batch(
        {
            "d": pa.array(
                [datetime.date(2024, 1, 1), datetime.date(2024, 1, 2), datetime.date(2024, 1, 1)]
            ),
            "l": pa.array([[1, 2], [3], [1, 2]]),
            "c": pa.array(["x", "y", "x"]).dictionary_encode(),
            "b": pa.array([True, None, True]),
            "f": pa.array([0.5, float("nan"), 0.5]),
            "v": [1, 2, 3],
        }
    )
    for keys in (["d"], ["l"], ["c"], ["b"], ["f"], ["l", "d"], ["f", "c"]):
        agg = KeyedAggregation("sum", ["v"], keys, rolling=True)
        assert agg.add(batch).column("v").to_pylist() == [1, 2, 4], keys
        assert agg.add(batch).column("v").to_pylist() == [5, 4, 8], keys
        restored = KeyedAggregation.restore(agg.snapshot())
        assert restored.add(batch).column("v").to_pylist() == [9, 6, 12], keys


def test_int_key_table_grows_and_handles_null_and_extreme_keys():
    agg = KeyedAggregation("count", [], ["k"], rolling=False)
    extremes = [-(2**63), 2**63 - 1, 0, -1]
    for start in range(0, 50_000, 5_000):
        keys = pa.array(list(range(start, start + 5_000)) + extremes + [None], pa.int64())
        agg.add(pa.record_batch({"k": keys}))
    rows = agg.finish().to_pylist()
    counts = {r["k"]: r["count"] for r in rows}
    assert len(counts) == 50_000 + 4  # -(2**63), 2**63 - 1, -1 and None are new; 0 is not
    assert counts[None] == 10 and counts[2**63 - 1] == 10 and counts[0] == 11 and counts[7] == 1
    unsigned = KeyedAggregation("count", [], ["k"], rolling=True)
    out = unsigned.add(pa.record_batch({"k": pa.array([2**64 - 1, 1, 2**64 - 1], pa.uint64())}))
    assert out.column("count").to_pylist() == [1, 1, 2]


def test_empty_batches():
    schema = pa.schema([("k", pa.int64()), ("v", pa.int64())], metadata={ROW: b"dict"})
    empty = pa.RecordBatch.from_pylist([], schema=schema)
    agg = KeyedAggregation("sum", ["v"], ["k"], rolling=True)
    out = agg.add(empty)
    assert out.num_rows == 0 and out.schema == schema
    final = KeyedAggregation("max", ["v"], ["k"], rolling=False)
    assert final.finish() is None
    assert final.add(empty) is None
    assert final.finish().num_rows == 0


def test_accepts_tables():
    table = pa.concat_tables([pa.table({"k": [1, 2]}), pa.table({"k": [1]})])
    out = KeyedAggregation("count", [], ["k"], rolling=True).add(table)
    assert out.column("count").to_pylist() == [1, 1, 2]


# -- errors -------------------------------------------------------------------------------------


def test_missing_field_names_field_available_fields_and_kind():
    agg = KeyedAggregation("sum", ["amount"], ["k"], rolling=True)
    with pytest.raises(
        RecordError, match=r"sum.*'amount'.*available fields: k \(int64\), value \(int64\)"
    ):
        agg.add(pa.record_batch({"k": [1], "value": [2]}))
    agg = KeyedAggregation("max_by", ["v"], ["user"], rolling=False)
    with pytest.raises(RecordError, match=r"max_by.*key field 'user'.*available fields: k"):
        agg.add(pa.record_batch({"k": [1], "v": [2]}))


def test_non_numeric_sum_and_incomparable_min():
    with pytest.raises(
        RecordError,
        match=r"sum over field 'name'.*string.*available fields: k \(int64\), name \(string\)",
    ):
        KeyedAggregation("sum", ["name"], ["k"], rolling=True).add(
            pa.record_batch({"k": [1], "name": ["x"]})
        )
    with pytest.raises(RecordError, match=r"min_by over field 'l'.*list"):
        KeyedAggregation("min_by", ["l"], ["k"], rolling=True).add(
            pa.record_batch({"k": [1], "l": [[1]]})
        )


def test_batches_may_differ_in_nullability_and_metadata():
    agg = KeyedAggregation("max_by", ["v"], ["k"], rolling=True)
    strict = pa.schema(
        [pa.field("k", pa.int64(), nullable=False), pa.field("v", pa.int64(), nullable=False)]
    )
    agg.add(pa.RecordBatch.from_pydict({"k": [1], "v": [5]}, schema=strict))
    out = agg.add(
        pa.record_batch({"k": [1, 2], "v": [None, 3]}).replace_schema_metadata({b"x": b"y"})
    )
    assert out.to_pylist() == [{"k": 1, "v": 5}, {"k": 2, "v": 3}]


def test_schema_change_is_a_record_error():
    agg = KeyedAggregation("sum", ["v"], ["k"], rolling=True)
    agg.add(pa.record_batch({"k": [1], "v": [1]}))
    with pytest.raises(RecordError, match="same fields and types"):
        agg.add(pa.record_batch({"k": [1], "v": [1.5]}))


def test_bad_arguments_are_program_errors():
    with pytest.raises(ProgramError, match="choose one of: sum, min, max, min_by, max_by, count"):
        KeyedAggregation("avg", ["v"], ["k"], rolling=True)
    with pytest.raises(ProgramError, match="exactly one field"):
        KeyedAggregation("min_by", ["a", "b"], ["k"], rolling=True)
    with pytest.raises(ProgramError, match="no fields"):
        KeyedAggregation("count", ["a"], ["k"], rolling=True)
    with pytest.raises(ProgramError, match="at least one field"):
        KeyedAggregation("sum", [], ["k"], rolling=True)
    with pytest.raises(ProgramError, match="key field"):
        KeyedAggregation("sum", ["v"], [], rolling=True)
    with pytest.raises(ProgramError):
        KeyedAggregation.restore(b"garbage")


# -- snapshots ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, fields, keys",
    [c for c in CASES if c[2] == ["k_str", "k_int"] or c[0] in ("min", "max_by")],
)
@pytest.mark.parametrize("rolling", [True, False])
def test_snapshot_restore_mid_stream(kind, fields, keys, rolling):
    batches = random_batches(3)
    whole = KeyedAggregation(kind, fields, keys, rolling=rolling)
    expected = [whole.add(b) for b in batches]
    expected_final = whole.finish()

    part = KeyedAggregation(kind, fields, keys, rolling=rolling)
    got = [part.add(b) for b in batches[:2]]
    data = part.snapshot()
    assert isinstance(data, bytes)
    restored = KeyedAggregation.restore(data)
    assert (restored.kind, restored.fields, restored.key_fields, restored.rolling) == (
        kind,
        fields,
        keys,
        rolling,
    )
    assert restored.num_keys == part.num_keys
    got += [restored.add(b) for b in batches[2:]]
    if rolling:
        for g, e in zip(got, expected):
            assert_rows_equal(g.to_pylist(), e.to_pylist())
    else:
        assert_rows_equal(restored.finish().to_pylist(), expected_final.to_pylist())
    # A snapshot of the restored state restores again.
    again = KeyedAggregation.restore(restored.snapshot())
    assert again.num_keys == restored.num_keys


def test_snapshot_before_any_batch():
    agg = KeyedAggregation.restore(KeyedAggregation("count", [], ["k"], rolling=False).snapshot())
    assert agg.finish() is None
    agg.add(pa.record_batch({"k": [1, 1]}))
    assert agg.finish().to_pylist() == [{"k": 1, "count": 2}]


def test_min_by_store_is_compacted():
    agg = KeyedAggregation("max_by", ["v"], ["k"], rolling=True)
    for i in range(40):
        agg.add(pa.record_batch({"k": np.arange(1000) % 10, "v": np.arange(1000) + i * 1000}))
    assert agg._best.store.num_rows <= 2 * 10 + 4096 + 10
    assert KeyedAggregation.restore(agg.snapshot()).add(
        pa.record_batch({"k": [3], "v": [0]})
    ).column("v").to_pylist() == [39 * 1000 + 993]


# -- speed (printed, not asserted) --------------------------------------------------------------


def _rows_per_second(kind, fields, rolling, batches, n) -> str:
    agg = KeyedAggregation(kind, fields, ["k"], rolling=rolling)
    start = time.perf_counter()
    for batch in batches:
        agg.add(batch)
    agg.finish()
    elapsed = time.perf_counter() - start
    mode = "rolling" if rolling else "final"
    return f"{kind}({','.join(fields)}) {mode} {n / elapsed / 1e6:.1f}M"


def test_report_speed(capsys):
    rng = np.random.default_rng(0)
    n, num_keys = 1_000_000, 10_000
    keys = rng.integers(0, num_keys, n)
    values = rng.integers(0, 1000, n)
    columns = {"v": values, "f": values * 0.5, "tag": np.zeros(n, dtype=np.int64)}
    int_batches = pa.table({"k": keys, **columns}).to_batches(max_chunksize=65_536)
    kinds = [("sum", ["v"]), ("sum", ["f"]), ("max", ["v"]), ("max_by", ["v"]), ("count", [])]
    int_lines = [
        _rows_per_second(kind, fields, rolling, int_batches, n)
        for kind, fields in kinds
        for rolling in (False, True)
    ]
    str_keys = pa.array([f"user-{k}" for k in keys])
    str_batches = pa.table({"k": str_keys, **columns}).to_batches(max_chunksize=8_192)
    str_lines = [
        _rows_per_second(kind, fields, rolling, str_batches, n)
        for kind, fields in kinds[:1] + kinds[3:4]
        for rolling in (False, True)
    ]
    with capsys.disabled():
        print("\nKeyedAggregation rows/s, 1M rows, 10k keys")
        print("  int keys, 64k-row batches:   " + "; ".join(int_lines))
        print("  string keys, 8k-row batches: " + "; ".join(str_lines))
