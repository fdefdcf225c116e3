"""OperationCache: the pure registry of asynchronous REST operations (stop, savepoint triggers)."""

from __future__ import annotations

import pytest

from pyflow.rest.operation_cache import OperationCache, OperationKey

KEY = OperationKey("job-a", "0" * 32)


def test_an_operation_is_in_progress_until_completed_with_its_result():
    cache = OperationCache(store_duration_s=300)
    assert cache.register(KEY, now=10.0)
    operation = cache.get(KEY, now=11.0)
    assert operation is not None and operation.in_progress and operation.result is None
    cache.complete(KEY, {"location": None}, now=12.0)
    operation = cache.get(KEY, now=13.0)
    assert not operation.in_progress and operation.result == {"location": None}
    assert operation.registered_at == 10.0 and operation.completed_at == 12.0


def test_a_completed_result_expires_store_duration_after_completion():
    cache = OperationCache(store_duration_s=300)
    cache.register(KEY, now=0.0)
    cache.complete(KEY, "done", now=100.0)
    assert cache.get(KEY, now=399.9) is not None   # retention counts from completion, not registration
    assert cache.get(KEY, now=400.0) is None
    assert len(cache) == 0


def test_operations_in_progress_never_expire():
    cache = OperationCache(store_duration_s=1)
    cache.register(KEY, now=0.0)
    assert cache.expire(now=10_000.0) == []
    assert cache.get(KEY, now=10_000.0).in_progress


def test_expire_forgets_only_what_is_old_enough():
    cache = OperationCache(store_duration_s=60)
    old, new, running = (OperationKey("job", t) for t in ("old", "new", "running"))
    for key in (old, new, running):
        cache.register(key, now=0.0)
    cache.complete(old, 1, now=0.0)
    cache.complete(new, 2, now=30.0)
    assert cache.expire(now=60.0) == [old]
    assert cache.get(new, now=60.0).result == 2 and cache.get(running, now=60.0).in_progress


def test_registering_a_known_key_again_changes_nothing():
    cache = OperationCache(store_duration_s=300)
    assert cache.register(KEY, now=0.0)
    cache.complete(KEY, "first", now=1.0)
    assert not cache.register(KEY, now=2.0)
    assert cache.get(KEY, now=3.0).result == "first"


def test_an_expired_key_can_be_registered_again():
    cache = OperationCache(store_duration_s=5)
    cache.register(KEY, now=0.0)
    cache.complete(KEY, "first", now=0.0)
    assert cache.register(KEY, now=5.0)
    assert cache.get(KEY, now=5.0).in_progress


def test_keys_are_per_job():
    cache = OperationCache(store_duration_s=300)
    cache.register(OperationKey("job-a", "t"), now=0.0)
    assert cache.get(OperationKey("job-b", "t"), now=0.0) is None
    assert cache.register(OperationKey("job-b", "t"), now=0.0)


def test_a_discarded_operation_is_unknown():
    cache = OperationCache(store_duration_s=300)
    cache.register(KEY, now=0.0)
    cache.discard(KEY)
    cache.discard(KEY)  # idempotent
    assert cache.get(KEY, now=0.0) is None


def test_completing_an_unknown_or_completed_operation_is_an_error():
    cache = OperationCache(store_duration_s=300)
    with pytest.raises(KeyError):
        cache.complete(KEY, "x", now=0.0)
    cache.register(KEY, now=0.0)
    cache.complete(KEY, "x", now=0.0)
    with pytest.raises(ValueError):
        cache.complete(KEY, "y", now=0.0)


def test_the_store_duration_must_be_positive():
    with pytest.raises(ValueError):
        OperationCache(store_duration_s=0)
