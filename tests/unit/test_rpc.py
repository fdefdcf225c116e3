"""The control plane: generated code matches control.proto; messages survive a real gRPC round
trip through servicers and gateways; gRPC failures become pyflow errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyflow.errors import RpcError, RpcUnavailable
from pyflow.runtime.messages import (
    ExecutionState, SlotOffer, SlotStatus, TaskExecutionStateUpdate, TaskExecutorRegistration,
    TaskManagerLocation,
)
from pyflow.runtime.rpc.gateways import (
    RemoteJobMasterGateway, RemoteResourceManagerGateway, RemoteTaskExecutorGateway,
)
from pyflow.runtime.rpc.server import add_job_master_router, add_resource_manager, add_task_executor, start_server

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "pyflow" / "runtime" / "rpc" / "generated"


def test_generated_code_matches_the_proto(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (a test extra) regenerates the code")
    target = tmp_path / "pyflow" / "runtime" / "rpc" / "generated"
    target.mkdir(parents=True)
    shutil.copy(GENERATED / "control.proto", target / "control.proto")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I.", "--python_out=.", "--grpc_python_out=.",
                    "pyflow/runtime/rpc/generated/control.proto"], cwd=tmp_path, check=True)
    for name in ("control_pb2.py", "control_pb2_grpc.py"):
        assert (target / name).read_text() == (GENERATED / name).read_text(), (
            f"{name} is stale: regenerate it (command in control.proto)")


class FakeResourceManager:
    def __init__(self):
        self.registrations = []
        self.beats = []

    def register_task_executor(self, registration):
        self.registrations.append(registration)
        return True, "registered"

    def heartbeat_from_task_executor(self, resource_id, slots, metrics):
        self.beats.append((resource_id, slots, metrics))
        return resource_id == "tm-1"

    def disconnect_task_executor(self, resource_id, reason):
        raise RuntimeError(f"no such TaskManager {resource_id}")


class FakeJobMaster:
    def __init__(self):
        self.updates = []

    def offer_slots(self, location, offers):
        return [o.allocation_id for o in offers if o.slot_index == 0]

    def update_task_execution_state(self, update):
        self.updates.append(update)


class FakeTaskExecutor:
    def __init__(self):
        self.calls = []

    def request_slot(self, *args):
        self.calls.append(("request_slot", args))

    def submit_task(self, tdd):
        self.calls.append(("submit_task", tdd))

    def cancel_task(self, execution_id):
        from pyflow.errors import ProgramError

        raise ProgramError(f"unknown execution {execution_id}")

    def free_slot(self, *args):
        self.calls.append(("free_slot", args))

    def shutdown(self, reason):
        self.calls.append(("shutdown", reason))


@pytest.fixture
def servers():
    rm, jm, te = FakeResourceManager(), FakeJobMaster(), FakeTaskExecutor()

    def register(server):
        add_resource_manager(rm)(server)
        add_job_master_router(lambda job_id: jm if job_id == "job-1" else None)(server)

    jm_server, jm_port = start_server("127.0.0.1", 0, register)
    te_server, te_port = start_server("127.0.0.1", 0, add_task_executor(te))
    yield rm, jm, te, f"127.0.0.1:{jm_port}", f"127.0.0.1:{te_port}"
    jm_server.stop(0)
    te_server.stop(0)


def test_resource_manager_calls_round_trip(servers):
    rm, _, _, jm_address, _ = servers
    gateway = RemoteResourceManagerGateway(jm_address)
    registration = TaskExecutorRegistration("tm-1", "127.0.0.1:1", "127.0.0.1", 2, 4, 10, 20, 123, "host", "/log")
    assert gateway.register_task_executor(registration) == (True, "registered")
    assert rm.registrations == [registration]
    assert gateway.heartbeat("tm-1", [SlotStatus(0, "a", "j"), SlotStatus(1)], {"e": {"numRecordsIn": 3}}) is True
    assert gateway.heartbeat("tm-2", [], {}) is False
    assert rm.beats[0] == ("tm-1", [SlotStatus(0, "a", "j"), SlotStatus(1, "", "")], {"e": {"numRecordsIn": 3}})
    with pytest.raises(RpcError, match="no such TaskManager tm-9"):
        gateway.disconnect_task_executor("tm-9", "bye")
    gateway.close()


def test_job_master_calls_are_routed_by_job(servers):
    _, jm, _, jm_address, _ = servers
    gateway = RemoteJobMasterGateway(jm_address)
    location = TaskManagerLocation("tm-1", "127.0.0.1:1", "127.0.0.1", 2)
    assert gateway.offer_slots("job-1", location, [SlotOffer("a", 0), SlotOffer("b", 1)]) == ["a"]
    assert gateway.offer_slots("job-unknown", location, [SlotOffer("a", 0)]) == []
    update = TaskExecutionStateUpdate("job-1", "e1", ExecutionState.FAILED, "Traceback ...", {"n": 1}, "tm-1")
    assert gateway.update_task_execution_state(update) is True
    assert jm.updates == [update]
    assert gateway.update_task_execution_state(
        TaskExecutionStateUpdate("job-unknown", "e1", ExecutionState.RUNNING)) is False
    gateway.close()


def test_task_executor_calls_and_refusals(servers):
    _, _, te, _, te_address = servers
    gateway = RemoteTaskExecutorGateway(te_address, "tm-1")
    gateway.request_slot("alloc-1", 0, "job-1", "127.0.0.1:9")
    gateway.submit_task({"a deployment": lambda x: x + 1})  # user code travels by cloudpickle
    assert te.calls[0] == ("request_slot", ("alloc-1", 0, "job-1", "127.0.0.1:9"))
    assert te.calls[1][1]["a deployment"](1) == 2
    with pytest.raises(RpcError, match="TaskManager tm-1 at .* refused: unknown execution e7"):
        gateway.cancel_task("e7")
    gateway.close()


def test_an_unreachable_endpoint_is_rpc_unavailable():
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gateway = RemoteTaskExecutorGateway(f"127.0.0.1:{port}", "tm-x")
    with pytest.raises(RpcUnavailable, match="TaskManager tm-x at 127.0.0.1"):
        gateway.free_slot("alloc", "test", timeout=2)
    gateway.close()
