"""ResourceManager: TaskManager registrations, heartbeats, and slots (Flink's ResourceManager).

The SlotManager (pure) decides; this endpoint carries its instructions out: outgoing RPCs and
driver calls run on the JobManager's I/O pool, never on this endpoint's main thread, so a
TaskManager calling in can never deadlock with a call going out.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from pyflow.errors import PyflowError
from pyflow.runtime.jobmanager.resourcemanager.driver import ResourceDriver
from pyflow.runtime.jobmanager.resourcemanager.slot_manager import (
    AllocateSlot, FailSlotRequest, FreeSlot, Instruction, JobSlotsReleased, SlotManager, SlotRequest,
    StartTaskManagers, StopTaskManager, TaskManagerRegistered, TaskManagerRemoved,
    TaskManagersFailedToStart, Tick,
)
from pyflow.runtime.messages import SlotStatus, TaskExecutorRegistration
from pyflow.runtime.rpc.endpoint import RpcEndpoint
from pyflow.runtime.rpc.gateways import TaskExecutorGateways

logger = logging.getLogger(__name__)


class SlotListener(Protocol):
    """What the ResourceManager tells a JobMaster."""

    job_id: str

    def notify_slot_request_failed(self, reason: str) -> None: ...
    def notify_task_manager_lost(self, resource_id: str, reason: str) -> None: ...


@dataclass
class RegisteredTaskManager:
    registration: TaskExecutorRegistration
    gateway: Any
    registered_at: float
    last_heartbeat: float
    slots: list[SlotStatus] = field(default_factory=list)
    task_metrics: dict[str, Any] = field(default_factory=dict)


class ResourceManager(RpcEndpoint):
    def __init__(self, *, driver: ResourceDriver, io: Executor, slots_per_task_manager: int,
                 heartbeat_interval_s: float, heartbeat_timeout_s: float, taskmanager_timeout_s: float,
                 slot_request_timeout_s: float,
                 gateways: TaskExecutorGateways | None = None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__("ResourceManager")
        self.driver = driver
        self.io = io
        self.heartbeat_interval_s = heartbeat_interval_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.gateways = gateways or TaskExecutorGateways()
        self.clock = clock
        self.slot_manager = SlotManager(
            slots_per_task_manager=slots_per_task_manager, taskmanager_timeout_s=taskmanager_timeout_s,
            slot_request_timeout_s=slot_request_timeout_s, can_start_workers=driver.can_start_workers)
        self.task_managers: dict[str, RegisteredTaskManager] = {}
        self.listeners: dict[str, SlotListener] = {}
        self.job_master_addresses: dict[str, str] = {}
        #: every TaskManager that ever registered (resource id -> registration), for tests and the UI
        self.history: dict[str, TaskExecutorRegistration] = {}
        #: receives the task metrics of every heartbeat (the Dispatcher forwards them to JobMasters)
        self.metrics_listener: Callable[[dict], None] | None = None

    def start(self, jobmanager_address: str) -> None:
        self.jobmanager_address = jobmanager_address
        self.driver.start(jobmanager_address, self.on_worker_terminated)
        self.schedule_periodic(min(1.0, self.heartbeat_interval_s), self._tick)

    def close(self) -> None:
        try:
            self.call(self.task_managers.clear, timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self.driver.close()
        self.gateways.close()
        self.close_endpoint()

    # ---- from TaskManagers (gRPC threads) -------------------------------------------------------

    def register_task_executor(self, registration: TaskExecutorRegistration) -> tuple[bool, str]:
        return self.call(self._register, registration)

    def _register(self, r: TaskExecutorRegistration) -> tuple[bool, str]:
        now = self.clock()
        old = self.task_managers.get(r.resource_id)
        if old is not None:
            old.last_heartbeat = now
            return True, "already registered"
        gateway = self.gateways.get(r.rpc_address, r.resource_id)
        self.task_managers[r.resource_id] = RegisteredTaskManager(r, gateway, now, now)
        self.history[r.resource_id] = r
        logger.info("Registered TaskManager %s at %s (pid %d, %d slots)", r.resource_id, r.rpc_address,
                    r.pid, r.num_slots)
        self._execute(self.slot_manager.handle(TaskManagerRegistered(r.resource_id, r.num_slots, now)))
        return True, "registered"

    def heartbeat_from_task_executor(self, resource_id: str, slots: list[SlotStatus], metrics: dict) -> bool:
        def beat() -> bool:
            tm = self.task_managers.get(resource_id)
            if tm is None:
                return False
            tm.last_heartbeat = self.clock()
            tm.slots = slots
            tm.task_metrics = metrics
            if metrics and self.metrics_listener is not None:
                self.metrics_listener(metrics)
            return True

        return self.call(beat)

    def disconnect_task_executor(self, resource_id: str, reason: str) -> None:
        self.run_async(self._remove, resource_id, f"TaskManager {resource_id} disconnected: {reason}")

    def on_worker_terminated(self, resource_id: str, diagnostics: str) -> None:
        """The driver saw a TaskManager process (or container) end."""
        def terminated() -> None:
            if resource_id in self.task_managers:
                self._remove(resource_id, diagnostics)
            elif resource_id not in self.history:
                # it never registered: it cannot start (bad python, missing modules, bad config),
                # and starting it again would fail the same way - fail the waiting jobs now
                logger.error("TaskManager %s ended before it registered: %s", resource_id, diagnostics)
                self._execute(self.slot_manager.handle(TaskManagersFailedToStart(
                    1, f"{diagnostics} before it registered with the JobManager", self.clock())))

        self.run_async(terminated)

    # ---- from JobMasters (in-process) ------------------------------------------------------------

    def request_slots(self, listener: SlotListener, count: int, job_master_address: str) -> None:
        def request() -> None:
            self.listeners[listener.job_id] = listener
            self.job_master_addresses[listener.job_id] = job_master_address
            self._execute(self.slot_manager.handle(SlotRequest(listener.job_id, count, self.clock())))

        self.run_async(request)

    def release_slots(self, job_id: str) -> None:
        def release() -> None:
            self.listeners.pop(job_id, None)
            self.job_master_addresses.pop(job_id, None)
            self._execute(self.slot_manager.handle(JobSlotsReleased(job_id, self.clock())))

        self.run_async(release)

    # ---- queries -----------------------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        def collect() -> dict[str, Any]:
            return {
                "taskmanagers": len(self.task_managers),
                "slots-total": self.slot_manager.total_slots,
                "slots-available": self.slot_manager.free_slots,
                "pending-taskmanagers": self.slot_manager.pending_workers,
            }

        return self.call(collect)

    def task_manager_infos(self) -> list[dict[str, Any]]:
        def collect() -> list[dict[str, Any]]:
            return [
                {"id": rid, "path": tm.registration.rpc_address, "dataPort": tm.registration.data_port,
                 "pid": tm.registration.pid, "slotsNumber": tm.registration.num_slots,
                 "freeSlots": len(self.slot_manager.task_managers[rid].free_slots())
                 if rid in self.slot_manager.task_managers else 0,
                 "timeSinceLastHeartbeat": int((self.clock() - tm.last_heartbeat) * 1000),
                 "logFile": tm.registration.log_file}
                for rid, tm in self.task_managers.items()
            ]

        return self.call(collect)

    # ---- internals (main thread) ---------------------------------------------------------------

    def _tick(self) -> None:
        now = self.clock()
        for rid, tm in list(self.task_managers.items()):
            silent = now - tm.last_heartbeat
            if silent > self.heartbeat_timeout_s:
                self._remove(rid, f"TaskManager {rid} ({tm.registration.rpc_address}, pid "
                                  f"{tm.registration.pid}) is lost: no heartbeat for {silent:.1f} s "
                                  f"(heartbeat.timeout is {self.heartbeat_timeout_s:.1f} s)")
        self._execute(self.slot_manager.handle(Tick(now)))

    def _remove(self, resource_id: str, reason: str) -> None:
        tm = self.task_managers.pop(resource_id, None)
        if tm is None:
            return
        logger.warning("Removing TaskManager %s: %s", resource_id, reason)
        for job_id in self.slot_manager.jobs_on(resource_id):
            listener = self.listeners.get(job_id)
            if listener is not None:
                listener.notify_task_manager_lost(resource_id, reason)
        self._execute(self.slot_manager.handle(TaskManagerRemoved(resource_id, self.clock())))
        gateway = tm.gateway
        self._submit(self._stop_worker, resource_id, gateway, "lost")

    def _stop_worker(self, resource_id: str, gateway: Any, reason: str) -> None:
        try:
            if self.driver.can_start_workers:  # a standalone TaskManager is not ours: it registers again
                gateway.shutdown(reason)
        except PyflowError:
            pass
        finally:
            self.gateways.release(resource_id)
        try:
            self.driver.stop_task_manager(resource_id)
        except Exception:  # noqa: BLE001 - logged; the worker is gone for us either way
            logger.exception("Stopping TaskManager %s failed", resource_id)

    def _execute(self, instructions: list[Instruction]) -> None:
        for ins in instructions:
            if isinstance(ins, AllocateSlot):
                tm = self.task_managers[ins.resource_id]
                address = self.job_master_addresses.get(ins.job_id, self.jobmanager_address)
                self._submit(self._allocate, tm.gateway, ins, address)
            elif isinstance(ins, FreeSlot):
                tm = self.task_managers.get(ins.resource_id)
                if tm is not None:
                    self._submit(_quietly, tm.gateway.free_slot, ins.allocation_id, "job released its slots")
            elif isinstance(ins, StartTaskManagers):
                self._submit(self._start_workers, ins.count)
            elif isinstance(ins, StopTaskManager):
                tm = self.task_managers.pop(ins.resource_id, None)
                logger.info("Stopping idle TaskManager %s (resourcemanager.taskmanager-timeout)", ins.resource_id)
                if tm is not None:
                    self._submit(self._stop_worker, ins.resource_id, tm.gateway, "idle")
            elif isinstance(ins, FailSlotRequest):
                listener = self.listeners.get(ins.job_id)
                if listener is not None:
                    listener.notify_slot_request_failed(ins.reason)

    def _submit(self, fn: Callable, *args: Any) -> None:
        """Outgoing work on the I/O pool; after shutdown began there is nobody left to call."""
        try:
            self.io.submit(fn, *args)
        except RuntimeError:
            logger.debug("Not running %s: the JobManager is shutting down", getattr(fn, "__name__", fn))

    def _allocate(self, gateway: Any, ins: AllocateSlot, job_master_address: str) -> None:
        try:
            gateway.request_slot(ins.allocation_id, ins.slot_index, ins.job_id, job_master_address)
        except Exception as e:  # noqa: BLE001 - the TaskManager is unusable either way
            self.run_async(self._remove, ins.resource_id, f"TaskManager {ins.resource_id} refused a slot request: {e}")

    def _start_workers(self, count: int) -> None:
        try:
            ids = self.driver.start_task_managers(count)
            logger.info("Requested %d new TaskManagers: %s", count, ", ".join(ids))
        except Exception as e:  # noqa: BLE001 - every driver failure fails the waiting requests
            logger.exception("Starting %d TaskManagers failed", count)
            reason = str(e)
            self.run_async(lambda: self._execute(self.slot_manager.handle(
                TaskManagersFailedToStart(count, reason, self.clock()))))


def _quietly(fn: Callable, *args: Any) -> None:
    try:
        fn(*args)
    except PyflowError as e:
        logger.info("Ignoring failed call %s: %s", getattr(fn, "__name__", fn), e)
