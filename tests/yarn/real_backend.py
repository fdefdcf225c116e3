"""A real YARN cluster as the ``backend`` of the YARN scenario tests (``pytest -m yarn``).

It is found the way skein finds it: ``yarn`` on PATH and ``HADOOP_CONF_DIR``. The cluster's nodes
must be able to run pyflow: ``PYFLOW_TEST_YARN_PYTHON`` names their Python (default ``python3``,
which needs pyflow's dependencies installed), or ``PYFLOW_TEST_YARN_ENV_ARCHIVE`` a packed
environment (venv-pack / conda-pack) to ship. ``PYFLOW_TEST_YARN_STAGING`` overrides
``yarn.staging-directory`` (default: ``<fs.defaultFS>/user/<user>/.pyflow``). Against
docker-compose.yml's cluster: ``HADOOP_CONF_DIR=yarn/hadoop-conf pytest -m yarn`` with a Hadoop
client on PATH (README.md, "YARN").

It offers what the double offers, except fault injection; the tests that need it say so when
they skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.yarn_double.backend import wait_for

REPO = Path(__file__).resolve().parents[2]


def missing_reason() -> str | None:
    """Why there is no real YARN cluster to test against, or None."""
    if shutil.which("yarn") is None:
        return "no real YARN: the `yarn` command is not on PATH (install a Hadoop client; see README.md, YARN)"
    if not os.environ.get("HADOOP_CONF_DIR"):
        return "no real YARN: HADOOP_CONF_DIR is not set (e.g. HADOOP_CONF_DIR=yarn/hadoop-conf for docker compose)"
    from pyflow.deploy.yarn.hadoop_conf import HadoopConfiguration
    from pyflow.errors import DeploymentError

    try:
        HadoopConfiguration.load().check_resource_manager_reachable(timeout_s=3)
    except DeploymentError as e:
        return f"no real YARN: {e}"
    return None


class RealYarnBackend:
    is_double = False
    name = "the YARN cluster of HADOOP_CONF_DIR"

    def __init__(self, root: Path):
        from pyflow.deploy.yarn.hadoop_conf import HadoopConfiguration

        self.root = root
        self.hadoop = HadoopConfiguration.load()
        self.max_allocation_mb = int(self.hadoop.get("yarn.scheduler.maximum-allocation-mb") or 8192)
        self.queues = ("default",)

    def close(self) -> None:
        pass

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env.update(PYTHONPATH=os.pathsep.join(paths))
        env.update(extra)
        return env

    def settings(self) -> dict[str, str]:
        settings = {"jobmanager.memory.process.size": "768m", "taskmanager.memory.process.size": "768m",
                    "heartbeat.interval": "1 s", "heartbeat.timeout": "10 s",
                    "python.executable": os.environ.get("PYFLOW_TEST_YARN_PYTHON", "python3")}
        if os.environ.get("PYFLOW_TEST_YARN_ENV_ARCHIVE"):
            settings["yarn.python-environment"] = os.environ["PYFLOW_TEST_YARN_ENV_ARCHIVE"]
        if os.environ.get("PYFLOW_TEST_YARN_STAGING"):
            settings["yarn.staging-directory"] = os.environ["PYFLOW_TEST_YARN_STAGING"]
        return settings

    def _client(self):
        from pyflow.deploy.yarn.skein_client import YarnClient

        return YarnClient()

    def application(self, app_id: str) -> dict:
        with self._client() as yarn:
            r = yarn.report(app_id)
        return {"id": r.id, "name": r.name, "queue": r.queue, "state": r.state, "final_status": r.final_status,
                "diagnostics": r.diagnostics, "tracking_url": r.tracking_url}

    def containers(self, application: str, service: str = "taskmanager") -> list[dict]:
        with self._client() as yarn:
            app = yarn.connect(application, timeout_s=30)
            try:
                found = app.containers(service)
            finally:
                app.close()
        return [{"service_name": c.service, "instance": int(c.id.rpartition("_")[2]), "state": c.state,
                 "yarn_container_id": c.yarn_container_id, "exit_message": c.exit_message,
                 "alive": c.state == "RUNNING"} for c in found]

    def kill_container_process(self, application: str, container_id: str) -> None:
        """Kill a container as the NodeManager does when asked (not through skein)."""
        for c in self.containers(application):
            if f"{c['service_name']}_{c['instance']}" == container_id and c["state"] == "RUNNING":
                subprocess.run(["yarn", "container", "-signal", c["yarn_container_id"], "FORCEFUL_SHUTDOWN"],
                               check=True, capture_output=True, timeout=120)
                return
        raise AssertionError(f"no running container {container_id} in {application}")

    def wait_for(self, predicate, timeout_s: float = 120.0, what: str = "the condition"):
        return wait_for(predicate, timeout_s, what)
