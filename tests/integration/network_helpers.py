"""Helpers shared by the data-plane tests."""

from __future__ import annotations

import threading

WAIT_S = 30.0


class Worker(threading.Thread):
    """Runs ``fn`` in a daemon thread and keeps its result or exception."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self.fn, self.args = fn, args
        self.result = None
        self.error: BaseException | None = None

    def run(self):
        try:
            self.result = self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def outcome(self, timeout: float = WAIT_S):
        self.join(timeout)
        assert not self.is_alive(), f"{self.fn.__name__} did not finish within {timeout}s"
        if self.error is not None:
            raise self.error
        return self.result
