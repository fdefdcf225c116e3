"""Job submission's pure parts: multipart/form-data, the job graph file, the address syntax and
the executor registry. Nothing runs: no cluster, no sockets."""

from __future__ import annotations

import json
import pickle
import struct

import cloudpickle
import pytest

from pyflow import StreamExecutionEnvironment
from pyflow.errors import ConfigurationError, NotYetSupportedError
from pyflow.graph.execution_graph import build_execution_graph
from pyflow.rest.client import parse_address
from pyflow.rest.job_graph_file import MAGIC, JobGraphFileError, UserCode, decode_job_graph, encode_job_graph
from pyflow.rest.multipart import MultipartError, Part, boundary_of, encode_multipart, parse_multipart

# ---- multipart/form-data -------------------------------------------------------------------------


def test_multipart_round_trip_keeps_names_filenames_and_bytes():
    parts = [Part("request", b'{"jobGraphFileName": "g"}', content_type="application/json"),
             Part("file_0", bytes(range(256)) * 10, filename="g"),
             Part("file_1", b"", filename="job.py")]
    body, content_type = encode_multipart(parts)
    parsed = parse_multipart(body, boundary_of(content_type))
    assert [(p.name, p.filename, p.data) for p in parsed] == [(p.name, p.filename, p.data) for p in parts]
    assert parsed[0].content_type == "application/json"


def test_multipart_accepts_a_preamble_an_epilogue_and_quoted_boundaries():
    body = (b"ignored preamble\r\n--a b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n"
            b"--a b--\r\nepilogue")
    assert [p.data for p in parse_multipart(body, boundary_of('multipart/form-data; boundary="a b"'))] == [b"1"]


def test_a_part_may_contain_crlf_and_dashes_that_are_not_the_delimiter():
    data = b"--bb line\r\n--b\r\n--bb-\r\n"[2:]
    body, content_type = encode_multipart([Part("f", data, filename="f")], boundary="bbb")
    assert parse_multipart(body, boundary_of(content_type))[0].data == data
    with pytest.raises(ValueError, match="contains the delimiter"):
        encode_multipart([Part("f", b"x\r\n--bbb")], boundary="bbb")


@pytest.mark.parametrize("content_type, message", [
    (None, "no Content-Type"),
    ("application/json", "not multipart/form-data"),
    ("multipart/form-data", "no valid boundary"),
    ("multipart/form-data; boundary=" + "x" * 71, "no valid boundary"),
])
def test_content_type_without_a_usable_boundary_is_refused(content_type, message):
    with pytest.raises(MultipartError, match=message):
        boundary_of(content_type)


@pytest.mark.parametrize("body, message", [
    (b"no delimiter at all", "does not contain the boundary"),
    (b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1", "truncated"),
    (b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b", "not followed by a line break"),
    (b"--b\r\nContent-Type: text/plain\r\n\r\n1\r\n--b--", "no 'Content-Disposition: form-data'"),
    (b"--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--", "no name"),
    (b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n1\r\n--b--", "no blank line"),
    (b"--b\r\nnot a header\r\n\r\n1\r\n--b--", "malformed header line"),
    (b"--bjunk\r\n", "not followed by a line break"),
])
def test_malformed_bodies_are_refused_with_what_is_wrong(body, message):
    with pytest.raises(MultipartError, match=message):
        parse_multipart(body, "b")


def test_too_many_parts_are_refused():
    body, content_type = encode_multipart([Part(f"p{i}", b"") for i in range(1001)], boundary="b")
    with pytest.raises(MultipartError, match="more than 1000 parts"):
        parse_multipart(body, "b")


# ---- the job graph file ----------------------------------------------------------------------------


def key_of(x):
    return x % 3


@pytest.fixture
def graph():
    env = StreamExecutionEnvironment.get_execution_environment({"parallelism.default": 2})
    env.from_sequence(1, 100).map(lambda x: x + 1).key_by(key_of).sum(0).print()
    env.from_collection([1, 2]).union(env.from_collection([3])).rebalance().print()
    return env.get_job_graph("format test")


def test_the_job_graph_survives_the_file_format(graph):
    decoded = decode_job_graph(encode_job_graph(graph))
    assert (decoded.job_id, decoded.job_name) == (graph.job_id, graph.job_name)
    assert list(decoded.vertices) == list(graph.vertices)
    for vid, v in graph.vertices.items():
        d = decoded.vertices[vid]
        assert (d.name, d.parallelism, d.max_parallelism, d.slot_sharing_group, d.is_source) == \
               (v.name, v.parallelism, v.max_parallelism, v.slot_sharing_group, v.is_source)
        assert d.operators == v.operators
        assert d.serialized_operators == v.serialized_operators
        assert [e.id for e in d.inputs] == [e.id for e in v.inputs]
        assert [e.id for e in d.outputs] == [e.id for e in v.outputs]
    assert decoded.settings == graph.settings and decoded.config == graph.config
    assert json.dumps(decoded.plan) == json.dumps(graph.plan)
    # what the JobMaster builds from it
    assert len(build_execution_graph(decoded).vertices) == len(build_execution_graph(graph).vertices)


def test_key_selectors_stay_opaque_on_the_jobmanager_and_come_back_on_the_taskmanager(graph):
    decoded = decode_job_graph(encode_job_graph(graph))
    hashed = [e for e in decoded.edges.values() if e.partitioner.type == "hash"]
    assert hashed and all(isinstance(e.partitioner.key_selector, UserCode) for e in hashed)
    # a deployment descriptor is cloudpickled by the JobManager and unpickled by the TaskManager
    spec = pickle.loads(cloudpickle.dumps(hashed[0].partitioner))
    import pyarrow as pa

    rows = [1, 2, 4, 5]
    assert spec.key_selector.keys(pa.RecordBatch.from_pydict({"value": rows}), rows) == [1, 2, 1, 2]
    # re-encoding a decoded graph keeps the bytes as they are
    again = decode_job_graph(encode_job_graph(decoded))
    assert [e.partitioner.key_selector.data for e in again.edges.values() if e.partitioner.type == "hash"] == \
           [e.partitioner.key_selector.data for e in hashed]


def _header_and_blobs(data: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack_from("!Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    return json.loads(data[start:start + length]), data[start + length:]


def _with_header(header: dict, blobs: bytes) -> bytes:
    text = json.dumps(header).encode()
    return MAGIC + struct.pack("!Q", len(text)) + text + blobs


@pytest.mark.parametrize("corrupt, message", [
    (lambda h: h.update(format=2), "format version 2"),
    (lambda h: h.update(jobId="../../etc"), "is not a job id"),
    (lambda h: h.update(vertices=[]), "no vertices"),
    (lambda h: h["edges"][0].update(targetVertex="nope"), "unknown vertices"),
    (lambda h: h["edges"][0].update(sourceNode=9999), "not an operator of"),
    (lambda h: h["edges"][0]["partitioner"].update(type="teleport"), "not one of"),
    (lambda h: [e["partitioner"].update(keySelector=None) for e in h["edges"] if e["partitioner"]["type"] == "hash"],
     "needs a keySelector"),
    (lambda h: h["vertices"][0]["serializedOperators"].clear(), "no serialized operator"),
    (lambda h: h["vertices"][0].update(parallelism=0), "at least 1"),
    (lambda h: h["vertices"][0].update(parallelism="2"), "must be a JSON integer"),
    (lambda h: h["vertices"][0]["operators"][0].update(chainedOutputs=[424242]), "outside its vertex"),
    (lambda h: h["vertices"].reverse(), "topological order"),
    (lambda h: h["vertices"][0].update(outputs=[]), "listed once"),
    (lambda h: h["blobs"].append([10**9, 1]), "truncated"),
    (lambda h: h["blobs"].append([-1, 1]), "non-negative"),
    (lambda h: h["config"].update({"k": 1}), "string values"),
    (lambda h: h["settings"].update(batch_size="big"), "wrong type"),
    (lambda h: h.pop("plan"), "no field 'plan'"),
])
def test_a_corrupt_header_is_refused_with_what_is_wrong(graph, corrupt, message):
    header, blobs = _header_and_blobs(encode_job_graph(graph))
    corrupt(header)
    with pytest.raises(JobGraphFileError, match=message):
        decode_job_graph(_with_header(header, blobs))


@pytest.mark.parametrize("data, message", [
    (b"\x80\x04K\x01.", "wrong magic"),
    (MAGIC + b"\x00", "truncated"),
    (MAGIC + struct.pack("!Q", 100) + b"{}", "truncated"),
    (MAGIC + struct.pack("!Q", 3) + b"{x}", "not UTF-8 JSON"),
    (MAGIC + struct.pack("!Q", 2) + b"[]", "must be a JSON object"),
])
def test_what_is_not_a_job_graph_file_is_refused(data, message):
    with pytest.raises(JobGraphFileError, match=message):
        decode_job_graph(data)


def test_a_truncated_blob_section_is_refused(graph):
    data = encode_job_graph(graph)
    with pytest.raises(JobGraphFileError, match="truncated"):
        decode_job_graph(data[:-1])


# ---- addresses and executors ---------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8081", ("127.0.0.1", 8081)), ("jm.example.com:80", ("jm.example.com", 80)),
    ("http://localhost:8081/", ("localhost", 8081)), ("[::1]:9000", ("::1", 9000)),
])
def test_addresses(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["localhost", "localhost:", ":8081", "host:port", "host:0", "host:70000",
                                  "http://host/path:1"])
def test_malformed_addresses_say_what_is_expected(text):
    with pytest.raises(ConfigurationError, match="expected host:port, e.g. 127.0.0.1:8081"):
        parse_address(text)


def test_executor_registry():
    from pyflow.deploy.executors import EXECUTORS, LocalExecutor, RemoteExecutor, executor_for, targets

    assert isinstance(executor_for("local"), LocalExecutor)
    assert isinstance(executor_for("remote"), RemoteExecutor)
    assert list(EXECUTORS)[:2] == ["local", "remote"]
    assert set(targets()) >= {"local", "remote", "yarn-per-job", "yarn-session", "yarn-application"}
    with pytest.raises(ConfigurationError, match="Unknown target 'yarn-perjob'; choose one of: local, remote"):
        executor_for("yarn-perjob")
    if "yarn-per-job" not in EXECUTORS:
        with pytest.raises(NotYetSupportedError, match="not available in this release"):
            executor_for("yarn-per-job")
