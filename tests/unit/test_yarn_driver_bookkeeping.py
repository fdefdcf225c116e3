"""The YARN ResourceDriver's bookkeeping against a testing double of the application (built from
callables): which container ends are failures, replacement before registration, reporting after
it, and the limit of yarn.maximum-failed-containers. The real thing: tests/integration/test_yarn_driver.py."""

from __future__ import annotations

import threading
import time

import pytest

from pyflow.config import Configuration
from pyflow.deploy.yarn.driver import JOBMANAGER_RPC_KEY, YarnResourceDriver
from pyflow.deploy.yarn.skein_client import ContainerInfo
from pyflow.errors import ResourceError


class TestingYarnApplication:
    """The surface of YarnApplication the driver uses; containers change state when a test says."""

    __test__ = False
    id = "application_1_0001"

    def __init__(self):
        self.kv: dict[str, str] = {}
        self.states: dict[str, tuple[str, str]] = {}
        self.killed: list[str] = []
        self._lock = threading.Lock()

    def kv_put(self, key, value):
        self.kv[key] = value

    def add_container(self, service, env=None):
        with self._lock:
            cid = f"{service}_{len(self.states)}"
            self.states[cid] = ("RUNNING", "")
        return ContainerInfo(cid, service, "RUNNING", "", "")

    def kill_container(self, cid):
        self.killed.append(cid)
        self.end(cid, "KILLED", "Container killed on request. Exit code is 143")

    def containers(self, service, states):
        with self._lock:
            return [ContainerInfo(c, service, s, f"container_{c}", m) for c, (s, m) in self.states.items() if s in states]

    def end(self, cid, state, message=""):
        with self._lock:
            self.states[cid] = (state, message)


@pytest.fixture
def harness():
    def create(max_failed=2, registered=()):
        app = TestingYarnApplication()
        driver = YarnResourceDriver(Configuration({"yarn.maximum-failed-containers": max_failed}), app,
                                    poll_interval_s=0.01)
        reports: list[tuple[str, str]] = []
        driver.set_registration_probe(lambda rid: rid in registered)
        driver.start("127.0.0.1:6123", lambda rid, diagnostics: reports.append((rid, diagnostics)))
        created.append(driver)
        return app, driver, reports

    created: list[YarnResourceDriver] = []
    yield create
    for d in created:
        d.close()


def eventually(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_start_publishes_the_jobmanager_address_and_containers_are_the_resource_ids(harness):
    app, driver, _ = harness()
    assert app.kv[JOBMANAGER_RPC_KEY] == "127.0.0.1:6123"
    assert driver.start_task_managers(2) == ["taskmanager_0", "taskmanager_1"]
    assert driver.live_containers() == {"taskmanager_0", "taskmanager_1"}


def test_released_and_cleanly_exited_containers_are_not_failures(harness):
    app, driver, reports = harness()
    driver.start_task_managers(2)
    driver.stop_task_manager("taskmanager_0")
    app.end("taskmanager_1", "SUCCEEDED", "Container completed successfully.")
    eventually(lambda: not driver.live_containers())
    assert app.killed == ["taskmanager_0"] and reports == [] and driver.failed_containers == []


def test_a_container_that_fails_before_registering_is_replaced_silently(harness):
    app, driver, reports = harness()
    driver.start_task_managers(1)
    app.end("taskmanager_0", "FAILED", "Exit code: 1\nNo module named 'pyarrow'")
    eventually(lambda: "taskmanager_1" in driver.live_containers())
    assert reports == []
    (failure,) = driver.failed_containers
    assert failure.startswith("TaskManager container taskmanager_0 (container_taskmanager_0) FAILED: Exit code: 1")


def test_a_registered_taskmanagers_container_failure_is_reported_not_replaced(harness):
    app, driver, reports = harness(registered={"taskmanager_0"})
    driver.start_task_managers(1)
    app.end("taskmanager_0", "FAILED", "Exit code: 137")
    eventually(lambda: reports)
    assert reports == [("taskmanager_0", "TaskManager container taskmanager_0 (container_taskmanager_0) FAILED: "
                                         "Exit code: 137")]
    assert driver.live_containers() == set()


def test_beyond_the_limit_the_failure_is_reported_with_every_diagnostics_and_no_container_starts(harness):
    app, driver, reports = harness(max_failed=1)
    driver.start_task_managers(1)
    app.end("taskmanager_0", "FAILED", "broken node A")
    eventually(lambda: "taskmanager_1" in app.states)
    app.end("taskmanager_1", "FAILED", "broken node B")
    eventually(lambda: reports)
    ((rid, text),) = reports
    assert rid == "taskmanager_1"
    assert text.startswith("2 TaskManager containers failed, more than yarn.maximum-failed-containers (1) allows.")
    assert "broken node B" in text and "Earlier failures:\n- TaskManager container taskmanager_0" in text
    with pytest.raises(ResourceError, match="more than yarn.maximum-failed-containers"):
        driver.start_task_managers(1)


def test_close_releases_every_live_container(harness):
    app, driver, reports = harness()
    driver.start_task_managers(3)
    app.end("taskmanager_1", "SUCCEEDED")
    eventually(lambda: "taskmanager_1" not in driver.live_containers())
    driver.close()
    assert sorted(app.killed) == ["taskmanager_0", "taskmanager_2"] and reports == []
