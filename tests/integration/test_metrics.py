"""Metrics, backpressure, checkpoints and logs over the REST API, and the Prometheus reporters of
the JobManager and a TaskManager, against a real embedded cluster on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import re
import time
from typing import Any

import psutil
import pytest

from pyflow import WatermarkStrategy
from pyflow.testing import task_manager_pids, test_cluster, wait_for

NO_WATERMARK = -(2**63)


def call(address: str, path: str) -> tuple[int, str, bytes]:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def get(address: str, path: str) -> Any:
    status, content_type, body = call(address, path)
    assert status == 200, (path, body)
    assert content_type.startswith("application/json"), path
    return json.loads(body)


def text(address: str, path: str) -> str:
    status, content_type, body = call(address, path)
    assert status == 200, (path, body)
    assert content_type.startswith("text/plain"), path
    return body.decode()


def error(address: str, path: str) -> tuple[int, str]:
    status, _, body = call(address, path)
    return status, json.loads(body)["errors"][0]




def metric_values(rest: str, path: str) -> dict[str, float]:
    """All metrics of a metric endpoint, by id, as numbers."""
    ids = ",".join(m["id"] for m in get(rest, path))
    return {m["id"]: float(m["value"]) for m in get(rest, f"{path}?get={ids}")} if ids else {}


@pytest.fixture(scope="module")
def cluster():
    settings = {"metrics.reporter.prom.port": "0", "pipeline.auto-watermark-interval": "20 ms",
                "execution.buffer-timeout": "10 ms"}
    with test_cluster(settings) as c:
        yield c
        pids = list(task_manager_pids(c).values())
    # every TaskManager this module started ended with its cluster
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid


@pytest.fixture(scope="module")
def rest(cluster) -> str:
    return cluster.jobmanager.rest_address


class Running:
    """A job started with execute_async, cancelled when the test ends."""

    def __init__(self, cluster, rest: str, build, name: str):
        env = cluster.environment()
        build(env)
        self.client = env.execute_async(name)
        self.rest = rest
        self.jid = self.client.job_id
        wait_for(lambda: all(v["status"] == "RUNNING" for v in get(rest, f"/jobs/{self.jid}")["vertices"]),
                 what=f"job {name} to run")
        self.vertices = {v["name"]: v["id"] for v in get(rest, f"/jobs/{self.jid}")["vertices"]}

    def vertex(self, prefix: str) -> str:
        (vid,) = [vid for name, vid in self.vertices.items() if name.startswith(prefix)]
        return vid

    def vertex_metrics(self, vid: str) -> dict[str, float]:
        return metric_values(self.rest, f"/jobs/{self.jid}/vertices/{vid}/metrics")

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc) -> None:
        self.client.cancel()
        wait_for(lambda: get(self.rest, f"/jobs/{self.jid}")["state"] == "CANCELED", what="the job to cancel")


def steady_job(env) -> None:
    env.from_generator(lambda i: i, rate=2000).rebalance().map(lambda x: x).filter(lambda x: False).print()


def test_rates_become_positive_and_time_shares_add_up_to_1000(cluster, rest):
    with Running(cluster, rest, steady_job, "rates") as job:
        source, mapper = job.vertex("Source"), job.vertex("Map")
        values = wait_for(lambda: (m := job.vertex_metrics(source)).get("0.numRecordsOutPerSecond", 0) > 0 and m,
                          what="the source's rate")
        assert values["0.numBytesOutPerSecond"] > 0 and values["0.numRecordsOut"] > 0
        downstream = wait_for(lambda: (m := job.vertex_metrics(mapper)).get("0.numRecordsInPerSecond", 0) > 0 and m,
                              what="the consumer's rate")
        assert downstream["0.numBytesInPerSecond"] > 0
        # per operator of the chain, with Flink's ids: <subtask>.<operator>.<metric>
        assert downstream["0.Map.numRecordsInPerSecond"] > 0 and downstream["0.Filter.numRecordsIn"] > 0
        for vid in (source, mapper):
            m = job.vertex_metrics(vid)
            shares = [m["0.busyTimeMsPerSecond"], m["0.idleTimeMsPerSecond"], m["0.backPressuredTimeMsPerSecond"]]
            assert all(0 <= s <= 1000 for s in shares) and 990 <= sum(shares) <= 1010, (vid, shares)
        # 2000 records/s need little of either task's time: both wait for their input mostly
        assert job.vertex_metrics(mapper)["0.idleTimeMsPerSecond"] > 500
        # the subtasks' view aggregates them, and the job's vertices show Flink's accumulated times
        (busy,) = get(rest, f"/jobs/{job.jid}/vertices/{mapper}/subtasks/metrics?get=busyTimeMsPerSecond&agg=max")
        assert 0 <= busy["max"] <= 1000
        vertex = next(v for v in get(rest, f"/jobs/{job.jid}")["vertices"] if v["id"] == mapper)
        assert vertex["metrics"]["accumulated-idle-time"] > 0 and vertex["metrics"]["accumulated-busy-time"] >= 0


class SlowSink:
    def map_batches(self, batch):
        time.sleep(0.05)
        return None


def backpressured_job(env) -> None:
    env.from_generator(lambda i: i).rebalance().map_batches(SlowSink()).disable_chaining().name("slow sink")


def test_a_producer_in_front_of_a_slow_sink_shows_high_backpressure(cluster, rest):
    with Running(cluster, rest, backpressured_job, "backpressure") as job:
        source, sink = job.vertex("Source"), job.vertex("slow sink")
        path = f"/jobs/{job.jid}/vertices/{source}/backpressure"
        info = wait_for(lambda: (b := get(rest, path))["backpressure-level"] == "high" and b,
                        what="high backpressure at the source")
        assert info["status"] == "ok" and info["backpressureLevel"] == "high" and info["end-timestamp"] > 0
        (subtask,) = info["subtasks"]
        assert subtask["subtask"] == 0 and subtask["attempt-number"] == 0
        assert subtask["backpressure-level"] == "high" and subtask["ratio"] > 0.5
        assert subtask["ratio"] + subtask["idleRatio"] + subtask["busyRatio"] == pytest.approx(1.0, abs=0.01)
        # the slow sink itself is busy, not backpressured
        sink_info = get(rest, f"/jobs/{job.jid}/vertices/{sink}/backpressure")
        assert sink_info["backpressure-level"] == "ok" and sink_info["subtasks"][0]["busyRatio"] > 0.5


def event_time_job(env) -> None:
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(lambda r, _: r[1])
    (env.from_generator(lambda i: (i % 3, 10 * i), rate=500)
        .assign_timestamps_and_watermarks(strategy)
        .key_by(lambda r: r[0])
        .map(lambda r: r).name("keyed map")
        .filter(lambda r: False).print())


def test_the_input_watermark_of_a_task_advances_in_an_event_time_job(cluster, rest):
    with Running(cluster, rest, event_time_job, "event time") as job:
        source, consumer = job.vertex("Source"), job.vertex("keyed map")

        def watermark() -> float:
            return job.vertex_metrics(consumer).get("0.currentInputWatermark", NO_WATERMARK)

        first = wait_for(lambda: (w := watermark()) > NO_WATERMARK and w, what="a first watermark")
        wait_for(lambda: watermark() > first, what="the watermark to advance")
        produced = job.vertex_metrics(source)
        assert produced["0.currentOutputWatermark"] > NO_WATERMARK
        assert produced["0.currentInputWatermark"] == NO_WATERMARK  # a source has no input


def test_job_jobmanager_and_taskmanager_metrics_and_checkpoints(cluster, rest):
    with Running(cluster, rest, steady_job, "job metrics") as job:
        metrics = metric_values(rest, f"/jobs/{job.jid}/metrics")
        assert metrics["numRestarts"] == 0 and metrics["uptime"] > 0 and metrics["downtime"] == 0
        assert metrics["numberOfCompletedCheckpoints"] == 0 and metrics["lastCheckpointSize"] == -1

        checkpoints = get(rest, f"/jobs/{job.jid}/checkpoints")
        assert checkpoints["counts"] == {"restored": 0, "total": 0, "in_progress": 0, "completed": 0, "failed": 0}
        assert checkpoints["latest"] == {"completed": None, "savepoint": None, "failed": None, "restored": None}
        assert checkpoints["history"] == [] and checkpoints["summary"]["end_to_end_duration"]["max"] == 0
        status, message = error(rest, f"/jobs/{job.jid}/checkpoints/config")
        assert status == 404 and message.startswith(f"Checkpointing is not enabled for this job ({job.jid}).")

        jm = metric_values(rest, "/jobmanager/metrics")
        assert jm["numRunningJobs"] >= 1 and jm["numRegisteredTaskManagers"] >= 1
        assert jm["taskSlotsTotal"] >= jm["taskSlotsAvailable"] >= 0
        assert jm["Status.Process.Memory.RSS"] > 0 and 0 <= jm["Status.Process.CPU.Load"] <= 1

        tm = get(rest, "/taskmanagers")["taskmanagers"][0]["id"]
        tm_metrics = metric_values(rest, f"/taskmanagers/{tm}/metrics")
        assert tm_metrics["Status.Process.Memory.RSS"] > 0 and tm_metrics["Status.Process.Threads.Count"] > 1
    for path in ("/jobs/0123456789abcdef0123456789abcdef/metrics", "/taskmanagers/tm-nosuch/metrics",
                 f"/jobs/{job.jid}/vertices/nosuch/metrics", f"/jobs/{job.jid}/vertices/nosuch/backpressure",
                 "/jobs/nosuch/checkpoints"):
        assert error(rest, path)[0] == 404, path


def test_logs_of_the_jobmanager_and_a_taskmanager_are_listed_and_read(cluster, rest):
    with Running(cluster, rest, steady_job, "logs"):
        # the embedded JobManager logs into this process's log file
        listing = get(rest, "/jobmanager/logs")["logs"]
        assert all(set(f) == {"name", "size", "mtime"} for f in listing)
        own = next(f for f in listing if f["name"] == f"pyflow-client-{os.getpid()}.log")
        assert own["size"] > 0 and own["mtime"] > 0
        jm_log = text(rest, "/jobmanager/log")
        assert "JobManager started" in jm_log and cluster.jobmanager.address in jm_log
        assert text(rest, f"/jobmanager/logs/{own['name']}").startswith(jm_log[:200])

        tm = get(rest, "/taskmanagers")["taskmanagers"][0]["id"]
        tm_files = get(rest, f"/taskmanagers/{tm}/logs")["logs"]
        assert f"pyflow-taskexecutor-{tm}.log" in [f["name"] for f in tm_files]
        tm_log = text(rest, f"/taskmanagers/{tm}/log")
        assert f"TaskManager {tm} registered" in tm_log
        assert text(rest, f"/taskmanagers/{tm}/logs/pyflow-taskexecutor-{tm}.log").startswith(tm_log[:40])

        # a large file is served from its end, after a line that says so
        tail = text(rest, f"/taskmanagers/{tm}/log?bytes=200")
        assert tail.startswith("[pyflow: the last ") and len(tail.encode()) < 400
        assert tail.splitlines()[-1] == tm_log.splitlines()[-1] or tm_log.count("\n") > 0
        # an embedded cluster's processes print to the program's console: there is no stdout file
        assert error(rest, "/jobmanager/stdout")[0] == 404
        assert error(rest, f"/taskmanagers/{tm}/stdout")[0] == 404


@pytest.mark.parametrize("path, status", [
    ("/jobmanager/logs/..%2F..%2F..%2Fetc%2Fpasswd", 400),
    ("/jobmanager/logs/%2E%2E", 400),
    ("/jobmanager/logs/..", 400),
    ("/jobmanager/logs/../../etc/passwd", 404),  # no route has that many segments
    ("/jobmanager/logs/%2Fetc%2Fpasswd", 400),
    ("/jobmanager/logs/..%5C..%5Cwin.ini", 400),
    ("/jobmanager/logs/no-such-file.log", 404),
    ("/jobmanager/log?bytes=0", 400),
    ("/jobmanager/log?bytes=many", 400),
    ("/taskmanagers/{tm}/logs/..%2F..%2Fetc%2Fpasswd", 400),
    ("/taskmanagers/{tm}/logs/passwd", 404),
    ("/taskmanagers/{tm}/log?bytes=-5", 400),
    ("/taskmanagers/tm-nosuch/logs", 404),
    ("/taskmanagers/tm-nosuch/log", 404),
])
def test_log_names_with_paths_or_unknown_names_read_nothing(cluster, rest, path, status):
    if "{tm}" in path:
        tm = wait_for(lambda: get(rest, "/taskmanagers")["taskmanagers"], what="a TaskManager")[0]["id"]
        path = path.replace("{tm}", tm)
    answer_status, content_type, body = call(rest, path)
    assert answer_status == status, (path, body)
    assert content_type.startswith("application/json") and list(json.loads(body)) == ["errors"]
    assert b"root:" not in body


def test_prometheus_endpoints_of_the_jobmanager_and_a_taskmanager(cluster, rest):
    with Running(cluster, rest, steady_job, "prometheus") as job:
        reporter = cluster.jobmanager.metrics_reporter
        assert reporter is not None and reporter.host == "127.0.0.1"
        status, content_type, body = call(reporter.address, "/metrics")
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        jm_text = body.decode()
        assert "# TYPE pyflow_jobmanager_numRegisteredTaskManagers gauge" in jm_text
        assert re.search(r'^pyflow_jobmanager_numRunningJobs\{host="[^"]+"\} [1-9]', jm_text, re.M)
        assert re.search(rf'^pyflow_jobmanager_job_uptime\{{host="[^"]+",job_id="{job.jid}",'
                         r'job_name="prometheus"\} [1-9]', jm_text, re.M)
        assert "# TYPE pyflow_jobmanager_job_numRestarts counter" in jm_text
        assert "pyflow_jobmanager_Status_Process_Memory_RSS{" in jm_text

        # a TaskManager serves its own, at the address its log names
        source_tm = next(s["taskmanager-id"] for s in get(rest, f"/jobs/{job.jid}/vertices/{job.vertex('Source')}")
                         ["subtasks"])
        line = re.search(rf"Prometheus reporter of TaskManager {source_tm} listening on http://([\d.:]+)/metrics",
                         text(rest, f"/taskmanagers/{source_tm}/log"))
        assert line, "the TaskManager did not log its Prometheus address"

        def scrape() -> str:
            return call(line.group(1), "/metrics")[2].decode()

        source_rate = re.compile(r'^pyflow_taskmanager_job_task_numRecordsOutPerSecond\{([^}]*task_name="Source: '
                                 r'[^}]*)\} (\S+)$', re.M)

        def positive_rate() -> tuple[str, str] | None:
            found = source_rate.search(tm_text := scrape())
            return (tm_text, found.group(1)) if found and float(found.group(2)) > 0 else None

        tm_text, labels = wait_for(positive_rate, what="the source's rate on the TaskManager's reporter")
        assert "# TYPE pyflow_taskmanager_job_task_numRecordsOut counter" in tm_text
        assert "# TYPE pyflow_taskmanager_job_task_numRecordsOutPerSecond gauge" in tm_text
        assert f'job_id="{job.jid}"' in labels and f'tm_id="{source_tm}"' in labels
        assert 'subtask_index="0"' in labels and 'job_name="prometheus"' in labels
        assert 'pyflow_taskmanager_Status_Process_Memory_RSS{host="' in tm_text
        assert "pyflow_taskmanager_job_task_operator_numRecordsOut{" in tm_text
        assert "pyflow_taskmanager_job_task_busyTimeMsPerSecond{" in tm_text
