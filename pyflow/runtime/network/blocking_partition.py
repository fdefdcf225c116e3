"""Blocking result partitions: Flink's BLOCKING (batch) shuffle, spilling to disk.

In BATCH execution a consumer task is deployed only after every producer of its input finished,
so a blocking partition must take all of its producer's output with no consumer connected, keep
it after the producer's task ended, and serve it later with the same frames and the same
credit-based flow control as a pipelined partition.

Writing (task thread)
---------------------
``emit`` slices, partitions and coalesces exactly like a pipelined partition (same partitioners,
``segment_size`` / ``batch_size``), but it never waits: a finished buffer is serialized once and
stored at the end of its subpartition's sequence, either

* **in memory**, while the environment's :class:`~pyflow.runtime.network.spill.SpillBudget`
  admits its serialized size (one budget shared by every blocking partition of the environment,
  first come first served), or
* **spilled**, appended to the subpartition's :class:`~pyflow.runtime.network.spill.SpillFile`
  (Arrow IPC streams; a new stream when the schema changes).

Placement is decided once per buffer, when it is stored; nothing moves later. Schema messages and
events are small and always stay in memory (charged to the budget, never refused by it), at their
exact position in the sequence, so order per subpartition is exact whatever is spilled.
``finish`` appends EndOfPartition and seals the spill files: from then on the partition is
complete and serving may start.

Serving (sender thread per consumer)
------------------------------------
A consumer may connect before or after ``finish`` (or before the partition exists: the data
server then hands its connection over, see ``Subpartition.hand_over``); serving starts once the
partition is finished. The sender walks the sequence in order under credit: in-memory buffers are
sent from memory, spilled ones straight from the file with ``sendfile`` (sequential reads, never
a whole file in memory). Every buffer's memory is returned to the budget once sent, and the
spill file is unlinked when EndOfPartition is taken, before the consumer can see it.

Invariants
----------
* The bytes a blocking partition holds in memory are bounded by the shared budget plus its
  schema messages and events, plus per subpartition one coalescing buffer (``batch_size`` rows /
  ``segment_size`` bytes) and, while sending, one buffer in flight.
* ``num_bytes_out`` / ``num_buffers_out`` count the frames when they are stored (so a producer
  that ends before consumption reports complete numbers); they equal what the consumer's gate
  counts in ``num_bytes_in`` / ``num_buffers_in`` after reading everything.
* A subpartition is served once. If its consumer disconnects before EndOfPartition, the
  subpartition's data is dropped and later requests get an ERROR frame; the producer is not
  affected (it does not depend on its consumers in a blocking exchange).
* A partition is released (memory returned, files deleted) when every subpartition was
  consumed, by ``release_partition``, ``cancel``/``fail``, or when the environment closes.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import pyarrow as pa

from pyflow.errors import NetworkError
from pyflow.runtime.network import frames
from pyflow.runtime.network.result_partition import (
    _WAIT_SLICE_S,
    BufferSettings,
    ConsumerConnection,
    ResultPartition,
    Subpartition,
    _EncodedEvent,
    _same_schema,
)
from pyflow.runtime.network.spill import SpillBudget, SpillDirectory, SpillFile

logger = logging.getLogger(__name__)

__all__ = ["BlockingResultPartition", "BlockingSubpartition"]


class _Entry:
    """One frame of a blocking subpartition's sequence: in memory (``payload``) or spilled
    (``payload`` None; ``length`` bytes at ``offset`` of the spill file)."""

    __slots__ = ("frame_type", "payload", "offset", "length", "is_end")

    def __init__(self, frame_type: int, payload: Any, offset: int, length: int, is_end: bool = False) -> None:
        self.frame_type = frame_type
        self.payload = payload
        self.offset = offset
        self.length = length
        self.is_end = is_end


class BlockingSubpartition(Subpartition):
    """The stored output for one consumer channel of a blocking partition.

    Producer-side state (pending pieces, the sequence, the spill writer) changes only under the
    subpartition's condition; the sender thread reads the spill file through its own descriptor.
    """

    def __init__(self, partition_id: str, index: int, settings: BufferSettings, budget: SpillBudget,
                 spill_dir: SpillDirectory) -> None:
        super().__init__(partition_id, index, settings)
        self._budget = budget
        self._spill_dir = spill_dir
        self._entries: deque[_Entry] = deque()
        self._spill: SpillFile | None = None
        self._wire_schema: pa.Schema | None = None
        self._memory_bytes = 0  # budget bytes of stored in-memory entries
        self._stored_buffers = 0

    # ---------------------------------------------------------------- metrics

    @property
    def spilled_bytes(self) -> int:
        """Bytes written to this subpartition's spill file (IPC stream headers included)."""
        return 0 if self._spill is None else self._spill.bytes_written

    @property
    def memory_bytes(self) -> int:
        """Serialized bytes this subpartition holds in memory now (sent ones excluded)."""
        return self._memory_bytes

    @property
    def queued_buffers(self) -> int:
        """Stored buffers not sent yet (in memory or spilled)."""
        return self._stored_buffers

    @property
    def spill_path(self) -> str | None:
        return None if self._spill is None else self._spill.path

    # ---------------------------------------------------------------- producer (task thread)

    def add(self, piece: pa.RecordBatch, nbytes: int) -> None:
        """Coalesce or store one piece of about ``nbytes`` bytes; never waits."""
        settings = self._settings
        rows = piece.num_rows
        direct = rows * 2 >= settings.batch_size or nbytes * 2 >= settings.segment_size
        with self._cond:
            self._check_writable_locked()
            if self._consumer_error is not None:
                return  # its consumer broke off: nobody can read this subpartition any more
            if self._pending and (
                direct
                or self._pending_rows + rows > settings.batch_size
                or self._pending_bytes + nbytes > settings.segment_size
                or not _same_schema(self._pending[0].schema, piece.schema)
            ):
                self._store_pending_locked()
            if direct:
                self._store_batch_locked(piece)
                return
            self._pending.append(piece)
            self._pending_rows += rows
            self._pending_bytes += nbytes
            if self._pending_rows >= settings.batch_size or self._pending_bytes >= settings.segment_size:
                self._store_pending_locked()

    def add_event(self, item: _EncodedEvent) -> None:
        """Store pending data, then the event (always in memory); EndOfPartition completes the
        subpartition: its spill file is sealed and serving may start."""
        with self._cond:
            self._check_writable_locked()
            if self._pending:
                self._store_pending_locked()
            if self._consumer_error is None:
                payload = item.payload
                self._append_memory_locked(frames.EVENT, payload, is_end=item.is_end)
                self.bytes_out += frames.HEADER.size + len(payload)
            if item.is_end:
                if self._spill is not None:
                    try:
                        self._spill.seal()
                    except OSError as exc:
                        raise self._spill_failed_locked(exc) from exc
                self._finished = True
            self._cond.notify_all()

    def flush(self, block: bool = True) -> None:
        """Store pending data now (explicit flush). The flusher's non-blocking flush does
        nothing: nobody waits for a blocking partition's data before it finished."""
        if not block:
            return
        with self._cond:
            self._raise_if_failed_locked()
            if self._pending:
                self._store_pending_locked()

    def _store_pending_locked(self) -> None:
        pending = self._pending
        batch = pending[0] if len(pending) == 1 else pa.concat_batches(pending)
        self._pending = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._store_batch_locked(batch)

    def _store_batch_locked(self, batch: pa.RecordBatch) -> None:
        schema = batch.schema
        if self._wire_schema is None or not _same_schema(self._wire_schema, schema):
            header = schema.serialize()
            self._append_memory_locked(frames.SCHEMA, header)
            self.bytes_out += frames.HEADER.size + header.size
            self._wire_schema = schema
        message = batch.serialize()  # compacts slices; the piece's parent buffers can go
        size = message.size
        if self._budget.try_reserve(size):
            self._entries.append(_Entry(frames.BATCH, message, 0, size))
            self._memory_bytes += size
        else:
            if self._spill is None:
                self._spill = SpillFile(self._spill_dir.new_file_path(self.partition_id, self.index))
            try:
                offset = self._spill.append(schema, message)
            except OSError as exc:
                raise self._spill_failed_locked(exc) from exc
            self._entries.append(_Entry(frames.BATCH, None, offset, size))
        self._stored_buffers += 1
        self.bytes_out += frames.HEADER.size + size
        self.buffers_out += 1

    def _append_memory_locked(self, frame_type: int, payload: Any, is_end: bool = False) -> None:
        size = len(payload) if isinstance(payload, bytes) else payload.size
        self._budget.reserve(size)  # small and never spilled: charged, never refused
        self._memory_bytes += size
        self._entries.append(_Entry(frame_type, payload, 0, size, is_end))

    def _spill_failed_locked(self, exc: OSError) -> NetworkError:
        """Fail the subpartition after a disk error; returns the error for the emitter."""
        path = self.spill_path
        message = (f"Could not spill subpartition {self.name} to {path}: {exc}. Free space on that "
                   "disk, set spill_dir to a bigger one or raise blocking_memory_budget.")
        self._error = (NetworkError, message)
        self._consumer_error = f"the producer could not spill subpartition {self.name}: {exc}"
        self._drop_data_locked()
        self._cond.notify_all()
        return NetworkError(message)

    def _drop_data_locked(self) -> None:
        super()._drop_data_locked()
        self._entries.clear()
        self._stored_buffers = 0
        if self._memory_bytes:
            self._budget.release(self._memory_bytes)
            self._memory_bytes = 0
        if self._spill is not None:
            self._spill.delete()

    # ---------------------------------------------------------------- server side

    def connection_closed(self, conn: ConsumerConnection, cause: BaseException | None) -> None:
        """The consumer closed ``conn``: after EndOfPartition the subpartition is consumed;
        before, its data is dropped and later requests are refused (the producer carries on)."""
        consumed = False
        with self._cond:
            if conn is self._conn:
                conn.closed = True
                if self._eop_sent.is_set():
                    consumed = not self._consumed
                    self._consumed = True
                elif self._error is None and self._consumer_error is None:
                    reason = "it closed the connection" if cause is None else f"{type(cause).__name__}: {cause}"
                    logger.warning("Consumer %s of blocking subpartition %s disconnected before the end (%s); "
                                   "dropping its data", conn.peer, self.name, reason)
                    self._consumer_error = (
                        f"an earlier consumer ({conn.peer}) of blocking subpartition {self.name} "
                        f"disconnected before the end ({reason}); a subpartition is served only once"
                    )
                    self._drop_data_locked()
                self._cond.notify_all()
        conn.close()
        if consumed and self._owner is not None:
            self._owner._subpartition_consumed()

    def _next_entry_locked(self, conn: ConsumerConnection, reader: Any) -> tuple[_Entry | None, Any, str | None]:
        """Wait until the next entry may be sent: ``(entry, reader, None)``, ``(None, reader,
        error text)`` or ``(None, reader, None)`` when the connection closed."""
        entries = self._entries
        while True:
            if conn.closed:
                return None, reader, None
            if self._error is not None or self._consumer_error is not None:
                return None, reader, self._consumer_error or "producer failed"
            if self._finished and entries:
                head = entries[0]
                if self._credit > 0 or head.frame_type == frames.SCHEMA:
                    if head.payload is None and reader is None:
                        try:
                            reader = self._spill.open_reader()
                        except (OSError, RuntimeError, AttributeError) as exc:
                            self._consumer_error = f"spill file of subpartition {self.name} is unreadable: {exc}"
                            logger.error("Cannot read the spill file of %s: %s", self.name, exc)
                            self._drop_data_locked()
                            continue
                    entries.popleft()
                    if head.payload is not None:
                        self._memory_bytes -= head.length  # returned to the budget once sent
                    if head.frame_type == frames.BATCH:
                        self._stored_buffers -= 1
                    if head.frame_type != frames.SCHEMA:
                        self._credit -= 1
                    if head.is_end:
                        self._eop_sent.set()  # before the write: the consumer may close at once
                        if self._spill is not None:
                            self._spill.delete()  # everything spilled was sent; our reader keeps it open
                    self._cond.notify_all()
                    return head, reader, None
            self._cond.wait(_WAIT_SLICE_S)

    def _send_loop(self, conn: ConsumerConnection) -> None:
        sock = conn.sock
        reader = None
        try:
            while True:
                with self._cond:
                    entry, reader, error_text = self._next_entry_locked(conn, reader)
                if error_text is not None:
                    frames.send_frame(sock, frames.ERROR, error_text.encode("utf-8"))
                    conn.close()
                    return
                if entry is None:
                    return
                try:
                    if entry.payload is not None:
                        frames.send_frame(sock, entry.frame_type, entry.payload)
                    else:
                        frames.send_file_frame(sock, entry.frame_type, reader, entry.offset, entry.length)
                finally:
                    if entry.payload is not None:
                        self._budget.release(entry.length)
                if entry.is_end:
                    if self._owner is not None:
                        self._owner._subpartition_sent()
                    return
                del entry
        except OSError as exc:
            if not conn.closed:
                logger.debug("Sending blocking subpartition %s to %s failed: %s", self.name, conn.peer, exc)
            self.connection_closed(conn, exc)
        except Exception:  # never leave the consumer waiting: fail it with an ERROR frame
            logger.exception("Serving blocking subpartition %s failed", self.name)
            self.fail(NetworkError, f"Serving blocking subpartition {self.name} failed.",
                      f"producer could not serve blocking subpartition {self.name}")
            conn.close()
        finally:
            if reader is not None:
                reader.close()


class BlockingResultPartition(ResultPartition):
    """A result partition for a BLOCKING exchange: written completely before it is read.

    Created by ``NetworkEnvironment.create_result_partition(..., blocking=True)``; written by one
    task thread (``emit`` / ``broadcast_event`` / ``finish``, which never wait for consumers),
    served afterwards by the data server, released when every subpartition was consumed, by
    ``release_partition`` or when the environment closes. The producer's task does not wait
    for consumption.

    >>> import pyarrow as pa
    >>> from pyflow.runtime.network import NetworkEnvironment, RebalancePartitioner, ChannelSpec
    >>> with NetworkEnvironment(blocking_memory_budget=0) as env:  # budget 0: everything spills
    ...     partition = env.create_result_partition("b", 1, RebalancePartitioner(), blocking=True)
    ...     partition.emit(pa.record_batch({"x": [1, 2, 3]}))
    ...     partition.finish()  # the producer task could end here
    ...     spilled = partition.spilled_bytes > 0
    ...     gate = env.create_input_gate([ChannelSpec("b", 0, *env.address)])
    ...     spilled, gate.next(timeout=10)[1].num_rows, gate.next(timeout=10)
    (True, 3, None)
    """

    @property
    def spilled_bytes(self) -> int:
        """Bytes written to spill files (all subpartitions, also those deleted since)."""
        return sum(s.spilled_bytes for s in self._subpartitions)

    @property
    def memory_bytes(self) -> int:
        """Serialized bytes held in memory now (charged to the environment's budget)."""
        return sum(s.memory_bytes for s in self._subpartitions)

    def _flush_nonblocking(self) -> None:
        """Nothing: a blocking partition coalesces until buffers are full, an event or finish."""

    def metrics(self) -> dict[str, Any]:
        metrics = super().metrics()
        metrics.update(blocking=True, spilled_bytes=self.spilled_bytes, memory_bytes=self.memory_bytes)
        return metrics

    def __repr__(self) -> str:
        return f"BlockingResultPartition({self.partition_id!r}, subpartitions={self.num_subpartitions})"
