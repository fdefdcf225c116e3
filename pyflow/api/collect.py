"""execute_and_collect(): the job's results streamed back into the client as an iterator.

The client opens a TCP server; the job ends in a non-parallel collect sink that connects to it
and sends Arrow IPC batches (protocol in ``pyflow.runtime.operators.sinks``), after a random token
that proves it is this job's sink. The server listens on 127.0.0.1 for an embedded cluster, and
for another target on the address the target's executor names (``collect_address``: for
``remote``, the local address of the route to the JobManager's REST endpoint), so that remote
TaskManagers can reach it. The iterator yields records as they arrive; when the stream ends it
waits for the job's result, so a failed job raises JobExecutionError with the user's traceback
instead of ending quietly.
"""

from __future__ import annotations

import secrets
import socket
import struct
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pyflow.errors import NetworkError
from pyflow.runtime import records
from pyflow.runtime.operators.sinks import CollectSinkOperator

if TYPE_CHECKING:  # pragma: no cover
    from pyflow.api.datastream import DataStream

_LEN = struct.Struct("!I")


class CollectIterator:
    def __init__(self, server: socket.socket, client, token: str, limit: int | None):
        self._server = server
        self._client = client
        self._token = token
        self._limit = limit
        self._conn: socket.socket | None = None
        self._rows: list[Any] = []
        self._position = 0
        self._returned = 0
        self._done = False

    @property
    def job_client(self):
        return self._client

    def __iter__(self) -> CollectIterator:
        return self

    def __next__(self) -> Any:
        if self._limit is not None and self._returned >= self._limit:
            self.close()
            raise StopIteration
        while self._position >= len(self._rows):
            if self._done or not self._fill():
                self._finish()
                raise StopIteration
        row = self._rows[self._position]
        self._position += 1
        self._returned += 1
        return row

    def _read(self, n: int) -> bytes | None:
        return self._read_from(self._conn, n)

    def _accept(self) -> bool:
        self._server.settimeout(0.5)
        while True:
            try:
                conn, _ = self._server.accept()
            except socket.timeout:
                if self._client.get_job_status().is_globally_terminal:
                    return False
                continue
            conn.settimeout(None)
            header = self._read_from(conn, 4)
            token = self._read_from(conn, _LEN.unpack(header)[0]) if header else None
            if token == self._token.encode():
                self._conn = conn
                return True
            conn.close()

    @staticmethod
    def _read_from(conn: socket.socket, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _fill(self) -> bool:
        if self._conn is None and not self._accept():
            return False
        header = self._read(4)
        if header is None:
            return False  # the sink went away: the job's result says why
        size = _LEN.unpack(header)[0]
        if size == 0:
            self._done = True
            return False
        payload = self._read(size)
        if payload is None:
            return False
        batch = pa.ipc.open_stream(payload).read_next_batch()
        self._rows = records.batch_to_rows(batch)
        self._position = 0
        return True

    def _finish(self) -> None:
        self._close_sockets()
        self._client.get_job_execution_result()  # raises if the job failed

    def _close_sockets(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._server.close()

    def close(self) -> None:
        """Stop reading; a job still running is cancelled."""
        self._close_sockets()
        if not self._client.get_job_status().is_globally_terminal:
            self._client.cancel()

    def __enter__(self) -> CollectIterator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def collect(stream: DataStream, job_name: str | None, limit: int | None) -> CollectIterator:
    address = stream._env._collect_address()
    server = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.bind((address, 0))
        server.listen(4)
    except OSError as e:
        server.close()
        raise NetworkError(f"execute_and_collect() cannot open a socket on {address} for the job's results: "
                           f"{e}") from e
    host, port = server.getsockname()[:2]
    token = secrets.token_hex(16)
    name = "Sink: Collect"
    sink = stream._add(name, CollectSinkOperator(name, host, port, token), "sink")
    sink.non_parallel = True
    try:
        client = stream._env.execute_async(job_name)
    except BaseException:
        server.close()
        raise
    return CollectIterator(server, client, token, limit)
