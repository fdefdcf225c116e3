"""DataStream, KeyedStream and DataStreamSink: Flink's DataStream API in Python's idiom.

Every method records a transformation; nothing runs until ``env.execute()``. Row functions see
records as Python values (tuples, dicts, scalars or any object); batch functions
(``map_batches``) and expression filters see ``pyarrow.RecordBatch`` and run vectorized.

>>> from pyflow import StreamExecutionEnvironment
>>> env = StreamExecutionEnvironment.get_execution_environment()
>>> counts = (env.from_collection(["a b", "b"])
...           .flat_map(str.split)
...           .map(lambda w: (w, 1))
...           .key_by(0)
...           .sum(1))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pyflow.api import functions as fn
from pyflow.errors import ProgramError
from pyflow.graph.transformations import ChainingStrategy, PartitionerSpec, Transformation
from pyflow.runtime.operators.functions import (
    ExpressionFilterOperator, FilterOperator, FlatMapOperator, MapBatchesOperator, MapOperator, ProcessOperator,
)
from pyflow.runtime.operators.key_selector import KeySelector
from pyflow.runtime.operators.keyed import KeyedAggregationOperator, KeyedReduceOperator
from pyflow.runtime.operators.sinks import PrintSinkOperator

if TYPE_CHECKING:  # pragma: no cover
    from pyflow.api.environment import StreamExecutionEnvironment


def _check_parallelism(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ProgramError(f"The parallelism of {what} must be a positive integer, got {value!r}")
    return value


class _Configurable:
    """Per-operator settings shared by streams and sinks (they apply to the last operator)."""

    _env: StreamExecutionEnvironment
    _transformation: Transformation

    def name(self, name: str):
        self._transformation.name = str(name)
        return self

    def get_name(self) -> str:
        return self._transformation.name

    def uid(self, uid: str):
        self._transformation.uid = str(uid)
        return self

    def set_parallelism(self, parallelism: int):
        if self._transformation.is_virtual:
            raise ProgramError("set_parallelism() applies to operators, not to partitionings such as "
                               "key_by() or rebalance(); call it on the operator after them")
        self._transformation.parallelism = _check_parallelism(parallelism, f"'{self._transformation.name}'")
        return self

    def get_parallelism(self) -> int:
        return self._transformation.parallelism or self._env.get_parallelism()

    def set_max_parallelism(self, max_parallelism: int):
        self._transformation.max_parallelism = _check_parallelism(max_parallelism, "max parallelism")
        return self

    def start_new_chain(self):
        self._transformation.chaining_strategy = ChainingStrategy.HEAD
        return self

    def disable_chaining(self):
        self._transformation.chaining_strategy = ChainingStrategy.NEVER
        return self

    def slot_sharing_group(self, name: str):
        self._transformation.slot_sharing_group = str(name)
        return self


class DataStream(_Configurable):
    def __init__(self, env: StreamExecutionEnvironment, transformation: Transformation):
        self._env = env
        self._transformation = transformation

    # ---- helpers -------------------------------------------------------------------------------

    def _add(self, name: str, operator, kind: str = "operator") -> Transformation:
        t = Transformation(kind=kind, name=name, inputs=[self._transformation], operator=operator)
        self._env._add(t)
        return t

    def _then(self, name: str, operator) -> DataStream:
        return DataStream(self._env, self._add(name, operator))

    def _partition(self, spec: PartitionerSpec) -> DataStream:
        t = Transformation(kind="partition", name=spec.type, inputs=[self._transformation], partitioner=spec)
        return DataStream(self._env, t)

    # ---- transformations -------------------------------------------------------------------------

    def map(self, func: Callable[[Any], Any] | fn.MapFunction, output_schema: pa.Schema | None = None) -> DataStream:
        """One output record per input record."""
        call = fn.resolve(func, "map", "map", fn.MapFunction)
        return self._then("Map", MapOperator("Map", func, call, output_schema))

    def flat_map(self, func, output_schema: pa.Schema | None = None) -> DataStream:
        """Zero or more output records per input record: the function returns or yields them."""
        call = fn.resolve(func, "flat_map", "flat_map", fn.FlatMapFunction)
        return self._then("Flat Map", FlatMapOperator("Flat Map", func, call, output_schema))

    def filter(self, func) -> DataStream:
        """Keep records for which ``func(record)`` is true, or (vectorized) rows where a pyarrow
        compute expression holds: ``stream.filter(pc.field("price") > 3000)``."""
        if isinstance(func, pc.Expression):
            return self._then("Filter", ExpressionFilterOperator("Filter", func))
        call = fn.resolve(func, "filter", "filter", fn.FilterFunction)
        return self._then("Filter", FilterOperator("Filter", func, call))

    def map_batches(self, func) -> DataStream:
        """A batch function: ``func(pyarrow.RecordBatch)`` returns a RecordBatch, a Table, a dict
        of columns, or None. The fast path for vectorized work."""
        call = fn.resolve(func, "map_batches", "map_batches", fn.MapBatchesFunction)
        return self._then("Map Batches", MapBatchesOperator("Map Batches", func, call))

    def process(self, func: fn.ProcessFunction, output_schema: pa.Schema | None = None) -> DataStream:
        call = fn.resolve(func, "process_element", "process", fn.ProcessFunction)
        return self._then("Process", ProcessOperator("Process", func, call, output_schema))

    def assign_timestamps_and_watermarks(self, watermark_strategy) -> DataStream:
        """Give records event timestamps and emit watermarks (see WatermarkStrategy)."""
        from pyflow.api.watermarks import WatermarkStrategy

        if not isinstance(watermark_strategy, WatermarkStrategy):
            raise ProgramError(f"assign_timestamps_and_watermarks() needs a WatermarkStrategy, got {watermark_strategy!r}")
        name = "Timestamps/Watermarks"
        return self._then(name, watermark_strategy.create_operator(name))

    def _all_keyed(self) -> KeyedStream:
        return KeyedStream(self._partition(PartitionerSpec("global")), KeySelector(fields=()), partition=False)

    def window_all(self, assigner) -> WindowedStream:
        """Windows over the whole (non-keyed) stream, computed with parallelism 1 (as in Flink)."""
        return WindowedStream(self._all_keyed(), assigner, all_windows=True)

    def count_window_all(self, size: int, slide: int | None = None) -> WindowedStream:
        return _count_windowed(self._all_keyed(), size, slide, all_windows=True)

    def key_by(self, key: str | int | Sequence[str | int] | Callable[[Any], Any] | fn.KeySelector) -> KeyedStream:
        """Partition by key: field name(s), tuple position(s), or a key function."""
        if isinstance(key, (str, int)) and not isinstance(key, bool):
            selector = KeySelector(fields=(key,))
        elif isinstance(key, (list, tuple)) and key and all(isinstance(k, (str, int)) for k in key):
            selector = KeySelector(fields=tuple(key))
        elif isinstance(key, fn.KeySelector) or callable(key):
            selector = KeySelector(function=fn.resolve(key, "get_key", "key_by", fn.KeySelector))
        else:
            raise ProgramError(
                f"key_by() takes a field name, a tuple position, a list of them, or a key function; "
                f"got {key!r}")
        return KeyedStream(self, selector)

    def connect(self, other: DataStream | BroadcastStream) -> ConnectedStreams | BroadcastConnectedStream:
        """Connect with another stream (two inputs, one operator, shared state), or with a
        broadcast stream (``other.broadcast(descriptor)``)."""
        if isinstance(other, BroadcastStream):
            return BroadcastConnectedStream(self, other)
        if not isinstance(other, DataStream) or other._env is not self._env:
            raise ProgramError("connect() takes a DataStream or a BroadcastStream of the same environment")
        return ConnectedStreams(self, other)

    def get_side_output(self, output_tag) -> DataStream:
        """The records this operator sent to ``output_tag`` (``yield output_tag, value`` in a
        process function; late window data with ``side_output_late_data``)."""
        from pyflow.runtime.operators.functions import OutputTag

        if not isinstance(output_tag, OutputTag):
            raise ProgramError(f"get_side_output() needs an OutputTag, got {output_tag!r}")
        if self._transformation.is_virtual:
            raise ProgramError("get_side_output() applies to the operator that produces the side output")
        t = Transformation(kind="side", name=f"Side output {output_tag.tag_id}", inputs=[self._transformation],
                           side_tag=output_tag.tag_id)
        return DataStream(self._env, t)

    def union(self, *streams: DataStream) -> DataStream:
        for s in streams:
            if not isinstance(s, DataStream) or s._env is not self._env:
                raise ProgramError("union() takes DataStreams of the same environment")
        t = Transformation(kind="union", name="Union",
                           inputs=[self._transformation] + [s._transformation for s in streams])
        return DataStream(self._env, t)

    def rebalance(self) -> DataStream:
        return self._partition(PartitionerSpec("rebalance"))

    def rescale(self) -> DataStream:
        return self._partition(PartitionerSpec("rescale"))

    def broadcast(self, *descriptors) -> DataStream | BroadcastStream:
        """Every record to every subtask of the next operator; with MapStateDescriptors, a
        BroadcastStream to ``connect()`` for broadcast state."""
        stream = self._partition(PartitionerSpec("broadcast"))
        return BroadcastStream(stream, descriptors) if descriptors else stream

    def shuffle(self) -> DataStream:
        return self._partition(PartitionerSpec("shuffle"))

    def forward(self) -> DataStream:
        return self._partition(PartitionerSpec("forward"))

    def global_(self) -> DataStream:
        """All records to the first subtask of the next operator (Flink's ``global()``)."""
        return self._partition(PartitionerSpec("global"))

    # ---- sinks ---------------------------------------------------------------------------------------

    def print(self, sink_identifier: str | None = None) -> DataStreamSink:
        """Print every record to stdout of the TaskManager (the console in local mode)."""
        name = "Print to Std. Out"
        return DataStreamSink(self._env, self._add(name, PrintSinkOperator(name, sink_identifier), "sink"))

    def sink_to(self, sink) -> DataStreamSink:
        """Write to a sink, e.g. ``FileSink("out/", format="parquet")``."""
        create = getattr(sink, "create_operator", None)
        if create is None:
            raise ProgramError(f"sink_to() needs a sink such as FileSink, got {type(sink).__name__}")
        operator = create()
        return DataStreamSink(self._env, self._add(operator.name, operator, "sink"))

    def execute_and_collect(self, job_name: str | None = None, limit: int | None = None) -> Iterator[Any]:
        """Run the job and return its results here, as an iterator of records (a context manager
        too; closing it early cancels the job)."""
        from pyflow.api.collect import collect

        return collect(self, job_name, limit)


class DataStreamSink(_Configurable):
    def __init__(self, env: StreamExecutionEnvironment, transformation: Transformation):
        self._env = env
        self._transformation = transformation


class KeyedStream(DataStream):
    """A stream partitioned by key: keyed aggregations, reduce, keyed process functions."""

    def __init__(self, stream: DataStream, selector: KeySelector, partition: bool = True):
        if partition:
            spec = PartitionerSpec("hash", key_selector=selector)
            t = Transformation(kind="partition", name="key_by", inputs=[stream._transformation], partitioner=spec)
        else:  # already partitioned (window_all: everything to one subtask)
            t = stream._transformation
        super().__init__(stream._env, t)
        self._selector = selector

    def _keyed(self, name: str, operator) -> DataStream:
        operator.key_selector.operator_name = name
        return self._then(name, operator)

    def reduce(self, func) -> DataStream:
        """Combine the records of each key: ``reduce(lambda a, b: ...)``. STREAMING emits every
        intermediate value; BATCH emits the final value per key."""
        call = fn.resolve(func, "reduce", "reduce", fn.ReduceFunction)
        return self._keyed("Keyed Reduce", KeyedReduceOperator("Keyed Reduce", func, call, self._selector))

    def _aggregate(self, kind: str, fields: list[str | int]) -> DataStream:
        name = "Keyed Aggregation"
        upstream = self._transformation.inputs[0] if self._transformation.kind == "partition" else None
        if (kind in ("sum", "min", "max", "count") and self._selector.fields is not None
                and upstream is not None and not upstream.is_virtual):
            # BATCH aggregates locally before the exchange (the operator passes records through
            # in STREAMING); it chains to its input, so it runs with the input's parallelism
            from pyflow.runtime.operators.keyed import LocalAggregationOperator

            local_name = "Keyed Aggregation (local)"
            local = Transformation(kind="operator", name=local_name, inputs=[upstream],
                                   operator=LocalAggregationOperator(local_name, kind, fields, self._selector),
                                   parallelism=1 if upstream.non_parallel else upstream.parallelism)
            self._env._add(local)
            partition = Transformation(kind="partition", name="key_by", inputs=[local],
                                       partitioner=self._transformation.partitioner)
            keyed = KeyedStream(DataStream(self._env, partition), self._selector, partition=False)
            return keyed._keyed(name, KeyedAggregationOperator(name, kind, fields, self._selector, combined=True))
        return self._keyed(name, KeyedAggregationOperator(name, kind, fields, self._selector))

    def sum(self, field: str | int | Sequence[str | int]) -> DataStream:
        """Rolling sum of a field (or several) per key; other fields keep the key's first record."""
        return self._aggregate("sum", _fields(field))

    def min(self, field: str | int) -> DataStream:
        return self._aggregate("min", _fields(field))

    def max(self, field: str | int) -> DataStream:
        return self._aggregate("max", _fields(field))

    def min_by(self, field: str | int) -> DataStream:
        """The whole record holding the minimum of ``field`` per key (first one on ties)."""
        return self._aggregate("min_by", _fields(field))

    def max_by(self, field: str | int) -> DataStream:
        return self._aggregate("max_by", _fields(field))

    def count(self) -> DataStream:
        """Records per key, as rows ``{<key fields>..., "count": n}``."""
        return self._aggregate("count", [])

    def window(self, assigner) -> WindowedStream:
        """Group each key's records into windows, e.g. ``TumblingEventTimeWindows.of(10_000)``."""
        return WindowedStream(self, assigner)

    def count_window(self, size: int, slide: int | None = None) -> WindowedStream:
        """Windows of ``size`` records per key; with ``slide``, one every ``slide`` records over
        the last ``size`` (sliding count windows work with ``process()``)."""
        return _count_windowed(self, size, slide, all_windows=False)

    def process(self, func: fn.KeyedProcessFunction, output_schema: pa.Schema | None = None) -> DataStream:
        """A KeyedProcessFunction: per-key state through its runtime context, and timers
        (``ctx.timer_service()``) that call its ``on_timer(timestamp, ctx)``."""
        from pyflow.runtime.operators.keyed_process import KeyedProcessOperator

        call = fn.resolve(func, "process_element", "process", fn.ProcessFunction)
        return self._keyed("Keyed Process",
                           KeyedProcessOperator("Keyed Process", func, call, self._selector, output_schema))


class ConnectedStreams:
    """Two streams feeding one operator (Flink's ConnectedStreams)."""

    def __init__(self, first: DataStream, second: DataStream, selectors: tuple | None = None):
        self._first = first
        self._second = second
        self._selectors = selectors

    def key_by(self, key1, key2) -> ConnectedStreams:
        """Key both inputs (records with equal keys meet in the same subtask and state)."""
        k1, k2 = self._first.key_by(key1), self._second.key_by(key2)
        return ConnectedStreams(k1, k2, (k1._selector, k2._selector))

    def _two_input(self, name: str, operator) -> DataStream:
        t = Transformation(kind="operator", name=name, inputs=[self._first._transformation,
                                                               self._second._transformation], operator=operator)
        self._first._env._add(t)
        return DataStream(self._first._env, t)

    def _co(self, name: str, func, kind: str, output_schema) -> DataStream:
        from pyflow.runtime.operators.two_input import CoOperator, adapt

        call1, call2 = adapt(func, kind)
        return self._two_input(name, CoOperator(name, func, call1, call2, self._selectors, output_schema))

    def map(self, func: fn.CoMapFunction, output_schema: pa.Schema | None = None) -> DataStream:
        return self._co("Co-Map", func, "map", output_schema)

    def flat_map(self, func: fn.CoFlatMapFunction, output_schema: pa.Schema | None = None) -> DataStream:
        return self._co("Co-Flat Map", func, "flat_map", output_schema)

    def process(self, func: fn.CoProcessFunction, output_schema: pa.Schema | None = None) -> DataStream:
        """A CoProcessFunction, or on keyed connected streams a KeyedCoProcessFunction (state, timers)."""
        return self._co("Co-Process" if self._selectors is None else "Keyed Co-Process", func, "process", output_schema)


class BroadcastStream:
    """A stream broadcast to every subtask, carrying broadcast state (Flink's BroadcastStream)."""

    def __init__(self, stream: DataStream, descriptors: tuple):
        from pyflow.state import MapStateDescriptor

        for d in descriptors:
            if not isinstance(d, MapStateDescriptor):
                raise ProgramError(f"broadcast() takes MapStateDescriptors for broadcast state, got {d!r}")
        self._stream = stream
        self._descriptors = descriptors


class BroadcastConnectedStream:
    def __init__(self, stream: DataStream, broadcast: BroadcastStream):
        self._stream = stream
        self._broadcast = broadcast

    def process(self, func: fn.BroadcastProcessFunction, output_schema: pa.Schema | None = None) -> DataStream:
        from pyflow.runtime.operators.two_input import BroadcastOperator

        keyed = isinstance(self._stream, KeyedStream)
        if keyed and not isinstance(func, fn.KeyedBroadcastProcessFunction):
            raise ProgramError("A keyed stream connected with a broadcast stream needs a KeyedBroadcastProcessFunction")
        name = "Keyed Broadcast Process" if keyed else "Broadcast Process"
        operator = BroadcastOperator(name, func, self._broadcast._descriptors,
                                     self._stream._selector if keyed else None, output_schema)
        return ConnectedStreams(self._stream, self._broadcast._stream)._two_input(name, operator)


class WindowedStream:
    """A keyed stream grouped into windows (Flink's WindowedStream).

    Built-in aggregations (``sum``, ``min``, ``max``, ``count``, ``mean``) emit one row per key and
    window: the key field(s) (``key`` for a key function), ``window_start``, ``window_end`` (epoch
    ms; absent for count windows) and one column per aggregate (``count``, or the aggregated
    field's name); the row's timestamp is the window's max timestamp (end - 1). On tumbling and
    sliding windows with the default trigger they run vectorized on Arrow batches; otherwise
    (custom triggers, allowed lateness, late side output, sessions, count windows) record by record.
    ``reduce``, ``aggregate`` and ``process`` take Flink's window functions.
    """

    def __init__(self, keyed: KeyedStream, assigner: Any, *, all_windows: bool = False):
        from pyflow.api.windowing import WindowAssigner

        if not isinstance(assigner, WindowAssigner):
            raise ProgramError(
                f"window() takes a window assigner such as TumblingEventTimeWindows.of(10_000), got {assigner!r}")
        self._keyed = keyed
        self._assigner = assigner
        self._trigger = None
        self._allowed_lateness_ms = 0
        self._late_tag = None
        self._evictor_count: int | None = None
        self._all = all_windows

    def trigger(self, trigger) -> WindowedStream:
        self._trigger = trigger
        return self

    def allowed_lateness(self, lateness) -> WindowedStream:
        """How long after the watermark passed a window late records still update it
        (milliseconds or timedelta); each late record fires the window again."""
        from pyflow.api.durations import non_negative_millis

        self._allowed_lateness_ms = non_negative_millis(lateness, "allowed_lateness", allow_zero=True)
        return self

    def side_output_late_data(self, output_tag) -> WindowedStream:
        """Records too late for any window go to this side output (``get_side_output(tag)`` on the
        result) instead of being dropped."""
        from pyflow.runtime.operators.functions import OutputTag

        if not isinstance(output_tag, OutputTag):
            raise ProgramError(f"side_output_late_data() needs an OutputTag, got {output_tag!r}")
        self._late_tag = output_tag
        return self

    def _vectorizable(self) -> bool:
        return (self._trigger is None and self._allowed_lateness_ms == 0 and self._late_tag is None
                and self._evictor_count is None and hasattr(self._assigner, "assign_batch")
                and not self._assigner.is_merging())

    def _result(self, name: str, op) -> DataStream:
        stream = self._keyed._then(name, op)
        if self._all:
            stream.set_parallelism(1)
        return stream

    def _window_operator(self, name: str, function) -> DataStream:
        from pyflow.runtime.operators.window_operator import WindowOperator

        op = WindowOperator(name, self._keyed._selector, self._assigner, trigger=self._trigger,
                            allowed_lateness_ms=self._allowed_lateness_ms, function=function,
                            late_output_tag=self._late_tag, evictor_count=self._evictor_count)
        return self._result(name, op)

    def reduce(self, reduce_function, window_function=None) -> DataStream:
        """Reduce each window's records (``fn(a, b)`` or a ReduceFunction); an optional
        ProcessWindowFunction gets the reduced value with the window's key and context."""
        from pyflow.runtime.operators.window_operator import ReduceWindow

        call = fn.resolve(reduce_function, "reduce", "reduce", fn.ReduceFunction)
        return self._window_operator("Window(Reduce)", ReduceWindow(call, window_function))

    def aggregate(self, aggregate_function, window_function=None) -> DataStream:
        """An AggregateFunction (create_accumulator / add / get_result / merge) per window."""
        from pyflow.runtime.operators.window_operator import AggregateWindow

        return self._window_operator("Window(Aggregate)", AggregateWindow(aggregate_function, window_function))

    def process(self, process_window_function) -> DataStream:
        """A ProcessWindowFunction: ``process(key, context, elements)`` yields results."""
        from pyflow.runtime.operators.window_operator import ProcessWindow

        return self._window_operator("Window(Process)", ProcessWindow(process_window_function))

    def _aggregate_builtin(self, kind: str, fields: list[str | int | None]) -> DataStream:
        if self._vectorizable():
            from pyflow.runtime.operators.window_aggregation import WindowAggregationOperator

            name = "Window Aggregation" if not self._all else "All-Window Aggregation"
            op = WindowAggregationOperator(name, self._keyed._selector, self._assigner, [(kind, f) for f in fields])
            return self._result(name, op)
        from pyflow.runtime.operators.window_builtins import builtin_window_function

        if len(fields) != 1:
            raise ProgramError(f"{kind}() of several fields needs tumbling or sliding windows with the "
                               "default trigger; compute one field per window operation here")
        return self._window_operator(f"Window({kind})", builtin_window_function(
            kind, fields[0], self._keyed._selector, include_window=not _is_global(self._assigner), all_windows=self._all))

    def sum(self, field: str | int | Sequence[str | int]) -> DataStream:
        return self._aggregate_builtin("sum", _fields(field))

    def min(self, field: str | int | Sequence[str | int]) -> DataStream:
        return self._aggregate_builtin("min", _fields(field))

    def max(self, field: str | int | Sequence[str | int]) -> DataStream:
        return self._aggregate_builtin("max", _fields(field))

    def mean(self, field: str | int | Sequence[str | int]) -> DataStream:
        return self._aggregate_builtin("mean", _fields(field))

    def count(self) -> DataStream:
        return self._aggregate_builtin("count", [None])


def _is_global(assigner) -> bool:
    from pyflow.api.windowing import GlobalWindows

    return isinstance(assigner, GlobalWindows)


def _count_windowed(keyed: KeyedStream, size: int, slide: int | None, all_windows: bool) -> WindowedStream:
    from pyflow.api.windowing import CountTrigger, GlobalWindows, PurgingTrigger

    for name, value in (("size", size), ("slide", slide)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ProgramError(f"count_window({name}={value!r}): {name} must be a positive number of records")
    windowed = WindowedStream(keyed, GlobalWindows.create(), all_windows=all_windows)
    if slide is None:
        windowed._trigger = PurgingTrigger.of(CountTrigger.of(size))
    else:
        windowed._trigger = CountTrigger.of(slide)
        windowed._evictor_count = size
    return windowed


def _fields(field) -> list[str | int]:
    fields = list(field) if isinstance(field, (list, tuple)) else [field]
    for f in fields:
        if not isinstance(f, (str, int)) or isinstance(f, bool):
            raise ProgramError(f"A field is a name or a tuple position, got {f!r}")
    return fields
