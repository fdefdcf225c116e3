"""The JobMaster's graceful stop and savepoint trigger, driven directly with a testing gateway."""

from __future__ import annotations

from concurrent.futures import Executor, Future

import pytest

from pyflow import RuntimeExecutionMode, StreamExecutionEnvironment
from pyflow.errors import NotYetSupportedError
from pyflow.runtime.jobmanager.jobmaster.job_master import JobMaster, JobStateError
from pyflow.runtime.messages import ExecutionState, JobStatus, SlotOffer, TaskExecutionStateUpdate, TaskManagerLocation
from pyflow.runtime.rpc.gateways import TaskExecutorGateways, TestingTaskExecutorGateway

LOCATION = TaskManagerLocation("tm-1", "127.0.0.1:1", "127.0.0.1", 2)


class ImmediateExecutor(Executor):
    """Runs what is submitted at once, on the caller's thread."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:  # noqa: BLE001 - kept in the future, as a pool would
            future.set_exception(e)
        return future


class FakeResourceManager:
    def request_slots(self, job_master, count, address):
        self.requested = count

    def release_slots(self, job_id):
        pass


@pytest.fixture
def make_job_master():
    created: list[JobMaster] = []

    def make(batch: bool = False) -> tuple[JobMaster, TestingTaskExecutorGateway]:
        env = StreamExecutionEnvironment.get_execution_environment({"parallelism.default": 1})
        if batch:
            env.set_runtime_mode(RuntimeExecutionMode.BATCH)
        env.from_generator(lambda i: i, count=None if not batch else 10).rebalance().map(lambda x: x).print()
        gateway = TestingTaskExecutorGateway()
        jm = JobMaster(env.get_job_graph("stop"), resource_manager=FakeResourceManager(), rpc_address="jm",
                       io=ImmediateExecutor(), on_terminal=lambda result: None,
                       gateways=TaskExecutorGateways(lambda address, resource_id: gateway))
        created.append(jm)
        return jm, gateway

    yield make
    for jm in created:
        jm.close_endpoint()


def executions(jm: JobMaster) -> tuple[str, str]:
    """(source, sink) execution ids."""
    source = [e.execution_id for e in jm.executions.values() if e.vertex.job_vertex.is_source]
    other = [e.execution_id for e in jm.executions.values() if not e.vertex.job_vertex.is_source]
    assert len(source) == 1 and len(other) == 1
    return source[0], other[0]


def report(jm: JobMaster, execution_id: str, state: ExecutionState) -> None:
    jm.update_task_execution_state(TaskExecutionStateUpdate(jm.job_id, execution_id, state))


def deployed(jm: JobMaster) -> None:
    jm.start()
    jm.offer_slots(LOCATION, [SlotOffer("alloc-1", 0)])
    assert jm.call(lambda: jm.status) is JobStatus.RUNNING


def stops(gateway: TestingTaskExecutorGateway) -> list[str]:
    return [args[0] for name, args in gateway.calls if name == "stop_task"]


def test_only_running_sources_are_stopped_each_once_and_the_job_finishes(make_job_master):
    jm, gateway = make_job_master()
    deployed(jm)
    source, sink = executions(jm)
    report(jm, sink, ExecutionState.RUNNING)

    jm.stop()
    assert stops(gateway) == []             # the source's task does not exist on its TaskManager yet
    report(jm, source, ExecutionState.INITIALIZING)
    assert stops(gateway) == [source]       # told as soon as it does
    report(jm, source, ExecutionState.RUNNING)
    jm.stop()                               # idempotent
    assert stops(gateway) == [source]
    assert jm.call(lambda: jm.status) is JobStatus.RUNNING  # it drains

    report(jm, source, ExecutionState.FINISHED)
    report(jm, sink, ExecutionState.FINISHED)
    assert jm.result_future.result(5).status is JobStatus.FINISHED
    with pytest.raises(JobStateError, match="cannot be stopped: it already reached the terminal state FINISHED"):
        jm.stop()


def test_a_running_source_is_stopped_at_once(make_job_master):
    jm, gateway = make_job_master()
    deployed(jm)
    source, _ = executions(jm)
    report(jm, source, ExecutionState.RUNNING)
    jm.stop()
    assert stops(gateway) == [source]


def test_a_job_that_is_not_running_cannot_be_stopped(make_job_master):
    jm, _ = make_job_master()
    with pytest.raises(JobStateError, match="it is CREATED, not RUNNING; try again once it runs"):
        jm.stop()
    deployed(jm)
    jm.cancel()
    with pytest.raises(JobStateError, match="cannot be stopped"):
        jm.stop()


def test_a_batch_job_cannot_be_stopped(make_job_master):
    jm, gateway = make_job_master(batch=True)
    deployed(jm)
    with pytest.raises(JobStateError, match="BATCH mode"):
        jm.stop()
    assert stops(gateway) == []


def test_a_savepoint_fails_honestly_and_the_job_keeps_running(make_job_master):
    jm, gateway = make_job_master()
    deployed(jm)
    future = jm.trigger_savepoint("/tmp/savepoints", cancel_job=True)
    with pytest.raises(NotYetSupportedError, match="Savepoints need checkpointing") as failure:
        future.result(0)
    assert "it was not cancelled either" in str(failure.value) and f"pyflow stop {jm.job_id}" in str(failure.value)
    assert jm.call(lambda: jm.status) is JobStatus.RUNNING
    assert not [c for c in gateway.calls if c[0] in ("cancel_task", "stop_task")]


def test_a_task_reporting_after_its_cancel_is_cancelled_again_and_the_job_ends_canceled(make_job_master):
    """A cancel can overtake the deployment on its way to the TaskManager, which ignores it for a
    task it does not know yet: the task's later report must not undo the cancel."""
    jm, gateway = make_job_master()
    deployed(jm)
    source, sink = executions(jm)
    jm.cancel()
    assert jm.call(lambda: jm.status) is JobStatus.CANCELLING
    cancels_before = [args[0] for name, args in gateway.calls if name == "cancel_task"]
    report(jm, source, ExecutionState.RUNNING)  # the task started after the first cancel was ignored
    cancels = [args[0] for name, args in gateway.calls if name == "cancel_task"]
    assert cancels.count(source) == cancels_before.count(source) + 1
    assert jm.call(lambda: jm._by_execution_id[source].state) is ExecutionState.CANCELING
    report(jm, source, ExecutionState.CANCELED)
    report(jm, sink, ExecutionState.CANCELED)
    assert jm.result_future.result(5).status is JobStatus.CANCELED
