"""Status metrics of this process: CPU, memory, threads, file descriptors (psutil).

Flink reports ``Status.JVM.*`` for its processes; a pyflow process is a Python interpreter, so
the same facts are ``Status.Process.*``: ``CPU.Load`` (share of all CPUs, 0..1, over the last
update interval), ``CPU.Time`` (ms of CPU used, user + system), ``Memory.RSS`` and
``Memory.VMS`` (bytes), ``Threads.Count`` and ``FileDescriptors.Count``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

import psutil

from pyflow.runtime.metrics.views import UPDATE_INTERVAL_S

__all__ = ["ProcessMetrics", "process_metrics"]


class ProcessMetrics:
    """The Status.Process.* metrics of one process (``psutil.Process``), read on demand."""

    def __init__(self, process: psutil.Process | None = None, clock: Callable[[], float] = time.monotonic):
        self._process = process or psutil.Process()
        self._clock = clock
        self._lock = threading.Lock()
        self._cpus = os.cpu_count() or 1
        #: (time, CPU seconds) of the last sample, and the load measured up to it
        self._last: tuple[float, float] | None = None
        self._load = 0.0

    def snapshot(self) -> dict[str, float]:
        p = self._process
        with p.oneshot():
            cpu = p.cpu_times()
            memory = p.memory_info()
            threads = p.num_threads()
            fds = p.num_fds() if hasattr(p, "num_fds") else -1
        cpu_s = cpu.user + cpu.system
        return {
            "Status.Process.CPU.Load": self._cpu_load(cpu_s),
            "Status.Process.CPU.Time": round(cpu_s * 1000),
            "Status.Process.Memory.RSS": memory.rss,
            "Status.Process.Memory.VMS": memory.vms,
            "Status.Process.Threads.Count": threads,
            "Status.Process.FileDescriptors.Count": fds,
        }

    def _cpu_load(self, cpu_s: float) -> float:
        now = self._clock()
        with self._lock:
            last = self._last
            if last is None:
                # the first reading: the average since the process started
                lived = max(time.time() - self._process.create_time(), 1e-3)
                self._last = (now, cpu_s)
                self._load = cpu_s / lived / self._cpus
            elif now - last[0] >= UPDATE_INTERVAL_S:
                self._last = (now, cpu_s)
                self._load = (cpu_s - last[1]) / (now - last[0]) / self._cpus
            return min(1.0, max(0.0, self._load))


_current: ProcessMetrics | None = None
_current_lock = threading.Lock()


def process_metrics() -> ProcessMetrics:
    """This process's ProcessMetrics (one per process, shared by everything that reports)."""
    global _current
    with _current_lock:
        if _current is None or _current._process.pid != os.getpid():
            _current = ProcessMetrics()
        return _current
