"""TaskExecutor: the endpoint of a TaskManager process (Flink's TaskExecutor).

It registers with the ResourceManager, offers allocated slots to the JobMaster that asked for
them, runs submitted tasks in threads, and heartbeats the JobManager. Its state changes on its
own main thread only; tasks run on theirs and report through ``_report``.

Registering, heartbeating and registering again happen on one background thread (the
connection loop). A TaskManager that cannot reach the JobManager for ``heartbeat.timeout``
cancels its tasks and frees its slots; then a TaskManager of an embedded cluster
(``exit_on_jobmanager_loss``) stops, so it never lingers as an orphan, while a standalone one
registers again, as Flink's do. Registering gives up after ``taskmanager.registration.timeout``,
and the process exits with code 1.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from pyflow.config import Configuration, NetworkConfiguration, TaskManagerConfiguration, resolve_log_dir
from pyflow.errors import ResourceError, RpcError
from pyflow.runtime.deployment import TaskDeploymentDescriptor
from pyflow.runtime.messages import (
    ExecutionState, SlotOffer, TaskExecutionStateUpdate, TaskExecutorRegistration, TaskManagerLocation,
)
from pyflow.runtime.log_files import (
    MAX_LOG_BYTES, LogFile, LogTail, list_log_files, read_log_tail, resolve_log_file,
)
from pyflow.runtime.metrics.process import process_metrics
from pyflow.runtime.metrics.prometheus import MetricSample, start_prometheus_reporter
from pyflow.runtime.metrics.scopes import taskmanager_samples
from pyflow.runtime.network import NetworkEnvironment
from pyflow.runtime.rpc.endpoint import RpcEndpoint
from pyflow.runtime.rpc.gateways import RemoteJobMasterGateway, RemoteResourceManagerGateway
from pyflow.runtime.rpc.server import add_task_executor, start_server
from pyflow.runtime.taskmanager.slot_table import SlotAllocation, SlotTable
from pyflow.runtime.taskmanager.task import Task

logger = logging.getLogger(__name__)


class TaskExecutor(RpcEndpoint):
    def __init__(self, conf: Configuration, jobmanager_address: str, log_file: str = "", *,
                 exit_on_jobmanager_loss: bool = False):
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
        self._metrics_reporter = None
        self.rpc_address = ""
        #: True for an embedded cluster's TaskManager: it ends with its JobManager
        self.exit_on_jobmanager_loss = exit_on_jobmanager_loss

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.network.start()
        self._server, port = start_server(self.tm_conf.bind_host, self.tm_conf.rpc_port, add_task_executor(self))
        self.rpc_address = f"{self.tm_conf.host}:{port}"
        self._metrics_reporter = start_prometheus_reporter(self.conf, self._metric_samples,
                                                           f"TaskManager {self.resource_id}")
        # outgoing blocking RPCs never run on the main thread (the JobManager may be calling us)
        threading.Thread(target=self._connection_loop, name="heartbeat", daemon=True).start()

    def _connection_loop(self) -> None:
        """Register, then heartbeat until the process ends (``_heartbeat`` registers again)."""
        if not self._register_or_exit():
            return
        while not self.terminated.wait(self.tm_conf.heartbeat_interval_s):
            self._heartbeat()

    def _register_or_exit(self) -> bool:
        """Register; if that fails for good, end the process with exit code 1."""
        try:
            self._register()
            return True
        except ResourceError as e:
            if not self.terminated.is_set():
                logger.error("%s; exiting", e)
                self.exit_code = 1
                self.shutdown("registration failed")
            return False

    def _register(self) -> None:
        host, data_port = self.network.address
        registration = TaskExecutorRegistration(
            resource_id=self.resource_id, rpc_address=self.rpc_address, data_host=host,
            data_port=data_port, num_slots=self.tm_conf.num_slots,
            managed_memory=self.tm_conf.managed_memory, network_memory=self.tm_conf.network_memory,
            pid=os.getpid(), hostname=socket.gethostname(), log_file=self.log_file)
        started = time.monotonic()
        deadline = started + self.tm_conf.registration_timeout_s
        delay = 0.05
        next_report = started
        while True:
            if self.terminated.is_set():
                raise ResourceError(f"TaskManager {self.resource_id} stopped before it registered")
            try:
                accepted, message = self._rm.register_task_executor(registration, timeout=10)
                if not accepted:
                    raise ResourceError(f"The ResourceManager refused TaskManager {self.resource_id}: {message}")
                logger.info("TaskManager %s registered at the ResourceManager %s", self.resource_id,
                            self.jobmanager_address)
                self._last_heartbeat_ok = time.monotonic()
                return
            except RpcError as e:
                now = time.monotonic()
                if now > deadline:
                    raise ResourceError(
                        f"TaskManager {self.resource_id} could not register at the JobManager "
                        f"{self.jobmanager_address} within taskmanager.registration.timeout "
                        f"({self.tm_conf.registration_timeout_s:.0f} s): {e}. Start the JobManager, or "
                        f"point jobmanager.rpc.address and jobmanager.rpc.port at it") from e
                if now >= next_report:  # a line every 30 s while the JobManager is away
                    logger.info("TaskManager %s cannot register at the JobManager %s yet (%s); retrying "
                                "for %.0f s more (taskmanager.registration.timeout)", self.resource_id,
                                self.jobmanager_address, e, deadline - now)
                    next_report = now + 30
                self.terminated.wait(delay)
                delay = min(delay * 2, 1.0)
                # a fresh channel: gRPC's own reconnect backoff grows to minutes while nobody answers
                stale, self._rm = self._rm, RemoteResourceManagerGateway(self.jobmanager_address)
                stale.close()

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
        if self._metrics_reporter is not None:
            self._metrics_reporter.close()
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
                self._reconnect("the ResourceManager does not know this TaskManager")
        except RpcError as e:
            silent = time.monotonic() - self._last_heartbeat_ok
            if silent <= self.tm_conf.heartbeat_timeout_s:
                logger.warning("Heartbeat to the JobManager failed (%s); retrying", e)
            elif self.exit_on_jobmanager_loss:
                logger.error("TaskManager %s lost the JobManager at %s: no heartbeat answer for %.1f s "
                             "(heartbeat.timeout); stopping", self.resource_id, self.jobmanager_address, silent)
                self.exit_code = 1
                threading.Thread(target=self.shutdown, args=("JobManager lost",), daemon=True).start()
            else:
                logger.error("TaskManager %s lost the JobManager at %s: no heartbeat answer for %.1f s "
                             "(heartbeat.timeout); cancelling its tasks and registering again", self.resource_id,
                             self.jobmanager_address, silent)
                self._reconnect("JobManager lost")

    def _reconnect(self, reason: str) -> None:
        """The ResourceManager forgot this TaskManager (it restarted, or timed us out): the jobs of
        our slots are gone with it. Free every slot (cancelling its tasks), then register anew."""
        try:
            allocations = self.call(lambda: [a.allocation_id for a in self.slots.allocations()])
            for allocation_id in allocations:
                self.free_slot(allocation_id, reason)
        except RuntimeError:  # the endpoint closed: the process is ending anyway
            return
        with self._gateway_lock:
            stale = list(self._job_masters.values())
            self._job_masters.clear()
        for gw in stale:
            gw.close()
        self._register_or_exit()

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

    def stop_task(self, execution_id: str) -> None:
        """Graceful stop of a source task (the JobMaster stops a job): see ``Task.stop``. A task
        that already ended, or is not known here any more, has nothing to stop."""
        task = self.tasks.get(execution_id)
        if task is not None and not task.stop():
            logger.warning("Task %s (%s) is not a source; a stop applies to source tasks only",
                           task.tdd.task_name, execution_id)

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

    # ---- logs and metrics, for the JobManager's REST API (any thread) ---------------------------------

    def _log_dir(self) -> str:
        return os.path.dirname(self.log_file) if self.log_file else resolve_log_dir(self.conf)

    def request_log_list(self) -> list[LogFile]:
        return list_log_files(self._log_dir())

    def request_log_file(self, name: str, file_type: str, max_bytes: int) -> LogTail:
        """The end of a log file: ``name`` from the log list, or (no name) this process's ``LOG``
        or ``STDOUT``. Raises FileNotFoundError saying why there is none."""
        path = resolve_log_file(f"TaskManager {self.resource_id}", self.log_file, self._log_dir(), name,
                                file_type)
        try:
            return read_log_tail(path, min(max(1, max_bytes), MAX_LOG_BYTES))
        except OSError as e:
            raise FileNotFoundError(f"TaskManager {self.resource_id} cannot read {path}: {e.strerror or e}") from e

    def request_metrics(self) -> dict[str, float]:
        """This TaskManager's own metrics (scope taskmanager: Status.Process.*)."""
        return process_metrics().snapshot()

    def _metric_samples(self) -> list[MetricSample]:
        tasks = [(task.metric_scope, task.metrics()) for task in list(self.tasks.values())]
        return taskmanager_samples(self.resource_id, socket.gethostname(), self.request_metrics(), tasks)


__all__ = ["TaskExecutor", "ExecutionState"]
