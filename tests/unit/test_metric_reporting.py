"""Metrics: meters and time shares with a controllable clock, job metrics, the Prometheus text
format and reporter (real sockets on 127.0.0.1), scopes and labels, log files, the REST shapes."""

from __future__ import annotations

import errno
import http.client
import logging
import os
import socket

import pytest

from pyflow.config import Configuration
from pyflow.errors import ConfigurationError
from pyflow.rest.metrics_handlers import backpressure_level, metric_query, vertex_metric_values
from pyflow.rest.router import Request
from pyflow.rest.snapshots import ExecutionSnapshot
from pyflow.runtime.log_files import find_log_file, list_log_files, read_log_tail
from pyflow.runtime.metrics.job import job_status_metrics
from pyflow.runtime.metrics.names import JOB_METRICS, MIN_WATERMARK, PROCESS_METRICS, TASK_METRICS
from pyflow.runtime.metrics.process import ProcessMetrics
from pyflow.runtime.metrics.prometheus import (
    CONTENT_TYPE, MetricSample, PrometheusReporter, PrometheusReporterConfiguration, prometheus_name, render,
    start_prometheus_reporter,
)
from pyflow.runtime.metrics.scopes import TaskScope, jobmanager_samples, taskmanager_samples
from pyflow.runtime.metrics.views import METER_WINDOW_S, UPDATE_INTERVAL_S, MetricViews, WaitTimer, time_shares


class Clock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---- wait timers and views ---------------------------------------------------------------------


def test_wait_timer_counts_finished_waits_and_the_one_going_on():
    clock = Clock()
    timer = WaitTimer(clock)
    timer.start()
    clock.now += 2.0
    timer.stop()
    assert timer.total_s() == 2.0 and not timer.waiting
    clock.now += 10.0  # not waiting: nothing added
    timer.start()
    clock.now += 0.5
    assert timer.waiting and timer.total_s() == 2.5  # the ongoing wait counts while it lasts
    clock.now += 0.5
    timer.stop()
    timer.stop()  # idempotent
    assert timer.total_s() == 3.0


def test_a_rate_is_over_the_last_minute_and_changes_once_per_interval():
    views = MetricViews()
    # 100 records per second for two minutes, read every second
    for t in range(0, 121):
        values = views.observe(float(t), {"numRecordsIn": 100 * t}, idle_ms=0.0, backpressured_ms=0.0)
    assert values["numRecordsInPerSecond"] == pytest.approx(100.0)
    # then 10 per second: the rate drops step by step, reaching 10 once a whole window passed
    seen = []
    for t in range(121, 121 + int(METER_WINDOW_S) + 10):
        total = 100 * 120 + 10 * (t - 120)
        seen.append(views.observe(float(t), {"numRecordsIn": total}, idle_ms=0.0,
                                  backpressured_ms=0.0)["numRecordsInPerSecond"])
    assert seen[-1] == pytest.approx(10.0)
    assert all(a >= b for a, b in zip(seen, seen[1:]))  # falling, never rising
    assert len(set(seen)) <= len(seen) / UPDATE_INTERVAL_S + 2  # updated every few seconds, not every read


def test_before_the_first_interval_values_are_over_the_time_since_the_first_sample():
    views = MetricViews()
    first = views.observe(10.0, {"numBytesOut": 0}, idle_ms=0.0, backpressured_ms=0.0)
    assert first == {"numBytesOutPerSecond": 0.0}  # no time has passed: no time shares yet
    early = views.observe(11.0, {"numBytesOut": 500}, idle_ms=250.0, backpressured_ms=500.0)
    assert early == {"numBytesOutPerSecond": 500.0, "idleTimeMsPerSecond": 250,
                     "backPressuredTimeMsPerSecond": 500, "busyTimeMsPerSecond": 250}


def test_time_shares_are_of_the_last_interval_and_add_up_to_1000():
    views = MetricViews()
    views.observe(0.0, {}, idle_ms=0.0, backpressured_ms=0.0)
    views.observe(5.0, {}, idle_ms=5000.0, backpressured_ms=0.0)  # idle the whole first interval
    values = views.observe(10.0, {}, idle_ms=5000.0, backpressured_ms=4000.0)  # then 80% backpressured
    assert values == {"idleTimeMsPerSecond": 0, "backPressuredTimeMsPerSecond": 800, "busyTimeMsPerSecond": 200}
    # reads within the interval return the same values
    assert views.observe(12.0, {}, idle_ms=5000.0, backpressured_ms=6000.0) == values


@pytest.mark.parametrize("elapsed, idle, backpressured", [
    (1.0, 0.0, 0.0), (1.0, 1000.0, 0.0), (1.0, 0.0, 1000.0), (3.0, 1000.0, 1000.0), (0.7, 333.3, 123.4),
    (1.0, 900.0, 900.0),  # a clock's jitter can overshoot: clamped, still 1000 in all
])
def test_time_shares_add_up_to_exactly_1000(elapsed, idle, backpressured):
    shares = time_shares(elapsed, idle, backpressured)
    assert sum(shares.values()) == 1000
    assert all(0 <= v <= 1000 for v in shares.values())


def test_a_counter_that_restarts_never_gives_a_negative_rate():
    views = MetricViews()
    views.observe(0.0, {"numRecordsOut": 1000}, idle_ms=0.0, backpressured_ms=0.0)
    assert views.observe(5.0, {"numRecordsOut": 10}, idle_ms=0.0, backpressured_ms=0.0)["numRecordsOutPerSecond"] == 0


def test_process_metrics_are_positive_numbers_of_this_process():
    clock = Clock()
    metrics = ProcessMetrics(clock=clock)
    values = metrics.snapshot()
    assert set(values) == set(PROCESS_METRICS)
    assert values["Status.Process.Memory.RSS"] > 0 and values["Status.Process.Threads.Count"] >= 1
    assert 0.0 <= values["Status.Process.CPU.Load"] <= 1.0
    sum(i * i for i in range(200_000))  # use some CPU
    clock.now += UPDATE_INTERVAL_S
    assert metrics.snapshot()["Status.Process.CPU.Time"] >= values["Status.Process.CPU.Time"]


# ---- job metrics ---------------------------------------------------------------------------------


def test_job_metrics_follow_flinks_uptime_and_downtime():
    running = job_status_metrics("RUNNING", {"CREATED": 1.0, "RUNNING": 2.0}, now_s=5.0, num_restarts=0)
    assert set(running) == set(JOB_METRICS)
    assert (running["uptime"], running["downtime"], running["numRestarts"]) == (3000, 0, 0)
    created = job_status_metrics("CREATED", {"CREATED": 1.0}, now_s=5.0, num_restarts=0)
    assert (created["uptime"], created["downtime"]) == (0, 0)
    failing = job_status_metrics("FAILING", {"RUNNING": 2.0, "FAILING": 4.0}, now_s=5.5, num_restarts=2)
    assert (failing["uptime"], failing["downtime"], failing["numRestarts"]) == (0, 1500, 2)
    for status in ("FINISHED", "CANCELED", "FAILED"):
        ended = job_status_metrics(status, {"RUNNING": 2.0}, now_s=9.0, num_restarts=0)
        assert (ended["uptime"], ended["downtime"]) == (-1, -1)


def test_job_metrics_of_a_job_without_checkpoints():
    m = job_status_metrics("RUNNING", {"RUNNING": 0.0}, now_s=1.0, num_restarts=0)
    assert m["numberOfCompletedCheckpoints"] == m["numberOfFailedCheckpoints"] == 0
    assert m["numberOfInProgressCheckpoints"] == m["totalNumberOfCheckpoints"] == 0
    assert m["lastCheckpointDuration"] == m["lastCheckpointSize"] == m["lastCheckpointRestoreTimestamp"] == -1


# ---- Prometheus ------------------------------------------------------------------------------------


def test_prometheus_names_follow_flinks_reporter():
    assert prometheus_name(("taskmanager", "job", "task"), "numRecordsInPerSecond") == \
        "pyflow_taskmanager_job_task_numRecordsInPerSecond"
    assert prometheus_name(("jobmanager",), "Status.Process.Memory.RSS") == \
        "pyflow_jobmanager_Status_Process_Memory_RSS"
    assert prometheus_name(("taskmanager",), "odd-name é") == "pyflow_taskmanager_odd_name__"


def test_the_text_format_groups_families_escapes_labels_and_spells_special_values():
    scope = ("taskmanager", "job", "task")
    text = render([
        MetricSample(scope, "numRecordsIn", "counter", 5, (("task_name", 'Map "x"\\y\nz'), ("subtask_index", "0"))),
        MetricSample(("taskmanager",), "Status.Process.CPU.Load", "gauge", 0.25),
        MetricSample(scope, "numRecordsIn", "counter", 7, (("task_name", "Sink"), ("subtask_index", "1"))),
        MetricSample(scope, "currentInputWatermark", "gauge", float("nan")),
        MetricSample(scope, "busyTimeMsPerSecond", "gauge", float("inf")),
        MetricSample(scope, "idleTimeMsPerSecond", "gauge", float("-inf")),
        MetricSample(scope, "currentOutputWatermark", "gauge", MIN_WATERMARK),
    ])
    lines = text.splitlines()
    name = "pyflow_taskmanager_job_task_numRecordsIn"
    # one HELP and TYPE per family, before its samples, which stay together
    assert lines[:4] == [
        f"# HELP {name} numRecordsIn (scope taskmanager.job.task)",
        f"# TYPE {name} counter",
        f'{name}{{task_name="Map \\"x\\"\\\\y\\nz",subtask_index="0"}} 5',
        f'{name}{{task_name="Sink",subtask_index="1"}} 7',
    ]
    assert "pyflow_taskmanager_Status_Process_CPU_Load 0.25" in lines
    assert "# TYPE pyflow_taskmanager_Status_Process_CPU_Load gauge" in lines
    assert "pyflow_taskmanager_job_task_currentInputWatermark NaN" in lines
    assert "pyflow_taskmanager_job_task_busyTimeMsPerSecond +Inf" in lines
    assert "pyflow_taskmanager_job_task_idleTimeMsPerSecond -Inf" in lines
    assert "pyflow_taskmanager_job_task_currentOutputWatermark -9223372036854775808" in lines
    assert text.endswith("\n") and render([]) == ""


def test_reporter_configuration_takes_a_port_or_a_range():
    def conf(port: str, **more: str) -> PrometheusReporterConfiguration | None:
        settings = {"metrics.reporter.prom.port": port, **more}
        return PrometheusReporterConfiguration.from_config(Configuration(settings))

    assert conf("") is None
    assert conf("9249").ports == (9249,) and conf("9249").host == "127.0.0.1"
    assert conf(" 9249 - 9251 ").ports == (9249, 9250, 9251)
    assert conf("0", **{"metrics.reporter.prom.host": "0.0.0.0"}).host == "0.0.0.0"
    for bad in ("92a9", "9260-9249", "70000", "9249,9250", "-1"):
        with pytest.raises(ConfigurationError, match="metrics.reporter.prom.port.*9249-9260"):
            conf(bad)


def _get(address: str, path: str) -> tuple[int, str, str]:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        conn.close()


def test_the_reporter_serves_metrics_over_http_and_takes_the_next_free_port():
    samples = [MetricSample(("jobmanager",), "numRunningJobs", "gauge", 3, (("host", "h"),))]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port = taken.getsockname()[1]
        with socket.socket() as probe:  # a port free right now, after the taken one
            probe.bind(("127.0.0.1", 0))
            free_port = probe.getsockname()[1]
        reporter = PrometheusReporter(lambda: samples, host="127.0.0.1", ports=(busy_port, free_port)).start()
        try:
            assert reporter.port == free_port and reporter.address == f"127.0.0.1:{free_port}"
            status, content_type, body = _get(reporter.address, "/metrics")
            assert (status, content_type) == (200, CONTENT_TYPE)
            assert 'pyflow_jobmanager_numRunningJobs{host="h"} 3' in body.splitlines()
            assert _get(reporter.address, "/nothing")[0] == 404
            samples.append(MetricSample(("jobmanager",), "taskSlotsTotal", "gauge", 4))
            assert "pyflow_jobmanager_taskSlotsTotal 4" in _get(reporter.address, "/metrics")[2]
        finally:
            reporter.close()
            reporter.close()  # idempotent


def test_a_failing_collection_answers_500_and_the_reporter_goes_on():
    calls = []

    def collect():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("broken gauge")
        return []

    reporter = PrometheusReporter(collect, host="127.0.0.1", ports=(0,)).start()
    try:
        status, _, body = _get(reporter.address, "/metrics")
        assert status == 500 and "broken gauge" in body
        assert _get(reporter.address, "/metrics")[0] == 200
    finally:
        reporter.close()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_without_a_free_port_the_process_goes_on_without_a_reporter():
    records = Records()
    logger = logging.getLogger("pyflow.runtime.metrics.prometheus")
    logger.addHandler(records)
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            conf = Configuration({"metrics.reporter.prom.port": str(taken.getsockname()[1])})
            assert start_prometheus_reporter(conf, list, "TaskManager tm-x") is None
    finally:
        logger.removeHandler(records)
    (message,) = records.messages
    assert "TaskManager tm-x" in message and "9249-9260" in message
    assert start_prometheus_reporter(Configuration(), list, "off") is None


def test_reporter_bind_errors_other_than_a_taken_port_are_raised():
    reporter = PrometheusReporter(list, host="203.0.113.1", ports=(0,))  # not an address of this host
    with pytest.raises(OSError) as info:
        reporter.start()
    assert info.value.errno != errno.EADDRINUSE


# ---- scopes ----------------------------------------------------------------------------------------


def _task_metrics() -> dict:
    return {"numRecordsIn": 10, "numRecordsOutPerSecond": 2.5, "state": "RUNNING", "failureType": "",
            "operators": {"3": {"name": "Map", "numRecordsIn": 10, "numRecordsOut": 10,
                                "currentInputWatermark": MIN_WATERMARK}}}


def test_taskmanager_samples_carry_flinks_scopes_and_labels():
    scope = TaskScope(job_id="j1", job_name="job", task_id="v1", task_name="Map (1/2)", execution_id="e1",
                      attempt_number=0, subtask_index=1)
    samples = taskmanager_samples("tm-1", "host1", {"Status.Process.Memory.RSS": 123}, [(scope, _task_metrics())])
    by_name = {prometheus_name(s.scope, s.name): s for s in samples}
    rss = by_name["pyflow_taskmanager_Status_Process_Memory_RSS"]
    assert dict(rss.labels) == {"host": "host1", "tm_id": "tm-1"} and rss.value == 123
    records_in = by_name["pyflow_taskmanager_job_task_numRecordsIn"]
    assert records_in.kind == "counter" and records_in.value == 10
    assert dict(records_in.labels) == {"host": "host1", "tm_id": "tm-1", "job_id": "j1", "job_name": "job",
                                       "task_id": "v1", "task_name": "Map (1/2)", "task_attempt_id": "e1",
                                       "task_attempt_num": "0", "subtask_index": "1"}
    assert by_name["pyflow_taskmanager_job_task_numRecordsOutPerSecond"].kind == "gauge"
    operator = by_name["pyflow_taskmanager_job_task_operator_numRecordsOut"]
    assert dict(operator.labels)["operator_name"] == "Map" and dict(operator.labels)["operator_id"] == "3"
    assert "pyflow_taskmanager_job_task_state" not in by_name  # only metrics, not every field


def test_jobmanager_samples_carry_jobs_as_labels():
    samples = jobmanager_samples("h", {"numRunningJobs": 1}, {"Status.Process.CPU.Load": 0.5},
                                 [("j1", "job one", {"uptime": 10, "numRestarts": 0})])
    text = render(samples)
    assert 'pyflow_jobmanager_numRunningJobs{host="h"} 1' in text
    assert 'pyflow_jobmanager_Status_Process_CPU_Load{host="h"} 0.5' in text
    assert 'pyflow_jobmanager_job_uptime{host="h",job_id="j1",job_name="job one"} 10' in text
    assert "# TYPE pyflow_jobmanager_job_numRestarts counter" in text


# ---- REST shapes -----------------------------------------------------------------------------------


def _snapshot(index: int, metrics: dict) -> ExecutionSnapshot:
    return ExecutionSnapshot(vertex_id="v", subtask_index=index, task_name="t", execution_id=f"e{index}",
                             state="RUNNING", state_timestamps={}, resource_id="tm", host="h", data_port=1,
                             metrics=metrics, error="", failure_type="")


def test_vertex_metric_ids_are_per_subtask_and_operator_as_in_flink():
    metrics = {**_task_metrics(), "operators": {"3": {"name": "Source: my.src, 1", "numRecordsOut": 4}}}
    values = vertex_metric_values([_snapshot(1, metrics), _snapshot(0, {"numRecordsIn": 1})])
    assert values == {"0.numRecordsIn": 1, "1.numRecordsIn": 10, "1.numRecordsOutPerSecond": 2.5,
                      "1.Source__my_src__1.numRecordsOut": 4}
    assert set(name.split(".", 1)[1] for name in values if name.count(".") == 1) <= set(TASK_METRICS)


def test_metric_queries_list_ids_or_give_the_values_asked_for():
    values = {"uptime": 10, "numRestarts": 0, "load": 0.5}
    assert metric_query(values, Request("GET", "/")) == [{"id": "uptime"}, {"id": "numRestarts"}, {"id": "load"}]
    asked = Request("GET", "/", query={"get": ["load,nosuch", "uptime"]})
    assert metric_query(values, asked) == [{"id": "load", "value": "0.5"}, {"id": "uptime", "value": "10"}]


@pytest.mark.parametrize("ratio, level", [(0.0, "ok"), (0.1, "ok"), (0.100001, "low"), (0.5, "low"),
                                          (0.51, "high"), (1.0, "high")])
def test_backpressure_levels_are_flinks(ratio, level):
    assert backpressure_level(ratio) == level


# ---- log files -------------------------------------------------------------------------------------


def test_log_files_are_the_regular_files_of_the_directory_only(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "pyflow-tm.log").write_text("line 1\n")
    (logs / "pyflow-tm.out").write_text("")
    (logs / "sub").mkdir()
    (logs / "sub" / "hidden.log").write_text("no")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    os.symlink(secret, logs / "link.log")
    listing = list_log_files(logs)
    assert [f.name for f in listing] == ["pyflow-tm.log", "pyflow-tm.out"]
    assert listing[0].size == 7 and listing[0].mtime > 0
    assert find_log_file(logs, "pyflow-tm.log") == logs / "pyflow-tm.log"
    for name in ("link.log", "sub", "sub/hidden.log", "../secret.txt", str(secret), "..", ".", ""):
        assert find_log_file(logs, name) is None, name
    assert list_log_files(tmp_path / "missing") == []


def test_a_log_file_is_read_from_its_end_up_to_a_limit(tmp_path):
    path = tmp_path / "big.log"
    path.write_bytes(b"".join(b"line %06d\n" % i for i in range(10_000)))  # 120 000 bytes
    tail = read_log_tail(path, 24)
    assert tail.truncated and tail.size == 120_000 and tail.data == b"line 009998\nline 009999\n"
    whole = read_log_tail(path, 10**9)
    assert not whole.truncated and len(whole.data) == 120_000 and whole.name == "big.log"


def test_the_input_gate_counts_its_waits_for_data_as_idle_time():
    from pyflow.runtime.network import ChannelSpec, InputGate, NetworkEnvironment

    with NetworkEnvironment() as env:
        gate = env.create_input_gate([ChannelSpec("idle-test", 0, *env.address)])
        assert gate.idle_time_ms == 0.0
        assert gate.poll(timeout=0.2) is InputGate.TIMEOUT  # nobody produces: the task waits
        assert gate.idle_time_ms >= 150.0 and not gate.idle_timer.waiting
