"""The data plane of one TaskManager: its NetworkEnvironment and the one data server in it.

``NetworkEnvironment`` owns, for one TaskManager process:

* the **data server** (one listening socket, one accept thread, one connection thread per
  consumer channel reading REQUEST/CREDIT frames; the sender threads live on the subpartitions),
* the **registry** of result partitions keyed by ``(partition_id, subpartition_index)``, with
  create-on-demand from either side: a consumer may request a subpartition before the producer
  task created its partition (the subpartition waits for it), or after,
* the **flusher thread** that sends coalesced data after ``buffer_timeout_ms``,
* the input gates of its tasks (so ``close`` can wake them),
* for **blocking** (batch) partitions, the spill directory and the one memory budget shared by
  all of them (see :mod:`pyflow.runtime.network.blocking_partition`).

All public methods are thread-safe.
"""

from __future__ import annotations

import dataclasses

import enum
import logging
import socket
import threading
import time
from collections import OrderedDict
from typing import Any, Sequence

from pyflow.errors import CancelTaskError, NetworkError
from pyflow.runtime.network import frames
from pyflow.runtime.network.blocking_partition import BlockingResultPartition, BlockingSubpartition
from pyflow.runtime.network.input_gate import ChannelSpec, InputGate
from pyflow.runtime.network.partitioners import Partitioner
from pyflow.runtime.network.result_partition import (
    BufferSettings,
    ConsumerConnection,
    RefusedRequest,
    ResultPartition,
    Subpartition,
)
from pyflow.runtime.network.spill import SpillBudget, SpillDirectory

logger = logging.getLogger(__name__)

__all__ = ["ChannelSpec", "NetworkEnvironment"]

_REQUEST_TIMEOUT_S = 30.0
_REMEMBERED_RELEASES = 10_000
DEFAULT_BLOCKING_MEMORY_BUDGET = 64 << 20


class Status(enum.Enum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    CLOSED = "CLOSED"


class NetworkEnvironment:
    """The data plane of one TaskManager process: one data server, its partitions and gates.

    ``segment_size`` bounds the bytes of one network buffer and ``batch_size`` its rows (bigger
    batches are sliced, smaller ones coalesced up to these); ``buffers_per_channel`` is the
    exclusive credit of an input channel and the queue length of a subpartition,
    ``floating_buffers_per_gate`` is shared out as extra credit over a gate's channels;
    ``buffer_timeout_ms`` is the longest time coalesced data waits (0: send on every emit).

    Blocking partitions (``create_result_partition(..., blocking=True)``) keep serialized buffers
    in memory while all blocking partitions of this environment together hold at most
    ``blocking_memory_budget`` bytes, and spill the rest to files in a private directory
    ``pyflow-spill-<pid>-<random>`` created under ``spill_dir`` (default: the system temp
    directory) and deleted by ``close()``.

    >>> import pyarrow as pa
    >>> from pyflow.runtime.network import RebalancePartitioner
    >>> with NetworkEnvironment() as producer_tm, NetworkEnvironment() as consumer_tm:
    ...     partition = producer_tm.create_result_partition("p1", 1, RebalancePartitioner())
    ...     gate = consumer_tm.create_input_gate([ChannelSpec("p1", 0, *producer_tm.address)])
    ...     partition.emit(pa.record_batch({"x": [1, 2]}))
    ...     partition.finish()
    ...     input_index, batch = gate.next(timeout=10)
    ...     batch.column(0).to_pylist(), gate.next(timeout=10)
    ([1, 2], None)
    """

    def __init__(
        self,
        *,
        bind_host: str = "127.0.0.1",
        host: str = "127.0.0.1",
        port: int = 0,
        segment_size: int = 1 << 20,
        buffers_per_channel: int = 2,
        floating_buffers_per_gate: int = 8,
        buffer_timeout_ms: float = 100.0,
        batch_size: int = 16384,
        max_buffers_per_subpartition: int | None = None,
        spill_dir: str | None = None,
        blocking_memory_budget: int = DEFAULT_BLOCKING_MEMORY_BUDGET,
    ) -> None:
        if segment_size < 1024:
            raise ValueError(f"segment_size must be at least 1024 bytes, got {segment_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.bind_host = bind_host
        self.host = host
        self._port = port
        self.buffers_per_channel = max(1, int(buffers_per_channel))
        self.floating_buffers_per_gate = max(0, int(floating_buffers_per_gate))
        self.settings = BufferSettings(
            segment_size=int(segment_size),
            batch_size=int(batch_size),
            buffer_timeout_ms=float(buffer_timeout_ms),
            queue_capacity=max(1, int(max_buffers_per_subpartition or buffers_per_channel)),
        )
        self._spill_dir = SpillDirectory(spill_dir)
        self._spill_budget = SpillBudget(int(blocking_memory_budget))
        self._lock = threading.RLock()
        self._status = Status.CREATED
        self._partitions: dict[str, ResultPartition] = {}
        self._waiting: dict[tuple[str, int], Subpartition] = {}
        self._released: OrderedDict[str, str] = OrderedDict()
        self._gates: set[InputGate] = set()
        self._connections: set[ConsumerConnection] = set()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._gate_counter = 0

    @classmethod
    def from_config(cls, net_conf: Any) -> "NetworkEnvironment":
        """From a ``NetworkConfiguration`` (or anything with the same attributes; ``spill_dir``
        and ``blocking_memory_budget`` are optional, None meaning the default)."""
        kwargs = {}
        for name in ("bind_host", "host", "port", "segment_size", "buffers_per_channel",
                     "floating_buffers_per_gate", "buffer_timeout_ms", "batch_size"):
            if hasattr(net_conf, name):
                kwargs[name] = getattr(net_conf, name)
        kwargs["spill_dir"] = getattr(net_conf, "spill_dir", None)
        budget = getattr(net_conf, "blocking_memory_budget", None)
        if budget is not None:
            kwargs["blocking_memory_budget"] = int(budget)
        return cls(**kwargs)

    # ---------------------------------------------------------------- lifecycle

    @property
    def status(self) -> Status:
        return self._status

    @property
    def spill_dir(self) -> str | None:
        """This environment's spill directory once created (by the first blocking partition)."""
        return self._spill_dir.path

    @property
    def spill_budget(self) -> SpillBudget:
        """The memory budget shared by this environment's blocking partitions."""
        return self._spill_budget

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` consumers connect to; the port is known after ``start()``."""
        return self.host, self._port

    def start(self) -> None:
        """Bind the data server and start the accept and flusher threads (idempotent)."""
        with self._lock:
            if self._status is Status.RUNNING:
                return
            if self._status is Status.CLOSED:
                raise NetworkError("The network environment is closed; create a new one.")
            try:
                listener = socket.create_server((self.bind_host, self._port), backlog=128)
            except OSError as exc:
                raise NetworkError(
                    f"Could not bind the data server to {self.bind_host}:{self._port}: {exc}. "
                    "Choose a free port or 0."
                ) from exc
            self._listener = listener
            self._port = listener.getsockname()[1]
            self._status = Status.RUNNING
            self._spawn(self._accept_loop, f"pyflow-net-accept-{self._port}")
            self._spawn(self._flush_loop, f"pyflow-net-flusher-{self._port}")
        logger.info("Data server listening on %s:%s (advertised %s)", self.bind_host, self._port, self.host)

    def close(self) -> None:
        """Stop the server and fail every partition and gate (idempotent): blocked emitters and
        readers of this environment wake with CancelTaskError; remote consumers see NetworkError.
        The spill directory is deleted with every file in it."""
        with self._lock:
            if self._status is Status.CLOSED:
                return
            self._status = Status.CLOSED
            partitions = list(self._partitions.values())
            waiting = list(self._waiting.values())
            gates = list(self._gates)
            connections = list(self._connections)
            self._partitions.clear()
            self._waiting.clear()
            self._gates.clear()
            listener, self._listener = self._listener, None
        self._stop.set()
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for partition in partitions:
            partition._release("network environment closed")
        self._spill_dir.remove()
        for subpartition in waiting:
            subpartition.fail(CancelTaskError, "Network environment closed.", "network environment closed")
        for conn in connections:
            conn.close()
        for gate in gates:
            gate.close()
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout=5.0)
        logger.info("Data server %s:%s closed", self.host, self._port)

    def __enter__(self) -> "NetworkEnvironment":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _spawn(self, target, name: str, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    # ---------------------------------------------------------------- partitions and gates

    def create_result_partition(self, partition_id: str, num_subpartitions: int,
                                partitioner: Partitioner, *, blocking: bool = False,
                                buffer_timeout_ms: float | None = None,
                                batch_size: int | None = None) -> ResultPartition:
        """Register the partition a producer task writes to (one subpartition per consumer).

        ``blocking=False`` (PIPELINED): data streams to consumers while it is produced, under
        backpressure. ``blocking=True`` (BLOCKING, batch): the producer writes everything without
        waiting (spilling beyond the memory budget) and consumers read it after ``finish()``,
        also after the producer's task ended; returns a :class:`BlockingResultPartition`.
        ``buffer_timeout_ms`` / ``batch_size`` override the environment's for this partition:
        they are the producing job's ``execution.buffer-timeout`` / ``execution.batch-size``.
        """
        settings = self.settings
        if buffer_timeout_ms is not None or batch_size is not None:
            settings = dataclasses.replace(
                settings,
                buffer_timeout_ms=settings.buffer_timeout_ms if buffer_timeout_ms is None else float(buffer_timeout_ms),
                batch_size=settings.batch_size if batch_size is None else int(batch_size))
        if num_subpartitions < 1:
            raise ValueError(f"A result partition needs at least one subpartition, got {num_subpartitions}")
        handovers: list[tuple[Subpartition, Subpartition]] = []
        with self._lock:
            self._check_open()
            if partition_id in self._partitions:
                raise ValueError(f"Result partition {partition_id} already exists in this TaskManager.")
            if blocking:
                self._spill_dir.ensure()  # a bad spill_dir fails here, not in the middle of emit
            self._released.pop(partition_id, None)
            subpartitions: list[Subpartition] = []
            for index in range(num_subpartitions):
                subpartition = self._waiting.pop((partition_id, index), None)
                if subpartition is not None:
                    subpartition._settings = settings  # created by an early consumer, with defaults
                if blocking:
                    stored = BlockingSubpartition(partition_id, index, settings, self._spill_budget,
                                                  self._spill_dir)
                    if subpartition is not None:  # a consumer connected first: take its connection
                        handovers.append((subpartition, stored))
                    subpartitions.append(stored)
                    continue
                subpartitions.append(subpartition or Subpartition(partition_id, index, settings))
            orphans = [key for key in self._waiting if key[0] == partition_id]
            for key in orphans:
                self._waiting.pop(key).fail(
                    CancelTaskError, "no such subpartition",
                    f"partition {partition_id} has only {num_subpartitions} subpartitions, "
                    f"subpartition {key[1]} does not exist",
                )
            partition_type = BlockingResultPartition if blocking else ResultPartition
            partition = partition_type(partition_id, subpartitions, partitioner, settings, self._on_release)
            self._partitions[partition_id] = partition
        for placeholder, stored in handovers:
            placeholder.hand_over(stored)
        logger.debug("Created %s result partition %s with %d subpartitions",
                     "blocking" if blocking else "pipelined", partition_id, num_subpartitions)
        return partition

    def create_input_gate(self, channels: Sequence[ChannelSpec], *, connect_timeout_s: float = 30.0,
                          name: str | None = None) -> InputGate:
        """Create and start an input gate; its channels connect in the background."""
        credit = self.buffers_per_channel + self.floating_buffers_per_gate // max(1, len(channels))
        with self._lock:
            self._check_open()
            self._gate_counter += 1
            gate = InputGate(
                channels,
                credit_per_channel=credit,
                connect_timeout_s=connect_timeout_s,
                name=name or f"gate-{self._gate_counter}",
                on_close=self._gate_closed,
            )
            self._gates.add(gate)
        gate.start()
        return gate

    def release_partition(self, partition_id: str) -> None:
        """Drop a partition: queued data is discarded (spill files deleted), emitters and
        consumers are failed. Called when the job ends for blocking partitions not yet consumed."""
        self._on_release(partition_id, "released")

    def _on_release(self, partition_id: str, reason: str) -> None:
        with self._lock:
            partition = self._partitions.pop(partition_id, None)
            waiting = [self._waiting.pop(key) for key in list(self._waiting) if key[0] == partition_id]
            self._released[partition_id] = reason
            self._released.move_to_end(partition_id)
            while len(self._released) > _REMEMBERED_RELEASES:
                self._released.popitem(last=False)
        if partition is not None:
            partition._release(reason)
            logger.debug("Released result partition %s (%s)", partition_id, reason)
        for subpartition in waiting:
            subpartition.fail(CancelTaskError, f"partition {partition_id} {reason}",
                              f"partition {partition_id} was {reason}")

    def _gate_closed(self, gate: InputGate) -> None:
        with self._lock:
            self._gates.discard(gate)

    def _check_open(self) -> None:
        if self._status is Status.CLOSED:
            raise CancelTaskError("The network environment of this TaskManager is closed.")

    def metrics(self) -> dict[str, Any]:
        """A snapshot of every partition and gate plus totals."""
        with self._lock:
            partitions = dict(self._partitions)
            gates = list(self._gates)
            connections = len(self._connections)
        partition_metrics = {pid: p.metrics() for pid, p in partitions.items()}
        gate_metrics = [g.metrics() for g in gates]
        return {
            "address": f"{self.host}:{self._port}",
            "status": self._status.value,
            "connections": connections,
            "partitions": partition_metrics,
            "gates": gate_metrics,
            "num_bytes_out": sum(m["num_bytes_out"] for m in partition_metrics.values()),
            "num_bytes_in": sum(m["num_bytes_in"] for m in gate_metrics),
            "spilled_bytes": sum(m["spilled_bytes"] for m in partition_metrics.values()),
            "blocking_memory_bytes": self._spill_budget.used,
            "blocking_memory_budget": self._spill_budget.capacity,
            "spill_dir": self._spill_dir.path,
        }

    # ---------------------------------------------------------------- data server

    def _subpartition_for_request(self, partition_id: str, index: int) -> Subpartition:
        with self._lock:
            if self._status is not Status.RUNNING:
                raise RefusedRequest("the data server is shutting down")
            if partition_id in self._released:
                raise RefusedRequest(f"partition {partition_id} was {self._released[partition_id]}")
            partition = self._partitions.get(partition_id)
            if partition is not None:
                if index >= partition.num_subpartitions:
                    raise RefusedRequest(
                        f"partition {partition_id} has only {partition.num_subpartitions} subpartitions, "
                        f"subpartition {index} does not exist"
                    )
                return partition.subpartitions[index]
            subpartition = self._waiting.get((partition_id, index))
            if subpartition is None:
                subpartition = Subpartition(partition_id, index, self.settings)
                self._waiting[(partition_id, index)] = subpartition
            return subpartition

    def _accept_loop(self) -> None:
        listener = self._listener
        while listener is not None and not self._stop.is_set():
            try:
                sock, addr = listener.accept()
            except OSError:
                if self._stop.is_set():
                    return
                logger.warning("Data server %s:%s failed to accept a connection", self.host, self._port,
                               exc_info=True)
                continue
            threading.Thread(
                target=self._serve_connection, args=(sock, addr),
                name=f"pyflow-net-conn-{addr[0]}:{addr[1]}", daemon=True,
            ).start()

    def _serve_connection(self, sock: socket.socket, addr: tuple) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        frames.tune_socket(sock)
        conn = ConsumerConnection(sock, peer)
        with self._lock:
            if self._status is not Status.RUNNING:
                conn.close()
                return
            self._connections.add(conn)
        try:
            self._serve(conn)
        finally:
            with self._lock:
                self._connections.discard(conn)

    def _serve(self, conn: ConsumerConnection) -> None:
        sock = conn.sock
        reader = frames.FrameReader(sock)
        try:
            sock.settimeout(_REQUEST_TIMEOUT_S)
            frame_type, payload = reader.read()
            sock.settimeout(None)
            if frame_type != frames.REQUEST:
                raise ValueError(f"expected a REQUEST frame, got type {frame_type}")
            partition_id, index, credit = frames.decode_request(payload)
        except (OSError, EOFError, ValueError) as exc:
            logger.warning("Dropping data connection from %s: %s", conn.peer, exc)
            conn.close()
            return
        try:
            subpartition = self._subpartition_for_request(partition_id, index)
            subpartition.attach(conn, credit)
        except RefusedRequest as refused:
            logger.info("Refusing request of %s for %s[%d]: %s", conn.peer, partition_id, index, refused)
            try:
                frames.send_frame(sock, frames.ERROR, str(refused).encode("utf-8"))
            except OSError:
                pass
            conn.close()
            return
        logger.debug("Serving %s[%d] to %s with initial credit %d", partition_id, index, conn.peer, credit)
        cause: BaseException | None = None
        try:
            while True:
                frame_type, payload = reader.read()
                if frame_type != frames.CREDIT:
                    raise ValueError(f"protocol error: unexpected frame type {frame_type} from consumer")
                subpartition.add_credit(conn, frames.decode_credit(payload))
        except EOFError:
            cause = None
        except (OSError, ValueError) as exc:
            cause = exc
        subpartition.connection_closed(conn, cause)

    def _flush_loop(self) -> None:
        """Flush every partition once its own buffer timeout passed since its last flush; wake
        as often as the smallest timeout needs (partitions with timeout 0 send on every emit)."""
        last: dict[str, float] = {}
        interval = 0.1
        while not self._stop.wait(interval):
            with self._lock:
                partitions = list(self._partitions.values())
            now = time.monotonic()
            timeouts = [p._settings.buffer_timeout_ms for p in partitions if p._settings.buffer_timeout_ms > 0]
            interval = max(0.001, min(timeouts) / 1000.0) if timeouts else 0.1
            for partition in partitions:
                timeout_s = partition._settings.buffer_timeout_ms / 1000.0
                if timeout_s <= 0 or now - last.get(partition.partition_id, 0.0) < timeout_s:
                    continue
                last[partition.partition_id] = now
                try:
                    partition._flush_nonblocking()
                except Exception:  # never let one partition stop flushing of the others
                    logger.exception("Flushing result partition %s failed", partition.partition_id)
            for gone in set(last) - {p.partition_id for p in partitions}:
                del last[gone]

    def __repr__(self) -> str:
        return f"NetworkEnvironment({self.host}:{self._port}, {self._status.value})"
