"""The metrics pyflow reports, with Flink's names, per scope, and their kind (counter or gauge).

A scope is where a metric lives, as in Flink's scope formats: ``jobmanager``, ``jobmanager.job``,
``taskmanager``, ``taskmanager.job.task`` and ``taskmanager.job.task.operator``. The Prometheus
reporter names a metric ``pyflow_<scope parts>_<name>`` and the REST API lists them by name.
Names not in Flink's list are pyflow's own and say so in docs/operations.md.
"""

from __future__ import annotations

__all__ = [
    "COUNTER", "GAUGE", "JOBMANAGER_METRICS", "JOB_METRICS", "MIN_WATERMARK", "OPERATOR_METRICS",
    "PROCESS_METRICS", "TASK_METRICS", "metric_id_component",
]

COUNTER = "counter"
GAUGE = "gauge"

#: the watermark of a task or operator that has seen none (Flink's Long.MIN_VALUE)
MIN_WATERMARK = -(2**63)

#: per subtask (scope taskmanager.job.task)
TASK_METRICS: dict[str, str] = {
    "numRecordsIn": COUNTER,
    "numRecordsOut": COUNTER,
    "numBytesIn": COUNTER,
    "numBytesOut": COUNTER,
    "numRecordsInPerSecond": GAUGE,
    "numRecordsOutPerSecond": GAUGE,
    "numBytesInPerSecond": GAUGE,
    "numBytesOutPerSecond": GAUGE,
    "busyTimeMsPerSecond": GAUGE,
    "idleTimeMsPerSecond": GAUGE,
    "backPressuredTimeMsPerSecond": GAUGE,
    "currentInputWatermark": GAUGE,
    "currentOutputWatermark": GAUGE,
    # pyflow's own: the totals behind the shares (Flink keeps them for the REST API only)
    "busyTimeMs": COUNTER,
    "idleTimeMs": COUNTER,
    "backPressuredTimeMs": COUNTER,
    "spilledBytes": COUNTER,
}

#: per operator of a subtask's chain (scope taskmanager.job.task.operator)
OPERATOR_METRICS: dict[str, str] = {
    "numRecordsIn": COUNTER,
    "numRecordsOut": COUNTER,
    "numRecordsInPerSecond": GAUGE,
    "numRecordsOutPerSecond": GAUGE,
    "numLateRecordsDropped": COUNTER,
    "currentInputWatermark": GAUGE,
    "currentOutputWatermark": GAUGE,
}

#: per running job, on the JobManager (scope jobmanager.job)
JOB_METRICS: dict[str, str] = {
    "numRestarts": COUNTER,
    "uptime": GAUGE,
    "downtime": GAUGE,
    "numberOfCompletedCheckpoints": GAUGE,
    "numberOfFailedCheckpoints": GAUGE,
    "numberOfInProgressCheckpoints": GAUGE,
    "totalNumberOfCheckpoints": GAUGE,
    "lastCheckpointDuration": GAUGE,
    "lastCheckpointSize": GAUGE,
    "lastCheckpointRestoreTimestamp": GAUGE,
}

#: the JobManager (scope jobmanager)
JOBMANAGER_METRICS: dict[str, str] = {
    "numRegisteredTaskManagers": GAUGE,
    "taskSlotsTotal": GAUGE,
    "taskSlotsAvailable": GAUGE,
    "numRunningJobs": GAUGE,
}

#: every process, JobManager and TaskManager (Flink's Status.JVM.* in a Python process's terms)
PROCESS_METRICS: dict[str, str] = {
    "Status.Process.CPU.Load": GAUGE,
    "Status.Process.CPU.Time": GAUGE,
    "Status.Process.Memory.RSS": GAUGE,
    "Status.Process.Memory.VMS": GAUGE,
    "Status.Process.Threads.Count": GAUGE,
    "Status.Process.FileDescriptors.Count": GAUGE,
}

_INVALID_IN_ID = str.maketrans({" ": "_", ".": "_", ":": "_", ",": "_"})


def metric_id_component(name: str) -> str:
    """A name as one component of a metric id (Flink's MetricQueryService filter: space, ``.``,
    ``:`` and ``,`` become ``_``).

    >>> metric_id_component("Source: Collection Source")
    'Source__Collection_Source'
    """
    return name.translate(_INVALID_IN_ID)
