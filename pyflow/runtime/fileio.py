"""File sources and sinks over pyarrow: Parquet, CSV and JSON lines.

Ownership: this module turns paths into file lists (:func:`resolve_files`), deals files out to
the parallel subtasks of a source (:func:`assign_splits`), streams one subtask's files as record
batches (:class:`FileReader`) and writes one part file per sink subtask (:class:`FileWriter`).
It knows nothing about operators or checkpoints.

Invariants
----------
* Readers stream: a file is scanned in batches of at most ``batch_size`` rows through
  ``pyarrow.dataset``; no file is loaded whole. Batches are dict batches (no pyflow metadata).
* Each file is its own dataset, so every error names the file it came from and files may
  differ in inferred column types (``records.concat_batches`` unifies them downstream).
* Writers write ``<directory>/<part_prefix>-<subtask>.<ext>`` through a hidden in-progress
  file that replaces the part file on :meth:`FileWriter.close`: readers never see half a file,
  and a sink overwrites its own previous output.

Example::

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with FileWriter(d, "csv", 0) as w:
    ...     w.write(pa.record_batch({"a": [1, 2]}))
    >>> [b.to_pydict() for b in FileReader(resolve_files(d), "csv").batches()]
    [{'a': [1, 2]}]
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import glob
import json
import logging
import math
import itertools
import os
import re
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.json as pjson
import pyarrow.parquet as pq

from pyflow.errors import ProgramError, RecordError
from pyflow.runtime import records

__all__ = [
    "FORMATS",
    "EXTENSIONS",
    "resolve_files",
    "infer_format",
    "assign_splits",
    "FileReader",
    "FileWriter",
]

logger = logging.getLogger(__name__)

FORMATS = ("parquet", "csv", "json", "text")  # json = JSON lines; text = one string per line
#: File extension written by FileWriter per format.
EXTENSIONS = {"parquet": "parquet", "csv": "csv", "json": "jsonl", "text": "txt"}
_FORMAT_BY_EXTENSION = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".txt": "text",
    ".text": "text",
}
# compressed CSV / JSON is decompressed by pyarrow, chosen by this suffix
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".lz4", ".br")
_GLOB_CHARS = frozenset("*?[")
_DATASET_PREAMBLE = re.compile(r"^Error creating dataset\..*?input source '[^']*': ", re.DOTALL)
_ROW_GROUP_BYTES = 64 << 20  # a parquet row group is written at latest at this size


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise ProgramError(f"Unknown file format {format!r}; choose one of: {', '.join(FORMATS)}")
    return format


# ---------------------------------------------------------------------------------------------
# paths


def resolve_files(path: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Expand a file, a directory or a glob pattern (or a list of them) to input files.

    Directories are walked recursively, skipping names that start with ``.`` or ``_``
    (``_SUCCESS``, ``.part-0.csv.inprogress``, ``_temporary/``); glob patterns use
    ``glob.glob(recursive=True)``, so ``**`` crosses directories. The result is absolute,
    sorted and free of duplicates.

    >>> resolve_files("/definitely/not/here")
    Traceback (most recent call last):
    ...
    pyflow.errors.ProgramError: No input files found at '/definitely/not/here': check the path ...
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths:
        raise ProgramError("No input path given: pass a file, a directory or a glob pattern")
    found: set[str] = set()
    for entry in paths:
        entry = os.fspath(entry)
        matches = _expand(entry)
        if not matches:
            raise ProgramError(
                f"No input files found at '{entry}': check the path or the glob pattern "
                f"(directories are read recursively; names starting with '.' or '_' are skipped)"
            )
        found.update(matches)
    files = sorted(found)
    for file in files:
        if not os.access(file, os.R_OK):
            raise ProgramError(
                f"Input file '{file}' exists but cannot be read: check its permissions"
            )
    return files


def _expand(entry: str) -> list[str]:
    expanded = os.path.expanduser(entry)
    if os.path.isfile(expanded):
        return [os.path.abspath(expanded)]
    if os.path.isdir(expanded):
        return _walk(expanded)
    if _GLOB_CHARS.intersection(expanded):
        out = []
        for match in glob.glob(expanded, recursive=True):
            if os.path.isdir(match):
                out.extend(_walk(match))
            elif os.path.isfile(match):
                out.append(os.path.abspath(match))
        return out
    return []


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _walk(directory: str) -> list[str]:
    def raise_error(error: OSError) -> None:
        raise ProgramError(
            f"Cannot list input directory '{error.filename}': {error.strerror}; check its "
            f"permissions"
        ) from error

    out = []
    for root, dirs, files in os.walk(directory, onerror=raise_error, followlinks=True):
        dirs[:] = [d for d in dirs if not _hidden(d)]
        out.extend(os.path.abspath(os.path.join(root, f)) for f in files if not _hidden(f))
    return out


def _extension(file: str) -> str:
    name = os.path.basename(file).lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return os.path.splitext(name)[1]


def infer_format(files: Sequence[str]) -> str:
    """The format of ``files`` from their extensions (``.parquet``/``.pq``, ``.csv``/``.tsv``,
    ``.json``/``.jsonl``/``.ndjson``; ``.gz``, ``.bz2``, ``.zst``, ``.lz4`` are looked through).

    >>> infer_format(["a.jsonl", "b.json.gz"])
    'json'
    """
    formats: dict[str, str] = {}
    for file in files:
        fmt = _FORMAT_BY_EXTENSION.get(_extension(file))
        if fmt is None:
            raise ProgramError(
                f"Cannot tell the format of '{file}' from its extension; pass format= one of "
                f"{', '.join(FORMATS)}"
            )
        formats.setdefault(fmt, file)
    if not formats:
        raise ProgramError("No input files to infer a format from")
    if len(formats) > 1:
        examples = ", ".join(f"'{f}' ({fmt})" for fmt, f in formats.items())
        raise ProgramError(
            f"Input files have different formats: {examples}; read them with separate sources "
            f"or pass format= explicitly"
        )
    return next(iter(formats))


def assign_splits(files: Sequence[str], parallelism: int, subtask: int) -> list[str]:
    """Files read by ``subtask`` of ``parallelism``: file ``i`` goes to subtask ``i % parallelism``.

    >>> assign_splits(["a", "b", "c"], 2, 0)
    ['a', 'c']
    """
    if parallelism < 1 or not 0 <= subtask < parallelism:
        raise ValueError(f"subtask {subtask} is not in [0, {parallelism})")
    return list(files[subtask::parallelism])


# ---------------------------------------------------------------------------------------------
# reading


class FileReader:
    """Streams the rows of some files of one format as dict RecordBatches.

    ``schema`` sets column types (and, for headerless CSV without ``column_names``, the column
    names); ``columns`` projects. A headerless CSV without names gets columns ``f0, f1, ...``.
    ``delimiter`` defaults to ``","``, or a tab when every file is a ``.tsv`` file. In CSV an
    empty field is null and a quoted empty field ``""`` is the empty string (what pyarrow's
    CSV writer produces). Empty (zero-byte) files yield no rows. Read
    failures raise :class:`~pyflow.errors.RecordError` (a CSV/JSON row that cannot be parsed or
    converted) or :class:`~pyflow.errors.ProgramError` (anything else), naming the file.

    Example::

        reader = FileReader(["/data/a.csv"], "csv", batch_size=1024)
        for batch in reader.batches():
            ...
    """

    def __init__(
        self,
        files: Sequence[str],
        format: str,
        *,
        schema: pa.Schema | None = None,
        column_names: list[str] | None = None,
        has_header: bool = True,
        delimiter: str | None = None,
        batch_size: int = 16384,
        columns: list[str] | None = None,
    ):
        self._files = [files] if isinstance(files, str) else [os.fspath(f) for f in files]
        self._format = _check_format(format)
        if batch_size < 1:
            raise ProgramError(f"batch_size must be at least 1, got {batch_size}")
        if schema is not None:
            schema = schema.remove_metadata()
        self._schema = schema
        self._columns = list(columns) if columns is not None else None
        self._batch_size = batch_size
        if delimiter is None:
            tsv = self._files and all(_extension(f) == ".tsv" for f in self._files)
            delimiter = "\t" if tsv else ","
        self._file_format = self._make_format(schema, column_names, has_header, delimiter)
        self._total_bytes: int | None = None
        self._bytes_read = 0

    def _make_format(self, schema, column_names, has_header, delimiter):
        if self._format == "text":
            return None  # read line by line, see _text_batches
        if self._format == "parquet":
            return ds.ParquetFileFormat()
        if self._format == "json":
            return ds.JsonFileFormat(
                parse_options=pjson.ParseOptions(
                    explicit_schema=schema, unexpected_field_behavior="infer"
                )
            )
        if column_names is None and not has_header and schema is not None:
            column_names = schema.names
        read_options = pcsv.ReadOptions(
            column_names=list(column_names) if column_names is not None else None,
            autogenerate_column_names=column_names is None and not has_header,
            skip_rows=1 if has_header and column_names is not None else 0,
        )
        column_types = {f.name: f.type for f in schema} if schema is not None else None
        return ds.CsvFileFormat(
            read_options=read_options,
            parse_options=pcsv.ParseOptions(delimiter=delimiter),
            convert_options=pcsv.ConvertOptions(
                column_types=column_types,
                strings_can_be_null=True,  # an empty field is null, a quoted "" is ""
                quoted_strings_can_be_null=False,
            ),
        )

    @property
    def files(self) -> list[str]:
        return list(self._files)

    @property
    def total_bytes(self) -> int:
        """Sum of the sizes of all files (for progress reporting)."""
        if self._total_bytes is None:
            self._total_bytes = sum(_size(f) for f in self._files)
        return self._total_bytes

    @property
    def bytes_read(self) -> int:
        """Bytes of the files completely read so far (advances once per file)."""
        return self._bytes_read

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield non-empty batches of at most ``batch_size`` rows, file by file, in order."""
        for file in self._files:
            try:
                size = os.path.getsize(file)
            except OSError:
                size = -1  # let the scan report it, naming the file
            if size:  # an empty file has no rows (and pyarrow cannot infer its columns)
                yield from self._file_batches(file)
            self._bytes_read += max(size, 0)

    def _text_batches(self, file: str) -> Iterator[pa.RecordBatch]:
        """Flink's readTextFile: one UTF-8 string per line (line ends removed), scalar rows."""
        schema = records.with_row_kind(pa.schema([(records.SCALAR_COLUMN, pa.string())]), records.SCALAR)
        try:
            with open(file, "r", encoding="utf-8", newline=None) as f:
                while True:
                    lines = [line.rstrip("\n") for line in itertools.islice(f, self._batch_size)]
                    if not lines:
                        return
                    yield pa.RecordBatch.from_arrays([pa.array(lines, pa.string())], schema=schema)
        except UnicodeDecodeError as exc:
            raise RecordError(f"Cannot read text file '{file}': it is not UTF-8 text ({exc}). Fix: convert "
                              "it to UTF-8, or read it with another format") from exc
        except OSError as exc:
            raise self._read_error(file, exc) from exc

    def _file_batches(self, file: str) -> Iterator[pa.RecordBatch]:
        if self._format == "text":
            yield from self._text_batches(file)
            return
        try:
            dataset = ds.dataset(file, format=self._file_format, schema=self._schema)
            if self._columns is not None:
                missing = [c for c in self._columns if c not in dataset.schema.names]
                if missing:
                    raise ProgramError(
                        f"Column(s) {', '.join(map(repr, missing))} not found in '{file}'; "
                        f"available columns: {', '.join(dataset.schema.names)}"
                    )
            scanned = dataset.to_batches(columns=self._columns, batch_size=self._batch_size)
            for batch in scanned:
                if batch.num_rows:
                    yield batch
        except (pa.ArrowException, OSError) as exc:
            raise self._read_error(file, exc) from exc

    def _read_error(self, file: str, exc: Exception) -> Exception:
        if isinstance(exc, FileNotFoundError):
            return ProgramError(
                f"Input file '{file}' does not exist (any more): check the path, or that no other "
                f"process deletes input files while the job reads them"
            )
        if isinstance(exc, PermissionError):
            return ProgramError(f"Input file '{file}' cannot be read: {exc}; check its permissions")
        message = _arrow_message(exc)
        if self._format == "csv":
            hint = (
                "check delimiter=, has_header= and column_names=, or pass schema= to set the "
                "column types"
            )
        elif self._format == "json":
            hint = "each line must be one JSON object; pass schema= to set the column types"
        else:
            hint = "the file is not a Parquet file or is damaged; rewrite it or leave it out"
        parse_error = self._format != "parquet" and isinstance(exc, pa.ArrowInvalid)
        error_class = RecordError if parse_error else ProgramError
        return error_class(f"Cannot read {self._format} file '{file}': {message}. Fix: {hint}")


def _arrow_message(exc: Exception) -> str:
    """The useful part of a pyarrow message, without the dataset-factory preamble."""
    text = str(exc).strip()
    text = _DATASET_PREAMBLE.sub("", text)
    marker = "Invalid: "
    if marker in text:
        text = text[text.rindex(marker) + len(marker):]
    return text.rstrip(".")


def _size(file: str) -> int:
    try:
        return os.path.getsize(file)
    except OSError:
        return 0


# ---------------------------------------------------------------------------------------------
# writing


def _json_default(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return list(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    return str(value)


_JSON = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _c_encoder():
    """CPython's C JSON encoder with _JSON's settings, made once (JSONEncoder.encode makes one
    per call, which is most of the cost of encoding a small row); None where unavailable."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - not CPython
        return None
    try:
        encode = make(
            None, _json_default, json.encoder.encode_basestring, None, ":", ",", False, False, False
        )
        if "".join(encode({"a": [1, "ü"]}, 0)) != '{"a":[1,"ü"]}':  # pragma: no cover
            return None
    except Exception:  # noqa: BLE001  # pragma: no cover - a changed private signature
        return None
    return encode


_C_ENCODE = _c_encoder()


def _json_line(record: Any) -> str:
    try:
        if _C_ENCODE is not None:
            return "".join(_C_ENCODE(record, 0))
        return _JSON.encode(record)  # pragma: no cover
    except ValueError:  # NaN / infinity
        return _JSON.encode(_finite(record))
    except RecursionError:  # an object that contains itself
        return _JSON.encode({"value": str(record)})


def _is_nested(t: pa.DataType) -> bool:
    return pa.types.is_nested(t)


def _strip_metadata(batch: pa.RecordBatch) -> pa.RecordBatch:
    metadata = batch.schema.metadata
    if not metadata:
        return batch
    kept = {k: v for k, v in metadata.items() if not k.startswith(b"pyflow.")}
    if len(kept) == len(metadata):
        return batch
    return batch.replace_schema_metadata(kept or None)


class FileWriter:
    """Writes the batches of one sink subtask to ``<directory>/<part_prefix>-<subtask>.<ext>``.

    The first non-empty batch sets the file's columns; later batches are conformed to them
    (reordered by name, missing dict keys as nulls, cast when the types differ) or raise
    :class:`~pyflow.errors.RecordError` naming the column. Rows are written by kind: dict rows
    as their keys, tuple rows as ``f0, f1, ...``, scalar rows as ``value``. Object rows (batches
    that fell back to the object kind) go back to columns where they are dicts or fit the
    file's columns; a file whose first rows are other objects is one string column ``value``
    holding ``str(obj)`` for every row.

    Format details
    --------------
    parquet
        One schema for the whole file. Batches are grouped into row groups of about
        ``row_group_rows`` rows (or 64 MiB). Columns that are all-null in the first batches are
        typed by the first batch that has values (up to ``row_group_rows`` rows are held back).
    csv
        pyarrow's CSV writer (its float formatting); a header when ``csv_header``. Nested
        columns (lists, structs, maps) are written as JSON text, binary columns as base64. Null
        is the empty field (so in a one-column file a null row is an empty line, which CSV
        readers skip). Column types may differ between batches; only the columns must match.
    json
        JSON lines, schemaless: one JSON object per row, written independently. Datetimes,
        dates and times as ISO 8601 strings; timedeltas as seconds; Decimals as strings (exact);
        bytes as base64 strings; NaN and infinities as null. Object rows that are dicts with
        ``str`` keys are written as that object, other objects as ``{"value": ...}`` with
        their JSON, or ``str()`` for values JSON cannot represent.

    Pyflow's schema metadata is never written. Output goes to a hidden in-progress file that
    replaces the part file on :meth:`close` (a sink overwrites its own previous output); use
    the writer as a context manager, or call :meth:`abort`, to drop the in-progress file when
    the task fails.

    >>> import tempfile, os
    >>> w = FileWriter(tempfile.mkdtemp(), "json", 3)
    >>> w.write(records.rows_to_batch([(1, "a")]))
    >>> w.close(); open(w.path).read()
    '{"f0":1,"f1":"a"}\\n'
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        format: str,
        subtask_index: int,
        *,
        part_prefix: str = "part",
        csv_header: bool = True,
        row_group_rows: int = 128 * 1024,
    ):
        self._format = _check_format(format)
        if subtask_index < 0:
            raise ValueError(f"subtask_index must be >= 0, got {subtask_index}")
        self._directory = os.fspath(directory)
        name = f"{part_prefix}-{subtask_index}.{EXTENSIONS[format]}"
        self._path = os.path.join(self._directory, name)
        self._tmp_path = os.path.join(self._directory, f".{name}.inprogress")
        self._csv_header = csv_header
        self._row_group_rows = max(1, row_group_rows)
        self._sink: pa.NativeFile | None = None
        self._schema: pa.Schema | None = None  # columns of the file, set by the first rows
        self._file_kind: str | None = None  # row kind of the batch that set the schema
        self._object_mode = False  # the file is one "value" column of str(obj)
        self._empty_schema: pa.Schema | None = None  # schema of empty batches, for empty files
        self._pending: list[pa.RecordBatch] = []  # parquet: not yet written
        self._pending_rows = 0
        self._pending_bytes = 0
        self._parquet: pq.ParquetWriter | None = None
        self._bytes_written = 0
        self._closed = False

    # -- properties ----------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """Final path of the part file (exists once :meth:`close` returned)."""
        return self._path

    @property
    def bytes_written(self) -> int:
        if self._sink is not None and not self._sink.closed:
            return self._sink.tell()
        return self._bytes_written

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> "FileWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open_sink(self) -> pa.NativeFile:
        if self._sink is None:
            os.makedirs(self._directory, exist_ok=True)
            self._sink = pa.output_stream(self._tmp_path, buffer_size=1 << 20)
        return self._sink

    def close(self) -> None:
        """Flush everything and publish the part file. Idempotent."""
        if self._closed:
            return
        try:
            if self._format == "parquet":
                self._close_parquet()
            elif self._sink is None:
                sink = self._open_sink()
                if self._format == "csv" and self._csv_header and self._empty_schema is not None:
                    schema = self._empty_schema
                    empty = pa.RecordBatch.from_arrays(
                        [pa.array([], f.type) for f in schema], schema=schema
                    )
                    self._write_csv([empty], sink)
            sink = self._open_sink()
            self._bytes_written = sink.tell()
            sink.close()
            os.replace(self._tmp_path, self._path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        logger.debug("Wrote %s (%d bytes)", self._path, self._bytes_written)

    def abort(self) -> None:
        """Drop the in-progress file; the previous part file, if any, stays. Idempotent."""
        self._closed = True
        try:
            if self._parquet is not None:
                self._parquet.close()
        except Exception:  # noqa: BLE001 - aborting; the file is deleted anyway
            pass
        self._parquet = None
        if self._sink is not None and not self._sink.closed:
            self._sink.close()
        try:
            os.remove(self._tmp_path)
        except FileNotFoundError:
            pass

    # -- writing -------------------------------------------------------------------------------

    def write(self, batch: pa.RecordBatch) -> None:
        """Append the rows of ``batch`` (any row kind; event timestamps are not written)."""
        if self._closed:
            raise RuntimeError(f"FileWriter for '{self._path}' is closed")
        batch = records.without_timestamps(batch)[0]
        if batch.num_rows == 0:
            if self._empty_schema is None and records.row_kind(batch) != records.OBJECT:
                self._empty_schema = _strip_metadata(batch).schema
            return
        if self._format == "json":
            self._write_json(batch)
            return
        if self._format == "text":
            lines = "".join(f"{row}\n" for row in records.batch_to_rows(batch)).encode()
            self._open_sink().write(lines)
            return
        batch = self._file_batch(batch)
        if self._format == "csv":
            first = self._schema is None
            if first:
                self._schema = batch.schema
            else:
                batch = self._conform(batch, cast=False)
            self._write_csv([batch], self._open_sink(), header=first and self._csv_header)
        else:
            self._write_parquet(batch)

    def _file_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` as the columns to write: kind handling, object rows, no pyflow metadata."""
        kind = records.row_kind(batch)
        if kind != records.OBJECT and not self._object_mode:
            if self._file_kind is None:
                self._file_kind = kind
            return _strip_metadata(batch)
        rows = records.batch_to_rows(batch)
        if self._file_kind is None and not self._object_mode:
            columns = _dict_objects_as_columns(rows)
            if columns is not None:
                self._file_kind = records.DICT
                return columns
            self._object_mode = True
        if self._object_mode:
            values = [None if r is None else str(r) for r in rows]
            return pa.RecordBatch.from_arrays(
                [pa.array(values, pa.string())], names=[records.SCALAR_COLUMN]
            )
        # object rows (a batch that fell back) in a file that has typed columns
        assert self._schema is not None and self._file_kind is not None
        if self._file_kind == records.DICT and all(type(r) is dict for r in rows):
            names = self._schema.names
            rows = [r if len(r) == len(names) else {n: r.get(n) for n in names} | r for r in rows]
        try:
            target = records.with_row_kind(self._schema, self._file_kind)
            batch = records.rows_to_batch(rows, target)
        except RecordError as exc:
            raise RecordError(f"Cannot write to '{self._path}': {exc}") from None
        return _strip_metadata(batch)

    def _conform(self, batch: pa.RecordBatch, *, cast: bool) -> pa.RecordBatch:
        schema = self._schema
        assert schema is not None
        names = schema.names
        if batch.schema.names != names:
            missing = [n for n in names if n not in batch.schema.names]
            extra = [n for n in batch.schema.names if n not in names]
            if missing and not extra and self._file_kind == records.DICT:
                for name in missing:  # dict rows without some keys: nulls
                    field = schema.field(name)
                    batch = batch.append_column(field, pa.nulls(batch.num_rows, field.type))
                missing = []
            if missing or extra:
                parts = []
                if missing:
                    parts.append(f"missing column(s) {', '.join(map(repr, missing))}")
                if extra:
                    parts.append(f"unexpected column(s) {', '.join(map(repr, extra))}")
                raise RecordError(
                    f"Cannot write to '{self._path}': a batch does not match the file's columns "
                    f"({', '.join(names)}): {'; '.join(parts)}. All rows written by one sink "
                    f"must have the same fields"
                )
            batch = batch.select(names)
        if not cast or batch.schema.equals(schema):
            return batch
        arrays = []
        for field, column in zip(schema, batch.columns):
            if column.type != field.type:
                try:
                    if not _castable(column.type, field.type):
                        raise pa.ArrowTypeError("not a widening conversion")
                    column = column.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                    raise RecordError(
                        f"Cannot write to '{self._path}': column '{field.name}' has type "
                        f"{column.type} but the file's column has type {field.type} ({exc}). "
                        f"Emit one type per field, or cast it before the sink"
                    ) from None
            arrays.append(column)
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    # csv ---------------------------------------------------------------------------------------

    def _write_csv(
        self, batches: list[pa.RecordBatch], sink: pa.NativeFile, *, header: bool = True
    ) -> None:
        for batch in batches:
            batch = _csv_compatible(batch)
            try:
                pcsv.write_csv(batch, sink, pcsv.WriteOptions(include_header=header))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise RecordError(f"Cannot write CSV to '{self._path}': {exc}") from None
            header = False

    # parquet -----------------------------------------------------------------------------------

    def _write_parquet(self, batch: pa.RecordBatch) -> None:
        if self._parquet is None:
            self._pending.append(batch)
        else:
            self._pending.append(self._conform(batch, cast=True))
        self._pending_rows += batch.num_rows
        self._pending_bytes += batch.nbytes
        full = self._pending_rows >= self._row_group_rows or self._pending_bytes >= _ROW_GROUP_BYTES
        if self._parquet is None and (full or not _has_null_type(batch.schema)):
            self._open_parquet()
        if full:
            self._flush_parquet()

    def _open_parquet(self) -> None:
        pending = self._pending
        first = pending[0].schema
        try:
            schema = pa.unify_schemas(
                [b.schema for b in pending if set(b.schema.names) == set(first.names)],
                promote_options="permissive",
            )
            schema = pa.schema([schema.field(n) for n in first.names], metadata=first.metadata)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            schema = first
        self._schema = schema
        self._pending = [self._conform(b, cast=True) for b in pending]
        self._parquet = pq.ParquetWriter(self._open_sink(), schema)

    def _flush_parquet(self) -> None:
        if not self._pending:
            return
        assert self._parquet is not None
        table = pa.Table.from_batches(self._pending, schema=self._schema)
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        self._parquet.write_table(table, row_group_size=max(table.num_rows, 1))

    def _close_parquet(self) -> None:
        if self._parquet is None:
            if self._pending:
                self._open_parquet()
            else:
                schema = self._empty_schema if self._empty_schema is not None else pa.schema([])
                self._schema = schema
                self._parquet = pq.ParquetWriter(self._open_sink(), schema)
        self._flush_parquet()
        assert self._parquet is not None
        self._parquet.close()
        self._parquet = None

    # json --------------------------------------------------------------------------------------

    def _write_json(self, batch: pa.RecordBatch) -> None:
        kind = records.row_kind(batch)
        if kind == records.OBJECT:
            rows = [
                r if type(r) is dict and all(type(k) is str for k in r) else {"value": r}
                for r in records.batch_to_rows(batch)
            ]
        else:
            batch = _strip_metadata(batch)
            rows = records.batch_to_rows(records.with_row_kind(batch, records.DICT))
        text = "\n".join(map(_json_line, rows))
        self._open_sink().write((text + "\n").encode("utf-8"))


def _dict_objects_as_columns(rows: list) -> pa.RecordBatch | None:
    """Object rows that are all dicts as columns (union of keys, missing keys null), or None."""
    if not rows or not all(type(r) is dict for r in rows):
        return None
    try:
        return pa.RecordBatch.from_pylist(rows)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return None


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether a sink casts ``source`` values to its column type ``target``.

    Yes for widening (what ``unify_schemas(promote_options="permissive")`` would do: null to
    anything, int to float, ...) and between numbers (the cast then fails on values that do not
    fit, e.g. 2.5 into an int column). No otherwise: a sink never turns 5 into "5".
    """
    if pa.types.is_null(source):
        return True
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
    if any(p(source) for p in numeric) and any(p(target) for p in numeric):
        return True
    try:
        unified = pa.unify_schemas(
            [pa.schema([("c", target)]), pa.schema([("c", source)])], promote_options="permissive"
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    return unified.field("c").type == target


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def _has_null_type(schema: pa.Schema) -> bool:
    return any(_contains_null_type(f.type) for f in schema)


def _contains_null_type(t: pa.DataType) -> bool:
    if pa.types.is_null(t):
        return True
    if pa.types.is_struct(t):
        return any(_contains_null_type(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return _contains_null_type(t.key_type) or _contains_null_type(t.item_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _contains_null_type(t.value_type)
    return False


def _csv_compatible(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Nested columns as JSON text and binary columns as base64, which CSV can hold."""
    changed = False
    arrays = []
    for column in batch.columns:
        t = column.type
        if _is_nested(t):
            values = column.to_pylist()
            column = pa.array([None if v is None else _json_line(v) for v in values], pa.string())
            changed = True
        elif _is_binary(t):
            values = column.to_pylist()
            column = pa.array(
                [None if v is None else base64.b64encode(v).decode("ascii") for v in values],
                pa.string(),
            )
            changed = True
        arrays.append(column)
    if not changed:
        return batch
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def remove_stale_parts(directory: str, format: str, parallelism: int, part_prefix: str = "part") -> list[str]:
    """Delete ``<part_prefix>-<i>.<ext>`` files with ``i >= parallelism``: parts an earlier run of
    the same sink wrote with a higher parallelism, which this run would otherwise leave behind
    next to its own. Returns the removed paths."""
    removed = []
    ext = EXTENSIONS[_check_format(format)]
    pattern = re.compile(rf"{re.escape(part_prefix)}-(\d+)\.{re.escape(ext)}$")
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        match = pattern.match(name)
        if match and int(match.group(1)) >= parallelism:
            path = os.path.join(directory, name)
            try:
                os.remove(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed
