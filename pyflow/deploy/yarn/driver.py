"""The YARN ResourceDriver: TaskManagers are containers of the application's ``taskmanager``
service (Flink's YarnResourceManagerDriver).

The JobManager runs inside the YARN ApplicationMaster. Its ResourceManager calls this driver:

* ``start``: publishes the JobManager's RPC address in skein's key-value store, where
  TaskManager containers read it (:mod:`pyflow.deploy.yarn.taskmanager`); starts watching the
  containers.
* ``start_task_managers(n)``: ``add_container`` n times. The service starts with zero instances;
  each container gets the memory of ``taskmanager.memory.process.size`` and the vcores of
  ``yarn.containers.vcores`` from the application spec (:mod:`pyflow.deploy.yarn.spec`). The
  resource id of a TaskManager is skein's container id, ``taskmanager_<n>``.
* ``stop_task_manager(id)``: ``kill_container``, for idle TaskManagers
  (``resourcemanager.taskmanager-timeout``) and lost ones.

A container that ends without being released is a failure. Every failure counts against
``yarn.maximum-failed-containers``. Within that limit, a container that died before its
TaskManager registered is replaced at once (the jobs waiting for it never notice); one whose
TaskManager had registered is reported to the ResourceManager (``on_worker_terminated``), which
fails the jobs that had slots on it and asks for new TaskManagers as jobs need them. The failure
beyond the limit is reported with the diagnostics of the failed containers (YARN's exit
messages), which fails the jobs waiting for slots, and every later request for TaskManagers fails
with the same text. A container that exits 0 was shut down by the JobManager: not a failure.

Whether a TaskManager registered is asked from the ResourceManager through
:meth:`YarnResourceDriver.set_registration_probe`; without a probe every failure is treated as a
failure before registration.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from pyflow.config import Configuration, options
from pyflow.deploy.yarn.skein_client import FINISHED_STATES, ContainerInfo, YarnApplication
from pyflow.deploy.yarn.spec import TASKMANAGER_SERVICE
from pyflow.errors import DeploymentError, ResourceError

logger = logging.getLogger(__name__)

#: keys in skein's key-value store
JOBMANAGER_RPC_KEY = "pyflow.jobmanager.rpc-address"
JOBMANAGER_REST_KEY = "pyflow.jobmanager.rest-address"

_DIAGNOSTICS_CHARS = 1500


class YarnResourceDriver:
    can_start_workers = True

    def __init__(self, conf: Configuration, application: YarnApplication, *,
                 service: str = TASKMANAGER_SERVICE, poll_interval_s: float = 0.5):
        self.application = application
        self.service = service
        self.poll_interval_s = poll_interval_s
        self.max_failed_containers = conf.get(options.YARN_MAXIMUM_FAILED_CONTAINERS)
        self._lock = threading.Lock()
        self._live: set[str] = set()  # containers requested or running, as far as we know
        self._released: set[str] = set()  # containers we stopped: their end is no failure
        self._failures: list[str] = []  # diagnostics of every failed container
        self._exhausted: str | None = None
        self._registered: Callable[[str], bool] = lambda resource_id: False
        self._on_terminated: Callable[[str, str], None] | None = None
        self._closed = threading.Event()
        self._monitor_thread: threading.Thread | None = None

    def set_registration_probe(self, probe: Callable[[str], bool]) -> None:
        """``probe(resource_id)``: did that TaskManager ever register with the ResourceManager?"""
        self._registered = probe

    # ---- ResourceDriver ---------------------------------------------------------------------

    def start(self, jobmanager_address: str, on_worker_terminated: Callable[[str, str], None]) -> None:
        self._on_terminated = on_worker_terminated
        self.application.kv_put(JOBMANAGER_RPC_KEY, jobmanager_address)
        logger.info("Published JobManager address %s for the TaskManagers of %s", jobmanager_address,
                    self.application.id)
        self._monitor_thread = threading.Thread(target=self._monitor, name="yarn-driver-monitor", daemon=True)
        self._monitor_thread.start()

    def start_task_managers(self, count: int) -> list[str]:
        with self._lock:
            if self._exhausted is not None:
                raise ResourceError(self._exhausted)
        started = []
        for _ in range(count):
            started.append(self._add_container().id)
        return started

    def stop_task_manager(self, resource_id: str) -> None:
        with self._lock:
            self._released.add(resource_id)
            live = resource_id in self._live
        if live:
            try:
                self.application.kill_container(resource_id)
                logger.info("Released TaskManager container %s", resource_id)
            except DeploymentError as e:
                logger.warning("Releasing TaskManager container %s failed: %s", resource_id, e)

    def close(self) -> None:
        self._closed.set()
        if self._monitor_thread is not None:
            self._monitor_thread.join(5)
        with self._lock:
            live = sorted(self._live)
            self._released.update(live)
            self._live.clear()
        for container_id in live:
            try:
                self.application.kill_container(container_id)
            except DeploymentError as e:
                logger.info("Releasing TaskManager container %s at close failed: %s", container_id, e)

    # ---- queries ------------------------------------------------------------------------------

    @property
    def failed_containers(self) -> list[str]:
        with self._lock:
            return list(self._failures)

    def live_containers(self) -> set[str]:
        with self._lock:
            return set(self._live)

    # ---- internals ----------------------------------------------------------------------------

    def _add_container(self) -> ContainerInfo:
        container = self.application.add_container(self.service)
        with self._lock:
            self._live.add(container.id)
        logger.info("Requested TaskManager container %s from YARN", container.id)
        return container

    def _monitor(self) -> None:
        warned = False
        while not self._closed.wait(self.poll_interval_s):
            try:
                finished = self.application.containers(self.service, FINISHED_STATES)
                warned = False
            except DeploymentError as e:
                if not warned:
                    logger.warning("Cannot watch the TaskManager containers: %s", e)
                    warned = True
                continue
            for container in finished:
                with self._lock:
                    if container.id not in self._live:
                        continue
                    self._live.discard(container.id)
                    released = container.id in self._released
                if released or container.state == "SUCCEEDED" or self._closed.is_set():
                    continue
                try:
                    self._container_failed(container)
                except Exception:  # noqa: BLE001 - the watch must go on
                    logger.exception("Handling the end of container %s failed", container.id)

    def _container_failed(self, container: ContainerInfo) -> None:
        message = container.exit_message.strip() or "YARN gave no diagnostics"
        if len(message) > _DIAGNOSTICS_CHARS:
            message = "..." + message[-_DIAGNOSTICS_CHARS:]
        diagnostics = (f"TaskManager container {container.id} "
                       f"({container.yarn_container_id or 'never allocated'}) {container.state}: {message}")
        with self._lock:
            self._failures.append(diagnostics)
            failed = len(self._failures)
            if failed > self.max_failed_containers and self._exhausted is None:
                earlier = "".join(f"\n- {d}" for d in self._failures[:-1])
                self._exhausted = (
                    f"{failed} TaskManager containers failed, more than yarn.maximum-failed-containers "
                    f"({self.max_failed_containers}) allows. The last one: {diagnostics}"
                    + (f"\nEarlier failures:{earlier}" if earlier else ""))
            exhausted = self._exhausted
        logger.warning("%s", diagnostics)
        if exhausted is not None:
            self._report(container.id, exhausted)
        elif self._registered(container.id):
            self._report(container.id, diagnostics)
        else:
            try:
                replacement = self._add_container()
            except DeploymentError as e:
                self._report(container.id, f"{diagnostics}; requesting a replacement failed: {e}")
                return
            logger.warning("Replaced failed container %s by %s (%d of %d failed containers allowed)",
                           container.id, replacement.id, failed, self.max_failed_containers)

    def _report(self, resource_id: str, diagnostics: str) -> None:
        if self._on_terminated is not None:
            self._on_terminated(resource_id, diagnostics)
