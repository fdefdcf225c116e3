"""RestServer: the JobManager's HTTP endpoint (Flink's WebMonitorEndpoint), standard library only.

A ``ThreadingHTTPServer`` on its own thread; each request is parsed, matched against the
:class:`~pyflow.rest.router.Router`, answered with JSON (or a handler's
:class:`~pyflow.rest.router.RawResponse`: a page, a log, Prometheus text). Every error is Flink's
``{"errors": ["..."]}`` with its status (400 malformed, 404 unknown, 405 wrong method, 413 too
large, 500 a bug, logged with its traceback); no request can stop the server.

>>> from pyflow.rest.router import Route
>>> server = RestServer([Route("GET", "/ping", lambda request: {"pong": True}, "Ping")],
...                     bind_address="127.0.0.1", bind_ports=(0,)).start()
>>> import json, urllib.request
>>> json.load(urllib.request.urlopen(f"http://127.0.0.1:{server.port}/v1/ping"))
{'pong': True}
>>> server.close()
"""

from __future__ import annotations

import enum
import errno
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from pyflow.errors import RpcTimeout
from pyflow.rest.errors import BadRequest, Forbidden, MethodNotAllowed, PayloadTooLarge, RestError
from pyflow.rest.openapi import openapi_document
from pyflow.rest.router import RawResponse, Route, Router

logger = logging.getLogger(__name__)


class Status(enum.Enum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    CLOSED = "CLOSED"


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    rest: "RestServer"


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"
    #: an idle keep-alive connection is closed after this many seconds
    timeout = 30

    def __getattr__(self, name: str) -> Any:
        # do_GET, do_PATCH, ... and every other method name: one handler decides (405 or 404)
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _handle(self) -> None:
        rest = self.server.rest
        try:
            self._refuse_cross_origin_changes()
            body = self._read_body(rest.max_content_length)
            route, request = rest.router.request(self.command, self.path, body, dict(self.headers.items()))
            status, payload = route.status, route.handler(request)
        except RpcTimeout as e:  # the endpoint's main thread is busy: the client may retry
            self._send(503, {"errors": [f"{e}; try again"]})
            return
        except RestError as e:
            if e.status >= 500:
                logger.warning("REST %s %s: %s", self.command, self.path, e)
            else:
                logger.debug("REST %s %s: %d %s", self.command, self.path, e.status, e)
            headers = {"Allow": ", ".join(e.allowed)} if isinstance(e, MethodNotAllowed) else {}
            self._send(e.status, e.body, headers)
            return
        except Exception as e:  # noqa: BLE001 - a bug answers 500 and is logged; the server goes on
            logger.exception("REST %s %s failed", self.command, self.path)
            self._send(500, {"errors": [f"Internal server error: {type(e).__name__}: {e}"]})
            return
        self._send(status, payload)

    def _refuse_cross_origin_changes(self) -> None:
        """A web page the user visits can make the browser POST (or PATCH, DELETE) to this server,
        even on 127.0.0.1, without asking first: a submitted job runs its code. Browsers name the
        page's origin in ``Origin``; a request from another origin may read nothing here, and may
        change nothing. Clients that are not browsers (the CLI, curl) send no ``Origin``, and the
        Web UI's own requests come from this very origin."""
        origin = self.headers.get("Origin")
        if origin is None or self.command in ("GET", "HEAD"):
            return
        host = (self.headers.get("Host") or "").lower()
        if urlsplit(origin).netloc.lower() != host or not host:
            self.close_connection = True
            raise Forbidden(f"Cross-origin {self.command} from {origin} refused: only pages served by this "
                            f"REST endpoint ({host or 'no Host header'}) and clients that are not browsers may "
                            f"change the cluster")

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            raise BadRequest("Chunked request bodies are not supported; send a Content-Length")
        text = self.headers.get("Content-Length")
        if text is None:
            return b""
        try:
            length = int(text)
            if length < 0:
                raise ValueError(text)
        except ValueError:
            self.close_connection = True
            raise BadRequest(f"Invalid Content-Length header '{text}'") from None
        if length > limit:
            # the body stays unread, so this connection cannot carry another request
            self.close_connection = True
            raise PayloadTooLarge(f"Request body of {length} bytes is larger than rest.server.max-content-length "
                                  f"({limit} bytes)")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(payload, RawResponse):
            data, content_type = payload.body, payload.content_type
            headers = {**payload.headers, **(headers or {})}
        else:
            data, content_type = json.dumps(payload).encode(), "application/json; charset=utf-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("REST client of %s %s went away before its answer", self.command, self.path)
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # malformed request lines and headers (before any route is matched): Flink's error shape too
        self.close_connection = True
        self._send(code, {"errors": [message or self.responses.get(code, ("Error",))[0]]})

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        logger.debug("REST %s %s", self.address_string(), format % args)


class RestServer:
    """Serves ``routes`` (and ``GET /openapi.json``) on ``bind_address`` at the first free port of
    ``bind_ports`` (0: any free port). ``start()``/``close()`` are idempotent."""

    def __init__(self, routes: list[Route], *, bind_address: str, bind_ports: tuple[int, ...],
                 advertised_address: str | None = None, max_content_length: int = 100 * 1024 * 1024):
        self.router = Router(list(routes) + [Route("GET", "/openapi.json", self._openapi,
                                                   "OpenAPI document of this REST API")])
        self.bind_address = bind_address
        self.bind_ports = bind_ports
        self.advertised_address = advertised_address or bind_address
        self.max_content_length = max_content_length
        self.status = Status.CREATED
        self.port = 0
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """``host:port`` at which clients reach this server."""
        return f"{self.advertised_address}:{self.port}"

    def _openapi(self, request: Any) -> dict[str, Any]:
        return openapi_document()

    def start(self) -> "RestServer":
        with self._lock:
            if self.status is not Status.CREATED:
                return self
            self._server = self._bind()
            self._server.rest = self
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                            name=f"rest-server-{self.port}", daemon=True)
            self._thread.start()
            self.status = Status.RUNNING
        logger.info("REST endpoint listening on %s:%d (advertised as %s)", self.bind_address, self.port,
                    self.address)
        return self

    def _bind(self) -> _HttpServer:
        last: OSError | None = None
        for port in self.bind_ports:
            try:
                return _HttpServer((self.bind_address, port), _RequestHandler)
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
                last = e
        ports = ", ".join(map(str, self.bind_ports[:5])) + (" ..." if len(self.bind_ports) > 5 else "")
        raise OSError(errno.EADDRINUSE, f"No free port for the REST endpoint on {self.bind_address} among "
                                        f"{ports}; set rest.bind-port to a free port or range") from last

    def close(self) -> None:
        with self._lock:
            if self.status is not Status.RUNNING:
                self.status = Status.CLOSED
                return
            self.status = Status.CLOSED
            server, thread = self._server, self._thread
        assert server is not None and thread is not None
        server.shutdown()
        server.server_close()
        thread.join(5)
        logger.info("REST endpoint %s stopped", self.address)

    def __enter__(self) -> "RestServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
