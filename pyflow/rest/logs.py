"""REST endpoints for log files (Flink's paths): the JobManager's and each TaskManager's.

* ``GET /jobmanager/logs`` and ``/taskmanagers/:taskmanagerid/logs``: ``{"logs": [{"name",
  "size", "mtime"}]}``, the files of the process's log directory;
* ``GET /jobmanager/logs/:filename`` and ``/taskmanagers/:taskmanagerid/logs/:filename``: one of
  them, as text/plain;
* ``GET /jobmanager/log``, ``/jobmanager/stdout``, ``/taskmanagers/:taskmanagerid/log`` and
  ``/taskmanagers/:taskmanagerid/stdout``: the process's own log file and its stdout file (the
  ``.out`` file next to its log that start scripts write; 404 when stdout is not a file).

A TaskManager may run on another host, so the JobManager asks it over RPC. Only files listed for
the directory can be read, by their exact name (:mod:`pyflow.runtime.log_files`): a name with a
path in it is refused (400), any other unknown name is 404. A file larger than ``?bytes=`` (default
1 MiB, at most 64 MiB) is served from its end, after a first line that says so.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote

from pyflow.config import Configuration, resolve_log_dir
from pyflow.errors import RpcError
from pyflow.rest.errors import BadRequest, NotFound, ServiceUnavailable
from pyflow.rest.router import RawResponse, Request, Route
from pyflow.rest.snapshots import snapshot_task_managers
from pyflow.runtime.log_files import (
    DEFAULT_LOG_BYTES, MAX_LOG_BYTES, LogFile, LogTail, list_log_files, process_log_file, read_log_tail,
    resolve_log_file,
)

__all__ = ["LogHandlers", "task_manager_gateway"]

TEXT = "text/plain; charset=utf-8"


def task_manager_gateway(resource_manager: Any, tmid: str) -> Any:
    """The gateway of the registered TaskManager ``tmid``; 404 if there is none."""
    for tm in snapshot_task_managers(resource_manager):
        if tm.resource_id == tmid:
            return resource_manager.gateways.get(tm.rpc_address, tm.resource_id)
    raise NotFound(f"TaskManager {tmid} is not registered with this cluster; GET /taskmanagers lists them")


def _file_name(request: Request, listing: str) -> str:
    name = unquote(request.params["filename"])
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise BadRequest(f"Invalid log file name {name!r}: give a file name from GET {listing}, without a path")
    return name


def _max_bytes(request: Request) -> int:
    text = request.query_value("bytes")
    if text is None:
        return DEFAULT_LOG_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise BadRequest(f"Query parameter 'bytes' must be a positive number of bytes, not {text!r}")
    return min(value, MAX_LOG_BYTES)


def _text(tail: LogTail) -> RawResponse:
    """A file's end as text; a cut file starts with a line that says how much is shown."""
    data = tail.data
    if tail.truncated:
        newline = data.find(b"\n")
        if 0 <= newline < len(data) - 1:
            data = data[newline + 1:]  # from the first whole line on
        note = (f"[pyflow: the last {len(data)} of {tail.size} bytes of {tail.name}; ?bytes=N shows up to "
                f"{MAX_LOG_BYTES} bytes]\n")
        data = note.encode() + data
    return RawResponse(data, TEXT)


def _listing(files: list[LogFile]) -> dict[str, Any]:
    return {"logs": [{"name": f.name, "size": f.size, "mtime": f.mtime} for f in files]}


class LogHandlers:
    """The log endpoints of a JobManager (its own files, read here) and of its TaskManagers
    (asked over RPC); ``routes()`` is their route table."""

    def __init__(self, *, resource_manager: Any, conf: Configuration):
        self.rm = resource_manager
        self.conf = conf

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/jobmanager/logs", self.jobmanager_logs, "Log files of the JobManager"),
            Route("GET", "/jobmanager/logs/:filename", self.jobmanager_log_file, "A log file of the JobManager"),
            Route("GET", "/jobmanager/log", self.jobmanager_log, "The JobManager's log"),
            Route("GET", "/jobmanager/stdout", self.jobmanager_stdout, "The JobManager's stdout"),
            Route("GET", "/taskmanagers/:taskmanagerid/logs", self.taskmanager_logs, "Log files of a TaskManager"),
            Route("GET", "/taskmanagers/:taskmanagerid/logs/:filename", self.taskmanager_log_file,
                  "A log file of a TaskManager"),
            Route("GET", "/taskmanagers/:taskmanagerid/log", self.taskmanager_log, "A TaskManager's log"),
            Route("GET", "/taskmanagers/:taskmanagerid/stdout", self.taskmanager_stdout,
                  "A TaskManager's stdout"),
        ]

    # ---- the JobManager (this process) -------------------------------------------------------------

    def _log_dir(self) -> str:
        log_file = process_log_file()
        return os.path.dirname(log_file) if log_file else resolve_log_dir(self.conf)

    def jobmanager_logs(self, request: Request) -> dict[str, Any]:
        return _listing(list_log_files(self._log_dir()))

    def jobmanager_log_file(self, request: Request) -> RawResponse:
        return self._read(request, _file_name(request, "/jobmanager/logs"), "")

    def jobmanager_log(self, request: Request) -> RawResponse:
        return self._read(request, "", "LOG")

    def jobmanager_stdout(self, request: Request) -> RawResponse:
        return self._read(request, "", "STDOUT")

    def _read(self, request: Request, name: str, file_type: str) -> RawResponse:
        max_bytes = _max_bytes(request)
        try:
            path = resolve_log_file("The JobManager", process_log_file(), self._log_dir(), name, file_type)
        except FileNotFoundError as e:
            hint = "; GET /jobmanager/logs lists its log files" if name else ""
            raise NotFound(f"{e}{hint}") from None
        try:
            return _text(read_log_tail(path, max_bytes))
        except OSError as e:
            raise NotFound(f"Log file {path} cannot be read: {e.strerror or e}") from None

    # ---- TaskManagers (over RPC) -------------------------------------------------------------------

    def taskmanager_logs(self, request: Request) -> dict[str, Any]:
        tmid = request.params["taskmanagerid"]
        gateway = task_manager_gateway(self.rm, tmid)
        try:
            return _listing(gateway.request_log_list())
        except RpcError as e:
            raise ServiceUnavailable(f"TaskManager {tmid} did not answer for its log list: {e}") from None

    def taskmanager_log_file(self, request: Request) -> RawResponse:
        name = _file_name(request, f"/taskmanagers/{request.params['taskmanagerid']}/logs")
        return self._remote(request, name, "")

    def taskmanager_log(self, request: Request) -> RawResponse:
        return self._remote(request, "", "LOG")

    def taskmanager_stdout(self, request: Request) -> RawResponse:
        return self._remote(request, "", "STDOUT")

    def _remote(self, request: Request, name: str, file_type: str) -> RawResponse:
        tmid = request.params["taskmanagerid"]
        max_bytes = _max_bytes(request)
        gateway = task_manager_gateway(self.rm, tmid)
        try:
            return _text(gateway.request_log_file(name, file_type, max_bytes))
        except FileNotFoundError as e:
            hint = f"; GET /taskmanagers/{tmid}/logs lists its log files" if name else ""
            raise NotFound(f"{e}{hint}") from None
        except RpcError as e:
            raise ServiceUnavailable(f"TaskManager {tmid} did not answer for its log: {e}") from None
