"""Failure paths on real processes: user errors, lost TaskManagers, a lost JobManager."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from pyflow import JobExecutionError, JobStatus
from pyflow.testing import task_manager_pids, test_cluster, test_configuration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def explode(value):
    if value == 5:
        raise ValueError(f"cannot handle {value}")
    return value


def test_an_exception_in_a_user_function_fails_the_job_with_the_users_traceback(env):
    env.from_sequence(1, 10).map(explode).print()
    with pytest.raises(JobExecutionError) as info:
        env.execute("explodes")
    text = str(info.value)
    assert "failed" in text
    assert "ValueError: cannot handle 5" in text
    assert "in explode" in text and "test_failures.py" in text  # the user's own frame
    assert info.value.job_id


def wait_until_running(client, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        details = client.details()
        if details["state"] == "RUNNING" and details["tasks"] and all(
                t["state"] == "RUNNING" for t in details["tasks"].values()):
            return
        time.sleep(0.05)
    raise AssertionError(f"job did not reach RUNNING: {client.details()}")


def slow_identity(x):
    time.sleep(0.001)
    return x


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_a_lost_task_manager_fails_the_job_within_the_heartbeat_timeout(how):
    with test_cluster({"taskmanager.numberOfTaskSlots": 1, "heartbeat.timeout": "3 s"}) as cluster:
        env = cluster.environment()
        env.set_parallelism(2)
        env.from_generator(lambda i: i).map(slow_identity).rebalance().map(slow_identity).print()
        client = env.execute_async("unbounded")
        wait_until_running(client)
        details = client.details()
        victim = next(t["taskmanager"] for t in details["tasks"].values())
        pid = task_manager_pids(cluster)[victim]
        started = time.monotonic()
        os.kill(pid, getattr(signal, how))
        try:
            with pytest.raises(JobExecutionError) as info:
                client.get_job_execution_result(timeout=30)
            elapsed = time.monotonic() - started
            assert victim in str(info.value)
            assert elapsed < 3.0 + 5.0  # heartbeat.timeout plus the time to cancel the rest
            if how == "SIGSTOP":
                assert "no heartbeat" in str(info.value)
            assert client.get_job_status() is JobStatus.FAILED
        finally:
            if how == "SIGSTOP" and psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)
        pids = list(task_manager_pids(cluster).values())
    # no orphans: every TaskManager process of the cluster is gone once the cluster closed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_task_manager_that_loses_its_job_manager_stops_by_itself(tmp_path):
    # The JobManager runs in its own process; the TaskManager is started here, not as its child,
    # so only the heartbeat can tell it that the JobManager is gone.
    jm_script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        from pyflow.runtime.jobmanager.jobmanager import JobManager
        from pyflow.deploy.standalone import StandaloneResourceDriver
        from pyflow.testing import test_configuration
        conf = test_configuration(jobmanager__rpc__port=0)
        jm = JobManager(conf, StandaloneResourceDriver()).start()
        print(jm.address, flush=True)
        time.sleep(600)
    """)
    jm = subprocess.Popen([sys.executable, "-c", jm_script], stdout=subprocess.PIPE, text=True)
    tm = None
    try:
        address = jm.stdout.readline().strip()
        assert address.startswith("127.0.0.1:")
        env = dict(os.environ, PYTHONPATH=ROOT)
        dynamic = [f"{k}={v}" for k, v in test_configuration(heartbeat__timeout="3 s").to_dict().items()]
        tm = subprocess.Popen([sys.executable, "-m", "pyflow.runtime.taskmanager", "--jobmanager", address,
                               "--exit-on-jobmanager-loss"]
                              + [a for d in dynamic for a in ("-D", d)], env=env)
        time.sleep(2.0)  # registered and heartbeating
        assert tm.poll() is None
        jm.kill()
        jm.wait(10)
        started = time.monotonic()
        assert tm.wait(timeout=20) == 1  # exit code 1: lost the JobManager
        assert time.monotonic() - started < 3.0 + 5.0
    finally:
        for p in (jm, tm):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)


# ---- the CLI: one clear error, non-zero exit -------------------------------------------------------


def pyflow_cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "pyflow.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=120)


def write_job(tmp_path, body: str, name: str = "job.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


OK_JOB = """
    from pyflow import StreamExecutionEnvironment
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1, 2, 3]).map(lambda x: x * 10).print()
    env.execute("ok")
"""


def test_cli_runs_a_job_and_prints_its_output(tmp_path):
    result = pyflow_cli("run", write_job(tmp_path, OK_JOB))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10", "20", "30"]


def test_cli_bad_option_value(tmp_path):
    result = pyflow_cli("run", "-D", "taskmanager.numberOfTaskSlots=abc", write_job(tmp_path, OK_JOB))
    assert result.returncode != 0
    assert "Invalid value 'abc' for 'taskmanager.numberOfTaskSlots'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_unknown_option_key(tmp_path):
    result = pyflow_cli("run", "-D", "taskmanager.numberOfTaskSlot=2", write_job(tmp_path, OK_JOB))
    assert result.returncode != 0
    assert "Unknown configuration option 'taskmanager.numberOfTaskSlot'" in result.stderr
    assert "Did you mean 'taskmanager.numberOfTaskSlots'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_missing_input_file(tmp_path):
    job = write_job(tmp_path, """
        from pyflow import StreamExecutionEnvironment
        env = StreamExecutionEnvironment.get_execution_environment()
        env.read_files("/nonexistent/bids/*.csv").print()
        env.execute()
    """)
    result = pyflow_cli("run", job)
    assert result.returncode != 0
    assert "No input files found at '/nonexistent/bids/*.csv'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_unreadable_input_file(tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"this is not parquet")
    job = write_job(tmp_path, f"""
        from pyflow import StreamExecutionEnvironment
        env = StreamExecutionEnvironment.get_execution_environment()
        env.read_files({str(bad)!r}).print()
        env.execute()
    """)
    result = pyflow_cli("run", job)
    assert result.returncode != 0
    assert f"Cannot read parquet file '{bad}'" in result.stderr, result.stderr
    assert sum(line.startswith("Error:") for line in result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_cli_job_file_with_a_syntax_error(tmp_path):
    job = write_job(tmp_path, "from pyflow import StreamExecutionEnvironment\nenv = (\n")
    result = pyflow_cli("run", job)
    assert result.returncode != 0
    assert "has a syntax error at line" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_user_exception_shows_the_users_traceback(tmp_path):
    job = write_job(tmp_path, """
        from pyflow import StreamExecutionEnvironment

        def parse(line):
            return int(line)

        env = StreamExecutionEnvironment.get_execution_environment()
        env.from_collection(["1", "x"]).map(parse).print()
        env.execute("parse")
    """)
    result = pyflow_cli("run", job)
    assert result.returncode == 1
    assert "Job 'parse'" in result.stderr and "failed" in result.stderr
    assert "in parse" in result.stderr and "invalid literal for int()" in result.stderr


def test_cli_unknown_target_and_missing_job_file(tmp_path):
    result = pyflow_cli("run", "-t", "yarn-perjob", write_job(tmp_path, OK_JOB))
    assert result.returncode == 2
    assert "Unknown target 'yarn-perjob'; did you mean 'yarn-per-job'?" in result.stderr
    result = pyflow_cli("run", str(tmp_path / "missing.py"))
    assert result.returncode != 0 and "does not exist" in result.stderr


def test_cli_info_prints_the_chains(tmp_path):
    job = write_job(tmp_path, """
        from pyflow import StreamExecutionEnvironment
        env = StreamExecutionEnvironment.get_execution_environment()
        env.from_sequence(1, 10).map(lambda x: (x % 2, x)).key_by(0).sum(1).print()
        env.execute("plan")
    """)
    result = pyflow_cli("info", "-p", "3", job)
    assert result.returncode == 0, result.stderr
    assert "Source: Sequence Source -> Map" in result.stdout
    assert "Keyed Aggregation -> Print to Std. Out" in result.stdout
    assert "3 slots needed" in result.stdout
    as_json = pyflow_cli("info", "--json", job)
    assert '"streamGraph"' in as_json.stdout


def test_yarn_session_refuses_flinks_removed_container_count_flag():
    # yarn-session itself is tested in tests/integration/test_yarn.py; `-n` went with Flink 1.10
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-m", "pyflow.cli.yarn_session", "-n", "2"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "No such option" in result.stderr and "-n" in result.stderr


def test_a_key_function_that_raises_names_the_operator(env):
    env.from_collection([{"user": "a"}, {"name": "b"}]).key_by(lambda r: r["user"]).count().print()
    with pytest.raises(JobExecutionError) as info:
        env.execute("bad key")
    text = str(info.value)
    assert "The key function of 'Keyed Aggregation' raised KeyError: 'user'" in text
    assert "{'name': 'b'}" in text


def test_a_task_manager_that_cannot_start_fails_the_job_at_once(tmp_path):
    broken_python = tmp_path / "python"
    broken_python.write_text("#!/bin/sh\necho 'no pyflow here' >&2\nexit 3\n")
    broken_python.chmod(0o755)
    started = time.monotonic()
    with test_cluster({"python.executable": str(broken_python), "slot.request.timeout": "60 s"}) as cluster:
        env = cluster.environment()
        env.from_collection([1]).print()
        with pytest.raises(JobExecutionError) as info:
            env.execute("cannot start")
    assert time.monotonic() - started < 30  # not the 60 s slot request timeout
    assert "exited with code 3" in str(info.value) and "before it registered" in str(info.value)
    assert "pyflow-taskexecutor-" in str(info.value)  # where to look


def test_batch_mode_rejects_unbounded_sources(env):
    from pyflow import ProgramError, RuntimeExecutionMode

    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    env.from_generator(lambda i: i).print()
    with pytest.raises(ProgramError, match="BATCH execution needs bounded sources.*Generator Source"):
        env.execute()
