"""In-band events: objects that travel on a data channel in order with the record batches.

Any picklable object can be sent with :meth:`ResultPartition.broadcast_event`; the input gate
hands it to the task thread at the same position relative to the batches of that channel.
Events are small frozen dataclasses so that they compare by value and pickle cheaply.

``EndOfPartition`` is the only event the network layer interprets itself: the producer sends
it once per subpartition when the producing subtask finished, and the input gate consumes it
(a gate returns ``None`` once every channel delivered it).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EndOfPartition", "MAX_WATERMARK", "MIN_WATERMARK", "Watermark", "WatermarkStatus"]

#: Flink's Long.MIN_VALUE / Long.MAX_VALUE watermarks: "no event time yet" / "no more event time"
MIN_WATERMARK = -(2**63)
MAX_WATERMARK = 2**63 - 1


@dataclass(frozen=True, slots=True)
class EndOfPartition:
    """The producing subtask finished: no more data follows on this subpartition.

    >>> import pickle
    >>> pickle.loads(pickle.dumps(EndOfPartition())) == EndOfPartition()
    True
    """


@dataclass(frozen=True, slots=True)
class Watermark:
    """Event time has reached ``timestamp`` (epoch ms): no later record on this channel should be
    older. A finished source sends ``Watermark(MAX_WATERMARK)``."""

    timestamp: int


@dataclass(frozen=True, slots=True)
class WatermarkStatus:
    """A channel turned idle (its source has no records for a while) or active again. Idle
    channels do not hold back the minimum watermark of their consumers (Flink's WatermarkStatus)."""

    idle: bool
