"""ResourceDriver: how a ResourceManager gets TaskManagers (Flink's ResourceManagerDriver).

Implementations live in ``pyflow.deploy``: ``local`` starts TaskManager processes on this
machine, ``standalone`` (``pyflow.deploy.standalone.StandaloneResourceDriver``) cannot start any
(TaskManagers are started by scripts/ and register by themselves), and ``yarn`` asks YARN for
containers. A driver that cannot start TaskManagers does not stop them either: the
ResourceManager never tells such a TaskManager to shut down, it only forgets it, and the
TaskManager registers again. The ResourceManager calls these from its I/O thread, never from its
main thread, and learns of new TaskManagers only when they register.
"""

from __future__ import annotations

from typing import Callable, Protocol


class ResourceDriver(Protocol):
    #: False when the driver cannot start TaskManagers (standalone)
    can_start_workers: bool

    def start(self, jobmanager_address: str, on_worker_terminated: Callable[[str, str], None]) -> None:
        """Begin; ``on_worker_terminated(resource_id, diagnostics)`` reports a worker that ended."""

    def start_task_managers(self, count: int) -> list[str]:
        """Start ``count`` TaskManagers; returns their resource ids (they register later)."""

    def stop_task_manager(self, resource_id: str) -> None:
        """Stop one TaskManager that is idle or lost."""

    def close(self) -> None:
        """Stop every TaskManager this driver started."""

