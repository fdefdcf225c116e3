"""The YARN pipeline executors: ``execution.target`` yarn-per-job, yarn-session, yarn-application
(registered by import path in :data:`pyflow.deploy.executors.EXECUTORS`).

- :class:`YarnPerJobExecutor`: deploys a per-job cluster for the job graph (the job file and its
  local modules are shipped along) and returns a :class:`YarnJobClient`, which talks to the
  job's JobManager over REST. Attached, the cluster keeps its JobManager until the client has
  fetched the result (the client confirms in the key-value store), then ends with the job.
- :class:`YarnSessionExecutor`: submits to a running session (``yarn.application.id``, else the
  one recorded by ``yarn-session``) over its REST API.
- ``yarn-application`` runs the program's main() inside the ApplicationMaster, so the client
  does not run the program at all: ``pyflow run -t yarn-application`` calls
  :func:`run_application`; :class:`YarnApplicationExecutor` only explains that.

Every deployment prints one line naming the YARN application and its web interfaces.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from pyflow.api.job_client import JobExecutionResult, RemoteJobClient
from pyflow.config import Configuration, options
from pyflow.deploy.executors import PipelineExecutor, job_files, local_address_towards
from pyflow.deploy.yarn.cluster_descriptor import YarnCluster, YarnClusterDescriptor
from pyflow.deploy.yarn.hadoop_conf import HadoopConfiguration
from pyflow.deploy.yarn.job_files import collect_job_files
from pyflow.deploy.yarn.session import session_application_id
from pyflow.errors import ConfigurationError, DeploymentError, JobExecutionError

logger = logging.getLogger(__name__)


def announce(cluster: YarnCluster, kind: str, echo: Callable[[str], None] | None = None) -> None:
    (echo or print)(f"Submitted YARN application {cluster.application_id} ({kind}); JobManager web interface: "
                    f"{cluster.web_interface_url}, YARN tracking URL: {cluster.tracking_url or '-'}")


def _main_file() -> Path | None:
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return Path(main) if main and main.endswith(".py") else None


class _YarnExecutor(PipelineExecutor):
    def collect_address(self, conf: Configuration) -> str:
        """This machine's address on the route to the YARN ResourceManager (the cluster's network)."""
        host, port = HadoopConfiguration.load().resource_manager_addresses()[0]
        return local_address_towards("127.0.0.1" if host in ("", "0.0.0.0") else host, port)


class YarnPerJobExecutor(_YarnExecutor):
    def execute(self, job_graph, conf: Configuration) -> "YarnJobClient":
        from pyflow.rest.client import RestClusterClient

        descriptor = YarnClusterDescriptor(conf)
        attached = conf.get(options.ATTACHED)
        cluster = descriptor.deploy_job_cluster(job_graph, job=_main_file(), attached=attached)
        announce(cluster, "per-job cluster")
        return YarnJobClient(RestClusterClient(cluster.rest_address), job_graph.job_id, descriptor, cluster,
                             confirm=attached)


class YarnSessionExecutor(_YarnExecutor):
    def execute(self, job_graph, conf: Configuration) -> RemoteJobClient:
        from pyflow.rest.client import RestClusterClient

        main = _main_file()
        if main is not None:  # the session's TaskManagers run the job's imports too
            collect_job_files(main).check()
        cluster = YarnClusterDescriptor(conf).retrieve(session_application_id(conf))
        rest = RestClusterClient(cluster.rest_address)
        job_id = rest.submit_job(job_graph, artifacts=job_files())
        logger.info("Submitted job %s to YARN session %s", job_id, cluster.application_id)
        return RemoteJobClient(rest, job_id)


class YarnApplicationExecutor(_YarnExecutor):
    def execute(self, job_graph, conf: Configuration):
        raise ConfigurationError(
            "execution.target yarn-application runs the program's main() inside the YARN ApplicationMaster, so "
            "a running program cannot submit its job there; submit the job file with `pyflow run -t "
            "yarn-application job.py`, or use -t yarn-per-job.")


class YarnJobClient(RemoteJobClient):
    """The job of a per-job cluster: REST to its JobManager, and YARN's report for how its
    application ended when the JobManager cannot be asked any more."""

    def __init__(self, rest_client, job_id: str, descriptor: YarnClusterDescriptor, cluster: YarnCluster,
                 *, confirm: bool):
        super().__init__(rest_client, job_id)
        self.descriptor = descriptor
        self.cluster = cluster
        self.application_id = cluster.application_id
        self._confirm = confirm

    def get_job_execution_result(self, timeout: float | None = None) -> JobExecutionResult:
        """The job's result. Attached, the cluster is told the result was fetched once there is
        one, or a terminal error (the job failed or was cancelled, or its JobManager is gone) -
        not on a timeout, after which a later call can still fetch it."""
        from pyflow.rest.client import RestClientError

        try:
            result = super().get_job_execution_result(timeout)
        except JobExecutionError:  # the job failed or was cancelled: that is its result
            self._confirm_fetched()
            raise
        except RestClientError as e:
            report = self.descriptor.wait_for_end(self.application_id, timeout_s=30)
            self._confirm_fetched()  # nothing more to fetch; the master need not wait for this client
            if report.final_status == "SUCCEEDED":
                raise DeploymentError(
                    f"Job {self.job_id} finished, but its result could not be fetched from its JobManager "
                    f"({e.message})") from None
            raise JobExecutionError(
                f"Job {self.job_id} on YARN application {self.application_id} ended {report.final_status}.",
                self.job_id, report.diagnostics) from None
        self._confirm_fetched()
        return result

    def _confirm_fetched(self) -> None:
        if self._confirm:
            self._confirm = False
            try:
                self.descriptor.confirm_result_fetched(self.application_id)
            except DeploymentError:
                pass  # the cluster ended already


def run_application(job: Path, args: Sequence[str], conf: Configuration, *, detached: bool,
                    echo: Callable[[str], None] = print) -> int:
    """``pyflow run -t yarn-application``: deploy an application cluster that runs ``job``; attached,
    wait until it ends and say how. Returns the exit code."""
    descriptor = YarnClusterDescriptor(conf)
    cluster = descriptor.deploy_application_cluster(job, args)
    announce(cluster, "application cluster", echo)
    if detached:
        return 0
    try:  # one YARN client (and skein driver) for the whole wait
        report = descriptor.wait_for_end(cluster.application_id, timeout_s=None, interval_s=0.5)
    except KeyboardInterrupt:
        echo(f"Interrupted; YARN application {cluster.application_id} keeps running "
             f"(yarn application -kill {cluster.application_id} stops it).")
        return 130
    if report.final_status != "SUCCEEDED":
        raise JobExecutionError(f"The application {job.name} on YARN ({cluster.application_id}) ended "
                                f"{report.final_status}.", None, report.diagnostics.strip())
    echo(f"YARN application {cluster.application_id} ended SUCCEEDED: {report.diagnostics.strip()}")
    return 0

