"""The contract between a task and the stream operators of its chain.

An operator is built on the client (it holds the user's function), pickled once per job vertex,
and unpickled once per subtask, so every subtask owns a fresh copy. The task then calls, in
order: ``setup`` (context and output), ``open``, ``process_batch`` for every input batch (or
``run`` for a source), ``end_input`` once its input is exhausted, and ``close``. ``close`` runs
also after a failure or a cancellation, so it must be safe to call on a half-opened operator.

Inside a chain, ``output.collect(batch)`` is a plain function call into the next operator; at the
chain's end it is a write into a network result partition. Operators never see sockets.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow as pa


class Output:
    """Where an operator sends its batches, and its watermarks (in order with the batches)."""

    def collect(self, batch: pa.RecordBatch) -> None:
        raise NotImplementedError

    def collect_side(self, tag: str, batch: pa.RecordBatch) -> None:
        """A batch for the side output ``tag`` (an OutputTag's id)."""
        raise NotImplementedError

    def emit_watermark(self, watermark: Any) -> None:
        raise NotImplementedError

    def emit_watermark_status(self, status: Any) -> None:
        raise NotImplementedError


@dataclass
class OperatorMetrics:
    """Counters of one operator in one subtask, with Flink's metric names."""

    num_records_in: int = 0
    num_records_out: int = 0
    #: records that came too late for every window they belong to, and had no late side output
    num_late_records_dropped: int = 0

    def to_dict(self) -> dict[str, int]:
        out = {"numRecordsIn": self.num_records_in, "numRecordsOut": self.num_records_out}
        if self.num_late_records_dropped:
            out["numLateRecordsDropped"] = self.num_late_records_dropped
        return out


@dataclass
class OperatorContext:
    """What a running operator may know about where it runs."""

    task_name: str
    operator_name: str
    subtask_index: int
    parallelism: int
    max_parallelism: int
    attempt_number: int = 0
    job_id: str = ""
    batch_size: int = 16384
    buffer_timeout_ms: float = 100.0
    batch_mode: bool = False
    #: bytes of managed memory of this task's slot (the TaskManager's managed memory / its slots)
    managed_memory: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)
    #: a graceful stop of a source (set by any thread): the source checks it between rows of user
    #: code and between batches, and returns from ``run()`` as a bounded source whose input ended
    stop: threading.Event = field(default_factory=threading.Event)
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    #: the event time this operator has seen pass (the last watermark it received)
    current_watermark: int = -(2**63)
    #: called by sources between batches and while they wait: lets the task run its periodic
    #: work (watermark emission, idleness) on the task thread, as Flink's mailbox does
    tick: Callable[[], None] = lambda: None
    #: the keyed state backend of a keyed operator (None elsewhere)
    keyed_state_backend: Any = None
    #: processing time in epoch ms; tests replace it with a controllable clock
    processing_time: Callable[[], float] = field(default=lambda: time.time() * 1000.0)


class StreamOperator:
    """Base of every operator that runs in a task.

    Subclasses override ``process_batch`` (and ``end_input`` if they hold results back until the
    input ends, as batch-mode aggregations do). ``name`` is the operator's display name.
    """

    name: str = "Operator"
    #: True for operators that must be told which key a batch belongs to (keyed operators)
    keyed: bool = False

    def setup(self, ctx: OperatorContext, output: Output) -> None:
        self.ctx = ctx
        self.output = output

    def open(self) -> None:
        pass

    def process_batch(self, batch: pa.RecordBatch) -> None:
        raise NotImplementedError

    def end_input(self) -> None:
        pass

    def process_watermark(self, watermark: Any) -> None:
        """Event time advanced (the task already set ``ctx.current_watermark``). Operators with
        event-time timers fire them here; the default passes the watermark on."""
        self.output.emit_watermark(watermark)

    def process_watermark_status(self, status: Any) -> None:
        self.output.emit_watermark_status(status)

    def on_processing_time(self, now_ms: float) -> None:
        """Periodic call on the task thread (every few hundred ms, and between source batches)."""

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        """Extra facts for the execution plan (JSON)."""
        return {}

    def create_keyed_state_backend(self) -> Any:
        """This subtask's keyed state: a heap backend over its key-group range, published to the
        runtime context (``get_state``). Keyed operators call it in ``open()``."""
        from pyflow.state.backend import HeapKeyedStateBackend
        from pyflow.state.key_groups import key_group_range

        ctx = self.ctx
        backend = HeapKeyedStateBackend(
            ctx.max_parallelism, key_group_range(ctx.max_parallelism, ctx.parallelism, ctx.subtask_index))
        ctx.keyed_state_backend = backend
        return backend

    @property
    def num_late_records_dropped(self) -> int:
        """Flink's numLateRecordsDropped of this operator (kept in its metrics once set up)."""
        ctx = self.__dict__.get("ctx")
        return ctx.metrics.num_late_records_dropped if ctx is not None else 0

    @num_late_records_dropped.setter
    def num_late_records_dropped(self, value: int) -> None:
        ctx = self.__dict__.get("ctx")
        if ctx is not None:
            ctx.metrics.num_late_records_dropped = value


class SourceOperator(StreamOperator):
    """An operator with no input: ``run`` produces batches until the source ends or is cancelled."""

    bounded: bool = True

    def run(self) -> None:
        raise NotImplementedError

    def process_batch(self, batch: pa.RecordBatch) -> None:  # pragma: no cover - sources have no input
        raise TypeError(f"{self.name} is a source and takes no input")
