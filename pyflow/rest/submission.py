"""Job submission over REST (Flink's ``POST /jobs``) and a job's result (``/execution-result``).

``POST /jobs`` takes ``multipart/form-data`` (:mod:`pyflow.rest.multipart`): a part named
``request`` holding JSON ``{"jobGraphFileName": "job.graph", "jobArtifactFileNames": [...]}`` and
one file part per named file, identified by its ``filename``. The job graph file is read by
:mod:`pyflow.rest.job_graph_file` - JSON plus binary blobs, so the JobManager never unpickles nor
runs user code. Artifacts (the job's Python file; its own modules travel inside the operators by
value) are kept per job in ``<web.upload.dir>/<job id>/`` and deleted when the job ends. A
submission is answered ``202 {"jobUrl": "/jobs/<job id>"}``; a malformed body, a corrupt job graph
or a bad file name 400, a job id already known 409, a body over
``rest.server.max-content-length`` 413 (by the server, before the body is read): Flink's
``{"errors": [...]}``, and nothing is left behind.

``GET /jobs/:jobid/execution-result`` is Flink's JobExecutionResult polling: ``{"status": {"id":
"IN_PROGRESS"}}`` while the job runs, then ``{"status": {"id": "COMPLETED"},
"job-execution-result": {"id", "application-status", "net-runtime", "accumulator-results",
"failure-cause"?}}`` with pyflow's per-operator and per-vertex record counts added
(``job-name``, ``operator-metrics``, ``vertex-metrics``, ``task-managers``).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pyflow.config import Configuration, options
from pyflow.rest.errors import BadRequest, NotFound, RestError
from pyflow.rest.handlers import _exception_name
from pyflow.rest.job_graph_file import JobGraphFileError, decode_job_graph
from pyflow.rest.multipart import MultipartError, Part, boundary_of, parse_multipart
from pyflow.rest.router import Request, Route
from pyflow.runtime.jobmanager.dispatcher import DuplicateJobSubmissionError
from pyflow.runtime.messages import JobStatus

logger = logging.getLogger(__name__)

#: Flink's ApplicationStatus of a job's final state
APPLICATION_STATUS = {JobStatus.FINISHED: "SUCCEEDED", JobStatus.FAILED: "FAILED", JobStatus.CANCELED: "CANCELED"}
_HELP = "see docs/rest-submission.md for the request format"


def upload_dir(conf: Configuration) -> Path:
    """Where submitted jobs' files go: ``web.upload.dir``, else ``pyflow-web-upload`` in
    ``io.tmp.dirs`` or the system's temporary folder."""
    explicit = conf.get(options.WEB_UPLOAD_DIR)
    if explicit:
        return Path(explicit)
    return Path(conf.get(options.IO_TMP_DIRS) or tempfile.gettempdir()) / "pyflow-web-upload"


class JobSubmissionHandlers:
    """``POST /jobs`` and ``GET /jobs/:jobid/execution-result`` over the Dispatcher."""

    def __init__(self, *, dispatcher: Any, conf: Configuration):
        self.dispatcher = dispatcher
        self.upload_dir = upload_dir(conf)

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/jobs", self.submit_job, "Submit a job", status=202),
            Route("GET", "/jobs/:jobid/execution-result", self.execution_result,
                  "Result of a job, once it ended"),
        ]

    # ---- POST /jobs ------------------------------------------------------------------------------

    def submit_job(self, request: Request) -> dict[str, Any]:
        try:
            parts = parse_multipart(request.body, boundary_of(request.header("content-type")))
        except MultipartError as e:
            raise BadRequest(f"Malformed job submission: {e}; {_HELP}") from None
        graph_name, artifacts = self._request_part(parts)
        files: dict[str, Part] = {}
        for part in parts:
            if part.filename is not None:
                if part.filename in files:
                    raise BadRequest(f"Two file parts are named '{part.filename}'; give every file its own name")
                files[part.filename] = part
        for name in [graph_name, *(file for _, file in artifacts)]:
            if name not in files:
                raise BadRequest(f"The request names the file '{name}', but no file part has that filename; {_HELP}")
        try:
            job_graph = decode_job_graph(files[graph_name].data)
        except JobGraphFileError as e:
            raise BadRequest(f"The job graph file '{graph_name}' is corrupt: {e}") from None
        job_id = job_graph.job_id
        if self.dispatcher.job_master_for(job_id) is not None:
            raise _duplicate(job_id)
        folder = self._store_artifacts(job_id, artifacts, files)
        try:
            self.dispatcher.submit_job(job_graph)
        except DuplicateJobSubmissionError:
            _remove(folder)
            raise _duplicate(job_id) from None
        except Exception as e:  # noqa: BLE001 - a graph the JobMaster cannot schedule is the request's fault
            _remove(folder)
            logger.info("Submitted job %s rejected: %s", job_id, e, exc_info=True)
            raise BadRequest(f"The job graph of job {job_id} cannot be scheduled: {type(e).__name__}: {e}") from None
        if folder is not None:
            self.dispatcher.job_master_for(job_id).result_future.add_done_callback(lambda _: _remove(folder))
        logger.info("Job %s (%s) submitted over REST with %d artifact(s)", job_graph.job_name, job_id, len(artifacts))
        return {"jobUrl": f"/jobs/{job_id}"}

    @staticmethod
    def _request_part(parts: list[Part]) -> tuple[str, list[tuple[str, str]]]:
        """The job graph's file name, and (entry name, file name) of every artifact."""
        found = [p for p in parts if p.name == "request" and p.filename is None]
        if len(found) != 1:
            raise BadRequest(f"A job submission needs exactly one form field 'request' with JSON, found "
                             f"{len(found)}; {_HELP}")
        try:
            spec = json.loads(found[0].data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadRequest(f"The 'request' part is not JSON: {e}") from None
        if not isinstance(spec, dict):
            raise BadRequest("The 'request' part must be a JSON object")
        graph_name = spec.get("jobGraphFileName")
        if not isinstance(graph_name, str) or not graph_name:
            raise BadRequest(f"The 'request' part has no 'jobGraphFileName'; {_HELP}")
        if spec.get("jobJarFileNames"):
            raise BadRequest("pyflow runs Python jobs: 'jobJarFileNames' must be empty; send the job file "
                             "among 'jobArtifactFileNames'")
        entries = spec.get("jobArtifactFileNames") or []
        if not isinstance(entries, list):
            raise BadRequest("'jobArtifactFileNames' must be a JSON array")
        artifacts = []
        for entry in entries:
            if isinstance(entry, str):
                artifacts.append((entry, entry))
            elif (isinstance(entry, dict) and isinstance(entry.get("fileName"), str)
                  and isinstance(entry.get("entryName", entry.get("fileName")), str)):
                artifacts.append((entry.get("entryName", entry["fileName"]), entry["fileName"]))
            else:
                raise BadRequest(f"Entries of 'jobArtifactFileNames' are file names or "
                                 f"{{\"entryName\": ..., \"fileName\": ...}}, not {json.dumps(entry)[:80]}")
        names = [entry for entry, _ in artifacts]
        for name in names:
            if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
                    or name != name.strip()):
                raise BadRequest(f"Artifact name {name!r} is not a plain file name (no folders, no '..')")
        if len(set(names)) != len(names):
            raise BadRequest("Two artifacts have the same entry name; give every artifact its own name")
        return graph_name, artifacts

    def _store_artifacts(self, job_id: str, artifacts: list[tuple[str, str]], files: dict[str, Part]) -> Path | None:
        if not artifacts:
            return None
        folder = self.upload_dir / job_id
        try:
            if folder.exists():  # left over from a JobManager that did not end cleanly
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            for entry, file in artifacts:
                (folder / entry).write_bytes(files[file].data)
        except OSError as e:
            _remove(folder)
            raise RestError(f"The JobManager cannot store the job's files in {folder}: {e}; set web.upload.dir "
                            "to a writable folder", status=500) from None
        return folder

    # ---- GET /jobs/:jobid/execution-result -------------------------------------------------------

    def execution_result(self, request: Request) -> dict[str, Any]:
        jid = request.params["jobid"]
        jm = self.dispatcher.job_master_for(jid)
        if jm is None:
            raise NotFound(f"Job {jid} not found on this cluster; GET /jobs lists the jobs")
        future = jm.result_future
        if not future.done():
            return {"status": {"id": "IN_PROGRESS"}}
        result = future.result()
        out: dict[str, Any] = {
            "id": result.job_id, "application-status": APPLICATION_STATUS.get(result.status, "UNKNOWN"),
            "accumulator-results": {}, "net-runtime": result.net_runtime_ms, "job-name": result.job_name,
            "operator-metrics": result.operator_metrics, "vertex-metrics": result.vertex_metrics,
            "task-managers": result.task_managers}
        if result.error:
            out["failure-cause"] = {"class": _exception_name(result.error), "stack-trace": result.error}
        return {"status": {"id": "COMPLETED"}, "job-execution-result": out}


def _duplicate(job_id: str) -> RestError:
    return RestError(f"Job {job_id} was already submitted to this cluster; a job id is used once. "
                     "Build the job graph again for a new id", status=409)


def _remove(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
