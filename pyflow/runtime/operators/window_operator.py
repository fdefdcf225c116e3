"""WindowOperator: Flink's generic window operator, one record at a time inside each batch.

The operator groups a keyed stream into windows (an assigner), decides when a window is
evaluated (a trigger), keeps each (key, window)'s contents in keyed state and hands them to a
window function when the trigger fires. It follows Flink's ``WindowOperator.processElement``,
``onEventTime`` and ``onProcessingTime`` step for step; the pure pieces (windows, assigners,
triggers, the merging window set, the lateness rules) live in
:mod:`pyflow.runtime.operators.windows` and :mod:`pyflow.api.windowing`.

Ownership and invariants
------------------------
* One operator instance per subtask owns a :class:`HeapKeyedStateBackend` over its key-group
  range (also published as ``ctx.keyed_state_backend``, so rich functions may use keyed state)
  and an :class:`InternalTimerService`. Everything runs on the task thread.
* State, per key (Flink's state names):

  ``window-contents``
      the window function's state, namespaced by the window's **state window** (the window
      itself, except for merged session windows, see :class:`MergingWindowSet`): a
      ``ReducingState`` (:class:`ReduceWindow`), an ``AggregatingState``
      (:class:`AggregateWindow`) or a ``ListState`` of the elements (:class:`ProcessWindow`).
  ``merging-window-set``
      merging assigners only: the key's in-flight sessions, the ``dict`` window -> state window
      of :meth:`MergingWindowSet.persist`, in a ``ValueState`` (void namespace); unset when empty.
  trigger state
      whatever the trigger asks ``ctx.get_partitioned_state(descriptor)`` for, namespaced by the
      window itself (not its state window), as in Flink.

  Both names are reserved: triggers and ``context.window_state()/global_state()`` may not use them.
* Timers are ``(time, key, window)``: the trigger's own, plus one **cleanup timer** per window
  at :func:`cleanup_time` (``max_timestamp + allowed_lateness`` in event time, ``max_timestamp``
  in processing time; none for windows that end at the end of time, e.g. ``GlobalWindow``).
  Event-time timers fire in :meth:`WindowOperator.process_watermark`, before the watermark is
  forwarded; processing-time timers in :meth:`WindowOperator.on_processing_time`, read from
  ``ctx.processing_time()`` (tests replace that clock). When the input ends, windows waiting
  for a processing-time timer are not fired (as in Flink); event-time windows fire on the
  final ``MAX_WATERMARK`` the sources send.
* A window's output rows carry ``window.max_timestamp()`` as their timestamp (Flink's
  ``TimestampedCollector.setAbsoluteTimestamp``); all outputs of one input batch (or of one
  watermark or processing-time tick) leave as one batch, in the order Flink emits them.
* An element whose every window is late (:func:`is_window_late`) and which is itself late
  (:func:`is_element_late`) is "dropped due to lateness": with a ``late_output_tag`` it goes to
  the late side output, else it is counted in ``num_late_records_dropped`` (Flink's
  ``numLateRecordsDropped``; elements sent to the side output are not counted, as in Flink).
  ``late_output_tag`` is an ``OutputTag`` (or its string id); the late rows of each input batch
  leave as one batch, the input rows unchanged with their timestamps, through
  ``output.collect_side(tag_id, batch)`` - when the output implements it (the task's outputs
  do). An output that does not (a bare test double) leaves them in ``late_records``, a list of
  batches, instead.

Window functions
----------------
The ``function`` argument is one of three small, picklable descriptions:

* :class:`ReduceWindow` ``(reduce_fn, process_fn=None)`` - Flink's ``reduce(ReduceFunction
  [, ProcessWindowFunction])``: the window keeps the running reduction; a fire emits it, or
  whatever ``process_fn.process(key, context, [reduced])`` yields.
* :class:`AggregateWindow` ``(agg_fn, process_fn=None)`` - Flink's ``aggregate(AggregateFunction
  [, ProcessWindowFunction])``: the window keeps an accumulator; a fire emits
  ``agg_fn.get_result(acc)``, or what ``process_fn`` yields given ``[result]``.
* :class:`ProcessWindow` ``(process_window_fn)`` - Flink's ``process(ProcessWindowFunction)``:
  the window keeps every element; a fire calls ``process(key, context, elements)`` (PyFlink's
  signature), which yields (or returns an iterable of) output records.

``context`` is a :class:`ProcessWindowContext`. A ``process_fn``'s ``clear(context)`` is called
when its window is cleaned up. Every user function object with ``open(runtime_context)`` /
``close()`` is opened and closed with the operator (PyFlink's rich functions).

``evictor_count=n`` is Flink's ``CountEvictor.of(n)`` (keep the last ``n`` elements, evicted
before the function sees them and removed from the window), as used by sliding count windows
``count_window(size, slide)`` = ``GlobalWindows`` + ``CountTrigger.of(slide)`` +
``CountEvictor.of(size)``. It needs the elements themselves, so it applies to
:class:`ProcessWindow` only; reduce and aggregate windows with an evictor (Flink's evicting
operator) are not yet supported.

Example: tumbling 10 ms event-time windows summing ``(key, value)`` rows::

    >>> from pyflow.api.windowing import TumblingEventTimeWindows
    >>> from pyflow.runtime.network.events import Watermark
    >>> from pyflow.runtime.operators.base import OperatorContext, Output
    >>> from pyflow.runtime.operators.key_selector import KeySelector
    >>> class Print(Output):
    ...     def collect(self, batch):
    ...         print(records.batch_to_rows(batch), records.timestamps(batch).to_pylist())
    ...     def emit_watermark(self, watermark): print(watermark)
    ...     def emit_watermark_status(self, status): pass
    >>> op = WindowOperator("Window", KeySelector(fields=(0,)), TumblingEventTimeWindows.of(10),
    ...                     function=ReduceWindow(lambda a, b: (a[0], a[1] + b[1])))
    >>> op.setup(OperatorContext("task", "Window", 0, 1, 128), Print()); op.open()
    >>> op.process_batch(records.with_timestamps(records.rows_to_batch([("a", 1), ("a", 2)]), [3, 12]))
    >>> op.ctx.current_watermark = 10; op.process_watermark(Watermark(10))
    [('a', 1)] [9]
    Watermark(timestamp=10)
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyflow.errors import ProgramError, RecordError
from pyflow.runtime import records
from pyflow.runtime.network.events import MAX_WATERMARK, MIN_WATERMARK
from pyflow.runtime.operators.base import Output, StreamOperator
from pyflow.runtime.operators.functions import RuntimeContext
from pyflow.runtime.operators.windows import (
    MergingWindowSet, OnMergeContext, Window, WindowAssignerContext, cleanup_time, is_element_late,
    is_window_late,
)
from pyflow.runtime.timer_service import InternalTimerService
from pyflow.state.backend import HeapKeyedStateBackend
from pyflow.state.descriptors import (
    AggregatingStateDescriptor, ListStateDescriptor, ReducingStateDescriptor, StateDescriptor,
    ValueStateDescriptor,
)
from pyflow.state.keyed_state import _MISSING, VoidNamespace

__all__ = [
    "AggregateWindow",
    "CONTENTS_STATE",
    "MERGING_SETS_STATE",
    "ProcessWindow",
    "ProcessWindowContext",
    "ReduceWindow",
    "WindowOperator",
]

logger = logging.getLogger(__name__)

#: the state holding each window's contents (Flink's name)
CONTENTS_STATE = "window-contents"
#: the state holding each key's in-flight merging windows (Flink's name)
MERGING_SETS_STATE = "merging-window-set"
_RESERVED = (CONTENTS_STATE, MERGING_SETS_STATE)
_TRIGGER_METHODS = ("on_element", "on_event_time", "on_processing_time", "can_merge", "on_merge", "clear")


# -- window functions -----------------------------------------------------------------------------


def _instance(function: Any, what: str) -> None:
    if isinstance(function, type):
        raise ProgramError(f"{what} got the class {function.__name__}, not an instance; pass "
                           f"{function.__name__}()")


def _process_callable(function: Any, what: str) -> Callable[[Any, Any, Any], Any]:
    """``function.process`` (a ProcessWindowFunction) or the callable itself."""
    _instance(function, what)
    process = getattr(function, "process", None)
    if callable(process):
        return process
    if callable(function):
        return function
    raise ProgramError(
        f"{what} needs a ProcessWindowFunction with a process(key, context, elements) method (or "
        f"a function of (key, context, elements)), got {type(function).__name__} {function!r}")


def _results(value: Any, function: Any) -> Iterable[Any]:
    if value is None:
        return ()
    if not isinstance(value, Iterable):
        raise ProgramError(
            f"The window function {type(function).__name__}.process(key, context, elements) returned "
            f"{type(value).__name__} {records._short_repr(value)}; it must yield its results (or "
            "return an iterable of them)")
    return value


@dataclass(frozen=True)
class ReduceWindow:
    """``reduce(reduce_fn[, process_fn])``: the window holds ``reduce_fn(acc, value)`` folded
    over its elements (a callable of two values or a ``ReduceFunction``); a fire emits the
    reduction, or what ``process_fn.process(key, context, [reduction])`` yields."""

    reduce_fn: Any
    process_fn: Any = None

    def __post_init__(self) -> None:
        _instance(self.reduce_fn, "reduce()")
        if not (callable(getattr(self.reduce_fn, "reduce", None)) or callable(self.reduce_fn)):
            raise ProgramError(
                "reduce() needs a function of two values or a ReduceFunction with a "
                f"reduce(value1, value2) method, got {type(self.reduce_fn).__name__} {self.reduce_fn!r}")
        if self.process_fn is not None:
            _process_callable(self.process_fn, "reduce(reduce_function, window_function)")

    def state_descriptor(self) -> StateDescriptor:
        return ReducingStateDescriptor(CONTENTS_STATE, self.reduce_fn)

    def user_functions(self) -> list[Any]:
        return [f for f in (self.reduce_fn, self.process_fn) if f is not None]

    def apply(self, key: Any, context: ProcessWindowContext, contents: Any) -> Iterable[Any]:
        if self.process_fn is None:
            return (contents,)
        return _results(_process_callable(self.process_fn, "reduce()")(key, context, [contents]),
                        self.process_fn)


@dataclass(frozen=True)
class AggregateWindow:
    """``aggregate(agg_fn[, process_fn])``: the window holds an accumulator of ``agg_fn``
    (``create_accumulator()``, ``add(value, acc)``, ``get_result(acc)``, and ``merge(a, b)``
    for session windows); a fire emits ``get_result(acc)``, or what
    ``process_fn.process(key, context, [result])`` yields."""

    agg_fn: Any
    process_fn: Any = None

    def __post_init__(self) -> None:
        _instance(self.agg_fn, "aggregate()")
        missing = [m for m in ("create_accumulator", "add", "get_result")
                   if not callable(getattr(self.agg_fn, m, None))]
        if missing:
            raise ProgramError(
                "aggregate() needs an AggregateFunction with create_accumulator(), add(value, "
                "accumulator), get_result(accumulator) and merge(a, b) (for session windows); "
                f"{type(self.agg_fn).__name__} lacks {', '.join(missing)}")
        if self.process_fn is not None:
            _process_callable(self.process_fn, "aggregate(aggregate_function, window_function)")

    def state_descriptor(self) -> StateDescriptor:
        return AggregatingStateDescriptor(CONTENTS_STATE, self.agg_fn)

    def user_functions(self) -> list[Any]:
        return [f for f in (self.agg_fn, self.process_fn) if f is not None]

    def apply(self, key: Any, context: ProcessWindowContext, contents: Any) -> Iterable[Any]:
        if self.process_fn is None:
            return (contents,)
        return _results(_process_callable(self.process_fn, "aggregate()")(key, context, [contents]),
                        self.process_fn)


@dataclass(frozen=True)
class ProcessWindow:
    """``process(process_window_fn)``: the window holds its elements (in arrival order); a fire
    calls ``process(key, context, elements)``, which yields or returns the output records."""

    process_window_fn: Any

    def __post_init__(self) -> None:
        _process_callable(self.process_window_fn, "process()")

    def state_descriptor(self) -> StateDescriptor:
        return ListStateDescriptor(CONTENTS_STATE)

    def user_functions(self) -> list[Any]:
        return [self.process_window_fn]

    @property
    def process_fn(self) -> Any:
        return self.process_window_fn

    def apply(self, key: Any, context: ProcessWindowContext, contents: Any) -> Iterable[Any]:
        return _results(_process_callable(self.process_window_fn, "process()")(key, context, contents),
                        self.process_window_fn)


_WINDOW_FUNCTIONS = (ReduceWindow, AggregateWindow, ProcessWindow)


# -- contexts -------------------------------------------------------------------------------------


def _checked(descriptor: Any, who: str) -> Any:
    if isinstance(descriptor, StateDescriptor) and descriptor.name in _RESERVED:
        raise ProgramError(
            f"The state name {descriptor.name!r} used by {who} is reserved by the window operator; "
            "give the state another name")
    return descriptor


class _KeyedStateStore:
    """PyFlink's ``KeyedStateStore``: the current key's state in one namespace."""

    def __init__(self, backend: HeapKeyedStateBackend, namespace: Any, who: str):
        self._backend = backend
        self._namespace = namespace
        self._who = who

    def get_state(self, descriptor: Any) -> Any:
        return self._backend.get_partitioned_state(_checked(descriptor, self._who), self._namespace)

    get_list_state = get_map_state = get_reducing_state = get_aggregating_state = get_state


class ProcessWindowContext:
    """The ``context`` of ``ProcessWindowFunction.process`` and ``clear`` (PyFlink's
    ``ProcessWindowFunction.Context``), for the current key and window."""

    def __init__(self, operator: WindowOperator):
        self._operator = operator
        self._window: Window | None = None

    def window(self) -> Window:
        """The window being evaluated (a ``TimeWindow`` or the ``GlobalWindow``)."""
        return self._window

    def current_processing_time(self) -> int:
        return int(self._operator.ctx.processing_time())

    def current_watermark(self) -> int:
        return self._operator.ctx.current_watermark

    def window_state(self) -> _KeyedStateStore:
        """State of the current key scoped to this window (cleared by you in ``clear``); not
        available for merging (session) windows, as in Flink."""
        if self._operator._merging:
            raise ProgramError(
                f"Per-window state (context.window_state()) is not allowed with merging windows "
                f"({self._operator.assigner!r}) in '{self._operator.name}'; use "
                "context.global_state()")
        return _KeyedStateStore(self._operator._backend, self._window, "context.window_state()")

    def global_state(self) -> _KeyedStateStore:
        """State of the current key shared by all its windows."""
        return _KeyedStateStore(self._operator._backend, VoidNamespace, "context.global_state()")


class _TriggerContext(OnMergeContext):
    """Flink's ``WindowOperator.Context``: the trigger's view of the current key and window."""

    def __init__(self, operator: WindowOperator):
        self._operator = operator
        self.key: Any = None
        self.window: Window | None = None
        self.merged_windows: list[Window] = []

    def get_current_processing_time(self) -> int:
        return int(self._operator.ctx.processing_time())

    def get_current_watermark(self) -> int:
        return self._operator.ctx.current_watermark

    def register_processing_time_timer(self, time: int) -> None:
        self._operator._timers.register_processing_time_timer(time, self.key, self.window)

    def register_event_time_timer(self, time: int) -> None:
        self._operator._timers.register_event_time_timer(time, self.key, self.window)

    def delete_processing_time_timer(self, time: int) -> None:
        self._operator._timers.delete_processing_time_timer(time, self.key, self.window)

    def delete_event_time_timer(self, time: int) -> None:
        self._operator._timers.delete_event_time_timer(time, self.key, self.window)

    def get_partitioned_state(self, descriptor: Any) -> Any:
        return self._operator._backend.get_partitioned_state(
            _checked(descriptor, repr(self._operator.trigger)), self.window)

    def merge_partitioned_state(self, descriptor: Any) -> None:
        if self.merged_windows:
            self.get_partitioned_state(descriptor)  # registers the state on first use
            self._operator._backend.merge_namespaces(descriptor.name, self.window, self.merged_windows)


class _AssignerContext(WindowAssignerContext):
    def __init__(self, operator: WindowOperator):
        self._operator = operator

    def get_current_processing_time(self) -> int:
        return int(self._operator.ctx.processing_time())


class _Emitted:
    """Output rows and their timestamps, collected until the batch (or tick) is done."""

    __slots__ = ("rows", "timestamps")

    def __init__(self):
        self.rows: list[Any] = []
        self.timestamps: list[int] = []


# -- the operator ---------------------------------------------------------------------------------


class WindowOperator(StreamOperator):
    """Flink's ``WindowOperator`` over a keyed stream (see the module docstring).

    ``key_selector`` keys the records; ``assigner`` is a window assigner of
    :mod:`pyflow.api.windowing`; ``trigger`` replaces ``assigner.default_trigger()``;
    ``allowed_lateness_ms`` (event time only) keeps windows, and fires them again for late
    elements, until the watermark passes ``max_timestamp + allowed_lateness_ms``; ``function`` is
    a :class:`ReduceWindow`, :class:`AggregateWindow` or :class:`ProcessWindow`;
    ``late_output_tag`` names the late side output; ``output_schema`` is the Arrow schema of the
    output rows (inferred when None); ``evictor_count`` keeps only the last n elements of a
    window (:class:`ProcessWindow` only).

    Raises :class:`ProgramError` on construction for a bad combination, and
    :class:`RecordError` for a record without a timestamp under an event-time assigner.
    """

    keyed = True

    def __init__(self, name: str, key_selector: Any, assigner: Any, trigger: Any = None,
                 allowed_lateness_ms: int = 0, function: Any = None, late_output_tag: Any = None,
                 output_schema: pa.Schema | None = None, evictor_count: int | None = None):
        self.name = name
        self.key_selector = key_selector
        self.assigner = assigner
        self.trigger = assigner.default_trigger() if trigger is None else trigger
        missing = [m for m in _TRIGGER_METHODS if not callable(getattr(self.trigger, m, None))]
        if missing or isinstance(self.trigger, type):
            raise ProgramError(
                f"'{name}': the trigger must be a Trigger instance (pyflow.api.windowing), got "
                f"{self.trigger!r}" + (f", which lacks {', '.join(missing)}" if missing else ""))
        if (isinstance(allowed_lateness_ms, bool) or not isinstance(allowed_lateness_ms, numbers.Integral)
                or allowed_lateness_ms < 0):
            raise ProgramError(
                f"'{name}': allowed lateness must be a non-negative number of milliseconds, got "
                f"{allowed_lateness_ms!r}")
        self.allowed_lateness_ms = int(allowed_lateness_ms)
        if not isinstance(function, _WINDOW_FUNCTIONS):
            raise ProgramError(
                f"'{name}': the window function must be a ReduceWindow, AggregateWindow or "
                f"ProcessWindow, got {type(function).__name__} {function!r}")
        self.function = function
        if evictor_count is not None:
            if (isinstance(evictor_count, bool) or not isinstance(evictor_count, numbers.Integral)
                    or evictor_count <= 0):
                raise ProgramError(
                    f"'{name}': CountEvictor.of(count={evictor_count!r}): count must be a positive integer")
            if not isinstance(function, ProcessWindow):
                kind = "reduce()" if isinstance(function, ReduceWindow) else "aggregate()"
                raise ProgramError(
                    f"'{name}': an evictor (CountEvictor.of({evictor_count}), e.g. of a sliding "
                    f"count_window) with {kind} is not yet supported; use process() with a "
                    "ProcessWindowFunction, which sees the kept elements")
            evictor_count = int(evictor_count)
        self.evictor_count = evictor_count
        if assigner.is_merging() and not self.trigger.can_merge():
            raise ProgramError(
                f"'{name}': the trigger {self.trigger!r} cannot merge windows, but the assigner "
                f"{assigner!r} merges them (session windows); use a trigger whose can_merge() is "
                "True, such as EventTimeTrigger, ProcessingTimeTrigger or CountTrigger")
        if (assigner.is_merging() and isinstance(function, AggregateWindow)
                and not callable(getattr(function.agg_fn, "merge", None))):
            raise ProgramError(
                f"'{name}': session windows merge their accumulators, but the AggregateFunction "
                f"{type(function.agg_fn).__name__} has no merge(a, b) method; add one that "
                "combines two accumulators")
        self.late_output_tag = late_output_tag
        self._late_tag_id = getattr(late_output_tag, "tag_id", late_output_tag)
        if late_output_tag is not None and (not isinstance(self._late_tag_id, str) or not self._late_tag_id):
            raise ProgramError(
                f"'{name}': the late data output must be an OutputTag (or its string id), got "
                f"{late_output_tag!r}")
        self.output_schema = output_schema
        self._event_time = bool(assigner.is_event_time())
        self._merging = bool(assigner.is_merging())
        self._contents_descriptor = function.state_descriptor()
        #: Flink's numLateRecordsDropped: elements dropped for lateness (not side-output ones)
        self.num_late_records_dropped = 0
        #: late elements' batches, when there is a late_output_tag but the output has no side outputs
        self.late_records: list[pa.RecordBatch] = []
        self._opened: list[Any] = []

    # ---- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        ctx = self.ctx
        self._backend = self.create_keyed_state_backend()
        self._timers = InternalTimerService()
        self._contents = self._backend.get_partitioned_state(self._contents_descriptor, None)
        self._merging_sets = self._backend.get_partitioned_state(ValueStateDescriptor(MERGING_SETS_STATE))
        self._trigger_ctx = _TriggerContext(self)
        self._process_ctx = ProcessWindowContext(self)
        self._assigner_ctx = _AssignerContext(self)
        logger.debug("%s (subtask %d of job %s) opened: %r, %r, allowed lateness %d ms, %s",
                     self.name, ctx.subtask_index, ctx.job_id, self.assigner, self.trigger,
                     self.allowed_lateness_ms, type(self.function).__name__)
        runtime_context = RuntimeContext(ctx)
        for function in self.function.user_functions():
            opener = getattr(function, "open", None)
            if callable(opener):
                opener(runtime_context)
            self._opened.append(function)

    def close(self) -> None:
        opened, self._opened = self._opened, []
        for function in reversed(opened):
            closer = getattr(function, "close", None)
            if callable(closer):
                closer()

    def describe(self) -> dict[str, Any]:
        return {
            "assigner": repr(self.assigner),
            "trigger": repr(self.trigger),
            "allowed_lateness_ms": self.allowed_lateness_ms,
            "function": type(self.function).__name__,
            "evictor": None if self.evictor_count is None else f"CountEvictor({self.evictor_count})",
        }

    # ---- elements -----------------------------------------------------------------------------

    def process_batch(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        rows = records.batch_to_rows(batch)
        keys = self.key_selector.keys(batch, rows)
        stamps = self._timestamps(batch, rows)
        backend = self._backend
        out = _Emitted()
        late: list[int] = []
        for i, row in enumerate(rows):
            key = keys[i]
            backend.set_current_key(key)
            timestamp = stamps[i]
            if self._process_element(row, key, timestamp, out) and is_element_late(
                    timestamp, self.ctx.current_watermark, self.allowed_lateness_ms, self._event_time):
                late.append(i)
        self._emit(out)
        if late:
            self._late(batch, late)

    def _timestamps(self, batch: pa.RecordBatch, rows: list[Any]) -> list[int | None]:
        column = records.timestamps(batch)
        if not self._event_time:
            return column.to_pylist() if column is not None else [None] * len(rows)
        missing = None
        if column is None:
            missing = 0
        elif column.null_count or pc.min(column).as_py() == MIN_WATERMARK:
            bad = pc.or_kleene(pc.is_null(column), pc.equal(column, MIN_WATERMARK)).fill_null(True)
            missing = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        if missing is not None:
            raise RecordError(
                f"'{self.name}' uses the event-time window assigner {self.assigner!r}, but the record "
                f"{records._short_repr(rows[missing])} has no timestamp; assign timestamps and "
                "watermarks (assign_timestamps_and_watermarks) before the window, or use a "
                "processing-time window assigner")
        return column.to_pylist()

    def _process_element(self, value: Any, key: Any, timestamp: int | None, out: _Emitted) -> bool:
        """Flink's ``processElement`` for the current key; True if every window was late."""
        windows = self.assigner.assign_windows(value, timestamp, self._assigner_ctx)
        watermark = self.ctx.current_watermark
        lateness = self.allowed_lateness_ms
        contents = self._contents
        trigger = self.trigger
        tctx = self._trigger_ctx
        skipped = True
        if self._merging:
            merging = self._merging_set()
            for window in windows:
                actual = merging.add_window(
                    window, lambda *merge: self._merge(key, *merge))
                if is_window_late(actual, watermark, lateness, self._event_time):
                    merging.retire_window(actual)
                    continue
                skipped = False
                state_window = merging.get_state_window(actual)
                contents.set_current_namespace(state_window)
                contents.add(value)
                tctx.key, tctx.window = key, actual
                result = trigger.on_element(value, timestamp, actual, tctx)
                if result.is_fire() and not self._fire(key, actual, state_window, out):
                    continue  # nothing to emit: Flink skips the purge and the cleanup timer
                if result.is_purge():
                    contents.set_current_namespace(state_window)
                    contents.clear()
                self._register_cleanup_timer(key, actual)
            self._persist(merging)
        else:
            for window in windows:
                if is_window_late(window, watermark, lateness, self._event_time):
                    continue
                skipped = False
                contents.set_current_namespace(window)
                contents.add(value)
                tctx.key, tctx.window = key, window
                result = trigger.on_element(value, timestamp, window, tctx)
                if result.is_fire() and not self._fire(key, window, window, out):
                    continue
                if result.is_purge():
                    contents.set_current_namespace(window)
                    contents.clear()
                self._register_cleanup_timer(key, window)
        return skipped

    def _merge(self, key: Any, merge_result: Window, merged_windows: list[Window],
               state_window_result: Window, merged_state_windows: list[Window]) -> None:
        """The merge callback of :meth:`MergingWindowSet.add_window` (Flink's)."""
        if self._event_time:
            if merge_result.max_timestamp() + self.allowed_lateness_ms <= self.ctx.current_watermark:
                raise RecordError(
                    f"'{self.name}': merging session windows of key {key!r} made {merge_result!r}, "
                    f"which ends before the current watermark {self.ctx.current_watermark}; an "
                    "event-time window cannot become earlier than the watermark by merging")
        else:
            now = int(self.ctx.processing_time())
            if merge_result.max_timestamp() <= now:
                raise RecordError(
                    f"'{self.name}': merging session windows of key {key!r} made {merge_result!r}, "
                    f"which ends before the current processing time {now}; a processing-time "
                    "window cannot become earlier than the processing time by merging")
        tctx = self._trigger_ctx
        tctx.key, tctx.window, tctx.merged_windows = key, merge_result, merged_windows
        try:
            self.trigger.on_merge(merge_result, tctx)
        finally:
            tctx.merged_windows = []
        for window in merged_windows:
            tctx.window = window
            self.trigger.clear(window, tctx)
            self._delete_cleanup_timer(key, window)
        self._backend.merge_namespaces(CONTENTS_STATE, state_window_result, merged_state_windows)

    # ---- firing -------------------------------------------------------------------------------

    def _fire(self, key: Any, window: Window, state_window: Window, out: _Emitted) -> bool:
        """Emit ``window``'s contents through the window function (Flink's
        ``emitWindowContents``, and the evicting operator's); False if the window is empty."""
        contents = self._contents
        contents.set_current_namespace(state_window)
        if contents._entry() is _MISSING:  # Flink's ``contents == null``
            return False
        value = contents.get()
        if self.evictor_count is not None and len(value) > self.evictor_count:
            value = value[len(value) - self.evictor_count:]  # CountEvictor: evict before
            contents.update(value)
        pctx = self._process_ctx
        pctx._window = window
        before = len(out.rows)
        out.rows.extend(self.function.apply(key, pctx, value))
        out.timestamps.extend([window.max_timestamp()] * (len(out.rows) - before))
        return True

    def _emit(self, out: _Emitted) -> None:
        if out.rows:
            batch = records.rows_to_batch(out.rows, self.output_schema)
            self.output.collect(records.with_timestamps(batch, np.array(out.timestamps, dtype=np.int64)))

    def _late(self, batch: pa.RecordBatch, indices: list[int]) -> None:
        if self.late_output_tag is None:
            self.num_late_records_dropped += len(indices)
            return
        late = batch.take(pa.array(indices, pa.int64()))
        if getattr(type(self.output), "collect_side", Output.collect_side) is not Output.collect_side:
            self.output.collect_side(self._late_tag_id, late)
        else:  # an output without side outputs (a test double)
            self.late_records.append(late)

    # ---- timers -------------------------------------------------------------------------------

    def process_watermark(self, watermark: Any) -> None:
        out = _Emitted()
        for time, key, window in self._timers.advance_watermark(watermark.timestamp):
            self._on_timer(time, key, window, True, out)
        self._emit(out)
        self.output.emit_watermark(watermark)

    def on_processing_time(self, now_ms: float) -> None:
        out = _Emitted()
        for time, key, window in self._timers.advance_processing_time(int(self.ctx.processing_time())):
            self._on_timer(time, key, window, False, out)
        self._emit(out)

    def _on_timer(self, time: int, key: Any, window: Window, event_time: bool, out: _Emitted) -> None:
        """Flink's ``onEventTime`` / ``onProcessingTime`` for one timer."""
        self._backend.set_current_key(key)
        tctx = self._trigger_ctx
        tctx.key, tctx.window = key, window
        merging = None
        state_window = window
        if self._merging:
            merging = self._merging_set()
            state_window = merging.get_state_window(window)
            if state_window is None:
                return  # a timer of a window merged away whose trigger kept it: nothing to do
        if event_time:
            result = self.trigger.on_event_time(time, window, tctx)
        else:
            result = self.trigger.on_processing_time(time, window, tctx)
        if result.is_fire():
            self._fire(key, window, state_window, out)
        if result.is_purge():
            self._contents.set_current_namespace(state_window)
            self._contents.clear()
        if event_time == self._event_time and time == self._cleanup_time(window):
            self._clear_all_state(key, window, state_window, merging)
        if merging is not None:
            self._persist(merging)

    def _clear_all_state(self, key: Any, window: Window, state_window: Window,
                         merging: MergingWindowSet | None) -> None:
        self._contents.set_current_namespace(state_window)
        self._contents.clear()
        tctx = self._trigger_ctx
        tctx.key, tctx.window = key, window
        self.trigger.clear(window, tctx)
        clear = getattr(self.function.process_fn, "clear", None)
        if callable(clear):
            self._process_ctx._window = window
            clear(self._process_ctx)
        if merging is not None:
            merging.retire_window(window)

    def _cleanup_time(self, window: Window) -> int:
        return cleanup_time(window, self.allowed_lateness_ms, self._event_time)

    def _register_cleanup_timer(self, key: Any, window: Window) -> None:
        time = self._cleanup_time(window)
        if time == MAX_WATERMARK:
            return  # no cleanup at the end of time
        if self._event_time:
            self._timers.register_event_time_timer(time, key, window)
        else:
            self._timers.register_processing_time_timer(time, key, window)

    def _delete_cleanup_timer(self, key: Any, window: Window) -> None:
        time = self._cleanup_time(window)
        if time == MAX_WATERMARK:
            return
        if self._event_time:
            self._timers.delete_event_time_timer(time, key, window)
        else:
            self._timers.delete_processing_time_timer(time, key, window)

    # ---- merging window sets ------------------------------------------------------------------

    def _merging_set(self) -> MergingWindowSet:
        return MergingWindowSet.restore(self.assigner, self._merging_sets.value())

    def _persist(self, merging: MergingWindowSet) -> None:
        if merging.changed:
            self._merging_sets.update(merging.persist() or None)
