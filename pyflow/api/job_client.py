"""JobClient and JobExecutionResult: a submitted job, seen from the program that submitted it.

``execute_async()`` returns a :class:`JobClient` (PyFlink's): :class:`LocalJobClient` for a job of
an embedded cluster in this process, :class:`RemoteJobClient` for a job of a session cluster,
reached over its REST API. Both have the same methods - ``get_job_status()``, ``cancel()``,
``get_job_execution_result()`` (raises JobExecutionError with the user's traceback, or
JobCancellationError), ``details()`` - and ``rest_address``, the REST endpoint of the job's cluster.

A :class:`JobListener` (``env.register_job_listener``) hears of every submission and every
attached execution's end (Flink's JobListener); the ``pyflow`` CLI uses one to print the job id
and the job's progress.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pyflow.errors import JobCancellationError, JobExecutionError, ProgramError
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


class DetachedJobExecutionResult(JobExecutionResult):
    """What ``execute()`` returns when the job was submitted detached (``execution.attached:
    false``, ``pyflow run -d``): the job id; the job's outcome is on the cluster."""

    def __init__(self, job_id: str, job_name: str):
        super().__init__(job_id, job_name, -1)

    def get_net_runtime(self) -> int:
        raise ProgramError(f"Job {self.job_id} was submitted detached, so its runtime is not known here; "
                           "`pyflow list -a` or GET /jobs/<id> on the cluster show how it ended")

    def record_counts(self) -> dict[str, int]:
        raise ProgramError(f"Job {self.job_id} was submitted detached, so its record counts are not known here; "
                           "GET /jobs/<id> on the cluster shows them")

    def __str__(self) -> str:
        return f"Job {self.job_name} ({self.job_id}) was submitted detached"


def _unique_operator_names(operator_metrics: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    names: dict[str, int] = {}
    for m in operator_metrics.values():
        names[m["name"]] = names.get(m["name"], 0) + 1
    operators = {}
    for node_id, m in sorted(operator_metrics.items(), key=lambda kv: int(kv[0])):
        key = m["name"] if names[m["name"]] == 1 else f"{m['name']} ({node_id})"
        operators[key] = {k: v for k, v in m.items() if k != "name"}
    return operators


def to_execution_result(result) -> JobExecutionResult:
    return JobExecutionResult(result.job_id, result.job_name, result.net_runtime_ms,
                              _unique_operator_names(result.operator_metrics), result.vertex_metrics,
                              result.task_managers)


def raise_for_status(result) -> None:
    if result.status is JobStatus.FAILED:
        raise JobExecutionError(f"Job '{result.job_name}' ({result.job_id}) failed.", result.job_id, result.error)
    if result.status is JobStatus.CANCELED:
        raise JobCancellationError(f"Job '{result.job_name}' ({result.job_id}) was cancelled.", result.job_id)


class JobClient:
    """Handle on a submitted job (PyFlink's JobClient); see :class:`LocalJobClient` and
    :class:`RemoteJobClient`."""

    job_id: str
    #: ``host:port`` of the REST endpoint of the job's cluster ("" when it has none)
    rest_address: str = ""

    def get_job_id(self) -> str:
        return self.job_id

    def get_job_status(self) -> JobStatus:
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError

    def get_job_execution_result(self, timeout: float | None = None) -> JobExecutionResult:
        """Wait for the job to end; raises JobExecutionError (with the user's traceback) if it
        failed, JobCancellationError if it was cancelled, TimeoutError after ``timeout`` seconds."""
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        raise NotImplementedError


class LocalJobClient(JobClient):
    """A job of an embedded cluster in this process, through its Dispatcher."""

    def __init__(self, dispatcher, job_id: str, rest_address: str = ""):
        self._dispatcher = dispatcher
        self.job_id = job_id
        self.rest_address = rest_address

    def get_job_status(self) -> JobStatus:
        return self._dispatcher.request_job_status(self.job_id)

    def cancel(self) -> None:
        self._dispatcher.cancel_job(self.job_id)

    def get_job_execution_result(self, timeout: float | None = None) -> JobExecutionResult:
        result = self._dispatcher.request_job_result(self.job_id).result(timeout)
        raise_for_status(result)
        return to_execution_result(result)

    def details(self) -> dict[str, Any]:
        """The JobMaster's snapshot: state, per-vertex metrics, per-task states."""
        return self._dispatcher.job_master_for(self.job_id).details()


class RemoteJobClient(JobClient):
    """A job of a session cluster, through its REST API (a :class:`~pyflow.rest.client.RestClusterClient`).

    ``get_job_execution_result()`` polls Flink's ``GET /jobs/:jobid/execution-result``; a failed
    job's error carries the user's traceback as the cluster recorded it (its ``failure-cause``,
    else the root exception of ``GET /jobs/:jobid/exceptions``).
    """

    #: seconds between two polls for the result, growing to POLL_MAX_S
    POLL_S = 0.1
    POLL_MAX_S = 1.0

    def __init__(self, rest_client, job_id: str):
        self._rest = rest_client
        self.job_id = job_id
        self.rest_address = rest_client.address

    def get_job_status(self) -> JobStatus:
        return self._rest.job_status(self.job_id)

    def cancel(self) -> None:
        from pyflow.rest.client import RestClientError

        try:
            self._rest.cancel_job(self.job_id)
        except RestClientError as e:
            if e.status != 409:  # 409: it already ended otherwise, as with the local client
                raise

    def get_job_execution_result(self, timeout: float | None = None) -> JobExecutionResult:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = self.POLL_S
        while True:
            result = self._rest.execution_result(self.job_id)
            if result is not None:
                return self._to_result(result)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"Job {self.job_id} did not end within {timeout} s")
            time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 1.5, self.POLL_MAX_S)

    def _to_result(self, result: dict[str, Any]) -> JobExecutionResult:
        name = result.get("job-name", "")
        status = result.get("application-status")
        if status == "FAILED":
            cause = (result.get("failure-cause") or {}).get("stack-trace")
            if not cause:  # the root exception, as GET /jobs/:jobid/exceptions has it
                cause = self._rest.job_exceptions(self.job_id).get("root-exception")
            raise JobExecutionError(f"Job '{name}' ({self.job_id}) failed.", self.job_id, cause)
        if status == "CANCELED":
            raise JobCancellationError(f"Job '{name}' ({self.job_id}) was cancelled.", self.job_id)
        return JobExecutionResult(self.job_id, name, int(result.get("net-runtime", 0)),
                                  _unique_operator_names(result.get("operator-metrics") or {}),
                                  result.get("vertex-metrics") or {}, list(result.get("task-managers") or []))

    def details(self) -> dict[str, Any]:
        """Flink's job details from ``GET /jobs/:jobid``: state, vertices with record counts, plan."""
        return self._rest.job_details(self.job_id)


class JobListener:
    """Hears of a program's jobs (Flink's JobListener): override what you need.

    ``on_job_submitted`` gets the JobClient, or the error that made the submission fail;
    ``on_job_executed`` the result of an attached ``execute()``, or its error.
    """

    def on_job_submitted(self, job_client: JobClient | None, error: BaseException | None) -> None:
        pass

    def on_job_executed(self, result: JobExecutionResult | None, error: BaseException | None) -> None:
        pass
