"""JobMaster: schedules one job, tracks its tasks, fails or finishes it (Flink's JobMaster).

Scheduling: once every slot the job needs (per slot sharing group, its highest parallelism) has
been offered, STREAMING deploys all subtasks at once; BATCH deploys stage by stage - every
exchange between tasks is blocking, and a vertex is deployed when all vertices feeding it have
finished (Flink's batch scheduling over blocking result partitions). A failed task fails the job
(restart strategy "none"): the other tasks are cancelled, slots are released, and the job's
result carries the failed task's Python traceback.

Graceful stop (``stop()``, Flink's stop-with-savepoint ``--drain`` without the savepoint): every
source task is told to end its input as a bounded source ends; the job drains and ends FINISHED.
It always drains: without checkpointing there is no savepoint to resume from, so keeping state
un-flushed (``drain: false``) would only lose it. Savepoints (``trigger_savepoint()``) need
checkpointing, which this release does not have: they fail with a message that says so.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Callable

from pyflow.errors import NotYetSupportedError, ProgramError, PyflowError
from pyflow.graph.execution_graph import ExecutionGraph, ExecutionVertex, ExecutionVertexID, SlotKey, build_execution_graph
from pyflow.graph.job_graph import JobGraph
from pyflow.runtime.deployment import InputChannelDeployment, ResultPartitionDeployment, TaskDeploymentDescriptor
from pyflow.runtime.messages import (
    ExecutionState, JobStatus, SlotOffer, TaskExecutionStateUpdate, TaskManagerLocation,
)
from pyflow.runtime.metrics.job import job_status_metrics
from pyflow.runtime.process_logging import FILE_ONLY
from pyflow.runtime.rpc.endpoint import RpcEndpoint
from pyflow.runtime.rpc.gateways import TaskExecutorGateways

logger = logging.getLogger(__name__)


class JobStateError(ProgramError):
    """The job's state does not allow the request: stopping or taking a savepoint of a job that
    is not RUNNING (or stopping a BATCH job)."""


@dataclass
class Execution:
    vertex: ExecutionVertex
    execution_id: str
    state: ExecutionState = ExecutionState.CREATED
    location: TaskManagerLocation | None = None
    allocation_id: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    #: the exception type of a failure; "NetworkError" marks a consequence of another failure
    failure_type: str = ""
    state_timestamps: dict[str, float] = field(default_factory=dict)


@dataclass
class JobResult:
    """How a job ended (Flink's JobResult / JobExecutionResult)."""

    job_id: str
    job_name: str
    status: JobStatus
    start_time: float
    end_time: float
    error: str | None = None
    #: per operator (by node id): name, numRecordsIn, numRecordsOut, summed over subtasks
    operator_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per job vertex: name, parallelism, numBytesIn/Out, numRecordsIn/Out
    vertex_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: resource ids of the TaskManagers that ran the job's tasks
    task_managers: list[str] = field(default_factory=list)

    @property
    def net_runtime_ms(self) -> int:
        return int((self.end_time - self.start_time) * 1000)


class JobMaster(RpcEndpoint):
    def __init__(self, job_graph: JobGraph, *, resource_manager: Any, rpc_address: str, io: Executor,
                 on_terminal: Callable[[JobResult], None],
                 gateways: TaskExecutorGateways | None = None,
                 clock: Callable[[], float] = time.time):
        super().__init__(f"JobMaster-{job_graph.job_id[:8]}")
        self.job_graph = job_graph
        self.job_id = job_graph.job_id
        self.rm = resource_manager
        self.rpc_address = rpc_address
        self.io = io
        self.on_terminal = on_terminal
        self.gateways = gateways or TaskExecutorGateways()
        self.clock = clock
        self.status = JobStatus.CREATED
        self.status_timestamps: dict[str, float] = {JobStatus.CREATED.value: clock()}
        self.start_time = clock()
        self.graph: ExecutionGraph = build_execution_graph(job_graph)
        self.executions: dict[ExecutionVertexID, Execution] = {
            evid: Execution(v, f"{self.job_id[:8]}-{evid.vertex_id}-{evid.subtask_index}-0")
            for evid, v in self.graph.vertices.items()
        }
        self._by_execution_id = {e.execution_id: e for e in self.executions.values()}
        self.required_slots = len(self.graph.slots)
        self.slot_pool: dict[str, tuple[TaskManagerLocation, int]] = {}
        self.batch = bool(job_graph.settings.get("batch_mode", False))
        self.deployed_vertices: set[str] = set()
        self.failure_cause: str | None = None
        #: failed executions in the order their failures arrived
        self.failures: list[Execution] = []
        #: why a TaskManager of this job was lost, if one was
        self.lost_cause: str | None = None
        self.result: JobResult | None = None
        self.result_future: Future = Future()
        #: Flink's numRestarts: times this job was restarted (the failover of a restart strategy
        #: increments it; with restart-strategy "none" it stays 0)
        self.num_restarts = 0
        #: a graceful stop was asked for: each source execution is told once it runs
        self.stop_requested = False
        self._stopped_executions: set[str] = set()

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.run_async(self._start)

    def _start(self) -> None:
        self._switch(JobStatus.RUNNING)
        logger.info("Job %s (%s) needs %d slots", self.job_graph.job_name, self.job_id, self.required_slots)
        self.rm.request_slots(self, self.required_slots, self.rpc_address)

    def cancel(self) -> None:
        """Start cancelling; returns once the job is CANCELLING (or already ended)."""
        self.call_or_ended(self._cancel)

    def _cancel(self) -> None:
        if self.status.is_globally_terminal or self.status in (JobStatus.CANCELLING, JobStatus.FAILING):
            return
        self._switch(JobStatus.CANCELLING)
        self._cancel_executions()
        self._check_terminal()

    # ---- graceful stop and savepoints ---------------------------------------------------------------

    def stop(self) -> None:
        """Start a graceful stop; ``result_future`` tells how the job ended (FINISHED once drained).
        Idempotent. Raises JobStateError unless the job is RUNNING in STREAMING mode."""
        self.call_or_ended(self._stop)

    def _stop(self) -> None:
        self._require_running("be stopped")
        if self.batch:
            raise JobStateError(
                f"Job {self.job_id} runs in BATCH mode: its sources are bounded and it finishes by itself; "
                f"stop applies to STREAMING jobs. To end it now, cancel it (PATCH /jobs/{self.job_id})")
        if self.stop_requested:
            return
        # Always drains (Flink's --drain): with no savepoint to resume from, state held back
        # un-flushed would be lost; ending the input fires every window and timer instead.
        self.stop_requested = True
        logger.info("Stopping job %s (%s): its sources end their input; the job drains and finishes",
                    self.job_graph.job_name, self.job_id)
        for e in self.executions.values():
            self._stop_source_if_running(e)

    def _stop_source_if_running(self, e: Execution) -> None:
        """Tell a source execution to stop once its task exists on its TaskManager (it reported
        INITIALIZING or RUNNING); executions still deploying are told when they report."""
        if (self.stop_requested and self.status is JobStatus.RUNNING and e.vertex.job_vertex.is_source
                and e.state in (ExecutionState.INITIALIZING, ExecutionState.RUNNING)
                and e.location is not None and e.execution_id not in self._stopped_executions):
            self._stopped_executions.add(e.execution_id)
            self.io.submit(self._stop_execution, self._gateway(e.location), e.execution_id)

    def _stop_execution(self, gateway: Any, execution_id: str) -> None:
        try:
            gateway.stop_task(execution_id)
        except PyflowError as e:
            # a TaskManager that cannot be reached is lost: its heartbeats end the job
            logger.warning("Stopping task %s of job %s failed: %s", execution_id, self.job_id, e)

    def trigger_savepoint(self, target_directory: str | None, cancel_job: bool) -> Future:
        """Flink's savepoint trigger. The returned future fails: savepoints need checkpointing,
        which this release does not have; the job keeps running (and is not cancelled, since
        ``cancel_job`` cancels only after a savepoint succeeded). Raises JobStateError unless the
        job is RUNNING."""
        return self.call_or_ended(self._trigger_savepoint, target_directory, cancel_job)

    def _trigger_savepoint(self, target_directory: str | None, cancel_job: bool) -> Future:
        self._require_running("take a savepoint")
        logger.info("Savepoint of job %s (%s) requested (target %s); this release has no checkpointing",
                    self.job_graph.job_name, self.job_id, target_directory)
        future: Future = Future()
        future.set_exception(NotYetSupportedError(
            f"Savepoints need checkpointing (checkpoint barriers and state snapshots), which this release of "
            f"pyflow does not have; no savepoint was taken and job {self.job_id} keeps running"
            f"{' (it was not cancelled either: cancel-job cancels only after a savepoint)' if cancel_job else ''}. "
            f"To end the job gracefully without a savepoint, stop it: `pyflow stop {self.job_id}` or "
            f"POST /jobs/{self.job_id}/stop (its sources end, everything in flight is processed, and it finishes)."))
        return future

    def _require_running(self, what: str) -> None:
        if self.status is JobStatus.RUNNING:
            return
        if self.status.is_globally_terminal:
            raise JobStateError(f"Job {self.job_id} cannot {what}: it already reached the terminal state "
                                f"{self.status.value}")
        raise JobStateError(f"Job {self.job_id} cannot {what}: it is {self.status.value}, not RUNNING"
                            + ("; try again once it runs" if self.status is JobStatus.CREATED else ""))

    def call_or_ended(self, fn: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        """``fn`` on the main thread; once the job ended that thread is closed, but the state is
        final, so ``fn`` reads it directly (and refuses what needs a running job). RpcTimeout when
        the main thread does not answer within ``timeout`` seconds."""
        try:
            return self.call(fn, *args, timeout=timeout)
        except RuntimeError:
            if not self.result_future.done():
                raise
            return fn(*args)

    # ---- slots -------------------------------------------------------------------------------------

    def offer_slots(self, location: TaskManagerLocation, offers: list[SlotOffer]) -> list[str]:
        return self.call(self._offer_slots, location, offers)

    def _offer_slots(self, location: TaskManagerLocation, offers: list[SlotOffer]) -> list[str]:
        if self.status is not JobStatus.RUNNING or len(self.slot_pool) >= self.required_slots:
            return []
        accepted = []
        for offer in offers:
            if len(self.slot_pool) < self.required_slots:
                self.slot_pool[offer.allocation_id] = (location, offer.slot_index)
                accepted.append(offer.allocation_id)
        if len(self.slot_pool) == self.required_slots:
            self._deploy()
        return accepted

    def notify_slot_request_failed(self, reason: str) -> None:
        self.run_async(self._fail, reason)

    def notify_task_manager_lost(self, resource_id: str, reason: str) -> None:
        self.run_async(self._task_manager_lost, resource_id, reason)

    def _task_manager_lost(self, resource_id: str, reason: str) -> None:
        """The tasks of a lost TaskManager will never report again: they end here, FAILED, and
        the job fails (if it has not already)."""
        if self.status.is_globally_terminal:
            return
        for e in self.executions.values():
            if e.location is not None and e.location.resource_id == resource_id and not e.state.is_terminal:
                self._set_state(e, ExecutionState.FAILED)
        if self.lost_cause is None:
            self.lost_cause = reason
        self._fail(reason)
        self._check_terminal()

    # ---- deployment --------------------------------------------------------------------------------

    def _deploy(self) -> None:
        allocations = sorted(self.slot_pool.items(), key=lambda kv: (kv[1][0].resource_id, kv[1][1]))
        slot_to_allocation: dict[SlotKey, tuple[str, TaskManagerLocation]] = {}
        for slot_key, (allocation_id, (location, _)) in zip(self.graph.slots, allocations):
            slot_to_allocation[slot_key] = (allocation_id, location)
        for execution in self.executions.values():
            allocation_id, location = slot_to_allocation[execution.vertex.slot]
            execution.allocation_id = allocation_id
            execution.location = location
        self._deploy_ready_vertices()

    def _deploy_ready_vertices(self) -> None:
        """STREAMING: every vertex now. BATCH: each vertex whose producers all finished."""
        finished = {v for v in self.job_graph.vertices
                    if all(e.state is ExecutionState.FINISHED for e in self.executions.values()
                           if e.vertex.job_vertex.id == v)}
        for vertex_id, jv in self.job_graph.vertices.items():
            if vertex_id in self.deployed_vertices:
                continue
            if self.batch and not all(edge.source_vertex in finished for edge in jv.inputs):
                continue
            self.deployed_vertices.add(vertex_id)
            for execution in self.executions.values():
                if execution.vertex.job_vertex.id != vertex_id:
                    continue
                tdd = self._deployment_descriptor(execution)
                self._set_state(execution, ExecutionState.DEPLOYING)
                self.io.submit(self._submit, self._gateway(execution.location), tdd, execution.execution_id)

    def _submit(self, gateway: Any, tdd: TaskDeploymentDescriptor, execution_id: str) -> None:
        try:
            gateway.submit_task(tdd)
        except Exception as e:  # noqa: BLE001 - any failure to deploy fails the job, visibly
            logger.exception("Deploying task %s failed", tdd.task_name)
            self.run_async(self._fail, f"Deploying task {tdd.task_name} failed: {type(e).__name__}: {e}")

    def _gateway(self, location: TaskManagerLocation) -> Any:
        return self.gateways.get(location.rpc_address, location.resource_id)

    def _deployment_descriptor(self, execution: Execution) -> TaskDeploymentDescriptor:
        v = execution.vertex
        jv = v.job_vertex
        outputs = []
        for p in v.partitions:
            edge = self.job_graph.edges[p.edge_id]
            target = self.job_graph.vertices[edge.target_vertex]
            outputs.append(ResultPartitionDeployment(
                partition_id=p.partition_id, edge_id=p.edge_id, source_node=edge.source_node,
                num_subpartitions=len(p.consumers), partitioner=edge.partitioner,
                max_parallelism=target.max_parallelism, side_tag=edge.side_tag, blocking=self.batch))
        inputs = []
        for c in v.inputs:
            producer = self.executions[c.producer]
            assert producer.location is not None
            inputs.append(InputChannelDeployment(
                partition_id=c.partition_id, subpartition_index=c.subpartition_index,
                host=producer.location.data_host, port=producer.location.data_port,
                input_index=c.input_index, producer_task=producer.vertex.task_name,
                producer_resource_id=producer.location.resource_id))
        return TaskDeploymentDescriptor(
            job_id=self.job_id, job_name=self.job_graph.job_name, execution_id=execution.execution_id,
            allocation_id=execution.allocation_id, vertex_id=jv.id, task_name=v.task_name,
            subtask_index=v.id.subtask_index, parallelism=jv.parallelism,
            max_parallelism=jv.max_parallelism, attempt_number=0, operators=tuple(jv.operators),
            serialized_operators=jv.serialized_operators, is_source=jv.is_source,
            outputs=tuple(outputs), inputs=tuple(inputs), settings=dict(self.job_graph.settings))

    # ---- task states -------------------------------------------------------------------------------

    def update_task_execution_state(self, update: TaskExecutionStateUpdate) -> None:
        self.call(self._update, update)

    def _update(self, update: TaskExecutionStateUpdate) -> None:
        execution = self._by_execution_id.get(update.execution_id)
        if execution is None:
            return
        if update.metrics:
            execution.metrics = update.metrics
        if execution.state.is_terminal:
            return
        if execution.state is ExecutionState.CANCELING and not update.state.is_terminal:
            # the cancel went out on another I/O thread than the deployment and may have reached
            # the TaskManager first (which ignores a cancel for a task it does not know): the task
            # stays CANCELING here and is cancelled again now that it exists there
            self.io.submit(self._cancel_execution, self._gateway(execution.location), execution.execution_id)
            return
        self._set_state(execution, update.state)
        if update.state is ExecutionState.FAILED:
            execution.error = update.error or f"Task {execution.vertex.task_name} failed"
            execution.failure_type = update.metrics.get("failureType", "")
            self.failures.append(execution)
            self._fail(execution.error)
        elif update.state is ExecutionState.FINISHED and self.batch and self.status is JobStatus.RUNNING:
            self._deploy_ready_vertices()
        else:
            self._stop_source_if_running(execution)
        self._check_terminal()

    def update_live_metrics(self, task_metrics: dict[str, dict[str, Any]]) -> None:
        """Metrics from TaskManager heartbeats, for progress while the job runs."""
        def apply() -> None:
            for eid, m in task_metrics.items():
                execution = self._by_execution_id.get(eid)
                if execution is not None and not execution.state.is_terminal:
                    execution.metrics = m

        self.run_async(apply)

    def _set_state(self, execution: Execution, state: ExecutionState) -> None:
        execution.state = state
        execution.state_timestamps[state.value] = self.clock()

    def _fail(self, cause: str) -> None:
        if self.status.is_globally_terminal or self.status in (JobStatus.FAILING, JobStatus.CANCELLING):
            return  # a task failing while the job is cancelled (its input was cancelled) ends CANCELED
        logger.error("Job %s (%s) failed: %s", self.job_graph.job_name, self.job_id, cause, extra=FILE_ONLY)
        self.failure_cause = cause
        self._switch(JobStatus.FAILING)
        self._cancel_executions()
        self._check_terminal()
        # tasks that cannot answer any more (their TaskManager died) must not hold the job forever
        self.schedule(10.0, self._force_terminal)

    def _cancel_executions(self) -> None:
        for e in self.executions.values():
            if e.state.is_terminal:
                continue
            if e.state in (ExecutionState.CREATED, ExecutionState.SCHEDULED) or e.location is None:
                self._set_state(e, ExecutionState.CANCELED)
                continue
            self._set_state(e, ExecutionState.CANCELING)
            self.io.submit(self._cancel_execution, self._gateway(e.location), e.execution_id)

    def _cancel_execution(self, gateway: Any, execution_id: str) -> None:
        try:
            gateway.cancel_task(execution_id)
        except PyflowError as e:
            # its TaskManager cannot be reached, so the task can never report: it is lost
            logger.info("Cancelling %s failed (%s); counting the task as lost", execution_id, e)
            self.run_async(self._execution_lost, execution_id)

    def _execution_lost(self, execution_id: str) -> None:
        e = self._by_execution_id[execution_id]
        if not e.state.is_terminal:
            self._set_state(e, ExecutionState.FAILED)
            self._check_terminal()

    def _force_terminal(self) -> None:
        if self.status.is_globally_terminal:
            return
        for e in self.executions.values():
            if not e.state.is_terminal:
                self._set_state(e, ExecutionState.CANCELED)
        self._check_terminal()

    def _check_terminal(self) -> None:
        if self.status.is_globally_terminal:
            return  # ended already; late reports change nothing
        states = [e.state for e in self.executions.values()]
        if not all(s.is_terminal for s in states):
            return
        if self.status is JobStatus.FAILING:
            self._end(JobStatus.FAILED)
        elif self.status is JobStatus.CANCELLING:
            self._end(JobStatus.CANCELED)
        elif all(s is ExecutionState.FINISHED for s in states):
            self._end(JobStatus.FINISHED)
        elif any(s is ExecutionState.CANCELED for s in states):
            self._end(JobStatus.CANCELED)

    def _root_cause(self) -> str | None:
        """The failure that caused the others. A task whose input channel broke (NetworkError)
        failed because its producer failed or was cancelled first; when both reports are in, the
        producer's failure is the cause the user must see."""
        consequences = [e.error for e in self.failures if e.failure_type == "NetworkError"]
        primary = [e for e in self.failures if e.failure_type != "NetworkError"]
        if self.failure_cause in consequences:
            if primary:
                return primary[0].error
            if self.lost_cause is not None:  # a TaskManager died: that broke the channels
                return self.lost_cause
        return self.failure_cause

    def _end(self, status: JobStatus) -> None:
        if status is JobStatus.FAILED:
            self.failure_cause = self._root_cause()
        self._switch(status)
        self.rm.release_slots(self.job_id)
        self.result = JobResult(
            job_id=self.job_id, job_name=self.job_graph.job_name, status=status,
            start_time=self.start_time, end_time=self.clock(),
            error=self.failure_cause if status is JobStatus.FAILED else None,
            operator_metrics=self.operator_metrics(), vertex_metrics=self.vertex_metrics(),
            task_managers=sorted({e.location.resource_id for e in self.executions.values() if e.location}))
        logger.info("Job %s (%s) ended %s after %d ms", self.job_graph.job_name, self.job_id, status.value,
                    self.result.net_runtime_ms)
        self.result_future.set_result(self.result)
        self.on_terminal(self.result)

    def _switch(self, status: JobStatus) -> None:
        logger.info("Job %s (%s) switched from %s to %s", self.job_graph.job_name, self.job_id,
                    self.status.value, status.value)
        self.status = status
        self.status_timestamps[status.value] = self.clock()

    # ---- metrics -----------------------------------------------------------------------------------

    def operator_metrics(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for e in self.executions.values():
            for node_id, m in e.metrics.get("operators", {}).items():
                agg = out.setdefault(node_id, {"name": m.get("name", node_id), "numRecordsIn": 0, "numRecordsOut": 0})
                agg["numRecordsIn"] += m.get("numRecordsIn", 0)
                agg["numRecordsOut"] += m.get("numRecordsOut", 0)
                if m.get("numLateRecordsDropped"):
                    agg["numLateRecordsDropped"] = agg.get("numLateRecordsDropped", 0) + m["numLateRecordsDropped"]
        return out

    def vertex_metrics(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for e in self.executions.values():
            jv = e.vertex.job_vertex
            agg = out.setdefault(jv.id, {"name": jv.name, "parallelism": jv.parallelism, "numBytesIn": 0,
                                         "numBytesOut": 0, "numRecordsIn": 0, "numRecordsOut": 0,
                                         "backPressuredTimeMs": 0, "spilledBytes": 0})
            for k in ("numBytesIn", "numBytesOut", "numRecordsIn", "numRecordsOut", "backPressuredTimeMs",
                      "spilledBytes"):
                agg[k] += e.metrics.get(k, 0)
        return out

    def job_metrics(self) -> dict[str, int]:
        """The job's metrics with Flink's names (uptime, downtime, numRestarts, checkpoints)."""
        def collect() -> dict[str, int]:
            return job_status_metrics(self.status.value, self.status_timestamps, now_s=self.clock(),
                                      num_restarts=self.num_restarts)

        return self.call_or_ended(collect)

    def details(self) -> dict[str, Any]:
        """A snapshot of the job for clients (status, per-vertex tasks and metrics)."""
        def collect() -> dict[str, Any]:
            return {
                "jid": self.job_id, "name": self.job_graph.job_name, "state": self.status.value,
                "start-time": int(self.start_time * 1000), "timestamps": dict(self.status_timestamps),
                "vertices": self.vertex_metrics(),
                "tasks": {e.execution_id: {"task": e.vertex.task_name, "state": e.state.value,
                                           "taskmanager": e.location.resource_id if e.location else None}
                          for e in self.executions.values()},
                "failure": self.failure_cause,
            }

        return self.call_or_ended(collect)


def new_job_id() -> str:
    return uuid.uuid4().hex
