"""The pure parts of the standalone cluster's entry points: final statuses, start-up error
messages, and how the process arguments become configuration."""

from __future__ import annotations

import errno

import pytest

from pyflow.config import Configuration, options
from pyflow.errors import ConfigurationError, RpcUnavailable
from pyflow.runtime.jobmanager.__main__ import configuration
from pyflow.runtime.jobmanager.entrypoint import (
    ApplicationResult, ApplicationStatus, job_application_result, startup_error_message,
)
from pyflow.runtime.jobmanager.jobmaster.job_master import JobResult
from pyflow.runtime.messages import JobStatus
from pyflow.runtime.taskmanager.__main__ import configured_jobmanager


def result(status: JobStatus, error: str | None = None) -> JobResult:
    return JobResult(job_id="j1", job_name="counts", status=status, start_time=1.0, end_time=2.0, error=error)


def test_a_finished_job_makes_the_application_succeed():
    assert job_application_result(result(JobStatus.FINISHED)) == ApplicationResult(
        ApplicationStatus.SUCCEEDED, "Job 'counts' (j1) finished")


def test_a_failed_job_fails_the_application_with_its_cause():
    app = job_application_result(result(JobStatus.FAILED, "Traceback ...\nValueError: bad"))
    assert app.status is ApplicationStatus.FAILED
    assert app.diagnostics == "Job 'counts' (j1) failed: Traceback ...\nValueError: bad"


def test_a_cancelled_job_means_the_application_was_killed():
    app = job_application_result(result(JobStatus.CANCELED))
    assert app == ApplicationResult(ApplicationStatus.KILLED, "Job 'counts' (j1) ended CANCELED")


@pytest.mark.parametrize("status, code", [(ApplicationStatus.SUCCEEDED, 0), (ApplicationStatus.FAILED, 1),
                                          (ApplicationStatus.KILLED, 1)])
def test_only_success_exits_0(status, code):
    assert ApplicationResult(status, "").exit_code == code


def test_a_taken_rpc_port_names_jobmanager_rpc_port():
    conf = Configuration({"jobmanager.rpc.port": 7000})
    text = startup_error_message(RpcUnavailable("Cannot bind"), conf)
    assert text.startswith("The JobManager cannot listen for RPC on 127.0.0.1:7000: the port is taken")
    assert "set jobmanager.rpc.port to a free port" in text and "jobmanager.bind-host" in text


def test_a_taken_rest_port_names_rest_port():
    conf = Configuration({"rest.port": 9000})
    text = startup_error_message(OSError(errno.EADDRINUSE, "in use"), conf)
    assert text.startswith("The JobManager cannot listen for REST on 127.0.0.1:9000: the port is taken.")
    assert "Set rest.port to a free port" in text and "rest.bind-port" in text


def test_a_rest_address_that_is_not_local_says_why():
    conf = Configuration({"rest.bind-address": "10.255.0.1", "rest.bind-port": "50100-50200"})
    text = startup_error_message(OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), conf)
    assert text.startswith("The JobManager cannot listen for REST on 10.255.0.1:50100-50200: Cannot assign "
                           "requested address.")
    assert "fix rest.bind-address" in text


def test_host_and_webui_port_flags_win_over_dynamic_properties():
    conf = configuration(None, ["rest.port=1111", "jobmanager.rpc.address=a.example"], host="b.example",
                         webui_port=2222)
    assert conf.get(options.JM_RPC_ADDRESS) == "b.example"
    assert conf.get(options.REST_PORT) == 2222


def test_the_job_manager_configuration_is_checked_before_start():
    with pytest.raises(ConfigurationError, match="heartbeat.timeout"):
        configuration(None, ["heartbeat.interval=10 s", "heartbeat.timeout=1 s"])


def test_a_standalone_task_manager_finds_the_job_manager_in_the_configuration():
    assert configured_jobmanager(Configuration()) == "127.0.0.1:6123"
    conf = Configuration({"jobmanager.rpc.address": "jm.example", "jobmanager.rpc.port": 7000})
    assert configured_jobmanager(conf) == "jm.example:7000"
    assert configured_jobmanager(Configuration({"jobmanager.rpc.port": 0})) is None
