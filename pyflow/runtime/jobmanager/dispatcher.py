"""Dispatcher: accepts jobs, runs one JobMaster per job, keeps finished jobs' results."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor, Future
from typing import Any

from pyflow.errors import ProgramError
from pyflow.graph.job_graph import JobGraph
from pyflow.runtime.jobmanager.jobmaster.job_master import JobMaster, JobResult
from pyflow.runtime.messages import JobStatus
from pyflow.runtime.rpc.endpoint import RpcEndpoint

logger = logging.getLogger(__name__)


class UnknownJobError(ProgramError):
    """No job with that id is known to this cluster."""


class DuplicateJobSubmissionError(ProgramError):
    """A job with that id was already submitted to this cluster (Flink's DuplicateJobSubmissionException)."""


class Dispatcher(RpcEndpoint):
    def __init__(self, *, resource_manager: Any, rpc_address: str, io: Executor, gateways: Any):
        super().__init__("Dispatcher")
        self.rm = resource_manager
        self.rpc_address = rpc_address
        self.io = io
        self.gateways = gateways
        self._lock = threading.Lock()
        self.job_masters: dict[str, JobMaster] = {}
        self.results: dict[str, JobResult] = {}

    def submit_job(self, job_graph: JobGraph) -> str:
        with self._lock:
            if job_graph.job_id in self.job_masters:
                raise DuplicateJobSubmissionError(f"Job {job_graph.job_id} was already submitted to this cluster")
            jm = JobMaster(job_graph, resource_manager=self.rm, rpc_address=self.rpc_address, io=self.io,
                           on_terminal=self._job_reached_terminal_state, gateways=self.gateways)
            self.job_masters[job_graph.job_id] = jm
        logger.info("Received job %s (%s)", job_graph.job_name, job_graph.job_id)
        jm.start()
        return job_graph.job_id

    def job_master_for(self, job_id: str) -> JobMaster | None:
        with self._lock:
            return self.job_masters.get(job_id)

    def _require(self, job_id: str) -> JobMaster:
        jm = self.job_master_for(job_id)
        if jm is None:
            raise UnknownJobError(f"No job with id {job_id} on this cluster; `pyflow list -a` lists the jobs")
        return jm

    def _job_reached_terminal_state(self, result: JobResult) -> None:
        with self._lock:
            self.results[result.job_id] = result
        # the JobMaster's endpoint is closed from the I/O pool, not from its own thread
        jm = self.job_master_for(result.job_id)
        if jm is not None:
            self.io.submit(jm.close_endpoint)

    def request_job_result(self, job_id: str) -> Future:
        return self._require(job_id).result_future

    def request_job_status(self, job_id: str) -> JobStatus:
        return self._require(job_id).status

    def cancel_job(self, job_id: str) -> None:
        jm = self._require(job_id)
        if not jm.status.is_globally_terminal:
            jm.cancel()

    def stop_job(self, job_id: str) -> Future:
        """Graceful stop (see ``JobMaster.stop``); the job's result future, FINISHED once drained.
        Raises JobStateError unless the job is RUNNING in STREAMING mode."""
        jm = self._require(job_id)
        jm.stop()
        return jm.result_future

    def trigger_savepoint(self, job_id: str, target_directory: str | None, cancel_job: bool) -> Future:
        """A savepoint of a RUNNING job; the future fails while pyflow has no checkpointing."""
        return self._require(job_id).trigger_savepoint(target_directory, cancel_job)

    def list_jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            masters = list(self.job_masters.values())
        return [{"id": jm.job_id, "name": jm.job_graph.job_name, "status": jm.status.value,
                 "start-time": int(jm.start_time * 1000)} for jm in masters]

    def forward_task_metrics(self, metrics: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            masters = [jm for jm in self.job_masters.values() if not jm.status.is_globally_terminal]
        for jm in masters:
            jm.update_live_metrics(metrics)

    def close(self) -> None:
        with self._lock:
            masters = list(self.job_masters.values())
        for jm in masters:
            if not jm.status.is_globally_terminal:
                jm.cancel()
        for jm in masters:
            try:
                jm.result_future.result(timeout=10)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
            jm.close_endpoint()
        self.close_endpoint()
