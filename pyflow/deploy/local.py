"""The embedded local cluster: a JobManager in this process, TaskManagers as child processes.

``LocalResourceDriver`` starts a TaskManager process (``python -m pyflow.runtime.taskmanager``)
whenever the ResourceManager is short of slots and stops idle ones after
``resourcemanager.taskmanager-timeout``. Its processes die with the cluster: ``close()`` stops
them by pid, the kernel sends them SIGTERM if this process dies (they ask for it with
PR_SET_PDEATHSIG on Linux, ``--die-with-parent``), and
a TaskManager that loses its JobManager stops by itself after ``heartbeat.timeout``
(``--exit-on-jobmanager-loss``; a standalone TaskManager registers again instead).
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from pyflow.config import Configuration, options, resolve_log_dir
from pyflow.runtime.jobmanager.jobmanager import JobManager

logger = logging.getLogger(__name__)

def _pythonpath() -> str:
    """The child must import this very pyflow, and the user's modules next to the job."""
    root = str(Path(__file__).resolve().parents[2])
    parts = [root, os.getcwd()] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    seen: list[str] = []
    for p in parts:
        if p not in seen:
            seen.append(p)
    return os.pathsep.join(seen)


class LocalResourceDriver:
    can_start_workers = True

    def __init__(self, conf: Configuration):
        self.conf = conf
        self.python = conf.get(options.PYTHON_EXECUTABLE) or sys.executable
        self.processes: dict[str, subprocess.Popen] = {}
        self.stopping: set[str] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._on_terminated: Callable[[str, str], None] | None = None
        self.jobmanager_address = ""

    def start(self, jobmanager_address: str, on_worker_terminated: Callable[[str, str], None]) -> None:
        self.jobmanager_address = jobmanager_address
        self._on_terminated = on_worker_terminated
        threading.Thread(target=self._monitor, name="local-driver-monitor", daemon=True).start()

    def start_task_managers(self, count: int) -> list[str]:
        started = []
        for _ in range(count):
            resource_id = f"tm-{uuid.uuid4().hex[:8]}"
            dynamic = dict(self.conf.to_dict())
            dynamic[options.TM_RESOURCE_ID.key] = resource_id
            cmd = [self.python, "-m", "pyflow.runtime.taskmanager", "--jobmanager", self.jobmanager_address,
                   "--die-with-parent", "--exit-on-jobmanager-loss"]
            for key, value in dynamic.items():
                cmd += ["-D", f"{key}={value}"]
            env = dict(os.environ, PYTHONPATH=_pythonpath())
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
            with self._lock:
                self.processes[resource_id] = proc
            logger.info("Started TaskManager %s (pid %d)", resource_id, proc.pid)
            started.append(resource_id)
        return started

    def stop_task_manager(self, resource_id: str) -> None:
        with self._lock:
            proc = self.processes.pop(resource_id, None)
            self.stopping.add(resource_id)
        if proc is not None:
            _stop(proc)

    def pids(self) -> dict[str, int]:
        with self._lock:
            return {rid: p.pid for rid, p in self.processes.items()}

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            procs = list(self.processes.values())
            self.processes.clear()
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def _monitor(self) -> None:
        while not self._closed.wait(0.2):
            with self._lock:
                ended = [(rid, p) for rid, p in self.processes.items() if p.poll() is not None]
                for rid, _ in ended:
                    del self.processes[rid]
            for rid, p in ended:
                if rid in self.stopping or self._on_terminated is None:
                    continue
                code = p.returncode
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                log = Path(resolve_log_dir(self.conf)) / f"pyflow-taskexecutor-{rid}.log"
                diagnostics = f"TaskManager {rid} (pid {p.pid}) {how} (its log: {log}; its errors also went to stderr)"
                logger.warning("%s", diagnostics)
                self._on_terminated(rid, diagnostics)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class LocalCluster:
    """An embedded cluster (Flink's MiniCluster) with real TaskManager processes.

    >>> with LocalCluster() as cluster:            # doctest: +SKIP
    ...     env = cluster.environment()
    ...     env.from_collection([1, 2, 3]).map(lambda x: x * 2).print()
    ...     env.execute("doubles")
    """

    def __init__(self, conf: Configuration | None = None):
        conf = (conf or Configuration.load()).copy()
        # an embedded cluster never takes a fixed port: several may run side by side
        conf.set(options.JM_RPC_PORT, 0)
        self.conf = conf
        self.driver = LocalResourceDriver(conf)
        self.jobmanager = JobManager(conf, self.driver)
        self._started = False

    def start(self) -> "LocalCluster":
        if not self._started:
            from pyflow.runtime.process_logging import setup_process_logging

            setup_process_logging("client", str(os.getpid()), self.conf)
            self.jobmanager.start()
            self._started = True
        return self

    @property
    def dispatcher(self):
        return self.jobmanager.dispatcher

    @property
    def address(self) -> str:
        return self.jobmanager.address

    def environment(self, conf: Configuration | None = None):
        """A StreamExecutionEnvironment whose jobs run on this cluster."""
        from pyflow.api.environment import StreamExecutionEnvironment

        env = StreamExecutionEnvironment(conf or self.conf.copy())
        env._cluster = self.start()
        return env

    def task_manager_pids(self) -> dict[str, int]:
        return self.driver.pids()

    def close(self) -> None:
        if self._started:
            self.jobmanager.close()
            self._started = False

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


_shared: dict[tuple, LocalCluster] = {}
_shared_lock = threading.Lock()


#: option prefixes that belong to a job, not to the cluster that runs it
_JOB_LEVEL = ("parallelism.", "pipeline.", "execution.")


def shared_local_cluster(conf: Configuration) -> LocalCluster:
    """The process's embedded cluster for this cluster configuration (created on first use,
    closed at exit); jobs that differ only in job-level options share it."""
    cluster_conf = {k: v for k, v in conf.to_dict().items() if not k.startswith(_JOB_LEVEL)}
    key = tuple(sorted(cluster_conf.items()))
    with _shared_lock:
        cluster = _shared.get(key)
        if cluster is None:
            cluster = _shared[key] = LocalCluster(Configuration(cluster_conf)).start()
        return cluster


def _close_shared() -> None:
    with _shared_lock:
        clusters = list(_shared.values())
        _shared.clear()
    for c in clusters:
        try:
            c.close()
        except Exception:  # noqa: BLE001 - at exit, nothing is left to tell
            pass


# Close embedded clusters before the interpreter refuses new thread-pool work: concurrent.futures
# stops accepting submissions in threading's exit hooks, which run before atexit handlers and
# newest first - so ours, registered later, runs before that (gRPC's server pool keeps working).
try:
    threading._register_atexit(_close_shared)  # type: ignore[attr-defined]
except (AttributeError, RuntimeError):
    atexit.register(_close_shared)
