"""The Prometheus reporter (Flink's PrometheusReporter): ``GET /metrics`` in Prometheus' text
exposition format (version 0.0.4), served by every JobManager and TaskManager process.

Names follow Flink's reporter with ``pyflow`` for ``flink``: the scope's parts, then the metric's
name, every character outside ``[a-zA-Z0-9_:]`` as ``_``
(``pyflow_taskmanager_job_task_numRecordsInPerSecond``); the scope's variables are labels
(``job_id``, ``task_name``, ``subtask_index``, ``tm_id``, ...). Counters are ``counter``, gauges
``gauge``. Standard library only: one ``ThreadingHTTPServer`` per process, bound to
``metrics.reporter.prom.host`` on the first free port of ``metrics.reporter.prom.port``.

>>> print(render([MetricSample(("jobmanager",), "numRegisteredTaskManagers", "gauge", 2,
...                            (("host", "h1"),))]), end="")
# HELP pyflow_jobmanager_numRegisteredTaskManagers numRegisteredTaskManagers (scope jobmanager)
# TYPE pyflow_jobmanager_numRegisteredTaskManagers gauge
pyflow_jobmanager_numRegisteredTaskManagers{host="h1"} 2
"""

from __future__ import annotations

import errno
import logging
import math
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

from pyflow.config import Configuration, options
from pyflow.errors import ConfigurationError

logger = logging.getLogger(__name__)

__all__ = ["CONTENT_TYPE", "MetricSample", "PrometheusReporter", "PrometheusReporterConfiguration",
           "prometheus_name", "render", "start_prometheus_reporter"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "pyflow"
_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One value of one metric: its scope (``("taskmanager", "job", "task")``), Flink's metric name,
    its kind (``counter`` or ``gauge``), and the scope's variables as labels."""

    scope: tuple[str, ...]
    name: str
    kind: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


def prometheus_name(scope: tuple[str, ...], name: str) -> str:
    """The Prometheus name of a metric: Flink's reporter's, with ``pyflow`` for ``flink``.

    >>> prometheus_name(("taskmanager",), "Status.Process.CPU.Load")
    'pyflow_taskmanager_Status_Process_CPU_Load'
    """
    return _INVALID_NAME.sub("_", "_".join((PREFIX, *scope, name)))


def _value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _label_value(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(samples: Iterable[MetricSample]) -> str:
    """The text exposition of ``samples``: one HELP and TYPE line per metric, then its samples."""
    families: dict[str, list[MetricSample]] = {}
    for sample in samples:
        families.setdefault(prometheus_name(sample.scope, sample.name), []).append(sample)
    lines: list[str] = []
    for name, members in families.items():
        first = members[0]
        help_text = f"{first.name} (scope {'.'.join(first.scope)})".replace("\\", "\\\\").replace("\n", " ")
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {first.kind}")
        for sample in members:
            labels = ",".join(f'{_INVALID_NAME.sub("_", k)}="{_label_value(v)}"' for k, v in sample.labels)
            lines.append(f"{name}{{{labels}}} {_value(sample.value)}" if labels else f"{name} {_value(sample.value)}")
    return "\n".join(lines) + "\n" if lines else ""


@dataclass(frozen=True, slots=True)
class PrometheusReporterConfiguration:
    """Where the reporter listens: ``host`` and the ``ports`` to try in order (0: any free port).

    >>> PrometheusReporterConfiguration.from_config(Configuration({"metrics.reporter.prom.port": "9249-9251"}))
    PrometheusReporterConfiguration(host='127.0.0.1', ports=(9249, 9250, 9251))
    >>> PrometheusReporterConfiguration.from_config(Configuration()) is None  # not configured: off
    True
    """

    host: str
    ports: tuple[int, ...]

    @classmethod
    def from_config(cls, conf: Configuration) -> "PrometheusReporterConfiguration | None":
        text = conf.get(options.PROMETHEUS_PORT).strip()
        if not text:
            return None
        match = re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", text)
        first = int(match.group(1)) if match else -1
        last = int(match.group(2) or first) if match else -1
        if not 0 <= first <= last <= 65535:
            raise ConfigurationError(
                f"Invalid value '{text}' for '{options.PROMETHEUS_PORT.key}': expected a port or a port "
                f"range, low to high within 0..65535, e.g. '{options.PROMETHEUS_PORT.key}: 9249-9260'.")
        return cls(host=conf.get(options.PROMETHEUS_HOST), ports=tuple(range(first, last + 1)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    reporter: "PrometheusReporter"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        if path not in ("/metrics", "/"):
            self._send(404, f"Not found: {path}. Prometheus metrics are at /metrics.\n".encode(), "text/plain")
            return
        try:
            body = render(self.server.reporter.collect()).encode()
        except Exception as e:  # noqa: BLE001 - a scrape never stops the server
            logger.exception("Collecting metrics for Prometheus failed")
            self._send(500, f"Collecting metrics failed: {type(e).__name__}: {e}\n".encode(), "text/plain")
            return
        self._send(200, body, CONTENT_TYPE)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self.do_GET()

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        logger.debug("Prometheus reporter %s %s", self.address_string(), format % args)


class PrometheusReporter:
    """Serves ``collect()`` (a list of :class:`MetricSample`) at ``GET /metrics`` on ``host`` at
    the first free port of ``ports``. ``start()``/``close()`` are idempotent."""

    def __init__(self, collect: Callable[[], list[MetricSample]], *, host: str, ports: tuple[int, ...],
                 name: str = "pyflow"):
        self.collect = collect
        self.host = host
        self.ports = ports
        self.name = name
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """``host:port`` of the running server."""
        return f"{self.host}:{self.port}"

    def start(self) -> "PrometheusReporter":
        with self._lock:
            if self._server is not None:
                return self
            self._server = self._bind()
            self._server.reporter = self
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                            name=f"prometheus-reporter-{self.port}", daemon=True)
            self._thread.start()
        logger.info("Prometheus reporter of %s listening on http://%s/metrics", self.name, self.address)
        return self

    def _bind(self) -> _Server:
        for port in self.ports:
            try:
                return _Server((self.host, port), _Handler)
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
        shown = ", ".join(map(str, self.ports[:5])) + (" ..." if len(self.ports) > 5 else "")
        raise OSError(errno.EADDRINUSE, f"No free port for the Prometheus reporter on {self.host} among {shown}; "
                                        f"set {options.PROMETHEUS_PORT.key} to a range with a port for every "
                                        "process of this host, e.g. 9249-9260")

    def close(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(5)


def start_prometheus_reporter(conf: Configuration, collect: Callable[[], list[MetricSample]],
                              name: str) -> PrometheusReporter | None:
    """The started reporter of this process, or None when ``metrics.reporter.prom.port`` is unset.

    A malformed option raises ConfigurationError. When no port of the range is free, the process
    goes on without the reporter and logs why (as Flink does): metrics are not worth failing for.
    """
    reporter_conf = PrometheusReporterConfiguration.from_config(conf)
    if reporter_conf is None:
        return None
    reporter = PrometheusReporter(collect, host=reporter_conf.host, ports=reporter_conf.ports, name=name)
    try:
        return reporter.start()
    except OSError as e:
        logger.error("The Prometheus reporter of %s is not running: %s", name, e.strerror or e)
        return None
