"""Unit tests of pyflow.runtime.records: rows <-> record batches."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections import namedtuple
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pyflow.errors import ProgramError, RecordError, SerializationError
from pyflow.runtime import records
from pyflow.runtime.records import (
    DICT,
    OBJECT,
    ROW_KIND_KEY,
    SCALAR,
    TUPLE,
    batch_to_rows,
    concat_batches,
    field_index,
    object_batch,
    row_kind,
    rows_to_batch,
    schema_of_rows,
    with_row_kind,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def roundtrip(rows):
    batch = rows_to_batch(rows)
    back = batch_to_rows(batch)
    assert back == rows
    assert [type(r) for r in back] == [type(r) for r in rows]
    return batch


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


Pair = namedtuple("Pair", "a b")


class Color(enum.IntEnum):
    RED = 1
    BLUE = 2


# ----------------------------------------------------------------------------------- kinds


def test_tuple_rows_roundtrip_with_flink_field_names():
    rows = [(1, "a", 1.5), (2, "b", None), (3, None, 2.0)]
    batch = roundtrip(rows)
    assert row_kind(batch) == TUPLE
    assert batch.schema.names == ["f0", "f1", "f2"]
    assert batch.schema.types == [pa.int64(), pa.string(), pa.float64()]
    assert batch.schema.metadata[ROW_KIND_KEY] == b"tuple"


def test_dict_rows_roundtrip():
    rows = [{"name": "a", "price": 1.5, "qty": 3}, {"qty": 4, "name": "b", "price": 2.0}]
    batch = rows_to_batch(rows)
    assert row_kind(batch) == DICT
    assert batch.schema.names == ["name", "price", "qty"]
    assert batch_to_rows(batch) == rows


@pytest.mark.parametrize(
    "values, arrow_type",
    [
        ([1, 2, None], pa.int64()),
        ([1.5, float("inf"), None], pa.float64()),
        (["a", "", None], pa.string()),
        ([b"x", b"\xff", None], pa.binary()),
        ([True, False, None], pa.bool_()),
        ([dt.datetime(2024, 1, 2, 3, 4, 5, 6), None], pa.timestamp("us")),
        ([dt.date(2024, 1, 2)], pa.date32()),
        ([dt.time(1, 2, 3)], pa.time64("us")),
        ([dt.timedelta(seconds=5)], pa.duration("us")),
        ([Decimal("1.25"), Decimal("-3.50")], pa.decimal128(3, 2)),
        ([None, None], pa.null()),
    ],
)
def test_scalar_rows_stay_typed(values, arrow_type):
    batch = roundtrip(values)
    assert row_kind(batch) == SCALAR
    assert batch.schema.names == ["value"]
    assert batch.schema.field("value").type == arrow_type


def test_nan_survives():
    back = batch_to_rows(rows_to_batch([float("nan"), 1.0]))
    assert np.isnan(back[0]) and back[1] == 1.0


def test_aware_datetimes_stay_typed():
    utc = dt.timezone.utc
    rows = [(dt.datetime(2024, 1, 1, tzinfo=utc),), (dt.datetime(2024, 6, 1, tzinfo=utc),)]
    batch = rows_to_batch(rows)
    assert batch.schema.field("f0").type == pa.timestamp("us", tz="UTC")
    assert batch_to_rows(batch) == rows


def test_naive_and_aware_datetimes_mixed_fall_back():
    rows = [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2024, 1, 1)]
    batch = roundtrip(rows)
    assert row_kind(batch) == OBJECT


def test_nested_lists_and_structs_stay_typed():
    rows = [
        {"id": 1, "tags": ["a", "b"], "pos": {"x": 1, "y": 2}, "m": [[1], []]},
        {"id": 2, "tags": [], "pos": {"x": 3, "y": None}, "m": None},
    ]
    batch = rows_to_batch(rows)
    assert row_kind(batch) == DICT
    assert pa.types.is_list(batch.schema.field("tags").type)
    assert pa.types.is_struct(batch.schema.field("pos").type)
    assert batch_to_rows(batch) == rows
    tuple_rows = [(1, [1.5, 2.5]), (2, None)]
    assert row_kind(roundtrip(tuple_rows)) == TUPLE


def test_list_rows_are_scalar_lists():
    rows = [["a", "b"], [], None]
    batch = roundtrip(rows)
    assert row_kind(batch) == SCALAR
    assert batch.schema.field("value").type == pa.list_(pa.string())


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param([1, "a"], id="mixed-int-str"),
        pytest.param([True, 1], id="bool-and-int"),
        pytest.param([(1, "a"), (2, 3)], id="mixed-tuple-column"),
        pytest.param([(1, 2), (1, 2, 3)], id="ragged-tuples"),
        pytest.param([{"a": 1}, {"b": 2}], id="dicts-differing-keys"),
        pytest.param([{"a": 1}, {"a": 1, "b": 2}], id="dicts-extra-key"),
        pytest.param([{"a": 1}, None], id="none-in-dict-stream"),
        pytest.param([(1,), None], id="none-in-tuple-stream"),
        pytest.param([(1,), {"a": 1}], id="tuple-and-dict"),
        pytest.param([{1: "int key"}], id="non-str-dict-key"),
        pytest.param([{}], id="empty-dict"),
        pytest.param([()], id="empty-tuple"),
        pytest.param([Point(1, 2), Point(3, 4)], id="custom-class"),
        pytest.param([{1, 2}], id="set"),
        pytest.param([2**70], id="int-beyond-int64"),
        pytest.param([Color.RED], id="int-enum-keeps-type"),
        pytest.param([Pair(1, 2)], id="namedtuple-keeps-type"),
        pytest.param([((1, 2), "nested tuple")], id="nested-tuple"),
        pytest.param([{"p": {"x": 1}}, {"p": {"y": 2}}], id="nested-dicts-differing-keys"),
        pytest.param([dt.date(2024, 1, 1), dt.datetime(2024, 1, 1)], id="date-and-datetime"),
        pytest.param([np.arange(3)], id="numpy-array"),
        pytest.param([[1, "a"]], id="list-mixed-types"),
        pytest.param([Decimal("NaN")], id="decimal-nan"),
    ],
)
def test_values_arrow_cannot_hold_exactly_fall_back_to_objects(rows):
    batch = rows_to_batch(rows)
    assert row_kind(batch) == OBJECT
    assert batch.schema.names == ["__pyobj__"]
    back = batch_to_rows(batch)
    assert [type(r) for r in back] == [type(r) for r in rows]
    for got, want in zip(back, rows):
        if isinstance(want, np.ndarray):
            assert (got == want).all()
        elif isinstance(want, Decimal) and want.is_nan():
            assert got.is_nan()
        else:
            assert got == want


def test_ints_and_floats_mixed_become_float64():
    batch = rows_to_batch([1, 2.5, None])
    assert batch.schema.field("value").type == pa.float64()
    assert batch_to_rows(batch) == [1.0, 2.5, None]
    # not exactly representable as a double: keep the ints exact
    assert row_kind(rows_to_batch([2**53 + 1, 0.5])) == OBJECT


def test_numpy_scalars_become_python_scalars():
    batch = rows_to_batch([(np.int32(1), np.float64(2.5), np.bool_(True)), (2, 3.5, False)])
    assert row_kind(batch) == TUPLE
    assert batch.schema.types == [pa.int64(), pa.float64(), pa.bool_()]
    assert batch_to_rows(batch) == [(1, 2.5, True), (2, 3.5, False)]
    assert type(batch_to_rows(batch)[0][0]) is int


def test_all_none_rows_are_a_null_scalar_column():
    batch = roundtrip([None, None, None])
    assert row_kind(batch) == SCALAR
    assert batch.num_rows == 3


def test_empty_rows():
    batch = rows_to_batch([])
    assert row_kind(batch) == OBJECT and batch.num_rows == 0
    assert batch_to_rows(batch) == []
    schema = pa.schema([("a", pa.int32())])
    batch = rows_to_batch([], schema)
    assert batch.num_rows == 0 and batch.schema == schema


def test_generators_are_accepted():
    assert batch_to_rows(rows_to_batch(i for i in range(3))) == [0, 1, 2]


def test_batches_without_metadata_are_dict_batches():
    batch = pa.record_batch({"a": [1, 2], "b": ["x", "y"]})
    assert row_kind(batch) == DICT
    assert batch_to_rows(batch) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


def test_object_batch_without_metadata_is_still_recognised():
    batch = object_batch([Point(1, 2)]).replace_schema_metadata(None)
    assert row_kind(batch) == OBJECT
    assert batch_to_rows(batch) == [Point(1, 2)]


def test_with_row_kind_sets_and_keeps_other_metadata():
    batch = pa.record_batch({"f0": [1]}).replace_schema_metadata({b"other": b"x"})
    tagged = with_row_kind(batch, TUPLE)
    assert row_kind(tagged) == TUPLE
    assert tagged.schema.metadata[b"other"] == b"x"
    assert batch_to_rows(tagged) == [(1,)]
    schema = with_row_kind(pa.schema([("value", pa.int64())]), SCALAR)
    assert isinstance(schema, pa.Schema) and row_kind(schema) == SCALAR
    assert with_row_kind(tagged, TUPLE) is tagged
    with pytest.raises(ValueError, match="choose one of"):
        with_row_kind(batch, "row")


def test_unknown_kind_in_metadata_is_a_record_error():
    batch = pa.record_batch({"a": [1]}).replace_schema_metadata({ROW_KIND_KEY: b"weird"})
    with pytest.raises(RecordError, match="Unknown row kind"):
        row_kind(batch)


def test_metadata_survives_slice_filter_take():
    batch = rows_to_batch([(i, str(i)) for i in range(10)])
    for derived in (
        batch.slice(2, 3),
        batch.filter(pc.greater(batch.column(0), 4)),
        batch.take(pa.array([1, 3])),
        pa.Table.from_batches([batch]).to_batches()[0],
    ):
        assert row_kind(derived) == TUPLE
    assert batch_to_rows(batch.slice(2, 2)) == [(2, "2"), (3, "3")]
    objects = object_batch([Point(i, i) for i in range(5)])
    assert batch_to_rows(objects.take(pa.array([4, 0]))) == [Point(4, 4), Point(0, 0)]


def test_schema_of_rows():
    schema = schema_of_rows([(1, "a")])
    assert schema.names == ["f0", "f1"] and row_kind(schema) == TUPLE


# ----------------------------------------------------------------------------------- schema given


TRADE = pa.schema([("sym", pa.string()), ("price", pa.float64()), ("qty", pa.int32())])


def test_tuple_rows_map_by_position_onto_schema():
    batch = rows_to_batch([("A", 1.5, 3), ["B", 2, None]], TRADE)
    assert batch.schema == TRADE
    assert row_kind(batch) == TUPLE
    assert batch_to_rows(batch) == [("A", 1.5, 3), ("B", 2.0, None)]


def test_dict_rows_map_by_name_onto_schema():
    batch = rows_to_batch([{"qty": 1, "price": 2.0, "sym": "A"}], TRADE)
    assert batch.schema == TRADE and row_kind(batch) == DICT
    assert batch_to_rows(batch) == [{"sym": "A", "price": 2.0, "qty": 1}]


def test_scalar_rows_onto_one_field_schema():
    schema = pa.schema([("value", pa.int16())])
    batch = rows_to_batch([1, 2, None], schema)
    assert batch.schema == schema and row_kind(batch) == SCALAR
    assert batch_to_rows(batch) == [1, 2, None]


def test_schema_kind_from_metadata_wins():
    schema = with_row_kind(pa.schema([("v", pa.list_(pa.int64()))]), SCALAR)
    assert batch_to_rows(rows_to_batch([[1, 2]], schema)) == [[1, 2]]
    object_schema = with_row_kind(pa.schema([("__pyobj__", pa.binary())]), OBJECT)
    assert batch_to_rows(rows_to_batch([Point(1, 2)], object_schema)) == [Point(1, 2)]


def test_schema_error_names_row_value_and_schema():
    with pytest.raises(RecordError) as info:
        rows_to_batch([("A", 1.5, 3), ("B", "not a price", 4)], TRADE)
    message = str(info.value)
    assert "Row 1" in message
    assert "'not a price'" in message
    assert "sym: string, price: double, qty: int32" in message
    assert "price" in message


@pytest.mark.parametrize(
    "rows, fragment",
    [
        ([("A", 1.0)], "expected a tuple of 3 fields, got 2"),
        ([("A", 1.0, 1), 7], "expected a tuple, got int"),
        ([{"sym": "A", "price": 1.0}], "missing key 'qty'"),
        ([{"sym": "A", "price": 1.0, "qty": 1, "x": 0}], "unexpected key(s) 'x'"),
        ([("A", 1.0, 2**40)], "qty"),
        ([("A", 1.0, 2.5)], "field 'qty' expects int32, got float 2.5"),
        ([("A", 1.0, True)], "field 'qty' expects int32, got bool"),
        ([{"sym": "A", "price": 1.0, "qty": 1}, ("A", 1.0, 1)], "expected a dict, got tuple"),
    ],
)
def test_schema_errors(rows, fragment):
    with pytest.raises(RecordError) as info:
        rows_to_batch(rows, TRADE)
    assert fragment in str(info.value)
    assert f"Row {len(rows) - 1}" in str(info.value)


def test_schema_error_truncates_long_values():
    with pytest.raises(RecordError) as info:
        rows_to_batch([("x" * 1000, "bad", 1)], TRADE)
    message = str(info.value)
    assert "..." in message
    assert len(message) < 1000


def test_not_null_field_rejects_none():
    schema = pa.schema([pa.field("a", pa.int64(), nullable=False)])
    with pytest.raises(RecordError, match="Row 1 .*must not be None"):
        rows_to_batch([{"a": 1}, {"a": None}], schema)


# ----------------------------------------------------------------------------------- objects


def test_object_batch_uses_plain_pickle_for_importable_classes():
    batch = object_batch([Point(1, 2), None, {1, 2}])
    assert records.CLASS_TABLE_KEY not in batch.schema.metadata
    assert pickle.loads(batch.column(0)[0].as_py()) == Point(1, 2)
    assert batch_to_rows(batch) == [Point(1, 2), None, {1, 2}]


def test_local_classes_and_lambdas_travel_by_value():
    @dataclasses.dataclass
    class Local:
        a: int
        f: object = None

    rows = [Local(1, lambda x: x + 1), Local(2)]
    batch = object_batch(rows)
    assert records.CLASS_TABLE_KEY in batch.schema.metadata
    back = batch_to_rows(batch)
    assert back[0].a == 1 and back[0].f(1) == 2
    assert back[1] == Local(2)
    assert type(back[0]) is Local  # same process: the same class object


def test_unpicklable_value_is_a_serialization_error_naming_its_type():
    with pytest.raises(SerializationError, match="lock"):
        object_batch([1, threading.Lock()])
    with pytest.raises(SerializationError, match="_thread.lock"):
        rows_to_batch([threading.Lock()])


def test_undecodable_object_is_a_serialization_error():
    bad = pa.RecordBatch.from_arrays(
        [pa.array([b"not a pickle"])],
        schema=with_row_kind(pa.schema([("__pyobj__", pa.binary())]), OBJECT),
    )
    with pytest.raises(SerializationError, match="Cannot deserialize"):
        batch_to_rows(bad)


_PRODUCER = """
import dataclasses, sys
import pyarrow as pa
from pyflow.runtime.records import rows_to_batch

@dataclasses.dataclass
class Trade:
    sym: str
    qty: int
    def doubled(self):
        return self.qty * 2

batch = rows_to_batch([Trade("A", 1), Trade("B", 2)])
with pa.OSFile(sys.argv[1], "wb") as f, pa.ipc.new_stream(f, batch.schema) as w:
    w.write_batch(batch)
"""

_RELAY = """
import sys
import pyarrow as pa
from pyflow.runtime.records import batch_to_rows, object_batch

batch = pa.ipc.open_stream(pa.OSFile(sys.argv[1])).read_next_batch()
rows = batch_to_rows(batch)
assert [r.doubled() for r in rows] == [2, 4], rows
again = object_batch(rows + [type(rows[0])("C", 3)])
with pa.OSFile(sys.argv[2], "wb") as f, pa.ipc.new_stream(f, again.schema) as w:
    w.write_batch(again)
"""


def _run(script: str, *args: str) -> None:
    path = str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, PYTHONPATH=path)
    subprocess.run([sys.executable, "-c", script, *args], check=True, env=env, timeout=120)


def test_main_module_classes_cross_processes(tmp_path):
    """Records of a class from the job script's __main__ decode in other processes."""
    first, second = tmp_path / "first.arrows", tmp_path / "second.arrows"
    _run(textwrap.dedent(_PRODUCER), str(first))
    _run(textwrap.dedent(_RELAY), str(first), str(second))  # a "TaskManager" re-emitting them
    batch = pa.ipc.open_stream(pa.OSFile(str(second))).read_next_batch()
    rows = batch_to_rows(batch)
    assert [(r.sym, r.qty, r.doubled()) for r in rows] == [("A", 1, 2), ("B", 2, 4), ("C", 3, 6)]
    assert len({type(r) for r in rows}) == 1


# ----------------------------------------------------------------------------------- concat


def test_concat_same_schema_fast_path_keeps_kind():
    a, b = rows_to_batch([(1, "a")]), rows_to_batch([(2, "b")])
    out = concat_batches([a, b])
    assert row_kind(out) == TUPLE
    assert batch_to_rows(out) == [(1, "a"), (2, "b")]


def test_concat_promotes_int_and_double():
    out = concat_batches([rows_to_batch([(1, "a")]), rows_to_batch([(2.5, "b")])])
    assert out.schema.field("f0").type == pa.float64()
    assert row_kind(out) == TUPLE
    assert batch_to_rows(out) == [(1.0, "a"), (2.5, "b")]


def test_concat_null_typed_with_typed():
    a = rows_to_batch([{"a": 1, "b": None}])
    b = rows_to_batch([{"a": 2, "b": "x"}])
    c = rows_to_batch([{"b": None, "a": 3}])  # other key order
    out = concat_batches([a, b, c])
    assert row_kind(out) == DICT
    assert out.schema.field("b").type == pa.string()
    assert batch_to_rows(out) == [{"a": 1, "b": None}, {"a": 2, "b": "x"}, {"a": 3, "b": None}]


def test_concat_nested_null_list_with_typed_list():
    out = concat_batches([rows_to_batch([[]]), rows_to_batch([[1, 2]])])
    assert out.schema.field("value").type == pa.list_(pa.int64())
    assert batch_to_rows(out) == [[], [1, 2]]


@pytest.mark.parametrize(
    "first, second",
    [
        pytest.param([(1, "a")], [("x", "b")], id="int-vs-str"),
        pytest.param([(1, "a")], [Point(1, 2)], id="tuple-vs-object"),
        pytest.param([(1, "a")], [(1, "a", 2)], id="tuple-widths"),
        pytest.param([{"a": 1}], [{"b": 1}], id="dict-keys"),
        pytest.param([(1,)], [{"f0": 1}], id="tuple-vs-dict"),
        pytest.param([{"p": {"x": 1}}], [{"p": {"y": 1}}], id="struct-fields"),
        pytest.param([2**53 + 1], [0.5], id="int-not-exact-as-double"),
    ],
)
def test_concat_incompatible_falls_back_to_objects(first, second):
    out = concat_batches([rows_to_batch(first), rows_to_batch(second)])
    assert row_kind(out) == OBJECT
    assert batch_to_rows(out) == first + second


def test_concat_object_batches_merges_class_tables():
    @dataclasses.dataclass
    class A:
        v: int

    @dataclasses.dataclass
    class B:
        v: int

    out = concat_batches([object_batch([A(1)]), object_batch([B(2)]), object_batch([Point(0, 0)])])
    assert row_kind(out) == OBJECT
    assert batch_to_rows(out) == [A(1), B(2), Point(0, 0)]


def test_concat_ignores_empty_batches_and_handles_edges():
    a = rows_to_batch([(1,)])
    assert concat_batches([rows_to_batch([]), a, a.slice(0, 0)]) is a
    assert concat_batches([]).num_rows == 0
    empty = a.slice(0, 0)
    assert concat_batches([empty, empty]).num_rows == 0
    assert row_kind(concat_batches([empty, empty])) == TUPLE


def test_concat_keeps_other_metadata():
    a = rows_to_batch([(1,)])
    a = a.replace_schema_metadata({**a.schema.metadata, b"x": b"1"})
    out = concat_batches([a, rows_to_batch([(2.5,)])])
    assert out.schema.metadata[b"x"] == b"1" and row_kind(out) == TUPLE


# ----------------------------------------------------------------------------------- fields


def test_field_index():
    schema = rows_to_batch([{"sym": "a", "price": 1.0}]).schema
    assert field_index(schema, "price") == 1
    assert field_index(schema, 0) == 0
    assert field_index(rows_to_batch([(1, 2)]), "f1") == 1
    listing = "0: sym \\(string\\), 1: price \\(double\\)"
    with pytest.raises(RecordError, match=f"No field 'qty'.*{listing}"):
        field_index(schema, "qty")
    with pytest.raises(RecordError, match="out of range.*2 field"):
        field_index(schema, 2)
    with pytest.raises(RecordError):
        field_index(schema, -1)
    with pytest.raises(ProgramError):
        field_index(schema, True)


# ----------------------------------------------------------------------------------- speed


def test_micro_benchmark(capsys):
    """Prints conversion throughput; never asserts on time."""
    n = 100_000
    tuples = [(i, f"s{i}", i * 0.5) for i in range(n)]
    dicts = [{"a": i, "b": f"s{i}", "c": i * 0.5} for i in range(n)]
    lines = []
    for name, rows in (("tuples", tuples), ("dicts", dicts)):
        start = time.perf_counter()
        batch = rows_to_batch(rows)
        middle = time.perf_counter()
        back = batch_to_rows(batch)
        end = time.perf_counter()
        assert back == rows
        lines.append(
            f"{name}: rows_to_batch {n / (middle - start):,.0f} rows/s, "
            f"batch_to_rows {n / (end - middle):,.0f} rows/s"
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
