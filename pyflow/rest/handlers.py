"""The REST endpoints: Flink's paths and JSON shapes over the Dispatcher and ResourceManager.

``RestHandlers(dispatcher=..., resource_manager=..., conf=..., shutdown=...)`` owns nothing; it
reads through the endpoints' thread-safe query methods and the snapshots of
:mod:`pyflow.rest.snapshots`, and formats what it read. ``routes()`` is the route table the server
serves (and :mod:`pyflow.rest.openapi` documents).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Callable

import psutil

from pyflow.config import Configuration, options
from pyflow.rest.errors import BadRequest, NotFound, RestError
from pyflow.rest.router import Request, Route
from pyflow.rest.snapshots import ExecutionSnapshot, JobSnapshot, snapshot_job, snapshot_task_managers
from pyflow.runtime.messages import ExecutionState, JobStatus
from pyflow.runtime.metrics.names import TASK_METRICS

#: metrics of a subtask that /subtasks/metrics aggregates: every task metric (see pyflow.runtime.metrics)
SUBTASK_METRICS = tuple(TASK_METRICS)
AGGREGATIONS = ("min", "max", "avg", "sum", "skew")


def _ms(seconds: float | None) -> int:
    return int(seconds * 1000) if seconds is not None else -1


def _version() -> str:
    from pyflow import __version__

    return f"pyflow {__version__}"


class RestHandlers:
    def __init__(self, *, dispatcher: Any, resource_manager: Any, conf: Configuration,
                 shutdown: Callable[[], None], clock: Callable[[], float] = time.time):
        self.dispatcher = dispatcher
        self.rm = resource_manager
        self.conf = conf
        self.shutdown = shutdown
        self.clock = clock

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/config", self.dashboard_config, "Configuration of the web dashboard"),
            Route("GET", "/overview", self.cluster_overview, "Overview of the cluster"),
            Route("DELETE", "/cluster", self.shutdown_cluster, "Shut the cluster down"),
            Route("GET", "/jobs", self.jobs, "Ids and states of all jobs"),
            Route("GET", "/jobs/overview", self.jobs_overview, "Overview of all jobs"),
            Route("GET", "/jobs/:jobid", self.job_details, "Details of a job"),
            Route("PATCH", "/jobs/:jobid", self.cancel_job, "Cancel a job", status=202),
            Route("GET", "/jobs/:jobid/plan", self.job_plan, "Dataflow plan of a job"),
            Route("GET", "/jobs/:jobid/exceptions", self.job_exceptions, "Exceptions of a job"),
            Route("GET", "/jobs/:jobid/config", self.job_config, "Configuration of a job"),
            Route("GET", "/jobs/:jobid/vertices/:vertexid", self.vertex_details, "Subtasks of a job vertex"),
            Route("GET", "/jobs/:jobid/vertices/:vertexid/subtasks/metrics", self.subtask_metrics,
                  "Metrics of a job vertex, aggregated over its subtasks"),
            Route("GET", "/taskmanagers", self.task_managers, "Overview of all TaskManagers"),
            Route("GET", "/taskmanagers/:taskmanagerid", self.task_manager_details, "Details of a TaskManager"),
            Route("GET", "/jobmanager/config", self.jobmanager_config, "Configuration of the cluster"),
        ]

    # ---- cluster ---------------------------------------------------------------------------------

    def dashboard_config(self, request: Request) -> dict[str, Any]:
        offset = -(time.altzone if time.daylight and time.localtime().tm_isdst else time.timezone)
        return {"refresh-interval": 3000, "timezone-name": time.tzname[time.localtime().tm_isdst > 0],
                "timezone-offset": offset * 1000, "flink-version": _version(), "flink-revision": "",
                "features": {"web-submit": False, "web-cancel": True, "web-rescale": False,
                             "web-history": False}}

    def cluster_overview(self, request: Request) -> dict[str, Any]:
        rm = self.rm.overview()
        states = [j["status"] for j in self.dispatcher.list_jobs()]
        return {"taskmanagers": rm["taskmanagers"], "slots-total": rm["slots-total"],
                "slots-available": rm["slots-available"],
                "jobs-running": sum(not JobStatus(s).is_globally_terminal for s in states),
                "jobs-finished": states.count(JobStatus.FINISHED.value),
                "jobs-cancelled": states.count(JobStatus.CANCELED.value),
                "jobs-failed": states.count(JobStatus.FAILED.value),
                "flink-version": _version(), "flink-commit": ""}

    def shutdown_cluster(self, request: Request) -> dict[str, Any]:
        # answer first: the server that sends this answer is one of the things shut down
        threading.Thread(target=self._shutdown_later, name="rest-shutdown", daemon=True).start()
        return {}

    def _shutdown_later(self) -> None:
        time.sleep(0.1)
        self.shutdown()

    def jobmanager_config(self, request: Request) -> list[dict[str, str]]:
        return [{"key": k, "value": v} for k, v in sorted(self.conf.to_dict().items())]

    # ---- jobs ------------------------------------------------------------------------------------

    def jobs(self, request: Request) -> dict[str, Any]:
        return {"jobs": [{"id": j["id"], "status": j["status"]} for j in self.dispatcher.list_jobs()]}

    def jobs_overview(self, request: Request) -> dict[str, Any]:
        out = []
        for j in self.dispatcher.list_jobs():
            jm = self.dispatcher.job_master_for(j["id"])
            if jm is None:
                continue
            job = snapshot_job(jm)
            counts = self._state_counts(job.executions)
            end, duration = self._end_and_duration(job)
            out.append({"jid": job.job_id, "name": job.name, "state": job.state,
                        "start-time": _ms(job.start_time), "end-time": end, "duration": duration,
                        "last-modification": _ms(max(job.status_timestamps.values())),
                        "tasks": {**{s.lower(): n for s, n in counts.items()}, "reconciling": 0,
                                  "total": len(job.executions)}})
        return {"jobs": out}

    def job_details(self, request: Request) -> dict[str, Any]:
        jm, job = self._job(request)
        end, duration = self._end_and_duration(job)
        now = self.clock()
        vertices = []
        for vid, jv in jm.job_graph.vertices.items():
            subtasks = [e for e in job.executions if e.vertex_id == vid]
            counts = self._state_counts(subtasks)
            starts = [e.state_timestamps[s] for e in subtasks for s in ("DEPLOYING",) if s in e.state_timestamps]
            start = min(starts) if starts else None
            status = self._vertex_status(counts, len(subtasks))
            ends = [max(e.state_timestamps.values(), default=0.0) for e in subtasks]
            v_end = max(ends) if status in ("FINISHED", "CANCELED", "FAILED") and ends else None
            vertices.append({
                "id": vid, "name": jv.name, "maxParallelism": jv.max_parallelism, "parallelism": jv.parallelism,
                "status": status, "start-time": _ms(start), "end-time": _ms(v_end),
                "duration": _ms((v_end or now) - start) if start is not None else -1,
                "tasks": counts, "metrics": self._vertex_io_metrics(subtasks)})
        return {
            "jid": job.job_id, "name": job.name, "isStoppable": not job.batch, "state": job.state,
            "job-type": "BATCH" if job.batch else "STREAMING",
            "start-time": _ms(job.start_time), "end-time": end, "duration": duration,
            "maxParallelism": max((v.max_parallelism for v in jm.job_graph.vertices.values()), default=-1),
            "now": _ms(now),
            "timestamps": {s.value: _ms(job.status_timestamps[s.value]) if s.value in job.status_timestamps else 0
                           for s in JobStatus},
            "vertices": vertices,
            "status-counts": self._state_counts(job.executions),
            "plan": self._plan(jm),
        }

    def job_plan(self, request: Request) -> dict[str, Any]:
        jm = self._job_master(request)
        return {"plan": self._plan(jm)}

    def job_exceptions(self, request: Request) -> dict[str, Any]:
        jm, job = self._job(request)
        failed_at = job.status_timestamps.get(JobStatus.FAILING.value)
        entries = []
        for e in job.failures:
            ts = e.state_timestamps.get(ExecutionState.FAILED.value, failed_at)
            entries.append({"exceptionName": e.failure_type or _exception_name(e.error), "stacktrace": e.error,
                            "timestamp": _ms(ts), "taskName": e.task_name, "location": _location(e),
                            "endpoint": _location(e), "taskManagerId": e.resource_id, "failureLabels": {},
                            "concurrentExceptions": []})
        root = job.failure_cause
        if root is not None and not any(x["stacktrace"] == root for x in entries):
            # the job failed for a reason outside its tasks (slots, a lost TaskManager)
            entries.insert(0, {"exceptionName": _exception_name(root), "stacktrace": root,
                               "timestamp": _ms(failed_at), "taskName": None, "location": None, "endpoint": None,
                               "taskManagerId": None, "failureLabels": {}, "concurrentExceptions": []})
        # the root cause first, the failures it caused after it
        entries.sort(key=lambda x: x["stacktrace"] != root)
        return {
            "root-exception": root, "timestamp": _ms(failed_at) if root is not None else None,
            "all-exceptions": [{"exception": x["stacktrace"], "task": x["taskName"], "location": x["location"],
                                "timestamp": x["timestamp"], "taskManagerId": x["taskManagerId"]}
                               for x in entries],
            "truncated": False,
            "exceptionHistory": {"entries": entries, "truncated": False},
        }

    def job_config(self, request: Request) -> dict[str, Any]:
        jm = self._job_master(request)
        graph = jm.job_graph
        job_conf = Configuration(graph.config)
        return {"jid": graph.job_id, "name": graph.job_name, "execution-config": {
            "execution-mode": "BATCH" if graph.settings.get("batch_mode") else "STREAMING",
            "restart-strategy": "none", "job-parallelism": job_conf.get(options.PARALLELISM),
            "object-reuse-mode": False, "user-config": dict(graph.config)}}

    def cancel_job(self, request: Request) -> dict[str, Any]:
        mode = request.query_value("mode")
        if mode not in (None, "cancel"):
            raise BadRequest(f"Unknown mode '{mode}'; PATCH /jobs/:jobid supports mode=cancel only "
                             "(to stop a job gracefully, POST /jobs/:jobid/stop)")
        request.json()  # Flink's cancel takes no body; a body that is not JSON is a malformed request
        jm = self._job_master(request)
        status = jm.status
        if status.is_globally_terminal and status is not JobStatus.CANCELED:
            raise RestError(f"Job {jm.job_id} cannot be cancelled: it already reached the terminal state "
                            f"{status.value}", status=409)
        self.dispatcher.cancel_job(jm.job_id)
        return {}

    # ---- vertices --------------------------------------------------------------------------------

    def vertex_details(self, request: Request) -> dict[str, Any]:
        jm, job = self._job(request)
        jv, subtasks = self._vertex(jm, job, request)
        now = self.clock()
        out = []
        for e in sorted(subtasks, key=lambda e: e.subtask_index):
            start = e.state_timestamps.get(ExecutionState.DEPLOYING.value)
            end = max(e.state_timestamps.values(), default=None) if ExecutionState(e.state).is_terminal else None
            out.append({"subtask": e.subtask_index, "status": e.state, "attempt": 0, "host": e.host,
                        "endpoint": _location(e), "taskmanager-id": e.resource_id, "slot-index": e.slot_index,
                        "start-time": _ms(start), "start_time": _ms(start), "end-time": _ms(end),
                        "duration": _ms((end or now) - start) if start is not None else -1,
                        "metrics": self._vertex_io_metrics([e])})
        return {"id": jv.id, "name": jv.name, "parallelism": jv.parallelism,
                "maxParallelism": jv.max_parallelism, "now": _ms(now), "subtasks": out}

    def subtask_metrics(self, request: Request) -> list[dict[str, Any]]:
        jm, job = self._job(request)
        _, subtasks = self._vertex(jm, job, request)
        wanted_subtasks = request.query_list("subtasks")
        if wanted_subtasks is not None:
            try:
                indices = {int(i) for i in wanted_subtasks}
            except ValueError:
                raise BadRequest(f"Query parameter 'subtasks' must be comma-separated subtask indices, "
                                 f"not {','.join(wanted_subtasks)!r}") from None
            subtasks = [e for e in subtasks if e.subtask_index in indices]
        names = request.query_list("get")
        if names is None:
            return [{"id": name} for name in SUBTASK_METRICS]
        aggs = request.query_list("agg") or list(AGGREGATIONS)
        unknown = [a for a in aggs if a not in AGGREGATIONS]
        if unknown:
            raise BadRequest(f"Unknown aggregation {', '.join(unknown)}; choose from {', '.join(AGGREGATIONS)}")
        out = []
        for name in names:
            values = [float(e.metrics[name]) for e in subtasks if isinstance(e.metrics.get(name), (int, float))]
            if not values:
                continue  # like Flink, a metric nobody reports is left out
            avg = sum(values) / len(values)
            stats = {"min": min(values), "max": max(values), "avg": avg, "sum": sum(values),
                     "skew": (max(values) - avg) / avg * 100 if avg else 0.0}
            out.append({"id": name, **{a: stats[a] for a in aggs}})
        return out

    # ---- taskmanagers ----------------------------------------------------------------------------

    def task_managers(self, request: Request) -> dict[str, Any]:
        return {"taskmanagers": [self._task_manager_info(tm) for tm in snapshot_task_managers(self.rm)]}

    def task_manager_details(self, request: Request) -> dict[str, Any]:
        tmid = request.params["taskmanagerid"]
        for tm in snapshot_task_managers(self.rm):
            if tm.resource_id == tmid:
                return {**self._task_manager_info(tm),
                        "allocatedSlots": [{"index": i, "allocationId": a, "jobId": j}
                                           for i, a, j in tm.allocated_slots]}
        raise NotFound(f"TaskManager {tmid} is not registered with this cluster; GET /taskmanagers lists them")

    def _task_manager_info(self, tm: Any) -> dict[str, Any]:
        local = tm.hostname == socket.gethostname()
        memory = psutil.virtual_memory() if local else None
        return {"id": tm.resource_id, "path": tm.rpc_address, "dataPort": tm.data_port, "jmxPort": -1,
                "timeSinceLastHeartbeat": int(tm.seconds_since_heartbeat * 1000),
                "slotsNumber": tm.num_slots, "freeSlots": tm.free_slots, "pid": tm.pid, "host": tm.hostname,
                "hardware": {"cpuCores": os.cpu_count() if local else -1,
                             "physicalMemory": memory.total if memory else -1,
                             "freeMemory": memory.available if memory else -1,
                             "managedMemory": tm.managed_memory},
                "memoryConfiguration": {"managedMemory": tm.managed_memory,
                                        "networkMemory": tm.network_memory}}

    # ---- helpers ---------------------------------------------------------------------------------

    def _job_master(self, request: Request) -> Any:
        jid = request.params["jobid"]
        jm = self.dispatcher.job_master_for(jid)
        if jm is None:
            raise NotFound(f"Job {jid} not found on this cluster; GET /jobs lists the jobs")
        return jm

    def _job(self, request: Request) -> tuple[Any, JobSnapshot]:
        jm = self._job_master(request)
        return jm, snapshot_job(jm)

    def _vertex(self, jm: Any, job: JobSnapshot, request: Request) -> tuple[Any, list[ExecutionSnapshot]]:
        vid = request.params["vertexid"]
        jv = jm.job_graph.vertices.get(vid)
        if jv is None:
            raise NotFound(f"Vertex {vid} is not part of job {job.job_id}; GET /jobs/{job.job_id} lists its "
                           "vertices")
        return jv, [e for e in job.executions if e.vertex_id == vid]

    def _end_and_duration(self, job: JobSnapshot) -> tuple[int, int]:
        if job.end_time is not None:
            return _ms(job.end_time), _ms(job.end_time - job.start_time)
        return -1, _ms(self.clock() - job.start_time)

    @staticmethod
    def _state_counts(executions: list[ExecutionSnapshot]) -> dict[str, int]:
        counts = {s.value: 0 for s in ExecutionState}
        for e in executions:
            counts[e.state] += 1
        return counts

    @staticmethod
    def _vertex_status(counts: dict[str, int], total: int) -> str:
        """Flink's aggregate state of a job vertex over its subtasks."""
        for state in ("FAILED", "CANCELING", "CANCELED", "INITIALIZING", "RUNNING"):
            if counts[state]:
                return state
        if total and counts["FINISHED"] == total:
            return "FINISHED"
        if counts["FINISHED"]:
            return "RUNNING"
        for state in ("DEPLOYING", "SCHEDULED"):
            if counts[state]:
                return state
        return "CREATED"

    @staticmethod
    def _vertex_io_metrics(subtasks: list[ExecutionSnapshot]) -> dict[str, Any]:
        complete = all(e.metrics for e in subtasks)

        def total(key: str) -> int:
            return int(sum(e.metrics.get(key, 0) for e in subtasks))

        return {"read-bytes": total("numBytesIn"), "read-bytes-complete": complete,
                "write-bytes": total("numBytesOut"), "write-bytes-complete": complete,
                "read-records": total("numRecordsIn"), "read-records-complete": complete,
                "write-records": total("numRecordsOut"), "write-records-complete": complete,
                "accumulated-backpressured-time": total("backPressuredTimeMs"),
                "accumulated-idle-time": total("idleTimeMs"), "accumulated-busy-time": total("busyTimeMs")}

    @staticmethod
    def _plan(jm: Any) -> dict[str, Any]:
        graph = jm.job_graph
        plan = dict(graph.plan.get("jobGraph") or graph.to_plan())
        plan["type"] = "BATCH" if graph.settings.get("batch_mode") else "STREAMING"
        plan["nodes"] = [{**n, "operator": "", "operator_strategy": "", "optimizer_properties": {}}
                         for n in plan.get("nodes", [])]
        return plan


def _location(e: ExecutionSnapshot) -> str | None:
    return f"{e.host}:{e.data_port}" if e.host is not None else None


def _exception_name(text: str) -> str:
    """The exception class named on the last line of a traceback (``ValueError: bad``)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    name = last.split(":", 1)[0].strip()
    return name if name and " " not in name else "Exception"
