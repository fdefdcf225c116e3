"""Logging of pyflow processes: one file per process under ``env.log.dir``, plus the console.

File names follow Flink's: ``pyflow-<component>-<id>.log`` (``pyflow-taskexecutor-tm-1a2b.log``,
``pyflow-client-<pid>.log``). The console gets warnings and errors only, so that a local run
shows the job's own output (print sinks) and problems, not the machinery.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pyflow.config import Configuration, options, resolve_log_dir

#: ``logger.error(..., extra=FILE_ONLY)``: for the log file only, because the same failure reaches
#: the user another way (a failed job's error is printed once, by the client)
FILE_ONLY = {"console": False}

FORMAT = "%(asctime)s %(levelname)-5s %(processName)s %(threadName)s %(name)s - %(message)s"
_configured: str | None = None


def setup_process_logging(component: str, ident: str, conf: Configuration, *, console: bool = True) -> str:
    """Log to ``<log dir>/pyflow-<component>-<ident>.log`` (and the console); returns the path.

    Idempotent per process: a second call returns the first file.
    """
    global _configured
    if _configured is not None:
        return _configured
    log_dir = Path(resolve_log_dir(conf))
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"pyflow-{component}-{ident}.log"
    level = getattr(logging, conf.get(options.LOG_LEVEL))
    root = logging.getLogger("pyflow")
    root.setLevel(level)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(level)
    root.addHandler(handler)
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream.setLevel(logging.WARNING)
        stream.addFilter(lambda record: getattr(record, "console", True))
        root.addHandler(stream)
    root.propagate = False
    _configured = str(path)
    logging.getLogger(__name__).info("%s %s (pid %d) logging to %s", component, ident, os.getpid(), path)
    return _configured
