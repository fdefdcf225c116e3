"""Deploying pyflow clusters on YARN and finding them again (Flink's YarnClusterDescriptor).

Three kinds of cluster, one YARN application each; the ApplicationMaster runs the JobManager
(:mod:`pyflow.deploy.yarn.application_master`) and TaskManagers come and go as containers:

- **per-job** (:meth:`YarnClusterDescriptor.deploy_job_cluster`): the client built the JobGraph;
  it is shipped as a file and the application ends with the job.
- **application** (:meth:`~YarnClusterDescriptor.deploy_application_cluster`): the job file's
  main() runs inside the ApplicationMaster; the application ends when the program does.
- **session** (:meth:`~YarnClusterDescriptor.deploy_session_cluster`): runs jobs until stopped.

Deploying is: check that the ResourceManager can be reached (``$HADOOP_CONF_DIR``), ship what the
containers need (:mod:`~pyflow.deploy.yarn.shipping`; a missing environment archive or a job
import that does not resolve fails here, before anything is submitted), build the spec
(:mod:`~pyflow.deploy.yarn.spec`), submit it through skein, and wait until the JobManager has
published its addresses in the key-value store. YARN's refusals (an unknown queue, a container
larger than the cluster allows) become one :class:`~pyflow.errors.DeploymentError` naming the
option to change (:func:`explain_refusal`). An application that was submitted but did not get as
far as a running JobManager is killed again.
"""

from __future__ import annotations

import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml

from pyflow.config import Configuration, options, resolve_log_dir
from pyflow.deploy.yarn.driver import JOBMANAGER_REST_KEY, JOBMANAGER_RPC_KEY
from pyflow.deploy.yarn.hadoop_conf import HadoopConfiguration
from pyflow.deploy.yarn.job_files import collect_job_files
from pyflow.deploy.yarn.session import STOP_REQUEST_KEY
from pyflow.deploy.yarn.shipping import JOB_FILES, Shipment, ShippedFile, Stager
from pyflow.deploy.yarn.skein_client import ApplicationReport, YarnApplication, YarnClient
from pyflow.deploy.yarn.spec import CONTAINER_SCRIPT, build_application_spec, memory_mib, yarn_directory
from pyflow.errors import DeploymentError

logger = logging.getLogger(__name__)

CONF_FILE = "pyflow-conf.yaml"
#: per-job mode: the JobGraph in the REST submission's job graph file format
#: (:mod:`pyflow.rest.job_graph_file`), so that the ApplicationMaster never unpickles user code
JOB_GRAPH_FILE = "job-graph.jobgraph"
#: key the client sets once it has the result of an attached per-job cluster's job
RESULT_FETCHED_KEY = "pyflow.client.result-fetched"
#: how long a deployment waits for the JobManager to publish its addresses
JOBMANAGER_START_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class YarnCluster:
    """A running pyflow cluster on YARN: its application and its JobManager's addresses."""

    application_id: str
    rest_address: str
    rpc_address: str
    tracking_url: str

    @property
    def web_interface_url(self) -> str:
        return f"http://{self.rest_address}"


@dataclass
class PreparedApplication:
    spec: dict[str, Any]
    shipment: Shipment


class YarnClusterDescriptor:
    def __init__(self, conf: Configuration):
        self.conf = conf

    # ---- deploying ------------------------------------------------------------------------------

    def deploy_session_cluster(self) -> YarnCluster:
        return self.deploy(self.prepare("session", ["--mode", "session"]))

    def deploy_job_cluster(self, job_graph: Any, *, job: Path | None, attached: bool) -> YarnCluster:
        """A per-job cluster for ``job_graph``; ``job`` is the job file (shipped with its local
        modules, so that its functions unpickle on the TaskManagers). The graph travels as a job
        graph file (:func:`~pyflow.rest.job_graph_file.encode_job_graph`, as ``POST /jobs`` takes
        it): its structure as JSON, operators and key selectors as cloudpickled blobs (the job's own
        modules by value) that only TaskManagers unpickle."""
        from pyflow.rest.job_graph_file import encode_job_graph

        graph_file = encode_job_graph(job_graph)  # before shipping: an unpicklable key selector fails here
        args = ["--mode", "per-job", "--job-graph", JOB_GRAPH_FILE] + (["--attached"] if attached else [])
        prepared = self.prepare("per-job", args, job=job, name_detail=job_graph.job_name,
                                per_application={JOB_GRAPH_FILE: graph_file})
        return self.deploy(prepared)

    def deploy_application_cluster(self, job: Path, args: Sequence[str]) -> YarnCluster:
        """An application cluster whose ApplicationMaster runs ``job``'s main() with ``args``."""
        master_args = ["--mode", "application", "--program", f"{JOB_FILES}/{job.name}", "--", *args]
        return self.deploy(self.prepare("application", master_args, job=job, name_detail=job.name))

    def prepare(self, mode: str, master_args: Sequence[str], *, job: Path | None = None, name_detail: str = "",
                per_application: dict[str, bytes] | None = None) -> PreparedApplication:
        """Ship what the containers need and build the spec; nothing is submitted yet."""
        conf = self.conf
        job_files = None
        if job is not None:
            job_files = collect_job_files(job)
            job_files.check()
        stager = Stager(conf.get(options.YARN_STAGING_DIRECTORY)
                        or HadoopConfiguration.load().default_staging_directory())
        shipment = Shipment.create(stager)
        try:
            if conf.get(options.YARN_PYTHON_ENVIRONMENT):
                shipment.ship_environment(conf.get(options.YARN_PYTHON_ENVIRONMENT))
            shipment.add(ShippedFile(CONTAINER_SCRIPT, stager.put(yarn_directory() / CONTAINER_SCRIPT)))
            shipment.ship_pyflow()
            if job_files is not None:
                shipment.ship_job_files(job_files.files)
            if conf.get(options.YARN_SHIP_FILES):
                shipment.ship_user_files(conf.get(options.YARN_SHIP_FILES))
            shipment.ship_local(CONF_FILE, yaml.safe_dump(conf.to_dict(), sort_keys=True))
            for name, content in (per_application or {}).items():
                shipment.ship_local(name, content)
            spec = build_application_spec(conf, mode=mode, files=shipment.files, master_args=master_args,
                                          name_detail=name_detail, master_only=list(per_application or {}))
        except BaseException:
            shipment.cleanup()
            raise
        return PreparedApplication(spec, shipment)

    def deploy(self, prepared: PreparedApplication) -> YarnCluster:
        """Submit a prepared application and wait until its JobManager runs."""
        try:
            with self.client() as yarn:
                app_id = self._submit(yarn, prepared)
                try:
                    return self._wait_for_jobmanager(yarn, app_id)
                except BaseException:
                    self._kill_quietly(yarn, app_id)
                    raise
        finally:
            prepared.shipment.cleanup()

    def submit(self, prepared: PreparedApplication) -> tuple[str, YarnApplication]:
        """Submit without waiting for a JobManager; returns the id and a handle once it runs
        (for applications whose JobManager runs elsewhere, as in tests of the driver)."""
        try:
            with self.client() as yarn:
                app_id = self._submit(yarn, prepared)
                try:
                    return app_id, yarn.connect(app_id, timeout_s=JOBMANAGER_START_TIMEOUT_S)
                except DeploymentError as e:
                    self._kill_quietly(yarn, app_id)
                    raise DeploymentError(explain_refusal(str(e), self.conf, yarn.queues())) from None
        finally:
            prepared.shipment.cleanup()

    def _submit(self, yarn: YarnClient, prepared: PreparedApplication) -> str:
        try:
            app_id = yarn.submit(prepared.spec)
        except DeploymentError as e:
            raise DeploymentError(explain_refusal(str(e), self.conf, [])) from None
        logger.info("Submitted YARN application %s (%s)", app_id, prepared.spec["name"])
        return app_id

    # ---- finding and ending clusters -------------------------------------------------------------

    def retrieve(self, app_id: str) -> YarnCluster:
        """The running cluster of application ``app_id``."""
        with self.client() as yarn:
            report = yarn.report(app_id)
            if report.terminal:
                raise DeploymentError(
                    f"YARN application {app_id} is not running any more ({report.state}, final status "
                    f"{report.final_status}: {report.diagnostics.strip() or 'no diagnostics'}); start a new "
                    f"session with yarn-session.")
            return self._wait_for_jobmanager(yarn, app_id)

    def report(self, app_id: str) -> ApplicationReport:
        """One report; a loop that polls holds one client instead (:meth:`client`, ``yarn=``)."""
        with self.client() as yarn:
            return yarn.report(app_id)

    def wait_for_end(self, app_id: str, timeout_s: float | None = 60.0, *, interval_s: float = 0.2,
                     yarn: YarnClient | None = None) -> ApplicationReport:
        """The application's final report, once YARN says it ended (the last one when ``timeout_s``
        passes first; ``None``: no time limit). One client serves the whole wait: ``yarn``, else
        one opened and closed here."""
        with _using(self, yarn) as yarn:
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            while True:
                report = yarn.report(app_id)
                if report.terminal or (deadline is not None and time.monotonic() >= deadline):
                    return report
                time.sleep(interval_s)

    def stop_session(self, app_id: str, timeout_s: float = 60.0, *, yarn: YarnClient | None = None
                     ) -> ApplicationReport:
        """Ask a session's master to stop (through the key-value store), wait for the end; a
        session that does not end in time is killed. Returns the final report. ``yarn``: a client
        the caller holds open (else one is opened and closed here)."""
        with _using(self, yarn) as yarn:
            report = yarn.report(app_id)
            if report.terminal:
                return report
            application = yarn.connect(app_id, timeout_s=10)
            try:
                application.kv_put(STOP_REQUEST_KEY, f"yarn-session -id {app_id} stop")
            finally:
                application.close()
            deadline = time.monotonic() + timeout_s
            while not report.terminal:
                if time.monotonic() >= deadline:
                    logger.warning("YARN session %s did not stop within %.0f s; killing it", app_id, timeout_s)
                    yarn.kill(app_id)
                    return self._final(yarn, app_id)
                time.sleep(0.2)
                report = yarn.report(app_id)
            return report

    @staticmethod
    def _final(yarn: YarnClient, app_id: str) -> ApplicationReport:
        report = yarn.report(app_id)
        for _ in range(50):
            if report.terminal:
                break
            time.sleep(0.1)
            report = yarn.report(app_id)
        return report

    def kill_cluster(self, app_id: str) -> None:
        with self.client() as yarn:
            yarn.kill(app_id)

    def confirm_result_fetched(self, app_id: str) -> None:
        """Tell an attached per-job cluster that the client has its job's result."""
        with self.client() as yarn:
            application = yarn.connect(app_id, timeout_s=10)
            try:
                application.kv_put(RESULT_FETCHED_KEY, "1")
            finally:
                application.close()

    def client(self) -> YarnClient:
        """A YARN client, after checking that the ResourceManager can be reached at all."""
        HadoopConfiguration.load().check_resource_manager_reachable()
        log_dir = resolve_log_dir(self.conf)
        log_dir.mkdir(parents=True, exist_ok=True)
        return YarnClient(principal=self.conf.get(options.KERBEROS_LOGIN_PRINCIPAL),
                          keytab=self.conf.get(options.KERBEROS_LOGIN_KEYTAB),
                          driver_log=str(log_dir / f"skein-driver-{os.getpid()}.log"))

    # ---- internals ------------------------------------------------------------------------------

    def _wait_for_jobmanager(self, yarn: YarnClient, app_id: str) -> YarnCluster:
        try:
            application = yarn.connect(app_id, timeout_s=JOBMANAGER_START_TIMEOUT_S)
        except DeploymentError as e:
            raise DeploymentError(explain_refusal(str(e), self.conf, yarn.queues())) from None
        try:
            deadline = time.monotonic() + JOBMANAGER_START_TIMEOUT_S
            while True:
                rest = application.kv_get(JOBMANAGER_REST_KEY)
                if rest is not None:
                    rpc = application.kv_get(JOBMANAGER_RPC_KEY) or ""
                    report = yarn.report(app_id)
                    return YarnCluster(app_id, rest, rpc, report.tracking_url)
                report = yarn.report(app_id)
                if report.terminal:
                    raise DeploymentError(
                        f"The JobManager of YARN application {app_id} did not start: the application ended "
                        f"{report.final_status}: {report.diagnostics.strip() or 'no diagnostics'}")
                if time.monotonic() >= deadline:
                    raise DeploymentError(
                        f"The JobManager of YARN application {app_id} did not publish its address within "
                        f"{JOBMANAGER_START_TIMEOUT_S:.0f} s; the ApplicationMaster's log says why "
                        f"(yarn logs -applicationId {app_id}).")
                time.sleep(0.2)
        finally:
            application.close()

    @staticmethod
    def _kill_quietly(yarn: YarnClient, app_id: str) -> None:
        try:
            if not yarn.report(app_id).terminal:
                yarn.kill(app_id)
                logger.info("Killed YARN application %s, which did not start", app_id)
        except DeploymentError as e:
            logger.warning("Could not kill YARN application %s: %s", app_id, e)


@contextmanager
def _using(descriptor: YarnClusterDescriptor, yarn: YarnClient | None) -> Iterator[YarnClient]:
    """``yarn`` when the caller holds a client open (it closes it), else a new one, closed after."""
    if yarn is not None:
        yield yarn
        return
    with descriptor.client() as own:
        yield own


_REQUESTED = re.compile(r"Requested resource=<memory:(\d+), vCores:(\d+)>")
_MAXIMUM = re.compile(r"maximum allowed allocation=<memory:(\d+), vCores:(\d+)>")


def explain_refusal(message: str, conf: Configuration, queues: Sequence[str]) -> str:
    """YARN's refusal of an application, as one message that names the option to change.

    >>> conf = Configuration({"taskmanager.memory.process.size": "4g"})
    >>> print(explain_refusal("Cannot submit: Invalid resource request, requested resource "
    ...     "type=[memory-mb] < 0 or greater than maximum allowed allocation. Requested "
    ...     "resource=<memory:4096, vCores:1>, maximum allowed allocation=<memory:2048, vCores:4>", conf, []))
    YARN refuses the TaskManager containers: they ask for 4096 MB and 1 vcores, but the cluster allows at most 2048 MB and 4 vcores per container (yarn.scheduler.maximum-allocation-mb and -vcores). Lower taskmanager.memory.process.size (now 4gb) below 2048 MB, or ask the cluster's administrator for larger containers.
    """
    requested, maximum = _REQUESTED.search(message), _MAXIMUM.search(message)
    if requested and maximum:
        memory, vcores = int(requested.group(1)), int(requested.group(2))
        max_memory, max_vcores = int(maximum.group(1)), int(maximum.group(2))
        jm_memory = conf.get(options.JM_PROCESS_MEMORY)
        master = (memory_mib(jm_memory), conf.get(options.YARN_APPMASTER_VCORES))
        # YARN checks the master's request first: if it is the one too large, it is the one named
        is_master = (memory, vcores) == master and (master[0] > max_memory or master[1] > max_vcores)
        which = "the JobManager (ApplicationMaster) container" if is_master else "the TaskManager containers"
        if memory > max_memory:
            option = options.JM_PROCESS_MEMORY if is_master else options.TM_PROCESS_MEMORY
            fix = f"Lower {option.key} (now {option.render(conf.get(option))}) below {max_memory} MB"
        else:
            option = options.YARN_APPMASTER_VCORES if is_master else options.YARN_CONTAINER_VCORES
            fix = (f"Lower {option.key} (now {vcores} vcores) to at most {max_vcores}"
                   + ("" if is_master else f" (it defaults to {options.NUM_TASK_SLOTS.key})"))
        verb = "asks" if is_master else "ask"
        return (f"YARN refuses {which}: {'it' if is_master else 'they'} {verb} for {memory} MB and {vcores} "
                f"vcores, but the cluster allows at most {max_memory} MB and {max_vcores} vcores per container "
                f"(yarn.scheduler.maximum-allocation-mb and -vcores). {fix}, or ask the cluster's "
                f"administrator for larger containers.")
    unknown_queue = re.search(r"unknown queue: (\S+)", message)
    if unknown_queue or "does not exist" in message and "queue" in message.lower():
        queue = unknown_queue.group(1) if unknown_queue else conf.get(options.YARN_APPLICATION_QUEUE)
        known = f"; the cluster's queues are: {', '.join(queues)}" if queues else ""
        return (f"YARN rejected the application: the queue '{queue}' does not exist{known}. Set "
                f"{options.YARN_APPLICATION_QUEUE.key} (yarn-session -qu) to one of the cluster's queues.")
    return message
