"""Task: one subtask of a chain, running in its own thread of a TaskManager process.

Lifecycle (Flink's ExecutionState): DEPLOYING -> INITIALIZING (user code unpickled, operators
opened, channels created) -> RUNNING -> FINISHED | FAILED | CANCELED. A task turns FINISHED when
its input ended, its operators closed, and its consumers received all it produced. Every transition is
reported through ``report(update)``; a failure carries the user's traceback as text.

Inside the task the chain is a tree of operators wired by ``Output`` objects: a chained output is
a function call into the next operator, a network output writes into a result partition.

A source task can be *stopped* (``stop()``, the JobMaster's graceful stop of a job): its source
ends its input as a bounded source ends, the task emits the final MAX watermark and
end-of-partition, and finishes; its consumers drain and finish too. The stop is cooperative: the
source checks it between rows of user code and between batches (nothing is raised into its thread).
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
import time
from typing import Any, Callable

import cloudpickle
import pyarrow as pa

from pyflow.errors import CancelTaskError, NetworkError, format_failure
from pyflow.runtime.deployment import TaskDeploymentDescriptor
from pyflow.runtime.metrics.scopes import TaskScope
from pyflow.runtime.metrics.views import MetricViews, WaitTimer
from pyflow.runtime.process_logging import FILE_ONLY
from pyflow.runtime.messages import ExecutionState, TaskExecutionStateUpdate
from pyflow.runtime.network import (
    MAX_WATERMARK, MIN_WATERMARK, ChannelSpec, InputGate, NetworkEnvironment, ResultPartition, Watermark,
    WatermarkStatus,
)
from pyflow.runtime.watermark_valve import WatermarkValve
from pyflow.runtime.network.partitioners import partitioner_from_spec
from pyflow.runtime.operators.base import OperatorContext, OperatorMetrics, Output, SourceOperator, StreamOperator
from pyflow.runtime.operators.sources import source_progress_metrics

logger = logging.getLogger(__name__)

#: how long a cancelled task may take to stop on its own before its thread is interrupted
CANCELLATION_INTERVAL_S = 0.5


class ChainedOutput(Output):
    """Hands a batch to the next operator of the chain (a function call), counting its input."""

    __slots__ = ("operator",)

    def __init__(self, operator: StreamOperator):
        self.operator = operator

    def collect(self, batch: pa.RecordBatch) -> None:
        self.operator.ctx.metrics.num_records_in += batch.num_rows
        self.operator.process_batch(batch)

    def emit_watermark(self, watermark: Watermark) -> None:
        self.operator.ctx.current_watermark = watermark.timestamp
        self.operator.process_watermark(watermark)

    def emit_watermark_status(self, status: WatermarkStatus) -> None:
        self.operator.process_watermark_status(status)


class PartitionOutput(Output):
    """Writes a batch into a network result partition."""

    __slots__ = ("partition",)

    def __init__(self, partition: ResultPartition):
        self.partition = partition

    def collect(self, batch: pa.RecordBatch) -> None:
        self.partition.emit(batch)

    def emit_watermark(self, watermark: Watermark) -> None:
        self.partition.broadcast_event(watermark)

    def emit_watermark_status(self, status: WatermarkStatus) -> None:
        self.partition.broadcast_event(status)


class FanOutOutput(Output):
    """One operator feeding several outputs (chained and/or network): each gets the batch."""

    __slots__ = ("outputs",)

    def __init__(self, outputs: list[Output]):
        self.outputs = outputs

    def collect(self, batch: pa.RecordBatch) -> None:
        for out in self.outputs:
            out.collect(batch)

    def emit_watermark(self, watermark: Watermark) -> None:
        for out in self.outputs:
            out.emit_watermark(watermark)

    def emit_watermark_status(self, status: WatermarkStatus) -> None:
        for out in self.outputs:
            out.emit_watermark_status(status)


class CountingOutput(Output):
    """An operator's output as the operator sees it: counts its records once, then passes them
    on (a sink, with nowhere to pass them, only counts). Side outputs go to the consumers of
    their tag; a side output nobody consumes is discarded, as in Flink. Watermarks go everywhere
    (the last one is the operator's currentOutputWatermark)."""

    __slots__ = ("metrics", "inner", "sides", "current_output_watermark")

    def __init__(self, metrics: OperatorMetrics, inner: Output | None, sides: dict[str, Output] | None = None):
        self.metrics = metrics
        self.inner = inner
        self.sides = sides or {}
        self.current_output_watermark = MIN_WATERMARK

    def collect(self, batch: pa.RecordBatch) -> None:
        self.metrics.num_records_out += batch.num_rows
        if self.inner is not None:
            self.inner.collect(batch)

    def collect_side(self, tag: str, batch: pa.RecordBatch) -> None:
        out = self.sides.get(tag)
        if out is not None:
            self.metrics.num_records_out += batch.num_rows
            out.collect(batch)

    def _all(self) -> list[Output]:
        return ([self.inner] if self.inner is not None else []) + list(self.sides.values())

    def emit_watermark(self, watermark: Watermark) -> None:
        self.current_output_watermark = watermark.timestamp
        for out in self._all():
            out.emit_watermark(watermark)

    def emit_watermark_status(self, status: WatermarkStatus) -> None:
        for out in self._all():
            out.emit_watermark_status(status)


class _CancellationEvent(threading.Event):
    """A task's cancellation flag. A source that waits for its next data (a rate limit) waits on
    it, so that a cancellation wakes it at once: that wait, on the task's thread, is the task's
    idle time (``idle``), as the input gate's waits are for other tasks."""

    def __init__(self) -> None:
        super().__init__()
        self.idle = WaitTimer()
        self.owner: threading.Thread | None = None

    def wait(self, timeout: float | None = None) -> bool:
        if threading.current_thread() is not self.owner:
            return super().wait(timeout)
        self.idle.start()
        try:
            return super().wait(timeout)
        finally:
            self.idle.stop()


def _runtime_partitioner(spec, max_parallelism: int):
    if spec.type == "hash":
        return partitioner_from_spec({"type": "hash", "max_parallelism": max_parallelism,
                                      "key_hasher": spec.key_selector.hashes})
    return partitioner_from_spec({"type": spec.type})


class Task:
    def __init__(self, tdd: TaskDeploymentDescriptor, network: NetworkEnvironment,
                 report: Callable[[TaskExecutionStateUpdate], None], resource_id: str,
                 managed_memory: int = 0):
        self.managed_memory = managed_memory
        self.tdd = tdd
        self.network = network
        self.report = report
        self.resource_id = resource_id
        self.state = ExecutionState.DEPLOYING
        self.cancelled = _CancellationEvent()
        #: a graceful stop of this task's source (source tasks only): its ``ctx.stop``
        self.source_stop = threading.Event()
        self.operators: dict[int, StreamOperator] = {}
        self.partitions: list[ResultPartition] = []
        self.gate: InputGate | None = None
        self.thread = threading.Thread(target=self._run, name=f"Task {tdd.task_name}", daemon=True)
        self.cancelled.owner = self.thread
        # metrics: rates and time shares, the operators' outputs (their watermarks), running time
        self._views = MetricViews()
        self._outputs: dict[int, CountingOutput] = {}
        self._running_since: float | None = None
        self._running_until: float | None = None
        self._tick_interval_s = tdd.settings.get("auto_watermark_interval_ms", 200.0) / 1000.0
        self._last_tick = 0.0
        self.started_at = time.time()

    @property
    def execution_id(self) -> str:
        return self.tdd.execution_id

    @property
    def metric_scope(self) -> TaskScope:
        """The scope variables of this subtask's metrics (Prometheus labels)."""
        tdd = self.tdd
        return TaskScope(job_id=tdd.job_id, job_name=tdd.job_name, task_id=tdd.vertex_id, task_name=tdd.task_name,
                         execution_id=tdd.execution_id, attempt_number=tdd.attempt_number,
                         subtask_index=tdd.subtask_index)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        if self.state.is_terminal or self.cancelled.is_set():
            return
        logger.info("Cancelling task %s (%s)", self.tdd.task_name, self.execution_id)
        self.cancelled.set()
        for p in self.partitions:
            p.cancel()
        if self.gate is not None:
            self.gate.cancel()
        threading.Thread(target=self._interrupt_until_done, name=f"canceller {self.execution_id}",
                         daemon=True).start()

    def _interrupt_until_done(self) -> None:
        """Flink interrupts a task thread that does not stop when cancelled; Python's equivalent
        raises CancelTaskError inside it (at its next bytecode), again every interval until the
        thread ends. A user function busy in Python code stops within one interval."""
        while self.thread.is_alive():
            self.thread.join(CANCELLATION_INTERVAL_S)
            if self.thread.is_alive() and self.thread.ident is not None and not self.state.is_terminal:
                logger.info("Task %s (%s) did not stop yet; interrupting its thread", self.tdd.task_name,
                            self.execution_id)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread.ident),
                                                           ctypes.py_object(CancelTaskError))

    def stop(self) -> bool:
        """Graceful stop (Flink's stop-with-savepoint --drain, without the savepoint): the source
        ends its input as a bounded source ends, so all it emitted is processed and the job drains.
        The source sees the request at its next row of user code or its next batch (cooperative:
        nothing is raised into the task thread, so a stop never races a cancellation's
        CancelTaskError nor lands inside user code). Returns False for a task that is not a source
        (there is nothing to stop)."""
        if not self.tdd.is_source:
            return False
        if self.state.is_terminal or self.cancelled.is_set() or self.source_stop.is_set():
            return True
        logger.info("Stopping source task %s (%s): its input ends here", self.tdd.task_name, self.execution_id)
        self.source_stop.set()
        return True

    # ------------------------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """This subtask's metrics with Flink's names (see :mod:`pyflow.runtime.metrics`): counters,
        their rates, busy/idle/backpressured time per second and in total, watermarks, and per
        operator of the chain its records in and out (with rates) and watermarks. Any thread."""
        ops: dict[str, dict[str, Any]] = {}
        for op_info in self.tdd.operators:
            op = self.operators.get(op_info.node_id)
            ctx = getattr(op, "ctx", None) if op is not None else None
            out = self._outputs.get(op_info.node_id)
            ops[str(op_info.node_id)] = {
                "name": op_info.name, **(ctx.metrics if ctx is not None else OperatorMetrics()).to_dict(),
                "currentInputWatermark": ctx.current_watermark if ctx is not None else MIN_WATERMARK,
                "currentOutputWatermark": out.current_output_watermark if out is not None else MIN_WATERMARK}
        head = ops[str(self.tdd.operators[0].node_id)] if ops else {}
        idle_ms = 1000.0 * self.cancelled.idle.total_s() + (self.gate.idle_time_ms if self.gate is not None else 0.0)
        backpressured_ms = sum(getattr(p, "backpressured_time_ms", 0.0) for p in self.partitions)
        now = time.monotonic()
        running_ms = 0.0
        if self._running_since is not None:
            running_ms = 1000.0 * ((self._running_until or now) - self._running_since)
        metrics: dict[str, Any] = {
            "operators": ops,
            "numBytesIn": self.gate.num_bytes_in if self.gate is not None else 0,
            "numBytesOut": sum(p.num_bytes_out for p in self.partitions),
            "numRecordsIn": head.get("numRecordsIn", 0),
            "numRecordsOut": sum(p.num_records_out for p in self.partitions),
            "backPressuredTimeMs": backpressured_ms,
            "idleTimeMs": idle_ms,
            "busyTimeMs": max(0.0, running_ms - idle_ms - backpressured_ms),
            "spilledBytes": sum(p.metrics().get("spilled_bytes", 0)
                                for spec, p in zip(self.tdd.outputs, self.partitions) if spec.blocking),
            "currentInputWatermark": head.get("currentInputWatermark", MIN_WATERMARK),
            "currentOutputWatermark": self._output_watermark(ops),
            "state": self.state.value,
        }
        if self._running_since is not None:
            self._add_rates(metrics, ops, now, idle_ms, backpressured_ms)
        metrics.update(source_progress_metrics(self.operators.get(self.tdd.operators[0].node_id)))
        return metrics

    def _output_watermark(self, ops: dict[str, dict[str, Any]]) -> int:
        """The lowest watermark the chain sent to the network (a sink chain: its last operator's)."""
        senders = [ops[str(o.node_id)]["currentOutputWatermark"] for o in self.tdd.operators if o.network_outputs]
        if senders:
            return min(senders)
        return ops[str(self.tdd.operators[-1].node_id)]["currentOutputWatermark"] if ops else MIN_WATERMARK

    def _add_rates(self, metrics: dict[str, Any], ops: dict[str, dict[str, Any]], now: float, idle_ms: float,
                   backpressured_ms: float) -> None:
        """...PerSecond rates and time shares, from the views (once the task runs)."""
        counters = {name: metrics[name] for name in ("numRecordsIn", "numRecordsOut", "numBytesIn", "numBytesOut")}
        for node, op in ops.items():
            counters[f"{node}/numRecordsIn"] = op["numRecordsIn"]
            counters[f"{node}/numRecordsOut"] = op["numRecordsOut"]
        for name, value in self._views.observe(now, counters, idle_ms=idle_ms,
                                               backpressured_ms=backpressured_ms).items():
            node, _, name = name.rpartition("/")
            (ops[node] if node else metrics)[name] = value

    def _transition(self, state: ExecutionState, error: str = "", failure_type: str = "") -> None:
        if state is ExecutionState.RUNNING:
            self._running_since = time.monotonic()
        elif state.is_terminal and self._running_since is not None:
            self._running_until = time.monotonic()
        self.state = state
        logger.info("Task %s (%s) switched to %s", self.tdd.task_name, self.execution_id, state.value)
        metrics = self.metrics()
        if failure_type:
            metrics["failureType"] = failure_type
        self.report(TaskExecutionStateUpdate(
            job_id=self.tdd.job_id, execution_id=self.execution_id, state=state, error=error,
            metrics=metrics, resource_id=self.resource_id))

    def _run(self) -> None:
        tdd = self.tdd
        try:
            self._transition(ExecutionState.INITIALIZING)
            for path in tdd.settings.get("user_paths", ()):
                if path not in sys.path:
                    sys.path.insert(0, path)
            self._build_chain()
            if self.cancelled.is_set():
                raise CancelTaskError()
            self._transition(ExecutionState.RUNNING)
            self._invoke()
            for p in self.partitions:
                p.finish()
            self._close_operators()
            self._wait_until_consumed()
            self._transition(ExecutionState.FINISHED)
        except BaseException as e:  # noqa: BLE001 - every failure is reported, none is lost
            self._close_operators(quiet=True)
            if self.cancelled.is_set() or isinstance(e, CancelTaskError):
                for p in self.partitions:
                    p.cancel()
                self._transition(ExecutionState.CANCELED)
            else:
                for p in self.partitions:
                    p.cancel()
                error = _describe_failure(e, tdd.task_name)
                if isinstance(e, NetworkError):
                    error = self._name_producers(error)
                logger.error("Task %s (%s) failed:\n%s", tdd.task_name, self.execution_id, error,
                             exc_info=e, extra=FILE_ONLY)
                self._transition(ExecutionState.FAILED, error, failure_type=type(e).__name__)
        finally:
            if self.gate is not None:
                self.gate.close()

    def _build_chain(self) -> None:
        tdd = self.tdd
        settings = tdd.settings
        for op_info in tdd.operators:
            op = cloudpickle.loads(tdd.serialized_operators[op_info.node_id])
            self.operators[op_info.node_id] = op
        for p in tdd.outputs:
            # the job's execution.buffer-timeout and execution.batch-size, not the TaskManager's
            partition = self.network.create_result_partition(
                p.partition_id, p.num_subpartitions, _runtime_partitioner(p.partitioner, p.max_parallelism),
                blocking=p.blocking, buffer_timeout_ms=tdd.settings.get("buffer_timeout_ms"),
                batch_size=tdd.settings.get("batch_size"))
            self.partitions.append(partition)
        partition_by_edge = {p.edge_id: part for p, part in zip(tdd.outputs, self.partitions)}
        tag_by_edge = {p.edge_id: p.side_tag for p in tdd.outputs}

        contexts = {}
        for op_info in tdd.operators:
            op = self.operators[op_info.node_id]
            contexts[op_info.node_id] = OperatorContext(
                task_name=tdd.task_name, operator_name=op_info.name, subtask_index=tdd.subtask_index,
                parallelism=tdd.parallelism, max_parallelism=tdd.max_parallelism,
                attempt_number=tdd.attempt_number, job_id=tdd.job_id,
                batch_size=settings.get("batch_size", 16384),
                buffer_timeout_ms=settings.get("buffer_timeout_ms", 100.0),
                batch_mode=settings.get("batch_mode", False), managed_memory=self.managed_memory,
                cancelled=self.cancelled, stop=self.source_stop, tick=self._maybe_tick)
        # set up tail first, so that every chained output points at a set-up operator
        for op_info in reversed(tdd.operators):
            op = self.operators[op_info.node_id]
            by_tag: dict[str | None, list[Output]] = {}
            tags = op_info.chained_side_tags or (None,) * len(op_info.chained_outputs)
            for c, tag in zip(op_info.chained_outputs, tags):
                by_tag.setdefault(tag, []).append(ChainedOutput(self.operators[c]))
            for e in op_info.network_outputs:
                by_tag.setdefault(tag_by_edge[e], []).append(PartitionOutput(partition_by_edge[e]))
            joined = {tag: outs[0] if len(outs) == 1 else FanOutOutput(outs) for tag, outs in by_tag.items()}
            inner = joined.pop(None, None)
            counting = self._outputs[op_info.node_id] = CountingOutput(contexts[op_info.node_id].metrics, inner, joined)
            op.setup(contexts[op_info.node_id], counting)
        for op_info in reversed(tdd.operators):
            self.operators[op_info.node_id].open()
            self.operators[op_info.node_id]._pyflow_opened = True
        if tdd.inputs:
            self.gate = self.network.create_input_gate([
                ChannelSpec(c.partition_id, c.subpartition_index, c.host, c.port, c.input_index)
                for c in tdd.inputs])

    def _invoke(self) -> None:
        head = self.operators[self.tdd.operators[0].node_id]
        if isinstance(head, SourceOperator):
            head.run()  # returns when its input ended, or early once stopped
            if self.cancelled.is_set():
                raise CancelTaskError()
            # a finished source ends event time: everything downstream may fire (Flink does so)
            head.ctx.current_watermark = MAX_WATERMARK
            head.output.emit_watermark(Watermark(MAX_WATERMARK))
        else:
            self._consume_input(head)
        # the input ended: let every operator of the chain emit what it held back, upstream first
        for op_info in self.tdd.operators:
            self.operators[op_info.node_id].end_input()

    def _consume_input(self, head: StreamOperator) -> None:
        gate = self.gate
        assert gate is not None, "a non-source task without inputs"
        valve = WatermarkValve(len(self.tdd.inputs))
        metrics = head.ctx.metrics
        # channel -> the operator input it feeds (two-input operators: process_batch2 for input 1)
        processes = [head.process_batch if c.input_index == 0 else head.process_batch2 for c in self.tdd.inputs]
        timeout_marker = InputGate.TIMEOUT
        poll_s = min(0.2, max(self._tick_interval_s, 0.01))
        while True:
            item = gate.poll(timeout=poll_s)
            if item is None:
                return
            if item is timeout_marker:
                if self.cancelled.is_set():
                    raise CancelTaskError()
                self._maybe_tick()
                continue
            channel, value = item
            if isinstance(value, pa.RecordBatch):
                metrics.num_records_in += value.num_rows
                processes[channel](value)
                self._maybe_tick()
            elif isinstance(value, Watermark):
                advanced = valve.input_watermark(channel, value.timestamp)
                if advanced is not None:
                    head.ctx.current_watermark = advanced
                    head.process_watermark(Watermark(advanced))
            elif isinstance(value, WatermarkStatus):
                advanced, idle = valve.input_status(channel, value.idle)
                if advanced is not None:
                    head.ctx.current_watermark = advanced
                    head.process_watermark(Watermark(advanced))
                if idle is not None:
                    head.process_watermark_status(WatermarkStatus(idle))
            # checkpoint barriers arrive with the checkpointing issue

    def _maybe_tick(self) -> None:
        """Periodic work of the chain's operators, on the task thread (Flink's mailbox)."""
        now = time.monotonic()
        if now - self._last_tick < self._tick_interval_s and self._tick_interval_s > 0:
            return
        self._last_tick = now
        now_ms = time.time() * 1000.0
        for op_info in self.tdd.operators:
            self.operators[op_info.node_id].on_processing_time(now_ms)

    def _name_producers(self, error: str) -> str:
        """A broken input channel names a data address; say which TaskManager and task that is."""
        for c in self.tdd.inputs:
            address = f"{c.host}:{c.port}"
            if address in error and c.producer_resource_id:
                return (f"{error}\nThe producer {address} is TaskManager {c.producer_resource_id} (task "
                        f"{c.producer_task}); it may have been lost.")
        return error

    def _wait_until_consumed(self) -> None:
        """A task is FINISHED once its consumers have received all its data: its byte counters
        are then final, and its partitions need nothing more from it."""
        for spec, p in zip(self.tdd.outputs, self.partitions):
            if spec.blocking:
                continue  # read after this task ended (BATCH); the TaskManager keeps it until then
            while not p.wait_until_consumed(timeout=0.5):
                if self.cancelled.is_set():
                    raise CancelTaskError()

    def _close_operators(self, quiet: bool = False) -> None:
        for op_info in self.tdd.operators:
            op = self.operators.get(op_info.node_id)
            if op is None or not getattr(op, "_pyflow_opened", False):
                continue
            op._pyflow_opened = False
            try:
                op.close()
            except Exception:
                if not quiet:
                    raise
                logger.exception("Closing operator %s failed", op_info.name)


def _describe_failure(e: BaseException, task_name: str) -> str:
    return f"Task {task_name} failed:\n{format_failure(e)}"
