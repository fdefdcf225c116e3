"""Pass 3: JobGraph -> ExecutionGraph (subtasks, result partitions, channels, slots).

Every JobVertex expands into ``parallelism`` subtasks. Every JobEdge gives each producer subtask
one result partition whose subpartitions are the consumer subtasks it feeds: all of them for
all-to-all edges (hash, rebalance, broadcast, ...), a contiguous range for pointwise edges
(forward, rescale), with Flink's ``EdgeManagerBuildUtil.connectPointwise`` arithmetic. Slot
sharing puts subtask *i* of every vertex of a group into the group's shared slot *i*. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyflow.graph.job_graph import JobEdge, JobGraph, JobVertex


@dataclass(frozen=True, slots=True)
class ExecutionVertexID:
    vertex_id: str
    subtask_index: int

    def __str__(self) -> str:
        return f"{self.vertex_id}#{self.subtask_index}"


@dataclass(frozen=True, slots=True)
class SlotKey:
    """A shared slot: subtask i of every vertex in the group runs in slot (group, i)."""

    group: str
    index: int


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition_id: str
    edge_id: str
    producer: ExecutionVertexID
    #: subpartition k is read by consumer subtask consumers[k]
    consumers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class InputChannelInfo:
    edge_id: str
    input_index: int
    partition_id: str
    producer: ExecutionVertexID
    subpartition_index: int


@dataclass
class ExecutionVertex:
    id: ExecutionVertexID
    job_vertex: JobVertex
    slot: SlotKey
    partitions: list[PartitionInfo] = field(default_factory=list)
    inputs: list[InputChannelInfo] = field(default_factory=list)

    @property
    def task_name(self) -> str:
        return f"{self.job_vertex.name} ({self.id.subtask_index + 1}/{self.job_vertex.parallelism})"


def pointwise_consumers(producer: int, p_up: int, p_down: int) -> tuple[int, ...]:
    """Consumer subtasks fed by producer subtask ``producer`` on a pointwise edge."""
    if p_up == p_down:
        return (producer,)
    if p_up > p_down:
        # several producers per consumer: consumer j reads producers [j*p_up//p_down, (j+1)*p_up//p_down)
        for j in range(p_down):
            if j * p_up // p_down <= producer < (j + 1) * p_up // p_down:
                return (j,)
        raise AssertionError((producer, p_up, p_down))  # pragma: no cover
    # Flink: start = ceil(i * p_down / p_up), end = ceil((i + 1) * p_down / p_up)
    start = -(-producer * p_down // p_up)
    end = -(-(producer + 1) * p_down // p_up)
    return tuple(range(start, end))


def consumers_of(edge: JobEdge, producer: int, p_up: int, p_down: int) -> tuple[int, ...]:
    if edge.pointwise:
        return pointwise_consumers(producer, p_up, p_down)
    return tuple(range(p_down))


@dataclass
class ExecutionGraph:
    job_graph: JobGraph
    vertices: dict[ExecutionVertexID, ExecutionVertex]

    @property
    def slots(self) -> list[SlotKey]:
        return sorted({v.slot for v in self.vertices.values()}, key=lambda s: (s.group, s.index))

    def by_slot(self) -> dict[SlotKey, list[ExecutionVertex]]:
        out: dict[SlotKey, list[ExecutionVertex]] = {}
        for v in self.vertices.values():
            out.setdefault(v.slot, []).append(v)
        return out


def build_execution_graph(job_graph: JobGraph) -> ExecutionGraph:
    vertices: dict[ExecutionVertexID, ExecutionVertex] = {}
    for jv in job_graph.vertices.values():
        for i in range(jv.parallelism):
            evid = ExecutionVertexID(jv.id, i)
            vertices[evid] = ExecutionVertex(evid, jv, SlotKey(jv.slot_sharing_group, i))

    for edge in job_graph.edges.values():
        up = job_graph.vertices[edge.source_vertex]
        down = job_graph.vertices[edge.target_vertex]
        for i in range(up.parallelism):
            producer = ExecutionVertexID(up.id, i)
            consumers = consumers_of(edge, i, up.parallelism, down.parallelism)
            partition = PartitionInfo(f"{edge.id}.{i}", edge.id, producer, consumers)
            vertices[producer].partitions.append(partition)
            for k, j in enumerate(consumers):
                vertices[ExecutionVertexID(down.id, j)].inputs.append(
                    InputChannelInfo(edge.id, edge.input_index, partition.partition_id, producer, k))
    return ExecutionGraph(job_graph, vertices)
