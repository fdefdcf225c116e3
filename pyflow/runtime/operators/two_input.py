"""Two-input operators: connected streams (CoMap, CoFlatMap, CoProcess, KeyedCoProcess) and
broadcast state (BroadcastProcessFunction, KeyedBroadcastProcessFunction), as in Flink.

The task calls ``process_batch`` for input 0 and ``process_batch2`` for input 1; the watermark
is the minimum over both inputs' channels. Keyed variants keep per-key state and timers exactly
as KeyedProcessOperator does, each input keyed by its own key selector.
"""

from __future__ import annotations

from typing import Any, Callable

from pyflow.errors import ProgramError
from pyflow.runtime import records
from pyflow.runtime.operators.functions import ProcessContext, UserFunctionOperator, _Emitter
from pyflow.runtime.operators.keyed_process import TimerFiring
from pyflow.runtime.timer_service import EVENT_TIME, PROCESSING_TIME, InternalTimerService


class CoOperator(TimerFiring, UserFunctionOperator):
    """``call1(value, ctx)`` / ``call2(value, ctx)`` return iterables of results (adapters turn
    map1/map2 and flat_map1/flat_map2 into that shape); key selectors make it keyed."""

    num_inputs = 2

    def __init__(self, name: str, function: Any, call1: Callable, call2: Callable,
                 key_selectors: tuple[Any, Any] | None = None, output_schema=None):
        super().__init__(name, function, call1, output_schema)
        self.call2 = call2
        self.key_selectors = key_selectors
        self.keyed = key_selectors is not None

    def open(self) -> None:
        self.backend = None
        self.timers = None
        if self.keyed:
            self.backend = self.create_keyed_state_backend()
            self.timers = InternalTimerService()
        self._context = ProcessContext(self.ctx, self.timers)
        on_timer = getattr(self.function, "on_timer", None)
        self._on_timer = on_timer if callable(on_timer) and self.keyed else None
        super().open()

    def _process(self, batch, call: Callable, input_index: int) -> None:
        ctx = self._context
        rows = records.batch_to_rows(batch)
        # a keyed input sets the current key; a broadcast input (no selector) has none
        selector = self.key_selectors[input_index] if self.keyed else None
        keys = selector.keys(batch, rows) if selector is not None else None
        ts_array = records.timestamps(batch)
        ts = ts_array.to_pylist() if ts_array is not None else None
        emitter = _Emitter(ts is not None)
        for i, row in enumerate(rows):
            if keys is not None:
                self.backend.set_current_key(keys[i])
            ctx._current_key = keys[i] if keys is not None else None
            ctx._timestamp = ts[i] if ts is not None else None
            emitter.add(call(row, ctx), ctx._timestamp)
        emitter.emit(self)

    def process_batch(self, batch) -> None:
        self._process(batch, self.call, 0)

    def process_batch2(self, batch) -> None:
        self._process(batch, self.call2, 1)

    def process_watermark(self, watermark) -> None:
        if self.timers is not None:
            self._fire_timers(self.timers.advance_watermark(watermark.timestamp), EVENT_TIME)
        self.output.emit_watermark(watermark)

    def on_processing_time(self, now_ms: float) -> None:
        if self.timers is not None:
            self._fire_timers(self.timers.advance_processing_time(int(self.ctx.processing_time())), PROCESSING_TIME)


class BroadcastState(dict):
    """Broadcast state: the same map on every subtask, written only by the broadcast side
    (Flink's BroadcastState, MapState's methods). The element side gets a read-only view."""

    def put(self, key: Any, value: Any) -> None:
        self[key] = value

    def put_all(self, mapping: dict) -> None:
        self.update(mapping)

    def remove(self, key: Any) -> None:
        self.pop(key, None)

    def contains(self, key: Any) -> bool:
        return key in self

    def is_empty(self) -> bool:
        return not self


class ReadOnlyBroadcastState:
    def __init__(self, state: BroadcastState):
        self._state = state

    def get(self, key: Any, default: Any = None) -> Any:
        return self._state.get(key, default)

    def contains(self, key: Any) -> bool:
        return key in self._state

    def items(self):
        return list(self._state.items())

    def keys(self):
        return list(self._state.keys())

    def values(self):
        return list(self._state.values())

    def put(self, key: Any, value: Any) -> None:
        raise ProgramError("Broadcast state is read-only in process_element; update it in "
                           "process_broadcast_element, where every subtask sees the same updates")

    remove = put


class BroadcastOperator(CoOperator):
    """Input 0: the (keyed or not) element stream; input 1: the broadcast stream."""

    def __init__(self, name, function, descriptors, key_selector=None, output_schema=None):
        super().__init__(name, function, self._element, self._broadcast_element,
                         key_selectors=(key_selector, None) if key_selector is not None else None,
                         output_schema=output_schema)
        self.descriptor_names = [d.name for d in descriptors]

    def open(self) -> None:
        self._broadcast_state = {name: BroadcastState() for name in self.descriptor_names}
        super().open()

    def _state(self, descriptor, writable: bool):
        state = self._broadcast_state.get(descriptor.name)
        if state is None:
            raise ProgramError(
                f"No broadcast state named '{descriptor.name}': pass its descriptor to broadcast(...); "
                f"known: {', '.join(self.descriptor_names) or 'none'}")
        return state if writable else ReadOnlyBroadcastState(state)

    def _element(self, value, ctx):
        ctx.get_broadcast_state = lambda d: self._state(d, writable=False)
        return self.function.process_element(value, ctx)

    def _broadcast_element(self, value, ctx):
        ctx.get_broadcast_state = lambda d: self._state(d, writable=True)
        return self.function.process_broadcast_element(value, ctx)


def adapt(function: Any, kind: str) -> tuple[Callable, Callable]:
    """(call1, call2) in the (value, ctx) -> iterable shape, for a co-function of ``kind``."""
    if kind == "map":
        f1, f2 = function.map1, function.map2
        return (lambda v, ctx: (f1(v),)), (lambda v, ctx: (f2(v),))
    if kind == "flat_map":
        f1, f2 = function.flat_map1, function.flat_map2
        return (lambda v, ctx: f1(v)), (lambda v, ctx: f2(v))
    return function.process_element1, function.process_element2
