"""TaskManager process entry point.

    python -m pyflow.runtime.taskmanager [--jobmanager HOST:PORT] [--conf-dir DIR] [-D key=value]...

A standalone TaskManager (``scripts/taskmanager.sh``) finds the JobManager at
``jobmanager.rpc.address``:``jobmanager.rpc.port`` (``--jobmanager`` overrides them), keeps trying
to register for ``taskmanager.registration.timeout`` (it may start before its JobManager), and
when it loses the JobManager it frees its slots and registers again. An embedded cluster's
TaskManagers get ``--jobmanager``, ``--die-with-parent`` and ``--exit-on-jobmanager-loss``: they
end with their cluster.

Once its servers are up it prints one line, ``TaskManager <id> started: ...``, on stdout (the
scripts wait for it; not with ``--die-with-parent``, whose stdout is the program's console).
Exits 0 when the JobManager or SIGTERM/SIGINT shuts it down, 1 when it failed to start, could not
register in time, or (``--exit-on-jobmanager-loss``) lost the JobManager.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys

from pyflow.config import Configuration, options
from pyflow.errors import PyflowError
from pyflow.runtime.process_logging import setup_process_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyflow-taskmanager")
    parser.add_argument("--jobmanager", default=None,
                        help="host:port of the JobManager's RPC server (default: jobmanager.rpc.address "
                             "and jobmanager.rpc.port of the configuration)")
    parser.add_argument("-D", dest="dynamic", action="append", default=[], metavar="key=value")
    parser.add_argument("--conf-dir", default=None)
    parser.add_argument("--die-with-parent", action="store_true",
                        help="get SIGTERM when the process that started this one dies (Linux)")
    parser.add_argument("--exit-on-jobmanager-loss", action="store_true",
                        help="exit (code 1) when the JobManager stops answering heartbeats, instead of "
                             "registering again (the TaskManagers of an embedded cluster)")
    args = parser.parse_args(argv)
    if args.die_with_parent:
        _die_with_parent()
    try:
        conf = Configuration.load(args.conf_dir, dynamic=args.dynamic)
    except PyflowError as e:
        print(f"TaskManager configuration error: {e}", file=sys.stderr)
        return 1
    jobmanager = args.jobmanager or configured_jobmanager(conf)
    if jobmanager is None:
        print(f"TaskManager configuration error: {options.JM_RPC_PORT.key} is 0 (any free port), so a "
              f"TaskManager cannot know where the JobManager listens; set {options.JM_RPC_PORT.key} to the "
              f"JobManager's port, or pass --jobmanager HOST:PORT", file=sys.stderr)
        return 1
    from pyflow.runtime.taskmanager.task_executor import TaskExecutor

    resource_id = conf.get(options.TM_RESOURCE_ID) or f"tm-{os.getpid()}"
    conf.set(options.TM_RESOURCE_ID, resource_id)
    log_file = setup_process_logging("taskexecutor", resource_id, conf)
    # `kill -USR1 <pid>` writes every thread's stack to the TaskManager's stderr (stuck tasks)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logger = logging.getLogger("pyflow.runtime.taskmanager")
    te = TaskExecutor(conf, jobmanager, log_file=log_file, exit_on_jobmanager_loss=args.exit_on_jobmanager_loss)
    # a signal handler only records the request: shutting down logs, and a signal may arrive in
    # the middle of another logging call (which would be a reentrant logging error)
    requested: list[str] = []
    signal.signal(signal.SIGTERM, lambda *_: requested.append("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: requested.append("SIGINT"))
    try:
        te.start()
    except PyflowError as e:
        logger.error("TaskManager %s failed to start: %s", resource_id, e)
        te.close()
        return 1
    if not args.die_with_parent:  # an embedded cluster's TaskManagers share the program's console
        host, data_port = te.network.address
        print(f"TaskManager {resource_id} started: RPC at {te.rpc_address}, data at {host}:{data_port}; "
              f"registering at the JobManager at {jobmanager} (pid {os.getpid()}, log {log_file})", flush=True)
    while not te.terminated.wait(0.1):
        if requested:
            te.shutdown(requested[0])
    te.close()
    return te.exit_code


def configured_jobmanager(conf: Configuration) -> str | None:
    """``jobmanager.rpc.address:jobmanager.rpc.port``, or None when the port is 0 (unknowable)."""
    port = conf.get(options.JM_RPC_PORT)
    return f"{conf.get(options.JM_RPC_ADDRESS)}:{port}" if port else None


def _die_with_parent() -> None:
    """Ask the kernel for SIGTERM when our parent dies (PR_SET_PDEATHSIG), so that an embedded
    cluster's TaskManagers never outlive the program that started them."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main())
