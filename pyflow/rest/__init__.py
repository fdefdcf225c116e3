"""REST API of the JobManager (Flink's WebMonitorEndpoint): Flink's paths and JSON shapes.

The JobManager starts a :class:`RestServer` next to its RPC server (``jobmanager.rest_address``
is its ``host:port``; options ``rest.*``). Every path is also served under ``/v1``, and
``GET /openapi.json`` documents them all:

- cluster: ``GET /config``, ``GET /overview``, ``GET /jobmanager/config``, ``DELETE /cluster``
- jobs: ``GET /jobs``, ``GET /jobs/overview``, ``GET|PATCH /jobs/:jobid`` (PATCH cancels),
  ``GET /jobs/:jobid/plan``, ``/exceptions``, ``/config``, ``/vertices/:vertexid``,
  ``/vertices/:vertexid/subtasks/metrics``
- TaskManagers: ``GET /taskmanagers``, ``GET /taskmanagers/:taskmanagerid``
- submission (``submission``): ``POST /jobs`` (multipart: the job graph file of
  ``job_graph_file`` and artifacts, parsed by ``multipart``), ``GET /jobs/:jobid/execution-result``;
  its client side is ``client`` (:class:`~pyflow.rest.client.RestClusterClient`)
- stop and savepoints (``operations``): ``POST /jobs/:jobid/stop`` (a graceful stop that drains),
  ``POST /jobs/:jobid/savepoints`` (fails: no checkpointing yet), ``GET /jobs/:jobid/savepoints/:triggerid``;
  trigger ids live in ``operation_cache`` (:class:`~pyflow.rest.operation_cache.OperationCache`)
- metrics (``metrics_handlers``): ``GET /jobmanager/metrics``, ``/taskmanagers/:taskmanagerid/metrics``,
  ``/jobs/:jobid/metrics``, ``/jobs/:jobid/vertices/:vertexid/metrics`` and ``/backpressure``,
  ``/jobs/:jobid/checkpoints`` and ``/checkpoints/config``
- logs (``logs``): ``GET /jobmanager/logs``, ``/logs/:filename``, ``/log``, ``/stdout``, and the same
  under ``/taskmanagers/:taskmanagerid`` (asked from the TaskManager over RPC)
- Web UI (``webui``): ``GET /`` (the page) and ``GET /web/:filename`` (its scripts and styles, from
  the package folder ``webui/``)

Errors are Flink's ``{"errors": ["..."]}`` with their status (400, 404, 405, 409, 413, 500, 503).
Not in this release: jar upload (``/jars``), savepoints (their triggers fail honestly), checkpointing
(the checkpoint statistics are those of a job without checkpoints).

Modules: ``server`` (HTTP, lifecycle), ``router`` (route table, matching; pure), ``handlers``
(the endpoints), ``snapshots`` (state read on the endpoints' main threads), ``openapi`` (the
hand-written document), ``config`` (:class:`RestServerConfiguration`), ``errors``.

>>> from pyflow.testing import test_cluster                      # doctest: +SKIP
>>> import json, urllib.request                                  # doctest: +SKIP
>>> with test_cluster() as cluster:                              # doctest: +SKIP
...     url = f"http://{cluster.jobmanager.rest_address}/v1/overview"
...     json.load(urllib.request.urlopen(url))["taskmanagers"]
0
"""

from pyflow.rest.config import RestServerConfiguration
from pyflow.rest.errors import RestError
from pyflow.rest.handlers import RestHandlers
from pyflow.rest.server import RestServer

__all__ = ["RestError", "RestHandlers", "RestServer", "RestServerConfiguration"]
