"""SlotManager: the ResourceManager's slot bookkeeping as a pure state machine.

``instructions = slot_manager.handle(event)``: events say what happened (a TaskManager
registered, a job asked for slots, time passed), instructions say what the ResourceManager must
do (allocate a slot on a TaskManager, start or stop TaskManagers, fail a request). It never
sleeps, never does I/O, and takes the time from its events, so unit tests drive it directly.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Union

from pyflow.config.options import format_duration

# ---- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskManagerRegistered:
    resource_id: str
    num_slots: int
    now: float


@dataclass(frozen=True, slots=True)
class TaskManagerRemoved:
    resource_id: str
    now: float


@dataclass(frozen=True, slots=True)
class SlotRequest:
    job_id: str
    count: int
    now: float


@dataclass(frozen=True, slots=True)
class JobSlotsReleased:
    job_id: str
    now: float


@dataclass(frozen=True, slots=True)
class TaskManagersFailedToStart:
    count: int
    reason: str
    now: float


@dataclass(frozen=True, slots=True)
class Tick:
    now: float


Event = Union[TaskManagerRegistered, TaskManagerRemoved, SlotRequest, JobSlotsReleased,
              TaskManagersFailedToStart, Tick]

# ---- instructions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllocateSlot:
    resource_id: str
    slot_index: int
    allocation_id: str
    job_id: str


@dataclass(frozen=True, slots=True)
class FreeSlot:
    resource_id: str
    allocation_id: str


@dataclass(frozen=True, slots=True)
class StartTaskManagers:
    count: int


@dataclass(frozen=True, slots=True)
class StopTaskManager:
    resource_id: str


@dataclass(frozen=True, slots=True)
class FailSlotRequest:
    job_id: str
    reason: str


Instruction = Union[AllocateSlot, FreeSlot, StartTaskManagers, StopTaskManager, FailSlotRequest]


@dataclass
class _TaskManager:
    num_slots: int
    allocations: dict[int, tuple[str, str]] = field(default_factory=dict)  # slot -> (allocation, job)
    idle_since: float | None = None

    def free_slots(self) -> list[int]:
        return [i for i in range(self.num_slots) if i not in self.allocations]


@dataclass
class _Request:
    job_id: str
    missing: int
    requested: int
    since: float


class SlotManager:
    """Slot bookkeeping for one ResourceManager.

    ``can_start_workers`` is False for standalone clusters: a shortfall then waits for
    TaskManagers to register, and fails after ``slot_request_timeout_s``.
    """

    def __init__(self, *, slots_per_task_manager: int, taskmanager_timeout_s: float,
                 slot_request_timeout_s: float, can_start_workers: bool,
                 allocation_ids: Callable[[], str] | None = None):
        self.slots_per_task_manager = slots_per_task_manager
        self.taskmanager_timeout_s = taskmanager_timeout_s
        self.slot_request_timeout_s = slot_request_timeout_s
        self.can_start_workers = can_start_workers
        counter = itertools.count(1)
        self._new_allocation_id = allocation_ids or (lambda: f"alloc-{next(counter)}")
        self.task_managers: dict[str, _TaskManager] = {}
        self.pending: list[_Request] = []
        self.pending_workers = 0

    # ---- queries ---------------------------------------------------------------------------

    @property
    def total_slots(self) -> int:
        return sum(tm.num_slots for tm in self.task_managers.values())

    @property
    def free_slots(self) -> int:
        return sum(len(tm.free_slots()) for tm in self.task_managers.values())

    def allocations_of(self, resource_id: str) -> dict[int, tuple[str, str]]:
        tm = self.task_managers.get(resource_id)
        return dict(tm.allocations) if tm else {}

    def jobs_on(self, resource_id: str) -> set[str]:
        return {job for _, job in self.allocations_of(resource_id).values()}

    # ---- the state machine -------------------------------------------------------------------

    def handle(self, event: Event) -> list[Instruction]:
        if isinstance(event, TaskManagerRegistered):
            return self._on_registered(event)
        if isinstance(event, TaskManagerRemoved):
            return self._on_removed(event)
        if isinstance(event, SlotRequest):
            return self._on_request(event)
        if isinstance(event, JobSlotsReleased):
            return self._on_released(event)
        if isinstance(event, TaskManagersFailedToStart):
            return self._on_start_failed(event)
        if isinstance(event, Tick):
            return self._on_tick(event)
        raise TypeError(f"unknown event {event!r}")

    def _on_registered(self, e: TaskManagerRegistered) -> list[Instruction]:
        if e.resource_id not in self.task_managers:
            self.pending_workers = max(0, self.pending_workers - 1)
            self.task_managers[e.resource_id] = _TaskManager(e.num_slots, idle_since=e.now)
        return self._assign(e.now)

    def _on_removed(self, e: TaskManagerRemoved) -> list[Instruction]:
        self.task_managers.pop(e.resource_id, None)
        return self._start_workers_for_shortfall()

    def _on_request(self, e: SlotRequest) -> list[Instruction]:
        self.pending.append(_Request(e.job_id, e.count, e.count, e.now))
        return self._assign(e.now)

    def _on_released(self, e: JobSlotsReleased) -> list[Instruction]:
        out: list[Instruction] = []
        self.pending = [r for r in self.pending if r.job_id != e.job_id]
        for rid, tm in self.task_managers.items():
            for slot, (allocation, job) in list(tm.allocations.items()):
                if job == e.job_id:
                    del tm.allocations[slot]
                    out.append(FreeSlot(rid, allocation))
            if not tm.allocations and tm.idle_since is None:
                tm.idle_since = e.now
        # freed slots may satisfy other jobs' requests
        return out + self._assign(e.now)

    def _on_start_failed(self, e: TaskManagersFailedToStart) -> list[Instruction]:
        self.pending_workers = max(0, self.pending_workers - e.count)
        out: list[Instruction] = [FailSlotRequest(r.job_id, f"TaskManagers could not be started: {e.reason}")
                                  for r in self.pending]
        self.pending = []
        return out

    def _on_tick(self, e: Tick) -> list[Instruction]:
        out: list[Instruction] = []
        for r in list(self.pending):
            if e.now - r.since >= self.slot_request_timeout_s:
                self.pending.remove(r)
                out.append(FailSlotRequest(r.job_id, self._shortfall_text(r)))
        if self.can_start_workers and not self.pending:
            for rid, tm in list(self.task_managers.items()):
                if not tm.allocations and tm.idle_since is not None \
                        and e.now - tm.idle_since >= self.taskmanager_timeout_s:
                    del self.task_managers[rid]
                    out.append(StopTaskManager(rid))
        return out

    def _shortfall_text(self, r: _Request) -> str:
        granted = r.requested - r.missing
        return (
            f"Could not acquire the slots the job needs within slot.request.timeout "
            f"({format_duration(timedelta(seconds=self.slot_request_timeout_s))}): it needs {r.requested} slots and got {granted}; the "
            f"cluster has {self.total_slots} slots in {len(self.task_managers)} TaskManagers, "
            f"{self.free_slots} free. Start more TaskManagers, raise taskmanager.numberOfTaskSlots, "
            f"or lower the job's parallelism"
        )

    def _assign(self, now: float) -> list[Instruction]:
        out: list[Instruction] = []
        for r in self.pending:
            # fill TaskManagers in the order of their ids, so allocation is deterministic
            while r.missing > 0:
                candidates = [(rid, tm) for rid, tm in sorted(self.task_managers.items()) if tm.free_slots()]
                if not candidates:
                    break
                rid, tm = candidates[0]
                slot = tm.free_slots()[0]
                allocation = self._new_allocation_id()
                tm.allocations[slot] = (allocation, r.job_id)
                tm.idle_since = None
                r.missing -= 1
                out.append(AllocateSlot(rid, slot, allocation, r.job_id))
        self.pending = [r for r in self.pending if r.missing > 0]
        return out + self._start_workers_for_shortfall()

    def _start_workers_for_shortfall(self) -> list[Instruction]:
        if not self.can_start_workers:
            return []
        missing = sum(r.missing for r in self.pending)
        needed = math.ceil(missing / self.slots_per_task_manager) - self.pending_workers
        if needed <= 0:
            return []
        self.pending_workers += needed
        return [StartTaskManagers(needed)]
