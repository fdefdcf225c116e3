"""Gateways: the interface of each remote endpoint, its gRPC client, and its testing double.

``ResourceManagerGateway`` and ``JobMasterGateway`` are what a TaskManager calls on the
JobManager; ``TaskExecutorGateway`` is what the JobManager calls on a TaskManager. Protobuf
stays inside this module and ``server.py``; gRPC errors are translated in ``_call`` only.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Protocol

import cloudpickle
import grpc

from pyflow.errors import RpcError, RpcTimeout, RpcUnavailable
from pyflow.runtime.log_files import LogFile, LogTail
from pyflow.runtime.messages import (
    SlotOffer, SlotStatus, TaskExecutionStateUpdate, TaskExecutorRegistration, TaskManagerLocation,
)
from pyflow.runtime.rpc.generated import control_pb2 as pb
from pyflow.runtime.rpc.generated import control_pb2_grpc as pb_grpc

DEFAULT_TIMEOUT_S = 30.0
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 512 * 1024 * 1024),
    ("grpc.max_receive_message_length", 512 * 1024 * 1024),
]


def _call(what: str, address: str, method: Callable, request: Any, timeout: float) -> Any:
    """The one place where gRPC failures become pyflow errors."""
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as e:
        code = e.code() if hasattr(e, "code") else None
        detail = e.details() if hasattr(e, "details") else str(e)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise RpcTimeout(f"{what} at {address} did not answer within {timeout:.0f} s") from e
        if code == grpc.StatusCode.UNAVAILABLE:
            raise RpcUnavailable(f"{what} at {address} is unreachable: {detail}") from e
        raise RpcError(f"{what} at {address} failed: {detail}") from e


class _Client:
    def __init__(self, address: str, stub_class: type, what: str):
        self.address = address
        self.what = what
        self._channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._stub = stub_class(self._channel)

    def close(self) -> None:
        self._channel.close()


# ---------------------------------------------------------------------------------------------
# ResourceManager


class ResourceManagerGateway(Protocol):
    def register_task_executor(self, registration: TaskExecutorRegistration) -> tuple[bool, str]: ...
    def heartbeat(self, resource_id: str, slots: list[SlotStatus], task_metrics: dict) -> bool: ...
    def disconnect_task_executor(self, resource_id: str, reason: str) -> None: ...


class RemoteResourceManagerGateway(_Client):
    def __init__(self, address: str):
        super().__init__(address, pb_grpc.ResourceManagerServiceStub, "The ResourceManager")

    def register_task_executor(self, r: TaskExecutorRegistration, timeout: float = DEFAULT_TIMEOUT_S) -> tuple[bool, str]:
        request = pb.RegisterTaskExecutorRequest(
            resource_id=r.resource_id, rpc_address=r.rpc_address, data_host=r.data_host,
            data_port=r.data_port, num_slots=r.num_slots, managed_memory=r.managed_memory,
            network_memory=r.network_memory, pid=r.pid, hostname=r.hostname, log_file=r.log_file)
        reply = _call(self.what, self.address, self._stub.RegisterTaskExecutor, request, timeout)
        return reply.accepted, reply.message

    def heartbeat(self, resource_id: str, slots: list[SlotStatus], task_metrics: dict,
                  timeout: float = DEFAULT_TIMEOUT_S) -> bool:
        request = pb.TaskExecutorHeartbeat(
            resource_id=resource_id,
            slots=[pb.SlotStatus(slot_index=s.slot_index, allocation_id=s.allocation_id, job_id=s.job_id)
                   for s in slots],
            task_metrics=json.dumps(task_metrics).encode())
        return _call(self.what, self.address, self._stub.Heartbeat, request, timeout).known

    def disconnect_task_executor(self, resource_id: str, reason: str, timeout: float = 5.0) -> None:
        reply = _call(self.what, self.address, self._stub.DisconnectTaskExecutor,
                      pb.DisconnectTaskExecutorRequest(resource_id=resource_id, reason=reason), timeout)
        if not reply.ok:
            raise RpcError(f"{self.what} at {self.address} refused: {reply.message}")


# ---------------------------------------------------------------------------------------------
# JobMaster


class JobMasterGateway(Protocol):
    def offer_slots(self, job_id: str, location: TaskManagerLocation, offers: list[SlotOffer]) -> list[str]: ...
    def update_task_execution_state(self, update: TaskExecutionStateUpdate) -> bool: ...


class RemoteJobMasterGateway(_Client):
    def __init__(self, address: str):
        super().__init__(address, pb_grpc.JobMasterServiceStub, "The JobMaster")

    def offer_slots(self, job_id: str, location: TaskManagerLocation, offers: list[SlotOffer],
                    timeout: float = DEFAULT_TIMEOUT_S) -> list[str]:
        request = pb.OfferSlotsRequest(
            job_id=job_id, resource_id=location.resource_id, rpc_address=location.rpc_address,
            data_host=location.data_host, data_port=location.data_port,
            offers=[pb.SlotOffer(allocation_id=o.allocation_id, slot_index=o.slot_index) for o in offers])
        return list(_call(self.what, self.address, self._stub.OfferSlots, request, timeout).accepted)

    def update_task_execution_state(self, u: TaskExecutionStateUpdate, timeout: float = DEFAULT_TIMEOUT_S) -> bool:
        request = pb.TaskExecutionState(
            job_id=u.job_id, execution_id=u.execution_id, state=u.state.value, error=u.error,
            metrics=json.dumps(u.metrics).encode(), resource_id=u.resource_id)
        return _call(self.what, self.address, self._stub.UpdateTaskExecutionState, request, timeout).ok


# ---------------------------------------------------------------------------------------------
# TaskExecutor


class TaskExecutorGateway(Protocol):
    def request_slot(self, allocation_id: str, slot_index: int, job_id: str, job_master_address: str) -> None: ...
    def submit_task(self, deployment: Any) -> None: ...
    def cancel_task(self, execution_id: str) -> None: ...
    def stop_task(self, execution_id: str) -> None: ...
    def free_slot(self, allocation_id: str, reason: str) -> None: ...
    def shutdown(self, reason: str) -> None: ...
    def request_log_list(self) -> list[LogFile]: ...
    def request_log_file(self, name: str, file_type: str, max_bytes: int) -> LogTail: ...
    def request_metrics(self) -> dict[str, float]: ...


class RemoteTaskExecutorGateway(_Client):
    def __init__(self, address: str, resource_id: str = ""):
        what = f"TaskManager {resource_id}" if resource_id else "The TaskManager"
        super().__init__(address, pb_grpc.TaskExecutorServiceStub, what)

    def _ack(self, method: Callable, request: Any, timeout: float) -> None:
        reply = _call(self.what, self.address, method, request, timeout)
        if not reply.ok:
            raise RpcError(f"{self.what} at {self.address} refused: {reply.message}")

    def request_slot(self, allocation_id: str, slot_index: int, job_id: str, job_master_address: str,
                     timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._ack(self._stub.RequestSlot, pb.RequestSlotRequest(
            allocation_id=allocation_id, slot_index=slot_index, job_id=job_id,
            job_master_address=job_master_address), timeout)

    def submit_task(self, deployment: Any, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        # cloudpickle: a deployment carries user code (key selectors of hash partitioners)
        payload = cloudpickle.dumps(deployment, protocol=5)
        self._ack(self._stub.SubmitTask, pb.SubmitTaskRequest(deployment=payload), timeout)

    def cancel_task(self, execution_id: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._ack(self._stub.CancelTask, pb.CancelTaskRequest(execution_id=execution_id), timeout)

    def stop_task(self, execution_id: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._ack(self._stub.StopTask, pb.StopTaskRequest(execution_id=execution_id), timeout)

    def free_slot(self, allocation_id: str, reason: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._ack(self._stub.FreeSlot, pb.FreeSlotRequest(allocation_id=allocation_id, reason=reason), timeout)

    def shutdown(self, reason: str, timeout: float = 5.0) -> None:
        self._ack(self._stub.Shutdown, pb.ShutdownRequest(reason=reason), timeout)

    def request_log_list(self, timeout: float = 10.0) -> list[LogFile]:
        reply = _call(self.what, self.address, self._stub.RequestLogList, pb.LogListRequest(), timeout)
        return [LogFile(f.name, f.size, f.mtime) for f in reply.logs]

    def request_log_file(self, name: str, file_type: str, max_bytes: int, timeout: float = 30.0) -> LogTail:
        """The end of a log file of the TaskManager; FileNotFoundError names why there is none."""
        reply = _call(self.what, self.address, self._stub.RequestLogFile,
                      pb.LogFileRequest(name=name, type=file_type, max_bytes=max_bytes), timeout)
        if not reply.found:
            raise FileNotFoundError(reply.message)
        return LogTail(reply.name, reply.size, reply.data)

    def request_metrics(self, timeout: float = 10.0) -> dict[str, float]:
        reply = _call(self.what, self.address, self._stub.RequestMetrics, pb.MetricsRequest(), timeout)
        return json.loads(reply.metrics) if reply.metrics else {}


class TaskExecutorGateways:
    """One gateway (one gRPC channel) per TaskManager, shared by the ResourceManager and every
    JobMaster of a JobManager; closed when the TaskManager is removed, not when a job ends."""

    def __init__(self, factory: Callable[[str, str], Any] = RemoteTaskExecutorGateway):
        self._factory = factory
        self._lock = threading.Lock()
        self._gateways: dict[str, Any] = {}

    def get(self, rpc_address: str, resource_id: str) -> Any:
        with self._lock:
            gw = self._gateways.get(resource_id)
            if gw is None:
                gw = self._gateways[resource_id] = self._factory(rpc_address, resource_id)
            return gw

    def release(self, resource_id: str) -> None:
        with self._lock:
            gw = self._gateways.pop(resource_id, None)
        if gw is not None:
            gw.close()

    def close(self) -> None:
        with self._lock:
            gateways = list(self._gateways.values())
            self._gateways.clear()
        for gw in gateways:
            gw.close()


class TestingTaskExecutorGateway:
    """A TaskExecutorGateway made of callables, for unit tests of the JobManager side:
    ``TestingTaskExecutorGateway(submit_task=lambda deployment: submitted.append(deployment))``.
    Calls without a callable are recorded in ``calls`` and do nothing else.
    """

    __test__ = False  # not a pytest class

    def __init__(self, **handlers: Callable[..., Any]):
        self.handlers = handlers
        self.calls: list[tuple[str, tuple]] = []

    def _handle(self, name: str, *args: Any) -> Any:
        self.calls.append((name, args))
        handler = self.handlers.get(name)
        return handler(*args) if handler else None

    def request_slot(self, *args: Any) -> None:
        self._handle("request_slot", *args)

    def submit_task(self, *args: Any) -> None:
        self._handle("submit_task", *args)

    def cancel_task(self, *args: Any) -> None:
        self._handle("cancel_task", *args)

    def stop_task(self, *args: Any) -> None:
        self._handle("stop_task", *args)

    def free_slot(self, *args: Any) -> None:
        self._handle("free_slot", *args)

    def shutdown(self, *args: Any) -> None:
        self._handle("shutdown", *args)

    def request_log_list(self, *args: Any) -> Any:
        return self._handle("request_log_list", *args)

    def request_log_file(self, *args: Any) -> Any:
        return self._handle("request_log_file", *args)

    def request_metrics(self, *args: Any) -> Any:
        return self._handle("request_metrics", *args)

    def close(self) -> None:
        pass
