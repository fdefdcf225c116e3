"""Pass 2: StreamGraph -> JobGraph (operator chaining and slot sharing).

A JobVertex is one chain of StreamNodes that runs as one task per subtask; the batches inside a
chain pass by function call. ``is_chainable`` is Flink's ``StreamingJobGraphGenerator
.isChainable``, one rule per line, and ``required_slots`` is Flink's slot-sharing arithmetic:
each slot sharing group needs as many slots as its highest parallelism. Pure: no I/O.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import cloudpickle

from pyflow.errors import ProgramError, SerializationError
from pyflow.graph.stream_graph import StreamEdge, StreamGraph, StreamNode
from pyflow.graph.transformations import ChainingStrategy, PartitionerSpec


def is_chainable(edge: StreamEdge, graph: StreamGraph) -> bool:
    """May the edge's target join the chain of its source? (Flink's rules, all must hold.)"""
    upstream = graph.nodes[edge.source_id]
    downstream = graph.nodes[edge.target_id]
    return (
        graph.chaining_enabled
        and len(downstream.in_edges) == 1  # single input
        and upstream.slot_sharing_group == downstream.slot_sharing_group
        and downstream.chaining_strategy is ChainingStrategy.ALWAYS
        and upstream.chaining_strategy in (ChainingStrategy.ALWAYS, ChainingStrategy.HEAD)
        and edge.partitioner.type == "forward"
        and upstream.parallelism == downstream.parallelism
    )


@dataclass(frozen=True)
class ChainedOperator:
    """One operator of a chain: its node, and where its output goes inside the chain."""

    node_id: int
    name: str
    #: node ids of chained successors (batches go to them by function call)
    chained_outputs: tuple[int, ...]
    #: ids of the JobEdges this operator writes to over the network
    network_outputs: tuple[str, ...]
    #: the side output tag of each chained output (None: the main output)
    chained_side_tags: tuple[str | None, ...] = ()


@dataclass(eq=False)
class JobVertex:
    id: str
    name: str
    parallelism: int
    max_parallelism: int
    slot_sharing_group: str
    #: the chain, head first, in topological order
    operators: list[ChainedOperator]
    #: pickled operators by node id (each subtask unpickles its own copy)
    serialized_operators: dict[int, bytes] = field(default_factory=dict)
    is_source: bool = False
    inputs: list[JobEdge] = field(default_factory=list)
    outputs: list[JobEdge] = field(default_factory=list)

    @property
    def head_id(self) -> int:
        return self.operators[0].node_id


@dataclass(frozen=True)
class JobEdge:
    id: str
    source_vertex: str
    target_vertex: str
    source_node: int
    target_node: int
    partitioner: PartitionerSpec
    input_index: int
    side_tag: str | None = None

    @property
    def pointwise(self) -> bool:
        return self.partitioner.pointwise


@dataclass
class JobGraph:
    job_id: str
    job_name: str
    vertices: dict[str, JobVertex]  # in topological order
    edges: dict[str, JobEdge]
    #: facts the runtime needs: batch mode, buffer timeout, batch size, user code paths
    settings: dict[str, Any] = field(default_factory=dict)
    #: the job's own configuration (Configuration.to_dict()), merged over the cluster's for its tasks
    config: dict[str, str] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)

    def required_slots(self) -> int:
        return required_slots(self)

    def slot_sharing_groups(self) -> dict[str, int]:
        groups: dict[str, int] = {}
        for v in self.vertices.values():
            groups[v.slot_sharing_group] = max(groups.get(v.slot_sharing_group, 0), v.parallelism)
        return groups

    def to_plan(self) -> dict[str, Any]:
        return {
            "jid": self.job_id,
            "name": self.job_name,
            "nodes": [
                {
                    "id": v.id,
                    "description": v.name,
                    "parallelism": v.parallelism,
                    "maxParallelism": v.max_parallelism,
                    "slotSharingGroup": v.slot_sharing_group,
                    "operators": [op.name for op in v.operators],
                    "inputs": [
                        {"id": e.source_vertex, "ship_strategy": e.partitioner.ship_strategy,
                         "exchange": "pipelined_bounded", "num": i}
                        for i, e in enumerate(v.inputs)
                    ],
                }
                for v in self.vertices.values()
            ],
            "requiredSlots": self.required_slots(),
        }


def required_slots(job_graph: JobGraph) -> int:
    """Slots a job needs: per slot sharing group its highest parallelism, summed over groups."""
    return sum(job_graph.slot_sharing_groups().values())


def _vertex_id(head: StreamNode) -> str:
    # stable across runs of the same program: derived from uid when given, else the node id
    return f"v{head.id}" if not head.uid else f"uid-{head.uid}"


def user_modules() -> list[Any]:
    """Modules of the user's own code: loaded from files outside the standard library,
    site-packages and pyflow. They travel inside the job (pickled by value), so TaskManagers need
    not have them on their path - a helper module next to the job file just works."""
    import sys
    import sysconfig

    excluded = {os.path.realpath(p) for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}}
    excluded.add(os.path.realpath(os.path.dirname(os.path.dirname(__file__))))
    excluded.update(os.path.realpath(p) for p in sys.path if "site-packages" in p or "dist-packages" in p)
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or name == "__main__" or not path.endswith(".py"):
            continue
        real = os.path.realpath(path)
        if not any(real.startswith(e + os.sep) for e in excluded):
            found.append(module)
    return found


def pickle_user_code(obj: Any, modules: list[Any], failure: Callable[[Exception], str]) -> bytes:
    """``obj`` (user code: an operator, a key selector) pickled with cloudpickle, ``modules`` (the
    user's own, :func:`user_modules`) by value; SerializationError with ``failure(error)`` as its
    message when it cannot be."""
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps(obj)
    except Exception as e:  # noqa: BLE001 - anything pickle raises is the user's code
        raise SerializationError(failure(e)) from e
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)


def _serialize(node: StreamNode, modules: list[Any]) -> bytes:
    def failure(e: Exception) -> str:
        fn = getattr(node.operator, "function", None)
        what = f"the function {getattr(fn, '__qualname__', fn)!r}" if fn is not None else "it"
        return (f"Cannot ship operator '{node.name}' to the TaskManagers: {what} cannot be pickled "
                f"({type(e).__name__}: {e}). Functions must be picklable by cloudpickle: do not capture "
                "open files, sockets, locks or clients in them; create such resources in open() of a "
                "rich function instead")

    return pickle_user_code(node.operator, modules, failure)


def build_job_graph(graph: StreamGraph, job_id: str, *, serialize: bool = True) -> JobGraph:
    """Chain the StreamGraph's nodes into JobVertices and connect them with JobEdges."""
    order = graph.topological_order()
    head_of: dict[int, int] = {}
    for node in order:
        chained_in = [e for e in node.in_edges if is_chainable(e, graph)]
        head_of[node.id] = head_of[chained_in[0].source_id] if chained_in else node.id

    members: dict[int, list[StreamNode]] = {}
    for node in order:
        members.setdefault(head_of[node.id], []).append(node)

    vertices: dict[str, JobVertex] = {}
    vertex_of_head: dict[int, JobVertex] = {}
    for head_id, nodes in members.items():
        head = graph.nodes[head_id]
        name = " -> ".join(n.name for n in nodes)
        vertex = JobVertex(
            id=_vertex_id(head), name=name, parallelism=head.parallelism,
            max_parallelism=head.max_parallelism, slot_sharing_group=head.slot_sharing_group,
            operators=[], is_source=head.kind == "source",
        )
        if vertex.id in vertices:
            raise ProgramError(f"Two operators have the same uid '{head.uid}'; give each operator its own uid")
        vertices[vertex.id] = vertex
        vertex_of_head[head_id] = vertex

    edges: dict[str, JobEdge] = {}
    for node in order:
        for e in node.out_edges:
            if head_of[e.target_id] == head_of[node.id] and is_chainable(e, graph):
                continue
            job_edge = JobEdge(
                id=f"e{e.id}", source_vertex=vertex_of_head[head_of[node.id]].id,
                target_vertex=vertex_of_head[head_of[e.target_id]].id, source_node=node.id,
                target_node=e.target_id, partitioner=e.partitioner, input_index=e.input_index,
                side_tag=e.side_tag,
            )
            edges[job_edge.id] = job_edge
            vertices[job_edge.source_vertex].outputs.append(job_edge)
            vertices[job_edge.target_vertex].inputs.append(job_edge)

    modules = user_modules() if serialize else []
    for head_id, nodes in members.items():
        vertex = vertex_of_head[head_id]
        for node in nodes:
            chained_edges = [e for e in node.out_edges if head_of[e.target_id] == head_id and is_chainable(e, graph)]
            network = tuple(je.id for je in vertex.outputs if je.source_node == node.id)
            vertex.operators.append(ChainedOperator(
                node.id, node.name, tuple(e.target_id for e in chained_edges), network,
                tuple(e.side_tag for e in chained_edges)))
            if serialize:
                vertex.serialized_operators[node.id] = _serialize(node, modules)

    job_graph = JobGraph(job_id=job_id, job_name=graph.job_name, vertices=vertices, edges=edges)
    job_graph.plan = {"streamGraph": graph.to_plan(), "jobGraph": job_graph.to_plan()}
    return job_graph
