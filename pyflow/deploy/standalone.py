"""The standalone session cluster's ResourceDriver (Flink's StandaloneResourceManager).

A standalone cluster's TaskManagers are started by ``scripts/start-cluster.sh`` (or
``scripts/taskmanager.sh start``) on the machines listed in ``conf/workers``; they find the
JobManager through ``jobmanager.rpc.address`` and ``jobmanager.rpc.port`` and register by
themselves. The ResourceManager distributes the slots of the TaskManagers that registered; this
driver starts none and stops none (``can_start_workers`` is False), so a job that needs more
slots than the cluster has waits ``slot.request.timeout`` for more TaskManagers and then fails
with a message naming the slots it needed and had. Idle TaskManagers are never released: they
were not started by the JobManager, and they stay for the next job.

The process that runs a standalone JobManager is ``python -m pyflow.runtime.jobmanager``.
"""

from __future__ import annotations

import logging
from typing import Callable

logger = logging.getLogger(__name__)


class StandaloneResourceDriver:
    """TaskManagers come and go by themselves (scripts/start-cluster.sh); none can be started."""

    can_start_workers = False

    def start(self, jobmanager_address: str, on_worker_terminated: Callable[[str, str], None]) -> None:
        logger.info("Standalone ResourceManager at %s: TaskManagers register by themselves "
                    "(scripts/start-cluster.sh, scripts/taskmanager.sh start)", jobmanager_address)

    def start_task_managers(self, count: int) -> list[str]:
        return []

    def stop_task_manager(self, resource_id: str) -> None:
        pass

    def close(self) -> None:
        pass
