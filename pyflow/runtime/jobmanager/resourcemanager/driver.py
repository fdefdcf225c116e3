"""ResourceDriver: how a ResourceManager gets TaskManagers (Flink's ResourceManagerDriver).

Implementations live in ``pyflow.deploy``: ``local`` starts TaskManager processes on this
machine, ``standalone`` cannot start any (TaskManagers are started by scripts/), and ``yarn``
asks YARN for containers. The ResourceManager calls these from its I/O thread, never from its
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


class StandaloneResourceDriver:
    """TaskManagers come and go by themselves (scripts/start-cluster.sh); none can be started."""

    can_start_workers = False

    def start(self, jobmanager_address: str, on_worker_terminated: Callable[[str, str], None]) -> None:
        pass

    def start_task_managers(self, count: int) -> list[str]:
        return []

    def stop_task_manager(self, resource_id: str) -> None:
        pass

    def close(self) -> None:
        pass
