"""Progress of a running job, for an attached ``pyflow run``: read over REST, drawn on stderr.

What is shown: the job's state and running time, records in and out of every job vertex (Flink's
``read-records``/``write-records`` of ``GET /jobs/:jobid``: what crossed the network into and out
of the chain), and for file sources the share of their input read (the vertex metrics
``sourceBytesRead``/``sourceBytesTotal``, summed over subtasks; a file counts once read to its
end).

How: on a terminal whose output the job does not share (a remote cluster), one line redrawn in
place every 0.5 s, with a bar when a file source reports its progress. Otherwise - stderr is
not a terminal (CI logs, pipes), or the job's TaskManagers print to this same terminal (the
local target) - one plain line every ``client.progress.interval`` (default 10 s), and none at all
for a job that ends sooner. The reporter stops by itself once the job ended.

>>> p = JobProgress("RUNNING", 12_000, [VertexProgress("Source: File Source", "RUNNING", 0, 1500)], 50, 200)
>>> format_progress(p, width=100)
'RUNNING 12s | input [#####...............]  25% | Source: File Source 0 in, 1.5k out'
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, TextIO

#: the metrics a file source reports for progress (pyflow.runtime.operators.sources)
SOURCE_PROGRESS_METRICS = ("sourceBytesRead", "sourceBytesTotal")
#: seconds between two redraws on a terminal
REDRAW_S = 0.5
_TERMINAL_STATES = ("FINISHED", "FAILED", "CANCELED")


@dataclass(frozen=True, slots=True)
class VertexProgress:
    name: str
    status: str
    records_in: int
    records_out: int


@dataclass(frozen=True, slots=True)
class JobProgress:
    state: str
    duration_ms: int
    vertices: list[VertexProgress]
    #: bytes read and in total by the job's file sources (None: no file source reports them)
    bytes_read: int | None = None
    bytes_total: int | None = None

    @property
    def fraction(self) -> float | None:
        if self.bytes_total is None or self.bytes_read is None:
            return None
        return min(1.0, self.bytes_read / self.bytes_total) if self.bytes_total else 1.0


def read_progress(rest: Any, job_id: str) -> JobProgress:
    """The job's progress from its cluster's REST API (a RestClusterClient)."""
    details = rest.job_details(job_id)
    vertices = [VertexProgress(v["name"], v["status"], int(v["metrics"]["read-records"]),
                               int(v["metrics"]["write-records"])) for v in details["vertices"]]
    sources = [n["id"] for n in details.get("plan", {}).get("nodes", []) if not n.get("inputs")]
    read = total = None
    for vertex_id in sources:
        values = rest.vertex_metrics(job_id, vertex_id, SOURCE_PROGRESS_METRICS)
        if all(name in values for name in SOURCE_PROGRESS_METRICS):
            read = (read or 0) + int(values["sourceBytesRead"])
            total = (total or 0) + int(values["sourceBytesTotal"])
    return JobProgress(details["state"], int(details.get("duration", 0)), vertices, read, total)


def format_count(n: float) -> str:
    """``950``, ``12.3k``, ``4.56M``, ``7.1G``."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return str(int(n))


def format_bytes(n: float) -> str:
    """``512 B``, ``1.5 KB``, ``12.3 MB`` (binary units)."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def format_duration_s(ms: int) -> str:
    seconds = max(0, ms) // 1000
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_progress(p: JobProgress, width: int | None = None) -> str:
    """One line: state, time, the input bar when known, records per vertex; cut to ``width``."""
    parts = [f"{p.state} {format_duration_s(p.duration_ms)}"]
    fraction = p.fraction
    if fraction is not None:
        filled = int(fraction * 20)
        parts.append(f"input [{'#' * filled}{'.' * (20 - filled)}] {fraction * 100:3.0f}%")
    parts += [f"{v.name} {format_count(v.records_in)} in, {format_count(v.records_out)} out" for v in p.vertices]
    line = " | ".join(parts)
    if width is not None and len(line) > width:
        line = line[:max(0, width - 3)] + "..."
    return line


def format_progress_plain(p: JobProgress, job_id: str) -> str:
    """One line for logs: no bar, no control characters."""
    parts = [f"Job {job_id} {p.state} for {format_duration_s(p.duration_ms)}"]
    if p.fraction is not None and p.bytes_read is not None and p.bytes_total is not None:
        parts.append(f"input {p.fraction * 100:.0f}% read ({format_bytes(p.bytes_read)} of "
                     f"{format_bytes(p.bytes_total)})")
    parts += [f"{v.name}: {v.records_in} in, {v.records_out} out" for v in p.vertices]
    return "; ".join(parts)


class ProgressReporter:
    """Draws a job's progress on ``stream`` from a thread until the job ends or ``stop()``.

    ``fetch`` returns the current JobProgress (raising when the cluster does not answer: that
    round is skipped). ``redraw``: one line redrawn in place (a terminal), else plain lines every
    ``interval_s`` seconds.
    """

    def __init__(self, job_id: str, fetch: Callable[[], JobProgress], stream: TextIO, *, redraw: bool,
                 interval_s: float, width: Callable[[], int] = lambda: 100):
        self.job_id = job_id
        self.fetch = fetch
        self.stream = stream
        self.redraw = redraw
        self.interval_s = REDRAW_S if redraw else interval_s
        self.width = width
        self._stopped = threading.Event()
        self._drawn = False
        self._thread = threading.Thread(target=self._run, name=f"progress-{job_id[:8]}", daemon=True)

    def start(self) -> "ProgressReporter":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop drawing and clear a redrawn line; idempotent."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _run(self) -> None:
        try:
            while not self._stopped.wait(self.interval_s):
                try:
                    progress = self.fetch()
                except Exception:  # noqa: BLE001 - a missed round is not worth failing the run for
                    continue
                if self._stopped.is_set():
                    break
                self._draw(progress)
                if progress.state in _TERMINAL_STATES:
                    break
        finally:
            if self._drawn and self.redraw:
                self._write("\r\x1b[K")

    def _draw(self, progress: JobProgress) -> None:
        if self.redraw:
            self._write("\r" + format_progress(progress, max(20, self.width() - 1)) + "\x1b[K")
        else:
            self._write(format_progress_plain(progress, self.job_id) + "\n")
        self._drawn = True

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the stream was closed under us
            self._stopped.set()
