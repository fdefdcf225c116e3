"""SourceStop: a stop interrupts a source only inside its user code, at most once, and nothing of
an interruption is left pending once the source left its user code."""

from __future__ import annotations

import threading
import time

from pyflow.runtime.operators.source_stop import SourceStop, SourceStopped


def run_in_thread(target) -> tuple[threading.Thread, list]:
    outcome: list = []

    def main() -> None:
        try:
            outcome.append(target())
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            outcome.append(e)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread, outcome


def test_a_source_sleeping_in_user_code_is_interrupted_there_and_keeps_what_it_made():
    stop = SourceStop()
    entered = threading.Event()

    def source() -> list[int]:
        rows: list[int] = []

        def slow(i: int) -> int:
            entered.set()
            time.sleep(0.05)
            return i

        stop.enter_user_code()
        try:
            try:
                rows.extend(map(slow, range(10_000)))   # 500 s uninterrupted
            finally:
                stop.leave_user_code()
        except SourceStopped:
            stop.leave_user_code()
        time.sleep(0.2)  # after leaving user code nothing may land any more
        return rows

    thread, outcome = run_in_thread(source)
    assert entered.wait(5)
    time.sleep(0.2)
    stop.request()
    assert stop.interrupt()
    thread.join(5)
    assert not thread.is_alive()
    rows = outcome[0]
    assert isinstance(rows, list) and 1 <= len(rows) < 10_000 and rows == list(range(len(rows)))


def test_outside_user_code_nothing_is_raised_and_at_most_one_interruption_per_stop():
    stop = SourceStop()
    assert not stop.interrupt()  # the source never entered user code
    left = threading.Event()
    finish = threading.Event()

    def source() -> str:
        stop.enter_user_code()
        stop.leave_user_code()
        left.set()
        while not finish.is_set():  # busy in Python code, outside user code
            sum(range(100))
        return "no interruption"

    thread, outcome = run_in_thread(source)
    assert left.wait(5)
    assert not stop.interrupt()
    finish.set()
    thread.join(5)
    assert outcome == ["no interruption"]


def test_an_interruption_raised_as_the_source_leaves_user_code_does_not_land_after_it():
    """A C-level user function (no Python bytecode to deliver the interruption in) returns, and
    the source leaves user code: the pending interruption is cleared, not raised later."""
    for _ in range(20):
        stop = SourceStop()
        go = threading.Event()

        def source(stop=stop, go=go) -> str:
            stop.enter_user_code()
            try:
                try:
                    go.wait(5)   # blocks in C: an interruption stays pending until it returns
                finally:
                    stop.leave_user_code()
            except SourceStopped:
                stop.leave_user_code()
                return "stopped in user code"
            for _ in range(10_000):  # Python code after user code: nothing may be raised here
                pass
            return "left user code"

        thread, outcome = run_in_thread(source)
        time.sleep(0.01)
        assert stop.interrupt()
        assert not stop.interrupt()  # at most one per stop
        go.set()
        thread.join(5)
        assert outcome[0] in ("stopped in user code", "left user code"), outcome
