"""JobManager: the process-level owner of the Dispatcher, ResourceManager and JobMasters.

It starts one gRPC server that hosts the ResourceManager service and routes JobMaster calls to
the JobMaster of each job, one REST server (``pyflow.rest``; ``rest_address``), and one I/O pool
for every outgoing call. An embedded JobManager (``jobmanager.rpc.port`` 0) takes any free REST port
too. ``close()`` stops the REST server, cancels running jobs, stops every TaskManager the
ResourceDriver started, and stops the RPC server. ``DELETE /cluster`` calls
``request_shutdown()``: the owner's ``on_shutdown_request`` if it set one (a process entry point
ends its main loop and closes from its own thread), else ``close()``.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from pyflow.config import Configuration, JobManagerConfiguration, options
from pyflow.rest import RestHandlers, RestServer, RestServerConfiguration
from pyflow.rest.logs import LogHandlers
from pyflow.rest.metrics_handlers import MetricsHandlers
from pyflow.rest.operations import OperationHandlers
from pyflow.rest.submission import JobSubmissionHandlers
from pyflow.rest.webui import WebUI
from pyflow.runtime.jobmanager.dispatcher import Dispatcher
from pyflow.runtime.jobmanager.resourcemanager.driver import ResourceDriver
from pyflow.runtime.jobmanager.resourcemanager.resource_manager import ResourceManager
from pyflow.runtime.metrics.prometheus import PrometheusReporter, start_prometheus_reporter
from pyflow.runtime.metrics.scopes import jobmanager_collector
from pyflow.runtime.rpc.gateways import TaskExecutorGateways
from pyflow.runtime.rpc.server import add_job_master_router, add_resource_manager, start_server

logger = logging.getLogger(__name__)


class JobManager:
    def __init__(self, conf: Configuration, driver: ResourceDriver):
        self.conf = conf
        self.jm_conf = JobManagerConfiguration.from_config(conf)
        self.driver = driver
        self.io = ThreadPoolExecutor(max_workers=16, thread_name_prefix="jm-io")
        self.gateways = TaskExecutorGateways()
        self.rm = ResourceManager(
            driver=driver, io=self.io, gateways=self.gateways, slots_per_task_manager=conf.get(options.NUM_TASK_SLOTS),
            heartbeat_interval_s=self.jm_conf.heartbeat_interval_s,
            heartbeat_timeout_s=self.jm_conf.heartbeat_timeout_s,
            taskmanager_timeout_s=self.jm_conf.taskmanager_timeout_s,
            slot_request_timeout_s=self.jm_conf.slot_request_timeout_s)
        self.dispatcher: Dispatcher | None = None
        self._server = None
        self.address = ""
        self.rest: RestServer | None = None
        #: ``host:port`` of the REST endpoint, once started
        self.rest_address = ""
        #: the Prometheus reporter (metrics.reporter.prom.*), if configured
        self.metrics_reporter: PrometheusReporter | None = None
        self._closed = False
        self._close_lock = threading.Lock()
        #: what DELETE /cluster asks for; None: close() at once
        self.on_shutdown_request: Callable[[], None] | None = None

    def start(self) -> "JobManager":
        def register(server) -> None:
            add_resource_manager(self.rm)(server)
            add_job_master_router(lambda job_id: self.dispatcher.job_master_for(job_id) if self.dispatcher else None)(server)

        self._server, port = start_server(self.jm_conf.bind_host, self.jm_conf.rpc_port, register)
        self.address = f"{self.jm_conf.rpc_address}:{port}"
        self.dispatcher = Dispatcher(resource_manager=self.rm, rpc_address=self.address, io=self.io,
                                     gateways=self.gateways)
        self.rm.metrics_listener = self.dispatcher.forward_task_metrics
        self.rm.start(self.address)
        try:
            self._start_rest()
            self.metrics_reporter = start_prometheus_reporter(
                self.conf, jobmanager_collector(self.dispatcher, self.rm), "JobManager")
        except Exception:
            self.close()  # undo the partial start: no TaskManager or server is left behind
            raise
        logger.info("JobManager started; RPC at %s, REST at %s", self.address, self.rest_address)
        return self

    def _start_rest(self) -> None:
        rest_conf = RestServerConfiguration.from_config(self.conf, embedded=self.jm_conf.rpc_port == 0)
        self.rest = RestServer(self._rest_routes(), bind_address=rest_conf.bind_address,
                               bind_ports=rest_conf.bind_ports, advertised_address=rest_conf.address,
                               max_content_length=rest_conf.max_content_length).start()
        self.rest_address = self.rest.address

    def _rest_routes(self) -> list:
        """Every REST route of this JobManager; each handler module contributes its own list."""
        return [
            *RestHandlers(dispatcher=self.dispatcher, resource_manager=self.rm, conf=self.conf,
                          shutdown=self.request_shutdown).routes(),
            *WebUI().routes(),
            *MetricsHandlers(dispatcher=self.dispatcher, resource_manager=self.rm).routes(),
            *LogHandlers(resource_manager=self.rm, conf=self.conf).routes(),
            *OperationHandlers(dispatcher=self.dispatcher, conf=self.conf).routes(),
            *JobSubmissionHandlers(dispatcher=self.dispatcher, conf=self.conf).routes(),
        ]

    def request_shutdown(self) -> None:
        (self.on_shutdown_request or self.close)()

    def close(self) -> None:
        """Idempotent; a second caller (DELETE /cluster on a REST thread, and the owner) waits
        until the first has finished closing."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._close()

    def _close(self) -> None:
        if self.rest is not None:
            self.rest.close()
        if self.metrics_reporter is not None:
            self.metrics_reporter.close()
        if self.dispatcher is not None:
            self.dispatcher.close()
        self.rm.close()
        if self._server is not None:
            self._server.stop(grace=0.5).wait(2)
        self.io.shutdown(wait=False, cancel_futures=True)
        logger.info("JobManager at %s stopped", self.address)

    def __enter__(self) -> "JobManager":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
