"""Property-based fuzzing of the REST API over its own OpenAPI document, with schemathesis, against
a real embedded cluster.

Every operation that ``GET /openapi.json`` lists (whatever other handler modules add to it),
except ``DELETE /cluster`` (it shuts the cluster down; tests/integration/test_rest.py tests it),
gets generated requests: valid and invalid path parameters, query strings and bodies. Path
parameters are real ids (of a running job, a finished job, their vertices, the TaskManagers, a
savepoint trigger) half of the time, so the handlers' deeper paths run too - including PATCH
(cancel) and stop of the real jobs. The checks: no answer is a 5xx, every error body is Flink's
``{"errors": [...]}``, every answer has a documented status code and content type and conforms to
its documented schema. Afterwards the cluster still runs a job.

The examples are derandomized (the same requests every run) and bounded (``MAX_EXAMPLES`` per
operation), so the test is stable and takes seconds.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import psutil
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from pyflow.testing import task_manager_pids, test_cluster

#: generated requests per operation
MAX_EXAMPLES = 12


def errors_are_flinks_shape(ctx: Any, response: Any, case: Any) -> None:
    """Every error answer is ``{"errors": ["...", ...]}``: a non-empty list of messages."""
    if response.status_code < 400:
        return
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"errors"}, f"error body is not {{'errors': [...]}}: {body}"
    assert body["errors"] and all(isinstance(e, str) and e for e in body["errors"]), body


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          errors_are_flinks_shape]


def get(rest: str, path: str) -> Any:
    with urllib.request.urlopen(f"http://{rest}{path}", timeout=15) as response:
        return json.load(response)


def post(rest: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(f"http://{rest}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def cluster():
    with test_cluster({"taskmanager.numberOfTaskSlots": 2}) as c:
        yield c
        pids = list(task_manager_pids(c).values())
    for pid in pids:  # every TaskManager process ended with the cluster
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.fixture(scope="module")
def known_ids(cluster) -> dict[str, list[str]]:
    """Real ids for the path parameters: a running and a finished job, their vertices, the
    TaskManagers, a savepoint trigger of the running job."""
    rest = cluster.jobmanager.rest_address
    env = cluster.environment()
    env.from_collection([1, 2, 3]).map(lambda x: x).print()
    finished = env.execute("fuzz: finished").get_job_id()
    running = []
    for name in ("fuzz: running", "fuzz: to cancel"):
        env = cluster.environment()
        env.set_parallelism(1)
        env.from_generator(lambda i: i, rate=100).rebalance().map(lambda x: x).filter(lambda x: False).print()
        running.append(env.execute_async(name).get_job_id())
    trigger = post(rest, f"/jobs/{running[0]}/savepoints", {})["request-id"]
    vertices = [v["id"] for jid in (finished, running[0]) for v in get(rest, f"/jobs/{jid}")["vertices"]]
    task_managers = [tm["id"] for tm in get(rest, "/taskmanagers")["taskmanagers"]]
    # PATCH (cancel) gets a job of its own, so that stop and savepoint triggers also meet a running job
    return {"jobid": [running[0], finished], "jobid for PATCH": [running[1], finished], "vertexid": vertices,
            "taskmanagerid": task_managers, "triggerid": [trigger]}


@pytest.fixture(scope="module")
def api_schema(cluster, known_ids):
    schema = schemathesis.openapi.from_url(f"http://{cluster.jobmanager.rest_address}/openapi.json")

    @schema.hook
    def flatmap_path_parameters(ctx: Any, path_parameters: dict[str, Any]) -> Any:
        """Half of the time a real id, so that requests get past the lookup."""
        def ids(name: str) -> list[str]:
            return known_ids.get(f"{name} for {ctx.operation.method.upper()}") or known_ids.get(name) or []

        return st.fixed_dictionaries({
            name: st.one_of(st.just(value), st.sampled_from(ids(name))) if ids(name) else st.just(value)
            for name, value in (path_parameters or {}).items()})

    return schema


# DELETE /cluster shuts the cluster down (tests/integration/test_rest.py tests it)
schema = schemathesis.pytest.from_fixture("api_schema").exclude(method="DELETE", path="/cluster")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_requests_get_documented_answers(case):
    case.call_and_validate(checks=CHECKS)


def test_the_cluster_still_runs_a_job_after_the_fuzz(cluster):
    env = cluster.environment()
    env.set_parallelism(2)
    result = env.from_sequence(1, 1000).map(lambda x: x * 2).rebalance().filter(lambda x: x % 4 == 0).print()
    result = env.execute("after the fuzz")
    assert result.record_counts()["Filter"] == 500
