"""The skein application spec of a pyflow cluster, from ``yarn/pyflow-application.yaml``.

:func:`build_application_spec` is pure: configuration, mode and shipped files in, a spec
``dict`` out (skein's ``ApplicationSpec.from_dict`` shape; :mod:`~pyflow.deploy.yarn.skein_client`
validates and submits it). The template holds the layout and the container scripts; this module
fills in what comes from the configuration:

==============================  ==========================================================
spec field                      from
==============================  ==========================================================
name, queue, tags               yarn.application.name, yarn.application.queue, yarn.tags
max_attempts                    yarn.application-attempts
master.resources                jobmanager.memory.process.size, yarn.appmaster.vcores
services.taskmanager.resources  taskmanager.memory.process.size, yarn.containers.vcores
                                (-1: taskmanager.numberOfTaskSlots)
files (both)                    the shipped files (:mod:`~pyflow.deploy.yarn.shipping`)
env (both)                      PYFLOW_PYTHON: python.executable, else python3
==============================  ==========================================================

YARN counts memory in MiB; sizes are rounded up.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from pyflow.config import Configuration, options
from pyflow.deploy.yarn.shipping import ENVIRONMENT, ShippedFile
from pyflow.errors import DeploymentError

TEMPLATE = "pyflow-application.yaml"
CONTAINER_SCRIPT = "pyflow-container.sh"
TASKMANAGER_SERVICE = "taskmanager"
_MIB = 1024 * 1024


def yarn_directory() -> Path:
    """Where the spec template and container script are: ``$PYFLOW_YARN_DIR``, the ``yarn/``
    folder next to the pyflow package (a source checkout), or ``<prefix>/share/pyflow/yarn``."""
    candidates = [os.environ.get("PYFLOW_YARN_DIR"), Path(__file__).resolve().parents[3] / "yarn",
                  Path(sys.prefix) / "share" / "pyflow" / "yarn"]
    for candidate in candidates:
        if candidate and (Path(candidate) / TEMPLATE).is_file():
            return Path(candidate)
    raise DeploymentError(
        f"Cannot find pyflow's YARN files ({TEMPLATE}, {CONTAINER_SCRIPT}); looked in "
        f"{', '.join(str(c) for c in candidates if c)}. Set PYFLOW_YARN_DIR to the yarn/ folder of "
        f"pyflow's source.")


def memory_mib(size: int) -> int:
    return max(1, math.ceil(int(size) / _MIB))


def taskmanager_vcores(conf: Configuration) -> int:
    vcores = conf.get(options.YARN_CONTAINER_VCORES)
    return vcores if vcores > 0 else conf.get(options.NUM_TASK_SLOTS)


def default_application_name(mode: str, detail: str = "") -> str:
    names = {"per-job": "pyflow per-job cluster", "application": "pyflow application cluster",
             "session": "pyflow session cluster"}
    base = names[mode]
    return f"{base}: {detail}" if detail else base


def build_application_spec(conf: Configuration, *, mode: str, files: Sequence[ShippedFile],
                           master_args: Sequence[str], name_detail: str = "",
                           master_only: Sequence[str] = (), template_dir: Path | None = None) -> dict[str, Any]:
    """The spec of one pyflow application (``mode``: per-job, application or session)."""
    directory = template_dir or yarn_directory()
    spec = yaml.safe_load((directory / TEMPLATE).read_text())
    spec["name"] = conf.get(options.YARN_APPLICATION_NAME) or default_application_name(mode, name_detail)
    spec["queue"] = conf.get(options.YARN_APPLICATION_QUEUE)
    spec["max_attempts"] = conf.get(options.YARN_APPLICATION_ATTEMPTS)
    tags = [t.strip() for t in conf.get(options.YARN_TAGS).split(",") if t.strip()]
    if tags:
        spec["tags"] = tags

    env = {"PYFLOW_PYTHON": conf.get(options.PYTHON_EXECUTABLE) or "python3"}
    if any(f.name == ENVIRONMENT for f in files):
        env.pop("PYFLOW_PYTHON")  # the packed environment's python runs everything
    all_files = {f.name: f.spec() for f in files}
    service_files = {name: f for name, f in all_files.items() if name not in master_only}

    master = spec["master"]
    master["resources"] = {"memory": memory_mib(conf.get(options.JM_PROCESS_MEMORY)),
                           "vcores": conf.get(options.YARN_APPMASTER_VCORES)}
    master["script"] = master["script"].replace("${MASTER_ARGS}", " ".join(shlex.quote(a) for a in master_args))
    master["files"] = all_files
    master["env"] = dict(env)

    service = spec["services"][TASKMANAGER_SERVICE]
    service["resources"] = {"memory": memory_mib(conf.get(options.TM_PROCESS_MEMORY)),
                            "vcores": taskmanager_vcores(conf)}
    service["files"] = service_files
    service["env"] = dict(env)
    return spec
