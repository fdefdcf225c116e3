"""The ApplicationMaster of a pyflow cluster on YARN (run by ``yarn/pyflow-container.sh jobmanager``).

    python -m pyflow.deploy.yarn.application_master --mode session
    python -m pyflow.deploy.yarn.application_master --mode per-job --job-graph job-graph.jobgraph [--attached]
    python -m pyflow.deploy.yarn.application_master --mode application --program pyflow-job/job.py -- ARGS...

It runs a JobManager (:class:`~pyflow.runtime.jobmanager.entrypoint.ClusterEntrypoint`) whose
ResourceManager gets TaskManagers from YARN (:class:`~pyflow.deploy.yarn.driver.YarnResourceDriver`),
as Flink's YarnApplicationClusterEntryPoint does:

1. ``ApplicationClient.from_current()`` (through :mod:`~pyflow.deploy.yarn.skein_client`) reaches
   the application; the JobManager listens on this node (``$NM_HOST``) at free ports, logs into
   the container's log folder.
2. Once it runs, its RPC address (for TaskManager containers) and REST address (for clients) go
   into the key-value store, and the application's web UI (YARN's tracking URL) links to
   pyflow's web UI.
3. The mode decides when the application ends:

   - **per-job**: the entry point's per-job mode submits the JobGraph shipped as a file; the
     application ends with the job:
     FINISHED -> SUCCEEDED, FAILED -> FAILED (with the job's root cause), CANCELED -> KILLED. An
     attached client is given up to :data:`ATTACHED_RESULT_WAIT_S` to fetch the job's result
     first (it confirms in the key-value store).
   - **application**: the program's main() runs here, in a thread, with its jobs going to this
     JobManager; the application ends when the program has returned and its jobs have ended.
     A program that raises, or a job that failed, ends it FAILED.
   - **session**: jobs come and go until ``DELETE /cluster`` (``yarn-session -id <app> stop``) or
     SIGTERM; it ends SUCCEEDED.

4. The JobManager closes (TaskManager containers are released), then the master unregisters with
   the final status and diagnostics (``shutdown``), after which YARN stops this container.
"""

from __future__ import annotations

import argparse
import logging
import os
import runpy
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from pyflow.config import Configuration, options
from pyflow.deploy.yarn.cluster_descriptor import RESULT_FETCHED_KEY
from pyflow.deploy.yarn.driver import JOBMANAGER_REST_KEY, YarnResourceDriver
from pyflow.deploy.yarn.session import STOP_REQUEST_KEY
from pyflow.deploy.yarn.skein_client import YarnApplication
from pyflow.deploy.yarn.taskmanager import bind_host, container_folders, node_host
from pyflow.errors import DeploymentError, PyflowError, format_failure
from pyflow.runtime.jobmanager.entrypoint import (
    ApplicationResult, ApplicationStatus, ClusterEntrypoint, job_application_result,
)
from pyflow.runtime.messages import JobStatus
from pyflow.runtime.process_logging import setup_process_logging

logger = logging.getLogger(__name__)

#: how long an attached per-job cluster keeps its JobManager for the client to fetch the result
ATTACHED_RESULT_WAIT_S = 60.0
WEB_UI_ROUTE = "pyflow"


def master_configuration(conf: Configuration, env: dict[str, str] | None = None) -> Configuration:
    """The client's configuration with this container's addresses and folders."""
    env = dict(os.environ) if env is None else env
    host = node_host(env)
    conf = conf.copy()
    conf.set(options.JM_RPC_ADDRESS, host)
    conf.set(options.JM_BIND_HOST, bind_host(host))
    conf.set(options.JM_RPC_PORT, 0)  # any free port: several masters may share a node
    conf.set(options.REST_ADDRESS, host)
    conf.set(options.REST_BIND_ADDRESS, bind_host(host))
    conf.set(options.REST_BIND_PORT, "")
    for key, value in container_folders(env).items():
        conf.set(key, value)
    return conf


class ApplicationMaster:
    def __init__(self, conf: Configuration, application: YarnApplication, *, mode: str, job_graph: Any = None,
                 attached: bool = False, program: Path | None = None, program_args: Sequence[str] = ()):
        self.conf = conf
        self.application = application
        self.mode = mode
        self.job_graph = job_graph
        self.attached = attached
        self.program = program
        self.program_args = list(program_args)
        self.driver = YarnResourceDriver(conf, application)
        self.stop_event = threading.Event()
        #: decided by the mode (the job's or the program's end); None: the entry point's result
        self.result: ApplicationResult | None = None
        self.jobmanager = None
        self.web_url = ""

    def run(self) -> ApplicationResult:
        per_job = self.mode == "per-job"
        entry = ClusterEntrypoint(self.conf, self.driver, job_graph=self.job_graph if per_job else None,
                                  on_started=self._started, stop_event=self.stop_event,
                                  on_job_ended=(lambda _result: self._wait_for_client()) if per_job and self.attached
                                  else None)
        entry.run()
        result = self.result or self._stopped_result(entry.result)
        logger.info("Unregistering %s: %s: %s", self.application.id, result.status.value, result.diagnostics)
        try:
            self.application.shutdown(result.status.value, result.diagnostics)
        except DeploymentError as e:  # killed from outside: YARN knows already
            logger.warning("Unregistering %s failed: %s", self.application.id, e)
        return result

    def _stopped_result(self, entry_result: ApplicationResult) -> ApplicationResult:
        """The final status: the entry point's for session and per-job clusters (per-job: the job's
        own); an application cluster stopped before its program ended is KILLED."""
        if self.mode != "application" or entry_result.status is ApplicationStatus.FAILED:
            return entry_result
        return ApplicationResult(ApplicationStatus.KILLED, f"The application cluster was stopped before its "
                                                           f"program ended ({entry_result.diagnostics})")

    # ---- once the JobManager runs (on the entry point's thread) -------------------------------------

    def _started(self, jobmanager) -> None:
        self.jobmanager = jobmanager
        self.driver.set_registration_probe(lambda resource_id: resource_id in jobmanager.rm.history)
        self.web_url = f"http://{jobmanager.rest_address}"
        try:
            self.application.add_web_page(WEB_UI_ROUTE, self.web_url, "pyflow Web UI")
        except DeploymentError as e:
            logger.warning("The YARN web UI cannot link pyflow's web UI: %s", e)
        self.application.kv_put(JOBMANAGER_REST_KEY, jobmanager.rest_address)
        logger.info("ApplicationMaster of %s (%s mode): JobManager RPC at %s, web UI at %s", self.application.id,
                    self.mode, jobmanager.address, self.web_url)
        if self.mode == "application":
            threading.Thread(target=self._run_program, name="application-main", daemon=True).start()
        elif self.mode == "session":
            threading.Thread(target=self._watch_stop_request, name="session-stop-watch", daemon=True).start()

    def _watch_stop_request(self) -> None:
        """`yarn-session -id <app> stop` asks through the key-value store (YARN reaches it even
        where the JobManager's REST port does not)."""
        while not self.stop_event.wait(0.5):
            try:
                requested = self.application.kv_get(STOP_REQUEST_KEY)
            except DeploymentError:
                continue
            if requested is not None:
                self.result = ApplicationResult(ApplicationStatus.SUCCEEDED,
                                                f"The session was stopped ({requested})")
                self.stop_event.set()

    def _wait_for_client(self) -> None:
        deadline = time.monotonic() + ATTACHED_RESULT_WAIT_S
        while time.monotonic() < deadline:
            try:
                if self.application.kv_get(RESULT_FETCHED_KEY) is not None:
                    return
            except DeploymentError:
                return
            time.sleep(0.1)
        logger.info("The attached client did not fetch the job's result within %.0f s", ATTACHED_RESULT_WAIT_S)

    def _run_program(self) -> None:
        try:
            failure = self._main()
            self.result = self._application_result(failure)
        except Exception as e:  # noqa: BLE001 - whatever happens, the application must end
            logger.exception("Running the program failed")
            self.result = ApplicationResult(ApplicationStatus.FAILED, f"Running {self.program} failed: {e}")
        finally:
            self.stop_event.set()

    def _main(self) -> str | None:
        """Run the program as __main__ with this JobManager as its cluster; its failure, if any."""
        from pyflow.api.environment import set_context_configuration

        host, _, port = self.jobmanager.rest_address.rpartition(":")
        program_conf = self.conf.copy()
        program_conf.set(options.TARGET, "remote")
        program_conf.set(options.REST_ADDRESS, host)
        program_conf.set(options.REST_PORT, int(port))
        set_context_configuration(program_conf)
        sys.argv = [str(self.program), *self.program_args]
        sys.path.insert(0, str(self.program.resolve().parent))
        try:
            runpy.run_path(str(self.program), run_name="__main__")
        except SystemExit as e:
            if e.code not in (None, 0):
                return f"The program {self.program.name} exited with code {e.code}"
        except BaseException as e:  # noqa: BLE001 - the user's program: its failure is the diagnostics
            return f"The program {self.program.name} raised:\n{format_failure(e)}"
        finally:
            set_context_configuration(None)
        return None

    def _application_result(self, failure: str | None) -> ApplicationResult:
        dispatcher = self.jobmanager.dispatcher
        jobs = dispatcher.list_jobs()
        results = [dispatcher.request_job_result(job["id"]).result() for job in jobs]  # each waits for its end
        if failure is not None:
            return ApplicationResult(ApplicationStatus.FAILED, failure)
        if not results:
            return ApplicationResult(ApplicationStatus.FAILED,
                                     f"The program {self.program.name} ended without running a job (no execute())")
        for status in (JobStatus.FAILED, JobStatus.CANCELED):
            ended = [r for r in results if r.status is status]
            if ended:
                return job_application_result(ended[0])
        names = ", ".join(f"'{r.job_name}' ({r.job_id})" for r in results)
        return ApplicationResult(ApplicationStatus.SUCCEEDED,
                                 f"The program {self.program.name} finished; its jobs finished: {names}")


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    argv = list(argv)
    program_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, program_args = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(prog="pyflow-yarn-application-master")
    parser.add_argument("--mode", required=True, choices=("per-job", "application", "session"))
    parser.add_argument("--job-graph", type=Path, default=None)
    parser.add_argument("--attached", action="store_true")
    parser.add_argument("--program", type=Path, default=None)
    return parser.parse_args(argv), program_args


def main(argv: Sequence[str] | None = None) -> int:
    args, program_args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        conf = master_configuration(Configuration.load())
        application = YarnApplication.current()
    except PyflowError as e:
        print(f"The ApplicationMaster cannot start: {e}", file=sys.stderr)
        return 1
    setup_process_logging("jobmanager", application.id, conf)
    job_graph = None
    if args.mode == "per-job":
        from pyflow.rest.job_graph_file import JobGraphFileError, decode_job_graph

        try:  # JSON and opaque blobs: nothing of the user's code is unpickled here
            job_graph = decode_job_graph(args.job_graph.read_bytes())
        except (OSError, JobGraphFileError) as e:
            diagnostics = f"The ApplicationMaster cannot read the job graph file {args.job_graph}: {e}"
            print(diagnostics, file=sys.stderr)
            try:
                application.shutdown(ApplicationStatus.FAILED.value, diagnostics)
            except DeploymentError:
                pass  # YARN sees the container fail instead
            return 1
    master = ApplicationMaster(conf, application, mode=args.mode, job_graph=job_graph, attached=args.attached,
                               program=args.program, program_args=program_args)
    result = master.run()
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
