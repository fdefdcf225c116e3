"""REST API of the JobManager (Flink's WebMonitorEndpoint): Flink's paths and JSON shapes.

The JobManager starts a :class:`RestServer` next to its RPC server (``jobmanager.rest_address``
is its ``host:port``; options ``rest.*``). Every path is also served under ``/v1``, and
``GET /openapi.json`` documents them all:

- cluster: ``GET /config``, ``GET /overview``, ``GET /jobmanager/config``, ``DELETE /cluster``
- jobs: ``GET /jobs``, ``GET /jobs/overview``, ``GET|PATCH /jobs/:jobid`` (PATCH cancels),
  ``GET /jobs/:jobid/plan``, ``/exceptions``, ``/config``, ``/vertices/:vertexid``,
  ``/vertices/:vertexid/subtasks/metrics``
- TaskManagers: ``GET /taskmanagers``, ``GET /taskmanagers/:taskmanagerid``

Errors are Flink's ``{"errors": ["..."]}`` with their status (400, 404, 405, 409, 413, 500, 503).
Not in this release: job submission (jar upload), savepoints, stop-with-savepoint, checkpoints,
backpressure, logs, the Web UI.

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
