"""A graceful stop is cooperative: sources check ``ctx.stop`` (an Event) before every row of user
code and between batches, emit what they made, and return from ``run()`` as if their input ended.
Nothing is raised into the source's thread, so user code always runs to the end of its call."""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa

from pyflow.runtime.operators.base import OperatorContext, Output, SourceOperator
from pyflow.runtime.operators.sources import CollectionSource, GeneratorSource, SequenceSource


class Collect(Output):
    """Keeps the rows of every batch; ``on_batch`` runs after each one (e.g. to request a stop)."""

    def __init__(self, on_batch=None):
        self.batches: list[list[Any]] = []
        self.on_batch = on_batch

    def collect(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch.column(0).to_pylist())
        if self.on_batch is not None:
            self.on_batch()

    @property
    def rows(self) -> list[Any]:
        return [row for batch in self.batches for row in batch]


def set_up(source: SourceOperator, on_batch=None, **settings: Any) -> tuple[OperatorContext, Collect]:
    ctx = OperatorContext("t", source.name, 0, 1, 128, **settings)
    out = Collect(on_batch)
    source.setup(ctx, out)
    return ctx, out


def run_in_thread(source: SourceOperator) -> tuple[threading.Thread, list]:
    outcome: list = []

    def main() -> None:
        try:
            outcome.append(source.run())
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            outcome.append(e)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread, outcome


def test_a_generator_that_sleeps_per_row_stops_within_about_one_row_and_keeps_what_it_made():
    calls: list[int] = []
    finished: list[int] = []

    def slow(i: int) -> int:
        calls.append(i)
        try:
            time.sleep(0.2)  # a first batch of 64 rows would take 12.8 s
        finally:
            finished.append(i)  # never cut short: no exception lands in user code
        return i

    source = GeneratorSource("Generator Source", slow, count=None, rate=None)
    ctx, out = set_up(source, buffer_timeout_ms=10.0)
    thread, outcome = run_in_thread(source)
    time.sleep(0.5)
    stopped_at = time.monotonic()
    ctx.stop.set()
    thread.join(5)
    assert not thread.is_alive() and outcome == [None]
    assert time.monotonic() - stopped_at < 0.2 + 0.15  # the row in progress, then the emit
    assert 1 <= len(out.rows) < 64
    # every row fn made is emitted, in order, once; fn is never called after the stop
    assert out.rows == list(range(len(out.rows))) == calls == finished


def test_a_rate_limited_generator_stops_between_rows_and_while_it_waits():
    for rate in (5.0, 10_000.0):
        source = GeneratorSource("Generator Source", lambda i: i, count=None, rate=rate)
        ctx, out = set_up(source, buffer_timeout_ms=10.0)
        thread, outcome = run_in_thread(source)
        time.sleep(0.3)
        ctx.stop.set()
        thread.join(2)
        assert not thread.is_alive() and outcome == [None]
        assert len(out.rows) >= 1 and out.rows == list(range(len(out.rows)))


def test_a_bounded_generator_stopped_after_its_first_batch_emits_only_that_batch():
    holder: dict[str, OperatorContext] = {}
    source = GeneratorSource("Generator Source", lambda i: i, count=1_000, rate=None)
    holder["ctx"], out = set_up(source, on_batch=lambda: holder["ctx"].stop.set(), batch_size=100)
    source.run()
    assert out.batches == [list(range(100))]


def test_collection_and_sequence_sources_stop_between_batches():
    for source in (CollectionSource("Collection Source", list(range(1_000))),
                   SequenceSource("Sequence Source", 0, 999)):
        holder: dict[str, OperatorContext] = {}
        holder["ctx"], out = set_up(source, on_batch=lambda h=holder: h["ctx"].stop.set(), batch_size=64)
        source.run()
        assert out.batches == [list(range(64))], source.name


def test_a_source_stopped_before_it_runs_emits_nothing():
    for source in (GeneratorSource("Generator Source", lambda i: i, count=None, rate=None),
                   CollectionSource("Collection Source", [1, 2, 3]), SequenceSource("Sequence Source", 0, 9)):
        ctx, out = set_up(source)
        ctx.stop.set()
        source.run()
        assert out.batches == [], source.name
