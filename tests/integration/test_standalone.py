"""The standalone session cluster: scripts/, the JobManager and TaskManager processes, the
standalone ResourceManager, and the cluster entry point, all real (processes, sockets on
127.0.0.1, fixed ports picked free). Every process a test starts is stopped by its pid, and the
test asserts that none is left."""

from __future__ import annotations

import getpass
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from pyflow.api.environment import StreamExecutionEnvironment
from pyflow.config import Configuration
from pyflow.deploy.local import LocalResourceDriver
from pyflow.deploy.standalone import StandaloneResourceDriver
from pyflow.runtime.jobmanager.entrypoint import ApplicationStatus, ClusterEntrypoint
from pyflow.runtime.jobmanager.jobmanager import JobManager
from pyflow.runtime.messages import JobStatus
from pyflow.testing import test_configuration, wait_for

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"

#: fast failure detection, small TaskManagers (as the test cluster's)
FAST = {
    "heartbeat.interval": "500 ms",
    "heartbeat.timeout": "3 s",
    "taskmanager.memory.process.size": "512m",
    "taskmanager.memory.network.min": "16mb",
}


# ---- helpers ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_conf(conf_dir: Path, settings: dict[str, Any], masters: list[str] | None = None,
               workers: list[str] | None = None) -> Path:
    """A conf dir copied from conf/, with ``settings`` replacing the generated defaults."""
    shutil.copytree(ROOT / "conf", conf_dir, dirs_exist_ok=True)
    path = conf_dir / "pyflow-conf.yaml"
    pending = {k: str(v) for k, v in settings.items()}
    lines = []
    for line in path.read_text().splitlines():
        key = line.split(":", 1)[0]
        lines.append(f"{key}: {pending.pop(key)}" if key in pending and not line.startswith("#") else line)
    lines += [f"{k}: {v}" for k, v in pending.items()]
    path.write_text("\n".join(lines) + "\n")
    if masters is not None:
        (conf_dir / "masters").write_text("".join(f"{m}\n" for m in masters))
    if workers is not None:
        (conf_dir / "workers").write_text("".join(f"{w}\n" for w in workers))
    return conf_dir


def rest(address: str, method: str, path: str) -> tuple[int, Any]:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def overview(address: str) -> dict[str, Any] | None:
    try:
        status, body = rest(address, "GET", "/overview")
    except OSError:
        return None
    return body if status == 200 else None




def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def read_pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


class Processes:
    """Every pid a test started; ``stop_all()`` ends what is left (SIGKILL) and says what that was."""

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self.popens: list[subprocess.Popen] = []

    def popen(self, args: list[str], **kwargs: Any) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.update(kwargs.pop("env", {}))
        proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, **kwargs)
        self.popens.append(proc)
        self.pids.add(proc.pid)
        return proc

    def leftovers(self) -> list[int]:
        return sorted(p for p in self.pids if alive(p))

    def stop_all(self) -> list[int]:
        left = self.leftovers()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.popens:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        return left


@pytest.fixture
def processes():
    procs = Processes()
    try:
        yield procs
    finally:
        left = procs.stop_all()
    assert not left, f"processes left running (killed now): {left}"


def python_module(processes: Processes, module: str, *args: str, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - closed with the test
    return processes.popen([sys.executable, "-m", module, *args], stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(20)


# ---- scripts/ ----------------------------------------------------------------------------------------


def script_env(tmp_path: Path, conf_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYFLOW_CONF_DIR=str(conf_dir), PYFLOW_PID_DIR=str(tmp_path / "pids"),
               PYFLOW_LOG_DIR=str(tmp_path / "log"), PYFLOW_PYTHON=sys.executable)
    env.pop("PYFLOW_IDENT_STRING", None)
    env.update(extra)
    return env


def run_script(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / name), *args], env=env, capture_output=True, text=True,
                          timeout=180)


def ident() -> str:
    return os.environ.get("USER") or getpass.getuser()


def test_start_cluster_starts_a_job_manager_and_the_workers_and_stop_cluster_stops_them(tmp_path, processes):
    rpc_port, rest_port = free_port(), free_port()
    conf_dir = write_conf(tmp_path / "conf", {**FAST, "jobmanager.rpc.port": rpc_port, "rest.port": rest_port,
                                              "taskmanager.numberOfTaskSlots": 2},
                          masters=[f"localhost:{rest_port}"], workers=["localhost", "localhost"])
    env = script_env(tmp_path, conf_dir)
    pid_dir, log_dir = tmp_path / "pids", tmp_path / "log"
    jm_pid_file = pid_dir / f"pyflow-{ident()}-standalonesession.pid"
    tm_pid_file = pid_dir / f"pyflow-{ident()}-taskexecutor.pid"
    try:
        started = run_script("start-cluster.sh", env)
        processes.pids.update(read_pids(jm_pid_file) + read_pids(tm_pid_file))
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"JobManager started: RPC at localhost:{rpc_port}, REST API and Web UI at " \
               f"http://127.0.0.1:{rest_port}" in started.stdout
        assert started.stdout.count("Starting taskexecutor daemon") == 2

        address = f"127.0.0.1:{rest_port}"
        cluster = wait_for(lambda: (o := overview(address)) and o["taskmanagers"] == 2 and o,
                           what="2 TaskManagers in /overview")
        assert cluster["slots-total"] == 4 and cluster["slots-available"] == 4

        # pid files: one pid a line, each a live process; logs named after them
        (jm_pid,) = read_pids(jm_pid_file)
        tm_pids = read_pids(tm_pid_file)
        assert len(tm_pids) == 2 and all(alive(p) for p in [jm_pid, *tm_pids])
        _, body = rest(address, "GET", "/taskmanagers")
        assert sorted(tm["id"] for tm in body["taskmanagers"]) == sorted(f"tm-{p}" for p in tm_pids)
        assert "Registered TaskManager" in (log_dir / f"pyflow-standalonesession-{jm_pid}.log").read_text()
        assert "JobManager started" in (log_dir / f"pyflow-standalonesession-{jm_pid}.out").read_text()
        for pid in tm_pids:
            assert "registered at the ResourceManager" in (log_dir / f"pyflow-taskexecutor-tm-{pid}.log").read_text()
            assert f"TaskManager tm-{pid} started" in (log_dir / f"pyflow-taskexecutor-tm-{pid}.out").read_text()
        assert len(list(log_dir.iterdir())) == 6  # a .log and a .out file per process

        # a second start starts nothing: every daemon says it is running
        again = run_script("start-cluster.sh", env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count("is already running") == 3 and "Starting" not in again.stdout.replace(
            "Starting cluster.", "")
        assert read_pids(jm_pid_file) == [jm_pid] and read_pids(tm_pid_file) == tm_pids
    finally:
        stopped = run_script("stop-cluster.sh", env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert stopped.stdout.count("Stopping taskexecutor daemon") == 2
    assert f"Stopping standalonesession daemon (pid: {jm_pid})" in stopped.stdout
    assert processes.leftovers() == []
    assert not jm_pid_file.exists() and not tm_pid_file.exists()


def test_jobmanager_sh_reports_a_job_manager_that_cannot_start(tmp_path, processes):
    rest_port = free_port()
    conf_dir = write_conf(tmp_path / "conf", {**FAST, "jobmanager.rpc.port": free_port(), "rest.port": rest_port})
    env = script_env(tmp_path, conf_dir)
    with socket.socket() as taken:  # something else holds the REST port
        taken.bind(("127.0.0.1", rest_port))
        taken.listen()
        result = run_script("jobmanager.sh", env, "start")
    processes.pids.update(read_pids(tmp_path / "pids" / f"pyflow-{ident()}-standalonesession.pid"))
    assert result.returncode == 1
    assert "exited during start" in result.stderr
    assert f"cannot listen for REST on 127.0.0.1:{rest_port}: the port is taken" in result.stderr
    assert "Set rest.port to a free port" in result.stderr
    assert processes.leftovers() == []
    assert read_pids(tmp_path / "pids" / f"pyflow-{ident()}-standalonesession.pid") == []


def test_start_cluster_reaches_other_hosts_over_ssh(tmp_path, processes):
    """A worker that is not this machine is started and stopped with ssh running the same script.
    ``ssh`` here is a stand-in on PATH that records its arguments and runs the command locally."""
    rpc_port, rest_port = free_port(), free_port()
    conf_dir = write_conf(tmp_path / "conf", {**FAST, "jobmanager.rpc.port": rpc_port, "rest.port": rest_port},
                          masters=[f"127.0.0.1:{rest_port}"], workers=["worker-7.example.org"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "ssh-calls"
    (bin_dir / "ssh").write_text(
        "#!/usr/bin/env bash\n"
        f"printf '%s\\n' \"$*\" >> {calls}\n"
        "while [[ $# -gt 0 && $1 != -- ]]; do shift; done; shift\n"
        "exec bash -c \"$1\"\n")
    (bin_dir / "ssh").chmod(0o755)
    env = script_env(tmp_path, conf_dir, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                     PYFLOW_SSH_OPTS="-o BatchMode=yes")
    tm_pid_file = tmp_path / "pids" / f"pyflow-{ident()}-taskexecutor.pid"
    try:
        started = run_script("start-cluster.sh", env)
        processes.pids.update(read_pids(tm_pid_file)
                              + read_pids(tmp_path / "pids" / f"pyflow-{ident()}-standalonesession.pid"))
        assert started.returncode == 0, started.stdout + started.stderr
        wait_for(lambda: (o := overview(f"127.0.0.1:{rest_port}")) and o["taskmanagers"] == 1,
                 what="the remote TaskManager in /overview")
    finally:
        stopped = run_script("stop-cluster.sh", env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    start_call, stop_call = calls.read_text().splitlines()
    assert start_call.startswith("-n -o BatchMode=yes worker-7.example.org -- env ")
    assert f"PYFLOW_CONF_DIR={conf_dir}" in start_call and "PYFLOW_INSTANCE=0" in start_call
    assert start_call.endswith(f"/bin/bash -l {SCRIPTS}/taskmanager.sh start ")
    assert stop_call.endswith(f"/bin/bash -l {SCRIPTS}/taskmanager.sh stop ")
    assert processes.leftovers() == []


def test_the_scripts_tell_this_host_from_others_and_read_host_files(tmp_path):
    hosts = tmp_path / "workers"
    hosts.write_text("# workers\nlocalhost\n\n  127.0.0.1  # this one too\nother-host\n")
    script = (f". {SCRIPTS}/config.sh; pyflow_read_hosts {hosts}; "
              "for h in localhost 127.0.0.1 \"$(hostname)\" \"$(hostname -f)\" other-host; do "
              "if pyflow_is_local_host \"$h\"; then echo \"local $h\"; else echo \"remote $h\"; fi; done")
    env = dict(os.environ, PYFLOW_PID_DIR=str(tmp_path), PYFLOW_LOG_DIR=str(tmp_path))
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:3] == ["localhost", "127.0.0.1", "other-host"]
    assert [line.split()[0] for line in lines[3:]] == ["local", "local", "local", "local", "remote"]


# ---- the processes ------------------------------------------------------------------------------------


def test_a_job_manager_whose_rpc_port_is_taken_exits_1_naming_the_option(tmp_path, processes):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = processes.popen([sys.executable, "-m", "pyflow.runtime.jobmanager", "-D", f"jobmanager.rpc.port={port}",
                                "-D", f"rest.port={free_port()}", "-D", f"env.log.dir={tmp_path}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"Error: The JobManager cannot listen for RPC on 127.0.0.1:{port}: the port is taken" in err
    assert "set jobmanager.rpc.port to a free port" in err
    assert "JobManager started" not in out


def test_a_task_manager_started_before_its_job_manager_registers_once_it_is_up(tmp_path, processes):
    rpc_port, rest_port = free_port(), free_port()
    conf_dir = write_conf(tmp_path / "conf", {**FAST, "jobmanager.rpc.port": rpc_port, "rest.port": rest_port,
                                              "env.log.dir": tmp_path / "log"})
    tm = python_module(processes, "pyflow.runtime.taskmanager", "--conf-dir", str(conf_dir))
    time.sleep(2.0)  # retrying: nobody listens yet
    assert tm.poll() is None
    jm = python_module(processes, "pyflow.runtime.jobmanager", "--conf-dir", str(conf_dir),
                       log=tmp_path / "jm.out")
    address = f"127.0.0.1:{rest_port}"
    wait_for(lambda: (o := overview(address)) and o["taskmanagers"] == 1, what="the TaskManager to register")
    # DELETE /cluster ends the JobManager process cleanly
    assert rest(address, "DELETE", "/cluster") == (200, {})
    assert jm.wait(20) == 0
    assert "JobManager started: RPC at 127.0.0.1:" in (tmp_path / "jm.out").read_text()
    assert tm.poll() is None  # a standalone TaskManager is not the JobManager's to stop
    assert stop(tm) == 0
    assert processes.leftovers() == []


def test_a_task_manager_registers_again_after_its_job_manager_restarts(tmp_path, processes):
    rpc_port, rest_port = free_port(), free_port()
    settings = {**FAST, "jobmanager.rpc.port": rpc_port, "rest.port": rest_port, "env.log.dir": tmp_path / "log"}
    conf_dir = write_conf(tmp_path / "conf", settings)
    first = python_module(processes, "pyflow.runtime.jobmanager", "--conf-dir", str(conf_dir))
    tm = python_module(processes, "pyflow.runtime.taskmanager", "--conf-dir", str(conf_dir))
    address = f"127.0.0.1:{rest_port}"
    wait_for(lambda: (o := overview(address)) and o["taskmanagers"] == 1, what="the TaskManager to register")
    first.kill()  # the JobManager crashes
    first.wait(10)
    time.sleep(4.0)  # past heartbeat.timeout: the TaskManager noticed, and registers again...
    assert tm.poll() is None
    # ... with the next JobManager (here in this process, to run a job on the TaskManager)
    conf = Configuration.load(conf_dir)
    with JobManager(conf, StandaloneResourceDriver()) as jm:
        wait_for(lambda: jm.rm.overview()["taskmanagers"] == 1, what="the TaskManager to register again")
        assert list(jm.rm.history) == [f"tm-{tm.pid}"]
        env = StreamExecutionEnvironment(conf.copy())
        env.from_collection(list(range(100))).map(lambda x: x + 1).filter(lambda x: x > 1000).print()
        job_id = jm.dispatcher.submit_job(env.get_job_graph("after restart"))
        result = jm.dispatcher.request_job_result(job_id).result(timeout=60)
        assert result.status is JobStatus.FINISHED, result.error
        assert result.task_managers == [f"tm-{tm.pid}"]
    assert "registering again" in (tmp_path / "log" / f"pyflow-taskexecutor-tm-{tm.pid}.log").read_text()
    assert stop(tm) == 0
    assert processes.leftovers() == []


def test_a_task_manager_that_cannot_register_in_time_exits_1(tmp_path, processes):
    conf_dir = write_conf(tmp_path / "conf", {**FAST, "jobmanager.rpc.port": free_port(),
                                              "taskmanager.registration.timeout": "2 s",
                                              "env.log.dir": tmp_path / "log"})
    tm = python_module(processes, "pyflow.runtime.taskmanager", "--conf-dir", str(conf_dir))
    assert tm.wait(30) == 1
    log = (tmp_path / "log" / f"pyflow-taskexecutor-tm-{tm.pid}.log").read_text()
    assert "could not register at the JobManager 127.0.0.1:" in log
    assert "within taskmanager.registration.timeout (2 s)" in log and "exiting" in log


def test_a_job_needing_more_slots_than_the_cluster_has_fails_after_slot_request_timeout(tmp_path, processes):
    conf_dir = write_conf(tmp_path / "conf", {**FAST, "jobmanager.rpc.port": free_port(), "rest.port": free_port(),
                                              "slot.request.timeout": "2 s",
                                              "resourcemanager.taskmanager-timeout": "500 ms",
                                              "env.log.dir": tmp_path / "log"})
    conf = Configuration.load(conf_dir)
    with JobManager(conf, StandaloneResourceDriver()) as jm:
        tms = [python_module(processes, "pyflow.runtime.taskmanager", "--conf-dir", str(conf_dir))
               for _ in range(2)]
        wait_for(lambda: jm.rm.overview()["taskmanagers"] == 2, what="2 TaskManagers")

        def job(parallelism: int, name: str) -> str:
            env = StreamExecutionEnvironment(conf.copy()).set_parallelism(parallelism)
            env.from_sequence(1, 100).map(lambda x: x * 2).filter(lambda x: x < 0).print()
            return jm.dispatcher.submit_job(env.get_job_graph(name))

        too_wide = jm.dispatcher.request_job_result(job(3, "too wide")).result(timeout=60)
        assert too_wide.status is JobStatus.FAILED
        assert "within slot.request.timeout (2 s): it needs 3 slots and got 2" in too_wide.error
        assert "the cluster has 2 slots in 2 TaskManagers" in too_wide.error
        assert "Start more TaskManagers" in too_wide.error
        # the slots it held are free again, and idle standalone TaskManagers are never released
        wait_for(lambda: jm.rm.overview()["slots-available"] == 2, what="the slots to be free again")
        time.sleep(1.5)  # three times resourcemanager.taskmanager-timeout
        assert jm.rm.overview()["taskmanagers"] == 2 and all(tm.poll() is None for tm in tms)
        fits = jm.dispatcher.request_job_result(job(2, "fits")).result(timeout=60)
        assert fits.status is JobStatus.FINISHED, fits.error
        assert sorted(fits.task_managers) == sorted(f"tm-{tm.pid}" for tm in tms)
    assert all(stop(tm) == 0 for tm in tms)
    assert processes.leftovers() == []


# ---- the cluster entry point (what the YARN ApplicationMaster runs) -------------------------------------


def run_in_thread(entry: ClusterEntrypoint) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(entry.run()), daemon=True)
    thread.start()
    return thread, codes


def test_a_session_entry_point_runs_until_it_is_told_to_stop(tmp_path):
    conf = test_configuration(jobmanager__rpc__port=0, env__log__dir=str(tmp_path))
    stop_event = threading.Event()
    started: list[tuple[str, str]] = []
    entry = ClusterEntrypoint(conf, StandaloneResourceDriver(), stop_event=stop_event,
                              on_started=lambda jm: started.append((jm.address, jm.rest_address)))
    thread, codes = run_in_thread(entry)
    wait_for(lambda: started, what="on_started")
    (rpc, rest_address), = started
    assert rpc.startswith("127.0.0.1:") and overview(rest_address)["taskmanagers"] == 0
    time.sleep(0.3)
    assert thread.is_alive() and entry.result is None
    stop_event.set()
    thread.join(20)
    assert codes == [0]
    assert entry.result.status is ApplicationStatus.SUCCEEDED
    assert entry.result.diagnostics == "The session cluster was stopped (stop requested)"
    assert overview(rest_address) is None  # closed


@pytest.mark.parametrize("fails", [False, True], ids=["finished", "failed"])
def test_a_per_job_entry_point_ends_with_its_job(tmp_path, fails):
    conf = test_configuration(jobmanager__rpc__port=0, env__log__dir=str(tmp_path))
    env = StreamExecutionEnvironment(conf.copy())

    def check(x: int) -> int:
        if fails and x == 7:
            raise ValueError("seven is not allowed")
        return x

    env.from_collection(list(range(10))).map(check).filter(lambda x: x < 0).print()
    driver = LocalResourceDriver(conf)
    entry = ClusterEntrypoint(conf, driver, job_graph=env.get_job_graph("per job"))
    thread, codes = run_in_thread(entry)
    thread.join(90)
    assert not thread.is_alive()
    if fails:
        assert codes == [1] and entry.result.status is ApplicationStatus.FAILED
        assert "failed" in entry.result.diagnostics and "seven is not allowed" in entry.result.diagnostics
    else:
        assert codes == [0] and entry.result.status is ApplicationStatus.SUCCEEDED
        assert entry.result.diagnostics.endswith("finished")
    assert driver.pids() == {}  # its TaskManagers were stopped with the cluster
    assert all(not alive(pid) for pid in (reg.pid for reg in entry.jobmanager.rm.history.values()))


# ---- the whole session: scripts, CLI, stop -----------------------------------------------------------

SESSION_JOB = """
from pyflow import StreamExecutionEnvironment
from pyflow.api.connectors import FileSink

env = StreamExecutionEnvironment.get_execution_environment()
env.from_generator(lambda i: {{"n": i}}, rate=200).sink_to(FileSink({out!r}, format="json"))
env.execute({name!r})
"""


def pyflow_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyflow.cli", *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_a_session_on_the_scripts_runs_lists_cancels_and_stops_jobs_submitted_with_the_cli(tmp_path, processes):
    """Issue 4's session: start a standalone cluster with the scripts (two TaskManagers), submit
    two jobs with `pyflow run -d`, list them, cancel one, stop the other, stop the cluster; no
    process is left. (Stop takes no savepoint: this release has no checkpointing.)"""
    rpc_port, rest_port = free_port(), free_port()
    conf_dir = write_conf(tmp_path / "conf", {**FAST, "jobmanager.rpc.port": rpc_port, "rest.port": rest_port},
                          masters=[f"localhost:{rest_port}"], workers=["localhost", "localhost"])
    env = script_env(tmp_path, conf_dir)
    pid_dir = tmp_path / "pids"
    address = f"127.0.0.1:{rest_port}"
    try:
        started = run_script("start-cluster.sh", env)
        processes.pids.update(read_pids(pid_dir / f"pyflow-{ident()}-standalonesession.pid")
                              + read_pids(pid_dir / f"pyflow-{ident()}-taskexecutor.pid"))
        assert started.returncode == 0, started.stdout + started.stderr
        wait_for(lambda: (o := overview(address)) and o["taskmanagers"] == 2, what="2 TaskManagers")

        job_ids = {}
        for name in ("to cancel", "to stop"):
            job_file = tmp_path / f"{name.replace(' ', '_')}.py"
            job_file.write_text(SESSION_JOB.format(out=str(tmp_path / name.replace(" ", "_")), name=name))
            submitted = pyflow_cli("run", "-m", address, "-d", str(job_file))
            assert submitted.returncode == 0, submitted.stderr
            match = re.search(r"Job has been submitted with JobID ([0-9a-f]{32})", submitted.stdout)
            assert match, submitted.stdout
            job_ids[name] = match.group(1)
        # one slot each: the two jobs run on the two TaskManagers
        wait_for(lambda: (o := overview(address)) and o["jobs-running"] == 2 and o["slots-available"] == 0,
                 what="both jobs running in the cluster's two slots")

        listed = pyflow_cli("list", "-r", "-m", address)
        assert listed.returncode == 0, listed.stderr
        for name, job_id in job_ids.items():
            assert re.search(rf" : {job_id} : {name} \(RUNNING\)", listed.stdout), listed.stdout

        cancelled = pyflow_cli("cancel", "-m", address, job_ids["to cancel"])
        assert cancelled.returncode == 0, cancelled.stderr
        stopped = pyflow_cli("stop", "-m", address, job_ids["to stop"])
        assert stopped.returncode == 0, stopped.stderr
        assert f"Job {job_ids['to stop']} has been stopped." in stopped.stdout

        states = {name: wait_for(lambda j=job_id: (s := rest(address, "GET", f"/jobs/{j}")[1]["state"]) in
                                 ("CANCELED", "FINISHED", "FAILED") and s, what=f"job '{name}' to end")
                  for name, job_id in job_ids.items()}
        assert states == {"to cancel": "CANCELED", "to stop": "FINISHED"}
        everything = pyflow_cli("list", "-a", "-m", address).stdout
        assert re.search(rf" : {job_ids['to cancel']} : to cancel \(CANCELED\)", everything), everything
        assert re.search(rf" : {job_ids['to stop']} : to stop \(FINISHED\)", everything), everything
        # the stopped job drained: its sink committed what the source produced
        written = [p for p in (tmp_path / "to_stop").rglob("*") if p.is_file() and not p.name.startswith(".")]
        assert written and sum(len(p.read_text().splitlines()) for p in written) > 0
        # the cluster's slots are free again and both TaskManagers stay registered
        wait_for(lambda: (o := overview(address)) and o["slots-available"] == 2 and o["taskmanagers"] == 2,
                 what="the slots to be free")
    finally:
        stopped_cluster = run_script("stop-cluster.sh", env)
    assert stopped_cluster.returncode == 0, stopped_cluster.stdout + stopped_cluster.stderr
    assert processes.leftovers() == []
