"""Integration tests of the data plane: real sockets on 127.0.0.1, real threads, and one real
producer process. Two NetworkEnvironments in one test process stand for two TaskManagers."""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import psutil
import pyarrow as pa
import pytest

from pyflow.errors import CancelTaskError, NetworkError
from pyflow.state.key_groups import hash_columns
from pyflow.runtime.network import (
    BroadcastPartitioner,
    ChannelSpec,
    ForwardPartitioner,
    InputGate,
    KeyGroupStreamPartitioner,
    NetworkEnvironment,
    RebalancePartitioner,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_PARALLELISM = 128
from network_helpers import WAIT_S, Worker, drain, environments


@dataclass(frozen=True)
class Marker:
    """A test event: ``upto`` rows had been emitted when it was broadcast."""

    upto: int


def key_hasher(batch: pa.RecordBatch) -> np.ndarray:
    return hash_columns([batch.column("key")])


SCHEMA = pa.schema([("seq", pa.int64()), ("key", pa.int64()), ("name", pa.string())],
                   metadata={b"pyflow.row": b"seq,key,name"})


def make_batch(start: int, num_rows: int) -> pa.RecordBatch:
    seq = np.arange(start, start + num_rows, dtype=np.int64)
    return pa.record_batch(
        [pa.array(seq), pa.array(seq * 7919 % 10_007), pa.array([f"r{i}" for i in range(start, start + num_rows)])],
        schema=SCHEMA,
    )


@pytest.fixture
def make_env():
    yield from environments()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------- correctness


def test_hash_partition_one_million_rows_to_three_gates(make_env):
    producer_tm, consumer_tm = make_env(), make_env()
    total_rows, rows_per_batch, marker_every = 1_000_000, 10_000, 7
    partition = producer_tm.create_result_partition(
        "hash-1m", 3, KeyGroupStreamPartitioner(key_hasher, MAX_PARALLELISM))
    gates = [consumer_tm.create_input_gate([ChannelSpec("hash-1m", i, *producer_tm.address)]) for i in range(3)]

    def produce():
        emitted = 0
        for number, start in enumerate(range(0, total_rows, rows_per_batch)):
            partition.emit(make_batch(start, rows_per_batch))
            emitted += rows_per_batch
            if number % marker_every == marker_every - 1:
                partition.broadcast_event(Marker(emitted))
        partition.finish()

    def consume(gate: InputGate):
        seqs, markers, schemas = [], [], set()
        highest = -1
        for _, item in drain(gate, timeout=120):
            if isinstance(item, Marker):
                # every row emitted before the marker arrived before it, none after it
                assert highest < item.upto
                markers.append((item.upto, sum(len(s) for s in seqs)))
                continue
            assert isinstance(item, pa.RecordBatch)
            schemas.add(item.schema.metadata[b"pyflow.row"])
            column = item.column("seq").to_numpy()
            if markers:
                assert column[0] >= markers[-1][0], "a row emitted after a marker arrived before it"
            seqs.append(column)
            highest = int(column[-1])
        return np.concatenate(seqs), markers, schemas

    producer = Worker(produce)
    consumers = [Worker(consume, gate) for gate in gates]
    producer.start()
    for consumer in consumers:
        consumer.start()
    producer.outcome(120)
    results = [consumer.outcome(120) for consumer in consumers]

    expected_channels = KeyGroupStreamPartitioner(key_hasher, MAX_PARALLELISM).channels(make_batch(0, total_rows), 3)
    every = []
    for channel, (seqs, markers, schemas) in enumerate(results):
        assert (np.diff(seqs) > 0).all(), "per-producer order must be kept on a channel"
        assert (expected_channels[seqs] == channel).all(), "rows must go to their key's channel"
        assert len(markers) == total_rows // rows_per_batch // marker_every
        assert schemas == {b"seq,key,name"}
        every.append(seqs)
    every = np.sort(np.concatenate(every))
    np.testing.assert_array_equal(every, np.arange(total_rows))

    assert partition.num_records_out == total_rows
    assert sum(g.num_records_in for g in gates) == total_rows
    assert partition.num_bytes_out == sum(g.num_bytes_in for g in gates) > 0
    assert partition.num_buffers_out == sum(g.num_buffers_in for g in gates)
    assert partition.wait_until_consumed(timeout=10)
    metrics = producer_tm.metrics()
    assert metrics["address"] == "%s:%d" % producer_tm.address


def test_consumer_connects_before_producer_partition_exists(make_env):
    producer_tm, consumer_tm = make_env(), make_env()
    gate = consumer_tm.create_input_gate([ChannelSpec("early", 0, *producer_tm.address)])
    assert gate.next(timeout=0.3) is InputGate.TIMEOUT
    partition = producer_tm.create_result_partition("early", 1, ForwardPartitioner())
    partition.emit(make_batch(0, 5))
    partition.finish()
    items = drain(gate)
    assert [b.column("seq").to_pylist() for _, b in items] == [[0, 1, 2, 3, 4]]


def test_consumer_retries_until_producer_taskmanager_starts(make_env):
    consumer_tm = make_env()
    port = free_port()
    gate = consumer_tm.create_input_gate([ChannelSpec("late", 0, "127.0.0.1", port)], connect_timeout_s=20)
    time.sleep(0.3)
    producer_tm = make_env(port=port)
    partition = producer_tm.create_result_partition("late", 1, ForwardPartitioner())
    partition.emit(make_batch(0, 3))
    partition.finish()
    assert sum(b.num_rows for _, b in drain(gate)) == 3


def test_connect_timeout_names_address_and_partition(make_env):
    consumer_tm = make_env()
    port = free_port()
    gate = consumer_tm.create_input_gate([ChannelSpec("nowhere", 2, "127.0.0.1", port)], connect_timeout_s=0.5)
    with pytest.raises(NetworkError) as info:
        gate.next(timeout=10)
    assert f"127.0.0.1:{port}" in str(info.value) and "nowhere" in str(info.value)


def test_events_and_schema_changes_in_order_on_broadcast(make_env):
    producer_tm, consumer_tm = make_env(), make_env()
    partition = producer_tm.create_result_partition("bcast", 2, BroadcastPartitioner())
    gate = consumer_tm.create_input_gate(
        [ChannelSpec("bcast", i, *producer_tm.address, input_index=10 + i) for i in range(2)])
    other = pa.record_batch({"x": [1.5]}).replace_schema_metadata({b"pyflow.row": b"other"})
    partition.emit(make_batch(0, 3))
    partition.broadcast_event(Marker(3))
    partition.emit(other)
    partition.emit(make_batch(3, 2))
    partition.finish()
    per_input: dict[int, list] = {10: [], 11: []}
    for input_index, item in drain(gate):
        per_input[input_index].append(item)
    for items in per_input.values():
        assert [type(i).__name__ for i in items] == ["RecordBatch", "Marker", "RecordBatch", "RecordBatch"]
        assert items[0].schema.equals(SCHEMA, check_metadata=True)
        assert items[1] == Marker(3)
        assert items[2].schema.metadata == {b"pyflow.row": b"other"} and items[2].column(0).to_pylist() == [1.5]
        assert items[3].schema.equals(SCHEMA, check_metadata=True)
        assert items[3].column("seq").to_pylist() == [3, 4]


def test_small_batches_are_coalesced_and_big_ones_sliced(make_env):
    producer_tm = make_env(buffer_timeout_ms=60_000, batch_size=1000, segment_size=64 * 1024)
    partition = producer_tm.create_result_partition("sizes", 1, ForwardPartitioner())
    gate = producer_tm.create_input_gate([ChannelSpec("sizes", 0, *producer_tm.address)])

    def produce():
        for start in range(0, 300, 10):  # 30 small batches -> one buffer
            partition.emit(make_batch(start, 10))
        partition.flush()
        partition.emit(make_batch(300, 20_000))  # sliced by rows (1000) and bytes (64 KiB)
        partition.finish()

    producer = Worker(produce)
    producer.start()
    batches = [b for _, b in drain(gate)]
    producer.outcome()
    assert batches[0].num_rows == 300
    assert all(b.num_rows <= 1000 for b in batches)
    assert all(b.nbytes <= 64 * 1024 for b in batches)
    seqs = np.concatenate([b.column("seq").to_numpy() for b in batches])
    np.testing.assert_array_equal(seqs, np.arange(20_300))


def test_buffer_timeout_flushes_a_single_small_batch(make_env):
    producer_tm, consumer_tm = make_env(buffer_timeout_ms=50), make_env()
    partition = producer_tm.create_result_partition("timeout", 1, RebalancePartitioner())
    gate = consumer_tm.create_input_gate([ChannelSpec("timeout", 0, *producer_tm.address)])
    partition.emit(make_batch(0, 1))  # no flush(), no finish()
    item = gate.next(timeout=10)
    assert item is not InputGate.TIMEOUT, "pending data was not flushed by the buffer timeout"
    assert item[1].column("seq").to_pylist() == [0]
    partition.finish()
    assert gate.next(timeout=10) is None


def test_zero_buffer_timeout_sends_every_emit(make_env):
    producer_tm = make_env(buffer_timeout_ms=0)
    partition = producer_tm.create_result_partition("now", 1, ForwardPartitioner())
    gate = producer_tm.create_input_gate([ChannelSpec("now", 0, *producer_tm.address)])
    for start in range(3):
        partition.emit(make_batch(start, 1))
        assert gate.next(timeout=10)[1].column("seq").to_pylist() == [start]
    partition.finish()
    assert gate.next(timeout=10) is None


def test_requests_for_missing_or_released_subpartitions_fail(make_env):
    producer_tm, consumer_tm = make_env(), make_env()
    partition = producer_tm.create_result_partition("two", 2, BroadcastPartitioner())
    bad = consumer_tm.create_input_gate([ChannelSpec("two", 5, *producer_tm.address)])
    with pytest.raises(NetworkError, match="subpartition 5 does not exist"):
        bad.next(timeout=10)
    gates = [consumer_tm.create_input_gate([ChannelSpec("two", i, *producer_tm.address)]) for i in range(2)]
    partition.emit(make_batch(0, 4))
    partition.finish()
    for gate in gates:
        assert sum(b.num_rows for _, b in drain(gate)) == 4
        gate.close()
    again = consumer_tm.create_input_gate([ChannelSpec("two", 0, *producer_tm.address)])
    with pytest.raises(NetworkError, match="two"):
        again.next(timeout=10)


def test_block_channel_holds_back_its_items(make_env):
    producer_tm = make_env(buffer_timeout_ms=0)
    partition = producer_tm.create_result_partition("align", 2, BroadcastPartitioner())
    gate = producer_tm.create_input_gate([ChannelSpec("align", i, *producer_tm.address) for i in range(2)])
    gate.block_channel(0)
    partition.emit(make_batch(0, 1))
    partition.broadcast_event(Marker(1))
    first = [gate.poll(timeout=10) for _ in range(2)]
    assert [channel for channel, _ in first] == [1, 1]
    assert gate.poll(timeout=0.2) is InputGate.TIMEOUT
    gate.unblock_all()
    rest = [gate.poll(timeout=10) for _ in range(2)]
    assert [channel for channel, _ in rest] == [0, 0] and rest[1][1] == Marker(1)
    partition.finish()
    assert gate.poll(timeout=10) is None


def test_from_config_uses_duck_typed_configuration():
    conf = SimpleNamespace(bind_host="127.0.0.1", host="127.0.0.1", port=0, segment_size=1 << 16,
                           buffers_per_channel=3, floating_buffers_per_gate=4, buffer_timeout_ms=5.0,
                           batch_size=100, network_memory=1 << 26)
    with NetworkEnvironment.from_config(conf) as env:
        assert env.settings.segment_size == 1 << 16 and env.settings.queue_capacity == 3
        assert env.address[1] > 0
    env.close()  # idempotent


# ---------------------------------------------------------------------------- backpressure


def test_paused_consumer_blocks_producer_within_credit_and_queue(make_env):
    batch_size = 1000
    producer_tm = make_env(batch_size=batch_size, buffers_per_channel=2, floating_buffers_per_gate=8)
    consumer_tm = make_env(batch_size=batch_size, buffers_per_channel=2, floating_buffers_per_gate=8)
    partition = producer_tm.create_result_partition("slow", 1, ForwardPartitioner())
    gate = consumer_tm.create_input_gate([ChannelSpec("slow", 0, *producer_tm.address)])
    credit = 2 + 8  # exclusive + all floating buffers of a one-channel gate
    queue_capacity = producer_tm.settings.queue_capacity
    total_batches = 200
    emitted = []

    def produce():
        for number in range(total_batches):
            partition.emit(make_batch(number * batch_size, batch_size))  # exactly one buffer each
            emitted.append(number)
        partition.finish()

    producer = Worker(produce)
    producer.start()
    # The consumer is paused (nothing is read): wait until the producer stops making progress.
    deadline = time.monotonic() + WAIT_S
    stalled_at, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if len(emitted) != stalled_at:
            stalled_at, stable_since = len(emitted), time.monotonic()
        elif time.monotonic() - stable_since > 0.5:
            break
    assert producer.is_alive(), "producer finished although the consumer read nothing"
    assert credit <= stalled_at <= credit + queue_capacity + 1, stalled_at
    assert partition.backpressured_time_ms > 300
    assert partition.queued_buffers == queue_capacity

    rows = 0
    for _, batch in drain(gate):
        rows += batch.num_rows
    producer.outcome()
    assert rows == total_batches * batch_size


def test_memory_stays_bounded_with_slow_consumer(make_env):
    segment = 1 << 20
    producer_tm = make_env(segment_size=segment, batch_size=1 << 20, buffer_timeout_ms=0)
    consumer_tm = make_env(segment_size=segment)
    partition = producer_tm.create_result_partition("rss", 1, ForwardPartitioner())
    gate = consumer_tm.create_input_gate([ChannelSpec("rss", 0, *producer_tm.address)])
    buffer_memory = segment * (producer_tm.settings.queue_capacity + 1 + 2 + 8)
    total_bytes = 10 * buffer_memory * 2  # 20x the buffer memory of the channel
    rows_per_batch = (4 * segment) // 8  # 4 MiB input batches are sliced into 1 MiB buffers
    num_batches = total_bytes // (rows_per_batch * 8)

    process = psutil.Process()
    gc.collect()
    baseline = process.memory_info().rss
    peak = [baseline]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.005):
            peak[0] = max(peak[0], process.memory_info().rss)

    def produce():
        for number in range(num_batches):
            values = np.full(rows_per_batch, number, dtype=np.int64)  # fresh memory per batch
            partition.emit(pa.record_batch({"v": values}))
        partition.finish()

    sampler = Worker(sample)
    sampler.start()
    producer = Worker(produce)
    producer.start()
    received = 0
    try:
        while True:
            item = gate.next(timeout=WAIT_S)
            assert item is not InputGate.TIMEOUT
            if item is None:
                break
            received += item[1].nbytes
            del item
            time.sleep(0.002)  # slow consumer
    finally:
        stop.set()
    producer.outcome()
    sampler.outcome()
    growth = peak[0] - baseline
    assert received == num_batches * rows_per_batch * 8
    print(f"\nstreamed {received >> 20} MiB, buffer memory {buffer_memory >> 20} MiB, "
          f"peak RSS growth {growth >> 20} MiB")
    assert growth < 3 * buffer_memory + (48 << 20), f"RSS grew by {growth >> 20} MiB"
    assert growth < received / 3


# ---------------------------------------------------------------------------- failures


def test_cancel_wakes_blocked_emit(make_env):
    producer_tm = make_env(buffer_timeout_ms=0)
    partition = producer_tm.create_result_partition("cancel", 1, ForwardPartitioner())
    gate = producer_tm.create_input_gate([ChannelSpec("cancel", 0, *producer_tm.address)])

    def produce():
        number = 0
        while True:  # the consumer never reads: this blocks once credit and queue are used up
            partition.emit(make_batch(number, 1))
            number += 1

    producer = Worker(produce)
    producer.start()
    deadline = time.monotonic() + WAIT_S
    while partition.backpressured_time_ms < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert producer.is_alive()
    partition.cancel()
    with pytest.raises(CancelTaskError):
        producer.outcome(10)
    with pytest.raises(NetworkError, match="cancelled"):
        drain(gate)


def test_gate_cancel_wakes_blocked_next(make_env):
    consumer_tm = make_env()
    gate = consumer_tm.create_input_gate([ChannelSpec("never", 0, *consumer_tm.address)])
    reader = Worker(gate.next)
    reader.start()
    time.sleep(0.2)
    gate.cancel()
    with pytest.raises(CancelTaskError):
        reader.outcome(10)


def test_consumer_disconnect_fails_producer_emit(make_env):
    producer_tm, consumer_tm = make_env(buffer_timeout_ms=0), make_env()
    partition = producer_tm.create_result_partition("gone", 1, ForwardPartitioner())
    gate = consumer_tm.create_input_gate([ChannelSpec("gone", 0, *producer_tm.address)])

    def produce():
        number = 0
        while True:
            partition.emit(make_batch(number, 100))
            number += 100

    producer = Worker(produce)
    producer.start()
    assert gate.next(timeout=10)[1].num_rows == 100
    gate.close()
    with pytest.raises(NetworkError) as info:
        producer.outcome(10)
    assert "gone" in str(info.value)


def test_closing_producer_environment_mid_stream_fails_consumer(make_env):
    producer_tm, consumer_tm = make_env(), make_env()
    host, port = producer_tm.address
    partition = producer_tm.create_result_partition("midway", 1, ForwardPartitioner())
    gate = consumer_tm.create_input_gate([ChannelSpec("midway", 0, host, port)])

    def produce():
        number = 0
        while True:
            partition.emit(make_batch(number, 20_000))
            number += 20_000

    producer = Worker(produce)
    producer.start()
    for _ in range(3):
        assert isinstance(gate.next(timeout=10)[1], pa.RecordBatch)
    producer_tm.close()
    with pytest.raises(NetworkError) as info:
        for _ in range(1000):
            assert gate.next(timeout=10) not in (None, InputGate.TIMEOUT)
    assert f"{host}:{port}" in str(info.value) and "midway" in str(info.value)
    with pytest.raises(CancelTaskError):
        producer.outcome(10)
    with pytest.raises(NetworkError):  # a failed gate stays failed
        gate.next(timeout=1)


PRODUCER_SCRIPT = """
import numpy as np, pyarrow as pa
from pyflow.runtime.network import NetworkEnvironment, ForwardPartitioner
env = NetworkEnvironment(host="127.0.0.1", bind_host="127.0.0.1")
env.start()
partition = env.create_result_partition("remote", 1, ForwardPartitioner())
print(env.address[1], flush=True)
batch = pa.record_batch({"x": np.arange(10_000)})
while True:
    partition.emit(batch)
"""


def test_killed_producer_process_fails_consumer(make_env):
    consumer_tm = make_env()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    child = subprocess.Popen([sys.executable, "-c", PRODUCER_SCRIPT], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([child.stdout], [], [], WAIT_S)
        assert ready, "producer process did not report its port"
        line = child.stdout.readline().strip()
        assert line.isdigit(), f"producer process failed: {line!r} {child.stderr.read() if child.poll() is not None else ''}"
        port = int(line)
        gate = consumer_tm.create_input_gate([ChannelSpec("remote", 0, "127.0.0.1", port)])
        for _ in range(5):
            assert gate.next(timeout=WAIT_S)[1].num_rows > 0
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=WAIT_S)
        with pytest.raises(NetworkError) as info:
            for _ in range(10_000):
                assert gate.next(timeout=WAIT_S) not in (None, InputGate.TIMEOUT)
        assert f"127.0.0.1:{port}" in str(info.value) and "remote" in str(info.value)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


# ---------------------------------------------------------------------------- throughput


def test_throughput_one_channel(make_env, capsys):
    """10M rows (3 int64 + 1 string column) through one channel in one process; prints MB/s."""
    total_rows, rows_per_batch = 10_000_000, 16384
    env = make_env()
    partition = env.create_result_partition("throughput", 1, ForwardPartitioner())
    gate = env.create_input_gate([ChannelSpec("throughput", 0, *env.address)])
    templates = []
    for i in range(4):
        a = np.arange(i * rows_per_batch, (i + 1) * rows_per_batch, dtype=np.int64)
        templates.append(pa.record_batch({"a": a, "b": a * 2, "c": a * 3,
                                          "s": pa.array([f"row-{j}" for j in a.tolist()])}))

    def produce():
        sent = number = 0
        while sent < total_rows:
            rows = min(rows_per_batch, total_rows - sent)
            batch = templates[number % len(templates)]
            partition.emit(batch if rows == rows_per_batch else batch.slice(0, rows))
            sent += rows
            number += 1
        partition.finish()

    started = time.perf_counter()
    producer = Worker(produce)
    producer.start()
    rows = 0
    while True:
        item = gate.next(timeout=120)
        assert item is not InputGate.TIMEOUT
        if item is None:
            break
        rows += item[1].num_rows
    elapsed = time.perf_counter() - started
    producer.outcome()
    assert rows == total_rows
    assert partition.num_bytes_out == gate.num_bytes_in
    with capsys.disabled():
        print(f"\n[network throughput] {rows:,} rows, {gate.num_bytes_in / 1e6:.0f} MB in {elapsed:.2f}s: "
              f"{gate.num_bytes_in / 1e6 / elapsed:.0f} MB/s, {rows / elapsed / 1e6:.2f} M rows/s "
              f"(producer backpressured {partition.backpressured_time_ms:.0f} ms, "
              f"consumer idle {gate.idle_time_ms:.0f} ms)")
