"""Program compilation as ordered pure passes (Flink's graph generators):

transformations --build_stream_graph--> StreamGraph --build_job_graph--> JobGraph (chains, slot
sharing) --build_execution_graph--> ExecutionGraph (subtasks, partitions, channels, slots).
"""

from pyflow.graph.execution_graph import ExecutionGraph, build_execution_graph
from pyflow.graph.job_graph import JobEdge, JobGraph, JobVertex, build_job_graph, is_chainable, required_slots
from pyflow.graph.stream_graph import StreamEdge, StreamGraph, StreamNode, build_stream_graph
from pyflow.graph.transformations import ChainingStrategy, PartitionerSpec, Transformation

__all__ = [
    "ChainingStrategy", "ExecutionGraph", "JobEdge", "JobGraph", "JobVertex", "PartitionerSpec",
    "StreamEdge", "StreamGraph", "StreamNode", "Transformation", "build_execution_graph",
    "build_job_graph", "build_stream_graph", "is_chainable", "required_slots",
]
