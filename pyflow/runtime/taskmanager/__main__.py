"""TaskManager process entry point.

    python -m pyflow.runtime.taskmanager --jobmanager 127.0.0.1:6123 [-D key=value]...

Exits 0 when the JobManager shuts it down, 1 when it lost the JobManager or failed to start.
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
    parser.add_argument("--jobmanager", required=True, help="host:port of the JobManager's RPC server")
    parser.add_argument("-D", dest="dynamic", action="append", default=[], metavar="key=value")
    parser.add_argument("--conf-dir", default=None)
    parser.add_argument("--die-with-parent", action="store_true",
                        help="get SIGTERM when the process that started this one dies (Linux)")
    args = parser.parse_args(argv)
    if args.die_with_parent:
        _die_with_parent()
    try:
        conf = Configuration.load(args.conf_dir, dynamic=args.dynamic)
    except PyflowError as e:
        print(f"TaskManager configuration error: {e}", file=sys.stderr)
        return 1
    from pyflow.runtime.taskmanager.task_executor import TaskExecutor

    resource_id = conf.get(options.TM_RESOURCE_ID) or f"tm-{os.getpid()}"
    conf.set(options.TM_RESOURCE_ID, resource_id)
    log_file = setup_process_logging("taskexecutor", resource_id, conf)
    # `kill -USR1 <pid>` writes every thread's stack to the TaskManager's stderr (stuck tasks)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logger = logging.getLogger("pyflow.runtime.taskmanager")
    te = TaskExecutor(conf, args.jobmanager, log_file=log_file)
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
    while not te.terminated.wait(0.1):
        if requested:
            te.shutdown(requested[0])
    te.close()
    return te.exit_code


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
