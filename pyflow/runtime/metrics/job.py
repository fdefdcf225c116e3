"""The metrics of a job on the JobManager (scope ``jobmanager.job``), from the job's status (pure).

``uptime`` and ``downtime`` follow Flink's gauges: uptime is the time since the job (last)
switched to RUNNING while it runs, 0 before, -1 once it ended; downtime is the time since it
started FAILING while it fails or recovers, 0 while it runs, -1 once it ended. ``numRestarts``
is the JobMaster's restart counter (0 until a restart strategy restarts the job).

This release has no checkpointing, so the checkpoint metrics are the values Flink reports for a
job without checkpoints: no checkpoint completed, failed or in progress, and -1 for the duration,
size and restore time of the last one.

>>> job_status_metrics("RUNNING", {"CREATED": 10.0, "RUNNING": 12.0}, now_s=15.5, num_restarts=0)["uptime"]
3500
"""

from __future__ import annotations

from typing import Mapping

__all__ = ["job_status_metrics"]

#: Flink's value of uptime and downtime once a job ended
NO_LONGER_RUNNING = -1
_TERMINAL = ("FINISHED", "CANCELED", "FAILED")


def job_status_metrics(status: str, timestamps: Mapping[str, float], *, now_s: float,
                       num_restarts: int) -> dict[str, int]:
    """The job metrics of a job in ``status``; ``timestamps`` maps each status to the time (s)
    the job last switched to it."""
    running_since = timestamps.get("RUNNING")
    if status == "RUNNING":
        uptime = max(0, round((now_s - (running_since or now_s)) * 1000))
        downtime = 0
    elif status in _TERMINAL:
        uptime = downtime = NO_LONGER_RUNNING
    else:
        uptime = 0
        failing_since = timestamps.get("FAILING")
        if failing_since is None or (running_since is not None and failing_since <= running_since):
            downtime = 0
        else:
            downtime = max(0, round((now_s - failing_since) * 1000))
    return {
        "numRestarts": num_restarts,
        "uptime": uptime,
        "downtime": downtime,
        "numberOfCompletedCheckpoints": 0,
        "numberOfFailedCheckpoints": 0,
        "numberOfInProgressCheckpoints": 0,
        "totalNumberOfCheckpoints": 0,
        "lastCheckpointDuration": -1,
        "lastCheckpointSize": -1,
        "lastCheckpointRestoreTimestamp": -1,
    }
