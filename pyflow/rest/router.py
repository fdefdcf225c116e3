"""Router: the route table of the REST server, and matching a request against it (pure).

A route is an HTTP method and a path template in Flink's notation (``/jobs/:jobid``). Every
route is also served under the ``/v1`` prefix. Matching either returns the route and its path
parameters or raises NotFound (no template fits the path) or MethodNotAllowed (a template fits,
for other methods).

>>> router = Router([Route("GET", "/jobs/:jobid", lambda request: {}, "Job details")])
>>> route, params = router.match("GET", "/v1/jobs/abc")
>>> route.path, params
('/jobs/:jobid', {'jobid': 'abc'})
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs

from pyflow.rest.errors import BadRequest, MethodNotAllowed, NotFound

#: every path is also served with this prefix (Flink's REST API version)
VERSION_PREFIX = "/v1"


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed HTTP request, as handlers see it."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""
    #: request headers, names in lower case
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def query_value(self, name: str) -> str | None:
        """The single value of query parameter ``name`` (None when absent; 400 when repeated)."""
        values = self.query.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise BadRequest(f"Query parameter '{name}' was given {len(values)} times; give it once")
        return values[0]

    def query_list(self, name: str) -> list[str] | None:
        """Comma-separated values of ``name`` over all its occurrences (None when absent)."""
        if name not in self.query:
            return None
        return [v.strip() for value in self.query[name] for v in value.split(",") if v.strip()]

    def json(self) -> Any:
        """The body as JSON; None for an empty body; 400 when it is not JSON."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadRequest(f"Request body is not valid JSON: {e}") from None


Handler = Callable[[Request], Any]


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A handler's answer that is not JSON: a page of the Web UI, a log file, Prometheus text."""

    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    #: HTTP status of a successful answer
    status: int = 200

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(s for s in self.path.split("/") if s)

    @property
    def openapi_path(self) -> str:
        """The template in OpenAPI notation: ``/jobs/{jobid}``."""
        return "/" + "/".join(f"{{{s[1:]}}}" if s.startswith(":") else s for s in self.segments)

    def bind(self, segments: tuple[str, ...]) -> dict[str, str] | None:
        """The path parameters if ``segments`` fit this template, else None."""
        mine = self.segments
        if len(mine) != len(segments):
            return None
        params: dict[str, str] = {}
        for template, actual in zip(mine, segments):
            if template.startswith(":"):
                params[template[1:]] = actual
            elif template != actual:
                return None
        return params


class Router:
    def __init__(self, routes: list[Route]):
        seen = set()
        for r in routes:
            if (r.method, r.segments) in seen:
                raise ValueError(f"route {r.method} {r.path} is declared twice")
            seen.add((r.method, r.segments))
        self.routes = list(routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        segments = tuple(s for s in path.split("/") if s)
        if segments[:1] == (VERSION_PREFIX[1:],):
            segments = segments[1:]
        allowed: list[str] = []
        for route in self.routes:
            params = route.bind(segments)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed.append(route.method)
        if allowed:
            raise MethodNotAllowed(f"Method {method} is not allowed on {path}; allowed: {', '.join(allowed)}",
                                   tuple(allowed))
        raise NotFound(f"Not found: {path}. GET /openapi.json lists every path of this REST API.")

    def request(self, method: str, target: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[Route, Request]:
        """Parse ``target`` (path and query) and match it; 400 for a malformed query string."""
        path, _, query_string = target.partition("?")
        route, params = self.match(method, path)
        try:
            query = parse_qs(query_string, keep_blank_values=True, strict_parsing=bool(query_string),
                             errors="strict")
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(f"Malformed query string '{query_string}': {e}") from None
        return route, Request(method, path, params, query, body,
                              {k.lower(): v for k, v in (headers or {}).items()})
