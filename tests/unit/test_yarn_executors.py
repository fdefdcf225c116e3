"""YarnJobClient: when an attached per-job cluster is told that its job's result was fetched."""

from __future__ import annotations

import pytest

from pyflow.deploy.yarn.cluster_descriptor import YarnCluster
from pyflow.deploy.yarn.executors import YarnJobClient
from pyflow.errors import JobExecutionError

JOB_ID = "0" * 32


class Rest:
    """The JobManager's REST API as the job client sees it: no result yet, then ``result``."""

    address = "127.0.0.1:8081"

    def __init__(self, result: dict | None):
        self.result = result

    def execution_result(self, job_id: str) -> dict | None:
        return self.result

    def job_exceptions(self, job_id: str) -> dict:
        return {"root-exception": "ValueError: bad record"}


class Descriptor:
    def __init__(self):
        self.confirmed: list[str] = []

    def confirm_result_fetched(self, app_id: str) -> None:
        self.confirmed.append(app_id)


def job_client(rest: Rest, descriptor: Descriptor) -> YarnJobClient:
    cluster = YarnCluster("application_1_0001", "127.0.0.1:8081", "127.0.0.1:6123", "")
    return YarnJobClient(rest, JOB_ID, descriptor, cluster, confirm=True)


def test_a_timeout_does_not_confirm_and_a_later_call_gets_the_result():
    rest, descriptor = Rest(None), Descriptor()
    client = job_client(rest, descriptor)
    with pytest.raises(TimeoutError):
        client.get_job_execution_result(timeout=0.05)
    assert descriptor.confirmed == []
    rest.result = {"job-name": "j", "application-status": "SUCCEEDED", "net-runtime": 5}
    assert client.get_job_execution_result(timeout=1).job_name == "j"
    assert descriptor.confirmed == ["application_1_0001"]
    client.get_job_execution_result(timeout=1)
    assert descriptor.confirmed == ["application_1_0001"]  # once


def test_a_failed_job_is_a_result_and_confirms():
    descriptor = Descriptor()
    client = job_client(Rest({"job-name": "j", "application-status": "FAILED"}), descriptor)
    with pytest.raises(JobExecutionError, match="failed"):
        client.get_job_execution_result(timeout=1)
    assert descriptor.confirmed == ["application_1_0001"]
