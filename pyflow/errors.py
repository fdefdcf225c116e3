"""The one error tree of pyflow.

Every error a user can cause ends in one of these, with a message that names the cause and
the fix. Transport errors (gRPC, sockets) are translated into this tree in one place each:
``pyflow.runtime.rpc.errors`` for the control plane, ``pyflow.runtime.network`` for data.

::

    PyflowError
    ├── ConfigurationError (ValueError)    unknown option key, bad option value
    ├── ProgramError                       the user's program is wrong: bad job file, bad API
    │   │                                  arguments, a function that cannot be shipped
    │   └── SerializationError             user code or a record that cannot be pickled
    ├── RecordError (ValueError)           a record that does not fit its stream's schema
    ├── JobExecutionError                  a job ended FAILED; carries the user's traceback
    │   └── JobCancellationError           a job ended CANCELED
    ├── ResourceError                      slots or TaskManagers could not be had
    ├── DeploymentError                    a YARN application could not be deployed, reached or found
    ├── TaskManagerLostError               a TaskManager stopped answering heartbeats
    ├── RpcError                           control-plane call failed
    │   ├── RpcTimeout (TimeoutError)
    │   └── RpcUnavailable (ConnectionError)
    ├── NetworkError (ConnectionError)     data-plane channel failed
    ├── CancelTaskError                    internal: a task thread was asked to stop
    └── NotYetSupportedError               a documented feature of a later release
"""

from __future__ import annotations


class PyflowError(Exception):
    """Base of every error pyflow raises on purpose."""


class ConfigurationError(PyflowError, ValueError):
    """An option key is unknown or its value cannot be used."""


class ProgramError(PyflowError):
    """The user's program is wrong: the message says where and how to fix it."""


class SerializationError(ProgramError):
    """User code or data could not be serialized to be shipped to TaskManagers."""


class RecordError(PyflowError, ValueError):
    """A record does not fit the stream it is on (wrong type, missing field)."""


class JobExecutionError(PyflowError):
    """A job ended in FAILED state.

    ``job_id`` names the job; ``cause`` is the root cause as text, for a failure in user code
    the user's own Python traceback as the TaskManager saw it.
    """

    def __init__(self, message: str, job_id: str | None = None, cause: str | None = None):
        super().__init__(message)
        self.job_id = job_id
        self.cause = cause

    def __str__(self) -> str:
        text = super().__str__()
        if self.cause and self.cause not in text:
            return f"{text}\n{self.cause}"
        return text


class JobCancellationError(JobExecutionError):
    """A job ended in CANCELED state."""


class ResourceError(PyflowError):
    """Slots or TaskManagers could not be had in time."""


class DeploymentError(PyflowError):
    """A cluster could not be deployed on YARN, reached there, or found (unknown queue, too much
    memory, unreachable ResourceManager, missing environment archive, unknown application)."""


class TaskManagerLostError(PyflowError):
    """A TaskManager stopped answering heartbeats or its process died."""


class RpcError(PyflowError):
    """A control-plane (gRPC) call failed."""


class RpcTimeout(RpcError, TimeoutError):
    """A control-plane call got no answer in time."""


class RpcUnavailable(RpcError, ConnectionError):
    """The endpoint of a control-plane call cannot be reached."""


class NetworkError(PyflowError, ConnectionError):
    """A data-plane channel between two tasks failed."""


class CancelTaskError(PyflowError):
    """Raised inside a task thread when the task is being cancelled (never shown to users)."""


class NotYetSupportedError(PyflowError):
    """A feature that is documented but not in this release; the message says which."""


def _is_user_frame(filename: str) -> bool:
    import os
    import sysconfig

    if filename.startswith("<") or not filename.endswith(".py"):
        return False  # <string>, compiled extension frames (pyarrow/*.pyx)
    path = os.path.realpath(os.path.abspath(filename))
    library_roots = [os.path.realpath(os.path.dirname(__file__))]
    library_roots += [os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "purelib", "platlib")]
    return not any(path.startswith(root + os.sep) for root in library_roots)


def format_failure(e: BaseException) -> str:
    """A failure as a user should see it.

    A pyflow error says what is wrong and how to fix it: its message alone, unless it was caused
    by the user's code, whose frames are then shown. Any other exception comes from user code:
    its traceback, with only the user's own frames (pyflow's and libraries' frames dropped).
    """
    import traceback

    def user_part(exc: BaseException) -> str:
        tb = traceback.TracebackException.from_exception(exc, capture_locals=False)
        frames = [f for f in tb.stack if _is_user_frame(f.filename)]
        if not frames:
            return ""
        tb.stack = traceback.StackSummary.from_list(frames)
        tb.__cause__ = tb.__context__ = None
        return "".join(tb.format())

    if isinstance(e, PyflowError):
        text = f"{type(e).__name__}: {e}"
        cause = e.__cause__
        if cause is not None and not isinstance(cause, PyflowError):
            shown = user_part(cause)
            if shown:
                text = f"{shown.rstrip()}\n\nThe above caused:\n{text}"
        return text
    shown = user_part(e)
    return shown.rstrip() if shown else "".join(traceback.format_exception_only(type(e), e)).rstrip()
