"""The OpenAPI 3 document of the REST API, written by hand (served at ``GET /openapi.json``).

Every route the server serves must appear here; ``tests/integration/test_rest.py`` walks the
server's route table against this document. Paths are also served under ``/v1`` (see
``servers``).
"""

from __future__ import annotations

import copy
from typing import Any


def _obj(properties: dict[str, Any], required: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = sorted(properties)
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_INT = {"type": "integer", "format": "int64"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_NUM = {"type": "number"}
_NULLABLE_STR = {"type": "string", "nullable": True}
_JOB_STATUS = {"type": "string", "enum": ["INITIALIZING", "CREATED", "RUNNING", "FAILING", "FAILED", "CANCELLING",
                                          "CANCELED", "FINISHED"]}
_EXECUTION_STATE = {"type": "string", "enum": ["CREATED", "SCHEDULED", "DEPLOYING", "INITIALIZING", "RUNNING",
                                               "FINISHED", "CANCELING", "CANCELED", "FAILED"]}
_STATE_COUNTS = {"type": "object", "description": "Number of subtasks per execution state",
                 "additionalProperties": _INT}
_IO_METRICS = _obj({"read-bytes": _INT, "read-bytes-complete": _BOOL, "write-bytes": _INT,
                    "write-bytes-complete": _BOOL, "read-records": _INT, "read-records-complete": _BOOL,
                    "write-records": _INT, "write-records-complete": _BOOL,
                    "accumulated-backpressured-time": _INT})
_EXCEPTION_ENTRY = _obj({"exceptionName": _STR, "stacktrace": _STR, "timestamp": _INT,
                         "taskName": _NULLABLE_STR, "location": _NULLABLE_STR, "endpoint": _NULLABLE_STR,
                         "taskManagerId": _NULLABLE_STR, "failureLabels": {"type": "object"},
                         "concurrentExceptions": {"type": "array", "items": {"type": "object"}}})
_TASK_MANAGER = _obj({"id": _STR, "path": _STR, "dataPort": _INT, "jmxPort": _INT, "timeSinceLastHeartbeat": _INT,
                      "slotsNumber": _INT, "freeSlots": _INT, "pid": _INT, "host": _STR,
                      "hardware": _obj({"cpuCores": _INT, "physicalMemory": _INT, "freeMemory": _INT,
                                        "managedMemory": _INT}),
                      "memoryConfiguration": _obj({"managedMemory": _INT, "networkMemory": _INT})})

_SCHEMAS: dict[str, Any] = {
    "Errors": _obj({"errors": {"type": "array", "items": _STR}}),
    "Empty": {"type": "object"},
    "DashboardConfiguration": _obj({
        "refresh-interval": _INT, "timezone-name": _STR, "timezone-offset": _INT, "flink-version": _STR,
        "flink-revision": _STR,
        "features": _obj({"web-submit": _BOOL, "web-cancel": _BOOL, "web-rescale": _BOOL, "web-history": _BOOL})}),
    "ClusterOverview": _obj({
        "taskmanagers": _INT, "slots-total": _INT, "slots-available": _INT, "jobs-running": _INT,
        "jobs-finished": _INT, "jobs-cancelled": _INT, "jobs-failed": _INT, "flink-version": _STR,
        "flink-commit": _STR}),
    "JobIdsWithStatus": _obj({"jobs": {"type": "array", "items": _obj({"id": _STR, "status": _JOB_STATUS})}}),
    "MultipleJobsDetails": _obj({"jobs": {"type": "array", "items": _obj({
        "jid": _STR, "name": _STR, "state": _JOB_STATUS, "start-time": _INT, "end-time": _INT, "duration": _INT,
        "last-modification": _INT, "tasks": _STATE_COUNTS})}}),
    "JobPlan": _obj({"jid": _STR, "name": _STR, "type": {"type": "string", "enum": ["STREAMING", "BATCH"]},
                     "nodes": {"type": "array", "items": _obj({
                         "id": _STR, "parallelism": _INT, "operator": _STR, "operator_strategy": _STR,
                         "description": _STR, "optimizer_properties": {"type": "object"},
                         "inputs": {"type": "array", "items": _obj({"num": _INT, "id": _STR,
                                                                    "ship_strategy": _STR, "exchange": _STR})}},
                         required=False)}}, required=False),
    "JobPlanInfo": _obj({"plan": _ref("JobPlan")}),
    "JobDetails": _obj({
        "jid": _STR, "name": _STR, "isStoppable": _BOOL, "state": _JOB_STATUS,
        "job-type": {"type": "string", "enum": ["STREAMING", "BATCH"]}, "start-time": _INT, "end-time": _INT,
        "duration": _INT, "maxParallelism": _INT, "now": _INT,
        "timestamps": {"type": "object", "description": "Milliseconds since the epoch at which the job "
                       "switched to each status; 0 for a status it never had", "additionalProperties": _INT},
        "vertices": {"type": "array", "items": _obj({
            "id": _STR, "name": _STR, "maxParallelism": _INT, "parallelism": _INT, "status": _EXECUTION_STATE,
            "start-time": _INT, "end-time": _INT, "duration": _INT, "tasks": _STATE_COUNTS,
            "metrics": _IO_METRICS})},
        "status-counts": _STATE_COUNTS, "plan": _ref("JobPlan")}),
    "JobExceptionsInfo": _obj({
        "root-exception": _NULLABLE_STR, "timestamp": {"type": "integer", "nullable": True},
        "all-exceptions": {"type": "array", "items": _obj({
            "exception": _STR, "task": _NULLABLE_STR, "location": _NULLABLE_STR, "timestamp": _INT,
            "taskManagerId": _NULLABLE_STR})},
        "truncated": _BOOL,
        "exceptionHistory": _obj({"entries": {"type": "array", "items": _EXCEPTION_ENTRY}, "truncated": _BOOL})}),
    "JobConfigInfo": _obj({"jid": _STR, "name": _STR, "execution-config": _obj({
        "execution-mode": _STR, "restart-strategy": _STR, "job-parallelism": _INT, "object-reuse-mode": _BOOL,
        "user-config": {"type": "object", "additionalProperties": _STR}})}),
    "JobVertexDetails": _obj({
        "id": _STR, "name": _STR, "parallelism": _INT, "maxParallelism": _INT, "now": _INT,
        "subtasks": {"type": "array", "items": _obj({
            "subtask": _INT, "status": _EXECUTION_STATE, "attempt": _INT, "host": _NULLABLE_STR,
            "endpoint": _NULLABLE_STR, "taskmanager-id": _NULLABLE_STR, "start-time": _INT, "start_time": _INT,
            "end-time": _INT, "duration": _INT, "metrics": _IO_METRICS})}}),
    "AggregatedMetrics": {"type": "array", "items": _obj({
        "id": _STR, "min": _NUM, "max": _NUM, "avg": _NUM, "sum": _NUM, "skew": _NUM}, required=False)},
    "TaskManagerInfo": _TASK_MANAGER,
    "TaskManagersInfo": _obj({"taskmanagers": {"type": "array", "items": _ref("TaskManagerInfo")}}),
    "TaskManagerDetailsInfo": {"allOf": [_ref("TaskManagerInfo"), _obj({"allocatedSlots": {
        "type": "array", "items": _obj({"index": _INT, "allocationId": _STR, "jobId": _STR})}})]},
    "ConfigurationInfo": {"type": "array", "items": _obj({"key": _STR, "value": _STR})},
}


def _param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _STR, "description": description}


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": _STR, "description": description}


_JOBID = _param("jobid", "32-character hexadecimal id of the job")
_VERTEXID = _param("vertexid", "Id of the job vertex")
_TMID = _param("taskmanagerid", "Resource id of the TaskManager")


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Malformed request (query string or JSON body)", 404: "Unknown path, job, vertex or TaskManager",
            405: "Method not allowed on this path", 409: "The job already reached another terminal state",
            413: "Request body larger than rest.server.max-content-length", 500: "Internal server error",
            503: "The cluster did not answer in time"}
    out = {str(c): {"description": text[c], "content": {"application/json": {"schema": _ref("Errors")}}}
           for c in sorted({400, 404, 405, 413, 500, *codes})}
    return out


def _op(summary: str, schema: str, *, status: int = 200, parameters: list | None = None,
        errors: tuple[int, ...] = (), description: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {str(status): {"description": "OK" if status == 200 else "Accepted",
                                    "content": {"application/json": {"schema": _ref(schema)}}},
                      **_errors(*errors)},
    }
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    return op


_PATHS: dict[str, Any] = {
    "/config": {"get": _op("Configuration of the web dashboard", "DashboardConfiguration")},
    "/overview": {"get": _op("Overview of the cluster", "ClusterOverview")},
    "/cluster": {"delete": _op("Shut the cluster down", "Empty", description=(
        "Answers 200 {} and then closes the JobManager (jobs are cancelled, TaskManagers stopped)."))},
    "/jobs": {"get": _op("Ids and states of all jobs", "JobIdsWithStatus")},
    "/jobs/overview": {"get": _op("Overview of all jobs", "MultipleJobsDetails")},
    "/jobs/{jobid}": {
        "get": _op("Details of a job", "JobDetails", parameters=[_JOBID]),
        "patch": _op("Cancel a job", "Empty", status=202, errors=(409,), parameters=[
            _JOBID, _query("mode", "Only 'cancel' (the default) is supported")],
            description="Flink's job cancellation. Takes no body; a body that is not JSON is rejected (400)."),
    },
    "/jobs/{jobid}/plan": {"get": _op("Dataflow plan of a job", "JobPlanInfo", parameters=[_JOBID])},
    "/jobs/{jobid}/exceptions": {"get": _op("Exceptions of a job", "JobExceptionsInfo", parameters=[_JOBID],
                                            description="The root exception is the user's Python traceback "
                                                        "when user code failed.")},
    "/jobs/{jobid}/config": {"get": _op("Configuration of a job", "JobConfigInfo", parameters=[_JOBID])},
    "/jobs/{jobid}/vertices/{vertexid}": {
        "get": _op("Subtasks of a job vertex", "JobVertexDetails", parameters=[_JOBID, _VERTEXID])},
    "/jobs/{jobid}/vertices/{vertexid}/subtasks/metrics": {"get": _op(
        "Metrics of a job vertex, aggregated over its subtasks", "AggregatedMetrics", parameters=[
            _JOBID, _VERTEXID,
            _query("get", "Comma-separated metric names; without it, the names of the available metrics"),
            _query("agg", "Comma-separated aggregations: min, max, avg, sum, skew (default: all)"),
            _query("subtasks", "Comma-separated subtask indices (default: all)")])},
    "/taskmanagers": {"get": _op("Overview of all TaskManagers", "TaskManagersInfo")},
    "/taskmanagers/{taskmanagerid}": {
        "get": _op("Details of a TaskManager", "TaskManagerDetailsInfo", parameters=[_TMID])},
    "/jobmanager/config": {"get": _op("Configuration of the cluster (options set explicitly)",
                                      "ConfigurationInfo")},
    "/openapi.json": {"get": {"summary": "This OpenAPI document", "responses": {
        "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the OpenAPI 3 document."""
    from pyflow import __version__

    return copy.deepcopy({
        "openapi": "3.0.3",
        "info": {"title": "pyflow JobManager REST API", "version": __version__,
                 "description": "Apache Flink's REST API paths and JSON shapes, served by pyflow's JobManager. "
                                "Not yet available: job submission (jar upload), savepoints, "
                                "stop-with-savepoint, checkpoints, backpressure, logs, the Web UI."},
        "servers": [{"url": "/"}, {"url": "/v1"}],
        "paths": _PATHS,
        "components": {"schemas": _SCHEMAS},
    })
