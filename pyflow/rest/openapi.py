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
                    "accumulated-backpressured-time": _INT, "accumulated-idle-time": _INT,
                    "accumulated-busy-time": _INT})
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
            "slot-index": {"type": "integer", "description": "pyflow: index of the TaskManager slot the subtask "
                                                             "runs in; -1 before it has one"},
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
    text = {400: "Malformed request (query string or JSON body)",
            403: "A browser's cross-origin request that would change the cluster (any method but GET and HEAD)",
            404: "Unknown path, job, vertex or TaskManager",
            405: "Method not allowed on this path", 409: "The job already reached another terminal state",
            413: "Request body larger than rest.server.max-content-length", 500: "Internal server error",
            503: "The cluster did not answer in time"}
    out = {str(c): {"description": text[c], "content": {"application/json": {"schema": _ref("Errors")}}}
           for c in sorted({400, 403, 404, 405, 413, 500, *codes})}
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
            _JOBID, {**_query("mode", "Only 'cancel' (the default) is supported"),
                     "schema": {"type": "string", "enum": ["cancel"]}}],
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
    "/": {"get": {"summary": "The Web UI", "description": (
        "The Web UI's page (HTML; its scripts read this REST API). Cache-Control: no-cache."),
        "responses": {"200": {"description": "OK", "content": {"text/html": {"schema": _STR}}}}}},
    "/web/{filename}": {"get": {
        "summary": "A file of the Web UI (script, style, icon)",
        "description": ("Only the files of the UI's package folder are served (anything else is 404). With "
                        "?v=<the file's current hash>, as the page names them, the answer may be cached forever "
                        "(immutable); without it, no-cache."),
        "parameters": [_param("filename", "Name of the file, e.g. app.js"),
                       _query("v", "Content hash of the file, as the page names it")],
        "responses": {"200": {"description": "OK", "content": {
            media: {"schema": _STR} for media in ("text/javascript", "text/css", "image/svg+xml")}},
            **_errors()}}},
    "/openapi.json": {"get": {"summary": "This OpenAPI document", "responses": {
        "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
}


# ---- stopping jobs and savepoints (pyflow.rest.operations) ------------------------------------

_TRIGGER_ID_FIELD = {"type": "string", "nullable": True, "pattern": "^[0-9a-f]{32}$",
                     "description": "A trigger id of the client's choosing (32 hex digits); a repeated "
                                    "trigger id answers again without triggering anything (idempotent)"}
_FORMAT_TYPE_FIELD = {"type": "string", "nullable": True, "enum": ["CANONICAL", "NATIVE"],
                      "description": "Savepoint format; accepted for Flink compatibility"}
_SCHEMAS.update({
    "StopWithSavepointRequestBody": {"type": "object", "additionalProperties": False, "properties": {
        "targetDirectory": {"type": "string", "nullable": True, "description": (
            "Where the savepoint would go; unused, since no savepoint is taken (no checkpointing yet)")},
        "drain": {"type": "boolean", "description": (
            "Flink's drain flag. pyflow's stop always drains (false included): without a savepoint to resume "
            "from, state left un-flushed would be lost")},
        "triggerId": _TRIGGER_ID_FIELD, "formatType": _FORMAT_TYPE_FIELD}},
    "SavepointTriggerRequestBody": {"type": "object", "additionalProperties": False, "properties": {
        "target-directory": {"type": "string", "nullable": True}, "cancel-job": _BOOL,
        "triggerId": _TRIGGER_ID_FIELD, "formatType": _FORMAT_TYPE_FIELD}},
    "TriggerResponse": _obj({"request-id": {"type": "string", "description": "The trigger id to poll"}}),
    "AsynchronousOperationResult": {"type": "object", "required": ["status"], "properties": {
        "status": _obj({"id": {"type": "string", "enum": ["IN_PROGRESS", "COMPLETED"]}}),
        "operation": {"type": "object", "description": (
            "Present once COMPLETED. A finished stop: location null (no savepoint was taken) and a note "
            "saying what happened. A failed operation (every savepoint, while pyflow has no checkpointing; "
            "a stop whose job ended otherwise than FINISHED): failure-cause"), "properties": {
            "location": {"type": "string", "nullable": True}, "note": _STR,
            "failure-cause": _obj({"class": _STR, "stack-trace": _STR})}}}},
})


def _operation_trigger(summary: str, body: str, description: str) -> dict[str, Any]:
    op = _op(summary, "TriggerResponse", status=202, errors=(409, 503), parameters=[_JOBID],
             description=description)
    op["responses"]["409"]["description"] = "The job is not RUNNING (a stop: or it runs in BATCH mode)"
    op["requestBody"] = {"required": False, "content": {"application/json": {"schema": _ref(body)}}}
    return op


_PATHS.update({
    "/jobs/{jobid}/stop": {"post": _operation_trigger(
        "Stop a job gracefully", "StopWithSavepointRequestBody",
        "Every source ends its input as a bounded source does; everything in flight is processed (windows "
        "and timers fire) and the job ends FINISHED. Poll GET /jobs/{jobid}/savepoints/{triggerid}: the "
        "operation completes with location null, since no savepoint is taken (no checkpointing yet).")},
    "/jobs/{jobid}/savepoints": {"post": _operation_trigger(
        "Trigger a savepoint", "SavepointTriggerRequestBody",
        "Accepted as in Flink; the operation completes with a failure-cause: savepoints need checkpointing, "
        "which this release does not have. The job keeps running (with cancel-job too).")},
    "/jobs/{jobid}/savepoints/{triggerid}": {"get": _op(
        "Status of a stop or savepoint operation", "AsynchronousOperationResult", parameters=[
            _JOBID, _param("triggerid", "The request-id a stop or savepoint trigger answered")],
        description="Completed operations are kept for rest.async.store-duration, then 404.")},
})

# ---- job submission and job results (pyflow.rest.submission) -----------------------------------

_SCHEMAS.update({
    "JobSubmitRequestBody": {"type": "object", "required": ["request"], "description": (
        "multipart/form-data: a field 'request' with JSON, and one file part per file it names (matched by "
        "the part's filename). The job graph file is pyflow's format (pyflow.rest.job_graph_file): JSON plus "
        "binary blobs; the JobManager never unpickles user code. Artifacts (the job's Python file) are kept in "
        "<web.upload.dir>/<job id>/ until the job ends. See docs/rest-submission.md."), "properties": {
        "request": {"type": "object", "required": ["jobGraphFileName"], "properties": {
            "jobGraphFileName": {"type": "string", "description": "Filename of the part with the job graph"},
            "jobArtifactFileNames": {"type": "array", "items": {"oneOf": [
                _STR, _obj({"entryName": _STR, "fileName": _STR})]}, "description": (
                "Files stored with the job: a filename, or Flink's {entryName, fileName}")},
            "jobJarFileNames": {"type": "array", "maxItems": 0, "items": _STR,
                                "description": "Flink's jar files; must be empty (pyflow runs Python jobs)"}}},
        "jobGraph": {"type": "string", "format": "binary"},
        "artifacts": {"type": "array", "items": {"type": "string", "format": "binary"}}}},
    "JobSubmitResponseBody": _obj({"jobUrl": {"type": "string", "description": "/jobs/<job id>"}}),
    "JobExecutionResultResponseBody": {"type": "object", "required": ["status"], "properties": {
        "status": _obj({"id": {"type": "string", "enum": ["IN_PROGRESS", "COMPLETED"]}}),
        "job-execution-result": {"type": "object", "description": "Present once COMPLETED", "properties": {
            "id": _STR, "application-status": {"type": "string", "enum": ["SUCCEEDED", "FAILED", "CANCELED",
                                                                          "UNKNOWN"]},
            "net-runtime": _INT, "accumulator-results": {"type": "object"},
            "failure-cause": _obj({"class": _STR, "stack-trace": _STR}),
            "job-name": _STR,
            "operator-metrics": {"type": "object", "description": (
                "Per operator (by node id): name, numRecordsIn, numRecordsOut summed over its subtasks"),
                "additionalProperties": {"type": "object"}},
            "vertex-metrics": {"type": "object", "description": (
                "Per job vertex: name, parallelism, numBytesIn/Out, numRecordsIn/Out"),
                "additionalProperties": {"type": "object"}},
            "task-managers": {"type": "array", "items": _STR}}}}},
})

_submit = _op("Submit a job", "JobSubmitResponseBody", status=202, errors=(409,), description=(
    "Flink's job submission: multipart/form-data with a 'request' JSON field and the files it names. "
    "400: malformed multipart, a missing or corrupt job graph file, a bad artifact name; 409: a job with "
    "that id was submitted before; 413: larger than rest.server.max-content-length."))
_submit["requestBody"] = {"required": True, "content": {"multipart/form-data": {
    "schema": _ref("JobSubmitRequestBody")}}}
_PATHS["/jobs"] = {**_PATHS["/jobs"], "post": _submit}
_PATHS["/jobs/{jobid}/execution-result"] = {"get": _op(
    "Result of a job, once it ended", "JobExecutionResultResponseBody", parameters=[_JOBID], description=(
        "IN_PROGRESS while the job runs; then COMPLETED with Flink's JobExecutionResult (application-status, "
        "net-runtime, failure-cause with the user's traceback) and pyflow's record counts."))}


# ---- metrics, backpressure, checkpoints and logs (pyflow.rest.metrics_handlers, pyflow.rest.logs) ----

_LEVEL = {"type": "string", "enum": ["ok", "low", "high"]}
_RATIO = {"type": "number", "minimum": 0, "maximum": 1}
_MINMAXAVG = _obj({"min": _NUM, "max": _NUM, "avg": _NUM, "p50": _NUM, "p90": _NUM, "p95": _NUM, "p99": _NUM,
                   "p999": _NUM})
_SCHEMAS.update({
    "Metrics": {"type": "array", "description": (
        "Without ?get=: the available metrics ([{id}]); with ?get=a,b: the values of those asked, as strings "
        "(metrics nobody reports are left out)"), "items": {"type": "object", "required": ["id"], "properties": {
            "id": _STR, "value": _STR}}},
    "JobVertexBackPressureInfo": _obj({
        "status": {"type": "string", "enum": ["ok", "deprecated"]}, "backpressure-level": _LEVEL,
        "backpressureLevel": {**_LEVEL, "description": "The same as backpressure-level"},
        "end-timestamp": _INT,
        "subtasks": {"type": "array", "items": _obj({
            "subtask": _INT, "attempt-number": _INT, "backpressure-level": _LEVEL,
            "backpressureLevel": {**_LEVEL, "description": "The same as backpressure-level"},
            "ratio": _RATIO, "idleRatio": _RATIO, "busyRatio": _RATIO})}}),
    "CheckpointingStatistics": _obj({
        "counts": _obj({"restored": _INT, "total": _INT, "in_progress": _INT, "completed": _INT, "failed": _INT}),
        "summary": _obj({name: _MINMAXAVG for name in ("checkpointed_size", "state_size", "end_to_end_duration",
                                                       "alignment_buffered", "processed_data", "persisted_data")}),
        "latest": _obj({name: {"type": "object", "nullable": True}
                        for name in ("completed", "savepoint", "failed", "restored")}),
        "history": {"type": "array", "items": {"type": "object"}}}),
    "LogListInfo": _obj({"logs": {"type": "array", "items": _obj({"name": _STR, "size": _INT, "mtime": _INT})}}),
})

_GET_METRICS = _query("get", "Comma-separated metric ids; without it, the ids of the available metrics")
_LOG_BYTES = {"name": "bytes", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
              "description": "Serve at most the file's last N bytes (default 1 MiB, at most 64 MiB); a cut "
                             "file starts with a line that says so"}
_FILENAME = _param("filename", "A file name from the log list, without a path (URL-encoded)")


def _text_op(summary: str, parameters: list, description: str) -> dict[str, Any]:
    return {"summary": summary, "description": description, "parameters": parameters, "responses": {
        "200": {"description": "OK", "content": {"text/plain": {"schema": _STR}}}, **_errors(503)}}


_LOG_TEXT = "The file as text/plain. 404 when there is no such file; 503 when the TaskManager does not answer."
_PATHS.update({
    "/jobmanager/metrics": {"get": _op("Metrics of the JobManager", "Metrics", parameters=[_GET_METRICS],
                                       description="numRegisteredTaskManagers, taskSlotsTotal, taskSlotsAvailable, "
                                                   "numRunningJobs and Status.Process.* of its process.")},
    "/taskmanagers/{taskmanagerid}/metrics": {"get": _op(
        "Metrics of a TaskManager", "Metrics", parameters=[_TMID, _GET_METRICS], errors=(503,),
        description="Status.Process.* of the TaskManager's process, asked from it over RPC.")},
    "/jobs/{jobid}/metrics": {"get": _op(
        "Metrics of a job", "Metrics", parameters=[_JOBID, _GET_METRICS],
        description="numRestarts, uptime, downtime and the checkpoint metrics (this release has no "
                    "checkpointing: no checkpoints, -1 for the last one's duration and size).")},
    "/jobs/{jobid}/vertices/{vertexid}/metrics": {"get": _op(
        "Metrics of the subtasks and operators of a job vertex", "Metrics",
        parameters=[_JOBID, _VERTEXID, _GET_METRICS],
        description="Ids are <subtask>.<metric> (task metrics) and <subtask>.<operator>.<metric> (operator "
                    "metrics; in the operator's name space, '.', ':' and ',' are '_').")},
    "/jobs/{jobid}/vertices/{vertexid}/backpressure": {"get": _op(
        "Backpressure of a job vertex", "JobVertexBackPressureInfo", parameters=[_JOBID, _VERTEXID],
        description="Flink 1.13+: ratio is backPressuredTimeMsPerSecond / 1000 of each running subtask (0 for "
                    "the others); level ok <= 0.10 < low <= 0.5 < high; the vertex's level is its highest "
                    "subtask's.")},
    "/jobs/{jobid}/checkpoints": {"get": _op(
        "Checkpoint statistics of a job", "CheckpointingStatistics", parameters=[_JOBID],
        description="This release has no checkpointing: every count is 0, latest is all null, history empty.")},
    "/jobs/{jobid}/checkpoints/config": {"get": _op(
        "Checkpoint configuration of a job", "Empty", parameters=[_JOBID],
        description="404 'Checkpointing is not enabled for this job (<jobid>)', as Flink answers for a job "
                    "without checkpointing; this release has no checkpointing.")},
    "/jobmanager/logs": {"get": _op("Log files of the JobManager", "LogListInfo", description=(
        "The regular files of the JobManager's log directory (its log file's directory) with their size in "
        "bytes and last modification in ms since the epoch."))},
    "/jobmanager/logs/{filename}": {"get": _text_op(
        "A log file of the JobManager", [_FILENAME, _LOG_BYTES],
        "400 for a name with a path in it. " + _LOG_TEXT)},
    "/jobmanager/log": {"get": _text_op("The JobManager's log", [_LOG_BYTES], _LOG_TEXT)},
    "/jobmanager/stdout": {"get": _text_op("The JobManager's stdout", [_LOG_BYTES], (
        "The .out file next to its log file, which start scripts write; 404 when stdout is not a file."))},
    "/taskmanagers/{taskmanagerid}/logs": {"get": _op(
        "Log files of a TaskManager", "LogListInfo", parameters=[_TMID], errors=(503,),
        description="The regular files of the TaskManager's log directory, asked from it over RPC.")},
    "/taskmanagers/{taskmanagerid}/logs/{filename}": {"get": _text_op(
        "A log file of a TaskManager", [_TMID, _FILENAME, _LOG_BYTES], "400 for a name with a path in it. " + _LOG_TEXT)},
    "/taskmanagers/{taskmanagerid}/log": {"get": _text_op("A TaskManager's log", [_TMID, _LOG_BYTES], _LOG_TEXT)},
    "/taskmanagers/{taskmanagerid}/stdout": {"get": _text_op("A TaskManager's stdout", [_TMID, _LOG_BYTES], (
        "The .out file next to its log file, which start scripts write; 404 when stdout is not a file (an "
        "embedded cluster's TaskManagers print to the program's console)."))},
})


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the OpenAPI 3 document."""
    from pyflow import __version__

    return copy.deepcopy({
        "openapi": "3.0.3",
        "info": {"title": "pyflow JobManager REST API", "version": __version__,
                 "description": "Apache Flink's REST API paths and JSON shapes, served by pyflow's JobManager. "
                                "Not yet available: jar upload (/jars; jobs are submitted as job graphs with "
                                "POST /jobs), savepoints (their triggers answer "
                                "with a failure-cause), checkpointing (GET /jobs/{jobid}/checkpoints shows a job "
                                "without checkpoints)."},
        "servers": [{"url": "/"}, {"url": "/v1"}],
        "paths": _PATHS,
        "components": {"schemas": _SCHEMAS},
    })
