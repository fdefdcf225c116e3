"""The client's Hadoop configuration: ``$HADOOP_CONF_DIR/{core,yarn}-site.xml``.

pyflow reads two things from it, as Hadoop's own clients do: where the YARN ResourceManager is
(to say at once, in one line, that it cannot be reached, instead of letting skein's driver retry
for Hadoop's default 15 minutes) and the default file system (the default staging directory).

>>> conf = HadoopConfiguration({"yarn.resourcemanager.hostname": "rm1"})
>>> conf.resource_manager_addresses()
[('rm1', 8032)]
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Mapping

from pyflow.errors import DeploymentError

_VARIABLE = re.compile(r"\$\{([^}$\s]+)\}")
_DEFAULTS = {
    "fs.defaultFS": "file:///",
    "yarn.resourcemanager.hostname": "0.0.0.0",
    "yarn.resourcemanager.address": "${yarn.resourcemanager.hostname}:8032",
}


def conf_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """``$HADOOP_CONF_DIR`` (else ``$YARN_CONF_DIR``), if set."""
    env = os.environ if env is None else env
    value = env.get("HADOOP_CONF_DIR") or env.get("YARN_CONF_DIR")
    return Path(value) if value else None


class HadoopConfiguration:
    """Properties of the site files, with Hadoop's ``${name}`` substitution and defaults."""

    def __init__(self, properties: Mapping[str, str], source: str = "the Hadoop configuration"):
        self.properties = dict(properties)
        self.source = source

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> "HadoopConfiguration":
        directory = conf_dir(env)
        properties: dict[str, str] = {}
        if directory is None:
            return cls(properties, "Hadoop's defaults (HADOOP_CONF_DIR is not set)")
        for name in ("core-site.xml", "yarn-site.xml"):
            path = directory / name
            if path.is_file():
                properties.update(read_site_file(path))
        return cls(properties, f"{directory}/yarn-site.xml")

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self.properties.get(key, _DEFAULTS.get(key, default))
        for _ in range(20):  # Hadoop stops substituting after a fixed depth too
            if value is None or "${" not in value:
                break
            value = _VARIABLE.sub(lambda m: self.get(m.group(1)) or os.environ.get(m.group(1), m.group(0)), value)
        return value

    def resource_manager_addresses(self) -> list[tuple[str, int]]:
        """``host:port`` of the ResourceManager(s) clients talk to (each one of an HA pair)."""
        if (self.get("yarn.resourcemanager.ha.enabled") or "false").lower() == "true":
            ids = [i.strip() for i in (self.get("yarn.resourcemanager.ha.rm-ids") or "").split(",") if i.strip()]
            addresses = []
            for rm_id in ids:
                address = self.get(f"yarn.resourcemanager.address.{rm_id}")
                if address is None:
                    host = self.get(f"yarn.resourcemanager.hostname.{rm_id}") or "0.0.0.0"
                    address = f"{host}:8032"
                addresses.append(_host_port(address))
            if addresses:
                return addresses
        return [_host_port(self.get("yarn.resourcemanager.address") or "0.0.0.0:8032")]

    def default_fs(self) -> str:
        return (self.get("fs.defaultFS") or "file:///").rstrip("/")

    def default_staging_directory(self) -> str:
        """``<fs.defaultFS>/user/<user>/.pyflow``: what yarn.staging-directory defaults to."""
        return f"{self.default_fs()}/user/{getpass.getuser()}/.pyflow"

    def check_resource_manager_reachable(self, timeout_s: float = 5.0) -> None:
        """Raise DeploymentError unless a ResourceManager accepts a TCP connection."""
        failures = []
        for host, port in self.resource_manager_addresses():
            target = "127.0.0.1" if host in ("0.0.0.0", "") else host
            try:
                with socket.create_connection((target, port), timeout=timeout_s):
                    return
            except OSError as e:
                failures.append(f"{target}:{port} ({e.strerror or e})")
        raise DeploymentError(
            f"Cannot reach the YARN ResourceManager at {', '.join(failures)}; the address comes "
            f"from {self.source}. Start YARN (docker compose up -d, see README.md), or point "
            f"HADOOP_CONF_DIR at the configuration of a running cluster.")


def read_site_file(path: Path) -> dict[str, str]:
    """``{name: value}`` of a Hadoop ``*-site.xml`` file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise DeploymentError(f"Cannot read the Hadoop configuration file {path}: {e}.") from None
    properties = {}
    for prop in root.iter("property"):
        name = (prop.findtext("name") or "").strip()
        if name:
            properties[name] = (prop.findtext("value") or "").strip()
    return properties


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    try:
        return host, int(port)
    except ValueError:
        return address.strip(), 8032
