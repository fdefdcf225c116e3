"""The ``pyflow`` command (Flink's ``flink`` CLI): run, list, cancel, stop, savepoint, info.

``pyflow run job.py`` runs the job file as ``__main__`` with the CLI's options in force for
every environment it creates (Flink's ContextEnvironment), so ``python job.py`` and
``pyflow run job.py`` run the same program; ``execution.target`` (``-t``; ``-m host:port``
implies ``remote``) picks the pipeline executor its jobs go to (:mod:`pyflow.deploy.executors`).
Attached, it shows the job's progress while it runs (:mod:`pyflow.cli.progress`) and ends with
the job's result; detached (``-d``) it prints the job id and returns. ``list``, ``cancel``,
``stop`` and ``savepoint`` talk to a session cluster's REST API (:mod:`pyflow.rest.client`).
Every error ends in one ``Error:`` line that names the cause, a ``Hint:`` line with the fix, and
a non-zero exit code.
"""

from __future__ import annotations

import json
import re
import runpy
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click

from pyflow.api.job_client import JobListener
from pyflow.errors import ConfigurationError, JobExecutionError, NotYetSupportedError, PyflowError, format_failure

TARGETS = ("local", "remote", "yarn-per-job", "yarn-session", "yarn-application")
_JOB_ID = re.compile(r"^[0-9a-fA-F]{32}$")


def available_targets() -> tuple[str, ...]:
    """Targets with a pipeline executor in this installation."""
    from pyflow.deploy.executors import EXECUTORS

    return tuple(EXECUTORS)


def _fail(message: str, hint: str | None = None, code: int = 1) -> None:
    click.echo(f"Error: {message}", err=True)
    if hint:
        click.echo(f"Hint: {hint}", err=True)
    sys.exit(code)


def _load_configuration(dynamic: tuple[str, ...], parallelism: int | None, target: str | None,
                        jobmanager: tuple[str, int] | None = None):
    from pyflow.config import Configuration, options

    items = list(dynamic)
    conf = Configuration.load(dynamic=items)
    if parallelism is not None:
        conf.set(options.PARALLELISM, parallelism)
    if target is not None:
        conf.set(options.TARGET, target)
    if jobmanager is not None:
        conf.set(options.REST_ADDRESS, jobmanager[0])
        conf.set(options.REST_PORT, jobmanager[1])
    return conf


def _parse_jobmanager(value: str | None) -> tuple[str, int] | None:
    """``-m host:port`` -> (host, port); exit 2 with the expected form when malformed."""
    if value is None:
        return None
    from pyflow.rest.client import parse_address

    try:
        return parse_address(value)
    except ConfigurationError as e:
        _fail(str(e), "give the JobManager's REST address as host:port, e.g. -m 127.0.0.1:8081", code=2)
    raise AssertionError("unreachable")


def _check_job_file(job: str) -> Path:
    path = Path(job)
    if not path.exists():
        _fail(f"The job file '{job}' does not exist.", "check the path; it is relative to the current folder",
              code=2)
    if not path.is_file():
        _fail(f"'{job}' is not a file.", "give the path of a Python job file, e.g. examples/wordcount.py", code=2)
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        _fail(f"The job file '{job}' cannot be read: {e}.", "check its permissions and that it is UTF-8 text")
    try:
        compile(source, str(path), "exec")
    except SyntaxError as e:
        _fail(f"The job file '{job}' has a syntax error at line {e.lineno}: {e.msg}.",
              f"fix line {e.lineno}: {(e.text or '').strip()}")
    return path


def _run_program(path: Path, args: tuple[str, ...]) -> None:
    """Run the job file as __main__, with its folder first on sys.path (as `python job.py` would)."""
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [str(path), *args]
    sys.path.insert(0, str(path.resolve().parent))
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv, sys.path[:] = old_argv, old_path


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pyflow", prog_name="pyflow")
def cli() -> None:
    """pyflow: Flink's architecture, Python's ease, Arrow's speed."""


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-t", "--target", type=str, default=None,
              help=f"Where to run: {', '.join(TARGETS)} (default: execution.target, 'local').")
@click.option("-m", "--jobmanager", default=None, metavar="HOST:PORT",
              help="REST address of a session cluster's JobManager (implies --target remote).")
@click.option("-p", "--parallelism", type=int, default=None, help="Default parallelism of the job.")
@click.option("-d", "--detached", is_flag=True, help="Submit, print the job id and return without waiting.")
@click.option("-s", "--fromSavepoint", "savepoint", default=None, metavar="PATH",
              help="Start from a savepoint (not available: this release has no checkpointing).")
@click.option("-n", "--allowNonRestoredState", "allow_non_restored", is_flag=True,
              help="With -s: skip savepoint state that cannot be restored.")
@click.option("-D", "dynamic", multiple=True, metavar="KEY=VALUE", help="Set a configuration option.")
@click.argument("job", type=str)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(target: str | None, jobmanager: str | None, parallelism: int | None, detached: bool,
        savepoint: str | None, allow_non_restored: bool, dynamic: tuple[str, ...], job: str,
        args: tuple[str, ...]) -> None:
    """Run a job file (JOB) with its own arguments (ARGS)."""
    address = _parse_jobmanager(jobmanager)
    if address is not None:
        target = target or "remote"
    if target is not None and target not in TARGETS:
        import difflib

        close = difflib.get_close_matches(target, TARGETS, n=1)
        _fail(f"Unknown target '{target}'" + (f"; did you mean '{close[0]}'?" if close else "."),
              f"choose one of: {', '.join(TARGETS)}", code=2)
    if parallelism is not None and parallelism < 1:
        _fail(f"-p/--parallelism must be at least 1, got {parallelism}.", code=2)
    if savepoint is not None:
        _fail(f"Cannot start from savepoint '{savepoint}': savepoints do not exist in this release of pyflow "
              "(it has no checkpointing yet).", "run without -s (and -n); the job starts with empty state", code=2)
    try:
        conf = _load_configuration(dynamic, parallelism, target, address)
    except ConfigurationError as e:
        _fail(str(e), "see conf/pyflow-conf.yaml for every option and its default", code=2)
    from pyflow.config import options

    effective_target = conf.get(options.TARGET)
    if effective_target not in available_targets():
        _fail(f"Target '{effective_target}' is not available in this release.",
              f"use one of: {', '.join(available_targets())} (-t remote -m host:port for a session cluster)",
              code=2)
    detached = detached or not conf.get(options.ATTACHED)
    if detached and effective_target == "local":
        _fail("Detached mode (-d) needs a cluster that outlives this command; the embedded local "
              "cluster stops when the command ends.", "run without -d, or submit to a session cluster with "
              "-m host:port", code=2)
    conf.set(options.ATTACHED, not detached)
    path = _check_job_file(job)
    if effective_target == "yarn-application":  # main() runs in the YARN ApplicationMaster, not here
        from pyflow.deploy.yarn.executors import run_application

        try:
            sys.exit(run_application(path, args, conf, detached=detached, echo=click.echo))
        except JobExecutionError as e:
            click.echo(f"Error: {e.args[0]}", err=True)
            click.echo((e.cause or "").rstrip(), err=True)
            sys.exit(1)
        except PyflowError as e:
            _fail_with(e)
    from pyflow.api.environment import set_context_configuration

    listener = CliJobListener(announce=effective_target != "local", detached=detached,
                              progress_interval_s=conf.get(options.CLIENT_PROGRESS_INTERVAL).total_seconds(),
                              shares_terminal=effective_target == "local")
    set_context_configuration(conf, listeners=[listener])
    try:
        _run_program(path, args)
    except JobExecutionError as e:
        listener.close()
        click.echo(f"Error: {e.args[0] if e.args else e}", err=True)
        if e.cause:
            click.echo(e.cause.rstrip(), err=True)
        sys.exit(1)
    except NotYetSupportedError as e:
        _fail(str(e), code=2)
    except PyflowError as e:
        listener.close()
        _fail_with(e)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        listener.close()
        if listener.submitted and not detached:
            _fail("Interrupted; the job was cancelled.", code=130)
        _fail("Interrupted.", code=130)
    except BaseException as e:  # noqa: BLE001 - the user's program raised before or around execute()
        listener.close()
        click.echo(format_failure(e), err=True)
        _fail(f"The job program '{job}' raised {type(e).__name__}: {e}",
              "the traceback above points at the line in your program")
    finally:
        listener.close()
        set_context_configuration(None)


def _fail_with(e: PyflowError, code: int = 1) -> None:
    """A pyflow error as one Error line, and its hint when it has one (REST client errors do)."""
    message = getattr(e, "message", None)
    if message is not None:
        _fail(message.rstrip(".") + ".", getattr(e, "hint", None), code=code)
    _fail(str(e), code=code)


class CliJobListener(JobListener):
    """What ``pyflow run`` does around each job: announce it (Flink's lines), draw its progress
    while it runs attached, print how it ended."""

    def __init__(self, *, announce: bool, detached: bool, progress_interval_s: float, shares_terminal: bool,
                 stream: Any = None):
        self.announce = announce
        self.detached = detached
        self.progress_interval_s = progress_interval_s
        self.shares_terminal = shares_terminal
        self.stream = stream or sys.stderr
        self.submitted: list[str] = []
        self._reporters: list[Any] = []

    def on_job_submitted(self, job_client: Any, error: BaseException | None) -> None:
        if job_client is None:
            return
        self.submitted.append(job_client.job_id)
        if self.announce:
            click.echo(f"Job has been submitted with JobID {job_client.job_id}")
        if not self.detached and job_client.rest_address and self.progress_interval_s > 0:
            self._reporters.append(_progress_reporter(job_client, self.stream, self.progress_interval_s,
                                                      redraw=_is_tty(self.stream) and not self.shares_terminal))

    def on_job_executed(self, result: Any, error: BaseException | None) -> None:
        self.close()
        if result is not None and self.announce and not self.detached:
            click.echo("Program execution finished")
            click.echo(f"Job with JobID {result.job_id} has finished.")
            click.echo(f"Job Runtime: {result.net_runtime} ms")

    def close(self) -> None:
        reporters, self._reporters = self._reporters, []
        for reporter in reporters:
            reporter.stop()


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _progress_reporter(job_client: Any, stream: Any, interval_s: float, *, redraw: bool):
    from pyflow.cli.progress import ProgressReporter, read_progress
    from pyflow.rest.client import RestClusterClient

    rest = RestClusterClient(job_client.rest_address, connect_timeout_s=5.0, read_timeout_s=10.0)
    return ProgressReporter(job_client.job_id, lambda: read_progress(rest, job_client.job_id), stream,
                            redraw=redraw, interval_s=interval_s,
                            width=lambda: shutil.get_terminal_size((100, 20)).columns).start()


# ---- the verbs that talk to a running cluster: list, cancel, stop, savepoint ----------------------

_JM_OPTION = click.option("-m", "--jobmanager", default=None, metavar="HOST:PORT",
                          help="REST address of the JobManager (default: rest.address:rest.port).")
_D_OPTION = click.option("-D", "dynamic", multiple=True, metavar="KEY=VALUE", help="Set a configuration option.")


def _rest_client(jobmanager: str | None, dynamic: tuple[str, ...]):
    from pyflow.rest.client import RestClusterClient

    address = _parse_jobmanager(jobmanager)
    try:
        conf = _load_configuration(dynamic, None, None, address)
    except ConfigurationError as e:
        _fail(str(e), "see conf/pyflow-conf.yaml for every option and its default", code=2)
    return RestClusterClient.from_config(conf)


def _check_job_id(job_id: str) -> str:
    if not _JOB_ID.match(job_id):
        _fail(f"'{job_id}' is not a job id: a job id has 32 hexadecimal characters.",
              "`pyflow list -a` lists the ids of the cluster's jobs", code=2)
    return job_id.lower()


def _call(client: Any, job_id: str | None, fn: Callable[[], Any]) -> Any:
    """``fn()``; a REST client error ends the command with its message and hint (an unknown job
    with a message of its own)."""
    from pyflow.rest.client import RestClientError

    try:
        return fn()
    except RestClientError as e:
        if e.status == 404 and job_id is not None:
            _fail(f"Job {job_id} not found on the cluster at {client.address}.",
                  f"`pyflow list -a -m {client.address}` lists its jobs")
        _fail_with(e)


@cli.command("list")
@click.option("-r", "--running", is_flag=True, help="Show only running jobs.")
@click.option("-s", "--scheduled", is_flag=True, help="Show only scheduled jobs.")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all jobs, the ended ones too.")
@_JM_OPTION
@_D_OPTION
def list_jobs(running: bool, scheduled: bool, show_all: bool, jobmanager: str | None,
              dynamic: tuple[str, ...]) -> None:
    """List the jobs of a session cluster (by default the running and scheduled ones)."""
    client = _rest_client(jobmanager, dynamic)
    click.echo("Waiting for response...")
    jobs = _call(client, None, client.list_jobs)
    if not (running or scheduled or show_all):
        running = scheduled = True
    click.echo(format_job_list(jobs, running=running, scheduled=scheduled, show_all=show_all))


def format_job_list(jobs: list[dict[str, Any]], *, running: bool, scheduled: bool, show_all: bool,
                    to_time: Callable[[float], time.struct_time] = time.localtime) -> str:
    """Flink's `flink list` output: sections of ``<start time> : <job id> : <name> (<state>)``."""
    groups: dict[str, list[dict[str, Any]]] = {"running": [], "scheduled": [], "terminated": []}
    for job in jobs:
        state = job["state"]
        if state in ("CREATED", "INITIALIZING"):
            groups["scheduled"].append(job)
        elif state in ("FINISHED", "FAILED", "CANCELED"):
            groups["terminated"].append(job)
        else:
            groups["running"].append(job)

    def lines(group: list[dict[str, Any]]) -> list[str]:
        ordered = sorted(group, key=lambda j: (j.get("start-time", 0), j["state"]))
        return [f"{time.strftime('%d.%m.%Y %H:%M:%S', to_time(j.get('start-time', 0) / 1000))} : {j['jid']} : "
                f"{j['name']} ({j['state']})" for j in ordered]

    out: list[str] = []
    rule = "--------------------------------------------------------------"
    if running or show_all:
        if groups["running"]:
            out += ["------------------ Running/Restarting Jobs -------------------", *lines(groups["running"]), rule]
        else:
            out.append("No running jobs.")
    if scheduled or show_all:
        if groups["scheduled"]:
            out += ["----------------------- Scheduled Jobs -----------------------", *lines(groups["scheduled"]),
                    rule]
        else:
            out.append("No scheduled jobs.")
    if show_all and groups["terminated"]:
        out += ["---------------------- Terminated Jobs -----------------------", *lines(groups["terminated"]), rule]
    return "\n".join(out)


@cli.command()
@_JM_OPTION
@_D_OPTION
@click.argument("job_id", metavar="JOBID")
def cancel(jobmanager: str | None, dynamic: tuple[str, ...], job_id: str) -> None:
    """Cancel a running job."""
    job_id = _check_job_id(job_id)
    client = _rest_client(jobmanager, dynamic)
    click.echo(f"Cancelling job {job_id}.")
    _call(client, job_id, lambda: client.cancel_job(job_id))
    click.echo(f"Cancelled job {job_id}.")


@cli.command()
@click.option("-d", "--drain", is_flag=True,
              help="Drain: end event time so that every window and timer fires (pyflow always drains).")
@click.option("-p", "--savepointPath", "target_directory", default=None, metavar="DIR",
              help="Savepoint directory (unused: this release takes no savepoint).")
@_JM_OPTION
@_D_OPTION
@click.argument("job_id", metavar="JOBID")
def stop(drain: bool, target_directory: str | None, jobmanager: str | None, dynamic: tuple[str, ...],
         job_id: str) -> None:
    """Stop a running job gracefully: its sources end, it drains and finishes."""
    job_id = _check_job_id(job_id)
    client = _rest_client(jobmanager, dynamic)
    click.echo(f'{"Draining" if drain else "Stopping"} job "{job_id}" (no savepoint is taken: this release has '
               "no checkpointing).")
    trigger = _call(client, job_id, lambda: client.stop_job(job_id, target_directory, drain))
    click.echo("Waiting for response...")
    operation = _call(client, job_id, lambda: client.wait_for_operation(job_id, trigger))
    _finish_operation(operation, f"Stopping job {job_id} failed",
                      f"`pyflow list -a -m {client.address}` shows how the job ended; `pyflow cancel {job_id}` "
                      "ends a job that cannot be stopped")
    location = operation.get("location")
    click.echo(f"Savepoint completed. Path: {location}" if location else f"Job {job_id} has been stopped.")
    if operation.get("note"):
        click.echo(operation["note"])


@cli.command()
@_JM_OPTION
@_D_OPTION
@click.argument("job_id", metavar="JOBID")
@click.argument("target_directory", metavar="[TARGETDIR]", required=False)
def savepoint(jobmanager: str | None, dynamic: tuple[str, ...], job_id: str, target_directory: str | None) -> None:
    """Trigger a savepoint of a running job (fails in this release: no checkpointing)."""
    job_id = _check_job_id(job_id)
    client = _rest_client(jobmanager, dynamic)
    click.echo(f"Triggering savepoint for job {job_id}.")
    trigger = _call(client, job_id, lambda: client.trigger_savepoint(job_id, target_directory))
    click.echo("Waiting for response...")
    operation = _call(client, job_id, lambda: client.wait_for_operation(job_id, trigger))
    _finish_operation(operation, f"Triggering a savepoint for job {job_id} failed",
                      f"savepoints come with checkpointing; `pyflow stop {job_id}` ends the job gracefully")
    click.echo(f"Savepoint completed. Path: {operation.get('location')}")
    click.echo("You can resume your program from this savepoint with the run command.")


def _finish_operation(operation: dict[str, Any], what: str, hint: str) -> None:
    """Fail with the operation's failure-cause, if it has one (Flink's shape)."""
    cause = operation.get("failure-cause")
    if cause is None:
        return
    text = str(cause.get("stack-trace") or cause.get("class") or "no details").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    message = lines[-1] if lines else text
    prefix = f"{cause.get('class')}: "
    if cause.get("class") and message.startswith(prefix):
        message = message[len(prefix):]
    _fail(f"{what}: {message}", hint)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("-p", "--parallelism", type=int, default=None, help="Default parallelism of the job.")
@click.option("-D", "dynamic", multiple=True, metavar="KEY=VALUE", help="Set a configuration option.")
@click.argument("job", type=str)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def info(as_json: bool, parallelism: int | None, dynamic: tuple[str, ...], job: str, args: tuple[str, ...]) -> None:
    """Show the plan of a job file: its chains (tasks), parallelism and slots, without running it."""
    try:
        conf = _load_configuration(dynamic, parallelism, None)
    except ConfigurationError as e:
        _fail(str(e), "see conf/pyflow-conf.yaml for every option and its default", code=2)
    path = _check_job_file(job)
    from pyflow.api import environment

    environment.set_context_configuration(conf, plan_only=True)
    try:
        _run_program(path, args)
        _fail(f"The job program '{job}' never called execute(), so it has no plan.",
              "end the program with env.execute()")
    except environment.PlanCaptured as captured:
        plan = captured.job_graph.plan
        click.echo(json.dumps(plan, indent=2) if as_json else format_plan(plan))
    except PyflowError as e:
        _fail(str(e))
    finally:
        environment.set_context_configuration(None)


def format_plan(plan: dict[str, Any]) -> str:
    job = plan["jobGraph"]
    lines = [f"Job '{job['name']}': {len(job['nodes'])} tasks (chains), {job['requiredSlots']} slots needed"]
    for node in job["nodes"]:
        lines.append(f"  [{node['id']}] {node['description']}")
        lines.append(f"       parallelism {node['parallelism']}, slot sharing group '{node['slotSharingGroup']}'")
        for i in node["inputs"]:
            lines.append(f"       <- [{i['id']}] {i['ship_strategy']}")
    return "\n".join(lines)


def main() -> None:
    cli(prog_name="pyflow")


if __name__ == "__main__":
    main()
