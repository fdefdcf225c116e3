"""The job graph file of a REST job submission (``POST /jobs``): JSON plus binary blobs (pure).

Decision: the JobManager never runs, nor unpickles, user code. A JobGraph's structure (vertices,
chains, edges, partitioners, settings, configuration, plan) travels as JSON; what holds user code
travels as opaque blobs that only TaskManagers unpickle: each operator, already cloudpickled per
chain member by :func:`~pyflow.graph.job_graph.build_job_graph`, and the key selector of each hash
partitioner, cloudpickled here (the job's own modules by value, as for operators). On the
JobManager a key selector stays a :class:`UserCode` - bytes that turn back into the key selector
only when a TaskManager unpickles the task's deployment descriptor. Neither pickle nor a
restricted unpickler runs on the JobManager, so a malicious or corrupt file can at worst be
refused (:class:`JobGraphFileError`, a 400 answer) or fail its own job on the TaskManagers.

Layout (integers big-endian)::

    b"PYFLOW-JOBGRAPH\\n"        16 bytes, the magic
    header length                8 bytes, unsigned
    header                       UTF-8 JSON, see below
    blob section                 the blobs, back to back

The header is ``{"format": 1, "jobId": "<32 hex>", "jobName", "vertices": [...], "edges": [...],
"settings": {...}, "config": {"key": "value"}, "plan": {...}, "blobs": [[offset, length], ...]}``;
a vertex is ``{"id", "name", "parallelism", "maxParallelism", "slotSharingGroup", "isSource",
"operators": [{"nodeId", "name", "chainedOutputs", "networkOutputs", "chainedSideTags"}],
"serializedOperators": {"<nodeId>": <blob index>}, "inputs": [edge ids], "outputs": [edge ids]}``
in topological order; an edge is ``{"id", "sourceVertex", "targetVertex", "sourceNode",
"targetNode", "partitioner": {"type", "keySelector": <blob index> | null}, "inputIndex",
"sideTag"}``. Blob offsets count from the start of the blob section. Decoding checks every
type, reference and bound, so that what it returns can be scheduled.

>>> from pyflow import StreamExecutionEnvironment
>>> env = StreamExecutionEnvironment.get_execution_environment()
>>> _ = env.from_sequence(1, 3).key_by(lambda x: x % 2).sum(0).print()
>>> graph = env.get_job_graph("parity")
>>> decoded = decode_job_graph(encode_job_graph(graph))
>>> decoded.job_id == graph.job_id, [v.name for v in decoded.vertices.values()] == [v.name for v in graph.vertices.values()]
(True, True)
"""

from __future__ import annotations

import json
import pickle
import re
import struct
from typing import Any


from pyflow.errors import PyflowError, SerializationError
from pyflow.graph.job_graph import ChainedOperator, JobEdge, JobGraph, JobVertex, pickle_user_code, user_modules
from pyflow.graph.transformations import PARTITIONER_TYPES, PartitionerSpec

MAGIC = b"PYFLOW-JOBGRAPH\n"
FORMAT_VERSION = 1
_LENGTH = struct.Struct("!Q")
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
#: a media type for the file part (not registered; what the client sends)
CONTENT_TYPE = "application/x-pyflow-jobgraph"


class JobGraphFileError(PyflowError, ValueError):
    """A job graph file that cannot be read: not one, another format version, or inconsistent."""


class UserCode:
    """A pickled user object (a key selector) that the JobManager carries but never loads.

    Pickling it yields a call of ``pickle.loads`` on its bytes, so the TaskManager that unpickles
    a deployment descriptor holding it gets the original object back.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return pickle.loads, (self.data,)

    def __repr__(self) -> str:
        return f"UserCode({len(self.data)} bytes)"


# ---- encoding ------------------------------------------------------------------------------------


def encode_job_graph(job_graph: JobGraph) -> bytes:
    """The job graph file of ``job_graph`` (built with ``serialize=True``)."""
    blobs: list[bytes] = []

    def blob(data: bytes) -> int:
        blobs.append(bytes(data))
        return len(blobs) - 1

    modules = user_modules()
    vertices = []
    for v in job_graph.vertices.values():
        missing = [op.node_id for op in v.operators if op.node_id not in v.serialized_operators]
        if missing:
            raise SerializationError(f"Job vertex '{v.name}' has no serialized operator for node(s) {missing}; "
                                     "build the job graph with serialize=True to submit it")
        vertices.append({
            "id": v.id, "name": v.name, "parallelism": v.parallelism, "maxParallelism": v.max_parallelism,
            "slotSharingGroup": v.slot_sharing_group, "isSource": v.is_source,
            "operators": [{"nodeId": op.node_id, "name": op.name, "chainedOutputs": list(op.chained_outputs),
                           "networkOutputs": list(op.network_outputs),
                           "chainedSideTags": list(op.chained_side_tags)} for op in v.operators],
            "serializedOperators": {str(op.node_id): blob(v.serialized_operators[op.node_id])
                                    for op in v.operators},
            "inputs": [e.id for e in v.inputs], "outputs": [e.id for e in v.outputs]})
    edges = []
    for e in job_graph.edges.values():
        selector = e.partitioner.key_selector
        if selector is None:
            key_blob = None
        elif isinstance(selector, UserCode):
            key_blob = blob(selector.data)
        else:
            key_blob = blob(pickle_user_code(selector, modules, lambda error, e=e: (
                f"Cannot ship the key selector of edge {e.id} ({e.source_vertex} -> {e.target_vertex}): "
                f"{type(error).__name__}: {error}. Key functions must be picklable by cloudpickle: do not "
                "capture open files, sockets, locks or clients in them")))
        edges.append({"id": e.id, "sourceVertex": e.source_vertex, "targetVertex": e.target_vertex,
                      "sourceNode": e.source_node, "targetNode": e.target_node,
                      "partitioner": {"type": e.partitioner.type, "keySelector": key_blob},
                      "inputIndex": e.input_index, "sideTag": e.side_tag})
    offsets, position = [], 0
    for b in blobs:
        offsets.append([position, len(b)])
        position += len(b)
    header = {"format": FORMAT_VERSION, "jobId": job_graph.job_id, "jobName": job_graph.job_name,
              "vertices": vertices, "edges": edges, "settings": job_graph.settings,
              "config": job_graph.config, "plan": job_graph.plan, "blobs": offsets}
    try:
        text = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise SerializationError(f"The job graph of '{job_graph.job_name}' cannot be written as JSON ({e}): its "
                                 "settings, configuration and plan must be plain JSON values") from e
    return b"".join([MAGIC, _LENGTH.pack(len(text)), text, *blobs])


# ---- decoding ------------------------------------------------------------------------------------


def decode_job_graph(data: bytes) -> JobGraph:
    """The JobGraph of a job graph file; :class:`JobGraphFileError` names what is wrong."""
    if not data.startswith(MAGIC):
        raise JobGraphFileError("The job graph file is not a pyflow job graph (wrong magic bytes); "
                                "submit what pyflow.rest.job_graph_file.encode_job_graph() writes")
    start = len(MAGIC) + _LENGTH.size
    if len(data) < start:
        raise JobGraphFileError("The job graph file is truncated (no header length)")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    if length > len(data) - start:
        raise JobGraphFileError(f"The job graph file is truncated: its header says {length} bytes, "
                                f"{len(data) - start} follow")
    try:
        header = json.loads(data[start:start + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise JobGraphFileError(f"The header of the job graph file is not UTF-8 JSON: {e}") from None
    return _Decoder(header, memoryview(data)[start + length:]).job_graph()


class _Decoder:
    def __init__(self, header: Any, blob_section: memoryview):
        self.header = _expect(header, dict, "the header")
        self.section = blob_section

    def job_graph(self) -> JobGraph:
        h = self.header
        version = h.get("format")
        if version != FORMAT_VERSION:
            raise JobGraphFileError(f"The job graph file has format version {version!r}; this JobManager reads "
                                    f"version {FORMAT_VERSION}. Submit with a pyflow client of the same version")
        job_id = _field(h, "jobId", str, "the header")
        if not _JOB_ID.match(job_id):
            raise JobGraphFileError(f"jobId {job_id!r} is not a job id (32 lowercase hexadecimal characters)")
        self.blobs = self._blob_table(_field(h, "blobs", list, "the header"))
        vertices = self._vertices(_field(h, "vertices", list, "the header"))
        edges = self._edges(_field(h, "edges", list, "the header"), vertices)
        self._connect(vertices, edges)
        config = _field(h, "config", dict, "the header")
        if not all(isinstance(v, str) for v in config.values()):
            raise JobGraphFileError("config must map option keys to string values")
        graph = JobGraph(job_id=job_id, job_name=_field(h, "jobName", str, "the header"),
                         vertices={v.id: v for v in vertices}, edges={e.id: e for e in edges},
                         settings=self._settings(_field(h, "settings", dict, "the header")), config=config,
                         plan=_field(h, "plan", dict, "the header"))
        return graph

    def _blob_table(self, table: list) -> list[bytes]:
        out = []
        for i, entry in enumerate(table):
            if (not isinstance(entry, list) or len(entry) != 2
                    or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in entry)):
                raise JobGraphFileError(f"blobs[{i}] must be [offset, length] with non-negative integers")
            offset, length = entry
            if offset + length > len(self.section):
                raise JobGraphFileError(f"blobs[{i}] ends at byte {offset + length}, after the end of the file's "
                                        f"blob section ({len(self.section)} bytes): the file is truncated")
            out.append(bytes(self.section[offset:offset + length]))
        return out

    def _blob(self, index: Any, where: str) -> bytes:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(self.blobs):
            raise JobGraphFileError(f"{where} must be the index of a blob (0..{len(self.blobs) - 1}), got {index!r}")
        return self.blobs[index]

    def _vertices(self, items: list) -> list[JobVertex]:
        if not items:
            raise JobGraphFileError("The job graph has no vertices")
        vertices, node_ids, vertex_ids = [], set(), set()
        for i, item in enumerate(items):
            where = f"vertices[{i}]"
            item = _expect(item, dict, where)
            vid = _unique_id(item, where, vertex_ids)
            parallelism = _positive(item, "parallelism", where)
            max_parallelism = _positive(item, "maxParallelism", where)
            if max_parallelism < parallelism:
                raise JobGraphFileError(f"{where}: maxParallelism {max_parallelism} is below parallelism {parallelism}")
            operators = []
            for j, op in enumerate(_field(item, "operators", list, where)):
                op_where = f"{where}.operators[{j}]"
                op = _expect(op, dict, op_where)
                node_id = _field(op, "nodeId", int, op_where)
                if node_id in node_ids:
                    raise JobGraphFileError(f"{op_where}.nodeId {node_id} is not unique in the job")
                node_ids.add(node_id)
                chained = _list_of(op, "chainedOutputs", int, op_where)
                tags = _list_of(op, "chainedSideTags", (str, type(None)), op_where)
                if tags and len(tags) != len(chained):
                    raise JobGraphFileError(f"{op_where}: chainedSideTags must be empty or as long as chainedOutputs")
                operators.append(ChainedOperator(node_id, _field(op, "name", str, op_where), tuple(chained),
                                                 tuple(_list_of(op, "networkOutputs", str, op_where)), tuple(tags)))
            if not operators:
                raise JobGraphFileError(f"{where} has no operators")
            members = {op.node_id for op in operators}
            for op in operators:
                if not set(op.chained_outputs) <= members:
                    raise JobGraphFileError(f"{where}: operator {op.node_id} chains to a node outside its vertex")
            serialized = _field(item, "serializedOperators", dict, where)
            blobs = {}
            for op in operators:
                if str(op.node_id) not in serialized:
                    raise JobGraphFileError(f"{where} has no serialized operator for node {op.node_id}")
                blobs[op.node_id] = self._blob(serialized[str(op.node_id)], f"{where}.serializedOperators")
            vertex = JobVertex(id=vid, name=_field(item, "name", str, where), parallelism=parallelism,
                               max_parallelism=max_parallelism,
                               slot_sharing_group=_field(item, "slotSharingGroup", str, where),
                               operators=operators, serialized_operators=blobs,
                               is_source=_field(item, "isSource", bool, where))
            vertex.inputs = _list_of(item, "inputs", str, where)  # edge ids; objects after _connect
            vertex.outputs = _list_of(item, "outputs", str, where)
            vertices.append(vertex)
        return vertices

    def _edges(self, items: list, vertices: list[JobVertex]) -> list[JobEdge]:
        order = {v.id: i for i, v in enumerate(vertices)}
        by_id = {v.id: v for v in vertices}
        edges, seen = [], set()
        for i, item in enumerate(items):
            where = f"edges[{i}]"
            item = _expect(item, dict, where)
            eid = _unique_id(item, where, seen)
            source, target = _field(item, "sourceVertex", str, where), _field(item, "targetVertex", str, where)
            if source not in order or target not in order:
                raise JobGraphFileError(f"{where} connects unknown vertices {source!r} -> {target!r}")
            if order[source] >= order[target]:
                raise JobGraphFileError(f"{where} goes from {source!r} back to {target!r}: vertices must be in "
                                        "topological order")
            source_node, target_node = _field(item, "sourceNode", int, where), _field(item, "targetNode", int, where)
            if source_node not in {op.node_id for op in by_id[source].operators}:
                raise JobGraphFileError(f"{where}.sourceNode {source_node} is not an operator of {source!r}")
            if target_node not in {op.node_id for op in by_id[target].operators}:
                raise JobGraphFileError(f"{where}.targetNode {target_node} is not an operator of {target!r}")
            spec = _field(item, "partitioner", dict, where)
            kind = _field(spec, "type", str, f"{where}.partitioner")
            if kind not in PARTITIONER_TYPES:
                raise JobGraphFileError(f"{where}.partitioner.type {kind!r} is not one of {', '.join(PARTITIONER_TYPES)}")
            key = spec.get("keySelector")
            if (kind == "hash") != (key is not None):
                raise JobGraphFileError(f"{where}: a hash partitioner needs a keySelector blob, and only it has one")
            selector = UserCode(self._blob(key, f"{where}.partitioner.keySelector")) if key is not None else None
            input_index = _field(item, "inputIndex", int, where)
            if input_index < 0:
                raise JobGraphFileError(f"{where}.inputIndex must not be negative")
            side_tag = item.get("sideTag")
            if side_tag is not None and not isinstance(side_tag, str):
                raise JobGraphFileError(f"{where}.sideTag must be a string or null")
            edges.append(JobEdge(id=eid, source_vertex=source, target_vertex=target, source_node=source_node,
                                 target_node=target_node, partitioner=PartitionerSpec(kind, selector),
                                 input_index=input_index, side_tag=side_tag))
        return edges

    @staticmethod
    def _connect(vertices: list[JobVertex], edges: list[JobEdge]) -> None:
        by_id = {e.id: e for e in edges}
        for v in vertices:
            for side, ids in (("inputs", v.inputs), ("outputs", v.outputs)):
                resolved = []
                for eid in ids:
                    edge = by_id.get(eid)
                    end = None if edge is None else (edge.target_vertex if side == "inputs" else edge.source_vertex)
                    if end != v.id:
                        raise JobGraphFileError(f"Vertex {v.id!r} lists edge {eid!r} among its {side}, but that "
                                                "edge does not end there")
                    resolved.append(edge)
                setattr(v, side, resolved)
            for op in v.operators:
                for eid in op.network_outputs:
                    edge = by_id.get(eid)
                    if edge is None or edge.source_vertex != v.id or edge.source_node != op.node_id:
                        raise JobGraphFileError(f"Operator {op.node_id} of vertex {v.id!r} writes to edge {eid!r}, "
                                                "which does not start at it")
        for e in edges:
            if sum(e in v.outputs for v in vertices) != 1 or sum(e in v.inputs for v in vertices) != 1:
                raise JobGraphFileError(f"Edge {e.id!r} must be listed once among its source vertex's outputs "
                                        "and once among its target vertex's inputs")

    @staticmethod
    def _settings(settings: dict) -> dict:
        checks = {"batch_mode": (bool,), "batch_size": (int,), "buffer_timeout_ms": (int, float),
                  "auto_watermark_interval_ms": (int, float), "user_paths": (list,)}
        for key, types in checks.items():
            value = settings.get(key)
            if key in settings and (not isinstance(value, types) or (bool not in types and isinstance(value, bool))):
                raise JobGraphFileError(f"settings.{key} has the wrong type ({type(value).__name__})")
        if settings.get("batch_size", 1) < 1 or settings.get("buffer_timeout_ms", 0) < 0:
            raise JobGraphFileError("settings.batch_size must be at least 1 and buffer_timeout_ms not negative")
        if not all(isinstance(p, str) for p in settings.get("user_paths", [])):
            raise JobGraphFileError("settings.user_paths must be a list of strings")
        return settings


def _expect(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise JobGraphFileError(f"{where} must be a JSON {_json_name(kind)}, got {type(value).__name__}")
    return value


def _field(obj: dict, key: str, kind: type, where: str) -> Any:
    if key not in obj:
        raise JobGraphFileError(f"{where} has no field '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise JobGraphFileError(f"{where}.{key} must be a JSON {_json_name(kind)}, got {value!r:.60}")
    return value


def _unique_id(obj: dict, where: str, seen: set[str]) -> str:
    """The non-empty ``id`` of ``obj``, not in ``seen`` (to which it is added)."""
    value = _field(obj, "id", str, where)
    if not value or value in seen:
        raise JobGraphFileError(f"{where}.id {value!r} is empty or not unique")
    seen.add(value)
    return value


def _positive(obj: dict, key: str, where: str) -> int:
    value = _field(obj, key, int, where)
    if value < 1:
        raise JobGraphFileError(f"{where}.{key} must be at least 1, got {value}")
    return value


def _list_of(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> list:
    values = _field(obj, key, list, where)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for v in values:
        if not isinstance(v, kinds) or (int in kinds and isinstance(v, bool)):
            raise JobGraphFileError(f"{where}.{key} has an element of the wrong type: {v!r:.60}")
    return values


def _json_name(kind: type) -> str:
    return {dict: "object", list: "array", str: "string", int: "integer", bool: "boolean"}.get(kind, kind.__name__)
