"""RestClusterClient: the client side of a session cluster's REST API (Flink's RestClusterClient).

Used by the ``remote`` pipeline executor (:mod:`pyflow.deploy.executors`), the remote
:class:`~pyflow.api.job_client.JobClient` and the ``pyflow`` CLI verbs (list, cancel, stop,
savepoint, progress). Standard library only (``http.client``); one connection per call, so one
client may be used from several threads.

Every failure is a :class:`RestClientError` with a one-line ``message`` and a ``hint``: an error
answer of the JobManager (its ``{"errors": [...]}`` text, with the HTTP ``status``), or
:class:`ClusterUnreachableError` when nothing answers at the address - naming the address and how
to start a cluster (``scripts/start-cluster.sh``) or point at one (``-m host:port``).

>>> client = RestClusterClient("127.0.0.1:8081")                 # doctest: +SKIP
>>> job_id = client.submit_job(job_graph, artifacts=["job.py"])  # doctest: +SKIP
>>> client.job_status(job_id)                                    # doctest: +SKIP
<JobStatus.RUNNING: 'RUNNING'>
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import quote

from pyflow.config import Configuration, options
from pyflow.errors import ConfigurationError, PyflowError
from pyflow.runtime.messages import JobStatus

#: what to do when nothing answers at the REST address
UNREACHABLE_HINT = ("start a session cluster with scripts/start-cluster.sh, or give the REST address of a running "
                    "one with -m host:port (or rest.address and rest.port)")
_CHUNK = 1 << 16


class RestClientError(PyflowError):
    """A REST call failed: ``message`` says why, ``hint`` what to do; ``status`` is the HTTP status
    of an error answer (None when there was no answer)."""

    def __init__(self, message: str, hint: str | None = None, status: int | None = None):
        super().__init__(f"{message}. Hint: {hint}" if hint else message)
        self.message = message
        self.hint = hint
        self.status = status


class ClusterUnreachableError(RestClientError, ConnectionError):
    """Nothing answers at the REST address: no cluster runs there, or it cannot be reached."""


def parse_address(text: str, what: str = "-m/--jobmanager") -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too; an ``http://`` prefix is allowed) -> (host, port).

    >>> parse_address("127.0.0.1:8081")
    ('127.0.0.1', 8081)
    """
    value = text.strip()
    if value.startswith("http://"):
        value = value[len("http://"):].rstrip("/")
    host, sep, port_text = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) <= 65535 or "/" in host:
        raise ConfigurationError(f"Invalid {what} '{text}': expected host:port, e.g. 127.0.0.1:8081")
    return host, int(port_text)


class RestClusterClient:
    def __init__(self, address: str, *, connect_timeout_s: float = 15.0, read_timeout_s: float = 300.0):
        self.host, self.port = parse_address(address, "REST address")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s

    @classmethod
    def from_config(cls, conf: Configuration) -> "RestClusterClient":
        """A client of the cluster at ``rest.address``:``rest.port``, with the ``rest.*`` client timeouts."""
        host = conf.get(options.REST_ADDRESS)
        address = f"[{host}]:{conf.get(options.REST_PORT)}" if ":" in host else f"{host}:{conf.get(options.REST_PORT)}"
        return cls(address, connect_timeout_s=conf.get(options.REST_CONNECTION_TIMEOUT).total_seconds(),
                   read_timeout_s=conf.get(options.REST_IDLENESS_TIMEOUT).total_seconds())

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    # ---- jobs --------------------------------------------------------------------------------------

    def submit_job(self, job_graph: Any, artifacts: Sequence[str | os.PathLike] = ()) -> str:
        """Upload ``job_graph`` (and the ``artifacts`` files) with ``POST /jobs``; the job id."""
        from pyflow.rest.job_graph_file import CONTENT_TYPE, encode_job_graph
        from pyflow.rest.multipart import Part, encode_multipart

        graph_name = f"{job_graph.job_id}.jobgraph"
        parts = [Part("file_0", encode_job_graph(job_graph), filename=graph_name, content_type=CONTENT_TYPE)]
        entries = []
        for i, path in enumerate(artifacts, start=1):
            path = Path(path)
            try:
                data = path.read_bytes()
            except OSError as e:
                raise RestClientError(f"Cannot read the job's file '{path}': {e}", "check that it exists") from e
            entries.append({"entryName": path.name, "fileName": path.name})
            parts.append(Part(f"file_{i}", data, filename=path.name, content_type="text/x-python"))
        request = {"jobGraphFileName": graph_name, "jobArtifactFileNames": entries}
        parts.insert(0, Part("request", json.dumps(request).encode(), content_type="application/json"))
        body, content_type = encode_multipart(parts)
        answer = self._call("POST", "/v1/jobs", body, content_type)
        url = answer.get("jobUrl", "") if isinstance(answer, dict) else ""
        return url.rstrip("/").rsplit("/", 1)[-1] or job_graph.job_id

    def list_jobs(self) -> list[dict[str, Any]]:
        """Every job of the cluster (``GET /jobs/overview``): jid, name, state, start-time, ..."""
        return self._call("GET", "/v1/jobs/overview")["jobs"]

    def job_details(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/:jobid``: state, vertices with their record and byte counts, plan."""
        return self._call("GET", f"/v1/jobs/{_path(job_id)}")

    def job_status(self, job_id: str) -> JobStatus:
        return JobStatus(self.job_details(job_id)["state"])

    def job_exceptions(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{_path(job_id)}/exceptions")

    def execution_result(self, job_id: str) -> dict[str, Any] | None:
        """Flink's JobExecutionResult of an ended job, or None while it runs."""
        answer = self._call("GET", f"/v1/jobs/{_path(job_id)}/execution-result")
        if answer.get("status", {}).get("id") != "COMPLETED":
            return None
        return answer["job-execution-result"]

    def cancel_job(self, job_id: str) -> None:
        self._call("PATCH", f"/v1/jobs/{_path(job_id)}?mode=cancel")

    def vertex_metrics(self, job_id: str, vertex_id: str, names: Sequence[str], agg: str = "sum") -> dict[str, float]:
        """Metrics of one vertex aggregated over its subtasks; names nobody reports are left out."""
        query = f"get={','.join(names)}&agg={agg}"
        answer = self._call("GET", f"/v1/jobs/{_path(job_id)}/vertices/{_path(vertex_id)}/subtasks/metrics?{query}")
        return {m["id"]: m[agg] for m in answer if agg in m}

    # ---- stop and savepoints (Flink's asynchronous operations) -------------------------------------

    def stop_job(self, job_id: str, target_directory: str | None = None, drain: bool = False) -> str:
        """``POST /jobs/:jobid/stop``; the trigger id to poll with :meth:`wait_for_operation`."""
        body = json.dumps({"targetDirectory": target_directory, "drain": drain}).encode()
        return self._call("POST", f"/v1/jobs/{_path(job_id)}/stop", body, "application/json")["request-id"]

    def trigger_savepoint(self, job_id: str, target_directory: str | None = None, cancel_job: bool = False) -> str:
        """``POST /jobs/:jobid/savepoints``; the trigger id to poll with :meth:`wait_for_operation`."""
        body = json.dumps({"target-directory": target_directory, "cancel-job": cancel_job}).encode()
        return self._call("POST", f"/v1/jobs/{_path(job_id)}/savepoints", body, "application/json")["request-id"]

    def operation_status(self, job_id: str, trigger_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{_path(job_id)}/savepoints/{_path(trigger_id)}")

    def wait_for_operation(self, job_id: str, trigger_id: str, *, poll_s: float = 0.2,
                           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        """Poll until ``status.id`` is COMPLETED; its ``operation`` (``location`` or ``failure-cause``)."""
        delay = poll_s
        while True:
            answer = self.operation_status(job_id, trigger_id)
            if answer.get("status", {}).get("id") == "COMPLETED":
                return answer.get("operation") or {}
            sleep(delay)
            delay = min(delay * 1.5, 2.0)

    # ---- HTTP --------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> Any:
        status, data = self._exchange(method, path, body, content_type)
        try:
            answer = json.loads(data) if data else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            answer = None
        if status >= 400:
            errors = answer.get("errors") if isinstance(answer, dict) else None
            message = "; ".join(map(str, errors)) if errors else data[:200].decode("utf-8", "replace") or "no details"
            raise RestClientError(f"The JobManager at {self.address} answered {method} {path.removeprefix('/v1')} "
                                  f"with {status}: {message}", _hint_for(status), status=status)
        if answer is None:
            raise RestClientError(f"The JobManager at {self.address} answered {method} {path} with something that "
                                  "is not JSON", "check that the address is a pyflow JobManager's REST endpoint",
                                  status=status)
        return answer

    def _exchange(self, method: str, path: str, body: bytes | None, content_type: str | None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout_s)
        try:
            try:
                conn.connect()
            except socket.timeout:
                raise ClusterUnreachableError(
                    f"Cannot reach the JobManager's REST endpoint at {self.address}: no answer within "
                    f"{self.connect_timeout_s:g} s (rest.connection-timeout)", UNREACHABLE_HINT) from None
            except OSError as e:
                reason = "connection refused" if isinstance(e, ConnectionRefusedError) else (e.strerror or str(e))
                raise ClusterUnreachableError(f"Cannot reach the JobManager's REST endpoint at {self.address} "
                                              f"({reason})", UNREACHABLE_HINT) from None
            assert conn.sock is not None
            conn.sock.settimeout(self.read_timeout_s)
            cut_off = self._send(conn, method, path, body, content_type)
            try:
                response = conn.getresponse()
                return response.status, response.read()
            except socket.timeout:
                raise RestClientError(f"The JobManager at {self.address} did not answer {method} {path} within "
                                      f"{self.read_timeout_s:g} s (rest.idleness-timeout)",
                                      "check the JobManager's log; raise rest.idleness-timeout for slow uploads"
                                      ) from None
            except (OSError, http.client.HTTPException) as e:
                if cut_off:
                    raise RestClientError(
                        f"The JobManager at {self.address} closed the connection while the request body "
                        f"({len(body or b'')} bytes) was being sent; it is most likely larger than the cluster's "
                        "rest.server.max-content-length",
                        "raise rest.server.max-content-length on the cluster, or make the job smaller (large "
                        "collections belong in files, read with a file source)") from None
                raise ClusterUnreachableError(f"The JobManager at {self.address} closed the connection without an "
                                              f"answer ({type(e).__name__}: {e})", UNREACHABLE_HINT) from None
        finally:
            conn.close()

    def _send(self, conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
              content_type: str | None) -> bool:
        """Send the request; True if the server cut the body off (it answers before reading a body
        that is too large, and closes)."""
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("Accept", "application/json")
        if content_type:
            conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(len(body or b"")))
        try:
            conn.endheaders()
            view = memoryview(body or b"")
            for start in range(0, len(view), _CHUNK):
                conn.send(view[start:start + _CHUNK])
        except (BrokenPipeError, ConnectionResetError):
            return True
        except socket.timeout:
            raise RestClientError(f"Sending {method} {path} to the JobManager at {self.address} stalled for "
                                  f"{self.read_timeout_s:g} s (rest.idleness-timeout)",
                                  "check the JobManager's log and the network") from None
        return False


def _path(segment: str) -> str:
    return quote(segment, safe="")


def _hint_for(status: int) -> str:
    if status == 404:
        return "`pyflow list -a` lists the jobs of the cluster; check the job id"
    if status == 409:
        return "the job is not in a state that allows this; `pyflow list -a` shows its state"
    if status == 413:
        return ("raise rest.server.max-content-length on the cluster, or make the job smaller (large collections "
                "belong in files, read with a file source)")
    if status >= 500:
        return "the JobManager's log has the details"
    return "the message above names what the JobManager refused"
