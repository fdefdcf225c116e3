"""Jobs on the real embedded cluster: TaskManager processes, Arrow channels over sockets."""

from __future__ import annotations

import os
import re
import time
from collections import Counter

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from pyflow import FileSink, FileSource, MapFunction, ProcessFunction, RuntimeExecutionMode
from pyflow.testing import task_manager_pids, test_cluster

TEXT = [
    "To be, or not to be, that is the question:",
    "Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune,",
    "Or to take arms against a sea of troubles",
    "And by opposing end them. To die - to sleep,",
] * 40


def words(line: str) -> list[str]:
    return [w for w in re.split(r"\W+", line.lower()) if w]


def reference_counts() -> dict[str, int]:
    return dict(Counter(w for line in TEXT for w in words(line)))


@pytest.mark.parametrize("parallelism", [1, 2, 4])
def test_word_count_runs_on_that_many_task_manager_processes(parallelism):
    with test_cluster({"taskmanager.numberOfTaskSlots": 1}) as cluster:
        env = cluster.environment()
        env.set_parallelism(parallelism)
        env.set_runtime_mode(RuntimeExecutionMode.BATCH)
        counts = (env.from_collection(TEXT).rebalance().flat_map(words).map(lambda w: (w, 1))
                  .key_by(0).sum(1))
        result_rows = list(counts.execute_and_collect("word count"))
        assert dict(result_rows) == reference_counts()
        assert len(result_rows) == len(reference_counts())  # BATCH: one final row per word

        client_result = cluster.dispatcher.results
        (job_result,) = client_result.values()
        assert len(job_result.task_managers) == parallelism
        pids = task_manager_pids(cluster)
        used = {pids[rid] for rid in job_result.task_managers}
        assert len(used) == parallelism and os.getpid() not in used


def test_streaming_sum_emits_every_update(env):
    rows = list(env.from_collection([("a", 1), ("b", 2), ("a", 3), ("a", 4)]).key_by(0).sum(1)
                .execute_and_collect())
    assert sorted(rows) == sorted([("a", 1), ("b", 2), ("a", 4), ("a", 8)])


def test_key_by_moves_data_between_task_manager_processes_over_arrow_channels(tmp_path):
    with test_cluster({"taskmanager.numberOfTaskSlots": 1}) as cluster:
        env = cluster.environment()
        env.set_parallelism(2)
        (env.from_sequence(1, 20000).map(lambda x: (x % 100, x)).key_by(0).sum(1)
            .sink_to(FileSink(str(tmp_path / "sums"), format="csv")))
        result = env.execute("key_by across processes")
        vertices = result.vertex_metrics
        source = next(v for v in vertices.values() if v["name"].startswith("Source"))
        keyed = next(v for v in vertices.values() if v["name"].startswith("Keyed"))
        assert source["numBytesOut"] > 0
        assert source["numBytesOut"] == keyed["numBytesIn"]
        assert keyed["numRecordsIn"] == 20000
        assert len(result.task_managers) == 2


def test_record_counts_per_operator_and_net_runtime(env):
    env.from_sequence(1, 1000).filter(lambda x: x % 2 == 0).map(lambda x: x * 3).print().name("out")
    result = env.execute("counts")
    counts = result.record_counts()
    assert counts["Source: Sequence Source"] == 1000
    assert counts["Filter"] == 500
    assert counts["Map"] == 500
    assert result.operator_metrics["out"]["numRecordsIn"] == 500
    assert result.get_net_runtime() > 0 and len(result.get_job_id()) == 32


def test_sources_sequence_generator_and_union(env):
    env.set_parallelism(3)
    seq = env.from_sequence(1, 100)
    gen = env.from_generator(lambda i: 1000 + i, count=50)
    rows = sorted(seq.union(gen).execute_and_collect())
    assert rows == list(range(1, 101)) + list(range(1000, 1050))


def test_unbounded_generator_with_rate_runs_until_cancelled(env):
    it = env.from_generator(lambda i: i, rate=2000).execute_and_collect(limit=300)
    rows = list(it)
    assert rows == sorted(rows) and len(rows) == 300
    assert it.job_client.get_job_status().value in ("CANCELLING", "CANCELED")


def test_partitionings_deliver_every_record(env):
    env.set_parallelism(2)
    base = env.from_sequence(1, 200)
    assert sorted(base.rebalance().map(lambda x: x).execute_and_collect()) == list(range(1, 201))
    base = env.from_sequence(1, 200)
    assert sorted(base.shuffle().map(lambda x: x).execute_and_collect()) == list(range(1, 201))
    base = env.from_sequence(1, 200)
    assert sorted(base.rescale().map(lambda x: x).execute_and_collect()) == list(range(1, 201))
    base = env.from_sequence(1, 10)
    assert sorted(base.broadcast().map(lambda x: x).execute_and_collect()) == sorted(list(range(1, 11)) * 2)


def test_row_kinds_round_trip(env):
    class Point:
        def __init__(self, x):
            self.x = x

    dicts = list(env.from_collection([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]).map(lambda d: {**d, "c": d["a"] * 2})
                 .execute_and_collect())
    assert dicts == [{"a": 1, "b": "x", "c": 2}, {"a": 2, "b": "y", "c": 4}]
    objects = list(env.from_collection([1, 2]).map(lambda v: Point(v)).map(lambda p: p.x + 10).execute_and_collect())
    assert objects == [11, 12]


def test_rich_function_open_and_process_function(env):
    class AddSubtask(MapFunction):
        def open(self, ctx):
            self.index = ctx.get_index_of_this_subtask()
            self.total = ctx.get_number_of_parallel_subtasks()

        def map(self, value):
            return (value, self.index, self.total)

    class Split(ProcessFunction):
        def process_element(self, value, ctx):
            for part in value.split("-"):
                yield part

    env.set_parallelism(2)
    rows = list(env.from_sequence(1, 10).map(AddSubtask()).execute_and_collect())
    assert sorted(r[0] for r in rows) == list(range(1, 11))
    assert {r[1] for r in rows} == {0, 1} and {r[2] for r in rows} == {2}
    parts = list(env.from_collection(["a-b", "c"]).process(Split()).execute_and_collect())
    assert parts == ["a", "b", "c"]


def test_keyed_reduce_min_by_max_by_count_and_key_functions(env):
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    data = [("a", 3, "x"), ("b", 1, "y"), ("a", 1, "z"), ("b", 5, "w"), ("a", 1, "q")]
    reduced = dict(env.from_collection(data).map(lambda t: (t[0], t[1])).key_by(0)
                   .reduce(lambda x, y: (x[0], x[1] + y[1])).execute_and_collect())
    assert reduced == {"a": 5, "b": 6}
    mins = sorted(env.from_collection(data).key_by(0).min_by(1).execute_and_collect())
    assert mins == [("a", 1, "z"), ("b", 1, "y")]
    maxs = sorted(env.from_collection(data).key_by(lambda t: t[0]).max_by(1).execute_and_collect())
    assert maxs == [("a", 3, "x"), ("b", 5, "w")]
    counts = sorted((r["f0"], r["count"]) for r in env.from_collection(data).key_by(0).count().execute_and_collect())
    assert counts == [("a", 3), ("b", 2)]


def test_vectorized_filter_and_map_batches(env):
    table = pa.table({"auction": [1, 2, 3, 4], "price": [1000, 5000, 3001, 3000]})
    rows = list(env.from_collection(table.to_pylist())
                .filter(pc.field("price") > 3000)
                .map_batches(lambda b: pa.record_batch({"auction": b.column("auction"),
                                                        "price_eur": pc.multiply(b.column("price"), 0.908)}))
                .execute_and_collect())
    assert rows == [{"auction": 2, "price_eur": pytest.approx(4540.0)}, {"auction": 3, "price_eur": pytest.approx(2724.908)}]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_file_source_and_file_sink(env, tmp_path, fmt):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        pacsv.write_csv(pa.table({"k": [i, i + 10], "v": [1.5 * i + 0.25, 2.5]}), src / f"part-{i}.csv")
    out = tmp_path / "out"
    env.set_parallelism(2)
    env.read_files(str(src)).filter(pc.field("v") > 1.0).sink_to(FileSink(str(out), format=fmt))
    env.execute("files")
    files = sorted(os.listdir(out))
    assert len(files) == 2  # one part file per sink subtask
    if fmt == "csv":
        table = pa.concat_tables(pacsv.read_csv(out / f) for f in files)
    elif fmt == "parquet":
        table = pa.concat_tables(pq.read_table(out / f) for f in files)
    else:
        import pyarrow.json as pajson

        table = pa.concat_tables(pajson.read_json(out / f) for f in files)
    assert sorted(zip(table["k"].to_pylist(), table["v"].to_pylist())) == [
        (1, 1.75), (2, 3.25), (10, 2.5), (11, 2.5), (12, 2.5)]


def test_file_source_with_headerless_csv_and_column_names(env, tmp_path):
    (tmp_path / "bids.csv").write_text("1,100\n2,5000\n1,7000\n")
    source = FileSource(str(tmp_path / "bids.csv"), column_names=["auction", "price"], has_header=False)
    rows = list(env.from_source(source, source_name="bids").execute_and_collect())
    assert rows == [{"auction": 1, "price": 100}, {"auction": 2, "price": 5000}, {"auction": 1, "price": 7000}]


def test_task_manager_processes_log_to_files(cluster, env):
    env.from_sequence(1, 10).print()
    result = env.execute("logs")
    log_files = [reg.log_file for rid, reg in cluster.jobmanager.rm.history.items() if rid in result.task_managers]
    assert log_files and all(os.path.exists(f) for f in log_files)
    assert any("switched to FINISHED" in open(f).read() for f in log_files)


def test_task_managers_are_child_processes_that_end_with_the_cluster():
    with test_cluster() as cluster:
        env = cluster.environment()
        env.set_parallelism(2)
        env.from_sequence(1, 10).print()
        env.execute()
        pids = list(task_manager_pids(cluster).values())
        assert all(psutil.pid_exists(p) for p in pids)
    for p in pids:
        assert not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE


def test_several_jobs_run_at_once_and_cancel_independently():
    from pyflow import JobCancellationError, JobStatus

    with test_cluster({"taskmanager.numberOfTaskSlots": 2}) as cluster:
        clients = []
        for i in range(3):
            env = cluster.environment()
            env.from_generator(lambda k, i=i: (i, k), rate=500).map(lambda t: t).print()
            clients.append(env.execute_async(f"job {i}"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
                c.details()["tasks"] and all(t["state"] == "RUNNING" for t in c.details()["tasks"].values())
                for c in clients):
            time.sleep(0.05)
        assert [j["status"] for j in cluster.dispatcher.list_jobs()] == ["RUNNING"] * 3
        clients[1].cancel()
        with pytest.raises(JobCancellationError):
            clients[1].get_job_execution_result(timeout=30)
        assert [c.get_job_status() for c in clients] == [JobStatus.RUNNING, JobStatus.CANCELED, JobStatus.RUNNING]
        for c in (clients[0], clients[2]):
            c.cancel()
            with pytest.raises(JobCancellationError):
                c.get_job_execution_result(timeout=30)


def test_idle_task_managers_stop_after_the_taskmanager_timeout():
    with test_cluster({"resourcemanager.taskmanager-timeout": "1 s"}) as cluster:
        env = cluster.environment()
        env.set_parallelism(2)
        env.from_sequence(1, 10).map(lambda x: x).print()
        env.execute("short")
        first = task_manager_pids(cluster)
        pids = list(first.values())
        assert len(pids) == 2
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(psutil.pid_exists(p) and
                                                  psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
            time.sleep(0.1)
        assert cluster.jobmanager.rm.overview()["taskmanagers"] == 0
        assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        # a new job starts new TaskManagers
        env.from_sequence(1, 10).print()
        again = env.execute("again").task_managers
        assert len(again) == 2 and not set(again) & set(first)


def test_managed_memory_is_split_over_the_slots():
    class Memory(MapFunction):
        def open(self, ctx):
            self.memory = ctx.get_managed_memory()

        def map(self, value):
            return self.memory

    settings = {"taskmanager.numberOfTaskSlots": 2, "taskmanager.memory.process.size": "1000m",
                "taskmanager.memory.managed.fraction": 0.4}
    with test_cluster(settings) as cluster:
        env = cluster.environment()
        assert set(env.from_sequence(1, 4).map(Memory()).execute_and_collect()) == {int(1000 * 2**20 * 0.4) // 2}


def test_field_keys_work_when_values_of_mixed_types_fall_back_to_objects(env):
    env.set_parallelism(2)
    # "v" holds ints in some records and strings in others: such batches travel as objects
    data = [{"k": "a", "v": 1}, {"k": "b", "v": "x"}, {"k": "a", "v": "y"}, {"k": "b", "v": 2}] * 5
    out = list(env.from_collection(data).key_by("k")
               .reduce(lambda acc, r: {"k": r["k"], "v": f"{acc['v']}{r['v']}"}).execute_and_collect())
    final = {}
    for r in out:  # STREAMING: the last update of each key is the longest
        if len(str(r["v"])) > len(str(final.get(r["k"], ""))):
            final[r["k"]] = r["v"]
    assert final == {"a": "1y" * 5, "b": "x2" * 5}


def test_side_outputs_from_process_functions_chained_and_across_the_network(env):
    from pyflow import KeyedProcessFunction, OutputTag

    rejected = OutputTag("rejected")

    class Validate(ProcessFunction):
        def process_element(self, value, ctx):
            if value % 3 == 0:
                yield rejected, f"bad {value}"
            else:
                yield value

    env.set_parallelism(2)
    main = env.from_sequence(1, 30).process(Validate())
    side_chained = main.get_side_output(rejected).map(lambda s: s.upper())  # chained (forward)
    side_keyed = main.get_side_output(rejected).key_by(lambda s: len(s)).map(lambda s: s)  # over the network
    rows = list(main.union(side_chained.map(lambda s: s), side_keyed).execute_and_collect())
    numbers = sorted(r for r in rows if isinstance(r, int))
    texts = sorted(r for r in rows if isinstance(r, str))
    assert numbers == [n for n in range(1, 31) if n % 3]
    assert texts == sorted([f"BAD {n}" for n in range(3, 31, 3)] + [f"bad {n}" for n in range(3, 31, 3)])

    class Route(KeyedProcessFunction):
        def process_element(self, value, ctx):
            yield (rejected, value) if value > 5 else value

    keyed = env.from_sequence(1, 10).key_by(lambda v: v % 2).process(Route())
    assert sorted(keyed.get_side_output(rejected).execute_and_collect()) == [6, 7, 8, 9, 10]


def test_job_client_details_after_the_job_ended(env):
    env.from_collection([1, 2, 3]).map(lambda x: x).print()
    client = env.execute_async("done")
    client.get_job_execution_result(timeout=30)
    details = client.details()
    assert details["state"] == "FINISHED" and all(t["state"] == "FINISHED" for t in details["tasks"].values())


def test_types_are_functions_and_a_rerun_with_lower_parallelism_leaves_no_stale_parts(env, tmp_path):
    assert list(env.from_collection(["1", "22"]).map(int).map(str).map(len).execute_and_collect()) == [1, 2]
    out = tmp_path / "out"
    env.set_parallelism(3)
    env.from_sequence(1, 30).sink_to(FileSink(str(out), format="csv"))
    env.execute()
    assert sorted(os.listdir(out)) == ["part-0.csv", "part-1.csv", "part-2.csv"]
    env.set_parallelism(1)
    env.from_sequence(1, 30).sink_to(FileSink(str(out), format="csv"))
    env.execute()
    assert sorted(os.listdir(out)) == ["part-0.csv"]
