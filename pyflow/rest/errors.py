"""RestError: an HTTP error status with Flink's ``{"errors": [...]}`` body, raised by handlers."""

from __future__ import annotations

from pyflow.errors import PyflowError


class RestError(PyflowError):
    """A request the server answers with ``status`` and ``{"errors": [message]}``."""

    status = 500

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def body(self) -> dict[str, list[str]]:
        return {"errors": [str(self)]}


class BadRequest(RestError):
    status = 400


class Forbidden(RestError):
    status = 403


class NotFound(RestError):
    status = 404


class MethodNotAllowed(RestError):
    status = 405

    def __init__(self, message: str, allowed: tuple[str, ...] = ()):
        super().__init__(message)
        self.allowed = allowed


class PayloadTooLarge(RestError):
    status = 413


class ServiceUnavailable(RestError):
    status = 503
