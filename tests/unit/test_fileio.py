"""Unit tests of pyflow.runtime.fileio: file sources and sinks."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
from decimal import Decimal

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from pyflow.errors import ProgramError, RecordError
from pyflow.runtime import records
from pyflow.runtime.fileio import (
    FORMATS,
    FileReader,
    FileWriter,
    assign_splits,
    infer_format,
    resolve_files,
)
from pyflow.runtime.records import batch_to_rows, object_batch, rows_to_batch


def read_all(files, fmt, **kwargs) -> list[dict]:
    rows = []
    for batch in FileReader(files, fmt, **kwargs).batches():
        rows.extend(batch_to_rows(batch))
    return rows


def write(tmp_path, fmt, *batches, **kwargs) -> FileWriter:
    writer = FileWriter(str(tmp_path / "out"), fmt, 0, **kwargs)
    for batch in batches:
        writer.write(batch)
    writer.close()
    return writer


@dataclasses.dataclass
class Reading:
    sensor: str
    value: float

    def __str__(self):
        return f"{self.sensor}={self.value}"


# ----------------------------------------------------------------------------------- paths


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "data"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "_temporary").mkdir()
    for rel in ("b.csv", "a.csv", "sub/c.csv", "sub/deeper/d.csv", "_SUCCESS", ".hidden.csv",
                "_temporary/x.csv", "sub/.part-0.csv.inprogress"):
        (root / rel).write_text("x\n1\n")
    return root


def test_resolve_single_file(tree):
    assert resolve_files(str(tree / "a.csv")) == [str(tree / "a.csv")]


def test_resolve_directory_recursive_sorted_skipping_hidden(tree):
    assert resolve_files(tree) == [
        str(tree / "a.csv"),
        str(tree / "b.csv"),
        str(tree / "sub" / "c.csv"),
        str(tree / "sub" / "deeper" / "d.csv"),
    ]


def test_resolve_glob_and_lists_deduplicated(tree):
    assert resolve_files(str(tree / "*.csv")) == [str(tree / "a.csv"), str(tree / "b.csv")]
    assert resolve_files(str(tree / "**" / "d.csv")) == [str(tree / "sub" / "deeper" / "d.csv")]
    both = resolve_files([str(tree / "a.csv"), str(tree / "*.csv"), tree / "sub"])
    assert both == [
        str(tree / "a.csv"),
        str(tree / "b.csv"),
        str(tree / "sub" / "c.csv"),
        str(tree / "sub" / "deeper" / "d.csv"),
    ]


def test_resolve_relative_paths_become_absolute(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert resolve_files("a.csv") == [str(tree / "a.csv")]


@pytest.mark.parametrize("suffix", ["missing.csv", "*.parquet", "empty_dir"])
def test_resolve_nothing_found(tmp_path, suffix):
    (tmp_path / "empty_dir").mkdir()
    path = str(tmp_path / suffix)
    with pytest.raises(ProgramError) as info:
        resolve_files(path)
    assert f"No input files found at '{path}'" in str(info.value)
    assert "check the path" in str(info.value)


def test_resolve_empty_list():
    with pytest.raises(ProgramError, match="No input path"):
        resolve_files([])


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_resolve_unreadable_file(tmp_path):
    file = tmp_path / "secret.csv"
    file.write_text("a\n1\n")
    file.chmod(0)
    try:
        with pytest.raises(ProgramError, match="secret.csv.*permissions"):
            resolve_files(str(file))
    finally:
        file.chmod(0o644)


def test_resolve_unreadable_file_reported(tmp_path, monkeypatch):
    file = tmp_path / "secret.csv"
    file.write_text("a\n1\n")
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ProgramError, match="'.*secret.csv' exists but cannot be read"):
        resolve_files(str(file))


def test_infer_format():
    assert infer_format(["a.parquet", "b.PQ"]) == "parquet"
    assert infer_format(["a.csv", "b.tsv", "c.csv.gz"]) == "csv"
    assert infer_format(["a.json", "b.jsonl", "c.ndjson"]) == "json"
    with pytest.raises(ProgramError, match="'a.dat'.*format="):
        infer_format(["a.dat"])
    with pytest.raises(ProgramError, match="different formats"):
        infer_format(["a.csv", "b.parquet"])


def test_assign_splits_round_robin_and_complete():
    files = [f"f{i}" for i in range(7)]
    splits = [assign_splits(files, 3, s) for s in range(3)]
    assert splits == [["f0", "f3", "f6"], ["f1", "f4"], ["f2", "f5"]]
    assert sorted(sum(splits, [])) == sorted(files)
    assert assign_splits(files, 10, 9) == []
    with pytest.raises(ValueError):
        assign_splits(files, 2, 2)


# ----------------------------------------------------------------------------------- reading


def test_read_parquet_in_bounded_batches(tmp_path):
    table = pa.table({"a": list(range(1000)), "b": [str(i) for i in range(1000)]})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=300)
    reader = FileReader([str(tmp_path / "t.parquet")], "parquet", batch_size=128)
    batches = list(reader.batches())
    assert all(0 < b.num_rows <= 128 for b in batches)
    assert sum(b.num_rows for b in batches) == 1000
    assert records.row_kind(batches[0]) == records.DICT
    assert pa.Table.from_batches(batches).equals(table)
    assert reader.total_bytes == os.path.getsize(tmp_path / "t.parquet")
    assert reader.bytes_read == reader.total_bytes


def test_read_parquet_columns_and_schema(tmp_path):
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), tmp_path / "t.parquet")
    files = [str(tmp_path / "t.parquet")]
    assert read_all(files, "parquet", columns=["b"]) == [{"b": "x"}, {"b": "y"}]
    schema = pa.schema([("a", pa.float64()), ("b", pa.string())])
    batch = next(FileReader(files, "parquet", schema=schema).batches())
    assert batch.schema.field("a").type == pa.float64()
    with pytest.raises(ProgramError, match="'zz' not found.*available columns: a, b"):
        read_all(files, "parquet", columns=["zz"])


def test_read_csv_with_header_streams_large_file(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write("id,name,score\n")
        for i in range(50_000):
            f.write(f"{i},n{i},{i / 2}\n")
    reader = FileReader([str(path)], "csv", batch_size=4096)
    count = 0
    for batch in reader.batches():
        assert batch.num_rows <= 4096
        assert batch.schema.names == ["id", "name", "score"]
        count += batch.num_rows
    assert count == 50_000
    first = next(FileReader([str(path)], "csv", batch_size=2).batches())
    assert batch_to_rows(first) == [
        {"id": 0, "name": "n0", "score": 0.0},
        {"id": 1, "name": "n1", "score": 0.5},
    ]


def test_read_headerless_csv_with_column_names(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("1,a\n2,b\n")
    rows = read_all([str(path)], "csv", has_header=False, column_names=["id", "tag"])
    assert rows == [{"id": 1, "tag": "a"}, {"id": 2, "tag": "b"}]
    # without names: Flink-style f0, f1
    assert read_all([str(path)], "csv", has_header=False) == [
        {"f0": 1, "f1": "a"},
        {"f0": 2, "f1": "b"},
    ]
    # names from the schema, types from the schema
    schema = pa.schema([("id", pa.string()), ("tag", pa.string())])
    assert read_all([str(path)], "csv", has_header=False, schema=schema) == [
        {"id": "1", "tag": "a"},
        {"id": "2", "tag": "b"},
    ]


def test_read_csv_header_replaced_by_column_names(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("x,y\n1,a\n")
    assert read_all([str(path)], "csv", column_names=["id", "tag"]) == [{"id": 1, "tag": "a"}]


def test_read_csv_schema_types_and_delimiter(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("a;b\n1;2\n")
    schema = pa.schema([("a", pa.int8()), ("b", pa.string())])
    batch = next(FileReader([str(path)], "csv", schema=schema, delimiter=";").batches())
    assert batch.schema.types == [pa.int8(), pa.string()]
    assert batch_to_rows(batch) == [{"a": 1, "b": "2"}]


def test_read_tsv_defaults_to_tab(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\n1\tx,y\n")
    assert read_all([str(path)], infer_format([str(path)])) == [{"a": 1, "b": "x,y"}]


def test_read_json_lines(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps({"id": i, "tags": ["a"] * i}) + "\n" for i in range(10)))
    reader = FileReader([str(path)], "json", batch_size=3)
    batches = list(reader.batches())
    assert [b.num_rows for b in batches] == [3, 3, 3, 1]
    rows = [r for b in batches for r in batch_to_rows(b)]
    assert rows == [{"id": i, "tags": ["a"] * i} for i in range(10)]
    schema = pa.schema([("id", pa.int16())])
    batch = next(FileReader([str(path)], "json", schema=schema).batches())
    assert batch.schema == schema


def test_read_directory_and_glob_in_order(tmp_path):
    for i in range(3):
        (tmp_path / f"p{i}.csv").write_text(f"v\n{i}\n{i + 10}\n")
    rows = read_all(resolve_files(str(tmp_path)), "csv")
    assert rows == [{"v": 0}, {"v": 10}, {"v": 1}, {"v": 11}, {"v": 2}, {"v": 12}]
    files = resolve_files(str(tmp_path / "p[02].csv"))
    assert read_all(files, "csv") == [{"v": 0}, {"v": 10}, {"v": 2}, {"v": 12}]


def test_splits_read_every_file_exactly_once(tmp_path):
    for i in range(5):
        (tmp_path / f"p{i}.csv").write_text(f"v\n{i}\n")
    files = resolve_files(str(tmp_path))
    seen = []
    for subtask in range(2):
        seen += [r["v"] for r in read_all(assign_splits(files, 2, subtask), "csv")]
    assert sorted(seen) == [0, 1, 2, 3, 4]


def test_corrupt_csv_names_the_file_and_hints(tmp_path):
    good = tmp_path / "a.csv"
    good.write_text("x,y\n1,a\n")
    bad = tmp_path / "b.csv"
    bad.write_text("x,y\n1,a\n2,b,c\n")
    reader = FileReader([str(good), str(bad)], "csv")
    batches = reader.batches()
    assert batch_to_rows(next(batches)) == [{"x": 1, "y": "a"}]
    with pytest.raises(RecordError) as info:
        next(batches)
    message = str(info.value)
    assert str(bad) in message
    assert "Expected 2 columns, got 3" in message
    assert "delimiter" in message and "has_header" in message


def test_csv_conversion_error_later_in_file(tmp_path):
    path = tmp_path / "late.csv"
    with open(path, "w") as f:
        f.write("x\n")
        f.writelines(f"{i}\n" for i in range(300_000))
        f.write("oops\n")
    with pytest.raises(RecordError, match="late.csv.*schema="):
        read_all([str(path)], "csv")


def test_corrupt_parquet_and_json(tmp_path):
    parquet = tmp_path / "x.parquet"
    parquet.write_bytes(b"definitely not parquet")
    with pytest.raises(ProgramError, match="x.parquet.*not a Parquet file"):
        read_all([str(parquet)], "parquet")
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(RecordError, match="x.jsonl.*JSON object"):
        read_all([str(jsonl)], "json")


def test_reader_missing_file(tmp_path):
    with pytest.raises(ProgramError, match="gone.csv"):
        read_all([str(tmp_path / "gone.csv")], "csv")


def test_unknown_format():
    with pytest.raises(ProgramError, match="choose one of: parquet, csv, json"):
        FileReader(["a"], "orc")
    with pytest.raises(ProgramError, match="choose one of"):
        FileWriter("/tmp", "xml", 0)


# ----------------------------------------------------------------------------------- writing


KIND_CASES = [
    pytest.param([(1, "a", 1.5), (2, None, None)], ["f0", "f1", "f2"], id="tuple"),
    pytest.param([{"id": 1, "s": "a"}, {"id": 2, "s": None}], ["id", "s"], id="dict"),
    pytest.param([1, 2, None], ["value"], id="scalar"),
]


TYPED_FORMATS = [f for f in FORMATS if f != "text"]  # text keeps str(record), not types


@pytest.mark.parametrize("fmt", TYPED_FORMATS)
@pytest.mark.parametrize("rows, names", KIND_CASES)
def test_writer_roundtrip_per_kind(tmp_path, fmt, rows, names):
    if fmt == "csv" and rows == [1, 2, None]:
        rows = [1, 2, 3]  # a one-column CSV cannot hold a null (it is an empty line)
    writer = write(tmp_path, fmt, rows_to_batch(rows[:1]), rows_to_batch(rows[1:]))
    assert writer.path == str(tmp_path / "out" / f"part-0.{ {'json': 'jsonl'}.get(fmt, fmt) }")
    assert os.path.exists(writer.path)
    assert writer.bytes_written == os.path.getsize(writer.path) > 0
    back = read_all([writer.path], fmt)
    kind = records.row_kind(rows_to_batch(rows))
    expected = [dict(zip(names, r if kind == records.TUPLE else (r,))) for r in rows]
    if kind == records.DICT:
        expected = rows
    assert back == expected
    if fmt == "parquet":
        assert pq.read_schema(writer.path).metadata is None or all(
            not k.startswith(b"pyflow.") for k in pq.read_schema(writer.path).metadata
        )


@pytest.mark.parametrize("fmt", TYPED_FORMATS)
def test_writer_object_rows(tmp_path, fmt):
    rows = [Reading("t1", 1.5), Reading("t2", 2.0)]
    writer = write(tmp_path, fmt, rows_to_batch(rows))
    assert read_all([writer.path], fmt) == [{"value": "t1=1.5"}, {"value": "t2=2.0"}]


def test_json_writes_object_dicts_as_objects(tmp_path):
    rows = [{"a": 1}, {"b": {2, 3}}, [1, 2], Reading("t", 1.0)]
    writer = write(tmp_path, "json", rows_to_batch(rows))
    lines = [json.loads(line) for line in open(writer.path)]
    assert lines[0] == {"a": 1}
    assert sorted(lines[1]["b"]) == [2, 3]
    assert lines[2] == {"value": [1, 2]}
    assert lines[3] == {"value": "t=1.0"}


def test_json_value_encodings(tmp_path):
    rows = [{
        "ts": dt.datetime(2024, 1, 2, 3, 4, 5),
        "d": dt.date(2024, 1, 2),
        "dur": dt.timedelta(seconds=1.5),
        "dec": Decimal("1.10"),
        "raw": b"\x00\xff",
        "nan": float("nan"),
        "text": "zürich",
        "nested": [{"x": 1}],
    }]
    writer = write(tmp_path, "json", rows_to_batch(rows))
    text = open(writer.path, encoding="utf-8").read()
    assert "zürich" in text
    line = json.loads(text)
    assert line == {
        "ts": "2024-01-02T03:04:05",
        "d": "2024-01-02",
        "dur": 1.5,
        "dec": "1.10",
        "raw": base64.b64encode(b"\x00\xff").decode(),
        "nan": None,
        "text": "zürich",
        "nested": [{"x": 1}],
    }


def test_csv_nested_and_binary_columns(tmp_path):
    rows = [{"id": 1, "tags": ["a", "b"], "raw": b"\xff"}]
    writer = write(tmp_path, "csv", rows_to_batch(rows))
    back = read_all([writer.path], "csv")
    assert back == [{"id": 1, "tags": '["a","b"]', "raw": base64.b64encode(b"\xff").decode()}]


def test_csv_without_header(tmp_path):
    writer = write(tmp_path, "csv", rows_to_batch([(1, "a")]), rows_to_batch([(2, "b")]),
                   csv_header=False)
    assert open(writer.path).read() == '1,"a"\n2,"b"\n'


def test_csv_float_formatting_is_pyarrows(tmp_path):
    writer = write(tmp_path, "csv", rows_to_batch([0.1, 1e20]))
    expected = pa.BufferOutputStream()
    pcsv.write_csv(pa.record_batch({"value": [0.1, 1e20]}), expected)
    assert open(writer.path, "rb").read() == expected.getvalue().to_pybytes()


def test_parquet_nested_values_and_one_row_group(tmp_path):
    rows = [{"id": i, "tags": ["x"] * (i % 3), "pos": {"x": i, "y": -i}} for i in range(100)]
    batches = [rows_to_batch(rows[i:i + 10]) for i in range(0, 100, 10)]
    writer = write(tmp_path, "parquet", *batches)
    assert pq.ParquetFile(writer.path).metadata.num_row_groups == 1
    assert read_all([writer.path], "parquet") == rows


def test_parquet_row_groups_are_bounded(tmp_path):
    batches = [rows_to_batch([(i,)] * 10) for i in range(10)]
    writer = write(tmp_path, "parquet", *batches, row_group_rows=25)
    assert pq.ParquetFile(writer.path).metadata.num_row_groups == 4
    assert len(read_all([writer.path], "parquet")) == 100


def test_parquet_later_batches_are_cast(tmp_path):
    writer = write(tmp_path, "parquet", rows_to_batch([(1.5, "a")]), rows_to_batch([(2, "b")]))
    table = pq.read_table(writer.path)
    assert table.schema.field("f0").type == pa.float64()
    assert table.to_pylist() == [{"f0": 1.5, "f1": "a"}, {"f0": 2.0, "f1": "b"}]


def test_parquet_null_column_is_typed_by_later_batch(tmp_path):
    first = rows_to_batch([{"id": 1, "note": None}])
    second = rows_to_batch([{"id": 2, "note": "hello"}])
    writer = write(tmp_path, "parquet", first, second)
    table = pq.read_table(writer.path)
    assert table.schema.field("note").type == pa.string()
    assert table.to_pylist() == [{"id": 1, "note": None}, {"id": 2, "note": "hello"}]


def test_incompatible_batch_names_the_column(tmp_path):
    writer = FileWriter(str(tmp_path), "parquet", 0)
    writer.write(rows_to_batch([{"id": 1, "s": "a"}]))
    with pytest.raises(RecordError, match="column 's' has type int64.*string"):
        writer.write(rows_to_batch([{"id": 1, "s": 5}]))
    with pytest.raises(RecordError, match="unexpected column\\(s\\) 'x'"):
        writer.write(rows_to_batch([{"id": 1, "s": "b", "x": 0}]))
    writer.abort()
    tuples = FileWriter(str(tmp_path), "parquet", 1)
    tuples.write(rows_to_batch([(1, "a")]))
    with pytest.raises(RecordError, match="missing column\\(s\\) 'f1'"):
        tuples.write(rows_to_batch([(1,)]))
    tuples.abort()
    csv_writer = FileWriter(str(tmp_path), "csv", 0)
    csv_writer.write(rows_to_batch([{"id": 1, "s": "a"}]))
    with pytest.raises(RecordError, match="unexpected column\\(s\\) 'x'"):
        csv_writer.write(rows_to_batch([{"id": 1, "s": "a", "x": 1}]))
    csv_writer.abort()


def test_object_fallback_batch_after_typed_batches_is_converted_back(tmp_path):
    typed = rows_to_batch([{"id": 1, "s": "a"}])
    fallback = object_batch([{"id": 2, "s": "b"}])  # e.g. a batch that fell back to objects
    for fmt in ("parquet", "csv"):
        writer = write(tmp_path / fmt, fmt, typed, fallback)
        assert read_all([writer.path], fmt) == [{"id": 1, "s": "a"}, {"id": 2, "s": "b"}]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_dict_rows_with_missing_keys_are_nulls(tmp_path, fmt):
    first = object_batch([{"id": 1, "s": "a"}, {"id": 2}])  # differing keys fell back
    second = rows_to_batch([{"id": 3}])
    third = object_batch([{"s": "d"}])
    writer = write(tmp_path, fmt, first, second, third)
    assert read_all([writer.path], fmt) == [
        {"id": 1, "s": "a"},
        {"id": 2, "s": None},
        {"id": 3, "s": None},
        {"id": None, "s": "d"},
    ]


def test_object_rows_in_typed_file_must_fit(tmp_path):
    writer = FileWriter(str(tmp_path), "parquet", 0)
    writer.write(rows_to_batch([(1, "a")]))
    with pytest.raises(RecordError, match="Row 1 .*expected a tuple, got NoneType"):
        writer.write(object_batch([(2, "b"), None]))
    writer.abort()


def test_dict_batches_with_other_column_order(tmp_path):
    writer = write(tmp_path, "csv", rows_to_batch([{"a": 1, "b": 2}]),
                   rows_to_batch([{"b": 4, "a": 3}]))
    assert read_all([writer.path], "csv") == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_stream_produces_valid_file(tmp_path, fmt):
    writer = write(tmp_path, fmt)
    assert os.path.exists(writer.path)
    assert read_all([writer.path], fmt) == []
    if fmt == "parquet":
        assert pq.read_table(writer.path).num_rows == 0


def test_empty_stream_with_known_schema(tmp_path):
    empty = rows_to_batch([(1, "a")]).slice(0, 0)
    parquet = write(tmp_path / "p", "parquet", empty)
    assert pq.read_schema(parquet.path).names == ["f0", "f1"]
    assert pq.read_schema(parquet.path).types == [pa.int64(), pa.string()]
    csv = write(tmp_path / "c", "csv", empty)
    assert open(csv.path).read() == '"f0","f1"\n'


def test_writer_replaces_previous_output_atomically(tmp_path):
    first = write(tmp_path, "csv", rows_to_batch([1, 2, 3]))
    assert len(read_all([first.path], "csv")) == 3
    writer = FileWriter(str(tmp_path / "out"), "csv", 0)
    writer.write(rows_to_batch([9]))
    assert len(read_all([first.path], "csv")) == 3  # old output until close
    assert resolve_files(str(tmp_path / "out")) == [first.path]  # in-progress file is hidden
    writer.close()
    assert read_all([first.path], "csv") == [{"value": 9}]
    assert os.listdir(tmp_path / "out") == ["part-0.csv"]


def test_close_is_idempotent_and_abort_keeps_old_file(tmp_path):
    writer = write(tmp_path, "json", rows_to_batch([1]))
    size = writer.bytes_written
    writer.close()
    assert writer.bytes_written == size
    with pytest.raises(RuntimeError, match="closed"):
        writer.write(rows_to_batch([2]))
    with pytest.raises(ZeroDivisionError):
        with FileWriter(str(tmp_path / "out"), "json", 0) as failing:
            failing.write(rows_to_batch([5]))
            raise ZeroDivisionError
    assert read_all([writer.path], "json") == [{"value": 1}]
    assert os.listdir(tmp_path / "out") == ["part-0.jsonl"]


def test_part_names_per_subtask_and_prefix(tmp_path):
    paths = []
    for subtask in range(3):
        w = FileWriter(str(tmp_path / "new" / "dir"), "parquet", subtask, part_prefix="trades")
        w.write(rows_to_batch([subtask]))
        w.close()
        paths.append(os.path.basename(w.path))
    assert paths == ["trades-0.parquet", "trades-1.parquet", "trades-2.parquet"]
    rows = read_all(resolve_files(str(tmp_path / "new")), "parquet")
    assert rows == [{"value": 0}, {"value": 1}, {"value": 2}]


def test_bytes_written_grows(tmp_path):
    writer = FileWriter(str(tmp_path), "csv", 0)
    assert writer.bytes_written == 0
    writer.write(rows_to_batch(list(range(1000))))
    assert writer.bytes_written > 1000
    writer.close()
    assert writer.bytes_written == os.path.getsize(writer.path)


def test_text_format_reads_lines_as_scalar_strings_and_writes_them_back(tmp_path):
    from pyflow.runtime import records
    from pyflow.runtime.fileio import FileReader, FileWriter, infer_format

    path = tmp_path / "poem.txt"
    path.write_text("to be\nor not\n\nto be\n")
    assert infer_format([str(path)]) == "text"
    batches = list(FileReader([str(path)], "text", batch_size=3).batches())
    assert [b.num_rows for b in batches] == [3, 1]
    assert records.row_kind(batches[0]) == records.SCALAR
    rows = [r for b in batches for r in records.batch_to_rows(b)]
    assert rows == ["to be", "or not", "", "to be"]
    with FileWriter(str(tmp_path / "out"), "text", 0) as writer:
        for b in batches:
            writer.write(b)
    assert (tmp_path / "out" / "part-0.txt").read_text() == "to be\nor not\n\nto be\n"


def test_text_format_names_a_file_that_is_not_utf8(tmp_path):
    from pyflow.errors import RecordError
    from pyflow.runtime.fileio import FileReader

    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecordError, match="latin1.txt.*not UTF-8"):
        list(FileReader([str(path)], "text").batches())
