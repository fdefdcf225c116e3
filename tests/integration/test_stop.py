"""Stopping jobs over REST (Flink's stop: sources end their input, the job drains and finishes) and
savepoint triggers (an honest failure: no checkpointing yet), on a real embedded cluster."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

import psutil
import pyarrow.csv as pacsv
import pytest

from pyflow import FileSink, RuntimeExecutionMode, TumblingEventTimeWindows, WatermarkStrategy
from pyflow.testing import task_manager_pids, test_cluster, wait_for

SETTINGS = {"pipeline.auto-watermark-interval": "20 ms", "execution.buffer-timeout": "10 ms",
            "taskmanager.numberOfTaskSlots": 2}
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


def call(address: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        response = conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else None
    finally:
        conn.close()




@pytest.fixture(scope="module")
def cluster():
    with test_cluster(SETTINGS) as c:
        yield c
        pids = list(task_manager_pids(c).values())
    assert pids
    for pid in pids:  # every TaskManager process ended with the cluster
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.fixture(scope="module")
def rest(cluster) -> str:
    return cluster.jobmanager.rest_address


def job_state(rest: str, job_id: str) -> str:
    status, body = call(rest, "GET", f"/jobs/{job_id}")
    assert status == 200, body
    return body["state"]


def wait_running(rest: str, job_id: str, *, records: bool = True) -> None:
    """Every subtask RUNNING, and (with ``records``) data through the job's first vertex."""
    def running() -> bool:
        status, job = call(rest, "GET", f"/jobs/{job_id}")
        assert status == 200 and job["state"] in ("CREATED", "RUNNING"), job
        total = sum(job["status-counts"].values())
        return job["status-counts"]["RUNNING"] == total and (
            not records or job["vertices"][0]["metrics"]["write-records"] > 0)

    wait_for(running, what=f"job {job_id} to run")


def trigger(rest: str, job_id: str, operation: str, body: Any = None) -> str:
    status, answer = call(rest, "POST", f"/jobs/{job_id}/{operation}", body)
    assert status == 202, answer
    assert set(answer) == {"request-id"} and len(answer["request-id"]) == 32
    return answer["request-id"]


def completed(rest: str, job_id: str, trigger_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def poll():
        status, answer = call(rest, "GET", f"/jobs/{job_id}/savepoints/{trigger_id}")
        assert status == 200, answer
        assert answer["status"]["id"] in ("IN_PROGRESS", "COMPLETED")
        return answer["operation"] if answer["status"]["id"] == "COMPLETED" else None

    return wait_for(poll, timeout, what=f"operation {trigger_id} to complete")


def read_sink(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for part in sorted(path.glob("*.csv")):
        rows.extend(pacsv.read_csv(part).to_pylist())
    return rows


def assert_prefixes(values: list[int], parallelism: int) -> None:
    """A generator's subtask r emits r, r + p, r + 2p, ...: what arrived is, per subtask, an
    unbroken prefix of that sequence (nothing emitted was lost), each value once."""
    assert len(values) == len(set(values))
    for r in range(parallelism):
        mine = sorted(v for v in values if v % parallelism == r)
        assert mine == list(range(r, r + parallelism * len(mine), parallelism)), f"subtask {r} lost records"


@pytest.fixture(scope="module")
def running_job(cluster, rest):
    """An unbounded job that stays RUNNING (savepoint and malformed-request tests); cancelled after."""
    env = cluster.environment()
    env.set_parallelism(1)
    env.from_generator(lambda i: i, rate=200).map(lambda x: x).filter(lambda x: False).print()
    client = env.execute_async("stop tests: keeps running")
    wait_running(rest, client.job_id, records=False)  # one chained task: no network records to see
    yield client
    client.cancel()


@pytest.fixture(scope="module")
def finished_job(cluster) -> str:
    env = cluster.environment()
    env.from_collection([1, 2, 3]).map(lambda x: x).print()
    return env.execute("stop tests: finished").get_job_id()


def test_stop_drains_an_unbounded_job_to_finished_with_its_sink_output_complete(cluster, rest, tmp_path):
    env = cluster.environment()
    env.set_parallelism(2)
    (env.from_generator(lambda i: {"i": i}, rate=2000)
        .rebalance()                                   # records cross the network to the sink
        .map(lambda r: r)
        .sink_to(FileSink(str(tmp_path), format="csv")))
    client = env.execute_async("stop: unbounded")
    wait_running(rest, client.job_id)

    trigger_id = trigger(rest, client.job_id, "stop", {"drain": False, "targetDirectory": "/tmp/{unused}"})
    operation = completed(rest, client.job_id, trigger_id)

    assert operation["location"] is None  # no savepoint was taken: there is no checkpointing yet
    assert "stopped gracefully" in operation["note"] and "No savepoint was taken" in operation["note"]
    assert "drain was false" in operation["note"] and "/tmp/{unused}" in operation["note"]
    assert job_state(rest, client.job_id) == "FINISHED"
    result = client.get_job_execution_result(timeout=10)  # FINISHED, not cancelled: no exception
    emitted = result.record_counts()["Source: Generator Source"]
    values = [row["i"] for row in read_sink(tmp_path)]
    # the FileSink publishes its part files only when its input ended (a cancelled sink drops them)
    assert emitted > 0 and len(values) == emitted
    assert_prefixes(values, 2)


def test_stop_fires_every_event_time_window_of_what_the_sources_emitted(cluster, rest, tmp_path):
    env = cluster.environment()
    env.set_parallelism(1)
    (env.from_generator(lambda i: {"key": i % 3, "ts": i * 10}, rate=1000)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner("ts"))
        .key_by("key")
        .window(TumblingEventTimeWindows.of(1000))     # 100 records per window, over 3 keys
        .count()
        .sink_to(FileSink(str(tmp_path), format="csv")))
    client = env.execute_async("stop: event-time windows")
    wait_running(rest, client.job_id)
    time.sleep(0.5)  # several windows' worth of records

    operation = completed(rest, client.job_id, trigger(rest, client.job_id, "stop"))

    assert operation["location"] is None and job_state(rest, client.job_id) == "FINISHED"
    emitted = client.get_job_execution_result(timeout=10).record_counts()["Source: Generator Source"]
    expected: dict[tuple[int, int], int] = {}
    for i in range(emitted):  # one source subtask: it emitted exactly the indices 0 .. emitted-1
        window = (i * 10) // 1000 * 1000
        expected[(i % 3, window)] = expected.get((i % 3, window), 0) + 1
    rows = read_sink(tmp_path)
    # every window fired, the last (partial) ones too: the stop's final watermark is MAX
    assert sorted((r["key"], r["window_start"], r["count"]) for r in rows) == sorted(
        (k, w, c) for (k, w), c in expected.items())
    assert len(expected) >= 6


def test_a_source_blocked_in_a_sleeping_generator_stops_promptly(cluster, rest, tmp_path):
    def slow(i: int) -> dict[str, int]:
        time.sleep(0.5)  # the first batch (64 records) would take 32 s
        return {"i": i}

    env = cluster.environment()
    env.set_parallelism(1)
    env.from_generator(slow).map(lambda r: r).sink_to(FileSink(str(tmp_path), format="csv"))
    client = env.execute_async("stop: sleeping source")
    wait_running(rest, client.job_id, records=False)
    time.sleep(1.2)  # a few records into the first batch

    trigger_id = trigger(rest, client.job_id, "stop")
    asked = time.monotonic()
    operation = completed(rest, client.job_id, trigger_id, timeout=20)  # well before the 32 s batch
    # the source checks the stop before every row: it ends after the row in progress (0.5 s)
    assert time.monotonic() - asked < 3.0

    assert operation["location"] is None and job_state(rest, client.job_id) == "FINISHED"
    emitted = client.get_job_execution_result(timeout=10).record_counts()["Source: Generator Source"]
    values = [row["i"] for row in read_sink(tmp_path)]
    # the records made before the stop were emitted, none lost, none made twice
    assert 1 <= emitted < 64 and sorted(values) == list(range(emitted))


def test_a_savepoint_trigger_fails_honestly_and_the_job_keeps_running(rest, running_job):
    jid = running_job.job_id
    for body in (None, {"target-directory": "/tmp/savepoints", "cancel-job": True}):
        operation = completed(rest, jid, trigger(rest, jid, "savepoints", body))
        assert set(operation) == {"failure-cause"}
        cause = operation["failure-cause"]
        assert cause["class"] == "pyflow.errors.NotYetSupportedError"
        assert "Savepoints need checkpointing" in cause["stack-trace"]
        assert f"pyflow stop {jid}" in cause["stack-trace"]
    assert "it was not cancelled either" in cause["stack-trace"]
    time.sleep(0.5)
    assert job_state(rest, jid) == "RUNNING"  # neither the failed savepoint nor cancel-job ended it


def test_a_client_chosen_trigger_id_makes_a_trigger_idempotent(rest, running_job):
    jid = running_job.job_id
    chosen = "feedc0de" * 4
    assert trigger(rest, jid, "savepoints", {"triggerId": chosen}) == chosen
    assert trigger(rest, jid, "savepoints", {"triggerId": chosen}) == chosen
    assert "failure-cause" in completed(rest, jid, chosen)


def test_unknown_jobs_and_trigger_ids_are_404(rest, running_job):
    for method, path in (("POST", f"/jobs/{UNKNOWN_ID}/stop"), ("POST", f"/jobs/{UNKNOWN_ID}/savepoints"),
                         ("GET", f"/jobs/{UNKNOWN_ID}/savepoints/{UNKNOWN_ID}"),
                         ("GET", f"/v1/jobs/{running_job.job_id}/savepoints/{UNKNOWN_ID}")):
        status, body = call(rest, method, path)
        assert status == 404, (method, path, body)
        assert len(body["errors"]) == 1 and UNKNOWN_ID in body["errors"][0]


def test_stopping_or_savepointing_a_finished_job_is_409(rest, finished_job):
    for operation in ("stop", "savepoints"):
        status, body = call(rest, "POST", f"/jobs/{finished_job}/{operation}", {})
        assert status == 409, body
        assert "already reached the terminal state FINISHED" in body["errors"][0]


def test_stopping_a_batch_job_is_409_and_it_keeps_running(cluster, rest):
    env = cluster.environment()
    env.set_parallelism(1)
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    env.from_generator(lambda i: (time.sleep(0.01), i)[1], count=100_000).map(lambda x: x).print()
    client = env.execute_async("stop: batch")
    try:
        wait_running(rest, client.job_id, records=False)
        status, body = call(rest, "POST", f"/jobs/{client.job_id}/stop")
        assert status == 409 and "BATCH mode" in body["errors"][0], body
        assert job_state(rest, client.job_id) == "RUNNING"
    finally:
        client.cancel()
    wait_for(lambda: job_state(rest, client.job_id) == "CANCELED", what="the batch job to cancel")


@pytest.mark.parametrize("operation,body,words", [
    ("stop", b"[1, 2]", "must be a JSON object"),
    ("stop", b"{not json", "not valid JSON"),
    ("stop", {"drain": "yes"}, "'drain' must be true or false"),
    ("stop", {"targetDirectory": 7}, "'targetDirectory' must be a string or null"),
    ("stop", {"drain": True, "savepointPath": "x"}, "Unknown field 'savepointPath'"),
    ("stop", {"triggerId": "abc"}, "'triggerId' must be 32 lower-case hexadecimal digits"),
    ("savepoints", {"cancel-job": 1}, "'cancel-job' must be true or false"),
    ("savepoints", {"formatType": "ZIP"}, "'formatType' must be one of CANONICAL, NATIVE"),
    ("savepoints", {"targetDirectory": "/x"}, "Unknown field 'targetDirectory'"),
])
def test_malformed_bodies_are_400_and_change_nothing(rest, running_job, operation, body, words):
    status, answer = call(rest, "POST", f"/jobs/{running_job.job_id}/{operation}", body)
    assert status == 400 and set(answer) == {"errors"} and words in answer["errors"][0], answer
    assert job_state(rest, running_job.job_id) == "RUNNING"
