"""Producer side of the data plane: a result partition and its subpartitions.

Ownership and threads
---------------------
* The **task thread** owns a :class:`ResultPartition` and calls ``emit`` / ``broadcast_event`` /
  ``finish``. ``emit`` slices big batches, partitions them, coalesces small pieces per
  subpartition and enqueues finished buffers; it blocks while a subpartition queue is full.
* One **sender thread per consumer connection** (started by the data server when a consumer's
  REQUEST arrives) takes buffers off its :class:`Subpartition` queue while the consumer has
  credit, serializes them and writes them to the socket.
* The data server's **connection thread** reads CREDIT frames and notices the consumer closing.
* The environment's **flusher thread** moves coalesced-but-unsent data to the queue every
  ``buffer_timeout_ms`` without ever blocking.

Invariants
----------
* A subpartition holds at most ``queue_capacity`` queued buffers plus one pending (coalescing)
  buffer of at most ``batch_size`` rows / ``segment_size`` bytes; the consumer holds at most
  its credit. So the memory of a channel is bounded whatever the input size: that bound is the
  backpressure that stops a fast producer in front of a slow consumer.
* Buffers and events leave a subpartition in the order they were added; ``EndOfPartition`` is
  the last item of every subpartition.
* Every subpartition state change happens under its condition and notifies all waiters.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import pyarrow as pa

from pyflow.errors import CancelTaskError, NetworkError, NotYetSupportedError, SerializationError
from pyflow.runtime.network import frames
from pyflow.runtime.network.events import EndOfPartition
from pyflow.runtime.network.partitioners import Partitioner

logger = logging.getLogger(__name__)

__all__ = ["BufferSettings", "ConsumerConnection", "ResultPartition", "Subpartition"]

# Upper bound for a single condition wait, so a lost wake-up can never hang a thread for good.
_WAIT_SLICE_S = 1.0


@dataclass(frozen=True, slots=True)
class BufferSettings:
    """Buffer sizing shared by every subpartition of one environment."""

    segment_size: int
    batch_size: int
    buffer_timeout_ms: float
    queue_capacity: int


class _EncodedEvent:
    """An event pickled once, enqueued on every subpartition."""

    __slots__ = ("event", "payload", "is_end")

    def __init__(self, event: Any, payload: bytes) -> None:
        self.event = event
        self.payload = payload
        self.is_end = isinstance(event, EndOfPartition)


_END_OF_PARTITION = _EncodedEvent(EndOfPartition(), frames.encode_event(EndOfPartition()))


class ConsumerConnection:
    """One accepted TCP connection that serves one subpartition to one consumer channel."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.closed = False
        self.last_schema: pa.Schema | None = None
        self._close_lock = threading.Lock()

    def close(self) -> None:
        with self._close_lock:
            if self.closed and self.sock.fileno() < 0:
                return
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


class RefusedRequest(Exception):
    """A consumer's REQUEST cannot be served; the text is sent back in an ERROR frame."""


class Subpartition:
    """The queue of buffers for one consumer channel, plus its credit and connection.

    Created by the producer's ``ResultPartition`` or, when a consumer connects first, by the
    data server on the consumer's request (the partition adopts it later). A blocking partition
    cannot adopt such a placeholder; it takes over its consumer connection instead
    (:meth:`hand_over`), after which the placeholder forwards credit and close notifications.
    """

    def __init__(self, partition_id: str, index: int, settings: BufferSettings) -> None:
        self.partition_id = partition_id
        self.index = index
        self._settings = settings
        self._cond = threading.Condition()
        self._queue: deque[pa.RecordBatch | _EncodedEvent] = deque()
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._credit = 0
        self._conn: ConsumerConnection | None = None
        self._error: tuple[type[BaseException], str] | None = None
        self._consumer_error: str | None = None
        self._finished = False  # EndOfPartition enqueued
        self._eop_sent = threading.Event()
        self._consumed = False  # EndOfPartition sent and the consumer closed its connection
        self._owner: ResultPartition | None = None
        self._successor: Subpartition | None = None  # set by hand_over()
        self.bytes_out = 0
        self.buffers_out = 0
        self._backpressured_s = 0.0
        self._blocked_since: float | None = None

    @property
    def name(self) -> str:
        return f"{self.partition_id}[{self.index}]"

    # ---------------------------------------------------------------- producer (task thread)

    def _raise_if_failed_locked(self) -> None:
        if self._error is not None:
            exc_type, message = self._error
            raise exc_type(message)

    def _check_writable_locked(self) -> None:
        self._raise_if_failed_locked()
        if self._finished:
            raise RuntimeError(f"Subpartition {self.name} is finished; nothing can be added after finish().")

    def _has_space_locked(self) -> bool:
        return len(self._queue) < self._settings.queue_capacity

    def _wait_locked(self) -> None:
        started = self._blocked_since = time.monotonic()
        try:
            self._cond.wait(_WAIT_SLICE_S)
        finally:
            self._blocked_since = None
            self._backpressured_s += time.monotonic() - started

    @property
    def backpressured_s(self) -> float:
        """Time the producer spent blocked on this subpartition, including a wait going on now."""
        since = self._blocked_since
        ongoing = 0.0 if since is None else max(0.0, time.monotonic() - since)
        return self._backpressured_s + ongoing

    def _move_pending_locked(self) -> None:
        pending = self._pending
        batch = pending[0] if len(pending) == 1 else pa.concat_batches(pending)
        self._pending = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._queue.append(batch)
        self._cond.notify_all()

    def add(self, piece: pa.RecordBatch, nbytes: int) -> None:
        """Coalesce or enqueue one piece of about ``nbytes`` bytes; blocks while the queue is
        full (backpressure)."""
        settings = self._settings
        rows = piece.num_rows
        direct = (
            settings.buffer_timeout_ms <= 0
            or rows * 2 >= settings.batch_size
            or nbytes * 2 >= settings.segment_size
        )
        with self._cond:
            while True:
                self._check_writable_locked()
                if self._pending and (
                    direct
                    or self._pending_rows + rows > settings.batch_size
                    or self._pending_bytes + nbytes > settings.segment_size
                    or not _same_schema(self._pending[0].schema, piece.schema)
                ):
                    if self._has_space_locked():
                        self._move_pending_locked()
                    else:
                        self._wait_locked()
                    continue
                if direct:
                    if self._has_space_locked():
                        self._queue.append(piece)
                        self._cond.notify_all()
                        return
                    self._wait_locked()
                    continue
                self._pending.append(piece)
                self._pending_rows += rows
                self._pending_bytes += nbytes
                if (
                    self._pending_rows >= settings.batch_size or self._pending_bytes >= settings.segment_size
                ) and self._has_space_locked():
                    self._move_pending_locked()
                return

    def add_event(self, item: _EncodedEvent) -> None:
        """Flush pending data, then enqueue the event; blocks while the queue is full."""
        with self._cond:
            while True:
                self._check_writable_locked()
                if not self._has_space_locked():
                    self._wait_locked()
                    continue
                if self._pending:
                    self._move_pending_locked()
                    continue
                self._queue.append(item)
                if item.is_end:
                    self._finished = True
                self._cond.notify_all()
                return

    def flush(self, block: bool = True) -> None:
        """Move pending (coalescing) data to the queue. With ``block=False`` (the flusher) this
        never waits and never raises: a full queue keeps the data pending for the next tick."""
        with self._cond:
            while self._pending:
                if self._error is not None:
                    if block:
                        self._raise_if_failed_locked()
                    return
                if self._has_space_locked():
                    self._move_pending_locked()
                    return
                if not block:
                    return
                self._wait_locked()

    def fail(self, exc_type: type[BaseException], message: str, consumer_message: str) -> None:
        """Drop queued data; emitters raise ``exc_type(message)``, a consumer gets an ERROR frame
        with ``consumer_message`` (unless it already received EndOfPartition)."""
        with self._cond:
            if self._error is None:
                self._error = (exc_type, message)
                self._consumer_error = consumer_message
            self._drop_data_locked()
            self._cond.notify_all()

    def _drop_data_locked(self) -> None:
        self._queue.clear()
        self._pending = []
        self._pending_rows = 0
        self._pending_bytes = 0

    def close_connection(self) -> None:
        """Abort the consumer connection (environment shutdown)."""
        with self._cond:
            conn = self._conn
            self._cond.notify_all()
        if conn is not None:
            conn.close()

    def wait_sent(self, timeout: float | None) -> bool:
        return self._eop_sent.wait(timeout)

    @property
    def queued_buffers(self) -> int:
        return len(self._queue)

    # ---------------------------------------------------------------- server side

    def hand_over(self, successor: "Subpartition") -> None:
        """Move this placeholder's consumer connection and credit to ``successor`` (the
        subpartition of a blocking partition created after the consumer connected). From then on
        the placeholder's sender thread ends and credit / close notifications are forwarded."""
        with self._cond:
            conn, credit = self._conn, self._credit
            self._successor = successor
            self._conn = None
            self._credit = 0
            self._cond.notify_all()
            # attach under our lock: a CREDIT frame forwarded after this finds the successor ready
            if conn is not None and not conn.closed:
                successor.attach(conn, credit)

    def attach(self, conn: ConsumerConnection, credit: int) -> None:
        """Serve this subpartition on ``conn``: starts the sender thread."""
        with self._cond:
            if self._conn is not None and not self._conn.closed:
                raise RefusedRequest(
                    f"Subpartition {self.name} is already being consumed by {self._conn.peer}."
                )
            if self._eop_sent.is_set():
                raise RefusedRequest(f"Subpartition {self.name} was already consumed completely.")
            self._conn = conn
            self._credit = credit
            self._cond.notify_all()
        thread = threading.Thread(
            target=self._send_loop, args=(conn,), name=f"pyflow-net-send-{self.name}", daemon=True
        )
        thread.start()

    def add_credit(self, conn: ConsumerConnection, credit: int) -> None:
        with self._cond:
            successor = self._successor
            if successor is None:
                if conn is self._conn:
                    self._credit += credit
                    self._cond.notify_all()
                return
        successor.add_credit(conn, credit)

    def connection_closed(self, conn: ConsumerConnection, cause: BaseException | None) -> None:
        """The consumer closed ``conn`` (``cause`` None: orderly close) or it broke."""
        consumed = False
        with self._cond:
            successor = self._successor
            if successor is None and conn is self._conn:
                conn.closed = True
                if self._eop_sent.is_set():
                    consumed = not self._consumed
                    self._consumed = True
                elif self._error is None:
                    reason = "it closed the connection" if cause is None else f"{type(cause).__name__}: {cause}"
                    self._error = (
                        NetworkError,
                        f"Consumer {conn.peer} of partition {self.partition_id} subpartition "
                        f"{self.index} disconnected before the end of the partition ({reason}).",
                    )
                    self._consumer_error = (
                        f"an earlier consumer connection of subpartition {self.name} broke; "
                        "a pipelined subpartition cannot be consumed twice"
                    )
                    self._drop_data_locked()
                self._cond.notify_all()
        if successor is not None:  # handed over: the successor serves this connection
            successor.connection_closed(conn, cause)
            return
        conn.close()
        if consumed and self._owner is not None:
            self._owner._subpartition_consumed()

    def _send_loop(self, conn: ConsumerConnection) -> None:
        sock = conn.sock
        try:
            while True:
                error_text = None
                with self._cond:
                    while True:
                        if self._successor is not None or conn.closed:
                            return  # handed over: the connection belongs to the successor now
                        if self._error is not None:
                            error_text = self._consumer_error or "producer failed"
                            break
                        if self._queue and self._credit > 0:
                            item = self._queue.popleft()
                            self._credit -= 1
                            if isinstance(item, _EncodedEvent) and item.is_end:
                                self._eop_sent.set()  # before the write: the consumer may close at once
                            self._cond.notify_all()
                            break
                        self._cond.wait(_WAIT_SLICE_S)
                if error_text is not None:
                    frames.send_frame(sock, frames.ERROR, error_text.encode("utf-8"))
                    conn.close()
                    return
                if isinstance(item, _EncodedEvent):
                    if item.is_end:
                        # Counted before the write: the consumer may finish before it returns.
                        self.bytes_out += frames.HEADER.size + len(item.payload)
                        frames.send_frame(sock, frames.EVENT, item.payload)
                    else:
                        self.bytes_out += frames.send_frame(sock, frames.EVENT, item.payload)
                    if item.is_end:
                        if self._owner is not None:
                            self._owner._subpartition_sent()
                        return
                else:
                    schema = item.schema
                    last = conn.last_schema
                    if last is None or not _same_schema(last, schema):
                        self.bytes_out += frames.send_frame(sock, frames.SCHEMA, schema.serialize())
                        conn.last_schema = schema
                    self.bytes_out += frames.send_frame(sock, frames.BATCH, item.serialize())
                    self.buffers_out += 1
                    del item
        except OSError as exc:
            if not conn.closed:
                logger.debug("Sending subpartition %s to %s failed: %s", self.name, conn.peer, exc)
            self.connection_closed(conn, exc)
        except Exception:  # a batch that cannot be serialized: fail the partition, tell the consumer
            logger.exception("Serializing a buffer of subpartition %s failed", self.name)
            self.fail(NetworkError, f"Serializing a buffer of subpartition {self.name} failed.",
                      f"producer could not serialize a buffer of subpartition {self.name}")
            conn.close()


def _same_schema(a: pa.Schema, b: pa.Schema) -> bool:
    return a is b or a.equals(b, check_metadata=True)


class ResultPartition:
    """What a producer task writes to: one subpartition per consumer channel.

    Created by :meth:`NetworkEnvironment.create_result_partition`; used by exactly one task
    thread. The server releases it once every consumer read EndOfPartition and closed.

    >>> import pyarrow as pa
    >>> from pyflow.runtime.network import NetworkEnvironment, ForwardPartitioner, ChannelSpec
    >>> with NetworkEnvironment() as env:
    ...     gate = env.create_input_gate([ChannelSpec("p", 0, *env.address)])
    ...     partition = env.create_result_partition("p", 1, ForwardPartitioner())
    ...     partition.emit(pa.record_batch({"x": [1, 2, 3]}))
    ...     partition.finish()
    ...     gate.next(timeout=10)[1].num_rows, gate.next(timeout=10)
    (3, None)
    """

    def __init__(
        self,
        partition_id: str,
        subpartitions: list[Subpartition],
        partitioner: Partitioner,
        settings: BufferSettings,
        on_release: Callable[[str, str], None],
    ) -> None:
        self.partition_id = partition_id
        self.partitioner = partitioner
        self._subpartitions = subpartitions
        self._settings = settings
        self._on_release = on_release
        self._lock = threading.Lock()
        self._finished = False
        self._released = False
        self._checked_schema: pa.Schema | None = None
        self.num_records_out = 0
        for subpartition in subpartitions:
            subpartition._owner = self

    @property
    def num_subpartitions(self) -> int:
        return len(self._subpartitions)

    @property
    def subpartitions(self) -> list[Subpartition]:
        return list(self._subpartitions)

    @property
    def num_bytes_out(self) -> int:
        """IPC bytes put on the wire (frame headers included), all subpartitions."""
        return sum(s.bytes_out for s in self._subpartitions)

    @property
    def num_buffers_out(self) -> int:
        return sum(s.buffers_out for s in self._subpartitions)

    @property
    def backpressured_time_ms(self) -> float:
        """Total time the producer spent blocked on full subpartition queues."""
        return 1000.0 * sum(s.backpressured_s for s in self._subpartitions)

    @property
    def queued_buffers(self) -> int:
        return sum(s.queued_buffers for s in self._subpartitions)

    @property
    def is_finished(self) -> bool:
        return self._finished

    # ---------------------------------------------------------------- task thread API

    def emit(self, batch: pa.RecordBatch) -> None:
        """Partition ``batch`` and queue it; blocks while a target subpartition is full.

        Raises ``CancelTaskError`` when the partition is cancelled or released while blocked and
        ``NetworkError`` when a consumer's connection broke.
        """
        if isinstance(batch, pa.Table):
            for part in batch.to_batches():
                self.emit(part)
            return
        num_rows = batch.num_rows
        if num_rows == 0:
            return
        self._check_schema(batch.schema)
        subpartitions = self._subpartitions
        num_channels = len(subpartitions)
        select = self.partitioner.select
        for chunk, chunk_bytes in self._chunks(batch, num_rows):
            chunk_rows = chunk.num_rows
            for channel, piece in select(chunk, num_channels):
                piece_rows = piece.num_rows
                piece_bytes = chunk_bytes if piece_rows == chunk_rows else chunk_bytes * piece_rows // chunk_rows
                subpartitions[channel].add(piece, piece_bytes)
        self.num_records_out += num_rows

    def broadcast_event(self, event: Any) -> None:
        """Flush every subpartition's pending data, then send ``event`` on all of them."""
        if isinstance(event, EndOfPartition):
            item = _END_OF_PARTITION
        else:
            try:
                item = _EncodedEvent(event, frames.encode_event(event))
            except Exception as exc:
                raise SerializationError(f"Event {event!r} cannot be pickled: {exc}") from exc
        for subpartition in self._subpartitions:
            subpartition.add_event(item)

    def flush(self) -> None:
        """Queue all pending (coalesced) data now; blocks while queues are full."""
        for subpartition in self._subpartitions:
            subpartition.flush(block=True)

    def finish(self) -> None:
        """Flush and send EndOfPartition on every subpartition. Returns once queued; the server
        releases the partition when every consumer has read everything and closed."""
        if self._finished:
            return
        self.broadcast_event(EndOfPartition())
        self._finished = True

    def wait_until_consumed(self, timeout: float | None = None) -> bool:
        """True once every subpartition has sent its EndOfPartition (False on timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for subpartition in self._subpartitions:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not subpartition.wait_sent(remaining):
                return False
        return True

    def cancel(self) -> None:
        """Wake blocked emitters with CancelTaskError, drop queued data, tell the consumers."""
        self._fail_all(
            CancelTaskError,
            f"Result partition {self.partition_id} was cancelled.",
            f"the producer of partition {self.partition_id} was cancelled",
        )
        self._on_release(self.partition_id, "cancelled")

    def fail(self, cause: BaseException | str) -> None:
        """The producer task failed: consumers get an ERROR frame naming ``cause``."""
        text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        self._fail_all(
            CancelTaskError,
            f"Result partition {self.partition_id} was failed: {text}",
            f"the producer task of partition {self.partition_id} failed: {text}",
        )
        self._on_release(self.partition_id, "failed")

    # ---------------------------------------------------------------- environment side

    def _chunks(self, batch: pa.RecordBatch, num_rows: int):
        """``(chunk, approximate bytes)`` pairs: slices of at most batch_size rows and about
        segment_size bytes (rows are assumed to be of similar size)."""
        settings = self._settings
        segment = settings.segment_size
        size = batch.get_total_buffer_size()  # cheap upper bound (counts whole buffers of slices)
        if size > segment:
            size = batch.nbytes  # exact for slices, slower
        step = settings.batch_size
        if size > segment:
            step = min(step, max(1, num_rows * segment // size))
        if num_rows <= step:
            yield batch, size
            return
        for offset in range(0, num_rows, step):
            rows = min(step, num_rows - offset)
            yield batch.slice(offset, rows), size * rows // num_rows

    def _check_schema(self, schema: pa.Schema) -> None:
        checked = self._checked_schema
        if checked is not None and _same_schema(checked, schema):
            return
        for field in schema:
            if pa.types.is_dictionary(field.type):
                raise NotYetSupportedError(
                    f"Column {field.name!r} is dictionary-encoded; dictionary columns cannot be "
                    "sent between tasks yet. Decode it first (e.g. pyarrow.compute.cast to its "
                    "value type)."
                )
        self._checked_schema = schema

    def _flush_nonblocking(self) -> None:
        for subpartition in self._subpartitions:
            subpartition.flush(block=False)

    def _fail_all(self, exc_type: type[BaseException], message: str, consumer_message: str) -> None:
        for subpartition in self._subpartitions:
            subpartition.fail(exc_type, message, consumer_message)

    def _release(self, reason: str) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._fail_all(
            CancelTaskError,
            f"Result partition {self.partition_id} was released ({reason}).",
            f"partition {self.partition_id} was released by the producer TaskManager ({reason})",
        )

    def _close_connections(self) -> None:
        for subpartition in self._subpartitions:
            subpartition.close_connection()

    def _subpartition_sent(self) -> None:
        pass

    def _subpartition_consumed(self) -> None:
        if all(s._consumed for s in self._subpartitions):
            self._on_release(self.partition_id, "fully consumed")

    def metrics(self) -> dict[str, Any]:
        return {
            "num_subpartitions": self.num_subpartitions,
            "num_records_out": self.num_records_out,
            "num_bytes_out": self.num_bytes_out,
            "num_buffers_out": self.num_buffers_out,
            "backpressured_time_ms": self.backpressured_time_ms,
            "queued_buffers": self.queued_buffers,
            "finished": self._finished,
            "blocking": False,
            "spilled_bytes": 0,
        }

    def __repr__(self) -> str:
        return f"ResultPartition({self.partition_id!r}, subpartitions={self.num_subpartitions})"
