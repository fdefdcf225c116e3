"""Pipeline executors: where ``execute()`` sends a job, chosen by ``execution.target`` (Flink's
PipelineExecutor and its factories).

The registry maps a target to the import path of its executor class, imported only when a job
is submitted to that target; a deployment adds its targets with one entry each (the YARN targets
live in ``pyflow.deploy.yarn``). An executor is small::

    class MyExecutor(PipelineExecutor):
        def execute(self, job_graph, conf) -> JobClient: ...

- ``local``: the process's shared embedded cluster (``pyflow.deploy.local``); the job's
  JobClient talks to its Dispatcher directly.
- ``remote``: a running session cluster, over its REST API at ``rest.address``:``rest.port``
  (``pyflow run -m host:port`` sets both). The job graph is uploaded with ``POST /jobs``, along
  with the job's Python file; the JobClient polls the REST API.

>>> executor_for("remote")                                     # doctest: +ELLIPSIS
<pyflow.deploy.executors.RemoteExecutor object at ...>
>>> executor_for("yarn-perjob")
Traceback (most recent call last):
...
pyflow.errors.ConfigurationError: Unknown target 'yarn-perjob'; choose one of: local, remote, yarn-per-job, yarn-session, yarn-application
"""

from __future__ import annotations

import importlib
import socket
import sys
from typing import TYPE_CHECKING

from pyflow.config import Configuration, options
from pyflow.errors import ConfigurationError, NotYetSupportedError

if TYPE_CHECKING:  # pragma: no cover
    from pyflow.api.job_client import JobClient
    from pyflow.graph.job_graph import JobGraph

#: execution.target -> "module:Class" of its executor, imported when first used
EXECUTORS: dict[str, str] = {
    "local": "pyflow.deploy.executors:LocalExecutor",
    "remote": "pyflow.deploy.executors:RemoteExecutor",
    "yarn-per-job": "pyflow.deploy.yarn.executors:YarnPerJobExecutor",
    "yarn-session": "pyflow.deploy.yarn.executors:YarnSessionExecutor",
    "yarn-application": "pyflow.deploy.yarn.executors:YarnApplicationExecutor",
}


class PipelineExecutor:
    """Submits a job graph to a target and returns its JobClient (Flink's PipelineExecutor)."""

    def execute(self, job_graph: JobGraph, conf: Configuration) -> JobClient:
        raise NotImplementedError

    def collect_address(self, conf: Configuration) -> str:
        """The address of this machine that the target's TaskManagers can connect to, for
        ``execute_and_collect()``'s result socket."""
        return "127.0.0.1"


def targets() -> list[str]:
    """Every target of ``execution.target``: those with an executor first, in registry order."""
    declared = list(options.TARGET.choices)
    return list(EXECUTORS) + [t for t in declared if t not in EXECUTORS]


def executor_for(target: str) -> PipelineExecutor:
    """The executor of ``target``; ConfigurationError for an unknown target, NotYetSupportedError
    for a declared one whose deployment is not installed in this release."""
    path = EXECUTORS.get(target)
    if path is None:
        if target in options.TARGET.choices:
            raise NotYetSupportedError(
                f"Execution target '{target}' is not available in this release; available: "
                f"{', '.join(EXECUTORS)}. Run on a session cluster with -t remote -m host:port")
        raise ConfigurationError(f"Unknown target '{target}'; choose one of: {', '.join(targets())}")
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigurationError(f"Execution target '{target}' cannot be used here: its executor "
                                 f"({module_name}) does not import ({e}); install what it needs, or choose "
                                 "another target") from e
    return getattr(module, class_name)()


class LocalExecutor(PipelineExecutor):
    """Runs jobs on this process's shared embedded cluster (started on first use)."""

    def execute(self, job_graph: JobGraph, conf: Configuration) -> JobClient:
        from pyflow.deploy.local import shared_local_cluster

        return submit_to_cluster(shared_local_cluster(conf), job_graph)


def submit_to_cluster(cluster, job_graph: JobGraph) -> JobClient:
    """Submit to an embedded cluster in this process (a LocalCluster)."""
    from pyflow.api.job_client import LocalJobClient

    job_id = cluster.dispatcher.submit_job(job_graph)
    return LocalJobClient(cluster.dispatcher, job_id, cluster.jobmanager.rest_address)


class RemoteExecutor(PipelineExecutor):
    """Submits jobs to a session cluster over REST (Flink's RemoteExecutor)."""

    def execute(self, job_graph: JobGraph, conf: Configuration) -> JobClient:
        from pyflow.api.job_client import RemoteJobClient
        from pyflow.rest.client import RestClusterClient

        client = RestClusterClient.from_config(conf)
        job_id = client.submit_job(job_graph, artifacts=job_files())
        return RemoteJobClient(client, job_id)

    def collect_address(self, conf: Configuration) -> str:
        """The local address this machine uses to reach the JobManager's REST endpoint (the
        TaskManagers are assumed to reach this machine on the same network)."""
        return local_address_towards(conf.get(options.REST_ADDRESS), conf.get(options.REST_PORT))


def local_address_towards(host: str, port: int) -> str:
    """This machine's address on the route to ``host`` (``127.0.0.1`` towards itself); the
    hostname's address when there is no route."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, port))  # UDP: picks the route, sends nothing
            return probe.getsockname()[0]
    except OSError:
        return socket.gethostbyname(socket.gethostname())


def job_files() -> list[str]:
    """The job's own Python file (``__main__``, unless that is a library's, as under pytest),
    uploaded with the job; its modules travel inside the operators (pickled by value), so the
    file is kept with the job for reference only."""
    from pyflow.errors import _is_user_frame

    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return [main_file] if main_file and _is_user_frame(main_file) else []
