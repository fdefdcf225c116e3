"""Event time on the real cluster: timestamps travel with records, watermarks travel in band,
a task's watermark is the minimum over its inputs, idle inputs do not hold it back."""

from __future__ import annotations

from pyflow import ProcessFunction, WatermarkStrategy
from pyflow.testing import test_cluster

SETTINGS = {"pipeline.auto-watermark-interval": "20 ms", "execution.buffer-timeout": "10 ms"}
NO_WATERMARK = -(2**63)


class Observe(ProcessFunction):
    """Emits (record, its timestamp, the operator's current watermark)."""

    def process_element(self, value, ctx):
        yield (value[0], ctx.timestamp(), ctx.timer_service().current_watermark())


def timestamped(stream, strategy=None):
    strategy = strategy or WatermarkStrategy.for_monotonous_timestamps()
    return stream.assign_timestamps_and_watermarks(strategy.with_timestamp_assigner(lambda r, _: r[1]))


def test_the_watermark_is_the_minimum_over_inputs_and_timestamps_travel_with_records():
    with test_cluster(SETTINGS) as cluster:
        env = cluster.environment()
        slow = timestamped(env.from_generator(lambda i: ("slow", i), rate=300))           # event time i ms
        fast = timestamped(env.from_generator(lambda i: ("fast", 1_000_000 + 1000 * i), rate=300))
        rows = list(slow.union(fast).map(lambda r: r).process(Observe()).execute_and_collect(limit=400))
    by_source = {"slow": [r for r in rows if r[0] == "slow"], "fast": [r for r in rows if r[0] == "fast"]}
    assert by_source["slow"] and by_source["fast"]
    assert all(ts is not None for _, ts, _ in rows)
    assert all(ts >= 1_000_000 for _, ts, _ in by_source["fast"])
    watermarks = [wm for _, _, wm in rows]
    assert max(watermarks) > NO_WATERMARK  # event time advanced
    # the slow input holds the watermark back: never near the fast input's event time
    assert max(watermarks) < 1_000_000


def test_an_idle_input_does_not_hold_the_watermark_back():
    with test_cluster(SETTINGS) as cluster:
        env = cluster.environment()
        # this input goes quiet after 3 records; with idleness it stops holding back the watermark
        quiet = timestamped(env.from_generator(lambda i: ("quiet", i), rate=300).filter(lambda r: r[1] < 3),
                            WatermarkStrategy.for_monotonous_timestamps().with_idleness(200))
        busy = timestamped(env.from_generator(lambda i: ("busy", 1000 * i), rate=300))
        rows = []
        with quiet.union(busy).process(Observe()).execute_and_collect() as results:
            for row in results:
                rows.append(row)
                if row[2] > 50_000 or len(rows) > 3000:
                    break
    assert max(wm for _, _, wm in rows) > 50_000, "the idle input held the watermark back"


def test_without_idleness_a_quiet_input_holds_the_watermark_back():
    with test_cluster(SETTINGS) as cluster:
        env = cluster.environment()
        quiet = timestamped(env.from_generator(lambda i: ("quiet", i), rate=300).filter(lambda r: r[1] < 3))
        busy = timestamped(env.from_generator(lambda i: ("busy", 1000 * i), rate=300))
        rows = list(quiet.union(busy).process(Observe()).execute_and_collect(limit=300))
    assert max(wm for _, _, wm in rows) <= 2


def test_keyed_state_and_event_time_timers_on_the_cluster():
    from pyflow import KeyedProcessFunction, ValueStateDescriptor

    class SumUntilQuiet(KeyedProcessFunction):
        """Sums per key; emits the sum 1 s (event time) after the key's last record."""

        def open(self, ctx):
            self.total = ctx.get_state(ValueStateDescriptor("total", default=0))
            self.deadline = ctx.get_state(ValueStateDescriptor("deadline"))

        def process_element(self, value, ctx):
            self.total.update(self.total.value() + value[1])
            if self.deadline.value() is not None:
                ctx.timer_service().delete_event_time_timer(self.deadline.value())
            self.deadline.update(ctx.timestamp() + 1000)
            ctx.timer_service().register_event_time_timer(ctx.timestamp() + 1000)

        def on_timer(self, timestamp, ctx):
            yield (ctx.get_current_key(), self.total.value(), timestamp)

    data = [(f"k{i % 7}", i, i * 10) for i in range(500)]  # (key, amount, event time ms)
    with test_cluster(SETTINGS) as cluster:
        env = cluster.environment()
        env.set_parallelism(2)
        rows = list(env.from_collection(data)
                    .assign_timestamps_and_watermarks(
                        WatermarkStrategy.for_bounded_out_of_orderness(100).with_timestamp_assigner(lambda r, _: r[2]))
                    .key_by(0).process(SumUntilQuiet()).execute_and_collect())
    expected = {}
    last = {}
    for key, amount, ts in data:
        expected[key] = expected.get(key, 0) + amount
        last[key] = ts
    # one emission per key (earlier deadlines were deleted), fired by the end-of-input watermark
    assert sorted(rows) == sorted((k, expected[k], last[k] + 1000) for k in expected)


def test_tumbling_event_time_window_counts_match_a_reference_in_streaming_and_batch_mode():
    import random

    from pyflow import RuntimeExecutionMode, TumblingEventTimeWindows

    rng = random.Random(7)
    # bids: (auction, event time ms), event time advancing, each jittered back by up to 2 s
    bids = [{"auction": rng.randrange(20), "ts": i * 10 - rng.randrange(2000)} for i in range(3000)]
    expected = {}
    for b in bids:
        key = (b["auction"], b["ts"] // 10_000 * 10_000)
        expected[key] = expected.get(key, 0) + 1
    results = {}
    for mode in (RuntimeExecutionMode.STREAMING, RuntimeExecutionMode.BATCH):
        with test_cluster(SETTINGS) as cluster:
            env = cluster.environment()
            env.set_parallelism(2)
            env.set_runtime_mode(mode)
            env.configure({"execution.batch-size": 256})
            rows = list(env.from_collection(bids)
                        .assign_timestamps_and_watermarks(
                            WatermarkStrategy.for_bounded_out_of_orderness(5000).with_timestamp_assigner("ts"))
                        .key_by("auction")
                        .window(TumblingEventTimeWindows.of(10_000))
                        .count()
                        .execute_and_collect())
        assert all(r["window_end"] - r["window_start"] == 10_000 for r in rows)
        results[mode] = sorted((r["auction"], r["window_start"], r["count"]) for r in rows)
    assert results[RuntimeExecutionMode.STREAMING] == sorted((a, w, c) for (a, w), c in expected.items())
    assert results[RuntimeExecutionMode.BATCH] == results[RuntimeExecutionMode.STREAMING]


def test_window_all_sums_the_whole_stream_per_window():
    from pyflow import TumblingEventTimeWindows

    with test_cluster(SETTINGS) as cluster:
        env = cluster.environment()
        env.set_parallelism(2)
        rows = list(env.from_sequence(0, 99).map(lambda x: {"x": x, "ts": x * 100})
                    .assign_timestamps_and_watermarks(
                        WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner("ts"))
                    .window_all(TumblingEventTimeWindows.of(1000)).sum("x").execute_and_collect())
    assert sorted((r["window_start"], r["x"]) for r in rows) == [
        (w * 1000, sum(range(w * 10, w * 10 + 10))) for w in range(10)]


def test_windows_with_lateness_late_side_output_sessions_and_count_windows():
    from pyflow import (
        EventTimeSessionWindows, OutputTag, ProcessWindowFunction, TumblingEventTimeWindows,
    )

    late = OutputTag("late")

    class Collect(ProcessWindowFunction):
        def process(self, key, context, elements):
            w = context.window()
            yield (key, w.start, w.end, sorted(e[1] for e in elements))

    # ("k", value, event time ms): a late record within the allowed lateness updates its window,
    # one beyond it goes to the side output
    data = [("k", 1, 1_000), ("k", 2, 12_000), ("k", 3, 2_000), ("k", 4, 30_000), ("k", 5, 3_000)]
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(lambda r, _: r[2])
    with test_cluster({**SETTINGS, "pipeline.auto-watermark-interval": "0 ms", "execution.batch-size": 1}) as cluster:
        env = cluster.environment()
        windows = (env.from_collection(data).assign_timestamps_and_watermarks(strategy)
                   .key_by(0).window(TumblingEventTimeWindows.of(10_000))
                   .allowed_lateness(15_000).side_output_late_data(late).process(Collect()))
        result = sorted(windows.union(windows.get_side_output(late).map(lambda r: ("late", r[1]))).execute_and_collect())
        # records: 1@1s, 2@12s (wm 12s fires [0,10)=[1]), 3@2s late but within lateness (fires [1,3]),
        # 4@30s (wm 30s: [0,10) cleaned up at 9.999+15s; [10,20) fires [2]), 5@3s beyond lateness -> late
        assert ("k", 0, 10_000, [1]) in result and ("k", 0, 10_000, [1, 3]) in result
        assert ("k", 10_000, 20_000, [2]) in result and ("late", 5) in result
        env2 = cluster.environment()
        sessions = sorted(env2.from_collection([("a", 1, 0), ("b", 4, 100), ("a", 2, 500), ("a", 3, 5_000)])
                          .assign_timestamps_and_watermarks(strategy).key_by(0)
                          .window(EventTimeSessionWindows.with_gap(1_000)).sum(1).execute_and_collect(),
                          key=lambda r: (r["f0"], r["window_start"]))
        assert [(r["f0"], r["window_start"], r["window_end"], r["f1"]) for r in sessions] == [
            ("a", 0, 1_500, 3), ("a", 5_000, 6_000, 3), ("b", 100, 1_100, 4)]
        env3 = cluster.environment()
        counts = sorted(env3.from_collection([("a", i) for i in range(7)]).key_by(0).count_window(3).sum(1)
                        .execute_and_collect(), key=lambda r: r["f1"])
        assert [r["f1"] for r in counts] == [0 + 1 + 2, 3 + 4 + 5]  # the 7th record never fills a window


def test_late_records_are_counted_in_the_job_metrics():
    from pyflow import TumblingEventTimeWindows

    data = [("k", 1, 1_000), ("k", 2, 25_000), ("k", 3, 2_000)]  # the last is late: wm 24.999 s
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(lambda r, _: r[2])
    with test_cluster({**SETTINGS, "pipeline.auto-watermark-interval": "0 ms", "execution.batch-size": 1}) as cluster:
        env = cluster.environment()
        (env.from_collection(data).assign_timestamps_and_watermarks(strategy).key_by(0)
            .window(TumblingEventTimeWindows.of(10_000)).count().print())
        result = env.execute("late")
    assert result.operator_metrics["Window Aggregation"]["numLateRecordsDropped"] == 1
