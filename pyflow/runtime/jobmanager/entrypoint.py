"""ClusterEntrypoint: runs a JobManager until its cluster ends (Flink's ClusterEntrypoint).

One JobManager (``JobManager(conf, driver)``) per entry point, in one of two modes:

- **session** (no JobGraph): jobs come and go; the cluster runs until ``DELETE /cluster``,
  SIGTERM/SIGINT (when run on the main thread), ``stop_event`` or ``request_stop()``, and then
  ends SUCCEEDED.
- **per-job** (a JobGraph given): the JobGraph is submitted at once and the cluster ends when the
  job reaches a terminal state: FINISHED -> SUCCEEDED, FAILED -> FAILED, CANCELED -> KILLED. A stop
  request first cancels the job (KILLED).

``on_started(jobmanager)`` runs once the RPC and REST addresses are known (``jobmanager.address``,
``jobmanager.rest_address``), e.g. to publish them. In per-job mode ``on_job_ended(result)`` runs
once the job ended, before the JobManager closes (an attached client may still fetch the result). A JobManager that cannot start (a taken port)
ends FAILED with a message naming the option to change. ``run()`` returns the exit code (0 for
SUCCEEDED, 1 otherwise); ``result`` holds the final :class:`ApplicationStatus` and diagnostics a
YARN ApplicationMaster unregisters with. The JobManager is closed from the thread that called
``run()``, never from a REST handler or signal handler: those only record the request.

>>> entry = ClusterEntrypoint(conf, driver, on_started=publish)   # doctest: +SKIP
>>> exit_code = entry.run()                                        # doctest: +SKIP
>>> entry.result.status, entry.result.diagnostics                  # doctest: +SKIP
(<ApplicationStatus.SUCCEEDED: 'SUCCEEDED'>, 'The session cluster was stopped (SIGTERM)')

``python -m pyflow.runtime.jobmanager`` runs a standalone session with it.
"""

from __future__ import annotations

import enum
import errno
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from pyflow.config import Configuration, options
from pyflow.errors import PyflowError, RpcError
from pyflow.runtime.jobmanager.jobmanager import JobManager
from pyflow.runtime.jobmanager.resourcemanager.driver import ResourceDriver
from pyflow.runtime.messages import JobStatus
from pyflow.runtime.process_logging import FILE_ONLY

logger = logging.getLogger(__name__)


class ApplicationStatus(enum.Enum):
    """How a cluster ended; the names are YARN's final application statuses."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    KILLED = "KILLED"


@dataclass(frozen=True, slots=True)
class ApplicationResult:
    """The final status of a cluster and why, as a YARN ApplicationMaster unregisters with it."""

    status: ApplicationStatus
    diagnostics: str

    @property
    def exit_code(self) -> int:
        return 0 if self.status is ApplicationStatus.SUCCEEDED else 1


def job_application_result(result: Any) -> ApplicationResult:
    """The final status of a per-job cluster whose job ended with ``result`` (a JobResult)."""
    name = f"Job '{result.job_name}' ({result.job_id})"
    if result.status is JobStatus.FINISHED:
        return ApplicationResult(ApplicationStatus.SUCCEEDED, f"{name} finished")
    if result.status is JobStatus.FAILED:
        return ApplicationResult(ApplicationStatus.FAILED, f"{name} failed: {result.error or 'no cause known'}")
    return ApplicationResult(ApplicationStatus.KILLED, f"{name} ended {result.status.value}")


def startup_error_message(error: BaseException, conf: Configuration) -> str:
    """Why a JobManager could not start, naming the option that fixes a taken or foreign port."""
    if isinstance(error, RpcError):
        host, port = conf.get(options.JM_BIND_HOST), conf.get(options.JM_RPC_PORT)
        return (f"The JobManager cannot listen for RPC on {host}:{port}: the port is taken (is another "
                f"JobManager running?) or {host} is not an address of this machine. Stop what holds the "
                f"port, or set {options.JM_RPC_PORT.key} to a free port (-D {options.JM_RPC_PORT.key}=<port>, "
                f"the same for the TaskManagers), or fix {options.JM_BIND_HOST.key}")
    if isinstance(error, OSError):
        host = conf.get(options.REST_BIND_ADDRESS)
        port = conf.get(options.REST_BIND_PORT) or conf.get(options.REST_PORT)
        cause = "the port is taken" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        return (f"The JobManager cannot listen for REST on {host}:{port}: {cause}. Set {options.REST_PORT.key} "
                f"to a free port (-D {options.REST_PORT.key}=<port>, or the port in conf/masters) or "
                f"{options.REST_BIND_PORT.key} to a range, or fix {options.REST_BIND_ADDRESS.key}")
    return f"The JobManager could not start: {error}"


class ClusterEntrypoint:
    """Runs one JobManager in session mode (``job_graph`` None) or per-job mode; see the module."""

    def __init__(self, conf: Configuration, driver: ResourceDriver, *, job_graph: Any = None,
                 on_started: Callable[[JobManager], None] | None = None,
                 on_job_ended: Callable[[ApplicationResult], None] | None = None,
                 stop_event: threading.Event | None = None):
        self.conf = conf
        self.driver = driver
        self.job_graph = job_graph
        self.on_started = on_started
        self.on_job_ended = on_job_ended
        self.stop_event = stop_event
        self.jobmanager: JobManager | None = None
        #: how the cluster ended; None while it runs
        self.result: ApplicationResult | None = None
        # appended to by signal handlers, REST and other threads; read by run() (list.append is atomic)
        self._stop_requests: list[str] = []

    @property
    def mode(self) -> str:
        return "session" if self.job_graph is None else "per-job"

    def request_stop(self, reason: str) -> None:
        """Ask the cluster to end; safe from any thread and from a signal handler."""
        self._stop_requests.append(reason)

    def run(self) -> int:
        """Start the JobManager, wait until the cluster ends, close it; returns the exit code."""
        previous = self._install_signal_handlers()
        try:
            self.result = self._run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        # the log file's line; the caller shows the result its own way (stderr, YARN diagnostics)
        level = logging.INFO if self.result.status is ApplicationStatus.SUCCEEDED else logging.ERROR
        logger.log(level, "Cluster entrypoint (%s) ended %s: %s", self.mode, self.result.status.value,
                   self.result.diagnostics, extra=FILE_ONLY)
        return self.result.exit_code

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda n, _f: self.request_stop(signal.Signals(n).name))
        return previous

    def _run(self) -> ApplicationResult:
        try:
            jm = self.jobmanager = JobManager(self.conf, self.driver)
        except PyflowError as e:  # a bad configuration
            return ApplicationResult(ApplicationStatus.FAILED, f"The JobManager could not start: {e}")
        jm.on_shutdown_request = lambda: self.request_stop("DELETE /cluster")
        try:
            jm.start()
        except (PyflowError, OSError) as e:
            jm.close()
            return ApplicationResult(ApplicationStatus.FAILED, startup_error_message(e, self.conf))
        try:
            logger.info("Cluster entrypoint (%s): JobManager RPC at %s, REST at %s", self.mode, jm.address,
                        jm.rest_address)
            if self.on_started is not None:
                self.on_started(jm)
            job_id = jm.dispatcher.submit_job(self.job_graph) if self.job_graph is not None else None
            return self._wait(jm, job_id)
        except Exception as e:  # noqa: BLE001 - whatever ends the cluster is its diagnostics
            logger.exception("Cluster entrypoint (%s) failed", self.mode)
            return ApplicationResult(ApplicationStatus.FAILED, f"The cluster failed: {type(e).__name__}: {e}")
        finally:
            jm.close()

    def _wait(self, jm: JobManager, job_id: str | None) -> ApplicationResult:
        job = jm.dispatcher.request_job_result(job_id) if job_id is not None else None
        while True:
            if job is not None and job.done():
                result = job_application_result(job.result())
                if self.on_job_ended is not None:
                    self.on_job_ended(result)
                return result
            reason = self._stop_reason()
            if reason is not None:
                logger.info("Stopping the %s cluster: %s", self.mode, reason)
                if job_id is None:
                    return ApplicationResult(ApplicationStatus.SUCCEEDED,
                                             f"The session cluster was stopped ({reason})")
                jm.dispatcher.cancel_job(job_id)
                return ApplicationResult(ApplicationStatus.KILLED,
                                         f"The per-job cluster was stopped ({reason}) before job {job_id} "
                                         f"ended; the job was cancelled")
            time.sleep(0.1)

    def _stop_reason(self) -> str | None:
        if self._stop_requests:
            return self._stop_requests[0]
        if self.stop_event is not None and self.stop_event.is_set():
            return "stop requested"
        return None


def run_cluster(conf: Configuration, driver: ResourceDriver, *, job_graph: Any = None,
                on_started: Callable[[JobManager], None] | None = None,
                stop_event: threading.Event | None = None) -> int:
    """Run a cluster until it ends; returns the exit code. ``ClusterEntrypoint`` also gives the
    final status and diagnostics."""
    return ClusterEntrypoint(conf, driver, job_graph=job_graph, on_started=on_started,
                             stop_event=stop_event).run()
