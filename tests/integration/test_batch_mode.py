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
        # map_batches after key_by: the exchange carries every record (nothing to combine)
        counts = (env.from_sequence(1, rows).map_batches(payload).key_by("k")
                  .map_batches(lambda b: pa.record_batch({"k": b["k"]})).key_by("k").count())
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


def test_batch_keyed_aggregations_exchange_partials_not_every_record():
    with test_cluster({"taskmanager.numberOfTaskSlots": 2}) as cluster:
        results = {}
        for mode in (RuntimeExecutionMode.BATCH, RuntimeExecutionMode.STREAMING):
            env = cluster.environment()
            env.set_parallelism(2)
            env.set_runtime_mode(mode)
            def records(_=None):
                return env.from_sequence(0, 9_999).map(lambda i: (f"k{i % 10}", i))

            counts = records().key_by(0).count()
            sums = records().key_by(0).sum(1)
            rows = list(counts.union(sums.map(lambda t: {"f0": t[0], "sum": t[1]})).execute_and_collect())
            (result,) = [r for j, r in cluster.dispatcher.results.items() if j not in results]
            results[result.job_id] = result
            final = {}
            for r in rows:  # STREAMING emits every update: keep the largest
                key = (r["f0"], "count" in r)
                final[key] = max(final.get(key, 0), r.get("count", r.get("sum", 0)))
            assert final == {**{(f"k{k}", True): 1000 for k in range(10)},
                             **{(f"k{k}", False): sum(range(k, 10_000, 10)) for k in range(10)}}
            keyed_in = sum(v["numRecordsIn"] for v in result.vertex_metrics.values() if v["name"].startswith("Keyed"))
            if mode == RuntimeExecutionMode.BATCH:
                assert keyed_in <= 2 * 2 * 10  # two aggregations, two subtasks, ten keys: partials only
            else:
                assert keyed_in == 2 * 10_000
