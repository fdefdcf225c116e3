"""WatermarkValve: a task's input watermark from its channels' watermarks (Flink's
StatusWatermarkValve). Pure: events in, the watermark or status to forward out.

A task's watermark is the minimum over its input channels' watermarks, never going back.
Idle channels (WatermarkStatus(idle=True)) do not hold it back; when every channel is idle, the
task itself is idle. A channel that turns active again only rejoins the minimum once its
watermark has caught up with the task's (so the output watermark never regresses).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyflow.runtime.network.events import MIN_WATERMARK


@dataclass
class _Channel:
    watermark: int = MIN_WATERMARK
    idle: bool = False
    aligned: bool = True  # takes part in the minimum


class WatermarkValve:
    def __init__(self, num_channels: int):
        self.channels = [_Channel() for _ in range(num_channels)]
        self.last_output = MIN_WATERMARK
        self.idle = False

    def input_watermark(self, channel: int, timestamp: int) -> int | None:
        """A watermark arrived on ``channel``; returns the task's new watermark, if it advanced."""
        ch = self.channels[channel]
        if ch.idle or timestamp <= ch.watermark:
            return None
        ch.watermark = timestamp
        if not ch.aligned and timestamp >= self.last_output:
            ch.aligned = True
        return self._advance()

    def input_status(self, channel: int, idle: bool) -> tuple[int | None, bool | None]:
        """A channel's status changed; returns (new watermark or None, new task status or None)."""
        ch = self.channels[channel]
        if ch.idle == idle:
            return None, None
        ch.idle = idle
        if idle:
            ch.aligned = False
            if all(c.idle for c in self.channels):
                self.idle = True
                return None, True
            return self._advance(), None
        # active again: rejoins the minimum once it caught up
        ch.aligned = ch.watermark >= self.last_output
        if self.idle:
            self.idle = False
            return None, False
        return None, None

    def _advance(self) -> int | None:
        aligned = [c.watermark for c in self.channels if c.aligned and not c.idle]
        if not aligned:
            return None
        new = min(aligned)
        if new > self.last_output:
            self.last_output = new
            return new
        return None
