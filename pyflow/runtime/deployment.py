"""TaskDeploymentDescriptor: everything a TaskManager needs to run one subtask of a chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyflow.graph.job_graph import ChainedOperator
from pyflow.graph.transformations import PartitionerSpec


@dataclass(frozen=True)
class ResultPartitionDeployment:
    partition_id: str
    edge_id: str
    #: the chain operator that writes into this partition
    source_node: int
    num_subpartitions: int
    partitioner: PartitionerSpec
    max_parallelism: int
    side_tag: str | None = None
    #: BATCH execution: the consumer reads it after the producer finished (spilled to disk if large)
    blocking: bool = False


@dataclass(frozen=True)
class InputChannelDeployment:
    partition_id: str
    subpartition_index: int
    host: str
    port: int
    input_index: int
    producer_task: str
    producer_resource_id: str = ""


@dataclass(frozen=True)
class TaskDeploymentDescriptor:
    job_id: str
    job_name: str
    execution_id: str
    allocation_id: str
    vertex_id: str
    task_name: str
    subtask_index: int
    parallelism: int
    max_parallelism: int
    attempt_number: int
    operators: tuple[ChainedOperator, ...]
    serialized_operators: dict[int, bytes]
    is_source: bool
    outputs: tuple[ResultPartitionDeployment, ...]
    inputs: tuple[InputChannelDeployment, ...]
    #: batch_mode, batch_size, buffer_timeout_ms, user_paths
    settings: dict[str, Any] = field(default_factory=dict)
