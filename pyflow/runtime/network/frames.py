"""Wire format of a data channel: length-prefixed frames on one TCP connection.

Every frame is ``[u32 length][u8 type][payload]`` in network byte order, where ``length`` is the
number of payload bytes (the 5-byte header is not counted).

====== ==================== ============================================================
type   direction            payload
====== ==================== ============================================================
REQUEST consumer->producer  ``[u16 version][u32 subpartition][u32 initial credit]`` + partition id (utf-8)
CREDIT consumer->producer   ``[u32 n]``: the consumer can take ``n`` more BATCH/EVENT frames
SCHEMA producer->consumer   ``schema.serialize()``; sent only when the channel's schema changes
BATCH  producer->consumer   ``batch.serialize()`` (IPC record batch message, no schema)
EVENT  producer->consumer   ``pickle.dumps(event)``
ERROR  producer->consumer   utf-8 text: the producer failed or refused the request; the last frame
====== ==================== ============================================================

BATCH and EVENT frames each consume one credit; SCHEMA and ERROR frames consume none.

Sending never copies: ``sendmsg`` gets the header and a memoryview of the Arrow buffer, and a
buffer spilled to disk by a blocking partition goes from its file to the socket with
``sendfile`` (:func:`send_file_frame`).
Receiving reads each payload into one freshly allocated ``bytearray`` with ``recv_into``; a
decoded record batch references that bytearray directly (zero-copy after the socket read).

The data plane is trusted cluster-internal traffic (like Flink's Netty shuffle): EVENT payloads
are unpickled.
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

import pyarrow as pa

__all__ = [
    "BATCH",
    "CREDIT",
    "ERROR",
    "EVENT",
    "FRAME_NAMES",
    "HEADER",
    "PROTOCOL_VERSION",
    "REQUEST",
    "SCHEMA",
    "FrameReader",
    "decode_batch",
    "decode_credit",
    "decode_event",
    "decode_request",
    "decode_schema",
    "encode_credit",
    "encode_event",
    "encode_frame",
    "encode_request",
    "send_file_frame",
    "send_frame",
    "send_buffers",
    "tune_socket",
]

PROTOCOL_VERSION = 1

REQUEST = 1
CREDIT = 2
SCHEMA = 3
BATCH = 4
EVENT = 5
ERROR = 6
FRAME_NAMES = {REQUEST: "REQUEST", CREDIT: "CREDIT", SCHEMA: "SCHEMA", BATCH: "BATCH",
               EVENT: "EVENT", ERROR: "ERROR"}

HEADER = struct.Struct("!IB")
_REQUEST = struct.Struct("!HII")
_CREDIT = struct.Struct("!I")
MAX_PAYLOAD = (1 << 32) - 1


def encode_frame(frame_type: int, payload: bytes = b"") -> bytes:
    """A whole small frame as bytes (control frames: REQUEST, CREDIT, ERROR)."""
    return HEADER.pack(len(payload), frame_type) + payload


def encode_request(partition_id: str, subpartition_index: int, credit: int) -> bytes:
    body = _REQUEST.pack(PROTOCOL_VERSION, subpartition_index, credit) + partition_id.encode("utf-8")
    return encode_frame(REQUEST, body)


def decode_request(payload: bytes | bytearray) -> tuple[str, int, int]:
    """``(partition_id, subpartition_index, initial_credit)``; ValueError on a bad request."""
    if len(payload) < _REQUEST.size:
        raise ValueError(f"REQUEST frame too short ({len(payload)} bytes)")
    version, index, credit = _REQUEST.unpack_from(payload)
    if version != PROTOCOL_VERSION:
        raise ValueError(f"protocol version {version} is not supported (this side speaks {PROTOCOL_VERSION})")
    return bytes(payload[_REQUEST.size:]).decode("utf-8"), index, credit


def encode_credit(n: int) -> bytes:
    return encode_frame(CREDIT, _CREDIT.pack(n))


def decode_credit(payload: bytes | bytearray) -> int:
    return _CREDIT.unpack_from(payload)[0]


def encode_event(event: Any) -> bytes:
    return pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL)


def decode_event(payload: bytes | bytearray) -> Any:
    return pickle.loads(payload)


def decode_schema(payload: bytearray) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(payload))


def decode_batch(payload: bytearray, schema: pa.Schema) -> pa.RecordBatch:
    """Zero-copy: the batch's buffers point into ``payload``."""
    return pa.ipc.read_record_batch(pa.py_buffer(payload), schema)


def send_buffers(sock: socket.socket, buffers: list[Any]) -> int:
    """Write all ``buffers`` (anything with the buffer protocol) with scatter-gather ``sendmsg``,
    resuming after partial writes; returns the number of bytes written."""
    views = [memoryview(b).cast("B") for b in buffers]
    views = [v for v in views if len(v)]
    total = sum(len(v) for v in views)
    while views:
        sent = sock.sendmsg(views)
        while sent:
            head = views[0]
            if sent >= len(head):
                sent -= len(head)
                views.pop(0)
            else:
                views[0] = head[sent:]
                sent = 0
    return total


def send_frame(sock: socket.socket, frame_type: int, payload: Any = b"") -> int:
    """Send one frame whose payload is any buffer (bytes, ``pa.Buffer``); returns frame bytes."""
    size = memoryview(payload).nbytes
    if size > MAX_PAYLOAD:
        raise ValueError(f"frame payload of {size} bytes exceeds the 4 GiB frame limit")
    return send_buffers(sock, [HEADER.pack(size, frame_type), payload])


_MSG_MORE = getattr(socket, "MSG_MORE", 0)


def send_file_frame(sock: socket.socket, frame_type: int, file: Any, offset: int, length: int) -> int:
    """Send one frame whose payload is ``length`` bytes of ``file`` (opened in binary mode) at
    ``offset``, with ``sendfile`` (kernel to kernel where the platform has it); returns frame
    bytes. Raises ConnectionError when the file holds fewer bytes than announced."""
    if length > MAX_PAYLOAD:
        raise ValueError(f"frame payload of {length} bytes exceeds the 4 GiB frame limit")
    header = HEADER.pack(length, frame_type)
    if _MSG_MORE:
        sent = 0
        while sent < len(header):  # MSG_MORE: the header leaves in the same segment as the data
            sent += sock.send(header[sent:], _MSG_MORE)
    else:  # pragma: no cover - platforms without MSG_MORE
        sock.sendall(header)
    if length:
        sent = sock.sendfile(file, offset, length)
        if sent != length:
            raise ConnectionError(f"spill file ended after {sent} of {length} bytes of a frame")
    return HEADER.size + length


class FrameReader:
    """Reads frames from a blocking socket: a preallocated header buffer plus one bytearray per
    payload, both filled with ``recv_into``. ``read()`` raises ``EOFError`` when the peer closed
    the connection at a frame boundary and ``ConnectionError`` when it closed inside a frame."""

    __slots__ = ("_sock", "_header", "_header_view", "bytes_read")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._header = bytearray(HEADER.size)
        self._header_view = memoryview(self._header)
        self.bytes_read = 0

    def _fill(self, view: memoryview, at_boundary: bool) -> None:
        got = 0
        size = len(view)
        recv_into = self._sock.recv_into
        while got < size:
            n = recv_into(view[got:], size - got)
            if n == 0:
                if at_boundary and got == 0:
                    raise EOFError("connection closed by peer")
                raise ConnectionError(f"connection closed by peer inside a frame ({got} of {size} bytes read)")
            got += n

    def read(self) -> tuple[int, bytearray]:
        self._fill(self._header_view, at_boundary=True)
        length, frame_type = HEADER.unpack(self._header)
        payload = bytearray(length)
        if length:
            self._fill(memoryview(payload), at_boundary=False)
        self.bytes_read += HEADER.size + length
        return frame_type, payload


def tune_socket(sock: socket.socket) -> None:
    """TCP_NODELAY (frames are already batched) and keepalive so a dead peer host is noticed."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:  # pragma: no cover - platform without these options
        pass
