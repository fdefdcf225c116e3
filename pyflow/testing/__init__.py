"""Testing helpers: a real embedded cluster for tests, and process inspection.

``pyflow.testing`` is what pyflow's own tests use, and what users can use to test their jobs
(Flink's MiniClusterExtension)::

    from pyflow.testing import test_cluster

    def test_my_job(tmp_path):
        with test_cluster() as cluster:
            env = cluster.environment()
            ...
            env.execute()

``wait_for(predicate, timeout, what)`` polls until a condition holds (or fails naming it).

The cluster is real: TaskManagers are separate processes, data crosses real sockets. Its
heartbeats are faster than production defaults so that failures show within seconds.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from typing import Any, Callable, Iterator

import psutil

from pyflow.config import Configuration

#: settings that make a test cluster notice failures quickly and keep TaskManagers for reuse
TEST_CLUSTER_SETTINGS: dict[str, Any] = {
    "heartbeat.interval": "500 ms",
    "heartbeat.timeout": "5 s",
    "resourcemanager.taskmanager-timeout": "60 s",
    "slot.request.timeout": "60 s",
    "taskmanager.memory.process.size": "512m",
    "taskmanager.memory.network.min": "16mb",
}


def test_configuration(**overrides: Any) -> Configuration:
    values = dict(TEST_CLUSTER_SETTINGS)
    values.setdefault("env.log.dir", os.environ.get("PYFLOW_LOG_DIR") or os.path.join(tempfile.gettempdir(), "pyflow-test-logs"))
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return Configuration(values)


test_configuration.__test__ = False  # type: ignore[attr-defined]


@contextlib.contextmanager
def test_cluster(conf: Configuration | dict | None = None) -> Iterator[Any]:
    """A started LocalCluster with test settings (``conf`` overrides them); closed on exit."""
    from pyflow.deploy.local import LocalCluster

    base = test_configuration()
    if conf is not None:
        base = base.merged(conf)
    cluster = LocalCluster(base).start()
    try:
        yield cluster
    finally:
        cluster.close()


test_cluster.__test__ = False  # type: ignore[attr-defined]


def child_processes(pid: int | None = None) -> list[psutil.Process]:
    """Live descendant processes of ``pid`` (default: this process)."""
    try:
        return [p for p in psutil.Process(pid or os.getpid()).children(recursive=True) if p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:
        return []


def task_manager_pids(cluster) -> dict[str, int]:
    """Resource id -> pid of every TaskManager that ever registered with the cluster."""
    return {rid: reg.pid for rid, reg in cluster.jobmanager.rm.history.items()}


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "the condition", *,
             interval: float = 0.1, context: Callable[[], str] | None = None) -> Any:
    """``predicate()``'s first true value, polled every ``interval`` seconds; AssertionError after
    ``timeout`` seconds, naming ``what`` (and ``context()``, e.g. the state that was last seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"; {context()}" if context is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
        time.sleep(interval)
