"""Keyed state: key groups, the state of keyed operators, and the state backends that hold it.

A key belongs to one key group (``hash % max_parallelism``) and a key group to one parallel
operator instance; :mod:`pyflow.state.key_groups` is the one place that decides both.
State is declared with descriptors (:mod:`pyflow.state.descriptors`), read and written through
state objects (:mod:`pyflow.state.keyed_state`) and held, snapshotted and restored by a backend
(:mod:`pyflow.state.backend`).
"""

from pyflow.state.backend import HeapKeyedStateBackend
from pyflow.state.descriptors import (
    AggregatingStateDescriptor,
    ListStateDescriptor,
    MapStateDescriptor,
    ReducingStateDescriptor,
    StateDescriptor,
    StateKind,
    ValueStateDescriptor,
)
from pyflow.state.key_groups import (
    NULL_HASH,
    UPPER_BOUND_MAX_PARALLELISM,
    assign_to_key_group,
    channels_for_hashes,
    check_max_parallelism,
    compute_default_max_parallelism,
    compute_operator_index_for_key_group,
    hash_array,
    hash_columns,
    hash_object,
    hash_objects,
    key_group_range,
)
from pyflow.state.keyed_state import (
    AggregatingState,
    ListState,
    MapState,
    ReducingState,
    State,
    ValueState,
    VoidNamespace,
)

__all__ = [
    "AggregatingState",
    "AggregatingStateDescriptor",
    "HeapKeyedStateBackend",
    "ListState",
    "ListStateDescriptor",
    "MapState",
    "MapStateDescriptor",
    "NULL_HASH",
    "ReducingState",
    "ReducingStateDescriptor",
    "State",
    "StateDescriptor",
    "StateKind",
    "ValueState",
    "ValueStateDescriptor",
    "VoidNamespace",
    "UPPER_BOUND_MAX_PARALLELISM",
    "assign_to_key_group",
    "channels_for_hashes",
    "check_max_parallelism",
    "compute_default_max_parallelism",
    "compute_operator_index_for_key_group",
    "hash_array",
    "hash_columns",
    "hash_object",
    "hash_objects",
    "key_group_range",
]
