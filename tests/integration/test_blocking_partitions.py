"""Integration tests of blocking (batch) result partitions: real sockets on 127.0.0.1, real spill
files. Two NetworkEnvironments in one test process stand for two TaskManagers; the producer
always finishes before its consumers connect unless a test says otherwise."""

from __future__ import annotations

import gc
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import psutil
import pyarrow as pa
import pytest

from pyflow.errors import NetworkError
from pyflow.runtime.network import (
    BlockingResultPartition,
    BroadcastPartitioner,
    ChannelSpec,
    ForwardPartitioner,
    InputGate,
    KeyGroupStreamPartitioner,
    NetworkEnvironment,
    RebalancePartitioner,
)
from pyflow.runtime.network.spill import SpillFile
from pyflow.state.key_groups import hash_columns

MAX_PARALLELISM = 128
from network_helpers import WAIT_S, Worker, drain, environments
MIB = 1 << 20


@dataclass(frozen=True)
class Marker:
    """A test event: ``upto`` rows had been emitted when it was broadcast."""

    upto: int


def key_hasher(batch: pa.RecordBatch) -> np.ndarray:
    return hash_columns([batch.column("key")])


SCHEMA = pa.schema([("seq", pa.int64()), ("key", pa.int64()), ("name", pa.string()), ("pad", pa.binary(96))],
                   metadata={b"pyflow.row": b"seq,key,name,pad"})


def make_batch(start: int, num_rows: int) -> pa.RecordBatch:
    """Fresh memory every call (~130 bytes a row), like a real producer's output."""
    seq = np.arange(start, start + num_rows, dtype=np.int64)
    pad = np.empty((num_rows, 96), dtype=np.uint8)
    pad[:] = (seq % 251).astype(np.uint8)[:, None]
    return pa.record_batch(
        [pa.array(seq), pa.array(seq * 7919 % 10_007), pa.array([f"r{i}" for i in range(start, start + num_rows)]),
         pa.FixedSizeBinaryArray.from_buffers(pa.binary(96), num_rows, [None, pa.py_buffer(pad)])],
        schema=SCHEMA,
    )


@pytest.fixture
def make_env(tmp_path):
    """Started environments, closed after the test; spill_dir defaults to the test's tmp_path."""
    yield from environments(spill_dir=str(tmp_path / "spill"))


def spill_files(env: NetworkEnvironment) -> list[str]:
    return sorted(os.listdir(env.spill_dir)) if env.spill_dir and os.path.isdir(env.spill_dir) else []


def wait_for(predicate, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def read_ipc_streams(path: str) -> list[pa.Table]:
    """A spill file read back with plain pyarrow: one table per IPC stream in it."""
    tables = []
    size = os.path.getsize(path)
    with pa.OSFile(path) as f:
        while f.tell() < size:
            tables.append(pa.ipc.open_stream(f).read_all())
    return tables


# ---------------------------------------------------------------------------- the batch shuffle


def test_one_million_rows_spill_without_consumer_then_are_read_completely(make_env, capsys):
    budget = 1 * MIB
    producer_tm = make_env(blocking_memory_budget=budget)
    consumer_tm = make_env()
    total_rows, rows_per_batch, marker_every = 1_000_000, 10_000, 7
    partitioner = KeyGroupStreamPartitioner(key_hasher, MAX_PARALLELISM)
    partition = producer_tm.create_result_partition("hash-1m", 3, partitioner, blocking=True)
    assert isinstance(partition, BlockingResultPartition)

    process = psutil.Process()
    gc.collect()
    baseline = process.memory_info().rss
    peak = [baseline]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.005):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = Worker(sample)
    sampler.start()
    started = time.perf_counter()
    emitted = 0
    try:
        for number, start in enumerate(range(0, total_rows, rows_per_batch)):
            partition.emit(make_batch(start, rows_per_batch))  # no consumer: must never wait
            emitted += rows_per_batch
            if number % marker_every == marker_every - 1:
                partition.broadcast_event(Marker(emitted))
        partition.finish()
    finally:
        stop.set()
    write_s = time.perf_counter() - started
    sampler.outcome()
    growth = peak[0] - baseline

    produced = partition.num_bytes_out
    assert produced > 100 * budget, "the test must produce far more than the budget"
    assert partition.spilled_bytes > 0.9 * produced, "with a 1 MiB budget almost everything spills"
    assert producer_tm.spill_budget.peak <= budget + 64 * 1024  # + schema messages and markers
    assert partition.memory_bytes <= budget + 64 * 1024
    assert growth < 96 * MIB and growth < produced / 2, f"RSS grew by {growth / MIB:.0f} MiB"
    assert partition.num_records_out == total_rows
    assert len(spill_files(producer_tm)) == 3
    # the spill files are plain Arrow IPC streams
    first_file = os.path.join(producer_tm.spill_dir, spill_files(producer_tm)[0])
    assert sum(t.num_rows for t in read_ipc_streams(first_file)) > 0

    # the producer's task would end here; consumers connect only now, from another TaskManager
    gates = [consumer_tm.create_input_gate([ChannelSpec("hash-1m", i, *producer_tm.address)]) for i in range(3)]

    def consume(gate: InputGate):
        seqs, markers = [], []
        highest = -1
        for _, item in drain(gate, timeout=120):
            if isinstance(item, Marker):
                assert highest < item.upto, "a row emitted after a marker arrived before it"
                markers.append(item.upto)
                continue
            assert item.schema.equals(SCHEMA, check_metadata=True)
            column = item.column("seq").to_numpy()
            if markers:
                assert column[0] >= markers[-1], "a row emitted before a marker arrived after it"
            seqs.append(column)
            highest = int(column[-1])
        return np.concatenate(seqs), markers

    started = time.perf_counter()
    consumers = [Worker(consume, gate) for gate in gates]
    for consumer in consumers:
        consumer.start()
    results = [consumer.outcome(120) for consumer in consumers]
    read_s = time.perf_counter() - started

    expected_channels = partitioner.channels(make_batch(0, total_rows), 3)
    every = []
    for channel, (seqs, markers) in enumerate(results):
        assert (np.diff(seqs) > 0).all(), "per-channel order must be kept"
        assert (expected_channels[seqs] == channel).all(), "rows must go to their key's channel"
        assert markers == [upto for upto in range(rows_per_batch * marker_every, total_rows + 1,
                                                  rows_per_batch * marker_every)]
        every.append(seqs)
    np.testing.assert_array_equal(np.sort(np.concatenate(every)), np.arange(total_rows))

    assert sum(g.num_records_in for g in gates) == total_rows
    assert partition.num_bytes_out == produced == sum(g.num_bytes_in for g in gates)
    assert partition.num_buffers_out == sum(g.num_buffers_in for g in gates)
    assert partition.wait_until_consumed(timeout=10)
    assert spill_files(producer_tm) == [], "spill files must be deleted once sent"
    assert wait_for(lambda: "hash-1m" not in producer_tm.metrics()["partitions"]), "not released"
    assert producer_tm.spill_budget.used == 0
    with capsys.disabled():
        print(f"\n[blocking shuffle] {total_rows:,} rows, {produced / 1e6:.0f} MB produced "
              f"({partition.spilled_bytes / 1e6:.0f} MB spilled, budget {budget / MIB:.0f} MiB): "
              f"write {produced / 1e6 / write_s:.0f} MB/s ({write_s:.2f}s incl. batch creation), "
              f"read by 3 consumers {produced / 1e6 / read_s:.0f} MB/s ({read_s:.2f}s); "
              f"peak RSS growth while writing {growth / MIB:.0f} MiB")


@pytest.mark.parametrize("budget", [0, 3000, 64 * MIB], ids=["all-spilled", "mixed", "in-memory"])
def test_schema_changes_and_events_keep_their_order(make_env, budget):
    producer_tm, consumer_tm = make_env(blocking_memory_budget=budget), make_env()
    partition = producer_tm.create_result_partition("schemas", 2, BroadcastPartitioner(), blocking=True)
    other = pa.record_batch({"x": pa.array([1.5, 2.5])}).replace_schema_metadata({b"pyflow.row": b"other"})
    partition.broadcast_event(Marker(0))  # an event before any data
    partition.emit(make_batch(0, 3))
    partition.broadcast_event(Marker(3))
    partition.emit(other)
    partition.emit(make_batch(3, 2))
    partition.flush()
    partition.emit(make_batch(5, 4))
    partition.emit(other)
    partition.finish()
    if budget == 0:
        assert partition.memory_bytes < 4096  # only schema messages and events
    if budget == 64 * MIB:
        assert partition.spilled_bytes == 0 and spill_files(producer_tm) == []
    else:
        assert partition.spilled_bytes > 0
    for path in spill_files(producer_tm):  # each schema run is one IPC stream of the file
        tables = read_ipc_streams(os.path.join(producer_tm.spill_dir, path))
        assert all(len(t.schema) in (1, 4) for t in tables)

    gate = consumer_tm.create_input_gate(
        [ChannelSpec("schemas", i, *producer_tm.address, input_index=10 + i) for i in range(2)])
    per_input: dict[int, list] = {10: [], 11: []}
    for input_index, item in drain(gate):
        per_input[input_index].append(item)
    for items in per_input.values():
        kinds = [type(i).__name__ if isinstance(i, Marker) else i.schema.metadata[b"pyflow.row"].decode()
                 for i in items]
        assert kinds == ["Marker", "seq,key,name,pad", "Marker", "other", "seq,key,name,pad",
                         "seq,key,name,pad", "other"]
        assert items[0] == Marker(0) and items[2] == Marker(3)
        assert items[1].column("seq").to_pylist() == [0, 1, 2]
        assert items[3].column("x").to_pylist() == [1.5, 2.5] and items[6].equals(other)
        assert items[4].column("seq").to_pylist() == [3, 4]
        assert items[5].column("seq").to_pylist() == [5, 6, 7, 8]
    assert partition.num_bytes_out == gate.num_bytes_in
    assert partition.num_buffers_out == gate.num_buffers_in == 10
    assert wait_for(lambda: spill_files(producer_tm) == [])


@pytest.mark.parametrize("when", ["before-partition-exists", "before-finish"])
def test_consumer_connecting_before_finish_is_served_after_finish(make_env, when):
    producer_tm = make_env(blocking_memory_budget=256 * 1024, batch_size=1000)
    consumer_tm = make_env(buffers_per_channel=2, floating_buffers_per_gate=0)
    gate = None
    if when == "before-partition-exists":
        gate = consumer_tm.create_input_gate([ChannelSpec("early", 0, *producer_tm.address)])
        assert gate.next(timeout=0.3) is InputGate.TIMEOUT  # connected, waiting for the partition
    partition = producer_tm.create_result_partition("early", 1, RebalancePartitioner(), blocking=True)
    if gate is None:
        gate = consumer_tm.create_input_gate([ChannelSpec("early", 0, *producer_tm.address)])
    num_batches = 60  # far more buffers than the consumer's credit of 2
    for number in range(num_batches):
        partition.emit(make_batch(number * 1000, 1000))
        if number == 5:
            assert gate.next(timeout=0.2) is InputGate.TIMEOUT, "nothing is served before finish()"
    assert partition.spilled_bytes > 0
    partition.finish()
    seqs = np.concatenate([b.column("seq").to_numpy() for _, b in drain(gate)])
    np.testing.assert_array_equal(seqs, np.arange(num_batches * 1000))
    assert partition.num_bytes_out == gate.num_bytes_in
    assert partition.wait_until_consumed(timeout=10)
    assert wait_for(lambda: spill_files(producer_tm) == [])


def test_a_consumer_may_connect_long_after_the_producer_finished(make_env):
    producer_tm, consumer_tm = make_env(blocking_memory_budget=0), make_env()
    partition = producer_tm.create_result_partition("later", 2, RebalancePartitioner(), blocking=True)
    partition.emit(make_batch(0, 10))
    partition.finish()
    assert partition.wait_until_consumed(timeout=0.1) is False  # the producer's task does not wait
    time.sleep(0.3)  # the producer's flusher runs meanwhile and must not disturb anything
    gates = [consumer_tm.create_input_gate([ChannelSpec("later", i, *producer_tm.address)]) for i in range(2)]
    assert sum(b.num_rows for gate in gates for _, b in drain(gate)) == 10
    assert partition.wait_until_consumed(timeout=10)


def test_memory_budget_is_shared_by_the_partitions_of_an_environment(make_env):
    producer_tm, consumer_tm = make_env(blocking_memory_budget=2 * MIB), make_env()
    first = producer_tm.create_result_partition("first", 1, ForwardPartitioner(), blocking=True)
    second = producer_tm.create_result_partition("second", 1, ForwardPartitioner(), blocking=True)
    for start in range(0, 40_000, 10_000):  # ~5 MB: fills the budget, then spills
        first.emit(make_batch(start, 10_000))
    first.finish()
    assert first.memory_bytes > MIB and first.spilled_bytes > 0
    second.emit(make_batch(0, 10_000))
    second.finish()
    # 'first' used most of the budget: 'second' gets what is left and spills the rest
    assert first.memory_bytes + second.memory_bytes <= 2 * MIB
    assert second.spilled_bytes > second.num_bytes_out / 2
    assert producer_tm.metrics()["blocking_memory_bytes"] <= 2 * MIB
    for pid, rows in (("first", 40_000), ("second", 10_000)):
        gate = consumer_tm.create_input_gate([ChannelSpec(pid, 0, *producer_tm.address)])
        assert sum(b.num_rows for _, b in drain(gate)) == rows
    assert wait_for(lambda: producer_tm.spill_budget.used == 0), "sent buffers return their memory"
    assert wait_for(lambda: producer_tm.metrics()["partitions"] == {}), "consumed partitions are released"


# ---------------------------------------------------------------------------- release and failures


def test_release_partition_deletes_its_files_and_refuses_consumers(make_env):
    producer_tm, consumer_tm = make_env(blocking_memory_budget=0), make_env()
    partition = producer_tm.create_result_partition("job-ended", 3, RebalancePartitioner(), blocking=True)
    for start in range(0, 30_000, 1000):
        partition.emit(make_batch(start, 1000))
    partition.finish()
    assert len(spill_files(producer_tm)) == 3
    producer_tm.release_partition("job-ended")
    assert spill_files(producer_tm) == []
    assert producer_tm.spill_budget.used == 0
    gate = consumer_tm.create_input_gate([ChannelSpec("job-ended", 0, *producer_tm.address)])
    with pytest.raises(NetworkError, match="released"):
        gate.next(timeout=10)


def test_cancel_fails_consumers_and_deletes_files(make_env):
    producer_tm, consumer_tm = make_env(blocking_memory_budget=0), make_env()
    partition = producer_tm.create_result_partition("cancelled", 2, RebalancePartitioner(), blocking=True)
    waiting = consumer_tm.create_input_gate([ChannelSpec("cancelled", 0, *producer_tm.address)])
    for start in range(0, 20_000, 1000):
        partition.emit(make_batch(start, 1000))
    assert len(spill_files(producer_tm)) == 2
    partition.cancel()
    with pytest.raises(NetworkError, match="cancelled"):
        waiting.next(timeout=10)
    assert spill_files(producer_tm) == []
    later = consumer_tm.create_input_gate([ChannelSpec("cancelled", 1, *producer_tm.address)])
    with pytest.raises(NetworkError, match="cancelled"):
        later.next(timeout=10)


def test_failed_producer_after_finish_fails_a_reading_consumer(make_env):
    producer_tm = make_env(blocking_memory_budget=0, batch_size=100)
    consumer_tm = make_env(buffers_per_channel=1, floating_buffers_per_gate=0)
    partition = producer_tm.create_result_partition("failing", 1, ForwardPartitioner(), blocking=True)
    for start in range(0, 10_000, 100):
        partition.emit(make_batch(start, 100))
    partition.finish()
    gate = consumer_tm.create_input_gate([ChannelSpec("failing", 0, *producer_tm.address)])
    assert gate.next(timeout=10)[1].num_rows == 100  # reading has started (credit 1: no read-ahead)
    partition.fail(RuntimeError("disk on fire"))
    with pytest.raises(NetworkError, match="disk on fire"):
        drain(gate)
    assert spill_files(producer_tm) == []


def test_consumer_breaking_off_does_not_fail_the_producer(make_env):
    producer_tm = make_env(blocking_memory_budget=0, batch_size=100)
    consumer_tm = make_env(buffers_per_channel=1, floating_buffers_per_gate=0)
    partition = producer_tm.create_result_partition("broken", 2, RebalancePartitioner(), blocking=True)
    gate = consumer_tm.create_input_gate([ChannelSpec("broken", 0, *producer_tm.address)])
    for start in range(0, 10_000, 100):
        partition.emit(make_batch(start, 100))
    partition.finish()
    assert gate.next(timeout=10)[1].num_rows == 100
    gate.close()  # the consumer goes away in the middle of the subpartition
    assert wait_for(lambda: len(spill_files(producer_tm)) == 1), "its data is dropped"
    again = consumer_tm.create_input_gate([ChannelSpec("broken", 0, *producer_tm.address)])
    with pytest.raises(NetworkError, match="served only once"):
        again.next(timeout=10)
    other = consumer_tm.create_input_gate([ChannelSpec("broken", 1, *producer_tm.address)])
    assert sum(b.num_rows for _, b in drain(other)) == 5000  # the other subpartition is intact


def test_disk_error_while_spilling_fails_emit_with_advice(make_env, monkeypatch):
    producer_tm = make_env(blocking_memory_budget=0)
    consumer_tm = make_env()
    partition = producer_tm.create_result_partition("full", 1, ForwardPartitioner(), blocking=True)
    gate = consumer_tm.create_input_gate([ChannelSpec("full", 0, *producer_tm.address)])
    partition.emit(make_batch(0, 10_000))

    def no_space(self, schema, message):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SpillFile, "append", no_space)
    with pytest.raises(NetworkError, match="spill_dir"):
        partition.emit(make_batch(10_000, 10_000))
    with pytest.raises(NetworkError, match="No space left"):
        gate.next(timeout=10)
    assert spill_files(producer_tm) == []


def test_environment_close_deletes_the_default_spill_dir(make_env):
    producer_tm = make_env(spill_dir=None, blocking_memory_budget=0)
    consumer_tm = make_env()
    partition = producer_tm.create_result_partition("closing", 1, ForwardPartitioner(), blocking=True)
    spill_dir = Path(producer_tm.spill_dir)
    assert spill_dir.parent == Path(tempfile.gettempdir())
    assert spill_dir.name.startswith(f"pyflow-spill-{os.getpid()}-") and spill_dir.is_dir()
    gate = consumer_tm.create_input_gate([ChannelSpec("closing", 0, *producer_tm.address)])
    partition.emit(make_batch(0, 1000))
    partition.flush()  # small pieces are coalesced until a flush, an event or finish()
    assert len(list(spill_dir.iterdir())) == 1
    assert gate.next(timeout=0.2) is InputGate.TIMEOUT  # waits for finish(), which never comes
    producer_tm.close()
    assert not spill_dir.exists()
    with pytest.raises(NetworkError, match="closing"):
        gate.next(timeout=10)
    producer_tm.close()  # idempotent


def test_configured_spill_dir_gets_a_private_subdirectory(tmp_path):
    parent = tmp_path / "disks" / "ssd1"  # created on demand
    with NetworkEnvironment(spill_dir=str(parent), blocking_memory_budget=0) as env:
        assert env.spill_dir is None  # nothing created before the first blocking partition
        partition = env.create_result_partition("p", 1, ForwardPartitioner(), blocking=True)
        partition.emit(make_batch(0, 100))
        partition.flush()
        own = Path(env.spill_dir)
        assert own.parent == parent and len(list(own.iterdir())) == 1
    assert parent.is_dir() and not own.exists()


def test_from_config_reads_optional_spill_settings(tmp_path):
    conf = SimpleNamespace(bind_host="127.0.0.1", host="127.0.0.1", port=0, segment_size=1 << 16,
                           buffers_per_channel=3, floating_buffers_per_gate=4, buffer_timeout_ms=5.0,
                           batch_size=100, spill_dir=str(tmp_path), blocking_memory_budget=12345)
    with NetworkEnvironment.from_config(conf) as env:
        assert env.spill_budget.capacity == 12345
        env.create_result_partition("p", 1, ForwardPartitioner(), blocking=True)
        assert Path(env.spill_dir).parent == tmp_path
    without = SimpleNamespace(port=0, spill_dir=None, blocking_memory_budget=None)
    with NetworkEnvironment.from_config(without) as env:
        assert env.spill_budget.capacity == 64 * MIB
    with pytest.raises(ValueError, match="budget"):
        NetworkEnvironment(blocking_memory_budget=-1)
