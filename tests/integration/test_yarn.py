"""pyflow on YARN, end to end: ``pyflow run -t yarn-per-job|yarn-application|yarn-session`` and
``yarn-session``, as a user runs them, against ``backend``.

Here the backend is the fake YARN cluster (tests/yarn_double): every ApplicationMaster and
TaskManager is a real process with the environment YARN gives it. tests/yarn/test_real_yarn.py
runs these same tests against a real YARN cluster (``pytest -m yarn``). Each test checks how
YARN saw the application end (final status and diagnostics), and the fake cluster checks at
the end that no process was left.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from tests.yarn_double.backend import FakeYarnCluster

APP_ID = re.compile(r"application_\d+_\d+")
JOB_ID = re.compile(r"JobID ([0-9a-f]{32})")
WEB = re.compile(r"JobManager Web Interface: http://(\S+)")


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    with FakeYarnCluster(tmp_path_factory.mktemp("fake-yarn")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def jobs(tmp_path_factory) -> Path:
    """A folder with job files, as a user has them: a job with a local module, an endless job."""
    folder = tmp_path_factory.mktemp("jobs")
    (folder / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    (folder / "job.py").write_text(textwrap.dedent('''\
        import sys
        from pyflow import StreamExecutionEnvironment
        import helper

        FAIL = "fail" in sys.argv  # read here: the function runs on TaskManagers, with their own argv

        def check(x):
            if x == 100 and FAIL:
                raise ValueError("bad record 100")
            return x

        def parity(x):  # a key selector defined in the job file (__main__ where the client runs it)
            return x % 2

        parallelism = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_parallelism(parallelism)
        doubled = env.from_collection(list(range(100))).map(helper.double).map(check)
        doubled.filter(lambda x: x < 0).print()
        # keyed aggregations: key selectors are live objects in the job graph, shipped as user code
        doubled.key_by(lambda x: x % 3).reduce(lambda a, b: a + b).key_by(parity).reduce(max) \
            .filter(lambda x: x < 0).print()
        print("RESULT", env.execute(f"yarn test p{parallelism}"))
        '''))
    (folder / "endless.py").write_text(textwrap.dedent('''\
        from pyflow import StreamExecutionEnvironment

        env = StreamExecutionEnvironment.get_execution_environment()
        env.from_generator(lambda i: i, rate=20).filter(lambda x: False).print()
        env.execute("endless")
        '''))
    (folder / "missing_import.py").write_text(textwrap.dedent('''\
        from pyflow import StreamExecutionEnvironment

        def enrich(x):
            import nosuch_enrichment_library
            return nosuch_enrichment_library.enrich(x)

        env = StreamExecutionEnvironment.get_execution_environment()
        env.from_collection([1, 2]).map(enrich).print()
        env.execute("missing import")
        '''))
    return folder


def _settings(backend, extra: dict | None = None) -> list[str]:
    items = []
    for key, value in {**backend.settings(), **(extra or {})}.items():
        items += ["-D", f"{key}={value}"]
    return items


def pyflow_run(backend, jobs: Path, target: str, job: str, *job_args: str, detached: bool = False,
               settings: dict | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pyflow.cli", "run", "-t", target, *(["-d"] if detached else []),
               *_settings(backend, settings), job, *job_args]
    return subprocess.run(command, cwd=jobs, env=env or backend.env(PYFLOW_LOG_DIR=str(jobs / "logs")),
                          capture_output=True, text=True, timeout=300)


def yarn_session(backend, jobs: Path, *args: str, settings: dict | None = None,
                 stdin: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pyflow.cli.yarn_session", *args, *_settings(backend, settings)]
    return subprocess.run(command, cwd=jobs, env=backend.env(PYFLOW_LOG_DIR=str(jobs / "logs")),
                          capture_output=True, text=True, timeout=300, input=stdin)


def application_id(output: str) -> str:
    found = APP_ID.search(output)
    assert found, f"no application id in: {output}"
    return found.group(0)


def ended(backend, app_id: str) -> dict:
    """YARN's final report of ``app_id`` (waiting for the end)."""
    return backend.wait_for(lambda: (r := backend.application(app_id))["state"] in ("FINISHED", "FAILED", "KILLED")
                            and r, what=f"{app_id} to end")


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


# ---- per-job ------------------------------------------------------------------------------------


def test_per_job_cluster_runs_the_job_with_its_local_modules_and_ends_succeeded(backend, jobs):
    run = pyflow_run(backend, jobs, "yarn-per-job", "job.py", "2")
    assert run.returncode == 0, run.stderr
    app = application_id(run.stdout)
    assert "RESULT Job yarn test p2" in run.stdout and "finished" in run.stdout
    report = ended(backend, app)
    assert (report["state"], report["final_status"]) == ("FINISHED", "SUCCEEDED")
    assert "Job 'yarn test p2'" in report["diagnostics"] and "finished" in report["diagnostics"]
    if backend.is_double:  # two TaskManagers for parallelism 2 (one slot each), released at the end
        containers = backend.containers(app, "taskmanager")
        assert len(containers) == 2 and not any(c["alive"] for c in containers)


def test_detached_per_job_prints_the_application_and_job_ids(backend, jobs):
    run = pyflow_run(backend, jobs, "yarn-per-job", "job.py", detached=True)
    assert run.returncode == 0, run.stderr
    app = application_id(run.stdout)
    job_id = JOB_ID.search(run.stdout).group(1)
    assert f"Submitted YARN application {app}" in run.stdout
    report = ended(backend, app)
    assert report["final_status"] == "SUCCEEDED" and job_id in report["diagnostics"]


def test_cancelling_the_job_of_a_detached_per_job_cluster_ends_it_killed(backend, jobs):
    from pyflow.rest.client import RestClusterClient

    run = pyflow_run(backend, jobs, "yarn-per-job", "endless.py", detached=True)
    assert run.returncode == 0, run.stderr
    rest = RestClusterClient(re.search(r"JobManager web interface: http://(\S+),", run.stdout).group(1))
    job_id = JOB_ID.search(run.stdout).group(1)
    rest.cancel_job(job_id)
    report = ended(backend, application_id(run.stdout))
    assert report["final_status"] == "KILLED" and f"({job_id}) ended CANCELED" in report["diagnostics"]


def test_a_failing_job_fails_its_application_with_the_users_traceback(backend, jobs):
    run = pyflow_run(backend, jobs, "yarn-per-job", "job.py", "fail")
    assert run.returncode == 1
    assert "ValueError: bad record 100" in run.stderr and 'job.py", line' in run.stderr
    report = ended(backend, application_id(run.stdout))
    assert report["final_status"] == "FAILED"
    assert "ValueError: bad record 100" in report["diagnostics"]


def test_too_many_failed_containers_fail_the_job_with_their_diagnostics(backend, jobs):
    # TaskManagers whose memory does not add up exit at start, on any cluster
    run = pyflow_run(backend, jobs, "yarn-per-job", "job.py",
                     settings={"yarn.maximum-failed-containers": 1, "taskmanager.memory.managed.fraction": 0.95})
    assert run.returncode == 1
    assert "more than yarn.maximum-failed-containers (1)" in run.stderr
    assert "taskmanager.memory.process.size" in run.stderr  # the TaskManagers' own error, from YARN's diagnostics
    report = ended(backend, application_id(run.stdout))
    assert report["final_status"] == "FAILED" and "yarn.maximum-failed-containers" in report["diagnostics"]


# ---- application mode ---------------------------------------------------------------------------


def test_application_cluster_runs_main_in_the_master_and_ends_with_it(backend, jobs):
    run = pyflow_run(backend, jobs, "yarn-application", "job.py", "2")
    assert run.returncode == 0, run.stderr
    app = application_id(run.stdout)
    assert f"YARN application {app} ended SUCCEEDED" in run.stdout
    report = ended(backend, app)
    assert report["final_status"] == "SUCCEEDED" and "'yarn test p2'" in report["diagnostics"]
    assert "RESULT" not in run.stdout  # main() ran in the ApplicationMaster, not here


def test_a_failing_application_program_ends_failed_with_its_traceback(backend, jobs):
    run = pyflow_run(backend, jobs, "yarn-application", "job.py", "fail")
    assert run.returncode == 1
    assert "ValueError: bad record 100" in run.stderr
    report = ended(backend, application_id(run.stdout))
    assert report["final_status"] == "FAILED" and "bad record 100" in report["diagnostics"]


# ---- session ------------------------------------------------------------------------------------


class Session:
    def __init__(self, app_id: str, rest_address: str, properties_dir: Path):
        self.app_id = app_id
        self.rest_address = rest_address
        self.properties_dir = properties_dir

    def rest(self):
        from pyflow.rest.client import RestClusterClient

        return RestClusterClient(self.rest_address)


@pytest.fixture(scope="module")
def session(backend, jobs, tmp_path_factory):
    """A session started with yarn-session -d; stopping it at the end must end it SUCCEEDED."""
    properties_dir = tmp_path_factory.mktemp("properties")
    settings = {"yarn.properties-file.location": properties_dir, "resourcemanager.taskmanager-timeout": "2 s"}
    memory = backend.settings()
    start = yarn_session(backend, jobs, "-d", "-jm", memory["jobmanager.memory.process.size"],
                         "-tm", memory["taskmanager.memory.process.size"], "-s", "1", "-nm", "pyflow test session",
                         "-qu", backend.queues[0], settings=settings)
    assert start.returncode == 0, start.stderr
    s = Session(application_id(start.stdout), WEB.search(start.stdout).group(1), properties_dir)
    assert (properties_dir / f".yarn-properties-{_user()}").read_text().count(f"applicationID={s.app_id}") == 1
    report = backend.application(s.app_id)
    assert report["name"] == "pyflow test session" and report["queue"] == backend.queues[0]
    yield s
    stop = yarn_session(backend, jobs, "-id", s.app_id, "stop", settings=settings)
    assert stop.returncode == 0, stop.stderr
    assert f"YARN session {s.app_id} ended SUCCEEDED" in stop.stdout
    assert ended(backend, s.app_id)["final_status"] == "SUCCEEDED"
    assert not (properties_dir / f".yarn-properties-{_user()}").exists()


def _user() -> str:
    import getpass

    return getpass.getuser()


def _in_session(backend, session: Session, jobs: Path, job: str, *args: str, detached: bool = False):
    return pyflow_run(backend, jobs, "yarn-session", job, *args, detached=detached,
                      settings={"yarn.properties-file.location": session.properties_dir})


def _running_taskmanagers(backend, session: Session) -> list[dict]:
    return [c for c in backend.containers(session.app_id, "taskmanager") if c["state"] == "RUNNING"]


def _tasks_running(rest, job_id: str) -> bool:
    """Every task of the job is deployed and running (a RUNNING job may still wait for slots)."""
    vertices = rest.job_details(job_id)["vertices"]
    return bool(vertices) and all(v["status"] == "RUNNING" for v in vertices)


def test_session_runs_jobs_found_through_the_properties_file(backend, session, jobs):
    run = _in_session(backend, session, jobs, "job.py", "2")
    assert run.returncode == 0, run.stderr
    assert "RESULT Job yarn test p2" in run.stdout
    assert backend.application(session.app_id)["state"] == "RUNNING"


def test_session_scales_up_for_a_second_job_and_releases_idle_taskmanagers(backend, session, jobs):
    rest = session.rest()
    started = [JOB_ID.search(_in_session(backend, session, jobs, "endless.py", detached=True).stdout).group(1)
               for _ in range(2)]
    backend.wait_for(lambda: all(_tasks_running(rest, j) for j in started), what="both jobs to run")
    assert len(_running_taskmanagers(backend, session)) == 2  # one slot each: a container per job
    for job_id in started:
        rest.cancel_job(job_id)
    backend.wait_for(lambda: not _running_taskmanagers(backend, session),
                     what="the idle TaskManagers to be released (resourcemanager.taskmanager-timeout)")


def test_a_killed_taskmanager_container_fails_its_job_and_a_new_one_replaces_it(backend, session, jobs):
    from pyflow.runtime.messages import JobStatus

    rest = session.rest()
    job_id = JOB_ID.search(_in_session(backend, session, jobs, "endless.py", detached=True).stdout).group(1)
    # earlier tests' idle TaskManagers go after resourcemanager.taskmanager-timeout (2 s here)
    backend.wait_for(lambda: _tasks_running(rest, job_id) and len(_running_taskmanagers(backend, session)) == 1,
                     what="the job to run on the one TaskManager left")
    (victim,) = _running_taskmanagers(backend, session)
    victim_id = f"{victim['service_name']}_{victim['instance']}"
    backend.kill_container_process(session.app_id, victim_id)
    backend.wait_for(lambda: rest.job_status(job_id) is JobStatus.FAILED, what="the job to fail")
    root = rest.job_exceptions(job_id)["root-exception"]
    assert victim_id in root and victim["yarn_container_id"] in root
    run = _in_session(backend, session, jobs, "job.py")
    assert run.returncode == 0, run.stderr
    assert victim_id not in {f"{c['service_name']}_{c['instance']}" for c in _running_taskmanagers(backend, session)}


def test_yarn_session_attached_stops_on_stop_typed_at_its_prompt(backend, jobs, tmp_path):
    settings = {"yarn.properties-file.location": tmp_path}
    start = yarn_session(backend, jobs, "-nm", "attached session", settings=settings, stdin="stop\n")
    assert start.returncode == 0, start.stderr
    app = application_id(start.stdout)
    assert f"YARN session {app} ended SUCCEEDED" in start.stdout
    assert ended(backend, app)["final_status"] == "SUCCEEDED"


# ---- shipping -----------------------------------------------------------------------------------


def test_a_job_importing_a_missing_module_fails_before_anything_is_submitted(backend, jobs):
    before = len(backend.applications()) if backend.is_double else None
    run = pyflow_run(backend, jobs, "yarn-per-job", "missing_import.py")
    assert run.returncode == 1
    error = one_error_line(run.stderr)
    assert "imports 'nosuch_enrichment_library'" in error and "missing_import.py, line 4" in error
    if backend.is_double:
        assert len(backend.applications()) == before


def test_a_repeated_submission_uploads_nothing_new(backend, jobs):
    from pyflow.config import Configuration
    from pyflow.deploy.yarn.cluster_descriptor import YarnClusterDescriptor

    conf = Configuration(backend.settings())
    first = YarnClusterDescriptor(conf).prepare("per-job", ["--mode", "per-job"], job=jobs / "job.py")
    second = YarnClusterDescriptor(conf).prepare("per-job", ["--mode", "per-job"], job=jobs / "job.py")
    try:
        shipped = {name: f["source"] for name, f in second.spec["master"]["files"].items()}
        assert second.shipment.stager.uploaded == []
        assert {k: v for k, v in shipped.items() if "/cache/" in v} == \
               {name: f["source"] for name, f in first.spec["master"]["files"].items() if "/cache/" in f["source"]}
        assert {"pyflow-lib", "pyflow-job", "pyflow-container.sh"} <= {k for k, v in shipped.items() if "/cache/" in v}
    finally:
        first.shipment.cleanup()
        second.shipment.cleanup()


def test_a_packed_python_environment_runs_the_containers(backend, jobs, tmp_path):
    if not backend.is_double:
        pytest.skip("a packed environment for a real cluster comes from PYFLOW_TEST_YARN_ENV_ARCHIVE, used by "
                    "every test there")
    env_dir = tmp_path / "venv"
    (env_dir / "bin").mkdir(parents=True)
    python = env_dir / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "packed environment python" >&2\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    (env_dir / "bin" / "activate").write_text("export PYFLOW_TEST_ACTIVATED=1\n")
    archive = tmp_path / "env.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(env_dir, arcname=".")
    run = pyflow_run(backend, jobs, "yarn-per-job", "job.py", settings={"yarn.python-environment": archive})
    assert run.returncode == 0, run.stderr
    app = application_id(run.stdout)
    assert ended(backend, app)["final_status"] == "SUCCEEDED"
    logs = [p.read_text() for p in (backend.root / "logs" / app).rglob("*.log")]
    assert sum("packed environment python" in text for text in logs) == 2  # the master and one TaskManager


def test_kerberos_principal_and_keytab_are_passed_to_skein(backend, jobs, tmp_path):
    if not backend.is_double:
        pytest.skip("needs a Kerberized YARN cluster")
    keytab = tmp_path / "alice.keytab"
    keytab.write_bytes(b"not really a keytab")
    run = pyflow_run(backend, jobs, "yarn-per-job", "job.py", settings={
        "security.kerberos.login.principal": "alice@EXAMPLE.COM", "security.kerberos.login.keytab": keytab})
    assert run.returncode == 0, run.stderr
    assert ended(backend, application_id(run.stdout))["user"] == "alice"


# ---- bad input ----------------------------------------------------------------------------------


def test_an_unknown_queue_ends_in_one_clear_message(backend, jobs):
    run = pyflow_run(backend, jobs, "yarn-per-job", "job.py", settings={"yarn.application.queue": "nosuch"})
    assert run.returncode == 1
    error = one_error_line(run.stderr)
    assert "queue 'nosuch' does not exist" in error and backend.queues[0] in error
    assert "yarn.application.queue" in error


@pytest.mark.parametrize("option, container", [("taskmanager.memory.process.size", "the TaskManager containers"),
                                               ("jobmanager.memory.process.size", "the JobManager")])
def test_more_memory_than_the_cluster_allows_ends_in_one_clear_message(backend, jobs, option, container):
    too_much = f"{backend.max_allocation_mb * 2}m"
    run = pyflow_run(backend, jobs, "yarn-per-job", "job.py", settings={option: too_much})
    assert run.returncode == 1
    error = one_error_line(run.stderr)
    assert f"YARN refuses {container}" in error and f"Lower {option}" in error
    assert f"at most {backend.max_allocation_mb} MB" in error


def test_a_missing_environment_archive_ends_in_one_clear_message(backend, jobs, tmp_path):
    run = pyflow_run(backend, jobs, "yarn-per-job", "job.py",
                     settings={"yarn.python-environment": tmp_path / "no-such-env.tar.gz"})
    assert run.returncode == 1
    error = one_error_line(run.stderr)
    assert "no-such-env.tar.gz' (yarn.python-environment) does not exist" in error


def test_an_unreachable_resource_manager_ends_in_one_clear_message(backend, jobs, tmp_path):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "yarn-site.xml").write_text(
        "<configuration><property><name>yarn.resourcemanager.address</name>"
        f"<value>127.0.0.1:{port}</value></property></configuration>")
    env = backend.env(PYFLOW_LOG_DIR=str(jobs / "logs"), HADOOP_CONF_DIR=str(tmp_path))
    run = pyflow_run(backend, jobs, "yarn-per-job", "job.py", env=env)
    assert run.returncode == 1
    error = one_error_line(run.stderr)
    assert f"Cannot reach the YARN ResourceManager at 127.0.0.1:{port}" in error and "HADOOP_CONF_DIR" in error
