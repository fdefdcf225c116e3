"""Pass 1: transformations -> StreamGraph.

The StreamGraph has one node per physical transformation, with its final parallelism, and one
edge per physical connection. Virtual transformations (partition, union) are resolved into the
edges' partitioners here, as in Flink's ``StreamGraphGenerator``. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyflow.errors import ProgramError
from pyflow.graph.transformations import ChainingStrategy, PartitionerSpec, Transformation
from pyflow.runtime.operators.base import StreamOperator


@dataclass(eq=False)
class StreamNode:
    id: int
    name: str
    kind: str  # source | operator | sink
    operator: StreamOperator
    parallelism: int
    max_parallelism: int
    slot_sharing_group: str
    chaining_strategy: ChainingStrategy
    uid: str | None = None
    in_edges: list[StreamEdge] = field(default_factory=list)
    out_edges: list[StreamEdge] = field(default_factory=list)


@dataclass(frozen=True)
class StreamEdge:
    source_id: int
    target_id: int
    partitioner: PartitionerSpec
    #: which logical input of the target this edge feeds (always 0 for one-input operators)
    input_index: int = 0
    #: position among the target's in-edges; makes the id unique when a stream is unioned with itself
    position: int = 0
    #: the side output of the source this edge carries (None: its main output)
    side_tag: str | None = None

    @property
    def id(self) -> str:
        return f"{self.source_id}-{self.target_id}-{self.position}"


@dataclass
class StreamGraph:
    job_name: str
    nodes: dict[int, StreamNode]
    chaining_enabled: bool = True
    batch_mode: bool = False

    def topological_order(self) -> list[StreamNode]:
        indegree = {nid: len(n.in_edges) for nid, n in self.nodes.items()}
        ready = sorted(nid for nid, d in indegree.items() if d == 0)
        order: list[StreamNode] = []
        while ready:
            nid = ready.pop(0)
            order.append(self.nodes[nid])
            for edge in self.nodes[nid].out_edges:
                indegree[edge.target_id] -= 1
                if indegree[edge.target_id] == 0:
                    ready.append(edge.target_id)
                    ready.sort()
        if len(order) != len(self.nodes):  # pragma: no cover - the API cannot build cycles
            raise ProgramError("The program's graph has a cycle; iterations are not supported")
        return order

    @property
    def sources(self) -> list[StreamNode]:
        return [n for n in self.nodes.values() if n.kind == "source"]

    def to_plan(self) -> dict[str, Any]:
        """Flink's execution plan JSON (``env.get_execution_plan()``'s "nodes")."""
        nodes = []
        for node in self.topological_order():
            pact = {"source": "Data Source", "sink": "Data Sink"}.get(node.kind, "Operator")
            entry: dict[str, Any] = {
                "id": node.id,
                "type": node.name,
                "pact": pact,
                "contents": node.name,
                "parallelism": node.parallelism,
                "max_parallelism": node.max_parallelism,
                "slot_sharing_group": node.slot_sharing_group,
                "chaining_strategy": node.chaining_strategy.value,
            }
            if node.uid:
                entry["uid"] = node.uid
            if node.in_edges:
                entry["predecessors"] = [
                    {"id": e.source_id, "ship_strategy": e.partitioner.ship_strategy, "side": "second"}
                    for e in node.in_edges
                ]
            nodes.append(entry)
        return {"nodes": nodes}


def _default_group(t: Transformation, resolved: dict[int, str]) -> str:
    if t.slot_sharing_group:
        return t.slot_sharing_group
    groups = {resolved[i.id] for i in t.inputs if i.id in resolved}
    return groups.pop() if len(groups) == 1 else "default"


def build_stream_graph(
    transformations: list[Transformation],
    *,
    job_name: str,
    default_parallelism: int,
    default_max_parallelism: int,
    chaining_enabled: bool = True,
    batch_mode: bool = False,
) -> StreamGraph:
    """Turn the program's transformations into a StreamGraph."""
    if not transformations:
        raise ProgramError(
            "No operators defined in the program: add a source and a sink (for example "
            "env.from_collection([1, 2, 3]).print()) before calling execute()"
        )
    # every transformation reachable from the recorded ones, inputs first
    ordered: list[Transformation] = []
    seen: set[int] = set()

    def visit(t: Transformation) -> None:
        if t.id in seen:
            return
        seen.add(t.id)
        for i in t.inputs:
            visit(i)
        ordered.append(t)

    for t in transformations:
        visit(t)

    nodes: dict[int, StreamNode] = {}
    groups: dict[int, str] = {}
    # for virtual transformations: the physical (node id, partitioner, side tag) they stand for
    virtual: dict[int, list[tuple[int, PartitionerSpec | None, str | None]]] = {}

    def physical_inputs(t: Transformation) -> list[tuple[int, int, PartitionerSpec | None, str | None]]:
        """(logical input position, physical node id, partitioner, side tag) per input of ``t``."""
        out: list[tuple[int, int, PartitionerSpec | None, str | None]] = []
        for position, i in enumerate(t.inputs):
            entries = virtual[i.id] if i.is_virtual else [(i.id, None, None)]
            out.extend((position, nid, spec, tag) for nid, spec, tag in entries)
        return out

    for t in ordered:
        if t.kind == "union":
            virtual[t.id] = [(nid, spec, tag) for _, nid, spec, tag in physical_inputs(t)]
            groups[t.id] = _default_group(t, groups)
            continue
        if t.kind == "partition":
            virtual[t.id] = [(nid, t.partitioner, tag) for _, nid, _, tag in physical_inputs(t)]
            groups[t.id] = _default_group(t, groups)
            continue
        if t.kind == "side":
            virtual[t.id] = [(nid, spec, t.side_tag) for _, nid, spec, _ in physical_inputs(t)]
            groups[t.id] = _default_group(t, groups)
            continue
        assert t.operator is not None, t
        parallelism = t.parallelism or default_parallelism
        if t.non_parallel:
            if t.parallelism not in (None, 1):
                raise ProgramError(
                    f"The parallelism of non-parallel operator '{t.name}' must be 1, not {t.parallelism}; "
                    "remove its set_parallelism() call or use a parallel source")
            parallelism = 1
        max_parallelism = t.max_parallelism or default_max_parallelism
        if parallelism > max_parallelism:
            raise ProgramError(
                f"Operator '{t.name}' has parallelism {parallelism}, above its maximum parallelism "
                f"{max_parallelism}; raise pipeline.max-parallelism (env.set_max_parallelism) or "
                "lower the parallelism"
            )
        group = _default_group(t, groups)
        groups[t.id] = group
        node = StreamNode(
            id=t.id, name=t.name, kind=t.kind, operator=t.operator, parallelism=parallelism,
            max_parallelism=max_parallelism, slot_sharing_group=group,
            chaining_strategy=t.chaining_strategy, uid=t.uid,
        )
        nodes[t.id] = node
        two_input = getattr(t.operator, "num_inputs", 1) > 1
        for position, source_id, spec, tag in physical_inputs(t):
            source = nodes[source_id]
            if spec is None:
                kind = "forward" if source.parallelism == parallelism else "rebalance"
                spec = PartitionerSpec(kind)
            elif spec.type == "forward" and source.parallelism != parallelism:
                raise ProgramError(
                    f"Forward partitioning does not allow a change of parallelism: '{source.name}' "
                    f"has {source.parallelism}, '{node.name}' has {parallelism}; use rebalance(), "
                    "rescale() or equal parallelism"
                )
            # one-input operators see every edge (of a union too) as input 0; two-input operators
            # (connect) number their inputs by the transformation's input position
            edge = StreamEdge(source_id, t.id, spec, position if two_input else 0, len(node.in_edges), tag)
            node.in_edges.append(edge)
            source.out_edges.append(edge)
    return StreamGraph(job_name=job_name, nodes=nodes, chaining_enabled=chaining_enabled,
                       batch_mode=batch_mode)
