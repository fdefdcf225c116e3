"""Starting and inspecting the fake YARN cluster from tests: the ``backend`` of the YARN scenario
tests (tests/integration/test_yarn.py) in CI; tests/yarn/real_backend.py is the same for a real
cluster.

>>> with FakeYarnCluster(tmp_path) as yarn:                        # doctest: +SKIP
...     subprocess.run(["pyflow", "run", "-t", "yarn-per-job", "job.py"], env=yarn.env())

``FakeYarnCluster`` writes a Hadoop configuration folder (core-site.xml with a ``file://``
default file system, yarn-site.xml, capacity-scheduler.xml), starts ``fake_yarn.py`` with it,
and adds ``yarn.resourcemanager.address`` once the daemon listens. ``env()`` is the environment
for client processes (HADOOP_CONF_DIR, and the fake ``skein`` first on PYTHONPATH);
:func:`use_fake_skein` does the same for the test process itself. ``close()`` stops the daemon by
its pid, which stops every container, and then checks that no process of the fake cluster is
left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil

from pyflow import testing

HERE = Path(__file__).resolve().parent
SITE = HERE / "site"
DAEMON = HERE / "fake_yarn.py"
REPO = HERE.parents[1]


def use_fake_skein() -> None:
    """Make ``import skein`` in this process return the test double (idempotent).

    A real skein imported earlier becomes the double's ``_real_skein`` (skein's protobuf
    definitions can be registered only once per process)."""
    current = sys.modules.get("skein")
    if current is not None and getattr(current, "IS_TEST_DOUBLE", False):
        return
    if current is not None:
        for name in [n for n in sys.modules if n == "skein" or n.startswith("skein.")]:
            sys.modules["_real_skein" + name[len("skein"):]] = sys.modules.pop(name)
    if str(SITE) not in sys.path:
        sys.path.insert(0, str(SITE))
    import skein  # noqa: F401 - the double, from SITE

    assert getattr(sys.modules["skein"], "IS_TEST_DOUBLE", False), "the skein test double did not load"


def _site_xml(properties: dict[str, object]) -> str:
    rows = "".join(f"  <property><name>{k}</name><value>{v}</value></property>\n" for k, v in properties.items())
    return f'<?xml version="1.0"?>\n<configuration>\n{rows}</configuration>\n'


class FakeYarnCluster:
    """One fake YARN cluster (one ResourceManager, one node) for the tests of a module."""

    is_double = True
    name = "the fake YARN cluster (tests/yarn_double)"

    def __init__(self, root: Path, *, max_allocation_mb: int = 2048, max_allocation_vcores: int = 4,
                 min_allocation_mb: int = 64, node_memory_mb: int = 16384, node_vcores: int = 32,
                 queues: tuple[str, ...] = ("default", "batch")):
        self.root = Path(root)
        self.conf_dir = self.root / "hadoop-conf"
        self.dfs = self.root / "dfs"
        self.yarn_site = {
            "yarn.scheduler.maximum-allocation-mb": max_allocation_mb,
            "yarn.scheduler.maximum-allocation-vcores": max_allocation_vcores,
            "yarn.scheduler.minimum-allocation-mb": min_allocation_mb,
            "yarn.nodemanager.resource.memory-mb": node_memory_mb,
            "yarn.nodemanager.resource.cpu-vcores": node_vcores,
        }
        self.queues = queues
        self.process: subprocess.Popen | None = None
        self.address = ""
        self._seen_pids: set[int] = set()

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "FakeYarnCluster":
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.dfs.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "core-site.xml").write_text(_site_xml({"fs.defaultFS": f"file://{self.dfs}"}))
        (self.conf_dir / "capacity-scheduler.xml").write_text(
            _site_xml({"yarn.scheduler.capacity.root.queues": ",".join(self.queues)}))
        (self.conf_dir / "yarn-site.xml").write_text(_site_xml(self.yarn_site))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        log = (self.root / "fake-yarn.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(DAEMON), "--conf-dir", str(self.conf_dir), "--root", str(self.root)],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env, text=True)
        log.close()
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"the fake YARN daemon did not start; see {self.root / 'fake-yarn.log'}")
        self.address = f"127.0.0.1:{int(line.split()[1])}"
        (self.conf_dir / "yarn-site.xml").write_text(
            _site_xml({**self.yarn_site, "yarn.resourcemanager.address": self.address}))
        return self

    def close(self) -> None:
        """Stop the daemon (which stops every container) and check that nothing is left."""
        if self.process is None:
            return
        try:
            self._seen_pids.update(c["pid"] for c in self.containers() if c.get("pid"))
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process.stdout.close()
        self.process = None
        left = [pid for pid in self._seen_pids if _alive(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes of the fake YARN cluster were left running: {left}"

    def __enter__(self) -> "FakeYarnCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- for clients -----------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a client process: HADOOP_CONF_DIR and the fake skein on PYTHONPATH."""
        env = dict(os.environ)
        paths = [str(SITE), str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env.update(HADOOP_CONF_DIR=str(self.conf_dir), PYTHONPATH=os.pathsep.join(paths))
        env.update(extra)
        return env

    def staging_directory(self) -> str:
        return f"file://{self.dfs}/user/{os.environ.get('USER') or 'pyflow'}/.pyflow"

    @property
    def max_allocation_mb(self) -> int:
        return int(self.yarn_site["yarn.scheduler.maximum-allocation-mb"])

    def settings(self) -> dict[str, str]:
        """Options every client command gets on this cluster (small containers, this Python)."""
        return {"yarn.staging-directory": self.staging_directory(), "python.executable": sys.executable,
                "jobmanager.memory.process.size": "256m", "taskmanager.memory.process.size": "256m",
                "heartbeat.interval": "500 ms", "heartbeat.timeout": "5 s"}

    def application(self, app_id: str) -> dict:
        """YARN's report of one application: state, final_status, diagnostics, user, queue, ..."""
        for report in self.applications():
            if report["id"] == app_id:
                return report
        raise AssertionError(f"no application {app_id}")

    # ---- inspection and faults ---------------------------------------------------------------------

    def _test_call(self, method: str, params: dict | None = None):
        request = urllib.request.Request(f"http://{self.address}/_test/{method}",
                                         data=json.dumps(params or {}).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = json.loads(answer.read())
        if "error" in body:
            raise RuntimeError(body["error"]["message"])
        return body["result"]

    def containers(self, application: str | None = None, service: str | None = None) -> list[dict]:
        """Every container (the masters' too) with its state, pid and exit message."""
        found = self._test_call("containers")
        self._seen_pids.update(c["pid"] for c in found if c.get("pid"))
        return [c for c in found if (application is None or c["application"] == application)
                and (service is None or c["service_name"] == service)]

    def applications(self) -> list[dict]:
        return self._test_call("applications")

    def uploads(self) -> list[dict]:
        """Local files that skein uploaded at submission (not on the default file system)."""
        return self._test_call("uploads")

    def fail_next_containers(self, count: int, exit_code: int = 1, message: str = "injected container failure") -> None:
        """The next ``count`` service containers fail at launch (like a broken node)."""
        self._test_call("inject", {"fail_launches": count, "exit_code": exit_code, "message": message})

    def kill_container_process(self, application: str, container_id: str, sig: int = signal.SIGKILL) -> int:
        """Kill a container's process as the kernel or an operator would (not through skein)."""
        for c in self.containers(application):
            if f"{c['service_name']}_{c['instance']}" == container_id and c["alive"]:
                os.killpg(c["pid"], sig)
                return c["pid"]
        raise AssertionError(f"no running container {container_id} in {application}")

    def wait_for(self, predicate, timeout_s: float = 30.0, what: str = "the condition"):
        return wait_for(predicate, timeout_s, what, lambda: f"containers: {self.containers()}")


def wait_for(predicate, timeout_s: float = 30.0, what: str = "the condition", context=lambda: ""):
    """:func:`pyflow.testing.wait_for` with the double's ``timeout_s`` name and a context line."""
    return testing.wait_for(predicate, timeout_s, what, context=context)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
