"""multipart/form-data (RFC 7578): building a request body, and parsing one strictly (pure).

Job submission (``POST /jobs``, :mod:`pyflow.rest.submission`) is Flink's multipart request: a
``request`` part with JSON and one part per file. The parser takes the whole body (the server
already bounded its size by ``rest.server.max-content-length``) and raises
:class:`MultipartError` with a message that names what is malformed; it never guesses.

>>> body, content_type = encode_multipart([Part("request", b'{"a": 1}', content_type="application/json"),
...                                        Part("file_0", b"data", filename="job.graph")], boundary="XyZ")
>>> [(p.name, p.filename, p.data) for p in parse_multipart(body, boundary_of(content_type))]
[('request', None, b'{"a": 1}'), ('file_0', 'job.graph', b'data')]
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from email.message import Message

from pyflow.errors import PyflowError

#: a body with more parts than this is refused (a submission has a handful)
MAX_PARTS = 1000
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$")
_CRLF = b"\r\n"


class MultipartError(PyflowError, ValueError):
    """A body that is not well-formed multipart/form-data."""


@dataclass(frozen=True, slots=True)
class Part:
    """One part: its form field ``name``, the ``filename`` of a file part, its bytes."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


def boundary_of(content_type: str | None) -> str:
    """The boundary of a ``multipart/form-data`` Content-Type header.

    >>> boundary_of('multipart/form-data; boundary="a b"')
    'a b'
    """
    if not content_type:
        raise MultipartError("The request has no Content-Type; send multipart/form-data")
    msg = Message()
    msg["content-type"] = content_type
    if msg.get_content_type() != "multipart/form-data":
        raise MultipartError(f"Content-Type is '{content_type.split(';')[0].strip()}', not multipart/form-data")
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not _BOUNDARY.match(boundary) or boundary.endswith(" "):
        raise MultipartError("The multipart/form-data Content-Type has no valid boundary parameter "
                             "(1 to 70 characters, RFC 2046)")
    return boundary


def parse_multipart(body: bytes, boundary: str) -> list[Part]:
    """The parts of ``body``, in order. Every part needs a ``Content-Disposition: form-data``
    header with a ``name``; the body must end with the closing delimiter."""
    delimiter = b"--" + boundary.encode("latin-1")
    if body.startswith(delimiter):
        pos = len(delimiter)
    else:  # a preamble before the first delimiter is allowed (and ignored)
        found = body.find(_CRLF + delimiter)
        if found < 0:
            raise MultipartError(f"The body does not contain the boundary '{boundary}' of its Content-Type")
        pos = found + len(_CRLF + delimiter)
    parts: list[Part] = []
    while True:
        if body[pos:pos + 2] == b"--":
            return parts  # the closing delimiter; an epilogue after it is ignored
        line_end = body.find(_CRLF, pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise MultipartError("A multipart delimiter is not followed by a line break")
        start = line_end + 2
        end = body.find(_CRLF + delimiter, start)
        if end < 0:
            raise MultipartError("The multipart body is truncated: its closing delimiter "
                                 f"'--{boundary}--' is missing")
        if len(parts) >= MAX_PARTS:
            raise MultipartError(f"The multipart body has more than {MAX_PARTS} parts")
        parts.append(_part(body[start:end], len(parts)))
        pos = end + len(_CRLF + delimiter)


def _part(raw: bytes, index: int) -> Part:
    head_end = raw.find(_CRLF + _CRLF)
    if raw.startswith(_CRLF):
        head, data = b"", raw[2:]
    elif head_end < 0:
        raise MultipartError(f"Part {index + 1} of the multipart body has no blank line after its headers")
    else:
        head, data = raw[:head_end], raw[head_end + 4:]
    msg = Message()
    for line in head.split(_CRLF):
        name, sep, value = line.decode("utf-8", "replace").partition(":")
        if not sep or not name.strip() or name != name.strip():
            raise MultipartError(f"Part {index + 1} of the multipart body has a malformed header line "
                                 f"{line[:80]!r}")
        msg[name] = value.strip()
    disposition = msg.get("content-disposition")
    if disposition is None or msg.get_content_disposition() != "form-data":
        raise MultipartError(f"Part {index + 1} of the multipart body has no 'Content-Disposition: form-data' "
                             "header")
    name = msg.get_param("name", header="content-disposition")
    filename = msg.get_filename()
    if not isinstance(name, str) or not name:
        raise MultipartError(f"Part {index + 1} of the multipart body has no name in its Content-Disposition")
    return Part(name=name, data=data, filename=filename,
                content_type=msg.get("content-type"))


def encode_multipart(parts: list[Part], boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body of ``parts`` and its Content-Type header value."""
    boundary = boundary or f"pyflow-{secrets.token_hex(16)}"
    delimiter = b"--" + boundary.encode("latin-1")
    chunks: list[bytes] = []
    for part in parts:
        if _CRLF + delimiter in _CRLF + part.data:
            raise ValueError(f"part {part.name!r} contains the delimiter '--{boundary}'; use another boundary")
        disposition = f'form-data; name="{_quote(part.name)}"'
        if part.filename is not None:
            disposition += f'; filename="{_quote(part.filename)}"'
        head = f"Content-Disposition: {disposition}\r\n"
        head += f"Content-Type: {part.content_type or 'application/octet-stream'}\r\n"
        chunks += [delimiter, _CRLF, head.encode("utf-8"), _CRLF, part.data, _CRLF]
    chunks += [delimiter, b"--", _CRLF]
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _quote(value: str) -> str:
    if any(c in value for c in '"\\\r\n'):
        raise ValueError(f"form field or file name {value!r} contains a quote, backslash or line break")
    return value
