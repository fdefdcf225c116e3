"""The YARN ResourceDriver against the fake YARN cluster (tests/yarn_double).

A JobManager runs in the test process with a YarnResourceDriver; its TaskManagers are real
processes that the fake YARN cluster starts as containers of an application submitted through
skein's (fake) client, built by pyflow's own spec builder and shipping. The containers find the
JobManager through the key-value store and register with it.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from pyflow.api.environment import StreamExecutionEnvironment
from pyflow.config import Configuration
from pyflow.deploy.yarn.cluster_descriptor import YarnClusterDescriptor
from pyflow.deploy.yarn.driver import JOBMANAGER_RPC_KEY, YarnResourceDriver
from pyflow.runtime.jobmanager.jobmanager import JobManager
from pyflow.runtime.messages import JobStatus
from pyflow.testing import test_configuration
from tests.yarn_double.backend import FakeYarnCluster, use_fake_skein


@pytest.fixture(scope="module")
def yarn(tmp_path_factory, monkeypatch_module):
    use_fake_skein()
    with FakeYarnCluster(tmp_path_factory.mktemp("fake-yarn")) as cluster:
        monkeypatch_module.setenv("HADOOP_CONF_DIR", str(cluster.conf_dir))
        yield cluster


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _conf(yarn: FakeYarnCluster, overrides: dict | None = None) -> Configuration:
    import sys

    settings = {"jobmanager.rpc.port": 0, "taskmanager.memory.process.size": "256m",
                "python.executable": sys.executable, "yarn.staging-directory": yarn.staging_directory(),
                "heartbeat.timeout": "3 s", "resourcemanager.taskmanager-timeout": "60 s"}
    settings.update(overrides or {})
    return test_configuration().merged(settings)


class Session:
    """A YARN application whose JobManager runs in this process, with the YARN driver."""

    def __init__(self, yarn: FakeYarnCluster, conf: Configuration):
        self.yarn = yarn
        self.conf = conf
        prepared = YarnClusterDescriptor(conf).prepare("session", ["--mode", "session"])
        del prepared.spec["master"]["script"]  # no master process: the JobManager is this test
        self.app_id, self.application = YarnClusterDescriptor(conf).submit(prepared)
        self.driver = YarnResourceDriver(conf, self.application, poll_interval_s=0.2)
        self.jm = JobManager(conf, self.driver)
        self.driver.set_registration_probe(lambda rid: rid in self.jm.rm.history)
        self.jm.start()

    def submit(self, build, name: str) -> str:
        env = StreamExecutionEnvironment(self.conf.copy())
        build(env)
        return self.jm.dispatcher.submit_job(env.get_job_graph(name))

    def result(self, job_id: str, timeout: float = 60):
        return self.jm.dispatcher.request_job_result(job_id).result(timeout)

    def wait_running(self, job_id: str, task_managers: int, timeout: float = 30) -> None:
        """Until the job runs and ``task_managers`` TaskManagers registered."""
        self.yarn.wait_for(lambda: self.jm.dispatcher.request_job_status(job_id) is JobStatus.RUNNING
                           and len(self.jm.rm.history) >= task_managers, timeout, f"job {job_id} to run")

    def containers(self, state: str | None = None) -> list[dict]:
        return [c for c in self.yarn.containers(self.app_id, "taskmanager") if state is None or c["state"] == state]

    def close(self) -> None:
        self.jm.close()
        self.application.shutdown("SUCCEEDED", "test over")
        self.application.close()


@pytest.fixture
def session_factory(yarn):
    sessions: list[Session] = []

    def create(overrides: dict | None = None) -> Session:
        sessions.append(Session(yarn, _conf(yarn, overrides)))
        return sessions[-1]

    yield create
    for s in sessions:
        s.close()
    for s in sessions:
        yarn.wait_for(lambda s=s: not [c for c in yarn.containers(s.app_id) if c["alive"]], 15,
                      "the application's containers to stop")


def unbounded(env) -> None:
    env.from_generator(lambda i: i, rate=20).filter(lambda x: False).print()


def bounded(env) -> None:
    env.from_collection(list(range(100))).map(lambda x: x * 2).filter(lambda x: x < 0).print()


def test_taskmanagers_start_as_containers_and_scale_up_when_a_second_job_needs_slots(yarn, session_factory):
    s = session_factory()
    assert s.application.kv_get(JOBMANAGER_RPC_KEY) == s.jm.address
    first = s.submit(unbounded, "first")
    s.wait_running(first, 1)
    assert [c["state"] for c in s.containers()] == ["RUNNING"]
    second = s.submit(unbounded, "second")
    s.wait_running(second, 2)
    running = s.containers("RUNNING")
    assert len(running) == 2
    assert set(s.jm.rm.history) == {f"{c['service_name']}_{c['instance']}" for c in running}
    # each container has the memory of taskmanager.memory.process.size and the vcores of its slots
    spec = yarn.applications()
    assert any(a["id"] == s.app_id and a["state"] == "RUNNING" for a in spec)
    for job in (first, second):
        s.jm.dispatcher.cancel_job(job)
        assert s.result(job).status is JobStatus.CANCELED


def test_idle_taskmanagers_are_released_after_the_timeout(yarn, session_factory):
    s = session_factory({"resourcemanager.taskmanager-timeout": "1 s"})
    job = s.submit(bounded, "short")
    assert s.result(job).status is JobStatus.FINISHED
    # one container ran the job (on a loaded machine it may be released already, 1 s after the job)
    assert len(s.containers()) == 1
    # the JobManager shuts the idle TaskManager down and releases its container: KILLED, or
    # SUCCEEDED when the TaskManager exited before the release arrived
    yarn.wait_for(lambda: [c for c in s.containers() if c["state"] in ("KILLED", "SUCCEEDED") and not c["alive"]],
                  15, "the idle TaskManager's container to be released")
    yarn.wait_for(lambda: s.driver.live_containers() == set() and s.jm.rm.task_managers == {}, 15,
                  "the driver and the ResourceManager to forget the released TaskManager")
    assert len(s.containers()) == 1 and s.driver.failed_containers == []


def test_a_container_that_fails_before_registering_is_replaced(yarn, session_factory):
    s = session_factory()
    yarn.fail_next_containers(1, exit_code=3, message="disk failure on this node")
    job = s.submit(bounded, "survives")
    assert s.result(job).status is JobStatus.FINISHED
    states = [c["state"] for c in s.containers()]
    assert states == ["FAILED", "RUNNING"]
    (failure,) = s.driver.failed_containers
    assert "taskmanager_0" in failure and "exit code 3" in failure and "disk failure on this node" in failure


def test_a_killed_container_fails_its_job_and_the_next_job_gets_a_new_container(yarn, session_factory):
    s = session_factory()
    job = s.submit(unbounded, "victim")
    s.wait_running(job, 1)
    (container,) = s.containers("RUNNING")
    yarn.kill_container_process(s.app_id, "taskmanager_0", signal.SIGKILL)
    result = s.result(job)
    assert result.status is JobStatus.FAILED
    assert "taskmanager_0" in result.error and "exit code 137" in result.error
    again = s.submit(bounded, "after")
    assert s.result(again).status is JobStatus.FINISHED
    states = {f"{c['service_name']}_{c['instance']}": c["state"] for c in s.containers()}
    assert states["taskmanager_0"] == "FAILED" and states["taskmanager_1"] == "RUNNING"


def test_too_many_container_failures_fail_the_waiting_job_with_their_diagnostics(yarn, session_factory):
    s = session_factory({"yarn.maximum-failed-containers": 1})
    yarn.fail_next_containers(5, exit_code=1, message="cannot start: broken node")
    start = time.monotonic()
    job = s.submit(bounded, "doomed")
    result = s.result(job)
    assert result.status is JobStatus.FAILED
    assert "more than yarn.maximum-failed-containers (1)" in result.error
    assert "cannot start: broken node" in result.error
    assert time.monotonic() - start < 30  # long before slot.request.timeout
    assert [c["state"] for c in s.containers()] == ["FAILED", "FAILED"]
    yarn.fail_next_containers(0)


def test_the_application_spec_asks_for_the_configured_resources(yarn):
    conf = _conf(yarn, {"taskmanager.numberOfTaskSlots": 3, "taskmanager.memory.process.size": "300m",
                        "jobmanager.memory.process.size": "200m", "yarn.application.queue": "batch",
                        "yarn.tags": "a, b"})
    prepared = YarnClusterDescriptor(conf).prepare("session", ["--mode", "session"])
    try:
        spec = prepared.spec
        assert spec["queue"] == "batch" and spec["tags"] == ["a", "b"]
        assert spec["master"]["resources"] == {"memory": 200, "vcores": 1}
        assert spec["services"]["taskmanager"]["resources"] == {"memory": 300, "vcores": 3}
        assert spec["services"]["taskmanager"]["instances"] == 0
        assert Path(spec["master"]["files"]["pyflow-lib"]["source"][len("file://"):]).is_file()
    finally:
        prepared.shipment.cleanup()
