"""State descriptors: the name and kind of a piece of keyed state, as in PyFlink.

A descriptor is what a user function hands to ``runtime_context.get_state(...)`` (and what an
operator hands to :meth:`HeapKeyedStateBackend.get_partitioned_state`): it names the state and
says which kind of state object to create. Descriptors are plain, picklable values; they own no
state themselves.

The second argument of each descriptor is PyFlink's type information. It is accepted so that
PyFlink programs run unchanged, kept as ``type_info``, and not used: values are Python objects,
serialized with cloudpickle in checkpoints.

::

    >>> count = ValueStateDescriptor("count", default=0)
    >>> total = ReducingStateDescriptor("total", lambda a, b: a + b)
    >>> count.name, count.kind.value, total.kind.value
    ('count', 'value', 'reducing')
"""

from __future__ import annotations

import copy
import enum
from typing import Any, Callable

from pyflow.errors import NotYetSupportedError, ProgramError

__all__ = [
    "AggregatingStateDescriptor",
    "ListStateDescriptor",
    "MapStateDescriptor",
    "ReducingStateDescriptor",
    "StateDescriptor",
    "StateKind",
    "ValueStateDescriptor",
]


class StateKind(enum.Enum):
    """The kind of a state; a state name keeps one kind for the life of a job (and its
    checkpoints)."""

    VALUE = "value"
    LIST = "list"
    MAP = "map"
    REDUCING = "reducing"
    AGGREGATING = "aggregating"


_IMMUTABLE_TYPES = (type(None), bool, int, float, complex, str, bytes, tuple, frozenset, range)


class StateDescriptor:
    """Base of the descriptors: a ``name`` unique within an operator, and a :class:`StateKind`."""

    kind: StateKind

    def __init__(self, name: str, type_info: Any = None):
        if not isinstance(name, str) or not name:
            raise ProgramError(
                f"{type(self).__name__} needs a non-empty state name (a str), got {name!r}")
        self.name = name
        self.type_info = type_info

    def enable_time_to_live(self, ttl_config: Any) -> None:
        """PyFlink's state TTL; not in this release."""
        raise NotYetSupportedError(
            f"State time-to-live (state {self.name!r}) is not supported in this release; clear "
            "expired state yourself, e.g. from a timer in a KeyedProcessFunction")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class ValueStateDescriptor(StateDescriptor):
    """A single value per key (and namespace).

    ``default`` is what ``value()`` returns while the state is unset (Flink's deprecated default
    value); a mutable default is copied for each key, so keys never share it. It is
    keyword-only because PyFlink's second positional argument is the type information.

    >>> ValueStateDescriptor("seen", default=False).default
    False
    """

    kind = StateKind.VALUE

    def __init__(self, name: str, value_type_info: Any = None, *, default: Any = None):
        super().__init__(name, value_type_info)
        self.default = default
        self.default_is_shared = isinstance(default, _IMMUTABLE_TYPES)

    def new_default(self) -> Any:
        """The default value for one key: ``default`` itself if immutable, else a deep copy."""
        if self.default_is_shared:
            return self.default
        return copy.deepcopy(self.default)


class ListStateDescriptor(StateDescriptor):
    """A list of values per key (and namespace); merges by concatenation.

    >>> ListStateDescriptor("buffer").kind.value
    'list'
    """

    kind = StateKind.LIST

    def __init__(self, name: str, elem_type_info: Any = None):
        super().__init__(name, elem_type_info)


class MapStateDescriptor(StateDescriptor):
    """A dict per key (and namespace).

    >>> MapStateDescriptor("by_user").kind.value
    'map'
    """

    kind = StateKind.MAP

    def __init__(self, name: str, key_type_info: Any = None, value_type_info: Any = None):
        super().__init__(name, (key_type_info, value_type_info))


def _resolve_reduce(function: Any, name: str) -> Callable[[Any, Any], Any]:
    if isinstance(function, type):
        raise ProgramError(
            f"ReducingStateDescriptor({name!r}) got the class {function.__name__}, not an "
            f"instance; pass {function.__name__}()")
    bound = getattr(function, "reduce", None)
    if callable(bound):
        return bound  # a ReduceFunction (or any object with reduce(a, b))
    if callable(function):
        return function
    raise ProgramError(
        f"ReducingStateDescriptor({name!r}) needs a function of two values or a ReduceFunction "
        f"with a reduce(value1, value2) method, got {type(function).__name__} {function!r}")


class ReducingStateDescriptor(StateDescriptor):
    """One value per key (and namespace), folded with ``reduce_function(old, new)`` on each
    ``add``. ``reduce_function`` is a callable of two values or a ``ReduceFunction``.

    >>> d = ReducingStateDescriptor("max", max)
    >>> d.reduce(3, 5)
    5
    """

    kind = StateKind.REDUCING

    def __init__(self, name: str, reduce_function: Any, type_info: Any = None):
        super().__init__(name, type_info)
        self.reduce_function = reduce_function
        self.reduce = _resolve_reduce(reduce_function, name)


class AggregatingStateDescriptor(StateDescriptor):
    """An accumulator per key (and namespace), maintained by Flink's AggregateFunction:
    ``create_accumulator()``, ``add(value, accumulator) -> accumulator``,
    ``get_result(accumulator)`` and ``merge(a, b) -> accumulator`` (needed only when windows
    merge). Any object with these methods works.

    >>> class Average:
    ...     def create_accumulator(self): return (0, 0)
    ...     def add(self, value, acc): return (acc[0] + value, acc[1] + 1)
    ...     def get_result(self, acc): return acc[0] / acc[1] if acc[1] else None
    ...     def merge(self, a, b): return (a[0] + b[0], a[1] + b[1])
    >>> AggregatingStateDescriptor("avg", Average()).kind.value
    'aggregating'
    """

    kind = StateKind.AGGREGATING

    def __init__(self, name: str, aggregate_function: Any, state_type_info: Any = None):
        super().__init__(name, state_type_info)
        if isinstance(aggregate_function, type):
            raise ProgramError(
                f"AggregatingStateDescriptor({name!r}) got the class "
                f"{aggregate_function.__name__}, not an instance; pass "
                f"{aggregate_function.__name__}()")
        missing = [m for m in ("create_accumulator", "add", "get_result")
                   if not callable(getattr(aggregate_function, m, None))]
        if missing:
            raise ProgramError(
                f"AggregatingStateDescriptor({name!r}) needs an AggregateFunction with "
                "create_accumulator(), add(value, accumulator), get_result(accumulator) and "
                f"merge(a, b); {type(aggregate_function).__name__} lacks {', '.join(missing)}")
        self.aggregate_function = aggregate_function
        self.create_accumulator = aggregate_function.create_accumulator
        self.add = aggregate_function.add
        self.get_result = aggregate_function.get_result

    def merge(self, a: Any, b: Any) -> Any:
        """``aggregate_function.merge(a, b)``; a ProgramError if the function has none."""
        merge = getattr(self.aggregate_function, "merge", None)
        if not callable(merge):
            raise ProgramError(
                f"Aggregating state {self.name!r} is being merged (merging windows) but "
                f"{type(self.aggregate_function).__name__} has no merge(a, b) method; add one "
                "that combines two accumulators")
        return merge(a, b)
