"""Jobs submitted to a session cluster over REST: the ``remote`` target, the REST client and the
``pyflow`` CLI verbs, against a real embedded cluster's REST endpoint on 127.0.0.1.

The CLI runs in subprocesses (``python -m pyflow.cli.main``), each stopped by its pid; the
cluster's TaskManagers are stopped with it, and the module checks that no process it started is
left.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psutil
import pytest

from pyflow import JobExecutionError, StreamExecutionEnvironment
from pyflow.rest.client import ClusterUnreachableError, RestClientError, RestClusterClient
from pyflow.rest.job_graph_file import encode_job_graph
from pyflow.rest.multipart import Part, encode_multipart
from pyflow.testing import task_manager_pids, test_cluster, wait_for

ROOT = str(Path(__file__).resolve().parents[2])
MAX_CONTENT_LENGTH = 256 * 1024
_started: list[subprocess.Popen] = []


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def cluster(upload_dir):
    with test_cluster({"rest.server.max-content-length": MAX_CONTENT_LENGTH, "web.upload.dir": str(upload_dir),
                       "taskmanager.numberOfTaskSlots": 2}) as c:
        yield c
        pids = list(task_manager_pids(c).values())
    for p in _started:  # every CLI the tests started has ended (each test stops its own)
        assert p.poll() is not None, f"pyflow CLI (pid {p.pid}) is still running"
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


@pytest.fixture(scope="module")
def address(cluster) -> str:
    return cluster.jobmanager.rest_address


@pytest.fixture(scope="module")
def rest(address) -> RestClusterClient:
    return RestClusterClient(address)


def remote_env(address: str, **settings: Any) -> StreamExecutionEnvironment:
    host, port = address.rsplit(":", 1)
    return StreamExecutionEnvironment.get_execution_environment(
        {"execution.target": "remote", "rest.address": host, "rest.port": port, **settings})




def job_state(rest: RestClusterClient, job_id: str) -> str:
    return rest.job_details(job_id)["state"]


def tasks_running(rest: RestClusterClient, job_id: str) -> bool:
    """The job RUNNING with every task deployed and running (a job is RUNNING before its slots
    arrive; the tests cancel and stop jobs whose tasks run)."""
    job = rest.job_details(job_id)
    return job["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in job["vertices"])


def pyflow(*args: str, cwd: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    """Run the CLI to its end (killed by its pid if it overstays)."""
    proc = start_pyflow(*args, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def start_pyflow(*args: str, cwd: str | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "pyflow.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd or ROOT, env=env)
    _started.append(proc)
    return proc


def write_job(tmp_path: Path, body: str, name: str = "job.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


UNBOUNDED_JOB = """
    from pyflow import StreamExecutionEnvironment
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_generator(lambda i: i, rate=200).map(lambda x: x * 2).filter(lambda x: x < 0).print()
    env.execute("{name}")
"""


def submitted_job_id(stdout: str) -> str:
    match = re.search(r"Job has been submitted with JobID ([0-9a-f]{32})", stdout)
    assert match, stdout
    return match.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the remote target from the API --------------------------------------------------------------


def test_attached_remote_job_returns_its_result(address, rest):
    env = remote_env(address, **{"parallelism.default": 2})
    env.from_sequence(1, 1000).map(lambda x: (x % 3, x)).key_by(lambda r: r[0]).sum(1) \
        .filter(lambda r: False).print()
    client = env.execute_async("remote attached")
    assert client.rest_address == address
    result = client.get_job_execution_result(timeout=60)
    assert result.job_id == client.job_id and result.job_name == "remote attached"
    assert result.net_runtime > 0
    assert result.record_counts()["Source: Sequence Source"] == 1000
    assert result.record_counts()["Keyed Aggregation"] == 1000
    assert client.get_job_status().value == "FINISHED"
    assert client.details()["state"] == "FINISHED"


def test_a_failing_remote_job_raises_with_the_users_traceback(address):
    def parse(value):
        if value == 7:
            raise ValueError("seven is not allowed")
        return value

    env = remote_env(address)
    env.from_sequence(1, 10).map(parse).print()
    with pytest.raises(JobExecutionError) as failure:
        env.execute("remote failing")
    assert "Job 'remote failing'" in str(failure.value) and "failed" in str(failure.value)
    assert "in parse" in failure.value.cause and "ValueError: seven is not allowed" in failure.value.cause


def test_execute_and_collect_streams_a_remote_jobs_results_back(address):
    env = remote_env(address, **{"parallelism.default": 2})
    with env.from_sequence(1, 50).map(lambda x: x * x).execute_and_collect("remote collect") as results:
        assert sorted(results) == [x * x for x in range(1, 51)]


def test_cancelling_a_remote_job_ends_it_canceled(address, rest):
    env = remote_env(address)
    env.from_generator(lambda i: i, rate=100).print()
    client = env.execute_async("remote cancel")
    wait_for(lambda: tasks_running(rest, client.job_id), what="the job's tasks to run")
    client.cancel()
    from pyflow import JobCancellationError

    with pytest.raises(JobCancellationError):
        client.get_job_execution_result(timeout=30)
    client.cancel()  # again: the job already ended, nothing happens


# ---- POST /jobs: bad requests get 4xx, and the cluster keeps working --------------------------------


def post_jobs(address: str, body: bytes, content_type: str | None) -> tuple[int, Any]:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        conn.request("POST", "/v1/jobs", body=body, headers={"Content-Type": content_type} if content_type else {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def submission(graph_bytes: bytes, request: dict | None = None, files: dict[str, bytes] | None = None,
               request_part: bytes | None = None) -> tuple[bytes, str]:
    request = request or {"jobGraphFileName": "job.graph"}
    parts = [Part("request", request_part if request_part is not None else json.dumps(request).encode())]
    parts += [Part(f"file_{i}", data, filename=name) for i, (name, data) in
              enumerate({"job.graph": graph_bytes, **(files or {})}.items())]
    return encode_multipart(parts)


def small_graph(name: str = "small"):
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1, 2, 3]).map(lambda x: x + 1).filter(lambda x: False).print()
    return env.get_job_graph(name)


def test_bad_submissions_get_4xx_and_leave_nothing_behind(address, rest, upload_dir):
    graph = encode_job_graph(small_graph())
    good, good_type = submission(graph)
    cases = [
        (good, "application/json", 400, "not multipart/form-data"),
        (good, None, 400, "no Content-Type"),
        (b"--x\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n{}", "multipart/form-data; boundary=x",
         400, "truncated"),
        (*submission(graph, request_part=b"not json"), 400, "'request' part is not JSON"),
        (*submission(graph, request={"jobArtifactFileNames": []}), 400, "no 'jobGraphFileName'"),
        (*submission(graph, request={"jobGraphFileName": "other.graph"}), 400, "no file part has that filename"),
        (*submission(graph, request={"jobGraphFileName": "job.graph", "jobJarFileNames": ["a.jar"]}), 400,
         "'jobJarFileNames' must be empty"),
        (*submission(graph, request={"jobGraphFileName": "job.graph", "jobArtifactFileNames": [
            {"entryName": "../escape.py", "fileName": "a.py"}]}, files={"a.py": b"x"}), 400, "not a plain file name"),
        (*submission(b"\x80\x04\x95 a pickle, not a job graph"), 400, "is corrupt: The job graph file is not"),
        (*submission(graph[:-5]), 400, "is corrupt"),
        (*submission(graph + b"x" * MAX_CONTENT_LENGTH), 413, "max-content-length"),
    ]
    for body, content_type, status, text in cases:
        answer_status, answer = post_jobs(address, body, content_type)
        assert answer_status == status, (text, answer)
        assert list(answer) == ["errors"] and len(answer["errors"]) == 1 and text in answer["errors"][0], answer
    assert not [j for j in rest.list_jobs() if j["name"] == "small"]  # nothing was submitted
    assert list(upload_dir.iterdir()) == []

    # a good submission is accepted, the same job id again is a conflict
    status, answer = post_jobs(address, good, good_type)
    assert status == 202 and answer == {"jobUrl": f"/jobs/{decode_id(graph)}"}
    status, answer = post_jobs(address, good, good_type)
    assert status == 409 and "already submitted" in answer["errors"][0]
    wait_for(lambda: job_state(rest, decode_id(graph)) == "FINISHED", what="the good job to finish")


def decode_id(graph_bytes: bytes) -> str:
    from pyflow.rest.job_graph_file import decode_job_graph

    return decode_job_graph(graph_bytes).job_id


def test_an_oversized_job_is_refused_by_the_client_with_the_limit_named(address, rest):
    env = remote_env(address)
    env.from_collection([f"{i}:" + "x" * 1000 for i in range(2 * MAX_CONTENT_LENGTH // 1000)]) \
        .filter(lambda x: False).print()
    with pytest.raises(RestClientError, match="rest.server.max-content-length"):
        env.execute("too large")
    # the cluster keeps working
    env = remote_env(address)
    env.from_collection([1, 2, 3]).filter(lambda x: False).print()
    assert env.execute("after the large one").record_counts()["Source: Collection Source"] == 3


def test_an_unreachable_cluster_is_one_clear_error(tmp_path):
    port = free_port()
    env = remote_env(f"127.0.0.1:{port}")
    env.from_collection([1]).print()
    with pytest.raises(ClusterUnreachableError) as failure:
        env.execute()
    assert failure.value.message == f"Cannot reach the JobManager's REST endpoint at 127.0.0.1:{port} (connection refused)"
    assert "scripts/start-cluster.sh" in failure.value.hint and "-m host:port" in failure.value.hint

    job = write_job(tmp_path, "from pyflow import StreamExecutionEnvironment\n"
                              "env = StreamExecutionEnvironment.get_execution_environment()\n"
                              "env.from_collection([1]).print()\nenv.execute()\n")
    result = pyflow("run", "-m", f"127.0.0.1:{port}", job)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: Cannot reach the JobManager's REST endpoint at 127.0.0.1:{port} (connection refused).",
        "Hint: start a session cluster with scripts/start-cluster.sh, or give the REST address of a running one "
        "with -m host:port (or rest.address and rest.port)"]
    result = pyflow("list", "-m", f"127.0.0.1:{port}")
    assert result.returncode == 1 and result.stderr.startswith("Error: Cannot reach"), result.stderr


# ---- the CLI -------------------------------------------------------------------------------------


def test_cli_detached_run_list_and_cancel(tmp_path, address, rest, upload_dir):
    job = write_job(tmp_path, UNBOUNDED_JOB.format(name="detached"))
    result = pyflow("run", "-m", address, "-d", job)
    assert result.returncode == 0, result.stderr
    job_id = submitted_job_id(result.stdout)
    assert result.stdout.strip().splitlines() == [f"Job has been submitted with JobID {job_id}"]
    wait_for(lambda: tasks_running(rest, job_id), what="the detached job to run")
    # the job file is kept with the job while it runs
    assert (upload_dir / job_id / "job.py").read_text() == Path(job).read_text()

    listed = pyflow("list", "-m", address)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[:2] == ["Waiting for response...", "------------------ Running/Restarting Jobs -------------------"]
    assert any(re.fullmatch(rf"\d\d\.\d\d\.\d{{4}} \d\d:\d\d:\d\d : {job_id} : detached \(RUNNING\)", line)
               for line in lines), lines
    assert "No scheduled jobs." in lines

    cancelled = pyflow("cancel", "-m", address, job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.splitlines() == [f"Cancelling job {job_id}.", f"Cancelled job {job_id}."]
    wait_for(lambda: job_state(rest, job_id) == "CANCELED", what="CANCELED")
    wait_for(lambda: not (upload_dir / job_id).exists(), what="the job's files to be deleted")

    everything = pyflow("list", "-a", "-m", address).stdout.splitlines()
    terminated = everything[everything.index("---------------------- Terminated Jobs -----------------------"):]
    assert any(line.endswith(f" : {job_id} : detached (CANCELED)") for line in terminated), everything


def test_cli_attached_run_shows_progress_and_ends_with_the_result(tmp_path, address):
    data = tmp_path / "input"
    data.mkdir()
    for i in range(12):
        (data / f"part-{i:02d}.csv").write_text("n\n" + "".join(f"{i * 10 + k}\n" for k in range(10)))
    job = write_job(tmp_path, f"""
        import time
        from pyflow import StreamExecutionEnvironment

        def slow(row):
            time.sleep(0.02)
            return row["n"]

        env = StreamExecutionEnvironment.get_execution_environment()
        env.read_files({str(data)!r}).map(slow).filter(lambda n: n < 0).print()
        result = env.execute("progress")
        print("records:", result.record_counts()["Map"])
    """)
    result = pyflow("run", "-m", address, "-D", "client.progress.interval=300 ms", job)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    job_id = submitted_job_id(result.stdout)
    assert out == [f"Job has been submitted with JobID {job_id}", "Program execution finished",
                   f"Job with JobID {job_id} has finished.", out[3], "records: 120"], out
    assert re.fullmatch(r"Job Runtime: \d+ ms", out[3])
    # stderr is no terminal: plain lines, no control characters, the input's progress among them
    progress = result.stderr.splitlines()
    assert progress and all(line.startswith(f"Job {job_id} ") for line in progress), result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    assert any(re.search(r"input \d+% read \(.* of .*\); Source: File Source -> Map -> Filter", line)
               for line in progress), progress


def test_cli_attached_failing_job_exits_1_with_the_users_traceback(tmp_path, address):
    job = write_job(tmp_path, """
        from pyflow import StreamExecutionEnvironment

        def parse(line):
            return int(line)

        env = StreamExecutionEnvironment.get_execution_environment()
        env.from_collection(["1", "x"]).map(parse).print()
        env.execute("parse")
    """)
    result = pyflow("run", "-m", address, job)
    assert result.returncode == 1
    assert "Error: Job 'parse'" in result.stderr and "failed" in result.stderr
    assert "in parse" in result.stderr and "invalid literal for int()" in result.stderr


def test_cli_interrupt_cancels_the_attached_job(tmp_path, address, rest):
    job = write_job(tmp_path, UNBOUNDED_JOB.format(name="interrupted"))
    proc = start_pyflow("run", "-m", address, job)
    try:
        job_id = wait_for(lambda: next((j["jid"] for j in rest.list_jobs() if j["name"] == "interrupted"), None),
                          what="the attached job to be submitted")
        wait_for(lambda: tasks_running(rest, job_id), what="the attached job to run")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Error: Interrupted; the job was cancelled." in err
    wait_for(lambda: job_state(rest, job_id) == "CANCELED", what="the interrupted job to be cancelled")


def test_cli_stop_and_savepoint(tmp_path, address, rest):
    job = write_job(tmp_path, UNBOUNDED_JOB.format(name="to stop"))
    job_id = submitted_job_id(pyflow("run", "-m", address, "-d", job).stdout)
    wait_for(lambda: tasks_running(rest, job_id), what="the job's tasks to run")

    savepoint = pyflow("savepoint", "-m", address, job_id, str(tmp_path / "savepoints"))
    assert savepoint.returncode == 1
    assert savepoint.stdout.splitlines() == [f"Triggering savepoint for job {job_id}.", "Waiting for response..."]
    error, hint = savepoint.stderr.splitlines()
    assert error.startswith(f"Error: Triggering a savepoint for job {job_id} failed: Savepoints need checkpointing")
    assert hint == f"Hint: savepoints come with checkpointing; `pyflow stop {job_id}` ends the job gracefully"
    assert job_state(rest, job_id) == "RUNNING"

    stopped = pyflow("stop", "--drain", "-m", address, job_id)
    assert stopped.returncode == 0, stopped.stderr
    lines = stopped.stdout.splitlines()
    assert lines[0] == f'Draining job "{job_id}" (no savepoint is taken: this release has no checkpointing).'
    assert lines[2] == f"Job {job_id} has been stopped."
    assert job_state(rest, job_id) == "FINISHED"


def test_cli_errors_are_one_line_and_a_hint(tmp_path, address):
    unknown = "0" * 32
    result = pyflow("cancel", "-m", address, unknown)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"Error: Job {unknown} not found on the cluster at {address}.",
                                          f"Hint: `pyflow list -a -m {address}` lists its jobs"]
    result = pyflow("cancel", "-m", address, "not-a-job")
    assert result.returncode == 2 and result.stderr.startswith("Error: 'not-a-job' is not a job id"), result.stderr
    result = pyflow("list", "-m", "localhost")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "Error: Invalid -m/--jobmanager 'localhost': expected host:port, e.g. 127.0.0.1:8081",
        "Hint: give the JobManager's REST address as host:port, e.g. -m 127.0.0.1:8081"]
    job = write_job(tmp_path, UNBOUNDED_JOB.format(name="never"))
    result = pyflow("run", "-m", address, "-s", "/savepoints/sp-1", job)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == ("Error: Cannot start from savepoint '/savepoints/sp-1': savepoints do not "
                                             "exist in this release of pyflow (it has no checkpointing yet).")
