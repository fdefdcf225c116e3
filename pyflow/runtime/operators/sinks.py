"""Sink operators: print, files, and collect (results streamed back to the client)."""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any

import pyarrow as pa

from pyflow.errors import NetworkError
from pyflow.runtime import fileio, records
from pyflow.runtime.operators.base import StreamOperator


class PrintSinkOperator(StreamOperator):
    """stream.print(): one line per record on the TaskManager's stdout (the console in local mode).

    As in Flink, lines are prefixed with "<subtask index + 1>> " when the sink runs with
    parallelism above 1, and ``sink_identifier`` (if given) comes first: "id:2> record".
    """

    def __init__(self, name: str, sink_identifier: str | None = None, to_stderr: bool = False):
        self.name = name
        self.sink_identifier = sink_identifier
        self.to_stderr = to_stderr

    def open(self) -> None:
        prefix = self.sink_identifier or ""
        if self.ctx.parallelism > 1:
            prefix = f"{prefix}:{self.ctx.subtask_index + 1}" if prefix else str(self.ctx.subtask_index + 1)
        self._prefix = f"{prefix}> " if prefix else ""

    def process_batch(self, batch: pa.RecordBatch) -> None:
        stream = sys.stderr if self.to_stderr else sys.stdout
        prefix = self._prefix
        stream.write("".join(f"{prefix}{_format(row)}\n" for row in records.batch_to_rows(batch)))
        stream.flush()


def _format(row: Any) -> str:
    if isinstance(row, tuple):
        return "(" + ",".join(str(v) for v in row) + ")"
    return str(row)


class FileSinkOperator(StreamOperator):
    """Writes one part file per subtask under a directory (Parquet, CSV or JSON lines)."""

    def __init__(self, name: str, path: str, format: str, options: dict[str, Any]):
        self.name = name
        self.path = path
        self.format = format
        self.options = options
        self._writer: fileio.FileWriter | None = None

    def open(self) -> None:
        if self.ctx.subtask_index == 0:
            fileio.remove_stale_parts(self.path, self.format, self.ctx.parallelism)
        self._writer = fileio.FileWriter(self.path, self.format, self.ctx.subtask_index, **self.options)

    def process_batch(self, batch: pa.RecordBatch) -> None:
        self._writer.write(batch)

    def end_input(self) -> None:
        # the input is complete: publish the part file
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        # still open here means the task failed or was cancelled: drop the half-written file
        if self._writer is not None:
            self._writer.abort()
            self._writer = None

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format}


# The collect protocol, client <- sink, one TCP connection per sink subtask:
#   hello:  u32 len + the token (utf-8), so the client knows the connection is its job's
#   data:   u32 len + one Arrow IPC stream (schema + one batch), len > 0
#   end:    u32 0 after the last batch
_LEN = struct.Struct("!I")


def encode_batch(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


class CollectSinkOperator(StreamOperator):
    """execute_and_collect(): streams the results to a socket opened by the client."""

    def __init__(self, name: str, host: str, port: int, token: str):
        self.name = name
        self.host = host
        self.port = port
        self.token = token
        self._sock: socket.socket | None = None

    def open(self) -> None:
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=30)
        except OSError as e:
            raise NetworkError(
                f"The collect sink cannot reach the client at {self.host}:{self.port} ({e}); the "
                "client that called execute_and_collect() must stay running and reachable"
            ) from e
        self._sock.settimeout(None)
        self._send(self.token.encode())

    def _send(self, payload: bytes) -> None:
        self._sock.sendall(_LEN.pack(len(payload)) + payload)

    def process_batch(self, batch: pa.RecordBatch) -> None:
        self._send(encode_batch(batch))

    def end_input(self) -> None:
        if self._sock is not None:
            self._sock.sendall(_LEN.pack(0))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
