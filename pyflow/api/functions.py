"""User function classes, named as in PyFlink. A plain callable works wherever one is expected;
a class adds ``open(runtime_context)`` / ``close()`` for per-subtask set-up (rich functions).

>>> class Tokenize(FlatMapFunction):
...     def flat_map(self, line):
...         yield from line.split()
>>> list(Tokenize().flat_map("to be or"))
['to', 'be', 'or']
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from pyflow.errors import ProgramError
from pyflow.runtime.operators.functions import ProcessContext, RuntimeContext


class Function:
    """Base of user function classes."""

    def open(self, runtime_context: RuntimeContext) -> None:
        pass

    def close(self) -> None:
        pass


class MapFunction(Function):
    def map(self, value: Any) -> Any:
        raise NotImplementedError


class FlatMapFunction(Function):
    def flat_map(self, value: Any) -> Iterable[Any]:
        raise NotImplementedError


class FilterFunction(Function):
    def filter(self, value: Any) -> bool:
        raise NotImplementedError


class ReduceFunction(Function):
    def reduce(self, value1: Any, value2: Any) -> Any:
        raise NotImplementedError


class KeySelector(Function):
    def get_key(self, value: Any) -> Any:
        raise NotImplementedError


class MapBatchesFunction(Function):
    """A batch function: ``map_batches(batch) -> RecordBatch | Table | dict | None``."""

    def map_batches(self, batch):
        raise NotImplementedError


class ProcessFunction(Function):
    """``process_element(value, ctx)`` yields (or returns an iterable of) output records."""

    Context = ProcessContext

    def process_element(self, value: Any, ctx: ProcessContext) -> Iterable[Any] | None:
        raise NotImplementedError


class KeyedProcessFunction(ProcessFunction):
    """A ProcessFunction on a keyed stream: ``ctx.get_current_key()`` is the record's key, keyed
    state comes from the runtime context (``open(ctx)``: ``ctx.get_state(ValueStateDescriptor(...))``),
    and timers registered with ``ctx.timer_service()`` call ``on_timer``."""

    def on_timer(self, timestamp: int, ctx: ProcessContext) -> Iterable[Any] | None:
        """A timer fired; ``ctx.get_current_key()`` is its key, ``ctx.time_domain()`` says which."""
        return None


class AggregateFunction(Function):
    """Flink's AggregateFunction: an accumulator per key (and window).

    >>> class Average(AggregateFunction):
    ...     def create_accumulator(self): return (0, 0)
    ...     def add(self, value, acc): return (acc[0] + value, acc[1] + 1)
    ...     def get_result(self, acc): return acc[0] / acc[1]
    ...     def merge(self, a, b): return (a[0] + b[0], a[1] + b[1])
    """

    def create_accumulator(self) -> Any:
        raise NotImplementedError

    def add(self, value: Any, accumulator: Any) -> Any:
        raise NotImplementedError

    def get_result(self, accumulator: Any) -> Any:
        raise NotImplementedError

    def merge(self, a: Any, b: Any) -> Any:
        raise NotImplementedError


class ProcessWindowFunction(Function):
    """All of a window's records at once: ``process(key, context, elements)`` yields results;
    ``context.window()`` is the window (``start``, ``end``), ``context.current_watermark()``."""

    def process(self, key: Any, context: Any, elements: Iterable[Any]) -> Iterable[Any]:
        raise NotImplementedError

    def clear(self, context: Any) -> None:
        pass


class CoMapFunction(Function):
    """For connected streams: ``map1`` for the first stream's records, ``map2`` for the second's."""

    def map1(self, value: Any) -> Any:
        raise NotImplementedError

    def map2(self, value: Any) -> Any:
        raise NotImplementedError


class CoFlatMapFunction(Function):
    def flat_map1(self, value: Any) -> Iterable[Any]:
        raise NotImplementedError

    def flat_map2(self, value: Any) -> Iterable[Any]:
        raise NotImplementedError


class CoProcessFunction(Function):
    """``process_element1/2(value, ctx)`` yield results (side outputs: ``yield tag, value``)."""

    def process_element1(self, value: Any, ctx: ProcessContext) -> Iterable[Any] | None:
        raise NotImplementedError

    def process_element2(self, value: Any, ctx: ProcessContext) -> Iterable[Any] | None:
        raise NotImplementedError


class KeyedCoProcessFunction(CoProcessFunction):
    """A CoProcessFunction on keyed connected streams: keyed state and timers (``on_timer``)."""

    def on_timer(self, timestamp: int, ctx: ProcessContext) -> Iterable[Any] | None:
        return None


class BroadcastProcessFunction(Function):
    """Connects a stream with a broadcast stream: ``process_element(value, ctx)`` reads
    ``ctx.get_broadcast_state(descriptor)`` (read-only); ``process_broadcast_element(value, ctx)``
    updates it, identically on every subtask."""

    def process_element(self, value: Any, ctx: ProcessContext) -> Iterable[Any] | None:
        raise NotImplementedError

    def process_broadcast_element(self, value: Any, ctx: ProcessContext) -> Iterable[Any] | None:
        raise NotImplementedError


class KeyedBroadcastProcessFunction(BroadcastProcessFunction):
    """A BroadcastProcessFunction on a keyed stream: keyed state and timers on the element side."""

    def on_timer(self, timestamp: int, ctx: ProcessContext) -> Iterable[Any] | None:
        return None


def resolve(function: Any, method: str, api: str, base: type) -> Callable:
    """The callable to invoke for ``function``: its ``method`` if it is a ``base``, else itself."""
    if isinstance(function, type) and issubclass(function, Function):
        raise ProgramError(
            f"{api}() got the class {function.__name__}, not an instance; pass {function.__name__}()")
    if isinstance(function, base):
        return getattr(function, method)
    bound = getattr(function, method, None)
    if callable(bound) and not callable(function):
        return bound
    if callable(function):
        return function
    raise ProgramError(
        f"{api}() needs a function or a {base.__name__} with a {method}() method, got "
        f"{type(function).__name__} {function!r}")
