"""WatermarkStrategy: how a stream gets event timestamps and watermarks (Flink's API).

>>> strategy = (WatermarkStrategy.for_bounded_out_of_orderness(datetime.timedelta(seconds=5))
...             .with_timestamp_assigner("date_time")
...             .with_idleness(datetime.timedelta(seconds=30)))
>>> stream = env.from_source(FileSource("bids/"), strategy, "bids")        # doctest: +SKIP
>>> stream = other.assign_timestamps_and_watermarks(strategy)              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Callable

from pyflow.api.durations import non_negative_millis
from pyflow.errors import ProgramError


class TimestampAssigner:
    """Extracts a record's event timestamp (epoch ms). A plain function
    ``fn(record, record_timestamp) -> int`` works as well."""

    def extract_timestamp(self, value: Any, record_timestamp: int | None) -> int:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class WatermarkStrategy:
    out_of_orderness_ms: int | None = 0
    timestamp_field: str | int | None = None
    timestamp_function: Callable[[Any, int | None], int] | None = None
    idleness_ms: int | None = None

    @staticmethod
    def for_bounded_out_of_orderness(max_out_of_orderness: int | datetime.timedelta) -> WatermarkStrategy:
        """Watermark = largest timestamp seen - max_out_of_orderness - 1 ms."""
        return WatermarkStrategy(non_negative_millis(max_out_of_orderness, "max_out_of_orderness", allow_zero=True))

    @staticmethod
    def for_monotonous_timestamps() -> WatermarkStrategy:
        """Timestamps only ever increase: watermark = largest timestamp seen - 1 ms."""
        return WatermarkStrategy(0)

    @staticmethod
    def no_watermarks() -> WatermarkStrategy:
        """Timestamps, but no watermarks (until the end of a bounded input)."""
        return WatermarkStrategy(None)

    def with_timestamp_assigner(self, assigner: str | int | Callable | TimestampAssigner) -> WatermarkStrategy:
        """A field name (or tuple position) holding epoch ms or Arrow timestamps (vectorized), or
        a function ``fn(record, record_timestamp) -> int`` / a TimestampAssigner."""
        if isinstance(assigner, (str, int)) and not isinstance(assigner, bool):
            return dataclasses.replace(self, timestamp_field=assigner, timestamp_function=None)
        if isinstance(assigner, TimestampAssigner):
            return dataclasses.replace(self, timestamp_field=None, timestamp_function=assigner.extract_timestamp)
        if callable(assigner):
            return dataclasses.replace(self, timestamp_field=None, timestamp_function=assigner)
        raise ProgramError(
            f"with_timestamp_assigner() takes a field name, a tuple position, a function "
            f"fn(record, record_timestamp) -> int, or a TimestampAssigner; got {assigner!r}")

    def with_idleness(self, idle_timeout: int | datetime.timedelta) -> WatermarkStrategy:
        """A subtask without records for ``idle_timeout`` stops holding back the watermark."""
        return dataclasses.replace(self, idleness_ms=non_negative_millis(idle_timeout, "idle_timeout"))

    def create_operator(self, name: str):
        from pyflow.runtime.operators.timestamps import TimestampsAndWatermarksOperator

        if self.timestamp_field is None and self.timestamp_function is None:
            raise ProgramError(
                f"The watermark strategy of '{name}' has no timestamp assigner; add "
                ".with_timestamp_assigner('<field>') or a function returning epoch milliseconds")
        return TimestampsAndWatermarksOperator(
            name, field=self.timestamp_field, function=self.timestamp_function,
            out_of_orderness_ms=self.out_of_orderness_ms, idleness_ms=self.idleness_ms)
