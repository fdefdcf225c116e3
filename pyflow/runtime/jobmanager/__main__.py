"""JobManager process entry point: the JobManager of a standalone session cluster (Flink's
StandaloneSessionClusterEntrypoint; ``scripts/jobmanager.sh`` and ``scripts/start-cluster.sh``
start it).

    python -m pyflow.runtime.jobmanager [--conf-dir DIR] [--host HOST] [--webui-port PORT] [-D key=value]...

It listens at ``jobmanager.rpc.port`` (6123) for TaskManagers and at ``rest.port`` (8081) for
clients, distributes the slots of the TaskManagers that register with it
(``pyflow.deploy.standalone``), and runs until ``DELETE /cluster`` or SIGTERM/SIGINT. ``--host``
sets ``jobmanager.rpc.address`` and ``--webui-port`` sets ``rest.port`` (as Flink's); both win
over ``-D``. It logs to ``<log dir>/pyflow-standalonesession-<pid>.log``
and, once it listens, prints one line on stdout: ``JobManager started: RPC at ..., REST API and
Web UI at http://...``. Exits 0 when stopped, 1 when it could not start (a bad configuration, a
taken port: the message names the option to change).
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys

from pyflow.config import Configuration, JobManagerConfiguration, options
from pyflow.errors import PyflowError
from pyflow.runtime.process_logging import setup_process_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyflow-jobmanager", description="Run a standalone session JobManager.")
    parser.add_argument("--conf-dir", default=None, help="folder of pyflow-conf.yaml (default: $PYFLOW_CONF_DIR)")
    parser.add_argument("--host", default=None, help="address TaskManagers and clients reach this JobManager at "
                                                     "(jobmanager.rpc.address)")
    parser.add_argument("--webui-port", type=int, default=None, help="port of the REST API and Web UI (rest.port)")
    parser.add_argument("-D", dest="dynamic", action="append", default=[], metavar="key=value")
    args = parser.parse_args(argv)
    try:
        conf = configuration(args.conf_dir, args.dynamic, host=args.host, webui_port=args.webui_port)
    except PyflowError as e:
        print(f"JobManager configuration error: {e}", file=sys.stderr)
        return 1
    # this process is the standalone session: the entry point picks its ResourceDriver
    from pyflow.deploy.standalone import StandaloneResourceDriver
    from pyflow.runtime.jobmanager.entrypoint import ClusterEntrypoint

    log_file = setup_process_logging("standalonesession", str(os.getpid()), conf)
    # `kill -USR1 <pid>` writes every thread's stack to stderr (a stuck JobManager)
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    def started(jobmanager) -> None:
        print(f"JobManager started: RPC at {jobmanager.address}, REST API and Web UI at "
              f"http://{jobmanager.rest_address} (pid {os.getpid()}, log {log_file})", flush=True)

    entry = ClusterEntrypoint(conf, StandaloneResourceDriver(), on_started=started)
    code = entry.run()
    if code != 0:
        print(f"Error: {entry.result.diagnostics}", file=sys.stderr)
    return code


def configuration(conf_dir: str | None, dynamic: list[str], *, host: str | None = None,
                  webui_port: int | None = None) -> Configuration:
    """The JobManager's configuration: the file, ``PYFLOW_CONF_*``, ``-D``, then the flags."""
    conf = Configuration.load(conf_dir, dynamic=dynamic)
    if host:
        conf.set(options.JM_RPC_ADDRESS, host)
    if webui_port is not None:
        conf.set(options.REST_PORT, webui_port)
    JobManagerConfiguration.from_config(conf)  # fails early on inconsistent values
    return conf


if __name__ == "__main__":
    sys.exit(main())
