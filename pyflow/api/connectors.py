"""Sources and sinks for files (through pyarrow.dataset), as in Flink's FileSource / FileSink.

>>> source = FileSource("data/bids/*.csv", format="csv", column_names=["auction", "price"],
...                     has_header=False)                                   # doctest: +SKIP
>>> stream = env.from_source(source, source_name="bids")                  # doctest: +SKIP
>>> stream.sink_to(FileSink("out/", format="parquet"))                    # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import pyarrow as pa

from pyflow.errors import ProgramError
from pyflow.runtime import fileio
from pyflow.runtime.operators.sinks import FileSinkOperator
from pyflow.runtime.operators.sources import FileSourceOperator


class FileSource:
    """Bounded source over files: a path, a directory (recursively), a glob, or a list of them.

    ``format`` is "parquet", "csv", "json" (JSON lines) or "text" (one string record per line, as
    Flink's readTextFile); inferred from the file extension when omitted. CSV options:
    ``column_names`` (for headerless files), ``has_header``, ``delimiter`` (default ",", tab for .tsv);
    ``schema`` fixes column types; ``columns`` reads only some columns. Files are split over the
    source's subtasks: file i goes to subtask i % parallelism.
    """

    def __init__(self, path: str | os.PathLike | Sequence[str | os.PathLike], format: str | None = None, *,
                 schema: pa.Schema | None = None, column_names: list[str] | None = None,
                 has_header: bool = True, delimiter: str | None = None, columns: list[str] | None = None):
        self.files = fileio.resolve_files(path)
        self.format = format or fileio.infer_format(self.files)
        if self.format not in fileio.FORMATS:
            raise ProgramError(f"Unknown file format {format!r}; choose one of: {', '.join(fileio.FORMATS)}")
        self.options: dict[str, Any] = {"schema": schema, "columns": columns}
        if self.format == "csv":
            self.options.update(column_names=column_names, has_header=has_header, delimiter=delimiter)
        self.bounded = True

    def create_operator(self, name: str) -> FileSourceOperator:
        return FileSourceOperator(name, self.files, self.format, self.options)


class FileSink:
    """Writes one part file per sink subtask under ``path``: ``part-<subtask>.<ext>``.

    ``format`` is "parquet", "csv", "json" (JSON lines) or "text" (``str(record)`` per line). A
    part file appears when its subtask finishes (written to a hidden ``.inprogress`` file until
    then); a failed job leaves no half-written part file. A sink replaces the part files of an
    earlier run of itself; other files in the directory are left alone.
    """

    def __init__(self, path: str | os.PathLike, format: str = "csv", *, csv_header: bool = True):
        if format not in fileio.FORMATS:
            raise ProgramError(f"Unknown file format {format!r}; choose one of: {', '.join(fileio.FORMATS)}")
        self.path = os.fspath(path)
        self.format = format
        self.options: dict[str, Any] = {"csv_header": csv_header} if format == "csv" else {}

    def create_operator(self) -> FileSinkOperator:
        return FileSinkOperator(f"Sink: File ({self.format})", self.path, self.format, self.options)
