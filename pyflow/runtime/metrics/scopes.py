"""What each process reports, as :class:`~pyflow.runtime.metrics.prometheus.MetricSample` lists
with Flink's scopes and scope variables (labels).

* a TaskManager: ``taskmanager`` (its Status.Process.* metrics; labels ``host``, ``tm_id``),
  ``taskmanager.job.task`` per subtask (``job_id``, ``job_name``, ``task_id``, ``task_name``,
  ``task_attempt_id``, ``task_attempt_num``, ``subtask_index``) and
  ``taskmanager.job.task.operator`` per operator of its chain (``operator_id``, ``operator_name``);
* the JobManager: ``jobmanager`` (cluster gauges and Status.Process.*; label ``host``) and
  ``jobmanager.job`` per job that has not ended (``job_id``, ``job_name``).

The functions here take plain values; the TaskExecutor and the JobManager pass their own.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from pyflow.runtime.metrics.names import (
    JOB_METRICS, JOBMANAGER_METRICS, OPERATOR_METRICS, PROCESS_METRICS, TASK_METRICS,
)
from pyflow.runtime.metrics.process import process_metrics
from pyflow.runtime.metrics.prometheus import MetricSample

__all__ = ["TaskScope", "jobmanager_collector", "jobmanager_metrics", "jobmanager_samples", "taskmanager_samples"]


@dataclass(frozen=True, slots=True)
class TaskScope:
    """The scope variables of one subtask (Flink's TaskMetricGroup)."""

    job_id: str
    job_name: str
    task_id: str
    task_name: str
    execution_id: str
    attempt_number: int
    subtask_index: int

    def labels(self) -> tuple[tuple[str, str], ...]:
        return (("job_id", self.job_id), ("job_name", self.job_name), ("task_id", self.task_id),
                ("task_name", self.task_name), ("task_attempt_id", self.execution_id),
                ("task_attempt_num", str(self.attempt_number)), ("subtask_index", str(self.subtask_index)))


_TERMINAL = ("FINISHED", "CANCELED", "FAILED")


def _samples(scope: tuple[str, ...], kinds: Mapping[str, str], values: Mapping[str, Any],
             labels: tuple[tuple[str, str], ...]) -> list[MetricSample]:
    """A sample for every metric of ``kinds`` that ``values`` has as a number."""
    return [MetricSample(scope, name, kind, value, labels) for name, kind in kinds.items()
            if isinstance(value := values.get(name), (int, float))]


def taskmanager_samples(tm_id: str, host: str, process: Mapping[str, float],
                        tasks: Iterable[tuple[TaskScope, Mapping[str, Any]]]) -> list[MetricSample]:
    """The samples of a TaskManager: its process metrics and every task's and operator's
    (``tasks``: scope and ``Task.metrics()`` of each running task)."""
    tm = (("host", host), ("tm_id", tm_id))
    out = _samples(("taskmanager",), PROCESS_METRICS, process, tm)
    for scope, metrics in tasks:
        labels = tm + scope.labels()
        out += _samples(("taskmanager", "job", "task"), TASK_METRICS, metrics, labels)
        for operator_id, operator in metrics.get("operators", {}).items():
            out += _samples(("taskmanager", "job", "task", "operator"), OPERATOR_METRICS, operator,
                            labels + (("operator_id", operator_id), ("operator_name", operator.get("name", ""))))
    return out


def jobmanager_metrics(dispatcher: Any, resource_manager: Any) -> dict[str, int]:
    """The JobManager's own gauges (scope ``jobmanager``), from its ResourceManager and Dispatcher."""
    overview = resource_manager.overview()
    return {
        "numRegisteredTaskManagers": overview["taskmanagers"],
        "taskSlotsTotal": overview["slots-total"],
        "taskSlotsAvailable": overview["slots-available"],
        "numRunningJobs": sum(j["status"] not in _TERMINAL for j in dispatcher.list_jobs()),
    }


def jobmanager_samples(host: str, jobmanager: Mapping[str, float], process: Mapping[str, float],
                       jobs: Iterable[tuple[str, str, Mapping[str, Any]]]) -> list[MetricSample]:
    """The samples of a JobManager: its gauges, process metrics and ``jobs`` (id, name, metrics)."""
    jm = (("host", host),)
    out = _samples(("jobmanager",), JOBMANAGER_METRICS, jobmanager, jm)
    out += _samples(("jobmanager",), PROCESS_METRICS, process, jm)
    for job_id, job_name, metrics in jobs:
        labels = jm + (("job_id", job_id), ("job_name", job_name))
        out += _samples(("jobmanager", "job"), JOB_METRICS, metrics, labels)
    return out


def jobmanager_collector(dispatcher: Any, resource_manager: Any) -> Callable[[], list[MetricSample]]:
    """What the JobManager's Prometheus reporter serves: its gauges, its process, and every job
    that has not ended (Flink drops a job's metrics when it ends)."""
    def collect() -> list[MetricSample]:
        jobs = []
        for job in dispatcher.list_jobs():
            jm = dispatcher.job_master_for(job["id"]) if job["status"] not in _TERMINAL else None
            if jm is not None:
                jobs.append((jm.job_id, jm.job_graph.job_name, jm.job_metrics()))
        return jobmanager_samples(socket.gethostname(), jobmanager_metrics(dispatcher, resource_manager),
                                  process_metrics().snapshot(), jobs)

    return collect
