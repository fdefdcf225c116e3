"""Consumer side of the data plane: an input gate with one TCP channel per producer subpartition.

Ownership and threads
---------------------
* One **reader thread per channel** connects to the producer TaskManager's data server
  (retrying with backoff until ``connect_timeout_s``: the producer may still be starting),
  sends REQUEST with its initial credit, decodes frames and puts ``(channel, kind, payload)``
  on the gate's queue.
* The **task thread** calls :meth:`InputGate.next`; every batch or event it takes out returns one
  credit to that channel's producer (a CREDIT frame written by the task thread).

Invariants
----------
* Per channel, items come out in the order the producer sent them.
* A channel never has more undelivered items than the credit it announced
  (``buffers_per_channel`` exclusive + its share of the gate's floating buffers), so the gate's
  memory is bounded; items of a blocked channel (:meth:`InputGate.block_channel`, for
  checkpoint-barrier alignment) are set aside without returning credit, which stalls exactly
  that producer.
* ``EndOfPartition`` is consumed by the gate; ``next`` returns ``None`` once every channel
  delivered it. A channel that breaks before it makes ``next`` raise ``NetworkError`` naming the
  producer's address and partition.
"""

from __future__ import annotations

import logging
import pickle
import queue
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pyarrow as pa

from pyflow.errors import CancelTaskError, NetworkError
from pyflow.runtime.metrics.views import WaitTimer
from pyflow.runtime.network import frames
from pyflow.runtime.network.events import EndOfPartition

logger = logging.getLogger(__name__)

__all__ = ["ChannelSpec", "InputGate"]

_BATCH, _EVENT, _END, _FAILED, _WAKE = range(5)


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """Where one input channel reads from: a subpartition on a producer's data server.

    ``input_index`` is the logical input of the consuming operator (0, or 1 for the second
    input of a two-input operator); ``InputGate.next`` returns it with every item.
    """

    partition_id: str
    subpartition_index: int
    host: str
    port: int
    input_index: int = 0

    def describe(self) -> str:
        return (f"producer {self.host}:{self.port} (partition {self.partition_id}, "
                f"subpartition {self.subpartition_index})")


class _Timeout:
    __slots__ = ()

    def __repr__(self) -> str:
        return "InputGate.TIMEOUT"

    def __bool__(self) -> bool:
        return False


class _RemoteError(Exception):
    pass


class _InputChannel:
    """One TCP connection to a producer subpartition; its reader thread feeds the gate."""

    def __init__(self, gate: "InputGate", index: int, spec: ChannelSpec, credit: int) -> None:
        self.gate = gate
        self.index = index
        self.spec = spec
        self.credit = credit
        self.sock: socket.socket | None = None
        self.lock = threading.Lock()
        self.bytes_in = 0
        self.buffers_in = 0
        self.finished = False  # the task took EndOfPartition
        self.thread = threading.Thread(
            target=self._run, name=f"pyflow-net-read-{spec.partition_id}[{spec.subpartition_index}]",
            daemon=True,
        )

    def return_credit(self) -> None:
        with self.lock:
            sock = self.sock
            if sock is None:
                return
            try:
                sock.sendall(frames.encode_credit(1))
            except OSError:
                pass  # the reader thread reports the broken connection

    def close(self) -> None:
        with self.lock:
            sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _connect(self) -> socket.socket | None:
        spec = self.spec
        gate = self.gate
        timeout = gate.connect_timeout_s
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            if gate._closing.is_set():
                return None
            remaining = deadline - time.monotonic()
            try:
                sock = socket.create_connection((spec.host, spec.port), timeout=max(0.05, min(remaining, 5.0)))
                break
            except OSError as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NetworkError(
                        f"Could not connect to the data server at {spec.host}:{spec.port} to read "
                        f"partition {spec.partition_id} subpartition {spec.subpartition_index} within "
                        f"{timeout:g}s ({type(exc).__name__}: {exc}). Check that the producer "
                        "TaskManager is running and its data port is reachable."
                    ) from exc
                if gate._closing.wait(min(delay, remaining)):
                    return None
                delay = min(delay * 2, 0.5)
        sock.settimeout(None)
        frames.tune_socket(sock)
        with self.lock:
            if gate._closing.is_set():
                sock.close()
                return None
            self.sock = sock
            sock.sendall(frames.encode_request(spec.partition_id, spec.subpartition_index, self.credit))
        return sock

    def _run(self) -> None:
        gate = self.gate
        put = gate._queue.put
        index = self.index
        ended = False
        try:
            sock = self._connect()
            if sock is None:
                return
            reader = frames.FrameReader(sock)
            schema: pa.Schema | None = None
            while True:
                frame_type, payload = reader.read()
                self.bytes_in = reader.bytes_read
                if frame_type == frames.BATCH:
                    if schema is None:
                        raise ConnectionError("protocol error: BATCH frame before any SCHEMA frame")
                    batch = frames.decode_batch(payload, schema)
                    self.buffers_in += 1
                    put((index, _BATCH, batch))
                elif frame_type == frames.SCHEMA:
                    schema = frames.decode_schema(payload)
                elif frame_type == frames.EVENT:
                    event = frames.decode_event(payload)
                    if isinstance(event, EndOfPartition):
                        ended = True
                        put((index, _END, None))
                        return
                    put((index, _EVENT, event))
                elif frame_type == frames.ERROR:
                    raise _RemoteError(bytes(payload).decode("utf-8", "replace"))
                else:
                    raise ConnectionError(f"protocol error: unexpected frame type {frame_type}")
        except NetworkError as exc:
            if not gate._closing.is_set():
                put((index, _FAILED, str(exc)))
        except _RemoteError as exc:
            if not gate._closing.is_set():
                put((index, _FAILED, self._message(f"the producer reported: {exc}")))
        except EOFError:
            if not gate._closing.is_set():
                put((index, _FAILED, self._message("the connection was closed before the end of the partition")))
        except (OSError, ValueError, pa.ArrowException, pickle.UnpicklingError, AttributeError,
                ImportError) as exc:
            if not gate._closing.is_set():
                put((index, _FAILED, self._message(f"{type(exc).__name__}: {exc}")))
        except BaseException as exc:  # never leave the task thread waiting forever
            logger.exception("Reader of input channel %s failed", self.spec.describe())
            if not gate._closing.is_set():
                put((index, _FAILED, self._message(f"{type(exc).__name__}: {exc}")))
        finally:
            if ended:
                # Closing after EndOfPartition tells the producer this subpartition was consumed.
                self.close()

    def _message(self, reason: str) -> str:
        return (f"Input channel {self.index} of input gate {self.gate.name!r} lost "
                f"{self.spec.describe()}: {reason}")


class InputGate:
    """What a consumer task reads from: all input channels of one task, merged.

    Created by :meth:`NetworkEnvironment.create_input_gate`; read by one task thread.

    >>> import pyarrow as pa
    >>> from pyflow.runtime.network import NetworkEnvironment, BroadcastPartitioner, ChannelSpec
    >>> with NetworkEnvironment(buffer_timeout_ms=0) as env:
    ...     partition = env.create_result_partition("p", 2, BroadcastPartitioner())
    ...     gate = env.create_input_gate([ChannelSpec("p", i, *env.address, input_index=i) for i in range(2)])
    ...     partition.emit(pa.record_batch({"x": [1]}))
    ...     partition.finish()
    ...     sorted(gate.next(timeout=10)[0] for _ in range(2)), gate.next(timeout=10)
    ([0, 1], None)
    """

    TIMEOUT = _Timeout()

    def __init__(
        self,
        channels: Sequence[ChannelSpec],
        *,
        credit_per_channel: int,
        connect_timeout_s: float = 30.0,
        name: str | None = None,
        on_close: Callable[["InputGate"], None] | None = None,
    ) -> None:
        if not channels:
            raise ValueError("An input gate needs at least one channel.")
        self.name = name or f"gate({channels[0].partition_id},...)"
        self.connect_timeout_s = connect_timeout_s
        self._specs = tuple(channels)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = threading.Event()
        self._channels = [_InputChannel(self, i, spec, max(1, credit_per_channel)) for i, spec in enumerate(channels)]
        self._ready: deque[tuple[int, int, Any]] = deque()
        self._blocked: set[int] = set()
        self._stash: dict[int, deque] = {}
        self._num_finished = 0
        self._failure: str | None = None
        self._cancelled = False
        self._started = False
        self._on_close = on_close
        #: the task thread's waits for data (its idle time, Flink's idleTimeMsPerSecond)
        self.idle_timer = WaitTimer()
        self.num_records_in = 0

    def start(self) -> None:
        """Start connecting every channel (idempotent)."""
        if self._started:
            return
        self._started = True
        for channel in self._channels:
            channel.thread.start()

    # ---------------------------------------------------------------- metrics

    @property
    def num_channels(self) -> int:
        return len(self._channels)

    @property
    def channels(self) -> tuple[ChannelSpec, ...]:
        return self._specs

    @property
    def num_bytes_in(self) -> int:
        """Bytes received from producers (frame headers included)."""
        return sum(c.bytes_in for c in self._channels)

    @property
    def num_buffers_in(self) -> int:
        return sum(c.buffers_in for c in self._channels)

    @property
    def idle_time_ms(self) -> float:
        """Total time ``next`` waited for data, including a wait going on now."""
        return 1000.0 * self.idle_timer.total_s()

    @property
    def is_finished(self) -> bool:
        return self._num_finished == len(self._channels)

    # ---------------------------------------------------------------- task thread API

    def poll(self, timeout: float | None = None) -> tuple[int, Any] | None | _Timeout:
        """Like :meth:`next` but returns the *channel index* instead of the input index."""
        if self._failure is not None:
            raise NetworkError(self._failure)
        if self._closing.is_set():
            raise self._closed_error()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._ready:
                entry = self._ready.popleft()
            else:
                if self._num_finished == len(self._channels):
                    return None
                try:
                    entry = self._queue.get_nowait()
                except queue.Empty:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return self.TIMEOUT
                    self.idle_timer.start()
                    try:
                        entry = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        return self.TIMEOUT
                    finally:
                        self.idle_timer.stop()
            index, kind, payload = entry
            if kind == _WAKE:
                if self._closing.is_set():
                    raise self._closed_error()
                continue
            if kind == _FAILED:
                self._failure = payload
                self._close_channels()
                raise NetworkError(payload)
            if index in self._blocked:
                self._stash.setdefault(index, deque()).append(entry)
                continue
            channel = self._channels[index]
            if kind == _END:
                channel.finished = True
                self._num_finished += 1
                continue
            channel.return_credit()
            if kind == _BATCH:
                self.num_records_in += payload.num_rows
            return index, payload

    def next(self, timeout: float | None = None) -> tuple[int, Any] | None | _Timeout:
        """The next ``(input_index, batch_or_event)`` in per-channel order.

        Returns ``None`` once every channel delivered EndOfPartition, ``InputGate.TIMEOUT`` (which
        is falsy) when ``timeout`` seconds pass without data; raises ``NetworkError`` when a
        channel broke and ``CancelTaskError`` after ``cancel()``/``close()``.
        """
        item = self.poll(timeout)
        if item is None or item is self.TIMEOUT:
            return item
        return self._specs[item[0]].input_index, item[1]

    def block_channel(self, channel_index: int) -> None:
        """Hold back this channel's items (and its credit) until unblocked (barrier alignment)."""
        self._blocked.add(channel_index)

    def unblock_channel(self, channel_index: int) -> None:
        self._blocked.discard(channel_index)
        stashed = self._stash.pop(channel_index, None)
        if stashed:
            self._ready.extend(stashed)

    def unblock_all(self) -> None:
        for channel_index in list(self._blocked):
            self.unblock_channel(channel_index)

    def cancel(self) -> None:
        """Wake a blocked ``next`` with CancelTaskError and drop the connections."""
        self._cancelled = True
        self.close()

    def close(self) -> None:
        """Close every connection (idempotent); a later or blocked ``next`` raises CancelTaskError."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._close_channels()
        self._queue.put((-1, _WAKE, None))
        current = threading.current_thread()
        for channel in self._channels:
            if channel.thread.is_alive() and channel.thread is not current:
                channel.thread.join(timeout=1.0)
        if self._on_close is not None:
            self._on_close(self)

    def _close_channels(self) -> None:
        for channel in self._channels:
            channel.close()

    def _closed_error(self) -> CancelTaskError:
        verb = "cancelled" if self._cancelled else "closed"
        return CancelTaskError(f"Input gate {self.name!r} was {verb}.")

    def metrics(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_channels": self.num_channels,
            "num_records_in": self.num_records_in,
            "num_bytes_in": self.num_bytes_in,
            "num_buffers_in": self.num_buffers_in,
            "idle_time_ms": self.idle_time_ms,
            "finished_channels": self._num_finished,
        }

    def __enter__(self) -> "InputGate":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"InputGate({self.name!r}, channels={self.num_channels})"
