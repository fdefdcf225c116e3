"""REST endpoints for metrics, backpressure and checkpoints: Flink's paths and JSON shapes.

* ``GET /jobmanager/metrics``, ``/taskmanagers/:taskmanagerid/metrics``, ``/jobs/:jobid/metrics``
  and ``/jobs/:jobid/vertices/:vertexid/metrics``: Flink's metric queries. Without ``get``, the
  available metrics (``[{"id": name}]``); with ``?get=a,b``, their values as strings
  (``[{"id": "a", "value": "12"}]``; unknown names are left out). A vertex's metric ids are
  per subtask, ``<subtask>.<metric>`` and ``<subtask>.<operator>.<metric>`` (the operator's name
  with space, ``.``, ``:`` and ``,`` as ``_``), as Flink names them.
* ``GET /jobs/:jobid/vertices/:vertexid/backpressure``: Flink 1.13+'s backpressure from the
  tasks' ``backPressuredTimeMsPerSecond`` (ratio = ms per second / 1000; level ok <= 0.10 < low
  <= 0.5 < high), with each subtask's idle and busy ratios.
* ``GET /jobs/:jobid/checkpoints`` (Flink's counts, summary, latest and history: the true values
  of a job without checkpoints, since this release has no checkpointing) and
  ``GET /jobs/:jobid/checkpoints/config`` (404, as Flink answers for a job without checkpointing).

Task metrics come from the TaskManagers' heartbeats (kept by each job's JobMaster); a
TaskManager's own metrics are asked from it over RPC; the JobManager's are read here.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from pyflow.errors import RpcError
from pyflow.rest.errors import NotFound, ServiceUnavailable
from pyflow.rest.logs import task_manager_gateway
from pyflow.rest.router import Request, Route
from pyflow.rest.snapshots import ExecutionSnapshot, snapshot_job
from pyflow.runtime.metrics.names import OPERATOR_METRICS, TASK_METRICS, metric_id_component
from pyflow.runtime.metrics.process import process_metrics
from pyflow.runtime.metrics.scopes import jobmanager_metrics

__all__ = ["MetricsHandlers", "backpressure_level"]

#: Flink's backpressure levels: ok up to this ratio, low up to the next, high above
LOW_BACKPRESSURE = 0.10
HIGH_BACKPRESSURE = 0.5


def backpressure_level(ratio: float) -> str:
    """Flink's level of a backpressure ratio.

    >>> [backpressure_level(r) for r in (0.0, 0.1, 0.11, 0.5, 0.51)]
    ['ok', 'ok', 'low', 'low', 'high']
    """
    if ratio <= LOW_BACKPRESSURE:
        return "ok"
    return "low" if ratio <= HIGH_BACKPRESSURE else "high"


def _text(value: Any) -> str:
    """A metric's value as Flink's REST API shows it: a string."""
    return str(int(value)) if isinstance(value, bool) else str(value)


def metric_query(values: Mapping[str, Any], request: Request) -> list[dict[str, str]]:
    """Flink's answer to a metric query: the ids, or with ``?get=`` the values of those asked."""
    names = request.query_list("get")
    if names is None:
        return [{"id": name} for name in values]
    return [{"id": name, "value": _text(values[name])} for name in names if name in values]


def vertex_metric_values(subtasks: list[ExecutionSnapshot]) -> dict[str, Any]:
    """Every task and operator metric of a vertex's subtasks, by Flink's per-subtask metric id."""
    out: dict[str, Any] = {}
    for e in sorted(subtasks, key=lambda e: e.subtask_index):
        prefix = str(e.subtask_index)
        for name in TASK_METRICS:
            if isinstance(value := e.metrics.get(name), (int, float)):
                out[f"{prefix}.{name}"] = value
        for operator in e.metrics.get("operators", {}).values():
            component = metric_id_component(str(operator.get("name", "")))
            for name in OPERATOR_METRICS:
                if isinstance(value := operator.get(name), (int, float)):
                    out[f"{prefix}.{component}.{name}"] = value
    return out


def _zero_summary() -> dict[str, float]:
    return {"min": 0, "max": 0, "avg": 0, "p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0, "p999": 0.0}


class MetricsHandlers:
    """The metric, backpressure and checkpoint endpoints over a JobManager's Dispatcher and
    ResourceManager; ``routes()`` is their route table."""

    def __init__(self, *, dispatcher: Any, resource_manager: Any, clock: Callable[[], float] = time.time):
        self.dispatcher = dispatcher
        self.rm = resource_manager
        self.clock = clock

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/jobmanager/metrics", self.jobmanager_metrics, "Metrics of the JobManager"),
            Route("GET", "/taskmanagers/:taskmanagerid/metrics", self.taskmanager_metrics,
                  "Metrics of a TaskManager"),
            Route("GET", "/jobs/:jobid/metrics", self.job_metrics, "Metrics of a job"),
            Route("GET", "/jobs/:jobid/vertices/:vertexid/metrics", self.vertex_metrics,
                  "Metrics of the subtasks and operators of a job vertex"),
            Route("GET", "/jobs/:jobid/vertices/:vertexid/backpressure", self.backpressure,
                  "Backpressure of a job vertex"),
            Route("GET", "/jobs/:jobid/checkpoints", self.checkpoints, "Checkpoint statistics of a job"),
            Route("GET", "/jobs/:jobid/checkpoints/config", self.checkpoint_config,
                  "Checkpoint configuration of a job"),
        ]

    # ---- metric queries --------------------------------------------------------------------------

    def jobmanager_metrics(self, request: Request) -> list[dict[str, str]]:
        values = {**jobmanager_metrics(self.dispatcher, self.rm), **process_metrics().snapshot()}
        return metric_query(values, request)

    def taskmanager_metrics(self, request: Request) -> list[dict[str, str]]:
        tmid = request.params["taskmanagerid"]
        try:
            values = task_manager_gateway(self.rm, tmid).request_metrics()
        except RpcError as e:
            raise ServiceUnavailable(f"TaskManager {tmid} did not answer for its metrics: {e}") from None
        return metric_query(values, request)

    def job_metrics(self, request: Request) -> list[dict[str, str]]:
        return metric_query(self._job_master(request).job_metrics(), request)

    def vertex_metrics(self, request: Request) -> list[dict[str, str]]:
        return metric_query(vertex_metric_values(self._subtasks(request)), request)

    # ---- backpressure ----------------------------------------------------------------------------

    def backpressure(self, request: Request) -> dict[str, Any]:
        subtasks = []
        for e in sorted(self._subtasks(request), key=lambda e: e.subtask_index):
            # only a running subtask reports live shares; others count as not backpressured (Flink:
            # metrics that are not there read as 0)
            m = e.metrics if e.state == "RUNNING" else {}
            ratio = m.get("backPressuredTimeMsPerSecond", 0) / 1000
            level = backpressure_level(ratio)
            subtasks.append({"subtask": e.subtask_index, "attempt-number": 0, "backpressure-level": level,
                             "backpressureLevel": level, "ratio": ratio,
                             "idleRatio": m.get("idleTimeMsPerSecond", 0) / 1000,
                             "busyRatio": m.get("busyTimeMsPerSecond", 0) / 1000})
        level = backpressure_level(max((s["ratio"] for s in subtasks), default=0.0))
        return {"status": "ok", "backpressure-level": level, "backpressureLevel": level,
                "end-timestamp": int(self.clock() * 1000), "subtasks": subtasks}

    # ---- checkpoints -----------------------------------------------------------------------------

    def checkpoints(self, request: Request) -> dict[str, Any]:
        m = self._job_master(request).job_metrics()
        return {
            "counts": {"restored": 0, "total": m["totalNumberOfCheckpoints"],
                       "in_progress": m["numberOfInProgressCheckpoints"],
                       "completed": m["numberOfCompletedCheckpoints"], "failed": m["numberOfFailedCheckpoints"]},
            "summary": {name: _zero_summary() for name in ("checkpointed_size", "state_size", "end_to_end_duration",
                                                           "alignment_buffered", "processed_data",
                                                           "persisted_data")},
            "latest": {"completed": None, "savepoint": None, "failed": None, "restored": None},
            "history": [],
        }

    def checkpoint_config(self, request: Request) -> dict[str, Any]:
        jm = self._job_master(request)
        raise NotFound(f"Checkpointing is not enabled for this job ({jm.job_id}). This release of pyflow has no "
                       "checkpointing.")

    # ---- helpers ---------------------------------------------------------------------------------

    def _job_master(self, request: Request) -> Any:
        jid = request.params["jobid"]
        jm = self.dispatcher.job_master_for(jid)
        if jm is None:
            raise NotFound(f"Job {jid} not found on this cluster; GET /jobs lists the jobs")
        return jm

    def _subtasks(self, request: Request) -> list[ExecutionSnapshot]:
        jm = self._job_master(request)
        vid = request.params["vertexid"]
        if vid not in jm.job_graph.vertices:
            raise NotFound(f"Vertex {vid} is not part of job {jm.job_id}; GET /jobs/{jm.job_id} lists its vertices")
        return [e for e in snapshot_job(jm).executions if e.vertex_id == vid]
