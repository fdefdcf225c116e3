"""TaskManager container entry point on YARN (run by ``yarn/pyflow-container.sh taskmanager``).

    python -m pyflow.deploy.yarn.taskmanager

It reads the JobManager's RPC address from the application's key-value store (the YARN
ResourceDriver publishes it, :mod:`pyflow.deploy.yarn.driver`), then runs an ordinary TaskManager
(:mod:`pyflow.runtime.taskmanager`) with the settings of this container, as Flink's
YarnTaskExecutorRunner does:

- ``taskmanager.resource-id``: skein's container id (``taskmanager_3``), the id the driver knows;
- ``taskmanager.host``: the node (``$NM_HOST``); it listens on every interface unless that name
  is a loopback address;
- ``env.log.dir``: the container's log folder (``$LOG_DIRS``), so ``yarn logs`` collects the log;
- ``io.tmp.dirs``: the container's local folder (``$LOCAL_DIRS``) for spill files.

The rest of the configuration is the client's (``pyflow-conf.yaml`` in the working directory).
It exits when the JobManager is lost: its application is over then.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

from pyflow.config import Configuration, options
from pyflow.errors import PyflowError


def container_settings(env: dict[str, str] | None = None) -> dict[str, str]:
    """The options a TaskManager container overrides, from the environment YARN and skein give it."""
    env = dict(os.environ) if env is None else env
    host = node_host(env)
    settings = {options.TM_HOST.key: host, options.TM_BIND_HOST.key: bind_host(host)}
    if env.get("SKEIN_CONTAINER_ID"):
        settings[options.TM_RESOURCE_ID.key] = env["SKEIN_CONTAINER_ID"]
    settings.update(container_folders(env))
    return settings


def node_host(env: dict[str, str]) -> str:
    """The name of the node this container runs on (YARN's ``$NM_HOST``)."""
    return env.get("NM_HOST") or socket.getfqdn()


def bind_host(host: str) -> str:
    """Listen on every interface, unless the node's name is a loopback address (a one-machine
    cluster, or the test double), where that address is enough."""
    try:
        loopback = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        loopback = False
    return host if loopback else "0.0.0.0"


def container_folders(env: dict[str, str]) -> dict[str, str]:
    """``env.log.dir`` in the container's log folder (YARN collects it: ``yarn logs``) and
    ``io.tmp.dirs`` in its local folder, as Flink does on YARN."""
    settings = {}
    if env.get("LOG_DIRS"):
        settings[options.LOG_DIR.key] = env["LOG_DIRS"].split(",")[0]
    if env.get("LOCAL_DIRS"):
        settings[options.IO_TMP_DIRS.key] = env["LOCAL_DIRS"].split(",")[0]
    return settings


def main(argv: list[str] | None = None) -> int:
    from pyflow.deploy.yarn.driver import JOBMANAGER_RPC_KEY
    from pyflow.deploy.yarn.skein_client import YarnApplication

    try:
        conf = Configuration.load()
        timeout_s = conf.get(options.TM_REGISTRATION_TIMEOUT).total_seconds()
        application = YarnApplication.current()
        try:
            jobmanager = application.kv_wait(JOBMANAGER_RPC_KEY, timeout_s)
        finally:
            application.close()
    except PyflowError as e:
        print(f"TaskManager container {os.environ.get('SKEIN_CONTAINER_ID', '?')} cannot start: {e}", file=sys.stderr)
        return 1
    from pyflow.runtime.taskmanager.__main__ import main as taskmanager_main

    arguments = ["--jobmanager", jobmanager, "--exit-on-jobmanager-loss"]
    for key, value in container_settings().items():
        arguments += ["-D", f"{key}={value}"]
    return taskmanager_main(arguments + list(argv or []))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
