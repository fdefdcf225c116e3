"""Metrics with Flink's names and semantics, and the Prometheus reporter.

Modules:

* :mod:`~pyflow.runtime.metrics.views` (pure): rates of counters over a minute (Flink's
  MeterView) and busy / idle / backpressured time per second (Flink's TimerGauge), from samples
  of cumulative values; :class:`~pyflow.runtime.metrics.views.WaitTimer` measures a wait.
* :mod:`~pyflow.runtime.metrics.names`: every metric's name, scope and kind.
* :mod:`~pyflow.runtime.metrics.job` (pure): a job's uptime, downtime, restarts, checkpoints.
* :mod:`~pyflow.runtime.metrics.process`: Status.Process.* of this process (psutil).
* :mod:`~pyflow.runtime.metrics.scopes`: what a TaskManager and a JobManager report, with labels.
* :mod:`~pyflow.runtime.metrics.prometheus`: the text exposition format and the HTTP reporter.

Where the numbers come from: a task counts records and bytes per batch and measures its waits
(input gate: idle; full subpartition queue: backpressured); TaskManagers send ``Task.metrics()``
with their heartbeats, the JobMaster keeps the latest per subtask, and the REST API reads them
there. The Prometheus reporter of each process reads its own values when scraped.
"""
