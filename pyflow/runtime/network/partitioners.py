"""Stream partitioners: which downstream channel each row of a record batch goes to.

A partitioner is the vectorized form of Flink's ``StreamPartitioner``: instead of choosing a
channel per record it splits a whole :class:`pyarrow.RecordBatch` into ``(channel, piece)``
pairs. Invariants every partitioner keeps:

* every piece is non-empty, and an empty batch yields no pieces;
* the rows of one piece keep their input order (per-channel order is the input order);
* together the pieces hold every row exactly once (``BroadcastPartitioner``: once per channel).

Partitioners hold only small state (a round-robin position, a random generator) and are
picklable when their ``key_hasher`` is, so they can be shipped inside a task deployment.

>>> import pyarrow as pa
>>> batch = pa.record_batch({"x": [1, 2, 3, 4]})
>>> [(channel, piece.num_rows) for channel, piece in BroadcastPartitioner().select(batch, 2)]
[(0, 4), (1, 4)]
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from pyflow.errors import ConfigurationError
# The one definition of key -> key group -> operator index lives with keyed state.
from pyflow.state.key_groups import channels_for_hashes, check_max_parallelism

__all__ = [
    "BroadcastPartitioner",
    "ForwardPartitioner",
    "GlobalPartitioner",
    "KeyGroupStreamPartitioner",
    "Partitioner",
    "RebalancePartitioner",
    "RescalePartitioner",
    "ShufflePartitioner",
    "channels_for_hashes",
    "partitioner_from_spec",
    "split_by_channel",
]

Pieces = list[tuple[int, pa.RecordBatch]]


def split_by_channel(batch: pa.RecordBatch, channels: np.ndarray, num_channels: int) -> Pieces:
    """Split ``batch`` by a per-row channel id array into ordered ``(channel, piece)`` pairs.

    One stable argsort of the channel ids, one ``take`` of the whole batch and zero-copy slices,
    so the cost does not grow with the number of channels.
    """
    num_rows = batch.num_rows
    if num_rows == 0:
        return []
    channels = np.asarray(channels)
    first = int(channels[0])
    if num_channels == 1 or bool((channels == first).all()):
        return [(first, batch)]
    # Stable sort on small unsigned ints is a radix sort in numpy: O(n).
    if num_channels <= 1 << 8:
        keys = channels.astype(np.uint8, copy=False)
    elif num_channels <= 1 << 16:
        keys = channels.astype(np.uint16, copy=False)
    else:
        keys = channels
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=num_channels)
    taken = batch.take(pa.array(order))
    pieces: Pieces = []
    offset = 0
    for channel in np.flatnonzero(counts).tolist():
        count = int(counts[channel])
        pieces.append((channel, taken.slice(offset, count)))
        offset += count
    return pieces


class Partitioner(ABC):
    """Chooses the downstream channel(s) of every row of a batch.

    ``is_broadcast`` partitioners send every row to every channel; ``is_pointwise`` ones connect
    each producer subtask to a subset of consumers (forward, rescale), the rest are all-to-all.
    """

    is_broadcast: bool = False
    is_pointwise: bool = False

    @abstractmethod
    def select(self, batch: pa.RecordBatch, num_channels: int) -> Pieces:
        """Return the ``(channel, piece)`` pairs to send; pieces are non-empty, rows in order."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ForwardPartitioner(Partitioner):
    """Channel 0 always: a forward edge has exactly one subpartition (same parallelism)."""

    is_pointwise = True

    def select(self, batch: pa.RecordBatch, num_channels: int) -> Pieces:
        return [(0, batch)] if batch.num_rows else []


class GlobalPartitioner(Partitioner):
    """Everything to channel 0 (the first downstream subtask)."""

    def select(self, batch: pa.RecordBatch, num_channels: int) -> Pieces:
        return [(0, batch)] if batch.num_rows else []


class RebalancePartitioner(Partitioner):
    """Round-robin over all channels, one whole batch at a time, from a random start channel.

    Flink rotates per record; rotating per batch is the vectorized equivalent and keeps batches
    whole (no copy).
    """

    def __init__(self) -> None:
        self._next = random.randrange(1 << 30)

    def select(self, batch: pa.RecordBatch, num_channels: int) -> Pieces:
        if batch.num_rows == 0:
            return []
        channel = self._next % num_channels
        self._next = channel + 1
        return [(channel, batch)]


class RescalePartitioner(RebalancePartitioner):
    """Round-robin over this producer's (pointwise) channels, one batch at a time, from 0."""

    is_pointwise = True

    def __init__(self) -> None:
        self._next = 0


class ShufflePartitioner(Partitioner):
    """A uniformly random channel for every row, split in one vectorized pass."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def select(self, batch: pa.RecordBatch, num_channels: int) -> Pieces:
        if batch.num_rows == 0:
            return []
        if num_channels == 1:
            return [(0, batch)]
        dtype = np.uint8 if num_channels <= 1 << 8 else np.int64
        channels = self._rng.integers(0, num_channels, size=batch.num_rows, dtype=dtype)
        return split_by_channel(batch, channels, num_channels)


class BroadcastPartitioner(Partitioner):
    """Every channel gets the whole batch (the same immutable object, no copy)."""

    is_broadcast = True

    def select(self, batch: pa.RecordBatch, num_channels: int) -> Pieces:
        if batch.num_rows == 0:
            return []
        return [(channel, batch) for channel in range(num_channels)]


class KeyGroupStreamPartitioner(Partitioner):
    """Route rows by key: ``key_hasher(batch)`` gives a uint64 hash per row (normally
    :func:`pyflow.state.key_groups.hash_columns` of the key columns), the hash picks a key group
    (``hash % max_parallelism``) and the key group its channel (contiguous key-group ranges per
    channel, as in Flink's ``KeyGroupRangeAssignment``); the math is
    :func:`pyflow.state.key_groups.channels_for_hashes`.

    >>> import numpy as np, pyarrow as pa
    >>> p = KeyGroupStreamPartitioner(lambda b: b.column(0).to_numpy().astype(np.uint64), 4)
    >>> [(c, piece.column(0).to_pylist()) for c, piece in p.select(pa.record_batch({"k": [0, 3, 1, 2]}), 2)]
    [(0, [0, 1]), (1, [3, 2])]
    """

    def __init__(self, key_hasher: Callable[[pa.RecordBatch], np.ndarray], max_parallelism: int) -> None:
        check_max_parallelism(int(max_parallelism), 1)
        self.key_hasher = key_hasher
        self.max_parallelism = int(max_parallelism)

    def channels(self, batch: pa.RecordBatch, num_channels: int) -> np.ndarray:
        """The channel of every row (int32), without splitting."""
        if num_channels > self.max_parallelism:
            check_max_parallelism(self.max_parallelism, num_channels)  # raises ProgramError
        hashes = np.asarray(self.key_hasher(batch))
        if hashes.shape != (batch.num_rows,):
            raise ValueError(
                f"key_hasher returned shape {hashes.shape} for a batch of {batch.num_rows} rows; "
                "it must return one uint64 hash per row."
            )
        return channels_for_hashes(hashes, self.max_parallelism, num_channels)

    def select(self, batch: pa.RecordBatch, num_channels: int) -> Pieces:
        if batch.num_rows == 0:
            return []
        if num_channels == 1:
            return [(0, batch)]  # one consumer: every key goes there, no need to hash
        return split_by_channel(batch, self.channels(batch, num_channels), num_channels)

    def __repr__(self) -> str:
        return f"KeyGroupStreamPartitioner(max_parallelism={self.max_parallelism})"


_SIMPLE: dict[str, type[Partitioner]] = {
    "forward": ForwardPartitioner,
    "rebalance": RebalancePartitioner,
    "rescale": RescalePartitioner,
    "shuffle": ShufflePartitioner,
    "broadcast": BroadcastPartitioner,
    "global": GlobalPartitioner,
}
PARTITIONER_TYPES = (*_SIMPLE, "hash")


def partitioner_from_spec(spec: dict[str, Any]) -> Partitioner:
    """Build a partitioner from its edge spec.

    >>> partitioner_from_spec({"type": "rebalance"})
    RebalancePartitioner()
    >>> partitioner_from_spec({"type": "hash", "max_parallelism": 128, "key_hasher": hash})
    KeyGroupStreamPartitioner(max_parallelism=128)
    """
    kind = str(spec.get("type", "")).lower()
    if kind in _SIMPLE:
        return _SIMPLE[kind]()
    if kind == "hash":
        try:
            return KeyGroupStreamPartitioner(spec["key_hasher"], int(spec["max_parallelism"]))
        except KeyError as missing:
            raise ConfigurationError(
                f"Partitioner spec of type 'hash' needs {missing}; got keys {sorted(spec)}."
            ) from None
    raise ConfigurationError(
        f"Unknown partitioner type {spec.get('type')!r}; choose one of: {', '.join(PARTITIONER_TYPES)}"
    )
