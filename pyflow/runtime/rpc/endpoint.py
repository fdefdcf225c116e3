"""RpcEndpoint: one control loop per endpoint (Flink's RpcEndpoint main thread).

All state of an endpoint changes on its own single thread: gRPC handlers and timers hand work to
it with ``run_async`` / ``call`` / ``schedule`` and never touch the state themselves. User code
never runs on it (tasks have their own threads).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from pyflow.errors import RpcTimeout

T = TypeVar("T")
logger = logging.getLogger(__name__)


class RpcEndpoint:
    def __init__(self, name: str):
        self.endpoint_name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._timers: set[threading.Timer] = set()
        self._timers_lock = threading.Lock()
        self._closed = threading.Event()
        self._main_thread_ident: int | None = None
        self._executor.submit(self._remember_thread).result()

    def _remember_thread(self) -> None:
        self._main_thread_ident = threading.get_ident()

    def on_main_thread(self) -> bool:
        return threading.get_ident() == self._main_thread_ident

    def run_async(self, fn: Callable[..., T], *args: Any) -> Future:
        """Run ``fn`` on the endpoint's thread; the returned future holds its result."""
        if not self._closed.is_set():
            try:
                return self._executor.submit(self._guarded, fn, *args)
            except RuntimeError:  # closed between the check and the submit
                pass
        f: Future = Future()
        f.set_exception(RuntimeError(f"{self.endpoint_name} is closed"))
        return f

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except Exception:
            logger.exception("Unhandled error on the main thread of %s", self.endpoint_name)
            raise

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 30.0) -> T:
        """Run ``fn`` on the endpoint's thread and wait for its result (not from that thread)."""
        if self.on_main_thread():
            return fn(*args)
        future = self.run_async(fn, *args)
        try:
            return future.result(timeout)
        except CancelledError:  # the endpoint closed with the call still queued
            raise RuntimeError(f"{self.endpoint_name} is closed") from None
        except TimeoutError as e:
            raise RpcTimeout(f"{self.endpoint_name} did not answer within {timeout:.0f} s") from e

    def schedule(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> threading.Timer:
        """Run ``fn`` on the endpoint's thread after ``delay_s`` seconds (cancellable timer)."""
        def fire() -> None:
            with self._timers_lock:
                self._timers.discard(timer)
            if not self._closed.is_set():
                self.run_async(fn, *args)

        timer = threading.Timer(delay_s, fire)
        timer.daemon = True
        with self._timers_lock:
            self._timers.add(timer)
        timer.start()
        return timer

    def schedule_periodic(self, interval_s: float, fn: Callable[[], Any]) -> None:
        """Run ``fn`` every ``interval_s`` seconds on the endpoint's thread until closed."""
        def tick() -> None:
            try:
                fn()
            finally:
                if not self._closed.is_set():
                    self.schedule(interval_s, tick)

        self.schedule(interval_s, tick)

    def close_endpoint(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with self._timers_lock:
            for t in self._timers:
                t.cancel()
            self._timers.clear()
        self._executor.shutdown(wait=not self.on_main_thread(), cancel_futures=True)
