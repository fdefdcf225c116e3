"""TaskExecutor: the endpoint of a TaskManager process (Flink's TaskExecutor).

It registers with the ResourceManager, offers allocated slots to the JobMaster that asked for
them, runs submitted tasks in threads, and heartbeats the JobManager. Its state changes on its
own main thread only; tasks run on theirs and report through ``_report``.

A TaskManager that cannot reach the JobManager for ``heartbeat.timeout`` cancels its tasks and
stops: it never lingers as an orphan.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from pyflow.config import Configuration, NetworkConfiguration, TaskManagerConfiguration
from pyflow.errors import ResourceError, RpcError
from pyflow.runtime.deployment import TaskDeploymentDescriptor
from pyflow.runtime.messages import (
    ExecutionState, SlotOffer, TaskExecutionStateUpdate, TaskExecutorRegistration, TaskManagerLocation,
)
from pyflow.runtime.network import NetworkEnvironment
from pyflow.runtime.rpc.endpoint import RpcEndpoint
from pyflow.runtime.rpc.gateways import RemoteJobMasterGateway, RemoteResourceManagerGateway
from pyflow.runtime.rpc.server import add_task_executor, start_server
from pyflow.runtime.taskmanager.slot_table import SlotAllocation, SlotTable
from pyflow.runtime.taskmanager.task import Task

logger = logging.getLogger(__name__)


class TaskExecutor(RpcEndpoint):
    def __init__(self, conf: Configuration, jobmanager_address: str, log_file: str = ""):
        self.conf = conf
        self.tm_conf = TaskManagerConfiguration.from_config(conf)
        self.resource_id = self.tm_conf.resource_id or f"tm-{uuid.uuid4().hex[:8]}"
        super().__init__(f"TaskExecutor-{self.resource_id}")
        self.jobmanager_address = jobmanager_address
        self.log_file = log_file
        self.network = NetworkEnvironment.from_config(NetworkConfiguration.from_config(conf))
        self.slots = SlotTable(self.tm_conf.num_slots, self.tm_conf.managed_memory // self.tm_conf.num_slots)
        self.tasks: dict[str, Task] = {}
        self._partitions_by_allocation: dict[str, list[str]] = {}
        self.terminated = threading.Event()
        self.exit_code = 0
        self._rm = RemoteResourceManagerGateway(jobmanager_address)
        self._job_masters: dict[str, RemoteJobMasterGateway] = {}
        self._gateway_lock = threading.Lock()
        self._last_heartbeat_ok = time.monotonic()
        self._server = None
        self.rpc_address = ""

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.network.start()
        self._server, port = start_server(self.tm_conf.bind_host, self.tm_conf.rpc_port, add_task_executor(self))
        self.rpc_address = f"{self.tm_conf.host}:{port}"
        self._register()
        # outgoing blocking RPCs never run on the main thread (the JobManager may be calling us)
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()

    def _heartbeat_loop(self) -> None:
        while not self.terminated.wait(self.tm_conf.heartbeat_interval_s):
            self._heartbeat()

    def _register(self) -> None:
        host, data_port = self.network.address
        registration = TaskExecutorRegistration(
            resource_id=self.resource_id, rpc_address=self.rpc_address, data_host=host,
            data_port=data_port, num_slots=self.tm_conf.num_slots,
            managed_memory=self.tm_conf.managed_memory, network_memory=self.tm_conf.network_memory,
            pid=os.getpid(), hostname=socket.gethostname(), log_file=self.log_file)
        deadline = time.monotonic() + self.tm_conf.registration_timeout_s
        delay = 0.05
        while True:
            try:
                accepted, message = self._rm.register_task_executor(registration, timeout=10)
                if not accepted:
                    raise ResourceError(f"The ResourceManager refused TaskManager {self.resource_id}: {message}")
                logger.info("TaskManager %s registered at the ResourceManager %s", self.resource_id,
                            self.jobmanager_address)
                self._last_heartbeat_ok = time.monotonic()
                return
            except RpcError as e:
                if time.monotonic() > deadline:
                    raise ResourceError(
                        f"TaskManager {self.resource_id} could not register at the JobManager "
                        f"{self.jobmanager_address} within taskmanager.registration.timeout "
                        f"({self.tm_conf.registration_timeout_s:.0f} s): {e}") from e
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def shutdown(self, reason: str) -> None:
        """Stop all tasks and end the process (called by the JobManager or on JobManager loss)."""
        if self.terminated.is_set():
            return
        logger.info("TaskManager %s shutting down: %s", self.resource_id, reason)
        for task in list(self.tasks.values()):
            task.cancel()
        deadline = time.monotonic() + 5
        for task in list(self.tasks.values()):
            task.thread.join(max(0.0, deadline - time.monotonic()))
        self.terminated.set()

    def close(self) -> None:
        if self._server is not None:
            self._server.stop(grace=0.5)
            self._server = None
        self.network.close()
        self._rm.close()
        for gw in self._job_masters.values():
            gw.close()
        self.close_endpoint()

    # ---- heartbeats ----------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        if self.terminated.is_set():
            return
        metrics = {eid: task.metrics() for eid, task in list(self.tasks.items())}
        try:
            known = self._rm.heartbeat(self.resource_id, self.slots.report(), metrics,
                                       timeout=max(1.0, self.tm_conf.heartbeat_interval_s))
            self._last_heartbeat_ok = time.monotonic()
            if not known:
                logger.warning("The ResourceManager does not know TaskManager %s; registering again",
                               self.resource_id)
                self._register()
        except (RpcError, ResourceError) as e:
            silent = time.monotonic() - self._last_heartbeat_ok
            if silent > self.tm_conf.heartbeat_timeout_s:
                logger.error("TaskManager %s lost the JobManager at %s: no heartbeat answer for %.1f s "
                             "(heartbeat.timeout); stopping", self.resource_id, self.jobmanager_address, silent)
                self.exit_code = 1
                threading.Thread(target=self.shutdown, args=("JobManager lost",), daemon=True).start()
            else:
                logger.warning("Heartbeat to the JobManager failed (%s); retrying", e)

    # ---- RPCs (called from gRPC threads; state changes happen on the main thread) ------------------

    def request_slot(self, allocation_id: str, slot_index: int, job_id: str, job_master_address: str) -> None:
        self.call(self.slots.allocate, slot_index, SlotAllocation(allocation_id, job_id, job_master_address))
        threading.Thread(target=self._offer_slot, args=(allocation_id, slot_index, job_id, job_master_address),
                         name="offer-slots", daemon=True).start()

    def _offer_slot(self, allocation_id: str, slot_index: int, job_id: str, address: str) -> None:
        host, data_port = self.network.address
        location = TaskManagerLocation(self.resource_id, self.rpc_address, host, data_port)
        try:
            accepted = self._job_master(address).offer_slots(job_id, location, [SlotOffer(allocation_id, slot_index)])
        except RpcError as e:
            logger.warning("Offering slot %s to the JobMaster of job %s failed: %s", allocation_id, job_id, e)
            accepted = []
        if allocation_id not in accepted:
            logger.info("JobMaster of job %s declined slot %s; freeing it", job_id, allocation_id)
            self.run_async(self.slots.free, allocation_id)

    def _job_master(self, address: str) -> RemoteJobMasterGateway:
        with self._gateway_lock:
            gw = self._job_masters.get(address)
            if gw is None:
                gw = self._job_masters[address] = RemoteJobMasterGateway(address)
            return gw

    def submit_task(self, tdd: TaskDeploymentDescriptor) -> None:
        self.call(self._submit_task, tdd)

    def _submit_task(self, tdd: TaskDeploymentDescriptor) -> None:
        found = self.slots.find(tdd.allocation_id)
        if found is None or found[1].job_id != tdd.job_id:
            raise ResourceError(
                f"No slot with allocation {tdd.allocation_id} for job {tdd.job_id} on TaskManager "
                f"{self.resource_id}; the slot was freed or never allocated")
        address = found[1].job_master_address
        task = Task(tdd, self.network, lambda update: self._report(address, update), self.resource_id,
                    managed_memory=self.slots.memory_per_slot)
        self.tasks[tdd.execution_id] = task
        self._partitions_by_allocation.setdefault(tdd.allocation_id, []).extend(p.partition_id for p in tdd.outputs)
        logger.info("Received task %s (%s)", tdd.task_name, tdd.execution_id)
        task.start()

    def _report(self, address: str, update: TaskExecutionStateUpdate) -> None:
        """Called on a task thread: deliver the state change to the JobMaster, in order."""
        for attempt in range(5):
            try:
                self._job_master(address).update_task_execution_state(update)
                break
            except RpcError as e:
                if attempt == 4:
                    logger.error("Could not report %s of %s to the JobMaster: %s", update.state.value,
                                 update.execution_id, e)
                else:
                    time.sleep(0.2 * (attempt + 1))
        if update.state.is_terminal:
            self.run_async(self.tasks.pop, update.execution_id, None)

    def cancel_task(self, execution_id: str) -> None:
        task = self.tasks.get(execution_id)
        if task is not None:
            task.cancel()

    def free_slot(self, allocation_id: str, reason: str) -> None:
        def free() -> None:
            found = self.slots.find(allocation_id)
            if found is None:
                return
            for task in list(self.tasks.values()):
                if task.tdd.allocation_id == allocation_id and not task.state.is_terminal:
                    task.cancel()
            self.slots.free(allocation_id)
            # result partitions of the job's tasks in this slot (BATCH keeps them past their task)
            for partition_id in self._partitions_by_allocation.pop(allocation_id, []):
                self.network.release_partition(partition_id)
            logger.info("Freed slot %s (%s)", allocation_id, reason)

        self.call(free)

    def is_running_task(self) -> bool:
        return any(not t.state.is_terminal for t in self.tasks.values())


__all__ = ["TaskExecutor", "ExecutionState"]
