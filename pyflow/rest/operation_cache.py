"""OperationCache: asynchronous REST operations by trigger id (Flink's CompletedOperationCache).

A stop or savepoint trigger answers ``202 {"request-id": triggerid}`` at once; the client polls
``GET /jobs/:jobid/savepoints/:triggerid`` until the operation is COMPLETED. This cache is the
bookkeeping behind it, pure: every call takes the time (``now``, seconds on a monotonic clock) and
nothing here waits, locks or touches I/O. Operations in progress are kept until they complete; a
completed one is kept for ``store_duration_s`` after it completed (``rest.async.store-duration``),
then forgotten, so its trigger id becomes unknown (404), as in Flink.

Keys are ``(job id, trigger id)``; results are opaque to the cache.

>>> cache = OperationCache(store_duration_s=300)
>>> key = OperationKey("job", "t1")
>>> cache.register(key, now=0.0)
True
>>> cache.get(key, now=1.0).in_progress
True
>>> cache.complete(key, {"location": None}, now=2.0)
>>> cache.get(key, now=3.0).result
{'location': None}
>>> cache.get(key, now=303.0) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class OperationKey:
    """An asynchronous operation of a job (Flink's AsynchronousJobOperationKey)."""

    job_id: str
    trigger_id: str


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: in progress (``completed_at`` None) or completed with ``result``."""

    registered_at: float
    completed_at: float | None = None
    result: Any = None

    @property
    def in_progress(self) -> bool:
        return self.completed_at is None


class OperationCache:
    def __init__(self, store_duration_s: float):
        if store_duration_s <= 0:
            raise ValueError(f"store_duration_s must be positive, got {store_duration_s}")
        self.store_duration_s = store_duration_s
        self._operations: dict[OperationKey, Operation] = {}

    def __len__(self) -> int:
        return len(self._operations)

    def register(self, key: OperationKey, now: float) -> bool:
        """Start tracking ``key``; False (and nothing changes) when it is known already, which
        makes a trigger with a client-chosen trigger id idempotent, as in Flink."""
        self.expire(now)
        if key in self._operations:
            return False
        self._operations[key] = Operation(registered_at=now)
        return True

    def complete(self, key: OperationKey, result: Any, now: float) -> None:
        """Record the result of an operation in progress; its retention starts now. Completing an
        unknown or already completed operation is a programming error."""
        operation = self._operations.get(key)
        if operation is None:
            raise KeyError(f"no operation {key} is registered")
        if not operation.in_progress:
            raise ValueError(f"operation {key} was completed already")
        self._operations[key] = Operation(registered_at=operation.registered_at, completed_at=now, result=result)

    def discard(self, key: OperationKey) -> None:
        """Forget an operation whose trigger was refused (it never started)."""
        self._operations.pop(key, None)

    def get(self, key: OperationKey, now: float) -> Operation | None:
        """The operation, or None when it is unknown or its result expired."""
        self.expire(now)
        return self._operations.get(key)

    def expire(self, now: float) -> list[OperationKey]:
        """Forget completed operations older than the store duration; returns their keys."""
        expired = [k for k, op in self._operations.items()
                   if op.completed_at is not None and now - op.completed_at >= self.store_duration_s]
        for k in expired:
            del self._operations[k]
        return expired
