"""Operators that run user functions: row functions (map, flat_map, filter, process) and batch
functions (map_batches, filter on a pyarrow expression).

Row functions convert a batch to Python rows once, call the function per row, and convert the
results back once. Batch functions see the ``pyarrow.RecordBatch`` itself. A rich function
(an object with ``open(runtime_context)``/``close()``) is opened once per subtask.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyflow.errors import RecordError
from pyflow.runtime import records
from pyflow.runtime.operators.base import StreamOperator


class OutputTag:
    """Names a side output (Flink's / PyFlink's OutputTag). A process function sends a record to
    it with ``yield tag, value``; ``stream.get_side_output(tag)`` is the stream of those records.

    >>> late = OutputTag("late")
    >>> late == OutputTag("late")
    True
    """

    def __init__(self, tag_id: str, type_info: Any = None):
        if not isinstance(tag_id, str) or not tag_id:
            from pyflow.errors import ProgramError

            raise ProgramError(f"An OutputTag needs a non-empty string id, got {tag_id!r}")
        self.tag_id = tag_id
        self.type_info = type_info

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputTag) and other.tag_id == self.tag_id

    def __hash__(self) -> int:
        return hash(("OutputTag", self.tag_id))

    def __repr__(self) -> str:
        return f"OutputTag({self.tag_id!r})"


class _Emitter:
    """Collects a batch's worth of results of a process function: main records and side-output
    records (``(OutputTag, value)`` pairs), each with the timestamp of what produced it."""

    __slots__ = ("main", "main_ts", "side", "with_ts")

    def __init__(self, with_ts: bool):
        self.main: list[Any] = []
        self.main_ts: list[int | None] = []
        self.side: dict[str, tuple[list[Any], list[int | None]]] = {}
        self.with_ts = with_ts

    def add(self, results: Iterable[Any] | None, timestamp: int | None) -> None:
        if results is None:
            return
        for item in results:
            if type(item) is tuple and len(item) == 2 and isinstance(item[0], OutputTag):
                rows, times = self.side.setdefault(item[0].tag_id, ([], []))
                rows.append(item[1])
                times.append(timestamp)
            else:
                self.main.append(item)
                self.main_ts.append(timestamp)

    def emit(self, operator: "UserFunctionOperator") -> None:
        operator.emit_rows(self.main, self.main_ts if self.with_ts else None)
        for tag, (rows, times) in self.side.items():
            batch = records.with_timestamps(records.rows_to_batch(rows), times if self.with_ts else None)
            operator.output.collect_side(tag, batch)


class RuntimeContext:
    """Flink's RuntimeContext: what a rich function may ask about the subtask it runs in."""

    def __init__(self, ctx):
        self._ctx = ctx

    def get_task_name(self) -> str:
        return self._ctx.task_name

    def get_number_of_parallel_subtasks(self) -> int:
        return self._ctx.parallelism

    def get_max_number_of_parallel_subtasks(self) -> int:
        return self._ctx.max_parallelism

    def get_index_of_this_subtask(self) -> int:
        return self._ctx.subtask_index

    def get_attempt_number(self) -> int:
        return self._ctx.attempt_number

    def get_job_id(self) -> str:
        return self._ctx.job_id

    # ---- keyed state (keyed streams only), PyFlink's names ----------------------------------

    def _backend(self):
        backend = self._ctx.keyed_state_backend
        if backend is None:
            from pyflow.errors import ProgramError

            raise ProgramError(
                f"Keyed state is only available on keyed streams: '{self._ctx.operator_name}' does "
                "not run after key_by(); key the stream first")
        return backend

    def get_state(self, descriptor):
        return self._backend().get_partitioned_state(descriptor)

    get_list_state = get_state
    get_map_state = get_state
    get_reducing_state = get_state
    get_aggregating_state = get_state

    def get_managed_memory(self) -> int:
        """Bytes of managed memory of this subtask's slot: the TaskManager's managed memory
        (``taskmanager.memory.process.size`` x ``taskmanager.memory.managed.fraction``) split
        evenly over its slots. Subtasks sharing a slot share it. (pyflow extension.)"""
        return self._ctx.managed_memory


class UserFunctionOperator(StreamOperator):
    """Holds a user function object and the callable to invoke on it."""

    def __init__(self, name: str, function: Any, call: Callable, output_schema: pa.Schema | None = None):
        self.name = name
        self.function = function
        self.call = call
        self.output_schema = output_schema

    def open(self) -> None:
        opener = getattr(self.function, "open", None)
        if callable(opener) and not isinstance(self.function, type):
            opener(RuntimeContext(self.ctx))

    def close(self) -> None:
        closer = getattr(self.function, "close", None)
        if callable(closer) and not isinstance(self.function, type) and hasattr(self, "ctx"):
            closer()

    def emit_rows(self, rows: list[Any], timestamps: Any = None) -> None:
        """Send rows on; ``timestamps`` (one per row) keep their event time, as Flink keeps a
        record's timestamp through map, flat_map and process."""
        if rows:
            self.output.collect(records.with_timestamps(records.rows_to_batch(rows, self.output_schema), timestamps))


def _repeat(ts: pa.Array | None, counts: list[int]) -> Any:
    """Each input's timestamp once per output it produced."""
    if ts is None:
        return None
    return np.repeat(ts.to_numpy(zero_copy_only=False), counts)


class MapOperator(UserFunctionOperator):
    def process_batch(self, batch: pa.RecordBatch) -> None:
        fn = self.call
        self.emit_rows([fn(row) for row in records.batch_to_rows(batch)], records.timestamps(batch))


class FlatMapOperator(UserFunctionOperator):
    def process_batch(self, batch: pa.RecordBatch) -> None:
        fn = self.call
        out: list[Any] = []
        extend = out.extend
        ts = records.timestamps(batch)
        counts: list[int] = []
        for row in records.batch_to_rows(batch):
            result = fn(row)
            if result is not None:
                before = len(out)
                extend(result)
                if ts is not None:
                    counts.append(len(out) - before)
            elif ts is not None:
                counts.append(0)
        self.emit_rows(out, _repeat(ts, counts))


class FilterOperator(UserFunctionOperator):
    def process_batch(self, batch: pa.RecordBatch) -> None:
        fn = self.call
        mask = pa.array([bool(fn(row)) for row in records.batch_to_rows(batch)], pa.bool_())
        kept = batch.filter(mask)
        if kept.num_rows:
            self.output.collect(kept)


class ExpressionFilterOperator(StreamOperator):
    """filter(pc.field("price") > 3000): evaluated by Arrow on the whole batch."""

    def __init__(self, name: str, expression: pc.Expression):
        self.name = name
        self.expression = expression

    def process_batch(self, batch: pa.RecordBatch) -> None:
        try:
            kept = batch.filter(self.expression)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
            raise RecordError(
                f"The filter expression {self.expression} of '{self.name}' cannot be evaluated on "
                f"records with schema ({_schema_text(batch.schema)}): {e}"
            ) from e
        if kept.num_rows:
            self.output.collect(kept)

    def describe(self) -> dict[str, Any]:
        return {"expression": str(self.expression)}


class MapBatchesOperator(UserFunctionOperator):
    """map_batches(fn): fn(RecordBatch) -> RecordBatch | Table | dict of columns | None."""

    def process_batch(self, batch: pa.RecordBatch) -> None:
        batch, ts = records.without_timestamps(batch)
        result = self.call(batch)
        outs = _as_batches(result, self.name)
        if ts is not None and len(outs) == 1 and outs[0].num_rows == batch.num_rows:
            outs = [records.with_timestamps(outs[0], ts)]  # row for row: the rows keep their time
        for out in outs:
            if out.num_rows:
                self.output.collect(out)


class ProcessOperator(UserFunctionOperator):
    """process(ProcessFunction): process_element(value, ctx) yields (or returns) output records."""

    def __init__(self, name, function, call, output_schema=None, key_selector=None):
        super().__init__(name, function, call, output_schema)
        self.key_selector = key_selector
        self.keyed = key_selector is not None

    def open(self) -> None:
        super().open()
        self._context = ProcessContext(self.ctx)

    def process_batch(self, batch: pa.RecordBatch) -> None:
        fn = self.call
        ctx = self._context
        rows = records.batch_to_rows(batch)
        keys = self.key_selector.keys(batch, rows) if self.key_selector else None
        ts_array = records.timestamps(batch)
        ts = ts_array.to_pylist() if ts_array is not None else None
        emitter = _Emitter(ts is not None)
        for i, row in enumerate(rows):
            if keys is not None:
                ctx._current_key = keys[i]
            if ts is not None:
                ctx._timestamp = ts[i]
            emitter.add(fn(row, ctx), ts[i] if ts is not None else None)
        emitter.emit(self)


class TimerService:
    """Flink's TimerService. Timers are per key: registering one needs a keyed stream."""

    def __init__(self, ctx, timers=None, context=None):
        self._ctx = ctx
        self._timers = timers  # InternalTimerService of a keyed operator
        self._context = context

    def current_processing_time(self) -> int:
        return int(self._ctx.processing_time())

    def current_watermark(self) -> int:
        return self._ctx.current_watermark

    def _require_keyed(self):
        if self._timers is None:
            from pyflow.errors import ProgramError

            raise ProgramError(
                f"Setting timers is only supported on keyed streams: '{self._ctx.operator_name}' does "
                "not run after key_by(); use key_by(...).process(KeyedProcessFunction)")
        return self._timers

    def register_event_time_timer(self, timestamp: int) -> None:
        self._require_keyed().register_event_time_timer(timestamp, self._context.get_current_key())

    def register_processing_time_timer(self, timestamp: int) -> None:
        self._require_keyed().register_processing_time_timer(timestamp, self._context.get_current_key())

    def delete_event_time_timer(self, timestamp: int) -> None:
        self._require_keyed().delete_event_time_timer(timestamp, self._context.get_current_key())

    def delete_processing_time_timer(self, timestamp: int) -> None:
        self._require_keyed().delete_processing_time_timer(timestamp, self._context.get_current_key())


class ProcessContext:
    """The ``ctx`` of ProcessFunction.process_element and on_timer (Flink's Context and
    OnTimerContext)."""

    _current_key: Any = None
    _timestamp: int | None = None
    _time_domain: str | None = None

    def __init__(self, op_ctx=None, timers=None):
        self._timer_service = TimerService(op_ctx, timers, self) if op_ctx is not None else None

    def get_current_key(self) -> Any:
        return self._current_key

    def timestamp(self) -> int | None:
        """The event timestamp of the current record (epoch ms), or the firing timer's time in
        on_timer; None without event time."""
        return self._timestamp

    def timer_service(self) -> TimerService:
        return self._timer_service

    def time_domain(self) -> str | None:
        """In on_timer: "EVENT_TIME" or "PROCESSING_TIME"."""
        return self._time_domain


def _schema_text(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


def _as_batches(result: Any, name: str) -> Iterable[pa.RecordBatch]:
    if result is None:
        return []
    if isinstance(result, pa.RecordBatch):
        return [result]
    if isinstance(result, pa.Table):
        return result.combine_chunks().to_batches()
    if isinstance(result, dict):
        return [pa.RecordBatch.from_pydict(result)]
    raise RecordError(
        f"The function of '{name}' returned {type(result).__name__}; a map_batches function must "
        "return a pyarrow.RecordBatch, a pyarrow.Table, a dict of columns, or None"
    )
