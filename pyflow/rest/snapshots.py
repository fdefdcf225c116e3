"""Consistent snapshots of a JobMaster and of the ResourceManager, taken on their main threads.

The REST server's threads never read an endpoint's mutable state directly: each snapshot is
collected by a function that ``call`` runs on the endpoint's own thread, and comes back as plain
data (copies) that the HTTP thread may format at leisure.

One exception, by necessity: once a job has ended, the Dispatcher closes its JobMaster's endpoint
(there is no main thread left to ask). Its state no longer changes then, so the snapshot is
collected directly, after the job's result future completed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


#: how long a REST request waits for an endpoint's main thread
CALL_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ExecutionSnapshot:
    vertex_id: str
    subtask_index: int
    task_name: str
    execution_id: str
    state: str
    state_timestamps: dict[str, float]
    resource_id: str | None
    host: str | None
    data_port: int | None
    metrics: dict[str, Any]
    error: str
    failure_type: str
    #: index of the TaskManager slot the subtask runs in (-1 before it has one)
    slot_index: int = -1


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    job_id: str
    name: str
    state: str
    batch: bool
    start_time: float
    end_time: float | None
    status_timestamps: dict[str, float]
    failure_cause: str | None
    executions: list[ExecutionSnapshot]
    #: failed executions, in the order their failures arrived
    failures: list[ExecutionSnapshot] = field(default_factory=list)


def _slot_index(jm: Any, allocation_id: str) -> int:
    offered = jm.slot_pool.get(allocation_id) if allocation_id else None
    return offered[1] if offered is not None else -1


def snapshot_job(jm: Any) -> JobSnapshot:
    """The JobMaster's state, read on its main thread (or directly once it ended)."""
    def collect() -> JobSnapshot:
        by_id: dict[str, ExecutionSnapshot] = {}
        for evid, e in jm.executions.items():
            loc = e.location
            by_id[e.execution_id] = ExecutionSnapshot(
                vertex_id=evid.vertex_id, subtask_index=evid.subtask_index, task_name=e.vertex.task_name,
                execution_id=e.execution_id, state=e.state.value, state_timestamps=dict(e.state_timestamps),
                resource_id=loc.resource_id if loc else None, host=loc.data_host if loc else None,
                data_port=loc.data_port if loc else None, metrics=dict(e.metrics), error=e.error,
                failure_type=e.failure_type, slot_index=_slot_index(jm, e.allocation_id))
        result = jm.result
        return JobSnapshot(
            job_id=jm.job_id, name=jm.job_graph.job_name, state=jm.status.value, batch=jm.batch,
            start_time=jm.start_time, end_time=result.end_time if result is not None else None,
            status_timestamps=dict(jm.status_timestamps), failure_cause=jm.failure_cause,
            executions=list(by_id.values()), failures=[by_id[e.execution_id] for e in jm.failures])

    return _call(jm, collect)


@dataclass(frozen=True, slots=True)
class TaskManagerSnapshot:
    resource_id: str
    rpc_address: str
    hostname: str
    data_host: str
    data_port: int
    pid: int
    num_slots: int
    free_slots: int
    managed_memory: int
    network_memory: int
    seconds_since_heartbeat: float
    log_file: str
    #: (slot index, allocation id, job id) of the slots in use, from the last heartbeat
    allocated_slots: list[tuple[int, str, str]]


def snapshot_task_managers(rm: Any) -> list[TaskManagerSnapshot]:
    """Every registered TaskManager, read on the ResourceManager's main thread."""
    def collect() -> list[TaskManagerSnapshot]:
        out = []
        now = rm.clock()
        for rid, tm in rm.task_managers.items():
            r = tm.registration
            sm_tm = rm.slot_manager.task_managers.get(rid)
            out.append(TaskManagerSnapshot(
                resource_id=rid, rpc_address=r.rpc_address, hostname=r.hostname, data_host=r.data_host,
                data_port=r.data_port, pid=r.pid, num_slots=r.num_slots,
                free_slots=len(sm_tm.free_slots()) if sm_tm is not None else 0,
                managed_memory=r.managed_memory, network_memory=r.network_memory,
                seconds_since_heartbeat=now - tm.last_heartbeat, log_file=r.log_file,
                allocated_slots=[(s.slot_index, s.allocation_id, s.job_id) for s in tm.slots if s.allocation_id]))
        return out

    return _call(rm, collect)


def _call(endpoint: Any, collect: Any) -> Any:
    """``collect`` on the endpoint's main thread (a JobMaster's state is read directly once its
    job ended and its thread closed); a busy endpoint answers 503 through the server."""
    call = getattr(endpoint, "call_or_ended", endpoint.call)
    return call(collect, timeout=CALL_TIMEOUT_S)
