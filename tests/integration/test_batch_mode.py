"""BATCH execution: stage by stage over blocking exchanges, spilling when output exceeds memory,
and the same results as STREAMING on the same bounded input."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from pyflow import KeyedProcessFunction, RuntimeExecutionMode, ValueStateDescriptor, WatermarkStrategy
from pyflow.runtime.messages import ExecutionState
from pyflow.testing import test_cluster


class TotalAtEnd(KeyedProcessFunction):
    """Sums per key and emits the total when event time ends (a timer at the end of time)."""

    def open(self, ctx):
        self.total = ctx.get_state(ValueStateDescriptor("total", default=0))

    def process_element(self, value, ctx):
        self.total.update(self.total.value() + value[1])
        ctx.timer_service().register_event_time_timer(10**12)

    def on_timer(self, timestamp, ctx):
        yield (ctx.get_current_key(), self.total.value())


def job(env, data):
    return (env.from_collection(data)
            .assign_timestamps_and_watermarks(
                WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(lambda r, _: r[2]))
            .filter(lambda r: r[1] % 7 != 0)
            .map(lambda r: (r[0], r[1] * 2, r[2]))
            .key_by(0)
            .process(TotalAtEnd()))


def test_batch_and_streaming_give_the_same_records_and_batch_runs_stage_by_stage():
    data = [(f"k{i % 13}", i, i) for i in range(5000)]
    results = {}
    with test_cluster() as cluster:
        for mode in (RuntimeExecutionMode.STREAMING, RuntimeExecutionMode.BATCH):
            env = cluster.environment()
            env.set_parallelism(2)
            env.set_runtime_mode(mode)
            before = set(cluster.dispatcher.results)
            results[mode] = Counter(job(env, data).execute_and_collect())
            (job_id,) = set(cluster.dispatcher.results) - before
            if mode == RuntimeExecutionMode.BATCH:
                jm = cluster.dispatcher.job_master_for(job_id)
                finished = {e.vertex.job_vertex.id: e.state_timestamps[ExecutionState.FINISHED.value]
                            for e in jm.executions.values()}
                for e in jm.executions.values():
                    for edge in e.vertex.job_vertex.inputs:  # deployed only after its producers ended
                        assert e.state_timestamps[ExecutionState.DEPLOYING.value] >= finished[edge.source_vertex]
    expected = Counter()
    for key, value, _ in data:
        if value % 7:
            expected[key] += value * 2
    assert results[RuntimeExecutionMode.STREAMING] == Counter(expected.items())
    assert results[RuntimeExecutionMode.BATCH] == results[RuntimeExecutionMode.STREAMING]


def test_batch_output_larger_than_memory_spills_and_completes(tmp_path):
    settings = {"taskmanager.network.blocking-shuffle.memory": "1mb", "io.tmp.dirs": str(tmp_path / "spill"),
                "taskmanager.numberOfTaskSlots": 2}
    with test_cluster(settings) as cluster:
        env = cluster.environment()
        env.set_parallelism(2)
        env.set_runtime_mode(RuntimeExecutionMode.BATCH)
        rows = 200_000
        payload = lambda b: pa.record_batch({"k": pa.compute.bit_wise_and(b.column(0), 63),  # noqa: E731
                                             "pad": pa.array([b"x" * 100] * b.num_rows)})
        counts = env.from_sequence(1, rows).map_batches(payload).key_by("k").count()
        out = {r["k"]: r["count"] for r in counts.execute_and_collect()}
        (result,) = cluster.dispatcher.results.values()
    assert sum(out.values()) == rows and len(out) == 64
    source = next(v for v in result.vertex_metrics.values() if v["name"].startswith("Source"))
    assert source["numBytesOut"] > 10 * 2**20  # ten times the shuffle memory went through
    assert source["spilledBytes"] > 0


def test_automatic_picks_batch_only_when_every_source_is_bounded():
    from pyflow import StreamExecutionEnvironment

    env = StreamExecutionEnvironment.get_execution_environment({"execution.runtime-mode": "AUTOMATIC"})
    env.from_sequence(1, 10).print()
    assert env.get_job_graph(serialize=False).settings["batch_mode"] is True
    env = StreamExecutionEnvironment.get_execution_environment({"execution.runtime-mode": "AUTOMATIC"})
    env.from_sequence(1, 10).union(env.from_generator(lambda i: i)).print()
    assert env.get_job_graph(serialize=False).settings["batch_mode"] is False
