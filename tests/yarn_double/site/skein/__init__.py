"""A test double of skein 0.8.2's ``Client`` and ``ApplicationClient``, talking to the fake YARN
daemon (``tests/yarn_double/fake_yarn.py``) instead of skein's Java driver and master.

The fake YARN cluster puts this folder first on the PYTHONPATH of every process it starts, and
tests put it first on ``sys.path`` (``backend.use_fake_skein``), so production code's ``import
skein`` gets this module unchanged. Everything that is not a client -- the specification model
(``ApplicationSpec``, ``Master``, ``Service``, ``File``, ``Resources``, and their validation),
``ApplicationReport``, ``Container``, the enums, ``properties`` and the exceptions -- is the real
skein's, loaded from the installed package under the name ``_real_skein``; the clients return
real skein objects and raise real skein exceptions, with skein's messages:

- ``Client()`` finds the ResourceManager like skein's driver does, in
  ``$HADOOP_CONF_DIR/yarn-site.xml`` (``yarn.resourcemanager.address``); without HADOOP_CONF_DIR
  it fails like skein without ``yarn`` on PATH. A keytab needs a principal and must exist; the
  principal's user (``alice`` of ``alice@REALM``) owns the applications it submits.
- ``submit`` refuses what YARN refuses (DriverError with YARN's text), ``connect`` raises
  ApplicationNotRunningError for an application that is not running.
- ``ApplicationClient.from_current()`` needs skein's container environment
  (SKEIN_APPLICATION_ID, SKEIN_APPMASTER_ADDRESS, and ``.skein.crt``/``.skein.pem`` in the
  container folder under LOCAL_DIRS), exactly as the real one.
- The key-value store holds bytes; ``kv.wait`` blocks until the key is set.
"""

from __future__ import annotations

import datetime as _dt
import getpass as _getpass
import http.client as _http
import importlib.util as _importlib_util
import json as _json
import os as _os
import sys as _sys
import xml.etree.ElementTree as _ET
from collections.abc import MutableMapping as _MutableMapping

IS_TEST_DOUBLE = True
_SITE = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))


def _load_real_skein():
    if "_real_skein" in _sys.modules:
        return _sys.modules["_real_skein"]
    for entry in _sys.path:
        base = _os.path.abspath(entry or _os.getcwd())
        init = _os.path.join(base, "skein", "__init__.py")
        if base == _SITE or not _os.path.isfile(_os.path.join(base, "skein", "core.py")):
            continue
        spec = _importlib_util.spec_from_file_location("_real_skein", init,
                                                       submodule_search_locations=[_os.path.dirname(init)])
        module = _importlib_util.module_from_spec(spec)
        _sys.modules["_real_skein"] = module
        spec.loader.exec_module(module)
        return module
    raise ImportError("the skein test double needs the real skein package for its model: pip install skein==0.8.2")


_real = _load_real_skein()
exceptions = _real.exceptions
model = _real.model
kv = _real.kv
_sys.modules[__name__ + ".exceptions"] = exceptions
_sys.modules[__name__ + ".model"] = model
_sys.modules[__name__ + ".kv"] = kv

from _real_skein.exceptions import (  # noqa: E402
    ApplicationError, ApplicationNotRunningError, ConnectionError, DriverError, DriverNotRunningError,
    SkeinError, TimeoutError,
)
from _real_skein.model import (  # noqa: E402
    ACLs, ApplicationReport, ApplicationSpec, Container, File, FileType, FileVisibility, FinalStatus, LogLevel,
    Master, Queue, ResourceUsageReport, Resources, Security, Service,
)

properties = _real.core.Properties()
__version__ = "0.8.2"

__all__ = ["Client", "ApplicationClient", "properties", "ApplicationSpec", "Service", "File", "Resources",
           "FileType", "FileVisibility", "ACLs", "Master", "LogLevel", "Security", "SkeinError",
           "ConnectionError", "DriverNotRunningError", "ApplicationNotRunningError", "DriverError",
           "ApplicationError"]

_ERRORS = {"DriverError": DriverError, "ApplicationError": ApplicationError, "ValueError": ValueError,
           "KeyError": KeyError, "TimeoutError": TimeoutError}


def _call(address: str, method: str, params: dict, *, server_name: str, error, user: str | None = None,
          timeout: float = 60.0):
    host, _, port = address.rpartition(":")
    connection = _http.HTTPConnection(host, int(port), timeout=timeout)
    body = _json.dumps(params, default=str).encode()
    headers = {"Content-Type": "application/json"}
    if user:
        headers["X-Skein-User"] = user
    try:
        connection.request("POST", "/" + method, body, headers)
        answer = _json.loads(connection.getresponse().read())
    except (OSError, _http.HTTPException, ValueError):
        raise ConnectionError("Unable to connect to %s" % server_name) from None
    finally:
        connection.close()
    if "error" in answer:
        raise _ERRORS.get(answer["error"]["type"], error)(answer["error"]["message"])
    return answer["result"]


def _time(value):
    return None if value is None else _dt.datetime.fromtimestamp(value)


def _report(r: dict) -> ApplicationReport:
    return ApplicationReport(
        id=r["id"], name=r["name"], user=r["user"], queue=r["queue"], tags=r["tags"], host=r["host"],
        port=r["port"], tracking_url=r["tracking_url"], state=r["state"], final_status=r["final_status"],
        progress=float(r["progress"]), usage=ResourceUsageReport(0, 0, 0, Resources(0, 0), Resources(0, 0), Resources(0, 0)),
        diagnostics=r["diagnostics"], start_time=_time(r["start_time"]), finish_time=_time(r["finish_time"]))


def _container(c: dict) -> Container:
    return Container(service_name=c["service_name"], instance=c["instance"], state=c["state"],
                     yarn_container_id=c["yarn_container_id"], yarn_node_http_address=c["yarn_node_http_address"],
                     start_time=_time(c["start_time"]), finish_time=_time(c["finish_time"]),
                     exit_message=c["exit_message"])


def _queue(q: dict) -> Queue:
    return Queue(**{**q, "node_labels": set(q["node_labels"])})


def _resource_manager_address() -> str:
    conf_dir = _os.environ.get("HADOOP_CONF_DIR") or _os.environ.get("YARN_CONF_DIR")
    if not conf_dir:
        # the real Client runs `yarn classpath --glob`; without Hadoop's client that is what fails
        raise FileNotFoundError(2, "No such file or directory", "yarn")
    path = _os.path.join(conf_dir, "yarn-site.xml")
    properties = {}
    if _os.path.isfile(path):
        for prop in _ET.parse(path).getroot().iter("property"):
            properties[(prop.findtext("name") or "").strip()] = (prop.findtext("value") or "").strip()
    host = properties.get("yarn.resourcemanager.hostname", "0.0.0.0")
    address = properties.get("yarn.resourcemanager.address", "%s:8032" % host)
    address = address.replace("${yarn.resourcemanager.hostname}", host)
    return address.replace("0.0.0.0", "127.0.0.1")


class Client(object):
    """skein.Client against the fake ResourceManager."""

    _server_name = "driver"

    def __init__(self, address=None, security=None, keytab=None, principal=None, log=None, log_level=None,
                 java_options=None):
        if keytab is not None:
            keytab = _os.path.abspath(keytab)
            if not _os.path.exists(keytab):
                raise FileNotFoundError("keytab doesn't exist at %r" % keytab)
            if principal is None:
                raise ValueError("Principal must be specified for keytab login")
        elif principal is not None:
            raise ValueError("Keytab must be specified for keytab login")
        self.address = address or _resource_manager_address()
        self.security = security
        self.principal = principal
        self._user = principal.split("@")[0].split("/")[0] if principal else _getpass.getuser()
        self._closed = False
        if log:
            with open(log, "a") as f:
                f.write("fake skein driver for %s\n" % self.address)
        self._call("ping", {})

    def _call(self, method, params, timeout=60.0):
        return _call(self.address, method, params, server_name=self._server_name, error=DriverError,
                     user=self._user, timeout=timeout)

    def __repr__(self):
        return "Client<%s>" % self.address

    @classmethod
    def from_global_driver(cls):
        raise DriverNotRunningError("No driver currently running")

    def close(self):
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()

    def submit(self, spec):
        spec = ApplicationSpec._from_any(spec)
        return self._call("submit", {"spec": spec.to_dict()})

    def submit_and_connect(self, spec):
        spec = ApplicationSpec._from_any(spec)
        app_id = self.submit(spec)
        try:
            return self.connect(app_id, security=spec.master.security)
        except BaseException:
            self.kill_application(app_id)
            raise

    def connect(self, app_id, wait=True, security=None):
        report = self.application_report(app_id)
        if wait:
            import time

            while str(report.state) in ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED"):
                time.sleep(0.1)
                report = self.application_report(app_id)
        if str(report.state) != "RUNNING":
            raise ApplicationNotRunningError(
                "%s is not running. Application state: %s" % (app_id, report.state))
        return ApplicationClient("%s:%d" % (report.host, report.port), app_id, security=security)

    def application_report(self, app_id):
        return _report(self._call("getStatus", {"id": app_id}))

    def get_applications(self, states=None, name=None, user=None, queue=None, started_begin=None,
                         started_end=None, finished_begin=None, finished_end=None):
        states = [str(s).upper() for s in states] if states else None
        return [_report(r) for r in self._call("getApplications", {"states": states, "name": name, "queue": queue})]

    def get_queue(self, name):
        return _queue(self._call("getQueue", {"name": name}))

    def get_all_queues(self):
        return [_queue(q) for q in self._call("getAllQueues", {})]

    def kill_application(self, app_id, user=""):
        self._call("kill", {"id": app_id, "user": user})


class _KeyValueStore(_MutableMapping):
    """skein's key-value store: string keys, bytes values, ``wait`` for a key."""

    def __init__(self, client):
        self._client = client

    def __getitem__(self, key):
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value):
        if not isinstance(value, bytes):
            raise TypeError("value must be bytes")
        self._client._call("kvPut", {"key": key, "value": value.decode("latin-1")})

    def __delitem__(self, key):
        if not self._client._call("kvDelete", {"key": key}):
            raise KeyError(key)

    def __iter__(self):
        return iter(self._client._call("kvKeys", {}))

    def __len__(self):
        return len(self._client._call("kvKeys", {}))

    def __contains__(self, key):
        return self.get(key) is not None

    def get(self, key, default=None, return_owner=False):
        value = self._client._call("kvGet", {"key": key})
        return default if value is None else value.encode("latin-1")

    def wait(self, key, return_owner=False):
        while True:
            value = self._client._call("kvGet", {"key": key, "wait_s": 20}, timeout=60)
            if value is not None:
                return value.encode("latin-1")


class _ProxiedPage(object):
    def __init__(self, route, target, link_name, ui_address):
        self.route = route
        self.target = target
        self.link_name = link_name
        self._ui_address = ui_address

    @property
    def address(self):
        return "%s/pages/%s/" % (self._ui_address, self.route)


class _WebUI(object):
    def __init__(self, client):
        self._client = client

    @property
    def address(self):
        return self._client._call("getPages", {})["ui_address"]

    def add_page(self, route, target, link_name=None):
        answer = self._client._call("addPage", {"route": route, "target": target, "link_name": link_name})
        return _ProxiedPage(route, target, link_name, answer["ui_address"])

    def remove_page(self, route):
        self._client._call("removePage", {"route": route})

    def get_pages(self):
        answer = self._client._call("getPages", {})
        return {route: _ProxiedPage(route, p["target"], p["link_name"], answer["ui_address"])
                for route, p in answer["pages"].items()}


class ApplicationClient(object):
    """skein.ApplicationClient against the fake application master."""

    _server_name = "application"

    def __init__(self, address, app_id, security=None):
        self.address = address
        self.id = app_id
        self.security = security
        self.kv = _KeyValueStore(self)
        self.ui = _WebUI(self)

    def _call(self, method, params, timeout=60.0):
        return _call(self.address, method, params, server_name=self._server_name, error=ApplicationError,
                     timeout=timeout)

    def __repr__(self):
        return "ApplicationClient<%s, %s>" % (self.id, self.address)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()

    @classmethod
    def from_current(cls):
        if properties.application_id is None:
            raise ValueError("Not running inside a container")
        if properties.container_dir is None:
            raise FileNotFoundError("Failed to resolve .skein.{crt,pem} in 'LOCAL_DIRS'")
        return cls(properties.appmaster_address, properties.application_id)

    def shutdown(self, status="SUCCEEDED", diagnostics=None):
        self._call("shutdown", {"final_status": str(FinalStatus(status)), "diagnostics": diagnostics})

    def get_specification(self):
        return ApplicationSpec.from_dict(self._call("getApplicationSpec", {}))

    def scale(self, service, count=None, delta=None):
        if count is not None and delta is not None:
            raise ValueError("cannot specify both `count` and `delta`")
        if count is None and delta is None:
            raise ValueError("must specify either `count` or `delta`")
        if count and count < 0:
            raise ValueError("count must be >= 0")
        answer = self._call("scale", {"service_name": service, "count": count, "delta": delta})
        return [_container(c) for c in answer]

    def add_container(self, service, env=None):
        return _container(self._call("addContainer", {"service_name": service, "env": env or {}}))

    def set_progress(self, progress):
        if not (0 <= progress <= 1.0):
            raise ValueError("progress must be between 0 and 1, got %.3f" % progress)
        self._call("setProgress", {"progress": progress})

    def get_containers(self, services=None, states=None):
        from _real_skein.model import ContainerState

        states = [str(ContainerState(s)) for s in states] if states is not None else None
        answer = self._call("getContainers", {"services": sorted(services) if services else None, "states": states})
        return sorted((_container(c) for c in answer), key=lambda c: (c.service_name, c.instance))

    def kill_container(self, id):
        from _real_skein.model import container_instance_from_string

        container_instance_from_string(id)  # skein's own check of the id's form
        self._call("killContainer", {"id": id})
