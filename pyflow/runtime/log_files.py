"""The log files of a process, as the REST API serves them (Flink's log list and log file views).

A process (JobManager or TaskManager) shows the files of its log directory: the directory of its
own log file (see :mod:`pyflow.runtime.process_logging`), else ``env.log.dir``. Only regular
files directly inside that directory can be read, by their exact name from the listing: a name
with a path in it, a symbolic link or anything outside is simply not there, so no request can
read other files. A large file is read from its end: at most ``max_bytes`` are loaded.

The JobManager reads its own directory; it asks a TaskManager (possibly on another host) over
RPC (``RequestLogList``/``RequestLogFile``), and the TaskManager answers with these functions.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LogFile", "LogTail", "find_log_file", "list_log_files", "process_log_file", "read_log_tail",
           "stdout_file"]

#: what a request reads at most without ?bytes= (the end of the file)
DEFAULT_LOG_BYTES = 1024 * 1024
#: the most any request reads
MAX_LOG_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LogFile:
    name: str
    size: int
    #: last modification, milliseconds since the epoch
    mtime: int


@dataclass(frozen=True, slots=True)
class LogTail:
    """The last ``len(data)`` bytes of a file of ``size`` bytes."""

    name: str
    size: int
    data: bytes

    @property
    def truncated(self) -> bool:
        return self.size > len(self.data)


def process_log_file() -> str | None:
    """The log file of this process (None when it logs to no file)."""
    for handler in logging.getLogger("pyflow").handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def stdout_file(log_file: str) -> Path:
    """Where a process's stdout goes when a start script redirects it: next to its log file,
    ``.out`` for ``.log`` (Flink's convention)."""
    path = Path(log_file)
    return path.with_suffix(".out")


def list_log_files(log_dir: str | os.PathLike) -> list[LogFile]:
    """Regular files directly in ``log_dir`` (not links, not folders), by name; [] if it is missing."""
    out = []
    try:
        entries = list(os.scandir(log_dir))
    except OSError:
        return []
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # removed meanwhile
        out.append(LogFile(entry.name, stat.st_size, int(stat.st_mtime * 1000)))
    return sorted(out, key=lambda f: f.name)


def find_log_file(log_dir: str | os.PathLike, name: str) -> Path | None:
    """The regular file ``name`` directly in ``log_dir`` (an entry of its listing), or None: a
    name with a path separator, ``.``/``..``, a link or a folder names no log file."""
    if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        return None
    path = Path(log_dir) / name
    try:
        return path if stat.S_ISREG(os.lstat(path).st_mode) else None
    except OSError:
        return None


def resolve_log_file(owner: str, log_file: str | None, log_dir: str, name: str, file_type: str) -> Path:
    """The log a request names: the file ``name`` of ``log_dir``'s listing, or (no name) the
    process's own ``LOG`` (``log_file``) or ``STDOUT`` (the ``.out`` beside it). FileNotFoundError
    says why there is none, naming ``owner`` ("The JobManager", "TaskManager tm-1")."""
    if name:
        path = find_log_file(log_dir, name)
        if path is None:
            raise FileNotFoundError(f"{owner} has no log file named {name!r} in its log directory {log_dir}")
        return path
    if not log_file:
        raise FileNotFoundError(f"{owner} does not log to a file")
    if file_type == "STDOUT":
        path = stdout_file(log_file)
        if not path.is_file():
            raise FileNotFoundError(f"{owner} has no stdout file {path}: its stdout is not written to a file "
                                    "(an embedded cluster's processes print to the program's console)")
        return path
    return Path(log_file)


def read_log_tail(path: str | os.PathLike, max_bytes: int) -> LogTail:
    """The last ``max_bytes`` bytes of ``path`` (the whole file when smaller), never through a
    link swapped in for the file. Raises OSError."""
    with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start = max(0, size - max_bytes)
        f.seek(start)
        data = f.read(size - start)
    return LogTail(Path(path).name, max(size, len(data)), data)
