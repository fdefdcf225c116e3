"""KeyedProcessOperator: a KeyedProcessFunction with keyed state and timers (Flink's).

Each subtask owns a keyed state backend over its key-group range and a timer service. For every
record the current key is set, so ``runtime_context.get_state(...)`` reads and writes that key's
state; timers registered in ``process_element`` fire ``on_timer`` with the same key current:
event-time timers when the watermark passes them (before the watermark goes downstream),
processing-time timers when the wall clock does. Outputs keep the record's timestamp, or get the
timer's timestamp when emitted from ``on_timer``.
"""

from __future__ import annotations


from pyflow.runtime import records
from pyflow.runtime.operators.functions import ProcessContext, UserFunctionOperator, _Emitter
from pyflow.runtime.timer_service import EVENT_TIME, PROCESSING_TIME, InternalTimerService


class TimerFiring:
    """Fires due timers of a keyed operator: each with its key current, into ``on_timer``
    (``self._on_timer``), outputs stamped with the timer's time. Shared by the keyed one- and
    two-input process operators."""

    def _fire_timers(self, timers, domain: str) -> None:
        if self._on_timer is None:
            for _ in timers:  # no on_timer: timers just expire
                pass
            return
        ctx = self._context
        emitter = _Emitter(with_ts=True)
        for timestamp, key, _ in timers:
            self.backend.set_current_key(key)
            ctx._current_key = key
            ctx._timestamp = timestamp
            ctx._time_domain = domain
            emitter.add(self._on_timer(timestamp, ctx), timestamp)
        ctx._time_domain = None
        emitter.emit(self)


class KeyedProcessOperator(TimerFiring, UserFunctionOperator):
    keyed = True

    def __init__(self, name, function, call, key_selector, output_schema=None):
        super().__init__(name, function, call, output_schema)
        self.key_selector = key_selector

    def open(self) -> None:
        self.backend = self.create_keyed_state_backend()
        self.timers = InternalTimerService()
        self._context = ProcessContext(self.ctx, self.timers)
        on_timer = getattr(self.function, "on_timer", None)
        self._on_timer = on_timer if callable(on_timer) else None
        super().open()  # the user's open(runtime_context) may get state now

    def process_batch(self, batch) -> None:
        fn = self.call
        ctx = self._context
        backend = self.backend
        rows = records.batch_to_rows(batch)
        keys = self.key_selector.keys(batch, rows)
        ts_array = records.timestamps(batch)
        ts = ts_array.to_pylist() if ts_array is not None else None
        emitter = _Emitter(ts is not None)
        for i, row in enumerate(rows):
            key = keys[i]
            backend.set_current_key(key)
            ctx._current_key = key
            ctx._timestamp = ts[i] if ts is not None else None
            emitter.add(fn(row, ctx), ctx._timestamp)
        emitter.emit(self)

    def process_watermark(self, watermark) -> None:
        self._fire_timers(self.timers.advance_watermark(watermark.timestamp), EVENT_TIME)
        self.output.emit_watermark(watermark)

    def on_processing_time(self, now_ms: float) -> None:
        self._fire_timers(self.timers.advance_processing_time(int(self.ctx.processing_time())), PROCESSING_TIME)
