"""The ``pyflow`` command (Flink's ``flink`` CLI): ``pyflow run`` and ``pyflow info``.

``pyflow run job.py`` runs the job file as ``__main__`` with the CLI's options in force for
every environment it creates (Flink's ContextEnvironment), so ``python job.py`` and
``pyflow run job.py`` run the same program. Every error ends in one line that names the cause
and the fix, and a non-zero exit code.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import click

from pyflow.errors import ConfigurationError, JobExecutionError, NotYetSupportedError, PyflowError, format_failure

TARGETS = ("local", "remote", "yarn-per-job", "yarn-session", "yarn-application")
AVAILABLE_TARGETS = ("local",)


def _fail(message: str, hint: str | None = None, code: int = 1) -> None:
    click.echo(f"Error: {message}", err=True)
    if hint:
        click.echo(f"Hint: {hint}", err=True)
    sys.exit(code)


def _load_configuration(dynamic: tuple[str, ...], parallelism: int | None, target: str | None):
    from pyflow.config import Configuration, options

    items = list(dynamic)
    conf = Configuration.load(dynamic=items)
    if parallelism is not None:
        conf.set(options.PARALLELISM, parallelism)
    if target is not None:
        conf.set(options.TARGET, target)
    return conf


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
              help="Address of a session cluster's JobManager (implies --target remote).")
@click.option("-p", "--parallelism", type=int, default=None, help="Default parallelism of the job.")
@click.option("-d", "--detached", is_flag=True, help="Submit and return without waiting for the result.")
@click.option("-D", "dynamic", multiple=True, metavar="KEY=VALUE", help="Set a configuration option.")
@click.argument("job", type=str)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(target: str | None, jobmanager: str | None, parallelism: int | None, detached: bool,
        dynamic: tuple[str, ...], job: str, args: tuple[str, ...]) -> None:
    """Run a job file (JOB) with its own arguments (ARGS)."""
    if jobmanager is not None:
        target = target or "remote"
    if target is not None and target not in TARGETS:
        import difflib

        close = difflib.get_close_matches(target, TARGETS, n=1)
        _fail(f"Unknown target '{target}'" + (f"; did you mean '{close[0]}'?" if close else "."),
              f"choose one of: {', '.join(TARGETS)}", code=2)
    if parallelism is not None and parallelism < 1:
        _fail(f"-p/--parallelism must be at least 1, got {parallelism}.", code=2)
    try:
        conf = _load_configuration(dynamic, parallelism, target)
    except ConfigurationError as e:
        _fail(str(e), "see conf/pyflow-conf.yaml for every option and its default", code=2)
    from pyflow.config import options

    effective_target = conf.get(options.TARGET)
    if effective_target not in AVAILABLE_TARGETS:
        _fail(f"Target '{effective_target}' is not available in this release.",
              "use --target local (the embedded cluster); session clusters and YARN come in later releases",
              code=2)
    detached = detached or not conf.get(options.ATTACHED)
    if detached and effective_target == "local":
        _fail("Detached mode (-d) needs a cluster that outlives this command; the embedded local "
              "cluster stops when the command ends.", "run without -d, or submit to a session cluster", code=2)
    path = _check_job_file(job)
    from pyflow.api.environment import set_context_configuration

    set_context_configuration(conf)
    try:
        _run_program(path, args)
    except JobExecutionError as e:
        click.echo(f"Error: {e.args[0] if e.args else e}", err=True)
        if e.cause:
            click.echo(e.cause.rstrip(), err=True)
        sys.exit(1)
    except NotYetSupportedError as e:
        _fail(str(e), code=2)
    except PyflowError as e:
        _fail(str(e))
    except SystemExit:
        raise
    except KeyboardInterrupt:
        _fail("Interrupted; the job was cancelled.", code=130)
    except BaseException as e:  # noqa: BLE001 - the user's program raised before or around execute()
        click.echo(format_failure(e), err=True)
        _fail(f"The job program '{job}' raised {type(e).__name__}: {e}",
              "the traceback above points at the line in your program")
    finally:
        set_context_configuration(None)


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
