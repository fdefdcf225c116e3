"""SourceStop: a graceful stop of one source subtask, and how it may interrupt the source's user code.

A stopped source ends its input exactly as a bounded source ends: ``run()`` returns, and the task
emits the final MAX watermark and end-of-partition, so everything the source emitted is still
processed (windows and timers fire) and the job drains to FINISHED. Sources check
``ctx.stop.requested`` between batches.

A source blocked in user code (a generator function that sleeps) would only see the request at
its next batch. So the task may *interrupt* it: raise :class:`SourceStopped` inside the source's
thread, as cancellation raises ``CancelTaskError``. Unlike a cancellation, a stop must not lose
what is in flight, so the exception may only land while the source runs its own user code -
never while a batch travels down the chain or into the network. Sources mark that code:

    stop.enter_user_code()
    try:
        rows.extend(map(fn, indices))
    except SourceStopped:
        interrupted = True
    finally:
        stop.leave_user_code()

:meth:`interrupt` raises only inside such a region, and :meth:`leave_user_code` guarantees that
no interruption is pending once it returned (it waits for an interrupt in flight and clears an
undelivered one), so emitting after it is safe. The handshake relies on the GIL ordering Python
attribute reads and writes: ``interrupt`` writes ``_interrupting`` then reads ``_in_user_code``;
``leave_user_code`` writes ``_in_user_code`` then reads ``_interrupting``, so at least one of
them sees the other. At most one interruption is raised per stop.

``SourceStopped`` derives from BaseException (like KeyboardInterrupt), so a user function's
``except Exception`` does not swallow it.
"""

from __future__ import annotations

import ctypes
import threading
import time


class SourceStopped(BaseException):
    """Raised inside a source's user code when a graceful stop interrupts it (internal: the task
    catches it and ends the source's input; never shown to users)."""


class SourceStop:
    """The stop request of one source subtask; owned by its task, seen by its source operator.

    >>> stop = SourceStop()
    >>> stop.requested.is_set(), stop.interrupt()
    (False, False)
    >>> stop.request(); stop.requested.is_set()
    True
    """

    __slots__ = ("requested", "_in_user_code", "_interrupting", "_sent", "_thread_ident")

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._in_user_code = False
        self._interrupting = False
        #: an interruption was raised (at most one per stop); leave_user_code clears it if undelivered
        self._sent = False
        self._thread_ident: int | None = None

    def request(self) -> None:
        """Ask the source to end its input (any thread)."""
        self.requested.set()

    # ---- the source's thread ------------------------------------------------------------------

    def enter_user_code(self) -> None:
        """The source calls user code now; it may be interrupted until ``leave_user_code``."""
        self._thread_ident = threading.get_ident()
        self._in_user_code = True

    def leave_user_code(self) -> None:
        """No interruption can land after this returns. Idempotent; may itself be interrupted
        (then the source's ``except SourceStopped`` calls it again, or the task does)."""
        self._in_user_code = False
        while self._interrupting:  # an interrupt() that saw us in user code is still raising
            time.sleep(0.0005)
        if self._sent and self._thread_ident is not None:
            # an interruption that was raised but not delivered yet must not land outside user code
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread_ident), None)

    # ---- another thread ---------------------------------------------------------------------

    def interrupt(self) -> bool:
        """Raise :class:`SourceStopped` in the source's thread if it is in user code now and no
        interruption was raised before; True if raised."""
        if self._sent:
            return False
        self._interrupting = True
        try:
            ident = self._thread_ident
            if not self._in_user_code or ident is None:
                return False
            self._sent = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(SourceStopped))
            return True
        finally:
            self._interrupting = False
