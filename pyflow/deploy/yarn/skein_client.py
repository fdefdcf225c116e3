"""The one module that talks to skein, and through skein to YARN.

Everything else in pyflow uses the small surface below, so that replacing skein (a fork, or
YARN's REST API) touches this file only. skein is pinned (setup.cfg: ``skein==0.8.2``) and
imported lazily, so that importing pyflow never starts anything YARN-related.

Two handles, holding skein's two clients:

* :class:`YarnClient`, the submitting side (skein's ``Client``): submit an application spec, wait
  until it runs, read its report, kill it, list queues. skein's ``Client`` starts skein's Java
  driver, which needs ``yarn`` on PATH (for ``yarn classpath``), Java and ``HADOOP_CONF_DIR``;
  Kerberos principal and keytab are passed through to it. Without them, a global driver
  (``skein driver start``) is used when one runs, which saves the JVM's start on every command.
* :class:`YarnApplication`, one running application (skein's ``ApplicationClient``), from the
  client (:meth:`YarnClient.connect`) or from inside one of its containers
  (:meth:`YarnApplication.current`): the key-value store, the containers of a service, a link in
  the application's web UI, and shutdown with a final status.

Values in and out are pyflow's own frozen dataclasses and plain types. skein's exceptions are
translated into :class:`~pyflow.errors.DeploymentError` in one place (:func:`_translated`),
with the operation that failed and the fix.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from pyflow.errors import DeploymentError

logger = logging.getLogger(__name__)

#: container states that are over (skein's ContainerState)
FINISHED_STATES = ("SUCCEEDED", "FAILED", "KILLED")
ALL_CONTAINER_STATES = ("WAITING", "REQUESTED", "RUNNING", *FINISHED_STATES)
#: application states after which nothing runs any more (YARN's YarnApplicationState)
TERMINAL_APPLICATION_STATES = ("FINISHED", "FAILED", "KILLED")


def _skein():
    import skein

    return skein


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """One container of a service: ``id`` is skein's ``<service>_<instance>``."""

    id: str
    service: str
    state: str
    yarn_container_id: str
    exit_message: str

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True, slots=True)
class ApplicationReport:
    """What YARN says about an application (skein's ApplicationReport, trimmed)."""

    id: str
    name: str
    queue: str
    state: str
    final_status: str
    diagnostics: str
    tracking_url: str
    host: str
    port: int

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_APPLICATION_STATES


def _container(c: Any) -> ContainerInfo:
    return ContainerInfo(id=c.id, service=c.service_name, state=str(c.state),
                         yarn_container_id=c.yarn_container_id or "", exit_message=c.exit_message or "")


def _report(r: Any) -> ApplicationReport:
    return ApplicationReport(id=r.id, name=r.name, queue=r.queue, state=str(r.state),
                             final_status=str(r.final_status), diagnostics=r.diagnostics or "",
                             tracking_url=r.tracking_url or "", host=r.host or "", port=int(r.port or 0))


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn skein's (and the driver's) exceptions into one DeploymentError naming ``what``."""
    skein = _skein()
    try:
        yield
    except DeploymentError:
        raise
    except skein.exceptions.ApplicationNotRunningError as e:
        raise DeploymentError(f"Cannot {what}: {e}") from None
    except skein.exceptions.DriverNotRunningError as e:
        raise DeploymentError(f"Cannot {what}: skein's driver is not running ({e}).") from None
    except (skein.exceptions.ConnectionError, skein.exceptions.TimeoutError) as e:
        raise DeploymentError(
            f"Cannot {what}: {e}. The YARN ResourceManager or the application's master cannot be "
            f"reached; check that YARN runs and that HADOOP_CONF_DIR points at its configuration."
        ) from None
    except skein.exceptions.SkeinError as e:
        # DriverError / ApplicationError carry YARN's own message after a first line of skein's
        raise DeploymentError(f"Cannot {what}: {_yarn_message(str(e))}") from None
    except FileNotFoundError as e:
        # skein's Client runs `yarn classpath --glob` and `java`; either missing ends here
        missing = e.filename or str(e)
        raise DeploymentError(
            f"Cannot {what}: '{missing}' was not found. skein (pyflow's YARN client) needs the Hadoop "
            f"`yarn` command on PATH, Java (JAVA_HOME), and HADOOP_CONF_DIR pointing at the cluster's "
            f"configuration."
        ) from None
    except (ValueError, KeyError, TypeError) as e:
        text = e.args[0] if e.args else str(e)
        raise DeploymentError(f"Cannot {what}: {text}") from None


def _yarn_message(text: str) -> str:
    """skein prefixes YARN's message with 'Failed to ..., exception:\\n'; keep YARN's part."""
    head, sep, rest = text.partition("exception:\n")
    return rest.strip() if sep and rest.strip() else text.strip()


class YarnClient:
    """The submitting side: one skein ``Client`` (which starts skein's Java driver).

    >>> with YarnClient() as yarn:                                   # doctest: +SKIP
    ...     app_id = yarn.submit(spec_dict)
    ...     app = yarn.connect(app_id, timeout_s=120)
    """

    def __init__(self, *, principal: str = "", keytab: str = "", driver_log: str | None = None):
        if bool(principal) != bool(keytab):
            raise DeploymentError(
                "Kerberos login needs both security.kerberos.login.principal and "
                "security.kerberos.login.keytab (or neither, to use the ticket cache of kinit).")
        skein = _skein()
        if not principal:
            # a driver started with `skein driver start` serves every command without a JVM start
            try:
                self._client = skein.Client.from_global_driver()
                return
            except (skein.exceptions.DriverNotRunningError, skein.exceptions.ConnectionError):
                pass
        kwargs: dict[str, Any] = {}
        if principal:
            kwargs.update(principal=principal, keytab=keytab)
        if driver_log:
            kwargs["log"] = driver_log
        with _translated("start the YARN client (skein's driver)"):
            self._client = skein.Client(**kwargs)

    def validate(self, spec: Mapping[str, Any]) -> None:
        """Check ``spec`` the way skein does before submitting; raises DeploymentError."""
        skein = _skein()
        with _translated("build the YARN application spec"):
            skein.ApplicationSpec.from_dict(dict(spec))

    def submit(self, spec: Mapping[str, Any]) -> str:
        """Submit an application; returns its id. YARN's refusal (too much memory, ...) raises."""
        skein = _skein()
        with _translated("submit the application to YARN"):
            return self._client.submit(skein.ApplicationSpec.from_dict(dict(spec)))

    def connect(self, app_id: str, *, timeout_s: float = 300.0) -> "YarnApplication":
        """Wait until ``app_id`` runs, then return a handle on it.

        An application that ends instead (rejected by the scheduler, master failed) raises
        DeploymentError with YARN's diagnostics.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            report = self.report(app_id)
            if report.state == "RUNNING" and report.port:
                break
            if report.terminal:
                raise DeploymentError(
                    f"YARN application {app_id} ended ({report.state}, final status {report.final_status}) "
                    f"before pyflow could reach it: {report.diagnostics.strip() or 'no diagnostics'}")
            if time.monotonic() >= deadline:
                raise DeploymentError(
                    f"YARN application {app_id} did not start within {timeout_s:.0f} s (it is "
                    f"{report.state}); the queue '{report.queue}' may have no free resources. It was "
                    f"killed.")
            time.sleep(0.2)
        with _translated(f"connect to YARN application {app_id}"):
            return YarnApplication(self._client.connect(app_id, wait=False))

    def report(self, app_id: str) -> ApplicationReport:
        with _translated(f"get the report of YARN application {app_id}"):
            return _report(self._client.application_report(app_id))

    def kill(self, app_id: str) -> None:
        with _translated(f"kill YARN application {app_id}"):
            self._client.kill_application(app_id)

    def running_applications(self, name: str | None = None) -> list[ApplicationReport]:
        with _translated("list the YARN applications"):
            return [_report(r) for r in self._client.get_applications(name=name)]

    def queues(self) -> list[str]:
        """Names of the scheduler's queues (empty if YARN does not say)."""
        try:
            with _translated("list the YARN queues"):
                return sorted(q.name for q in self._client.get_all_queues())
        except DeploymentError:
            return []

    def close(self) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()

    def __enter__(self) -> "YarnClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class YarnApplication:
    """One running application (skein's ``ApplicationClient``).

    Keys and values of the key-value store are strings here (skein stores bytes).
    """

    def __init__(self, client: Any):
        self._client = client
        self.id: str = client.id

    @classmethod
    def current(cls) -> "YarnApplication":
        """The application this process runs in (inside a container that skein started)."""
        skein = _skein()
        with _translated("reach the YARN application this container belongs to"):
            return cls(skein.ApplicationClient.from_current())

    @staticmethod
    def current_container_id() -> str | None:
        """skein's id (``<service>_<instance>``) of the container this process runs in."""
        return _skein().properties.container_id

    # ---- key-value store ----------------------------------------------------------------------

    def kv_put(self, key: str, value: str) -> None:
        with _translated(f"write '{key}' to the key-value store of {self.id}"):
            self._client.kv[key] = value.encode()

    def kv_get(self, key: str) -> str | None:
        with _translated(f"read '{key}' from the key-value store of {self.id}"):
            value = self._client.kv.get(key)
        return None if value is None else value.decode()

    def kv_wait(self, key: str, timeout_s: float, poll_s: float = 0.1) -> str:
        """The value of ``key``, waiting until some container sets it."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.kv_get(key)
            if value is not None:
                return value
            if time.monotonic() >= deadline:
                raise DeploymentError(
                    f"'{key}' did not appear in the key-value store of {self.id} within "
                    f"{timeout_s:.0f} s; the ApplicationMaster's log says why.")
            time.sleep(poll_s)

    # ---- containers ---------------------------------------------------------------------------

    def add_container(self, service: str, env: Mapping[str, str] | None = None) -> ContainerInfo:
        with _translated(f"request a '{service}' container from {self.id}"):
            return _container(self._client.add_container(service, env=dict(env or {})))

    def kill_container(self, container_id: str) -> None:
        with _translated(f"release container {container_id} of {self.id}"):
            self._client.kill_container(container_id)

    def containers(self, service: str, states: Sequence[str] = ALL_CONTAINER_STATES) -> list[ContainerInfo]:
        with _translated(f"list the '{service}' containers of {self.id}"):
            return [_container(c) for c in self._client.get_containers(services=[service], states=list(states))]

    # ---- the application ----------------------------------------------------------------------

    def add_web_page(self, route: str, target: str, link_name: str) -> str:
        """Link ``target`` from the application's web UI (its YARN tracking URL); returns the
        proxied address, or ``target`` when the UI cannot proxy it."""
        with _translated(f"add a page to the web UI of {self.id}"):
            page = self._client.ui.add_page(route, target, link_name=link_name)
        try:
            return page.address
        except Exception:  # noqa: BLE001 - a UI without proxy still links the target
            return target

    def shutdown(self, final_status: str, diagnostics: str) -> None:
        """Unregister from YARN with ``final_status`` (SUCCEEDED, FAILED, KILLED); YARN then stops
        every container of the application, this one included."""
        with _translated(f"shut down YARN application {self.id}"):
            self._client.shutdown(final_status, diagnostics)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
