"""The ``yarn-session`` command (Flink's yarn-session.sh): start, attach to, and stop a pyflow
session cluster on YARN.

    yarn-session [-jm 1g] [-tm 2g] [-s 2] [-nm NAME] [-qu QUEUE] [-t FILES] [-d] [-D key=value]...
    yarn-session -id application_1700000000000_0001 [-d]        attach to a running session
    yarn-session -id application_1700000000000_0001 stop        stop it

Starting (or attaching) writes the properties file (``.yarn-properties-<user>`` in
``yarn.properties-file.location``, default the temporary folder) that ``pyflow run -t
yarn-session`` reads to find the session. Detached (``-d``) the command returns once the session
runs; attached it waits: typing ``stop`` (or ``quit``) stops the session, end of input (Ctrl-D)
detaches and leaves it running, and the command ends when the application does. Memory sizes take
a unit (``1g``, ``1600m``); a plain number is MB, as in Flink. Every error is one ``Error:`` line
with a ``Hint:``, exit code 1 (2 for bad command-line input).
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import Callable

import click

from pyflow.errors import ConfigurationError, PyflowError


def _fail(message: str, hint: str | None = None, code: int = 1) -> None:
    click.echo(f"Error: {message}", err=True)
    if hint:
        click.echo(f"Hint: {hint}", err=True)
    sys.exit(code)


def _memory(value: str | None) -> str | None:
    """Flink's yarn-session memory: a plain number is MB."""
    if value is None:
        return None
    return f"{value.strip()}m" if value.strip().isdigit() else value


def session_configuration(dynamic: tuple[str, ...], *, jobmanager_memory: str | None, taskmanager_memory: str | None,
                          slots: int | None, name: str | None, queue_name: str | None, ship: str | None):
    """The configuration with ``-D`` and the session's own flags (which win, as in Flink)."""
    from pyflow.config import Configuration, options

    items = list(dynamic)
    for option, value in ((options.JM_PROCESS_MEMORY, _memory(jobmanager_memory)),
                          (options.TM_PROCESS_MEMORY, _memory(taskmanager_memory)),
                          (options.NUM_TASK_SLOTS, slots), (options.YARN_APPLICATION_NAME, name),
                          (options.YARN_APPLICATION_QUEUE, queue_name), (options.YARN_SHIP_FILES, ship)):
        if value is not None:
            items.append(f"{option.key}={value}")
    return Configuration.load(dynamic=items)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-jm", "--jobManagerMemory", "jobmanager_memory", metavar="SIZE",
              help="Memory of the JobManager (ApplicationMaster) container, e.g. 1600m or 2g; a plain number is MB.")
@click.option("-tm", "--taskManagerMemory", "taskmanager_memory", metavar="SIZE",
              help="Memory of each TaskManager container, e.g. 1728m or 2g; a plain number is MB.")
@click.option("-s", "--slots", type=int, default=None, help="Task slots per TaskManager.")
@click.option("-nm", "--name", default=None, help="Name of the YARN application.")
@click.option("-qu", "--queue", "queue_name", default=None, help="YARN queue to submit to.")
@click.option("-t", "--ship", default=None, metavar="FILES",
              help="Files or folders to ship to every container, separated by ';' (yarn.ship-files).")
@click.option("-d", "--detached", is_flag=True, help="Return once the session runs, instead of waiting.")
@click.option("-id", "--applicationId", "application_id", default=None, metavar="APPLICATION_ID",
              help="Attach to the running session of this YARN application.")
@click.option("-D", "dynamic", multiple=True, metavar="KEY=VALUE", help="Set a configuration option.")
@click.argument("action", required=False, type=click.Choice(["stop"]), metavar="[stop]")
def cli(jobmanager_memory: str | None, taskmanager_memory: str | None, slots: int | None, name: str | None,
        queue_name: str | None, ship: str | None, detached: bool, application_id: str | None,
        dynamic: tuple[str, ...], action: str | None) -> None:
    """Start a pyflow session cluster on YARN, attach to one (-id), or stop one (-id ID stop)."""
    from pyflow.deploy.yarn import session as properties
    from pyflow.deploy.yarn.cluster_descriptor import YarnClusterDescriptor

    if slots is not None and slots < 1:
        _fail(f"-s/--slots must be at least 1, got {slots}.", code=2)
    if action == "stop" and application_id is None:
        _fail("`yarn-session stop` needs the session's application id.",
              "yarn-session -id application_<...> stop (`yarn application -list` lists them)", code=2)
    try:
        conf = session_configuration(dynamic, jobmanager_memory=jobmanager_memory,
                                     taskmanager_memory=taskmanager_memory, slots=slots, name=name,
                                     queue_name=queue_name, ship=ship)
        if application_id is not None:
            application_id = properties.check_application_id(application_id)
    except ConfigurationError as e:
        _fail(str(e), "see conf/pyflow-conf.yaml for every option and its default", code=2)
    except PyflowError as e:
        _fail(str(e), code=2)
    descriptor = YarnClusterDescriptor(conf)
    try:
        if action == "stop":
            report = descriptor.stop_session(application_id)
            properties.remove_properties(conf, application_id)
            click.echo(f"YARN session {application_id} ended {report.final_status}: {report.diagnostics.strip()}")
            return
        if application_id is None:
            cluster = descriptor.deploy_session_cluster()
        else:
            cluster = descriptor.retrieve(application_id)
        path = properties.write_properties(conf, cluster.application_id)
    except PyflowError as e:
        _fail(str(e), "check the YARN cluster with `yarn application -list` and the options above")
    click.echo(f"JobManager Web Interface: {cluster.web_interface_url}")
    click.echo(f"YARN application {cluster.application_id}, tracking URL {cluster.tracking_url or '-'}; "
               f"recorded in {path}")
    click.echo(f"Submit jobs with `pyflow run -t yarn-session job.py`; stop the session with "
               f"`yarn-session -id {cluster.application_id} stop`.")
    if detached:
        return
    sys.exit(_attached(descriptor, conf, cluster.application_id, click.echo))


def _attached(descriptor, conf, application_id: str, echo: Callable[[str], None]) -> int:
    """Wait for `stop`/`quit` on stdin or the end of the application."""
    echo("Type 'stop' (or 'quit') to stop the session; end of input (Ctrl-D) leaves it running.")
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            lines.put(line.strip())
        lines.put(None)

    threading.Thread(target=read, name="yarn-session-stdin", daemon=True).start()
    try:
        with descriptor.client() as yarn:  # one YARN client (and skein driver) for the whole wait
            return _attached_loop(descriptor, yarn, conf, application_id, lines, echo)
    except KeyboardInterrupt:
        echo(f"Interrupted; the session keeps running (yarn-session -id {application_id} stop stops it).")
        return 130
    except PyflowError as e:
        echo(f"Error: {e}")
        return 1


def _attached_loop(descriptor, yarn, conf, application_id: str, lines: "queue.Queue[str | None]",
                   echo: Callable[[str], None]) -> int:
    from pyflow.deploy.yarn import session as properties

    while True:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            report = yarn.report(application_id)
            if report.terminal:
                properties.remove_properties(conf, application_id)
                echo(f"YARN session {application_id} ended {report.final_status}: {report.diagnostics.strip()}")
                return 0 if report.final_status == "SUCCEEDED" else 1
            continue
        if line is None:
            echo(f"Detached; the session keeps running (yarn-session -id {application_id} stop stops it).")
            return 0
        if line.lower() in ("stop", "quit"):
            report = descriptor.stop_session(application_id, yarn=yarn)
            properties.remove_properties(conf, application_id)
            echo(f"YARN session {application_id} ended {report.final_status}: {report.diagnostics.strip()}")
            return 0
        if line:
            echo(f"Unknown command '{line}'; type 'stop' to stop the session.")


def main() -> None:
    cli(prog_name="yarn-session")


if __name__ == "__main__":
    main()
