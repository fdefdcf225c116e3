"""Control-plane messages as frozen dataclasses (the Python side of control.proto).

Gateways take and return these; the protobuf classes appear only in ``pyflow.runtime.rpc``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class ExecutionState(str, enum.Enum):
    """Flink's ExecutionState of one subtask attempt."""

    CREATED = "CREATED"
    SCHEDULED = "SCHEDULED"
    DEPLOYING = "DEPLOYING"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        return self in (ExecutionState.FINISHED, ExecutionState.CANCELED, ExecutionState.FAILED)


class JobStatus(str, enum.Enum):
    """Flink's JobStatus."""

    INITIALIZING = "INITIALIZING"
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    FAILING = "FAILING"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELED = "CANCELED"
    FINISHED = "FINISHED"

    @property
    def is_globally_terminal(self) -> bool:
        return self in (JobStatus.FAILED, JobStatus.CANCELED, JobStatus.FINISHED)


@dataclass(frozen=True, slots=True)
class TaskExecutorRegistration:
    resource_id: str
    rpc_address: str
    data_host: str
    data_port: int
    num_slots: int
    managed_memory: int = 0
    network_memory: int = 0
    pid: int = 0
    hostname: str = ""
    log_file: str = ""


@dataclass(frozen=True, slots=True)
class SlotStatus:
    slot_index: int
    allocation_id: str = ""
    job_id: str = ""


@dataclass(frozen=True, slots=True)
class SlotOffer:
    allocation_id: str
    slot_index: int


@dataclass(frozen=True, slots=True)
class TaskManagerLocation:
    resource_id: str
    rpc_address: str
    data_host: str
    data_port: int


@dataclass(frozen=True, slots=True)
class TaskExecutionStateUpdate:
    job_id: str
    execution_id: str
    state: ExecutionState
    error: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    resource_id: str = ""
