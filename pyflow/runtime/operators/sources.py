"""Source operators: collections, number sequences, generators (bounded or not), files.

Every source emits batches of at most ``execution.batch-size`` rows and checks for cancellation
and for a graceful stop (``ctx.stop``, an Event the task sets) between batches; a source that calls
a user function per row (the generator source) checks the stop before every row too, so one whose
function sleeps stops within about one row's time. A stopped source emits the rows it made and
returns from ``run()`` as if its input had ended (the task then emits the final MAX watermark and
end-of-partition). Parallel sources split their input deterministically over the subtasks.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa

from pyflow.runtime import fileio, records
from pyflow.runtime.operators.base import SourceOperator


class CollectionSource(SourceOperator):
    """env.from_collection(items): non-parallel, keeps the collection's order (as in Flink)."""

    def __init__(self, name: str, items: Sequence[Any], output_schema: pa.Schema | None = None):
        self.name = name
        self.items = list(items)
        self.output_schema = output_schema

    def run(self) -> None:
        size = self.ctx.batch_size
        for start in range(0, len(self.items), size):
            if self.ctx.cancelled.is_set() or self.ctx.stop.is_set():
                return
            self.output.collect(records.rows_to_batch(self.items[start:start + size], self.output_schema))
            self.ctx.tick()


class SequenceSource(SourceOperator):
    """env.from_sequence(start, end): the numbers start..end inclusive, split into contiguous ranges."""

    def __init__(self, name: str, start: int, end: int):
        self.name = name
        self.start = start
        self.end = end

    def subtask_range(self) -> tuple[int, int]:
        total = self.end - self.start + 1
        p, i = self.ctx.parallelism, self.ctx.subtask_index
        return self.start + total * i // p, self.start + total * (i + 1) // p

    def run(self) -> None:
        lo, hi = self.subtask_range()
        size = self.ctx.batch_size
        schema = records.with_row_kind(pa.schema([("value", pa.int64())]), records.SCALAR)
        for start in range(lo, hi, size):
            if self.ctx.cancelled.is_set() or self.ctx.stop.is_set():
                return
            values = pa.array(np.arange(start, min(start + size, hi), dtype=np.int64))
            self.output.collect(pa.RecordBatch.from_arrays([values], schema=schema))
            self.ctx.tick()


class GeneratorSource(SourceOperator):
    """env.from_generator(fn, count=None, rate=None): records fn(0), fn(1), ...

    Subtask i of p generates the indices i, i + p, i + 2p, ... ``count`` None makes the source
    unbounded. ``rate`` limits the records per second over all subtasks (Flink's
    RateLimiterStrategy.per_second); batches then hold what one buffer timeout's worth of time
    allows, so a slow stream still flows with low latency.
    """

    def __init__(self, name: str, function: Callable[[int], Any], count: int | None,
                 rate: float | None, output_schema: pa.Schema | None = None):
        self.name = name
        self.function = function
        self.count = count
        self.rate = rate
        self.output_schema = output_schema
        self.bounded = count is not None

    def run(self) -> None:
        p, i = self.ctx.parallelism, self.ctx.subtask_index
        fn = self.function
        index = i
        per_subtask_rate = self.rate / p if self.rate else None
        interval_s = max(self.ctx.buffer_timeout_ms, 10.0) / 1000.0
        started = time.monotonic()
        produced = 0
        # an unbounded stream sizes its batches so that one batch's trip through the chain takes
        # about one buffer timeout: slow functions then still see small batches at low latency
        adaptive = self.count is None
        size = 64 if adaptive else self.ctx.batch_size
        target_s = max(self.ctx.buffer_timeout_ms, 1.0) / 1000.0
        stopped = self.ctx.stop.is_set
        while not self.ctx.cancelled.is_set() and not stopped():
            if self.count is not None and index >= self.count:
                return
            batch_rows = size
            if per_subtask_rate:
                allowed = int((time.monotonic() - started + interval_s) * per_subtask_rate) - produced
                if allowed <= 0:
                    self.ctx.tick()
                    self.ctx.cancelled.wait(interval_s)
                    continue
                batch_rows = min(size, allowed)
            end = index + batch_rows * p if self.count is None else min(index + batch_rows * p, self.count)
            rows: list[Any] = []
            append = rows.append
            # fn may be slow (it may sleep): a stop is checked before every row; the rows made
            # before it are emitted, then the loop ends
            for n in range(index, end, p):
                if stopped():
                    break
                append(fn(n))
            index = end if end > index else index + p
            produced += len(rows)
            if rows:
                t0 = time.monotonic()
                self.output.collect(records.rows_to_batch(rows, self.output_schema))
                self.ctx.tick()
                if adaptive:
                    elapsed = time.monotonic() - t0
                    scaled = int(len(rows) * target_s / elapsed) if elapsed > 0 else self.ctx.batch_size
                    size = max(1, min(self.ctx.batch_size, scaled, size * 2))


class FileSourceOperator(SourceOperator):
    """Reads files through pyarrow.dataset; file i goes to subtask i % parallelism.

    ``progress`` is (bytes read, bytes in total) of this subtask's files once it runs, a file
    counting as read when it was read to its end; the task reports it as the metrics
    ``sourceBytesRead`` and ``sourceBytesTotal`` (:func:`source_progress_metrics`).
    """

    def __init__(self, name: str, files: list[str], format: str, options: dict[str, Any]):
        self.name = name
        self.files = files
        self.format = format
        self.options = options
        self.progress: tuple[int, int] | None = None

    def run(self) -> None:
        mine = fileio.assign_splits(self.files, self.ctx.parallelism, self.ctx.subtask_index)
        if not mine:
            self.progress = (0, 0)
            return
        reader = fileio.FileReader(mine, self.format, batch_size=self.ctx.batch_size, **self.options)
        total = reader.total_bytes
        self.progress = (0, total)
        for batch in reader.batches():
            self.progress = (reader.bytes_read, total)
            if self.ctx.cancelled.is_set() or self.ctx.stop.is_set():
                return
            if batch.num_rows:
                self.output.collect(batch)
            self.ctx.tick()
        self.progress = (reader.bytes_read, total)

    def describe(self) -> dict[str, Any]:
        return {"files": len(self.files), "format": self.format}


def source_progress_metrics(operator: Any) -> dict[str, int]:
    """The progress metrics of a chain's head operator: ``sourceBytesRead`` and
    ``sourceBytesTotal`` for a file source that runs (pyflow's own names); {} otherwise."""
    progress = getattr(operator, "progress", None)
    if progress is None:
        return {}
    return {"sourceBytesRead": progress[0], "sourceBytesTotal": progress[1]}
