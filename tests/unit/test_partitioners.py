"""Unit tests of the vectorized stream partitioners (no sockets, no threads)."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest

from pyflow.errors import ConfigurationError, ProgramError
from pyflow.runtime.network.partitioners import (
    BroadcastPartitioner,
    ForwardPartitioner,
    GlobalPartitioner,
    KeyGroupStreamPartitioner,
    Partitioner,
    RebalancePartitioner,
    RescalePartitioner,
    ShufflePartitioner,
    channels_for_hashes,
    partitioner_from_spec,
    split_by_channel,
)


def make_batch(num_rows: int, seed: int = 0) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    schema = pa.schema([("seq", pa.int64()), ("key", pa.int64()), ("name", pa.string())],
                       metadata={b"pyflow.row": b"test"})
    return pa.record_batch(
        [
            pa.array(np.arange(num_rows, dtype=np.int64)),
            pa.array(rng.integers(0, 1000, size=num_rows, dtype=np.int64)),
            pa.array([f"n{i}" for i in range(num_rows)]),
        ],
        schema=schema,
    )


def key_hasher(batch: pa.RecordBatch) -> np.ndarray:
    keys = batch.column(1).to_numpy().astype(np.uint64)
    # splitmix64-style mixing so that key groups are spread
    z = keys + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def check_pieces(batch: pa.RecordBatch, pieces, num_channels: int) -> dict[int, list[int]]:
    """Every piece non-empty, with the input schema, rows in input order; returns seq per channel."""
    per_channel: dict[int, list[int]] = {}
    for channel, piece in pieces:
        assert 0 <= channel < num_channels
        assert piece.num_rows > 0
        assert piece.schema.equals(batch.schema, check_metadata=True)
        seqs = piece.column(0).to_pylist()
        assert seqs == sorted(seqs), "rows of a piece must keep input order"
        per_channel.setdefault(channel, []).extend(seqs)
    return per_channel


def all_rows_once(batch, per_channel):
    seen = sorted(s for seqs in per_channel.values() for s in seqs)
    assert seen == list(range(batch.num_rows))


ALL = [ForwardPartitioner, RebalancePartitioner, RescalePartitioner, ShufflePartitioner,
       BroadcastPartitioner, GlobalPartitioner, lambda: KeyGroupStreamPartitioner(key_hasher, 128)]


@pytest.mark.parametrize("factory", ALL)
def test_empty_batch_gives_no_pieces(factory):
    assert factory().select(make_batch(0), 4) == []


@pytest.mark.parametrize("factory", ALL)
def test_partitioners_pickle(factory):
    clone = pickle.loads(pickle.dumps(factory()))  # key_hasher is a module-level function
    assert isinstance(clone, Partitioner)
    batch = make_batch(50)
    num_channels = 1 if isinstance(clone, ForwardPartitioner) else 3
    per_channel = check_pieces(batch, clone.select(batch, num_channels), num_channels)
    if clone.is_broadcast:
        assert all(seqs == list(range(50)) for seqs in per_channel.values())
    else:
        all_rows_once(batch, per_channel)


def test_forward_and_global_send_everything_to_channel_zero():
    batch = make_batch(100)
    for partitioner in (ForwardPartitioner(), GlobalPartitioner()):
        pieces = partitioner.select(batch, 1 if isinstance(partitioner, ForwardPartitioner) else 5)
        assert len(pieces) == 1 and pieces[0][0] == 0 and pieces[0][1] is batch
    assert ForwardPartitioner.is_pointwise and not GlobalPartitioner.is_pointwise


def test_rebalance_round_robin_per_batch_from_random_start():
    batch = make_batch(10)
    partitioner = RebalancePartitioner()
    channels = [partitioner.select(batch, 4)[0][0] for _ in range(12)]
    start = channels[0]
    assert channels == [(start + i) % 4 for i in range(12)]
    assert all(partitioner.select(batch, 4)[0][1] is batch for _ in range(3))
    starts = {RebalancePartitioner().select(batch, 1000)[0][0] for _ in range(20)}
    assert len(starts) > 1, "start channel must be random per instance"


def test_rescale_round_robin_from_zero():
    batch = make_batch(10)
    partitioner = RescalePartitioner()
    assert [partitioner.select(batch, 3)[0][0] for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert RescalePartitioner.is_pointwise


def test_shuffle_covers_channels_and_keeps_order():
    batch = make_batch(30_000)
    pieces = ShufflePartitioner(seed=1).select(batch, 4)
    per_channel = check_pieces(batch, pieces, 4)
    all_rows_once(batch, per_channel)
    assert sorted(per_channel) == [0, 1, 2, 3]
    assert len(pieces) == 4, "one piece per channel (one take, then slices)"
    for seqs in per_channel.values():
        assert 6_000 < len(seqs) < 9_000


def test_shuffle_single_channel_is_whole_batch():
    batch = make_batch(100)
    assert ShufflePartitioner().select(batch, 1) == [(0, batch)]


def test_broadcast_sends_whole_batch_to_every_channel():
    batch = make_batch(100)
    partitioner = BroadcastPartitioner()
    assert partitioner.is_broadcast
    pieces = partitioner.select(batch, 3)
    assert [channel for channel, _ in pieces] == [0, 1, 2]
    assert all(piece is batch for _, piece in pieces)


@pytest.mark.parametrize("num_channels", [1, 2, 3, 7, 128])
def test_key_group_routing_equals_channels_from_hashes(num_channels):
    max_parallelism = 128
    batch = make_batch(20_000, seed=num_channels)
    pieces = KeyGroupStreamPartitioner(key_hasher, max_parallelism).select(batch, num_channels)
    per_channel = check_pieces(batch, pieces, num_channels)
    all_rows_once(batch, per_channel)
    assert len(pieces) == len(per_channel), "one piece per channel"

    hashes = key_hasher(batch)
    key_groups = hashes % np.uint64(max_parallelism)
    expected = (key_groups.astype(np.int64) * num_channels // max_parallelism)
    np.testing.assert_array_equal(channels_for_hashes(hashes, max_parallelism, num_channels), expected)
    for channel, seqs in per_channel.items():
        assert (expected[seqs] == channel).all()
    # the same key always goes to the same channel
    keys = batch.column(1).to_numpy()
    channel_of_key: dict[int, int] = {}
    for channel, seqs in per_channel.items():
        for key in np.unique(keys[seqs]).tolist():
            assert channel_of_key.setdefault(key, channel) == channel


def test_key_group_channels_are_contiguous_key_group_ranges():
    max_parallelism, parallelism = 10, 3
    hashes = np.arange(max_parallelism, dtype=np.uint64)
    channels = channels_for_hashes(hashes, max_parallelism, parallelism)
    assert channels.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_key_group_rejects_parallelism_above_max():
    partitioner = KeyGroupStreamPartitioner(key_hasher, 4)
    with pytest.raises(ProgramError, match="max parallelism"):
        partitioner.select(make_batch(10), 5)
    with pytest.raises(ProgramError):
        KeyGroupStreamPartitioner(key_hasher, 0)


def test_key_group_rejects_wrong_hash_shape():
    partitioner = KeyGroupStreamPartitioner(lambda b: np.zeros(3, dtype=np.uint64), 8)
    with pytest.raises(ValueError, match="one uint64 hash per row"):
        partitioner.select(make_batch(10), 2)


def test_split_by_channel_single_target_is_zero_copy():
    batch = make_batch(100)
    assert split_by_channel(batch, np.full(100, 2, dtype=np.int32), 4) == [(2, batch)]


def test_partitioner_from_spec():
    assert isinstance(partitioner_from_spec({"type": "forward"}), ForwardPartitioner)
    assert isinstance(partitioner_from_spec({"type": "rebalance"}), RebalancePartitioner)
    assert isinstance(partitioner_from_spec({"type": "rescale"}), RescalePartitioner)
    assert isinstance(partitioner_from_spec({"type": "shuffle"}), ShufflePartitioner)
    assert isinstance(partitioner_from_spec({"type": "broadcast"}), BroadcastPartitioner)
    assert isinstance(partitioner_from_spec({"type": "global"}), GlobalPartitioner)
    hashed = partitioner_from_spec({"type": "hash", "max_parallelism": 64, "key_hasher": key_hasher})
    assert isinstance(hashed, KeyGroupStreamPartitioner) and hashed.max_parallelism == 64
    with pytest.raises(ConfigurationError, match="choose one of: forward, rebalance"):
        partitioner_from_spec({"type": "roundrobin"})
    with pytest.raises(ConfigurationError, match="key_hasher"):
        partitioner_from_spec({"type": "hash", "max_parallelism": 64})
