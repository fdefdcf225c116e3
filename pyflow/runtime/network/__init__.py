"""The data plane: record batches and in-band events between tasks, over TCP, like Flink's
Netty shuffle.

Design
------
Every TaskManager process runs one :class:`NetworkEnvironment`, which runs one data server.
Data between two tasks always crosses an Arrow IPC channel over TCP, also when both tasks are
threads of the same process (they talk via 127.0.0.1), so one code path serves local and
remote exchanges and a test with two environments in one process is a faithful model of two
TaskManagers.

* A **producer** task writes into a :class:`ResultPartition` with one subpartition per consumer
  channel. ``emit`` slices batches bigger than ``segment_size`` bytes / ``batch_size`` rows,
  splits them with a vectorized :class:`Partitioner` (hash / rebalance / broadcast / ...),
  coalesces small pieces per subpartition (until ``batch_size`` rows, or until the flusher sends
  them after ``buffer_timeout_ms``; 0 sends every emit at once) and enqueues buffers on a
  bounded per-subpartition queue. A full queue blocks ``emit``: that is the backpressure.
* A **consumer** task reads from an :class:`InputGate`: one TCP connection per input channel to
  the producer TaskManager's data server, requesting ``(partition_id, subpartition_index)``.
  The server keeps a registry with create-on-demand from either side, so a consumer may connect
  before the producer task created its partition. Connecting retries with backoff until
  ``connect_timeout_s``.
* **Credit-based flow control** (Flink's): a channel announces credit = ``buffers_per_channel``
  exclusive + its share of ``floating_buffers_per_gate``; the producer's sender thread sends a
  BATCH or EVENT frame only while it has credit, and the gate returns one credit each time the
  task takes an item out. Memory per channel is bounded by
  ``(queue capacity + 1 pending + credit)`` buffers whatever the input size.
* **Events** (:class:`EndOfPartition`, later watermarks and checkpoint barriers: any picklable
  object) travel in order with the batches on every channel; ``broadcast_event`` flushes
  pending data first. The gate consumes EndOfPartition and returns ``None`` after the last one.
* **Blocking partitions** (``create_result_partition(..., blocking=True)``, Flink's BLOCKING
  batch shuffle) take the whole output without any consumer connected: buffers stay in memory
  within the environment's ``blocking_memory_budget`` and spill to Arrow IPC stream files
  beyond it; consumers read them after ``finish()`` with the same frames and credit, also after
  the producer's task ended (:mod:`pyflow.runtime.network.blocking_partition`).
* **Failures** become :class:`pyflow.errors.NetworkError` naming the producer's address and the
  partition (the consumer's ``next`` when a channel breaks before EndOfPartition; the producer's
  ``emit`` when its consumer's connection breaks) and
  :class:`pyflow.errors.CancelTaskError` for cancellation and environment shutdown.

The wire format is in :mod:`pyflow.runtime.network.frames`.

>>> import pyarrow as pa
>>> with NetworkEnvironment() as tm1, NetworkEnvironment() as tm2:
...     gate = tm2.create_input_gate([ChannelSpec("map-0", 0, *tm1.address)])  # consumer first
...     out = tm1.create_result_partition("map-0", 1, ForwardPartitioner())
...     out.emit(pa.record_batch({"word": ["a", "b"]}))
...     out.finish()
...     gate.next(timeout=10)[1].num_rows, gate.next(timeout=10)
(2, None)
"""

from pyflow.runtime.network.blocking_partition import BlockingResultPartition
from pyflow.runtime.network.events import MAX_WATERMARK, MIN_WATERMARK, EndOfPartition, Watermark, WatermarkStatus
from pyflow.runtime.network.input_gate import ChannelSpec, InputGate
from pyflow.runtime.network.partitioners import (
    BroadcastPartitioner,
    ForwardPartitioner,
    GlobalPartitioner,
    KeyGroupStreamPartitioner,
    Partitioner,
    RebalancePartitioner,
    RescalePartitioner,
    ShufflePartitioner,
    partitioner_from_spec,
)
from pyflow.runtime.network.result_partition import ResultPartition
from pyflow.runtime.network.server import NetworkEnvironment

__all__ = [
    "BlockingResultPartition",
    "BroadcastPartitioner",
    "ChannelSpec",
    "EndOfPartition",
    "MAX_WATERMARK",
    "MIN_WATERMARK",
    "Watermark",
    "WatermarkStatus",
    "ForwardPartitioner",
    "GlobalPartitioner",
    "InputGate",
    "KeyGroupStreamPartitioner",
    "NetworkEnvironment",
    "Partitioner",
    "RebalancePartitioner",
    "RescalePartitioner",
    "ResultPartition",
    "ShufflePartitioner",
    "partitioner_from_spec",
]
