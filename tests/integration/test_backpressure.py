"""Credit-based flow control end to end: a fast source in front of a slow sink is held back, and
memory stays bounded in every process, whatever the input size."""

from __future__ import annotations

import os
import threading
import time

import psutil
import pyarrow as pa

from pyflow.testing import task_manager_pids, test_cluster

ROW_BYTES = 1024
SEGMENT = 256 * 1024


def widen(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Give every number a 1 KiB payload (vectorized)."""
    payload = pa.array([b"x" * ROW_BYTES] * batch.num_rows, pa.binary())
    return pa.record_batch({"n": batch.column(0), "payload": payload})


class SlowSink:
    """A map_batches function that takes its time, like a sink writing to a slow system."""

    def map_batches(self, batch):
        time.sleep(0.002)
        return None


def test_a_slow_sink_holds_back_a_fast_source_with_bounded_memory():
    # buffer memory of the one channel: (2 exclusive + 2 floating) buffers of 256 KiB = 1 MiB;
    # the source produces 100x that (100 MiB)
    settings = {
        "taskmanager.memory.segment-size": f"{SEGMENT // 1024}kb",
        "taskmanager.network.memory.buffers-per-channel": 2,
        "taskmanager.network.memory.floating-buffers-per-gate": 2,
        "execution.batch-size": 256,
        "taskmanager.numberOfTaskSlots": 1,
    }
    buffer_memory = 4 * SEGMENT
    rows = 100 * buffer_memory // ROW_BYTES
    with test_cluster(settings) as cluster:
        env = cluster.environment()
        (env.from_sequence(1, rows).map_batches(widen).rebalance()
            .map_batches(SlowSink()).disable_chaining().name("slow sink"))
        client = env.execute_async("backpressure")

        peaks: dict[int, int] = {}
        baseline: dict[int, int] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                # every TaskManager, and this process (the client, hosting the JobManager)
                for pid in [os.getpid(), *task_manager_pids(cluster).values()]:
                    try:
                        rss = psutil.Process(pid).memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
                    baseline.setdefault(pid, rss)
                    peaks[pid] = max(peaks.get(pid, 0), rss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = client.get_job_execution_result(timeout=240)
        done.set()
        sampler.join()

    source = next(v for v in result.vertex_metrics.values() if v["name"].startswith("Source"))
    assert source["numRecordsOut"] == rows
    assert source["numBytesOut"] > 10 * buffer_memory  # the data did cross the channel
    assert source["backPressuredTimeMs"] > 100  # the source waited for credit
    assert peaks, "no TaskManager was sampled"
    for pid, peak in peaks.items():
        growth = peak - baseline[pid]
        # 100 MiB went through; with backpressure a process holds a few buffers of it, not all
        print(f"process {pid}: RSS grew by {growth / 2**20:.1f} MiB while 100 MiB streamed")
        assert growth < 40 * 1024 * 1024, f"process {pid} grew by {growth / 2**20:.0f} MiB"
