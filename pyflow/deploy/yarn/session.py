"""The yarn-session properties file (Flink's ``.yarn-properties-<user>``).

``yarn-session`` records the session it started or attached to in
``<yarn.properties-file.location or the temporary folder>/.yarn-properties-<user>``, a Java
properties file with ``applicationID=application_...``; ``pyflow run -t yarn-session`` submits to
that session unless ``yarn.application.id`` names another one.

>>> import tempfile
>>> conf = Configuration({"yarn.properties-file.location": tempfile.mkdtemp()})
>>> write_properties(conf, "application_1_0001")
>>> session_application_id(conf)
'application_1_0001'
"""

from __future__ import annotations

import getpass
import re
import tempfile
from pathlib import Path

from pyflow.config import Configuration, options
from pyflow.errors import DeploymentError

APPLICATION_ID = re.compile(r"^application_\d+_\d+$")
#: key in the key-value store: set by `yarn-session -id <app> stop`, the session master stops
STOP_REQUEST_KEY = "pyflow.session.stop"


def properties_file(conf: Configuration) -> Path:
    folder = conf.get(options.YARN_PROPERTIES_FILE_LOCATION) or tempfile.gettempdir()
    return Path(folder) / f".yarn-properties-{getpass.getuser()}"


def write_properties(conf: Configuration, application_id: str) -> Path:
    path = properties_file(conf)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#Generated YARN properties file\napplicationID={application_id}\n")
    return path


def read_properties(conf: Configuration) -> str | None:
    """The application id in the properties file, if there is one."""
    try:
        text = properties_file(conf).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "applicationID" and value.strip():
            return value.strip()
    return None


def remove_properties(conf: Configuration, application_id: str) -> None:
    """Remove the properties file if it names ``application_id``."""
    if read_properties(conf) == application_id:
        properties_file(conf).unlink(missing_ok=True)


def check_application_id(text: str) -> str:
    if not APPLICATION_ID.match(text.strip()):
        raise DeploymentError(
            f"'{text}' is not a YARN application id; it looks like application_1700000000000_0001 "
            f"(`yarn application -list` lists them).")
    return text.strip()


def session_application_id(conf: Configuration) -> str:
    """The session ``-t yarn-session`` submits to: ``yarn.application.id``, else the one in the
    properties file."""
    configured = conf.get(options.YARN_APPLICATION_ID)
    if configured:
        return check_application_id(configured)
    recorded = read_properties(conf)
    if recorded:
        return check_application_id(recorded)
    raise DeploymentError(
        f"No YARN session to submit to: yarn.application.id is not set and {properties_file(conf)} does not "
        f"exist. Start a session with `yarn-session -d`, or name one with -D yarn.application.id=<id>.")
