"""JobClient and JobExecutionResult: a submitted job, seen from the program that submitted it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyflow.errors import JobCancellationError, JobExecutionError
from pyflow.runtime.messages import JobStatus


@dataclass
class JobExecutionResult:
    """The result of a finished job (Flink's JobExecutionResult).

    ``operator_metrics`` maps each operator's name (made unique with its id when names repeat)
    to its record counts summed over its subtasks: ``{"Map": {"numRecordsIn": 10, ...}}``.
    """

    job_id: str
    job_name: str
    net_runtime: int  # milliseconds
    operator_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    vertex_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_managers: list[str] = field(default_factory=list)

    def get_job_id(self) -> str:
        return self.job_id

    def get_net_runtime(self) -> int:
        return self.net_runtime

    def record_counts(self) -> dict[str, int]:
        """Records written by each operator: ``{"Map": 10, ...}``."""
        return {name: m["numRecordsOut"] for name, m in self.operator_metrics.items()}

    def __str__(self) -> str:
        return f"Job {self.job_name} ({self.job_id}) finished in {self.net_runtime} ms"


def to_execution_result(result) -> JobExecutionResult:
    names: dict[str, int] = {}
    for m in result.operator_metrics.values():
        names[m["name"]] = names.get(m["name"], 0) + 1
    operators = {}
    for node_id, m in sorted(result.operator_metrics.items(), key=lambda kv: int(kv[0])):
        key = m["name"] if names[m["name"]] == 1 else f"{m['name']} ({node_id})"
        operators[key] = {k: v for k, v in m.items() if k != "name"}
    return JobExecutionResult(result.job_id, result.job_name, result.net_runtime_ms, operators,
                              result.vertex_metrics, result.task_managers)


def raise_for_status(result) -> None:
    if result.status is JobStatus.FAILED:
        raise JobExecutionError(f"Job '{result.job_name}' ({result.job_id}) failed.", result.job_id, result.error)
    if result.status is JobStatus.CANCELED:
        raise JobCancellationError(f"Job '{result.job_name}' ({result.job_id}) was cancelled.", result.job_id)


class JobClient:
    """Handle on a submitted job (PyFlink's JobClient)."""

    def __init__(self, dispatcher, job_id: str):
        self._dispatcher = dispatcher
        self.job_id = job_id

    def get_job_id(self) -> str:
        return self.job_id

    def get_job_status(self) -> JobStatus:
        return self._dispatcher.request_job_status(self.job_id)

    def cancel(self) -> None:
        self._dispatcher.cancel_job(self.job_id)

    def get_job_execution_result(self, timeout: float | None = None) -> JobExecutionResult:
        """Wait for the job to end; raises JobExecutionError (with the user's traceback) if it
        failed, JobCancellationError if it was cancelled."""
        result = self._dispatcher.request_job_result(self.job_id).result(timeout)
        raise_for_status(result)
        return to_execution_result(result)

    def details(self) -> dict[str, Any]:
        return self._dispatcher.job_master_for(self.job_id).details()
