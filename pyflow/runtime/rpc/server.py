"""gRPC servers: protobuf requests in, calls on the endpoint objects, protobuf replies out.

The endpoint objects (ResourceManager, Dispatcher routing to JobMasters, TaskExecutor) are plain
Python; each servicer only converts messages. A handler that raises answers with the error's text
(``Ack.ok = false`` or gRPC INTERNAL), never with a silent success.
"""

from __future__ import annotations

import json
import logging
import pickle
from concurrent import futures
from typing import Any, Callable

import grpc

from pyflow.errors import PyflowError
from pyflow.runtime.messages import (
    ExecutionState, SlotOffer, SlotStatus, TaskExecutionStateUpdate, TaskExecutorRegistration,
    TaskManagerLocation,
)
from pyflow.runtime.rpc.gateways import _CHANNEL_OPTIONS
from pyflow.runtime.rpc.generated import control_pb2 as pb
from pyflow.runtime.rpc.generated import control_pb2_grpc as pb_grpc

logger = logging.getLogger(__name__)


def _ack(fn: Callable[[], Any]) -> pb.Ack:
    try:
        fn()
        return pb.Ack(ok=True)
    except PyflowError as e:
        return pb.Ack(ok=False, message=str(e))
    except Exception as e:  # noqa: BLE001 - reported to the caller, and logged here
        logger.exception("RPC handler failed")
        return pb.Ack(ok=False, message=f"{type(e).__name__}: {e}")


class ResourceManagerServicer(pb_grpc.ResourceManagerServiceServicer):
    def __init__(self, resource_manager: Any):
        self.rm = resource_manager

    def RegisterTaskExecutor(self, request, context):
        registration = TaskExecutorRegistration(
            resource_id=request.resource_id, rpc_address=request.rpc_address,
            data_host=request.data_host, data_port=request.data_port, num_slots=request.num_slots,
            managed_memory=request.managed_memory, network_memory=request.network_memory,
            pid=request.pid, hostname=request.hostname, log_file=request.log_file)
        accepted, message = self.rm.register_task_executor(registration)
        return pb.RegisterTaskExecutorResponse(accepted=accepted, message=message)

    def Heartbeat(self, request, context):
        slots = [SlotStatus(s.slot_index, s.allocation_id, s.job_id) for s in request.slots]
        metrics = json.loads(request.task_metrics) if request.task_metrics else {}
        return pb.HeartbeatResponse(known=self.rm.heartbeat_from_task_executor(request.resource_id, slots, metrics))

    def DisconnectTaskExecutor(self, request, context):
        return _ack(lambda: self.rm.disconnect_task_executor(request.resource_id, request.reason))


class JobMasterServicer(pb_grpc.JobMasterServiceServicer):
    """Routes each call to the JobMaster of its job (``job_master_for(job_id)`` or None)."""

    def __init__(self, job_master_for: Callable[[str], Any]):
        self.job_master_for = job_master_for

    def OfferSlots(self, request, context):
        jm = self.job_master_for(request.job_id)
        if jm is None:
            return pb.OfferSlotsResponse(accepted=[])
        location = TaskManagerLocation(request.resource_id, request.rpc_address, request.data_host, request.data_port)
        offers = [SlotOffer(o.allocation_id, o.slot_index) for o in request.offers]
        return pb.OfferSlotsResponse(accepted=jm.offer_slots(location, offers))

    def UpdateTaskExecutionState(self, request, context):
        jm = self.job_master_for(request.job_id)
        if jm is None:
            return pb.Ack(ok=False, message=f"unknown job {request.job_id}")
        update = TaskExecutionStateUpdate(
            job_id=request.job_id, execution_id=request.execution_id,
            state=ExecutionState(request.state), error=request.error,
            metrics=json.loads(request.metrics) if request.metrics else {},
            resource_id=request.resource_id)
        return _ack(lambda: jm.update_task_execution_state(update))


class TaskExecutorServicer(pb_grpc.TaskExecutorServiceServicer):
    def __init__(self, task_executor: Any):
        self.te = task_executor

    def RequestSlot(self, request, context):
        return _ack(lambda: self.te.request_slot(request.allocation_id, request.slot_index,
                                                 request.job_id, request.job_master_address))

    def SubmitTask(self, request, context):
        return _ack(lambda: self.te.submit_task(pickle.loads(request.deployment)))

    def CancelTask(self, request, context):
        return _ack(lambda: self.te.cancel_task(request.execution_id))

    def StopTask(self, request, context):
        return _ack(lambda: self.te.stop_task(request.execution_id))

    def FreeSlot(self, request, context):
        return _ack(lambda: self.te.free_slot(request.allocation_id, request.reason))

    def Shutdown(self, request, context):
        return _ack(lambda: self.te.shutdown(request.reason))

    def RequestLogList(self, request, context):
        return pb.LogListResponse(logs=[pb.LogFileInfo(name=f.name, size=f.size, mtime=f.mtime)
                                        for f in self.te.request_log_list()])

    def RequestLogFile(self, request, context):
        try:
            tail = self.te.request_log_file(request.name, request.type, request.max_bytes)
        except FileNotFoundError as e:
            return pb.LogFileResponse(found=False, message=str(e))
        return pb.LogFileResponse(found=True, name=tail.name, size=tail.size, data=tail.data)

    def RequestMetrics(self, request, context):
        return pb.MetricsResponse(metrics=json.dumps(self.te.request_metrics()).encode())


def start_server(bind_host: str, port: int, register: Callable[[grpc.Server], None],
                 max_workers: int = 16) -> tuple[grpc.Server, int]:
    """Start a gRPC server on ``bind_host:port`` (0 = any free port); returns it and its port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
                         options=[*_CHANNEL_OPTIONS, ("grpc.so_reuseport", 0)])  # a taken port is an error
    register(server)
    try:
        bound = server.add_insecure_port(f"{bind_host}:{port}")
    except RuntimeError:  # newer grpcio versions raise instead of returning 0
        bound = 0
    if bound == 0:
        from pyflow.errors import RpcUnavailable

        raise RpcUnavailable(
            f"Cannot bind the RPC server to {bind_host}:{port}: the port is taken or the address is "
            "not local; choose another port (e.g. -D jobmanager.rpc.port=0 for any free port)")
    server.start()
    return server, bound


def add_resource_manager(rm: Any) -> Callable[[grpc.Server], None]:
    return lambda server: pb_grpc.add_ResourceManagerServiceServicer_to_server(ResourceManagerServicer(rm), server)


def add_job_master_router(job_master_for: Callable[[str], Any]) -> Callable[[grpc.Server], None]:
    return lambda server: pb_grpc.add_JobMasterServiceServicer_to_server(JobMasterServicer(job_master_for), server)


def add_task_executor(te: Any) -> Callable[[grpc.Server], None]:
    return lambda server: pb_grpc.add_TaskExecutorServiceServicer_to_server(TaskExecutorServicer(te), server)
