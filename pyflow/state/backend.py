"""The heap keyed state backend: all keyed state of one parallel operator instance, in dicts.

Ownership and invariants:

* One backend per keyed operator instance, used only from that task's thread (no locks). It
  owns the key groups ``key_group_range`` of ``max_parallelism`` (see
  :mod:`pyflow.state.key_groups`); a key of another key group is a routing bug and is refused
  by :meth:`~HeapKeyedStateBackend.set_current_key`.
* State is kept per (state name, namespace, key): ``tables[name][namespace][key] = entry``
  (Flink's nested heap state maps without the key-group level; a key's group is computed when
  it becomes the current key and cached, and again, vectorized, when a snapshot is taken). An
  empty namespace dict is removed at once.
* One state object per name, created on first registration and returned by every later
  :meth:`~HeapKeyedStateBackend.get_partitioned_state` call with that name (the first
  descriptor, and so its reduce/aggregate function, is kept). A name keeps its
  :class:`~pyflow.state.descriptors.StateKind` for the life of the job, across snapshots.
* Snapshots are per key group, so state can be redistributed when the parallelism changes;
  :meth:`~HeapKeyedStateBackend.restore` takes the snapshots of any number of old backends and
  keeps the key groups in this backend's range.

The per-record path is ``set_current_key(key)`` (one dict lookup in the key-group cache) and a
state call (two dict lookups)::

    >>> from pyflow.state import ValueStateDescriptor, key_group_range
    >>> backend = HeapKeyedStateBackend(128, key_group_range(128, 1, 0))
    >>> count = backend.get_partitioned_state(ValueStateDescriptor("count", default=0))
    >>> for word in ["a", "b", "a"]:
    ...     backend.set_current_key(word)
    ...     count.update(count.value() + 1)
    >>> backend.set_current_key("a"); count.value()
    2
    >>> restored = HeapKeyedStateBackend(128, range(128))
    >>> restored.restore([backend.snapshot()])
    >>> sorted(restored.keys("count"))
    ['a', 'b']
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable, Iterator
from typing import Any

import cloudpickle
import numpy as np

from pyflow.errors import ProgramError, SerializationError
from pyflow.state.descriptors import StateDescriptor, StateKind
from pyflow.state.key_groups import (
    UPPER_BOUND_MAX_PARALLELISM,
    assign_to_key_group,
    hash_object,
    hash_objects,
)
from pyflow.state.keyed_state import _MISSING, State, VoidNamespace, _state_classes

__all__ = ["HeapKeyedStateBackend"]

logger = logging.getLogger(__name__)

_MAGIC = b"PYFLOW-KEYED-STATE\n"
_FORMAT_VERSION = 1
_MERGING_KINDS = (StateKind.LIST, StateKind.REDUCING, StateKind.AGGREGATING)
_STATE_CLASSES = _state_classes()


class _NoKey:
    """The current key before ``set_current_key``: any state access by key fails clearly."""

    __slots__ = ()

    def __hash__(self) -> int:
        raise ProgramError(
            "Keyed state was used with no current key; keyed state is only available on a "
            "keyed stream (key_by), while a record or timer of a key is being processed")

    def __repr__(self) -> str:
        return "<no current key>"


_NO_KEY = _NoKey()


class HeapKeyedStateBackend:
    """Keyed state of one operator instance, held in Python dicts.

    ``max_parallelism`` is the job's number of key groups; ``key_group_range`` the contiguous
    key groups this instance owns (``key_group_range(max_parallelism, parallelism, index)``).
    ``key_group_cache_size`` bounds the key -> key group cache (cleared whole when full).

    ``current_key`` and ``current_key_group`` are read-only attributes, set by
    :meth:`set_current_key`.
    """

    def __init__(self, max_parallelism: int, key_group_range: range, *,
                 key_group_cache_size: int = 1 << 16):
        if not isinstance(max_parallelism, int) or not (
                1 <= max_parallelism <= UPPER_BOUND_MAX_PARALLELISM):
            raise ProgramError(
                f"Max parallelism {max_parallelism!r} is out of range; it must be an int "
                f"between 1 and {UPPER_BOUND_MAX_PARALLELISM}")
        if (not isinstance(key_group_range, range) or key_group_range.step != 1
                or not 0 <= key_group_range.start < key_group_range.stop <= max_parallelism):
            raise ProgramError(
                f"Key group range {key_group_range!r} must be a non-empty range(start, stop) "
                f"within range(0, {max_parallelism}); use pyflow.state.key_group_range(...)")
        if key_group_cache_size < 1:
            raise ProgramError(f"key_group_cache_size must be at least 1, got {key_group_cache_size}")
        self.max_parallelism = max_parallelism
        self.key_group_range = key_group_range
        self.current_key: Any = _NO_KEY
        self.current_key_group: int = -1
        self._kg_start = key_group_range.start
        self._kg_stop = key_group_range.stop
        self._key_group_cache: dict[Any, int] = {}
        self._key_group_cache_size = key_group_cache_size
        self._tables: dict[str, dict[Any, dict[Any, Any]]] = {}
        self._kinds: dict[str, StateKind] = {}
        self._states: dict[str, State] = {}

    def __repr__(self) -> str:
        return (f"HeapKeyedStateBackend(max_parallelism={self.max_parallelism}, "
                f"key_group_range={self.key_group_range!r}, states={sorted(self._kinds)})")

    # -- the current key -------------------------------------------------------------------

    def set_current_key(self, key: Any) -> None:
        """Make ``key`` the key every state object reads and writes.

        Its key group is computed once and cached; a key of a key group outside this backend's
        range raises :class:`ProgramError` (records were routed to the wrong instance).
        """
        try:
            key_group = self._key_group_cache.get(key)
        except TypeError:
            raise ProgramError(
                f"Key {key!r} of type {type(key).__name__} is not hashable; key a stream by "
                "hashable values (e.g. a tuple instead of a list)") from None
        if key_group is None:
            key_group = self._assign_key_group(key)
        self.current_key = key
        self.current_key_group = key_group

    def _assign_key_group(self, key: Any) -> int:
        try:
            key_hash = hash_object(key)
        except Exception as e:
            raise ProgramError(
                f"Key {key!r} of type {type(key).__name__} cannot be hashed stably ({e}); key "
                "by ints, strings, bytes, floats or tuples of them") from e
        key_group = int(assign_to_key_group(np.array([key_hash], dtype=np.uint64),
                                            self.max_parallelism)[0])
        if not self._kg_start <= key_group < self._kg_stop:
            raise ProgramError(
                f"Key {key!r} belongs to key group {key_group}, outside this backend's key groups "
                f"{self._kg_start}..{self._kg_stop - 1} (max parallelism {self.max_parallelism}); "
                "the record was routed to the wrong parallel instance. Partition keyed streams "
                "with pyflow.state.channels_for_hashes, and key by values whose hash is the same "
                "in every process (not sets, not objects that pickle differently when equal)")
        cache = self._key_group_cache
        if len(cache) >= self._key_group_cache_size:
            cache.clear()
        cache[key] = key_group
        return key_group

    # -- state objects ---------------------------------------------------------------------

    def get_partitioned_state(self, descriptor: StateDescriptor,
                              namespace: Any = VoidNamespace) -> Any:
        """The state object of ``descriptor.name``, bound to ``namespace``.

        The object is created on the first call and shared by all later calls with that name:
        each call re-binds it to the given namespace (as in Flink). Registering a name with a
        descriptor of another kind raises :class:`ProgramError`.
        """
        state = self._states.get(descriptor.name) if isinstance(descriptor, StateDescriptor) else None
        if state is None:
            state = self._register(descriptor)
        elif state._descriptor.kind is not descriptor.kind:
            self._kind_conflict(descriptor.name, state._descriptor.kind, descriptor)
        state._namespace = namespace
        return state

    def _register(self, descriptor: Any) -> State:
        if not isinstance(descriptor, StateDescriptor):
            raise ProgramError(
                f"Keyed state needs a state descriptor (ValueStateDescriptor, "
                "ListStateDescriptor, MapStateDescriptor, ReducingStateDescriptor or "
                f"AggregatingStateDescriptor), got {type(descriptor).__name__} {descriptor!r}")
        name = descriptor.name
        known = self._kinds.get(name)
        if known is not None and known is not descriptor.kind:
            self._kind_conflict(name, known, descriptor)
        self._kinds[name] = descriptor.kind
        table = self._tables.setdefault(name, {})
        state = _STATE_CLASSES[descriptor.kind](self, table, descriptor)
        self._states[name] = state
        logger.debug("Registered %s state %r", descriptor.kind.value, name)
        return state

    @staticmethod
    def _kind_conflict(name: str, known: StateKind, descriptor: StateDescriptor) -> None:
        raise ProgramError(
            f"State {name!r} is {known.value} state but is now requested with a "
            f"{type(descriptor).__name__} ({descriptor.kind.value} state); a state name keeps "
            "its kind (also across checkpoints), so give the new state another name")

    def set_current_namespace(self, namespace: Any) -> None:
        """Bind every state object of this backend that is window state, i.e. currently bound
        to a namespace other than ``VoidNamespace``, to ``namespace``.

        Plain keyed state (bound to ``VoidNamespace``) is not touched. A window operator
        obtains its window states with ``get_partitioned_state(descriptor, window)`` (or
        ``state.set_current_namespace(window)``) and then moves them all with this call.
        """
        for state in self._states.values():
            if state._namespace is not VoidNamespace:
                state._namespace = namespace

    @property
    def state_names(self) -> list[str]:
        """Names of the registered or restored states."""
        return list(self._kinds)

    # -- helpers for window operators and timers ------------------------------------------

    def keys(self, state_name: str, namespace: Any = None) -> Iterator[Any]:
        """The keys with an entry in ``state_name`` (in ``namespace``, or in any namespace when
        ``namespace`` is None), each once. The keys are collected first, so the state may be
        changed while iterating. An unknown name has no keys."""
        table = self._tables.get(state_name)
        if not table:
            return iter(())
        if namespace is None:
            if len(table) == 1:
                (entries,) = table.values()
                return iter(list(entries))
            return iter(list(dict.fromkeys(k for entries in table.values() for k in entries)))
        entries = table.get(namespace)
        return iter(list(entries) if entries else ())

    def namespaces(self, state_name: str) -> list[Any]:
        """The namespaces in which some key has an entry in ``state_name``."""
        return list(self._tables.get(state_name, ()))

    def merge_namespaces(self, state_name: str, target: Any, sources: Iterable[Any]) -> None:
        """Merge the current key's entries in the ``sources`` namespaces into ``target`` and
        remove them from the sources (Flink's ``InternalMergingState.mergeNamespaces``, used
        when session windows merge).

        List state concatenates (target's values first, then each source's in order),
        reducing state reduces, aggregating state merges accumulators. A source equal to
        ``target`` is skipped. If a user function raises, its exception propagates and no
        namespace is changed.
        """
        state = self._states.get(state_name)
        if state is None:
            raise ProgramError(
                f"Cannot merge namespaces of state {state_name!r}: it is not registered; call "
                "get_partitioned_state(descriptor) first")
        kind = state._descriptor.kind
        if kind not in _MERGING_KINDS:
            raise ProgramError(
                f"State {state_name!r} is {kind.value} state, which cannot be merged; merging "
                "windows need list, reducing or aggregating state")
        table = self._tables[state_name]
        key = self.current_key
        merged = _MISSING
        found: list[Any] = []
        for source in sources:
            if source == target:
                continue
            entries = table.get(source)
            if entries is None:
                continue
            entry = entries.get(key, _MISSING)
            if entry is _MISSING:
                continue
            found.append(source)
            if merged is _MISSING:
                merged = list(entry) if kind is StateKind.LIST else entry
            else:
                merged = state._merge_entries(merged, entry)
        if merged is _MISSING:
            return
        target_entries = table.get(target)
        old = _MISSING if target_entries is None else target_entries.get(key, _MISSING)
        if old is not _MISSING:
            merged = state._merge_entries(list(old) if kind is StateKind.LIST else old, merged)
        for source in found:  # commit only after every user function has returned
            entries = table[source]
            del entries[key]
            if not entries:
                del table[source]
        if target_entries is None:
            table[target] = {key: merged}
        else:
            target_entries[key] = merged

    def clear_namespace(self, namespace: Any, state_name: str | None = None, *,
                        all_keys: bool = False) -> None:
        """Remove the entries in ``namespace`` of the current key (of every key with
        ``all_keys=True``), from ``state_name`` or from every state when it is None."""
        names = list(self._tables) if state_name is None else [state_name]
        for name in names:
            table = self._tables.get(name)
            if not table:
                continue
            if all_keys:
                table.pop(namespace, None)
                continue
            entries = table.get(namespace)
            if entries is not None:
                entries.pop(self.current_key, None)
                if not entries:
                    del table[namespace]

    # -- snapshots -------------------------------------------------------------------------

    def snapshot(self, key_groups: Iterable[int] | None = None) -> bytes:
        """A copy of the state of ``key_groups`` (default: all of this backend's) as bytes.

        The state of each key group is serialized with cloudpickle on its own, so a restoring
        backend deserializes only the key groups it owns.
        """
        wanted = self.key_group_range if key_groups is None else (
            key_groups if isinstance(key_groups, range) else frozenset(key_groups))
        groups_of = self._key_groups_of_all_keys()
        by_group: dict[int, dict[str, dict[Any, dict[Any, Any]]]] = {}
        for name, table in self._tables.items():
            for namespace, entries in table.items():
                for key, entry in entries.items():
                    key_group = groups_of[key]
                    if key_group not in wanted:
                        continue
                    names = by_group.get(key_group)
                    if names is None:
                        names = by_group[key_group] = {}
                    namespaces = names.get(name)
                    if namespaces is None:
                        namespaces = names[name] = {}
                    group_entries = namespaces.get(namespace)
                    if group_entries is None:
                        group_entries = namespaces[namespace] = {}
                    group_entries[key] = entry
        payload = {
            "version": _FORMAT_VERSION,
            "max_parallelism": self.max_parallelism,
            "kinds": {name: kind.value for name, kind in self._kinds.items()},
            "key_groups": {kg: self._dump_group(kg, data) for kg, data in sorted(by_group.items())},
        }
        return _MAGIC + pickle.dumps(payload, protocol=5)

    def _key_groups_of_all_keys(self) -> dict[Any, int]:
        """The key group of every key with state: from the cache, the rest vectorized."""
        cache = self._key_group_cache
        groups: dict[Any, int] = {}
        missing: dict[Any, None] = {}
        for table in self._tables.values():
            for entries in table.values():
                for key in entries:
                    if key in groups or key in missing:
                        continue
                    key_group = cache.get(key)
                    if key_group is None:
                        missing[key] = None
                    else:
                        groups[key] = key_group
        if missing:
            keys = list(missing)
            computed = assign_to_key_group(hash_objects(keys), self.max_parallelism)
            groups.update(zip(keys, computed.tolist()))
        return groups

    @staticmethod
    def _dump_group(key_group: int, data: dict[str, Any]) -> bytes:
        try:
            return cloudpickle.dumps(data, protocol=5)
        except Exception as e:
            culprit = "?"
            for name, namespaces in data.items():
                try:
                    cloudpickle.dumps(namespaces, protocol=5)
                except Exception:
                    culprit = name
                    break
            raise SerializationError(
                f"The keyed state {culprit!r} (key group {key_group}) cannot be serialized for "
                f"a snapshot: {type(e).__name__}: {e}; keep only picklable values in state "
                "(no locks, sockets, open files or generators)") from e

    def restore(self, snapshots: Iterable[bytes]) -> None:
        """Load the key groups of this backend's range from ``snapshots`` (the snapshots of
        any number of backends of the same ``max_parallelism``, e.g. all instances of the old
        parallelism). Other key groups are skipped without being deserialized; a key group
        present in two snapshots raises :class:`ProgramError`. Restored entries replace
        existing ones of the same (state, namespace, key)."""
        seen: dict[int, int] = {}
        for index, blob in enumerate(snapshots):
            payload = self._load_payload(index, blob)
            for name, kind_value in payload["kinds"].items():
                kind = StateKind(kind_value)
                known = self._kinds.get(name)
                if known is not None and known is not kind:
                    raise ProgramError(
                        f"Snapshot {index} holds {kind.value} state {name!r}, but this backend "
                        f"has {name!r} as {known.value} state; a state name keeps its kind")
            for name, kind_value in payload["kinds"].items():
                self._kinds.setdefault(name, StateKind(kind_value))
                self._tables.setdefault(name, {})
            restored = 0
            for key_group, data in payload["key_groups"].items():
                if not self._kg_start <= key_group < self._kg_stop:
                    continue
                if key_group in seen:
                    raise ProgramError(
                        f"Key group {key_group} is in snapshots {seen[key_group]} and {index}; "
                        "each key group must come from exactly one snapshot (were snapshots of "
                        "two different checkpoints mixed?)")
                seen[key_group] = index
                restored += 1
                try:
                    group = cloudpickle.loads(data)
                except Exception as e:
                    raise SerializationError(
                        f"Key group {key_group} of snapshot {index} cannot be deserialized: "
                        f"{type(e).__name__}: {e}; the classes of state values must be "
                        "importable where the job is restored") from e
                for name, namespaces in group.items():
                    table = self._tables[name]
                    for namespace, entries in namespaces.items():
                        existing = table.get(namespace)
                        if existing is None:
                            table[namespace] = entries
                        else:
                            existing.update(entries)
            logger.debug("Restored %d key groups from snapshot %d into key groups %s",
                         restored, index, self.key_group_range)

    def _load_payload(self, index: int, blob: bytes) -> dict[str, Any]:
        if not isinstance(blob, (bytes, bytearray, memoryview)) or bytes(blob[:len(_MAGIC)]) != _MAGIC:
            raise ProgramError(
                f"Snapshot {index} is not a keyed state snapshot (it must be bytes returned by "
                "HeapKeyedStateBackend.snapshot())")
        try:
            payload = pickle.loads(memoryview(blob)[len(_MAGIC):])
        except Exception as e:
            raise ProgramError(f"Snapshot {index} is corrupt: {type(e).__name__}: {e}") from e
        if payload.get("version") != _FORMAT_VERSION:
            raise ProgramError(
                f"Snapshot {index} has keyed state format version {payload.get('version')!r}; "
                f"this release reads version {_FORMAT_VERSION}")
        if payload["max_parallelism"] != self.max_parallelism:
            raise ProgramError(
                f"Snapshot {index} was taken with max parallelism {payload['max_parallelism']}, "
                f"but this backend has max parallelism {self.max_parallelism}; the max "
                "parallelism of a job with keyed state cannot change (set "
                f"pipeline.max-parallelism to {payload['max_parallelism']})")
        return payload

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Drop all state (idempotent). State objects handed out read as empty afterwards."""
        for table in self._tables.values():
            table.clear()
        self._key_group_cache.clear()
        self.current_key = _NO_KEY
        self.current_key_group = -1
