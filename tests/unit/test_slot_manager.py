"""The SlotManager is pure: events in, instructions out."""

from __future__ import annotations

from pyflow.runtime.jobmanager.resourcemanager.slot_manager import (
    AllocateSlot, FailSlotRequest, FreeSlot, JobSlotsReleased, SlotManager, SlotRequest,
    StartTaskManagers, StopTaskManager, TaskManagerRegistered, TaskManagerRemoved,
    TaskManagersFailedToStart, Tick,
)


def manager(slots_per_tm=1, can_start=True, tm_timeout=30.0, request_timeout=300.0) -> SlotManager:
    return SlotManager(slots_per_task_manager=slots_per_tm, taskmanager_timeout_s=tm_timeout,
                       slot_request_timeout_s=request_timeout, can_start_workers=can_start)


def test_a_shortfall_starts_task_managers_rounded_up_to_whole_ones():
    sm = manager(slots_per_tm=2)
    assert sm.handle(SlotRequest("job", 5, now=0)) == [StartTaskManagers(3)]


def test_registering_task_managers_fulfil_the_pending_request():
    sm = manager(slots_per_tm=2)
    sm.handle(SlotRequest("job", 3, now=0))
    first = sm.handle(TaskManagerRegistered("tm-a", 2, now=1))
    assert [type(i) for i in first] == [AllocateSlot, AllocateSlot]
    assert {(i.resource_id, i.slot_index) for i in first} == {("tm-a", 0), ("tm-a", 1)}
    second = sm.handle(TaskManagerRegistered("tm-b", 2, now=2))
    assert [(i.resource_id, i.slot_index, i.job_id) for i in second] == [("tm-b", 0, "job")]
    assert sm.free_slots == 1 and sm.pending == []


def test_free_slots_are_used_before_starting_new_task_managers():
    sm = manager()
    sm.handle(TaskManagerRegistered("tm-a", 1, now=0))
    out = sm.handle(SlotRequest("job", 1, now=1))
    assert out == [AllocateSlot("tm-a", 0, out[0].allocation_id, "job")]


def test_pending_workers_are_not_requested_twice():
    sm = manager()
    assert sm.handle(SlotRequest("a", 2, now=0)) == [StartTaskManagers(2)]
    assert sm.handle(SlotRequest("b", 1, now=0)) == [StartTaskManagers(1)]
    assert sm.pending_workers == 3


def test_releasing_a_job_frees_its_slots_and_serves_waiting_jobs():
    sm = manager(can_start=False)
    sm.handle(TaskManagerRegistered("tm-a", 1, now=0))
    alloc = sm.handle(SlotRequest("a", 1, now=0))[0].allocation_id
    assert sm.handle(SlotRequest("b", 1, now=1)) == []  # standalone: waits
    out = sm.handle(JobSlotsReleased("a", now=2))
    assert out[0] == FreeSlot("tm-a", alloc)
    assert isinstance(out[1], AllocateSlot) and out[1].job_id == "b"


def test_idle_task_managers_stop_after_the_timeout_only():
    sm = manager(tm_timeout=30)
    sm.handle(SlotRequest("job", 1, now=0))
    sm.handle(TaskManagerRegistered("tm-a", 1, now=0))
    sm.handle(JobSlotsReleased("job", now=10))
    assert sm.handle(Tick(now=39)) == []
    assert sm.handle(Tick(now=40)) == [StopTaskManager("tm-a")]
    assert sm.total_slots == 0


def test_busy_task_managers_never_stop():
    sm = manager(tm_timeout=1)
    sm.handle(SlotRequest("job", 1, now=0))
    sm.handle(TaskManagerRegistered("tm-a", 1, now=0))
    assert sm.handle(Tick(now=100)) == []


def test_standalone_never_starts_or_stops_task_managers():
    sm = manager(can_start=False, tm_timeout=1)
    sm.handle(TaskManagerRegistered("tm-a", 1, now=0))
    assert sm.handle(Tick(now=100)) == []
    assert sm.handle(SlotRequest("job", 3, now=100)) == [AllocateSlot("tm-a", 0, sm.allocations_of("tm-a")[0][0], "job")]


def test_a_request_that_cannot_be_met_fails_after_the_timeout_saying_why():
    sm = manager(can_start=False, request_timeout=60)
    sm.handle(TaskManagerRegistered("tm-a", 2, now=0))
    sm.handle(SlotRequest("job", 5, now=0))
    assert sm.handle(Tick(now=59)) == []
    (fail,) = sm.handle(Tick(now=60))
    assert isinstance(fail, FailSlotRequest) and fail.job_id == "job"
    assert "needs 5 slots and got 2" in fail.reason
    assert "2 slots in 1 TaskManagers" in fail.reason


def test_a_lost_task_manager_is_replaced_for_waiting_requests():
    sm = manager()
    sm.handle(SlotRequest("job", 2, now=0))
    sm.handle(TaskManagerRegistered("tm-a", 1, now=1))
    assert sm.handle(TaskManagerRemoved("tm-a", now=2)) == []  # one worker is still pending
    assert sm.jobs_on("tm-a") == set()


def test_failed_worker_start_fails_waiting_requests():
    sm = manager()
    sm.handle(SlotRequest("job", 1, now=0))
    (fail,) = sm.handle(TaskManagersFailedToStart(1, "no python", now=1))
    assert fail == FailSlotRequest("job", "TaskManagers could not be started: no python")
    assert sm.pending_workers == 0
