"""SlotTable: which slot of this TaskManager is allocated to which job (pure bookkeeping)."""

from __future__ import annotations

from dataclasses import dataclass

from pyflow.errors import ResourceError
from pyflow.runtime.messages import SlotStatus


@dataclass(frozen=True, slots=True)
class SlotAllocation:
    allocation_id: str
    job_id: str
    job_master_address: str


class SlotTable:
    def __init__(self, num_slots: int, memory_per_slot: int = 0):
        self.num_slots = num_slots
        self.memory_per_slot = memory_per_slot
        self._slots: dict[int, SlotAllocation] = {}

    def allocate(self, slot_index: int, allocation: SlotAllocation) -> None:
        if not 0 <= slot_index < self.num_slots:
            raise ResourceError(f"slot {slot_index} does not exist (this TaskManager has {self.num_slots})")
        current = self._slots.get(slot_index)
        if current is not None and current.allocation_id != allocation.allocation_id:
            raise ResourceError(f"slot {slot_index} is already allocated to job {current.job_id}")
        self._slots[slot_index] = allocation

    def free(self, allocation_id: str) -> SlotAllocation | None:
        for index, allocation in list(self._slots.items()):
            if allocation.allocation_id == allocation_id:
                del self._slots[index]
                return allocation
        return None

    def find(self, allocation_id: str) -> tuple[int, SlotAllocation] | None:
        for index, allocation in self._slots.items():
            if allocation.allocation_id == allocation_id:
                return index, allocation
        return None

    def report(self) -> list[SlotStatus]:
        return [
            SlotStatus(i, self._slots[i].allocation_id, self._slots[i].job_id) if i in self._slots
            else SlotStatus(i)
            for i in range(self.num_slots)
        ]

    def allocations(self) -> list[SlotAllocation]:
        return list(self._slots.values())
