"""The keyed state objects user functions and operators read and write, with PyFlink's methods.

A state object is created by :class:`~pyflow.state.backend.HeapKeyedStateBackend` (never
directly) and is a *view*: it holds no value itself, and every call reads or writes the entry of
the backend's **current key** in the object's **current namespace**. The same object therefore
serves every key: a function gets it once (in ``open()``) and uses it for each record, after the
operator has called ``backend.set_current_key(key)``.

The namespace is ``VoidNamespace`` for plain keyed state; window operators use the window as the
namespace, so each (key, window) has its own entry.

Storage (owned by the backend, shared by the state objects of one name)::

    table: dict[namespace, dict[key, entry]]

A namespace's dict is removed as soon as it is empty, so windows leave nothing behind. Entries
are stored as given, not copied (as in Flink's heap backend): mutating a value you got from
``value()`` mutates the state.

Per kind, the entry is: the value (``ValueState``; ``None`` means unset, as in Flink, so
``update(None)`` clears), a non-empty list (``ListState``), a non-empty dict (``MapState``), the
reduced value (``ReducingState``) or the accumulator (``AggregatingState``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

if TYPE_CHECKING:
    from pyflow.state.backend import HeapKeyedStateBackend
    from pyflow.state.descriptors import (
        AggregatingStateDescriptor,
        ReducingStateDescriptor,
        StateDescriptor,
        ValueStateDescriptor,
    )

__all__ = [
    "AggregatingState",
    "ListState",
    "MapState",
    "ReducingState",
    "State",
    "ValueState",
    "VoidNamespace",
]


class _VoidNamespaceType:
    """The type of :data:`VoidNamespace`; one instance, kept by pickling (by reference)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "VoidNamespace"

    def __reduce__(self) -> str:
        return "VoidNamespace"  # pickled by reference to this module's global


#: The namespace of plain keyed state (Flink's ``VoidNamespace.INSTANCE``): a singleton, also
#: after a snapshot round trip, so ``namespace is VoidNamespace`` is a valid test.
VoidNamespace = _VoidNamespaceType()

_MISSING = object()


class State:
    """Base of the state objects: ``clear()`` and the namespace this object is bound to."""

    __slots__ = ("_backend", "_table", "_namespace", "_descriptor")

    def __init__(self, backend: HeapKeyedStateBackend, table: dict, descriptor: StateDescriptor,
                 namespace: Any = VoidNamespace):
        self._backend = backend
        self._table = table
        self._descriptor = descriptor
        self._namespace = namespace

    @property
    def name(self) -> str:
        return self._descriptor.name

    @property
    def namespace(self) -> Any:
        return self._namespace

    def set_current_namespace(self, namespace: Any) -> None:
        """Bind this object to ``namespace`` (Flink's ``InternalKvState.setCurrentNamespace``)."""
        self._namespace = namespace

    def clear(self) -> None:
        """Remove the entry of the current key in the current namespace."""
        ns = self._namespace
        m = self._table.get(ns)
        if m is not None:
            m.pop(self._backend.current_key, None)
            if not m:
                del self._table[ns]

    def _entry(self) -> Any:
        m = self._table.get(self._namespace)
        if m is None:
            return _MISSING
        return m.get(self._backend.current_key, _MISSING)

    def _put(self, entry: Any) -> None:
        ns = self._namespace
        m = self._table.get(ns)
        if m is None:
            m = self._table[ns] = {}
        m[self._backend.current_key] = entry

    def _merge_entries(self, a: Any, b: Any) -> Any:
        """The entry of a merged namespace from two entries (merging states only)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._descriptor.name!r}, namespace={self._namespace!r})"


class ValueState(State):
    """One value per key: ``value()``, ``update(value)``, ``clear()``.

    >>> from pyflow.state import HeapKeyedStateBackend, ValueStateDescriptor
    >>> backend = HeapKeyedStateBackend(128, range(128))
    >>> count = backend.get_partitioned_state(ValueStateDescriptor("count", default=0))
    >>> backend.set_current_key("a"); count.update(count.value() + 1)
    >>> backend.set_current_key("b"); count.value()
    0
    """

    __slots__ = ()
    _descriptor: ValueStateDescriptor

    def value(self) -> Any:
        """The value of the current key, or the descriptor's default when unset."""
        m = self._table.get(self._namespace)
        if m is not None:
            v = m.get(self._backend.current_key)
            if v is not None:
                return v
        d = self._descriptor
        return d.default if d.default_is_shared else d.new_default()

    def update(self, value: Any) -> None:
        """Set the value of the current key; ``None`` clears it (as in Flink)."""
        if value is None:
            self.clear()
            return
        ns = self._namespace
        m = self._table.get(ns)
        if m is None:
            m = self._table[ns] = {}
        m[self._backend.current_key] = value


class ListState(State):
    """A list per key: ``get()``, ``add(v)``, ``add_all(vs)``, ``update(vs)``, ``clear()``.

    >>> from pyflow.state import HeapKeyedStateBackend, ListStateDescriptor
    >>> backend = HeapKeyedStateBackend(128, range(128))
    >>> buffer = backend.get_partitioned_state(ListStateDescriptor("buffer"))
    >>> backend.set_current_key(1); buffer.add("x"); buffer.add_all(["y", "z"])
    >>> buffer.get()
    ['x', 'y', 'z']
    """

    __slots__ = ()

    def get(self) -> list:
        """A new list of the current key's values (empty when unset)."""
        entry = self._entry()
        return [] if entry is _MISSING else list(entry)

    def add(self, value: Any) -> None:
        entry = self._entry()
        if entry is _MISSING:
            self._put([value])
        else:
            entry.append(value)

    def add_all(self, values: Iterable[Any]) -> None:
        values = list(values)
        if not values:
            return
        entry = self._entry()
        if entry is _MISSING:
            self._put(values)
        else:
            entry.extend(values)

    def update(self, values: Iterable[Any]) -> None:
        """Replace the current key's list; an empty one clears the state."""
        values = list(values)
        if values:
            self._put(values)
        else:
            self.clear()

    def _merge_entries(self, a: list, b: list) -> list:
        a.extend(b)
        return a


class MapState(State):
    """A dict per key, with PyFlink's methods (and ``state[k]``, ``k in state``, iteration).

    ``keys()``, ``values()`` and ``items()`` return new lists, so the state may be changed while
    iterating over them.

    >>> from pyflow.state import HeapKeyedStateBackend, MapStateDescriptor
    >>> backend = HeapKeyedStateBackend(128, range(128))
    >>> seen = backend.get_partitioned_state(MapStateDescriptor("seen"))
    >>> backend.set_current_key("user-1"); seen.put("page", 3)
    >>> seen.get("page"), seen.contains("other"), seen.items()
    (3, False, [('page', 3)])
    """

    __slots__ = ()

    def _dict(self) -> dict:
        entry = self._entry()
        return _EMPTY_MAP if entry is _MISSING else entry

    def get(self, key: Any) -> Any:
        """The value of ``key`` in the current key's map, or ``None``."""
        return self._dict().get(key)

    def put(self, key: Any, value: Any) -> None:
        entry = self._entry()
        if entry is _MISSING:
            self._put({key: value})
        else:
            entry[key] = value

    def put_all(self, entries: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        new = dict(entries)
        if not new:
            return
        entry = self._entry()
        if entry is _MISSING:
            self._put(new)
        else:
            entry.update(new)

    def remove(self, key: Any) -> None:
        """Remove ``key`` from the current key's map (no error if absent)."""
        entry = self._entry()
        if entry is not _MISSING:
            entry.pop(key, None)
            if not entry:
                self.clear()

    def contains(self, key: Any) -> bool:
        return key in self._dict()

    def keys(self) -> list:
        return list(self._dict())

    def values(self) -> list:
        return list(self._dict().values())

    def items(self) -> list[tuple[Any, Any]]:
        return list(self._dict().items())

    def is_empty(self) -> bool:
        return not self._dict()

    def __getitem__(self, key: Any) -> Any:
        return self.get(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.put(key, value)

    def __delitem__(self, key: Any) -> None:
        self.remove(key)

    def __contains__(self, key: Any) -> bool:
        return self.contains(key)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())


class _EmptyMap(dict):
    """The read-only empty map returned for an unset MapState (never stored)."""

    __slots__ = ()

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("internal: the empty MapState placeholder is read-only")

    __setitem__ = __delitem__ = update = pop = setdefault = _readonly  # type: ignore[assignment]


_EMPTY_MAP = _EmptyMap()


class ReducingState(State):
    """One value per key, folded with the descriptor's reduce function: ``get()``, ``add(v)``,
    ``clear()``. An exception of the reduce function propagates unchanged and leaves the state
    as it was.

    >>> from pyflow.state import HeapKeyedStateBackend, ReducingStateDescriptor
    >>> backend = HeapKeyedStateBackend(128, range(128))
    >>> total = backend.get_partitioned_state(ReducingStateDescriptor("total", lambda a, b: a + b))
    >>> backend.set_current_key("k"); total.add(2); total.add(3); total.get()
    5
    """

    __slots__ = ()
    _descriptor: ReducingStateDescriptor

    def get(self) -> Any:
        """The reduced value of the current key, or ``None`` when nothing was added."""
        entry = self._entry()
        return None if entry is _MISSING else entry

    def add(self, value: Any) -> None:
        m = self._table.get(self._namespace)
        key = self._backend.current_key
        if m is None:
            self._table[self._namespace] = {key: value}
            return
        old = m.get(key, _MISSING)
        m[key] = value if old is _MISSING else self._descriptor.reduce(old, value)

    def _merge_entries(self, a: Any, b: Any) -> Any:
        return self._descriptor.reduce(a, b)


class AggregatingState(State):
    """An accumulator per key, maintained by the descriptor's AggregateFunction: ``get()``
    (``get_result`` of the accumulator, ``None`` when nothing was added), ``add(v)``,
    ``clear()``.

    >>> from pyflow.state import AggregatingStateDescriptor, HeapKeyedStateBackend
    >>> class Count:
    ...     def create_accumulator(self): return 0
    ...     def add(self, value, acc): return acc + 1
    ...     def get_result(self, acc): return acc
    ...     def merge(self, a, b): return a + b
    >>> backend = HeapKeyedStateBackend(128, range(128))
    >>> count = backend.get_partitioned_state(AggregatingStateDescriptor("n", Count()))
    >>> backend.set_current_key("k"); count.add("x"); count.add("y"); count.get()
    2
    """

    __slots__ = ()
    _descriptor: AggregatingStateDescriptor

    def get(self) -> Any:
        entry = self._entry()
        return None if entry is _MISSING else self._descriptor.get_result(entry)

    def add(self, value: Any) -> None:
        m = self._table.get(self._namespace)
        key = self._backend.current_key
        d = self._descriptor
        if m is None:  # computed first: a failing function leaves no empty namespace behind
            acc = d.add(value, d.create_accumulator())
            self._table[self._namespace] = {key: acc}
            return
        acc = m.get(key, _MISSING)
        m[key] = d.add(value, d.create_accumulator() if acc is _MISSING else acc)

    def _merge_entries(self, a: Any, b: Any) -> Any:
        return self._descriptor.merge(a, b)


def _state_classes() -> dict:
    from pyflow.state.descriptors import StateKind

    return {
        StateKind.VALUE: ValueState,
        StateKind.LIST: ListState,
        StateKind.MAP: MapState,
        StateKind.REDUCING: ReducingState,
        StateKind.AGGREGATING: AggregatingState,
    }
