"""REST: stopping jobs and triggering savepoints, as Flink's asynchronous operations.

- ``POST /jobs/:jobid/stop`` (body ``{"targetDirectory": ..., "drain": bool, "triggerId": ...}``)
  starts a graceful stop: every source ends its input as a bounded source does, everything in
  flight is processed (windows and timers fire on the final MAX watermark), and the job ends
  FINISHED. It always drains, ``drain: false`` included: without checkpointing there is no
  savepoint to resume from, so state left un-flushed would be lost.
- ``POST /jobs/:jobid/savepoints`` (body ``{"target-directory": ..., "cancel-job": bool,
  "triggerId": ...}``) is accepted as in Flink, and its operation completes with a
  ``failure-cause`` saying that savepoints need checkpointing, which this release does not have.
  The job keeps running (with ``cancel-job: true`` too: Flink cancels only after a savepoint).
- Both answer ``202 {"request-id": triggerid}`` (a client-chosen ``triggerId`` makes the request
  idempotent); ``GET /jobs/:jobid/savepoints/:triggerid`` answers ``{"status": {"id":
  "IN_PROGRESS"}}`` or ``{"status": {"id": "COMPLETED"}, "operation": {...}}`` where a completed
  stop's operation is ``{"location": null, "note": "..."}`` (no savepoint was taken, so no
  location; the note says what happened) and a failed one ``{"failure-cause": {"class": ...,
  "stack-trace": ...}}``.

A job that is not RUNNING (created, failing, finished, ...) or a BATCH job cannot be stopped:
409. Unknown jobs and trigger ids: 404. Malformed bodies: 400. Trigger ids live in an
:class:`~pyflow.rest.operation_cache.OperationCache` for ``rest.async.store-duration``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from concurrent.futures import Future
from typing import Any, Callable

from pyflow.config import Configuration, options
from pyflow.config.options import format_duration
from pyflow.errors import RpcTimeout
from pyflow.rest.errors import BadRequest, NotFound, RestError, ServiceUnavailable
from pyflow.rest.operation_cache import OperationCache, OperationKey
from pyflow.rest.router import Request, Route
from pyflow.runtime.jobmanager.dispatcher import UnknownJobError
from pyflow.runtime.jobmanager.jobmaster.job_master import JobStateError
from pyflow.runtime.messages import JobStatus

logger = logging.getLogger(__name__)

_TRIGGER_ID = re.compile(r"[0-9a-f]{32}")
_FORMAT_TYPES = ("CANONICAL", "NATIVE")


def _string(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"Field '{name}' must be a string or null, not {json_type(value)}")
    return value


def _boolean(name: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"Field '{name}' must be true or false, not {json_type(value)}")
    return value


def _trigger_id(name: str, value: Any) -> str | None:
    value = _string(name, value)
    if value is not None and not _TRIGGER_ID.fullmatch(value):
        raise BadRequest(f"Field '{name}' must be 32 lower-case hexadecimal digits (a trigger id), not {value!r}")
    return value


def _format_type(name: str, value: Any) -> str | None:
    value = _string(name, value)
    if value is not None and value not in _FORMAT_TYPES:
        raise BadRequest(f"Field '{name}' must be one of {', '.join(_FORMAT_TYPES)}, not {value!r}")
    return value


#: the request bodies: field -> validator (Flink's StopWithSavepointRequestBody, SavepointTriggerRequestBody)
STOP_BODY: dict[str, Callable[[str, Any], Any]] = {
    "targetDirectory": _string, "drain": _boolean, "triggerId": _trigger_id, "formatType": _format_type}
SAVEPOINT_BODY: dict[str, Callable[[str, Any], Any]] = {
    "target-directory": _string, "cancel-job": _boolean, "triggerId": _trigger_id, "formatType": _format_type}


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def parse_body(request: Request, fields: dict[str, Callable[[str, Any], Any]]) -> dict[str, Any]:
    """The JSON object body, every field validated (absent fields are None); 400 for a body that
    is not an object or has unknown fields."""
    body = request.json()
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadRequest(f"Request body must be a JSON object with the fields {', '.join(fields)}, "
                         f"not {json_type(body)}")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise BadRequest(f"Unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in "
                         f"the request body; the fields are {', '.join(fields)}")
    return {name: check(name, body.get(name)) for name, check in fields.items()}


def failure_cause(error: BaseException | str, class_name: str | None = None) -> dict[str, Any]:
    """Flink's serialized throwable: the exception's class and its text."""
    if isinstance(error, BaseException):
        class_name = class_name or f"{type(error).__module__}.{type(error).__qualname__}"
        text = f"{class_name}: {error}"
    else:
        text = error
    return {"failure-cause": {"class": class_name or "Exception", "stack-trace": text}}


class OperationHandlers:
    """The handlers of stop and savepoint triggers over the Dispatcher; owns the trigger ids."""

    def __init__(self, *, dispatcher: Any, conf: Configuration, clock: Callable[[], float] = time.monotonic):
        self.dispatcher = dispatcher
        self.store_duration = conf.get(options.REST_ASYNC_STORE_DURATION)
        self.cache = OperationCache(self.store_duration.total_seconds())
        self.clock = clock
        # the cache is pure; HTTP threads and completing futures meet here
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/jobs/:jobid/stop", self.stop_job,
                  "Stop a job gracefully: its sources end, it drains and finishes", status=202),
            Route("POST", "/jobs/:jobid/savepoints", self.trigger_savepoint,
                  "Trigger a savepoint (fails: savepoints need checkpointing)", status=202),
            Route("GET", "/jobs/:jobid/savepoints/:triggerid", self.operation_status,
                  "Status of a stop or savepoint operation"),
        ]

    # ---- handlers -----------------------------------------------------------------------------

    def stop_job(self, request: Request) -> dict[str, Any]:
        body = parse_body(request, STOP_BODY)
        notes = ["No savepoint was taken: savepoints need checkpointing, which this release of pyflow does "
                 "not have."]
        if body["targetDirectory"] is not None:
            notes.append(f"targetDirectory {body['targetDirectory']!r} was not used.")
        if body["drain"] is False:
            notes.append("The stop drained although drain was false: without a savepoint to resume from, state "
                         "left un-flushed would be lost.")

        def result(future: Future) -> dict[str, Any]:
            error = future.exception()
            if error is not None:
                return failure_cause(error)
            job = future.result()
            if job.status is JobStatus.FINISHED:
                return {"location": None, "note": " ".join([
                    f"Job {job.job_id} stopped gracefully: its sources ended their input, everything in flight "
                    "was processed (windows and timers fired) and it FINISHED.", *notes])}
            cause = f": {job.error}" if job.error else ""
            return failure_cause(f"Job {job.job_id} ended {job.status.value} before it finished draining{cause}",
                                 "pyflow.errors.JobExecutionError")

        return self._trigger(request, body["triggerId"], lambda jid: self.dispatcher.stop_job(jid), result)

    def trigger_savepoint(self, request: Request) -> dict[str, Any]:
        body = parse_body(request, SAVEPOINT_BODY)

        def result(future: Future) -> dict[str, Any]:
            error = future.exception()
            if error is not None:
                return failure_cause(error)
            return {"location": future.result()}

        return self._trigger(request, body["triggerId"], lambda jid: self.dispatcher.trigger_savepoint(
            jid, body["target-directory"], bool(body["cancel-job"])), result)

    def operation_status(self, request: Request) -> dict[str, Any]:
        job_id, trigger_id = request.params["jobid"], request.params["triggerid"]
        self._require_job(job_id)
        with self._lock:
            operation = self.cache.get(OperationKey(job_id, trigger_id), self.clock())
        if operation is None:
            raise NotFound(f"No stop or savepoint operation with trigger id {trigger_id} for job {job_id}; results "
                           f"are kept for {format_duration(self.store_duration)} after completion "
                           f"(rest.async.store-duration)")
        if operation.in_progress:
            return {"status": {"id": "IN_PROGRESS"}}
        return {"status": {"id": "COMPLETED"}, "operation": operation.result}

    # ---- helpers ------------------------------------------------------------------------------

    def _require_job(self, job_id: str) -> None:
        if self.dispatcher.job_master_for(job_id) is None:
            raise NotFound(f"Job {job_id} not found on this cluster; GET /jobs lists the jobs")

    def _trigger(self, request: Request, trigger_id: str | None, start: Callable[[str], Future],
                 result: Callable[[Future], dict[str, Any]]) -> dict[str, Any]:
        """Register the operation, start it, and complete it when its future does. A known
        ``trigger_id`` of this job answers again without starting anything (idempotent)."""
        job_id = request.params["jobid"]
        self._require_job(job_id)
        key = OperationKey(job_id, trigger_id or uuid.uuid4().hex)
        with self._lock:
            if not self.cache.register(key, self.clock()):
                return {"request-id": key.trigger_id}
        try:
            future = start(job_id)
        except BaseException as e:
            with self._lock:
                self.cache.discard(key)
            if isinstance(e, JobStateError):
                raise RestError(str(e), status=409) from None
            if isinstance(e, UnknownJobError):
                raise NotFound(str(e)) from None
            if isinstance(e, RpcTimeout):
                raise ServiceUnavailable(f"{e}; try again") from None
            raise

        def complete(f: Future) -> None:
            try:
                operation = result(f)
            except Exception as e:  # noqa: BLE001 - an operation never stays IN_PROGRESS for a bug
                logger.exception("Completing operation %s of job %s failed", key.trigger_id, key.job_id)
                operation = failure_cause(e)
            with self._lock:
                self.cache.complete(key, operation, self.clock())

        future.add_done_callback(complete)
        return {"request-id": key.trigger_id}
