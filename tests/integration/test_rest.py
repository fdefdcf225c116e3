"""The JobManager's REST API over real HTTP on 127.0.0.1, against a real embedded cluster."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from pyflow.errors import RpcTimeout

from pyflow.rest.router import Route
from pyflow.rest.server import RestServer, Status
from pyflow.testing import test_cluster, wait_for

MAX_CONTENT_LENGTH = 4096


def call(address: str, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        assert response.getheader("Content-Type", "").startswith("application/json"), (method, path)
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def get(address: str, path: str) -> Any:
    status, body = call(address, "GET", path)
    assert status == 200, (path, body)
    return body




@pytest.fixture(scope="module")
def cluster():
    with test_cluster({"rest.server.max-content-length": MAX_CONTENT_LENGTH}) as c:
        yield c


@pytest.fixture(scope="module")
def rest(cluster) -> str:
    return cluster.jobmanager.rest_address


def start_unbounded_job(cluster, name: str):
    env = cluster.environment()
    env.from_generator(lambda i: i, rate=500).rebalance().map(lambda x: x).filter(lambda x: False).print()
    return env.execute_async(name)


@pytest.fixture(scope="module")
def running_job(cluster, rest):
    client = start_unbounded_job(cluster, "rest unbounded")
    path = f"/jobs/{client.job_id}"
    # running, with every subtask deployed and some records through the network
    wait_for(lambda: get(rest, path)["status-counts"]["RUNNING"] == 2
             and get(rest, path)["vertices"][0]["metrics"]["write-records"] > 0, what="the job to run")
    yield client
    client.cancel()


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def test_rest_address_is_a_free_port_on_localhost(cluster, rest):
    host, port = rest.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) not in (0, 8081)


@pytest.mark.parametrize("prefix", ["", "/v1"])
def test_cluster_endpoints_answer_with_flinks_shapes(rest, running_job, prefix):
    config = get(rest, prefix + "/config")
    assert {"refresh-interval", "timezone-name", "flink-version", "features"} <= config.keys()
    assert config["flink-version"].startswith("pyflow ") and isinstance(config["features"], dict)

    overview = get(rest, prefix + "/overview")
    for key in ("taskmanagers", "slots-total", "slots-available", "jobs-running", "jobs-finished",
                "jobs-cancelled", "jobs-failed"):
        assert is_int(overview[key]), key
    assert overview["taskmanagers"] >= 1 and overview["jobs-running"] >= 1
    assert overview["flink-version"] == config["flink-version"]

    jm_config = get(rest, prefix + "/jobmanager/config")
    assert {"key": "rest.server.max-content-length", "value": "4kb"} in jm_config
    assert all(set(entry) == {"key", "value"} and isinstance(entry["value"], str) for entry in jm_config)

    (tm, *_) = get(rest, prefix + "/taskmanagers")["taskmanagers"]
    for key in ("dataPort", "timeSinceLastHeartbeat", "slotsNumber", "freeSlots"):
        assert is_int(tm[key]), key
    assert isinstance(tm["id"], str) and isinstance(tm["path"], str)
    assert {"cpuCores", "physicalMemory", "freeMemory", "managedMemory"} <= tm["hardware"].keys()
    assert tm["hardware"]["managedMemory"] > 0
    details = get(rest, f"{prefix}/taskmanagers/{tm['id']}")
    assert details["id"] == tm["id"]
    assert any(slot["jobId"] == running_job.job_id for slot in details["allocatedSlots"])


@pytest.mark.parametrize("prefix", ["", "/v1"])
def test_job_endpoints_answer_with_flinks_shapes(rest, running_job, prefix):
    jid = running_job.job_id
    assert {"id": jid, "status": "RUNNING"} in get(rest, prefix + "/jobs")["jobs"]

    (overview,) = [j for j in get(rest, prefix + "/jobs/overview")["jobs"] if j["jid"] == jid]
    assert overview["name"] == "rest unbounded" and overview["state"] == "RUNNING"
    assert overview["end-time"] == -1 and overview["duration"] > 0
    assert is_int(overview["start-time"]) and is_int(overview["last-modification"])
    assert overview["tasks"]["running"] == overview["tasks"]["total"] == 2

    job = get(rest, f"{prefix}/jobs/{jid}")
    assert {"jid", "name", "state", "start-time", "end-time", "duration", "now", "timestamps", "vertices",
            "status-counts", "plan"} <= job.keys()
    assert job["state"] == "RUNNING" and job["timestamps"]["RUNNING"] >= job["timestamps"]["CREATED"] > 0
    assert job["status-counts"]["RUNNING"] == 2
    source, mapper = job["vertices"]
    for v in (source, mapper):
        assert {"id", "name", "parallelism", "status", "start-time", "duration", "tasks", "metrics"} <= v.keys()
        assert v["status"] == "RUNNING" and v["tasks"]["RUNNING"] == v["parallelism"] == 1
        for key in ("read-bytes", "write-bytes", "read-records", "write-records"):
            assert is_int(v["metrics"][key]), key
    assert source["name"].startswith("Source") and source["metrics"]["write-records"] > 0
    assert [n["id"] for n in job["plan"]["nodes"]] == [source["id"], mapper["id"]]

    plan = get(rest, f"{prefix}/jobs/{jid}/plan")["plan"]
    assert plan["jid"] == jid and plan["type"] == "STREAMING"
    assert plan["nodes"][1]["inputs"][0]["id"] == source["id"]

    exceptions = get(rest, f"{prefix}/jobs/{jid}/exceptions")
    assert exceptions["root-exception"] is None and exceptions["all-exceptions"] == []
    assert exceptions["exceptionHistory"]["entries"] == []

    job_config = get(rest, f"{prefix}/jobs/{jid}/config")
    assert job_config["jid"] == jid and job_config["execution-config"]["execution-mode"] == "STREAMING"
    assert isinstance(job_config["execution-config"]["user-config"], dict)

    vertex = get(rest, f"{prefix}/jobs/{jid}/vertices/{source['id']}")
    assert vertex["id"] == source["id"] and vertex["parallelism"] == 1
    (subtask,) = vertex["subtasks"]
    assert subtask["status"] == "RUNNING" and subtask["host"] == "127.0.0.1"
    assert isinstance(subtask["taskmanager-id"], str) and subtask["metrics"]["write-records"] > 0
    assert subtask["slot-index"] == 0  # the TaskManagers of the test cluster have one slot each

    names = get(rest, f"{prefix}/jobs/{jid}/vertices/{source['id']}/subtasks/metrics")
    assert {"id": "numRecordsOut"} in names
    metrics = get(rest, f"{prefix}/jobs/{jid}/vertices/{source['id']}/subtasks/metrics"
                        "?get=numRecordsOut,numBytesOut,noSuchMetric")
    assert [m["id"] for m in metrics] == ["numRecordsOut", "numBytesOut"]
    assert metrics[0]["sum"] > 0 and set(metrics[0]) == {"id", "min", "max", "avg", "sum", "skew"}
    (only_sum,) = get(rest, f"{prefix}/jobs/{jid}/vertices/{source['id']}/subtasks/metrics"
                            "?get=numRecordsOut&agg=sum&subtasks=0")
    assert set(only_sum) == {"id", "sum"}


def test_openapi_document_lists_every_served_route_and_nothing_else(cluster, rest):
    document = get(rest, "/openapi.json")
    assert document["openapi"].startswith("3.")
    served = {(route.openapi_path, route.method.lower()) for route in cluster.jobmanager.rest.router.routes}
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert served == documented
    for path, method in documented:
        op = document["paths"][path][method]
        assert op["summary"] and any(code.startswith("2") for code in op["responses"]), (path, method)
        # every path parameter of the template is declared
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == {s[1:-1] for s in path.split("/") if s.startswith("{")}, (path, method)


def test_patch_cancels_a_job_and_get_shows_it_canceled(cluster, rest):
    client = start_unbounded_job(cluster, "to cancel")
    wait_for(lambda: get(rest, f"/jobs/{client.job_id}")["state"] == "RUNNING", what="RUNNING")
    status, body = call(rest, "PATCH", f"/jobs/{client.job_id}?mode=cancel")
    assert (status, body) == (202, {})
    wait_for(lambda: get(rest, f"/jobs/{client.job_id}")["state"] == "CANCELED", what="CANCELED")
    job = get(rest, f"/jobs/{client.job_id}")
    assert job["end-time"] >= job["start-time"] and job["timestamps"]["CANCELED"] > 0
    assert all(v["status"] == "CANCELED" for v in job["vertices"])
    assert {"id": client.job_id, "status": "CANCELED"} in get(rest, "/jobs")["jobs"]
    # cancelling again is fine
    assert call(rest, "PATCH", f"/v1/jobs/{client.job_id}") == (202, {})


class UserFailure(Exception):
    pass


def fail_on_seven(x: int) -> int:
    if x == 7:
        raise UserFailure("seven is not welcome here (rest test)")
    return x


def test_failed_job_exceptions_show_the_users_exception(cluster, rest):
    env = cluster.environment()
    env.from_collection(list(range(20))).map(fail_on_seven).print()
    client = env.execute_async("failing")
    with pytest.raises(Exception):
        client.get_job_execution_result(timeout=20)
    assert get(rest, f"/jobs/{client.job_id}")["state"] == "FAILED"
    exceptions = get(rest, f"/jobs/{client.job_id}/exceptions")
    assert "seven is not welcome here (rest test)" in exceptions["root-exception"]
    assert "fail_on_seven" in exceptions["root-exception"]  # the user's traceback
    assert is_int(exceptions["timestamp"])
    (entry,) = exceptions["exceptionHistory"]["entries"]
    assert entry["stacktrace"] == exceptions["root-exception"] and entry["exceptionName"] == "UserFailure"
    assert entry["taskName"].startswith("Source") and isinstance(entry["taskManagerId"], str)
    assert exceptions["all-exceptions"][0]["exception"] == exceptions["root-exception"]
    assert get(rest, "/overview")["jobs-failed"] >= 1
    # a finished job cannot be cancelled any more
    status, body = call(rest, "PATCH", f"/jobs/{client.job_id}")
    assert status == 409 and "FAILED" in body["errors"][0]


def _bad_requests(jid: str, vid: str) -> list[tuple[str, str, bytes | None, int, str]]:
    """(method, path, body, status, text in the error message)"""
    return [
        ("PATCH", f"/jobs/{jid}", b"{not json", 400, "not valid JSON"),
        ("PATCH", f"/jobs/{jid}?mode=stop", None, 400, "mode"),
        ("GET", f"/jobs/{jid}/vertices/{vid}/subtasks/metrics?get=numRecordsIn&subtasks=x", None, 400, "subtasks"),
        ("GET", f"/jobs/{jid}/vertices/{vid}/subtasks/metrics?get=numRecordsIn&agg=median", None, 400, "median"),
        ("GET", "/jobs/overview?a=1&&=2&%", None, 400, "query"),
        ("GET", "/jobs/0123456789abcdef0123456789abcdef", None, 404, "0123456789abcdef0123456789abcdef"),
        ("PATCH", "/jobs/nosuchjob", None, 404, "nosuchjob"),
        ("GET", "/jobs/nosuchjob/exceptions", None, 404, "nosuchjob"),
        ("GET", f"/jobs/{jid}/vertices/nosuchvertex", None, 404, "nosuchvertex"),
        ("GET", "/taskmanagers/tm-nosuchtm", None, 404, "tm-nosuchtm"),
        ("GET", "/no/such/path", None, 404, "/no/such/path"),
        ("GET", "/v2/overview", None, 404, "/v2/overview"),
        ("PUT", "/jobs", b"{}", 405, "PUT"),
        ("DELETE", "/overview", None, 405, "DELETE"),
        ("PUT", f"/jobs/{jid}", b"{}", 405, "PUT"),
        ("BREW", "/config", None, 405, "BREW"),
        ("PATCH", f"/jobs/{jid}", b"[" + b" " * MAX_CONTENT_LENGTH + b"]", 413, "max-content-length"),
    ]


def test_malformed_requests_get_4xx_and_the_cluster_keeps_working(cluster, rest, running_job):
    jid = running_job.job_id
    vid = get(rest, f"/jobs/{jid}")["vertices"][0]["id"]
    for method, path, body, status, text in _bad_requests(jid, vid):
        answer_status, answer = call(rest, method, path, body)
        assert answer_status == status, (method, path, answer)
        assert list(answer) == ["errors"] and len(answer["errors"]) == 1, (method, path, answer)
        assert text in answer["errors"][0], (method, path, answer)
    # a body declared larger than allowed is refused before it is read
    assert call(rest, "PATCH", f"/jobs/{jid}", headers={"Content-Length": str(10**9)})[0] == 413
    assert call(rest, "PATCH", f"/jobs/{jid}", headers={"Content-Length": "many"})[0] == 400

    # nothing of that stopped the server, touched the running job, or broke the cluster
    assert get(rest, f"/jobs/{jid}")["state"] == "RUNNING"
    env = cluster.environment()
    assert sorted(env.from_collection([1, 2, 3]).map(lambda x: x * 10).execute_and_collect()) == [10, 20, 30]
    assert get(rest, "/overview")["jobs-finished"] >= 1


def test_a_bug_in_a_handler_answers_500_with_its_text_and_the_server_goes_on():
    def broken(request):
        raise KeyError("the handler is broken")

    routes = [Route("GET", "/broken", broken, "Broken"), Route("GET", "/fine", lambda request: {"ok": 1}, "Fine")]
    with RestServer(routes, bind_address="127.0.0.1", bind_ports=(0,)) as server:
        status, body = call(server.address, "GET", "/broken")
        assert status == 500 and "the handler is broken" in body["errors"][0]
        assert call(server.address, "GET", "/v1/fine") == (200, {"ok": 1})
    assert server.status is Status.CLOSED
    server.close()  # idempotent


def test_a_busy_endpoint_answers_503_and_the_client_may_retry():
    def busy(request):
        raise RpcTimeout("JobMaster did not answer within 10 s")

    with RestServer([Route("GET", "/busy", busy, "Busy")], bind_address="127.0.0.1", bind_ports=(0,)) as server:
        assert call(server.address, "GET", "/busy") == (
            503, {"errors": ["JobMaster did not answer within 10 s; try again"]})


def test_delete_cluster_shuts_the_cluster_down():
    with test_cluster() as cluster:
        rest = cluster.jobmanager.rest_address
        assert get(rest, "/overview")["jobs-running"] == 0
        assert call(rest, "DELETE", "/cluster") == (200, {})
        wait_for(lambda: cluster.jobmanager.rest.status is Status.CLOSED, what="the REST server to close")
        wait_for(lambda: cluster.jobmanager.dispatcher._closed.is_set(), what="the Dispatcher to close")
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://{rest}/overview", timeout=2)


def test_a_web_page_of_another_origin_can_change_nothing(cluster, rest):
    """A page the user visits may make the browser send POST/PATCH/DELETE to 127.0.0.1 without
    asking first; the browser names the page in ``Origin``, and such a request is refused."""
    client = start_unbounded_job(cluster, "cross-origin target")
    path = f"/jobs/{client.job_id}"
    wait_for(lambda: get(rest, path)["state"] == "RUNNING", what="the job to run")
    for origin in ("http://evil.example", "null", f"http://{rest}.evil.example"):
        for method, target, body in (("PATCH", path, None), ("POST", f"{path}/stop", b"{}"),
                                     ("POST", "/jobs", b"--x--"), ("DELETE", "/cluster", None)):
            status, answer = call(rest, method, target, body, {"Origin": origin})
            assert status == 403, (origin, method, target, answer)
            assert "Cross-origin" in answer["errors"][0]
    assert get(rest, path)["state"] == "RUNNING" and get(rest, "/overview")["jobs-running"] >= 1
    # reading is harmless: a GET from another origin is answered (the browser keeps it from the page)
    assert call(rest, "GET", path, headers={"Origin": "http://evil.example"})[0] == 200
    # the Web UI's own requests come from this very origin
    assert call(rest, "PATCH", path, headers={"Origin": f"http://{rest}"}) == (202, {})
    wait_for(lambda: get(rest, path)["state"] == "CANCELED", what="the job to be cancelled")
