"""Helpers shared by the data-plane tests."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

from pyflow.runtime.network import InputGate, NetworkEnvironment

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


def environments(**defaults: Any) -> Iterator:
    """For a fixture: yields a factory of started NetworkEnvironments (``defaults`` apply unless
    overridden), and closes every one it made afterwards."""
    envs: list[NetworkEnvironment] = []

    def factory(**kwargs: Any) -> NetworkEnvironment:
        env = NetworkEnvironment(**{**defaults, **kwargs})
        env.start()
        envs.append(env)
        return env

    yield factory
    for env in envs:
        env.close()


def drain(gate: InputGate, timeout: float = WAIT_S) -> list:
    """Everything a gate delivers until it is finished."""
    items = []
    deadline = time.monotonic() + timeout
    while True:
        item = gate.next(timeout=max(0.0, deadline - time.monotonic()))
        if item is None:
            return items
        assert item is not InputGate.TIMEOUT, f"gate not finished within {timeout}s"
        items.append(item)
