"""Storage of blocking result partitions: the memory budget, the spill directory and spill files.

* :class:`SpillBudget` is the byte budget of serialized buffers that blocking partitions may keep
  in memory. One budget is shared by every blocking partition of a :class:`NetworkEnvironment`
  (first come, first served), so the memory of a TaskManager's batch shuffle is bounded by one
  number whatever the number of partitions or the size of their data.
* :class:`SpillDirectory` is the directory of one environment's spill files: created on first
  use as ``<parent>/pyflow-spill-<pid>-<random>`` and removed with everything in it by
  :meth:`SpillDirectory.remove` (environment ``close``).
* :class:`SpillFile` is the append-only file of one blocking subpartition. Its content is a
  sequence of **Arrow IPC streams** (each a schema message, record batch messages and the
  end-of-stream marker); a new stream starts when the schema of the spilled batches changes.
  Every message is byte-for-byte what ``schema.serialize()`` / ``batch.serialize()`` return, so
  the server sends a spilled batch as a BATCH frame straight from the file (``sendfile``)
  without decoding it, and any Arrow reader can read the file:

  >>> import pyarrow as pa, tempfile, os
  >>> path = os.path.join(tempfile.mkdtemp(), "sub-0.arrows")
  >>> spill = SpillFile(path)
  >>> a, b = pa.record_batch({"x": [1, 2]}), pa.record_batch({"y": ["z"]})
  >>> offsets = [spill.append(a.schema, a.serialize()), spill.append(b.schema, b.serialize())]
  >>> spill.seal()
  >>> with pa.OSFile(path) as f:
  ...     first = pa.ipc.open_stream(f).read_all()  # stops at the first end-of-stream marker
  ...     second = pa.ipc.open_stream(f).read_all()
  >>> first.column("x").to_pylist(), second.column("y").to_pylist()
  ([1, 2], ['z'])
  >>> spill.delete(); os.path.exists(path)
  False

None of these classes starts threads; the blocking subpartition that owns a spill file writes
it under its own lock (see :mod:`pyflow.runtime.network.blocking_partition`).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import tempfile
import threading
from typing import BinaryIO

import pyarrow as pa

from pyflow.errors import CancelTaskError, NetworkError

logger = logging.getLogger(__name__)

__all__ = ["END_OF_STREAM", "SpillBudget", "SpillDirectory", "SpillFile"]

#: The Arrow IPC end-of-stream marker: continuation token and a zero metadata length.
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class SpillBudget:
    """Bytes of serialized buffers that blocking partitions may hold in memory (thread-safe).

    ``try_reserve`` admits a buffer only while the total stays within ``capacity``; ``reserve``
    always succeeds (schema messages and events, which are small and never spilled, may overshoot).

    >>> budget = SpillBudget(100)
    >>> budget.try_reserve(60), budget.try_reserve(60), budget.used
    (True, False, 60)
    >>> budget.release(60); budget.used
    0
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"The memory budget of blocking partitions must be >= 0 bytes, got {capacity}")
        self.capacity = int(capacity)
        self._used = 0
        self._peak = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    @property
    def peak(self) -> int:
        """The highest ``used`` so far."""
        return self._peak

    def try_reserve(self, nbytes: int) -> bool:
        with self._lock:
            if self._used + nbytes > self.capacity:
                return False
            self._used += nbytes
            self._peak = max(self._peak, self._used)
            return True

    def reserve(self, nbytes: int) -> None:
        with self._lock:
            self._used += nbytes
            self._peak = max(self._peak, self._used)

    def release(self, nbytes: int) -> None:
        with self._lock:
            self._used -= nbytes
            if self._used < 0:  # pragma: no cover - a bookkeeping bug; never go negative
                logger.error("Spill budget released %d bytes more than reserved", -self._used)
                self._used = 0

    def __repr__(self) -> str:
        return f"SpillBudget(used={self._used}, capacity={self.capacity})"


class SpillDirectory:
    """The directory holding one environment's spill files (thread-safe).

    ``parent`` None means ``tempfile.gettempdir()``. The directory itself,
    ``<parent>/pyflow-spill-<pid>-<random>``, is private to the environment: created by the first
    :meth:`ensure` and deleted with its content by :meth:`remove`, so environments sharing a
    configured parent never touch each other's files.
    """

    def __init__(self, parent: str | os.PathLike | None = None) -> None:
        self.parent = os.fspath(parent) if parent is not None else None
        self._path: str | None = None
        self._removed = False
        self._lock = threading.Lock()
        self._counter = itertools.count()

    @property
    def path(self) -> str | None:
        """The directory once created (None before the first blocking partition)."""
        return self._path

    def ensure(self) -> str:
        """Create the directory if needed and return it; NetworkError when that is impossible."""
        with self._lock:
            if self._removed:
                raise CancelTaskError("The network environment is closed; its spill directory is gone.")
            if self._path is None:
                parent = self.parent or tempfile.gettempdir()
                try:
                    os.makedirs(parent, exist_ok=True)
                    self._path = tempfile.mkdtemp(prefix=f"pyflow-spill-{os.getpid()}-", dir=parent)
                except OSError as exc:
                    raise NetworkError(
                        f"Could not create a spill directory for blocking result partitions under "
                        f"{parent!r}: {exc}. Set spill_dir to a writable directory."
                    ) from exc
                logger.info("Spilling blocking result partitions to %s", self._path)
            return self._path

    def new_file_path(self, partition_id: str, subpartition_index: int) -> str:
        """A fresh file name for one subpartition (unique even if a partition id is reused)."""
        directory = self.ensure()
        name = _UNSAFE.sub("_", partition_id)[:80] or "partition"
        return os.path.join(directory, f"{next(self._counter):06d}-{name}-{subpartition_index}.arrows")

    def remove(self) -> None:
        """Delete the directory and every file in it (idempotent); later ``ensure`` fails."""
        with self._lock:
            self._removed = True
            path, self._path = self._path, None
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
            logger.info("Removed spill directory %s", path)


class SpillFile:
    """The append-only spill file of one blocking subpartition: Arrow IPC streams, one per run
    of batches with the same schema.

    Not thread-safe: the owning subpartition calls ``append``/``seal``/``delete`` under its lock.
    Readers open their own file descriptor (:meth:`open_reader`) once the file is sealed, so
    deleting the file never pulls a descriptor from under a thread that is sending from it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.bytes_written = 0
        self._file: BinaryIO | None = None
        self._schema: pa.Schema | None = None
        self._created = False
        self._sealed = False
        self._deleted = False

    def append(self, schema: pa.Schema, message: pa.Buffer) -> int:
        """Append a serialized record batch message of ``schema``; returns its offset.

        Starts a new IPC stream (end-of-stream marker, then the schema message) when the schema
        differs from the previous batch's. Raises OSError when the disk write fails.
        """
        if self._sealed or self._deleted:
            raise RuntimeError(f"Spill file {self.path} is {'deleted' if self._deleted else 'sealed'}.")
        if self._file is None:
            self._file = open(self.path, "xb")
            self._created = True
        write = self._file.write
        current = self._schema
        if current is None or not (current is schema or current.equals(schema, check_metadata=True)):
            if current is not None:
                write(END_OF_STREAM)
                self.bytes_written += len(END_OF_STREAM)
            header = schema.serialize()
            write(header)
            self.bytes_written += header.size
            self._schema = schema
        offset = self.bytes_written
        write(message)
        self.bytes_written += message.size
        return offset

    def seal(self) -> None:
        """End the last IPC stream and close the writer: the file is complete and readable."""
        if self._sealed or self._deleted:
            return
        self._sealed = True
        if self._file is not None:
            if self._schema is not None:
                self._file.write(END_OF_STREAM)
                self.bytes_written += len(END_OF_STREAM)
            self._file.close()
            self._file = None

    def open_reader(self) -> BinaryIO:
        """A new unbuffered binary reader of the sealed file (the caller closes it)."""
        if not self._sealed:
            raise RuntimeError(f"Spill file {self.path} is still being written.")
        return open(self.path, "rb", buffering=0)

    def delete(self) -> None:
        """Close the writer and unlink the file (idempotent, never raises)."""
        if self._deleted:
            return
        self._deleted = True
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass
        if self._created:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("Could not delete spill file %s: %s", self.path, exc)

    @property
    def is_deleted(self) -> bool:
        return self._deleted

    def __repr__(self) -> str:
        return f"SpillFile({self.path!r}, {self.bytes_written} bytes)"
