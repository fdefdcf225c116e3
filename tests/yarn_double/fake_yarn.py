"""A fake YARN cluster for tests: ResourceManager, one NodeManager, and skein's driver and
ApplicationMaster, in one daemon process on 127.0.0.1.

    python fake_yarn.py --conf-dir HADOOP_CONF_DIR --root DIR

It reads its settings from the Hadoop configuration files in ``--conf-dir``, as YARN does:

- ``yarn-site.xml``: ``yarn.scheduler.maximum-allocation-mb`` / ``-vcores`` (larger requests are
  refused at submission, with YARN's InvalidResourceRequestException text),
  ``yarn.scheduler.minimum-allocation-mb`` (requests are rounded up to a multiple),
  ``yarn.nodemanager.resource.memory-mb`` / ``.cpu-vcores`` (the one node's capacity: containers
  that do not fit wait in REQUESTED);
- ``capacity-scheduler.xml``: ``yarn.scheduler.capacity.root.queues`` (an application submitted
  to another queue is accepted, then FAILED with YARN's "unknown queue" diagnostics);
- ``core-site.xml``: ``fs.defaultFS``, a ``file://`` folder standing in for HDFS. A shipped file
  there is used in place (as skein does for files on the default file system); any other local
  file is copied into ``<fs>/user/<user>/.skein/<application id>/`` at submission, and that
  folder is deleted when the application ends.

It prints ``PORT <port>`` on stdout once it listens. The ResourceManager/driver endpoint and each
application's master endpoint are HTTP servers speaking JSON (``POST /<method>``), used by the
fake ``skein`` package in ``site/``. Each application's master script and each container run as
real processes, in their own session, with the environment YARN and skein give them
(CONTAINER_ID, LOCAL_DIRS, LOG_DIRS, NM_HOST, SKEIN_APPLICATION_ID, SKEIN_APPMASTER_ADDRESS,
SKEIN_CONTAINER_ID, SKEIN_RESOURCE_MEMORY/VCORES, PATH, ...; PYTHONPATH holds only ``site/`` so
that ``import skein`` finds the fake) in a working directory holding the localized files
(archives unpacked) and skein's ``.skein.crt``/``.skein.pem``. Output goes to the container's
log folder (``<service>.log``, ``application.driver.log`` for the master). A container that exits
non-zero is FAILED with YARN's exit diagnostics and the end of its log; one killed through skein
is KILLED (SIGTERM, then SIGKILL after 250 ms, YARN's default).

Tests also get ``/_test/...`` calls: all containers with their pids, the files uploaded at
submission, and fault injection (the next N containers fail at launch, like a broken node).
SIGTERM stops every process of every application, then the daemon.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

SITE = str(Path(__file__).resolve().parent / "site")
ENV_WHITELIST = ("PATH", "LANG", "TZ", "JAVA_HOME", "HADOOP_HOME", "HADOOP_CONF_DIR", "HOME")


class CallError(Exception):
    """Answered as ``{"error": {"type": kind, "message": ...}}``; the fake skein raises skein's
    exception of that kind."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


# ---- configuration --------------------------------------------------------------------------


def read_site(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    return {(p.findtext("name") or "").strip(): (p.findtext("value") or "").strip()
            for p in ET.parse(path).getroot().iter("property")}


class Settings:
    def __init__(self, conf_dir: Path):
        site = {**read_site(conf_dir / "core-site.xml"), **read_site(conf_dir / "yarn-site.xml")}
        scheduler = read_site(conf_dir / "capacity-scheduler.xml")
        self.max_mb = int(site.get("yarn.scheduler.maximum-allocation-mb", 8192))
        self.max_vcores = int(site.get("yarn.scheduler.maximum-allocation-vcores", 4))
        self.min_mb = int(site.get("yarn.scheduler.minimum-allocation-mb", 1024))
        self.node_mb = int(site.get("yarn.nodemanager.resource.memory-mb", 8192))
        self.node_vcores = int(site.get("yarn.nodemanager.resource.cpu-vcores", 8))
        self.queues = [q.strip() for q in scheduler.get("yarn.scheduler.capacity.root.queues", "default").split(",")]
        fs = urlparse(site.get("fs.defaultFS", "file:///"))
        if fs.scheme != "file":
            raise SystemExit(f"fake YARN: fs.defaultFS must be a file:// folder, not {fs.scheme}://")
        self.dfs = Path(fs.path or "/")

    def round(self, memory: int) -> int:
        step = max(1, self.min_mb)
        return max(step, -(-memory // step) * step)


# ---- containers -----------------------------------------------------------------------------


class Container:
    def __init__(self, app: "Application", service: str, instance: int, memory: int, vcores: int,
                 env: dict[str, str]):
        self.app = app
        self.service = service
        self.instance = instance
        self.memory = memory
        self.vcores = vcores
        self.env = env
        self.state = "REQUESTED"
        self.yarn_container_id = ""
        self.start_time: float | None = None
        self.finish_time: float | None = None
        self.exit_message = ""
        self.proc: subprocess.Popen | None = None
        self.log_file: Path | None = None
        self.killed_by_master = False

    @property
    def id(self) -> str:
        return f"{self.service}_{self.instance}"

    def to_json(self) -> dict:
        return {"service_name": self.service, "instance": self.instance, "state": self.state,
                "yarn_container_id": self.yarn_container_id, "yarn_node_http_address": "127.0.0.1:8042",
                "start_time": self.start_time, "finish_time": self.finish_time,
                "exit_message": self.exit_message}


class Application:
    def __init__(self, yarn: "FakeYarn", app_id: str, spec: dict, user: str):
        self.yarn = yarn
        self.id = app_id
        self.spec = spec
        self.user = user
        self.name = spec.get("name", "skein")
        self.queue = spec.get("queue", "default")
        self.tags = sorted(spec.get("tags") or [])
        self.state = "ACCEPTED"
        self.final_status = "UNDEFINED"
        self.diagnostics = ""
        self.start_time = time.time()
        self.finish_time: float | None = None
        self.server: JsonServer | None = None
        self.master: Container | None = None
        self.containers: dict[str, list[Container]] = {name: [] for name in spec.get("services", {})}
        self.container_seq = 1
        self.kv: dict[str, str] = {}
        self.kv_changed = threading.Condition(yarn.lock)
        self.pages: dict[str, dict] = {}
        self.progress = 0.1
        self.localized: dict[str, Path] = {}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}" if self.server else ""

    @property
    def tracking_url(self) -> str:
        return f"http://{self.address}/" if self.server else ""

    def report(self) -> dict:
        return {"id": self.id, "name": self.name, "user": self.user, "queue": self.queue, "tags": self.tags,
                "host": "127.0.0.1" if self.server and self.state == "RUNNING" else "",
                "port": self.server.port if self.server and self.state == "RUNNING" else 0,
                "tracking_url": self.tracking_url, "state": self.state, "final_status": self.final_status,
                "progress": self.progress, "diagnostics": self.diagnostics, "start_time": self.start_time,
                "finish_time": self.finish_time}

    @property
    def appcache(self) -> Path:
        return self.yarn.root / "nm-local-dir" / "usercache" / self.user / "appcache" / self.id

    @property
    def staging(self) -> Path:
        return self.yarn.settings.dfs / "user" / self.user / ".skein" / self.id


# ---- the daemon -----------------------------------------------------------------------------


class FakeYarn:
    def __init__(self, conf_dir: Path, root: Path):
        self.settings = Settings(conf_dir)
        self.conf_dir = conf_dir
        self.root = root
        self.lock = threading.RLock()
        self.cluster_timestamp = int(time.time() * 1000)
        self.app_seq = 0
        self.apps: dict[str, Application] = {}
        self.uploads: list[dict] = []
        self.faults = {"fail_launches": 0, "exit_code": 1, "message": "injected container failure"}
        self.used_mb = 0
        self.used_vcores = 0
        self.stopping = False

    # ---- driver (skein.Client) ---------------------------------------------------------------

    def driver_call(self, method: str, params: dict, user: str) -> object:
        if method == "ping":
            return None
        if method == "submit":
            return self.submit(params["spec"], user)
        if method in ("getStatus", "waitForStart"):
            return self.app(params["id"]).report()
        if method == "kill":
            self.kill(params["id"])
            return None
        if method == "getApplications":
            states = params.get("states") or ["SUBMITTED", "ACCEPTED", "RUNNING"]
            with self.lock:
                return [a.report() for a in self.apps.values() if a.state in states
                        and (not params.get("name") or a.name == params["name"])
                        and (not params.get("queue") or a.queue == params["queue"])]
        if method == "getQueue":
            if params["name"] not in self.settings.queues:
                raise CallError("ValueError", f"Queue '{params['name']}' does not exist")
            return self.queue(params["name"])
        if method == "getAllQueues":
            return [self.queue(q) for q in self.settings.queues]
        raise CallError("DriverError", f"unknown driver call {method}")

    def queue(self, name: str) -> dict:
        return {"name": name, "state": "RUNNING", "capacity": 100.0 / len(self.settings.queues),
                "max_capacity": 100.0, "percent_used": 0.0, "node_labels": [], "default_node_label": ""}

    def app(self, app_id: str) -> Application:
        with self.lock:
            app = self.apps.get(app_id)
        if app is None:
            raise CallError("ValueError", f"Unknown ApplicationId '{app_id}'")
        return app

    def submit(self, spec: dict, user: str) -> str:
        import skein  # the real one: the daemon runs without the fake on its path

        skein.ApplicationSpec.from_dict(spec)  # skein's validation, as its driver does
        with self.lock:
            self.app_seq += 1
            app_id = f"application_{self.cluster_timestamp}_{self.app_seq:04d}"
        self.check_resources("the ApplicationMaster", spec["master"]["resources"])
        for service in spec.get("services", {}).values():
            self.check_resources("a service", service["resources"])
        app = Application(self, app_id, spec, user)
        try:
            self.upload_files(app, spec["master"].get("files", {}))
            for service in spec.get("services", {}).values():
                self.upload_files(app, service.get("files", {}))
        except CallError:
            shutil.rmtree(app.staging, ignore_errors=True)
            raise
        with self.lock:
            self.apps[app_id] = app
        if app.queue not in self.settings.queues:
            self.finish(app, "FAILED", "FAILED",
                        f"Application {app_id} submitted by user {user} to unknown queue: {app.queue}")
        else:
            threading.Thread(target=self.start_master, args=(app,), daemon=True).start()
        return app_id

    def check_resources(self, what: str, resources: dict) -> None:
        memory, vcores = int(resources["memory"]), int(resources["vcores"])
        s = self.settings
        if memory > s.max_mb or vcores > s.max_vcores:
            kind = "memory-mb" if memory > s.max_mb else "vcores"
            raise CallError("DriverError", (
                "Failed to submit application, exception:\n"
                f"Invalid resource request, requested resource type=[{kind}] < 0 or greater than maximum "
                f"allowed allocation. Requested resource=<memory:{memory}, vCores:{vcores}>, maximum allowed "
                f"allocation=<memory:{s.max_mb}, vCores:{s.max_vcores}>, please note that maximum allowed "
                f"allocation is calculated by scheduler based on maximum resource of registered "
                f"NodeManagers, which might be less than configured maximum "
                f"allocation=<memory:{s.max_mb}, vCores:{s.max_vcores}>"))

    def upload_files(self, app: Application, files: dict) -> None:
        """skein's driver: files on the default file system stay; other local files are copied."""
        for name, f in files.items():
            source = f["source"] if isinstance(f, dict) else f
            url = urlparse(source)
            if url.scheme not in ("", "file"):
                raise CallError("DriverError", "Failed to submit application, exception:\n"
                                f"No FileSystem for scheme \"{url.scheme}\"")
            path = Path(url.path)
            if not path.exists():
                raise CallError("DriverError", "Failed to submit application, exception:\n"
                                f"File file:{path} does not exist")
            if self.settings.dfs in path.parents:
                continue
            digest = hashlib.md5(str(path).encode()).hexdigest()
            target = app.staging / digest / path.name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                with self.lock:
                    self.uploads.append({"application": app.id, "source": str(path), "name": name})
            if isinstance(f, dict):
                f["source"] = "file://" + str(target)
            else:
                files[name] = "file://" + str(target)

    def kill(self, app_id: str) -> None:
        app = self.app(app_id)
        self.finish(app, "KILLED", "KILLED", "Application killed by user.")

    # ---- the application master --------------------------------------------------------------

    def start_master(self, app: Application) -> None:
        app.server = JsonServer(lambda method, params, user: self.master_call(app, method, params),
                                pages=app.pages)
        master_spec = app.spec["master"]
        with self.lock:
            if app.state != "ACCEPTED":
                app.server.close()
                return
            app.state = "RUNNING"
        if master_spec.get("script"):
            resources = master_spec["resources"]
            master = Container(app, "master", 0, self.settings.round(int(resources["memory"])),
                               int(resources["vcores"]), {})
            master.state, master.start_time = "RUNNING", time.time()
            app.master = master
            self.launch(app, master, master_spec, log_name="application.driver.log")

    def master_call(self, app: Application, method: str, params: dict) -> object:
        if method == "shutdown":
            self.finish(app, "FINISHED", params.get("final_status") or "SUCCEEDED",
                        params.get("diagnostics") or "Shutdown by user", delay_s=0.2)
            return None
        if method == "getApplicationSpec":
            return app.spec
        if method == "getContainers":
            services = params.get("services") or list(app.containers)
            states = params.get("states") or ["WAITING", "REQUESTED", "RUNNING"]
            with self.lock:
                for service in services:
                    self.check_service(app, service)
                return [c.to_json() for s in services for c in app.containers[s] if c.state in states]
        if method == "addContainer":
            return self.add_container(app, params["service_name"], params.get("env") or {}).to_json()
        if method == "scale":
            return [c.to_json() for c in self.scale(app, params["service_name"], params.get("count"),
                                                      params.get("delta"))]
        if method == "killContainer":
            self.kill_container(app, params["id"])
            return None
        if method == "setProgress":
            app.progress = float(params["progress"])
            return None
        if method == "kvGet":
            with self.lock:
                value = app.kv.get(params["key"])
                deadline = time.monotonic() + float(params.get("wait_s") or 0)
                while value is None and time.monotonic() < deadline and app.state == "RUNNING":
                    app.kv_changed.wait(max(0.0, deadline - time.monotonic()))
                    value = app.kv.get(params["key"])
            return value
        if method == "kvPut":
            with self.lock:
                app.kv[params["key"]] = params["value"]
                app.kv_changed.notify_all()
            return None
        if method == "kvDelete":
            with self.lock:
                return app.kv.pop(params["key"], None) is not None
        if method == "kvKeys":
            with self.lock:
                return sorted(app.kv)
        if method == "addPage":
            app.pages[params["route"]] = {"target": params["target"], "link_name": params.get("link_name")}
            return {"ui_address": app.tracking_url.rstrip("/")}
        if method == "removePage":
            if app.pages.pop(params["route"], None) is None:
                raise CallError("ValueError", f"Page with route '{params['route']}' does not exist")
            return None
        if method == "getPages":
            return {"ui_address": app.tracking_url.rstrip("/"), "pages": app.pages}
        raise CallError("ApplicationError", f"unknown master call {method}")

    def check_service(self, app: Application, service: str) -> None:
        if service not in app.containers:
            raise CallError("ValueError", f"Unknown Service '{service}'")

    def add_container(self, app: Application, service: str, env: dict) -> Container:
        with self.lock:
            self.check_service(app, service)
            spec = app.spec["services"][service]
            resources = spec["resources"]
            container = Container(app, service, len(app.containers[service]),
                                  self.settings.round(int(resources["memory"])), int(resources["vcores"]), env)
            app.containers[service].append(container)
        self.allocate()
        return container

    def scale(self, app: Application, service: str, count: int | None, delta: int | None) -> list[Container]:
        with self.lock:
            self.check_service(app, service)
            active = [c for c in app.containers[service] if c.state in ("REQUESTED", "RUNNING")]
            target = count if count is not None else max(0, len(active) + int(delta or 0))
        changed = []
        for _ in range(target - len(active)):
            changed.append(self.add_container(app, service, {}))
        for container in active[:max(0, len(active) - target)]:
            self.kill_container(app, container.id)
            changed.append(container)
        return changed

    def kill_container(self, app: Application, container_id: str) -> None:
        service, _, instance = container_id.rpartition("_")
        if not service or not instance.isdigit():
            raise CallError("ValueError", f"Invalid container id {container_id!r}")
        with self.lock:
            self.check_service(app, service)
            containers = app.containers[service]
            if int(instance) >= len(containers):
                raise CallError("ValueError", f"Service '{service}' has no container instance {instance}")
            container = containers[int(instance)]
            if container.state not in ("REQUESTED", "RUNNING"):
                return
            was_running = container.state == "RUNNING"
            container.state = "KILLED"
            container.killed_by_master = True
            container.finish_time = time.time()
            container.exit_message = ("Container killed by the ApplicationMaster.\nContainer killed on "
                                      "request. Exit code is 143\nContainer exited with a non-zero exit code 143.")
            if was_running:
                self.release(container)
        if was_running:
            stop_process_group(container.proc)
        self.allocate()

    # ---- the NodeManager -----------------------------------------------------------------------

    def allocate(self) -> None:
        """Start REQUESTED containers, oldest first, while the node has room."""
        to_launch = []
        with self.lock:
            for app in self.apps.values():
                if app.state != "RUNNING":
                    continue
                for service, containers in app.containers.items():
                    for c in containers:
                        if c.state != "REQUESTED":
                            continue
                        if self.used_mb + c.memory > self.settings.node_mb or \
                                self.used_vcores + c.vcores > self.settings.node_vcores:
                            continue
                        self.used_mb += c.memory
                        self.used_vcores += c.vcores
                        c.state = "RUNNING"
                        c.start_time = time.time()
                        to_launch.append(c)
        for c in to_launch:
            spec = dict(c.app.spec["services"][c.service])
            spec["env"] = {**spec.get("env", {}), **c.env}
            try:
                self.launch(c.app, c, spec, log_name=f"{c.service}.log")
            except Exception as e:  # noqa: BLE001 - a launch failure is the container's failure
                self.container_ended(c, None, f"Container launch failed: {e}")

    def release(self, c: Container) -> None:
        if c.service == "master":
            return
        self.used_mb -= c.memory
        self.used_vcores -= c.vcores

    def launch(self, app: Application, c: Container, spec: dict, log_name: str) -> None:
        with self.lock:
            c.yarn_container_id = f"container_{self.cluster_timestamp}_{app.id.rsplit('_', 1)[1]}_01_{app.container_seq:06d}"
            app.container_seq += 1
        workdir = app.appcache / c.yarn_container_id
        logdir = self.root / "logs" / app.id / c.yarn_container_id
        workdir.mkdir(parents=True, exist_ok=True)
        logdir.mkdir(parents=True, exist_ok=True)
        for name, f in (spec.get("files") or {}).items():
            source = f["source"] if isinstance(f, dict) else f
            kind = (f.get("type") if isinstance(f, dict) else None) or "infer"
            (workdir / name).symlink_to(self.localize(app, source, kind))
        (workdir / ".skein.crt").write_text("fake skein certificate\n")
        (workdir / ".skein.pem").write_text("fake skein key\n")
        script = spec["script"]
        with self.lock:
            if self.faults["fail_launches"] > 0 and c.service != "master":
                self.faults["fail_launches"] -= 1
                script = f"echo {json.dumps(self.faults['message'])} >&2; exit {int(self.faults['exit_code'])}\n"
        (workdir / ".skein.sh").write_text(script)
        env = {k: os.environ[k] for k in ENV_WHITELIST if k in os.environ}
        env.update({
            "PYTHONPATH": SITE,
            "CONTAINER_ID": c.yarn_container_id, "LOCAL_DIRS": str(app.appcache), "LOG_DIRS": str(logdir),
            "PWD": str(workdir), "USER": app.user, "LOGNAME": app.user, "HADOOP_USER_NAME": app.user,
            "NM_HOST": "127.0.0.1", "NM_PORT": "45454", "NM_HTTP_PORT": "8042",
            "HADOOP_CONF_DIR": str(self.conf_dir),
            "SKEIN_APPLICATION_ID": app.id, "SKEIN_APPMASTER_ADDRESS": app.address,
            "SKEIN_RESOURCE_MEMORY": str(c.memory), "SKEIN_RESOURCE_VCORES": str(c.vcores),
        })
        if c.service != "master":
            env["SKEIN_CONTAINER_ID"] = c.id
        env.update(spec.get("env") or {})
        c.log_file = logdir / log_name
        with c.log_file.open("ab") as out:
            c.proc = subprocess.Popen(["bash", ".skein.sh"], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=self.watch, args=(c,), daemon=True).start()

    def localize(self, app: Application, source: str, kind: str) -> Path:
        """Each resource once per application (YARN's APPLICATION visibility); archives unpacked."""
        with self.lock:
            if source in app.localized:
                return app.localized[source]
            path = Path(urlparse(source).path)
            target = app.appcache / "filecache" / str(len(app.localized) + 10) / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            archive = kind == "ARCHIVE" or (kind == "infer" and path.name.endswith((".zip", ".tar.gz", ".tgz")))
            if archive:
                fmt = "zip" if path.name.endswith(".zip") else "gztar" if path.name.endswith(("gz", "tgz")) else "tar"
                shutil.unpack_archive(str(path), str(target), fmt)
            else:
                shutil.copy2(path, target)
            app.localized[source] = target
            return target

    def watch(self, c: Container) -> None:
        code = c.proc.wait()
        self.container_ended(c, code, None)

    def container_ended(self, c: Container, code: int | None, launch_error: str | None) -> None:
        app = c.app
        with self.lock:
            if c.state != "RUNNING":
                return  # killed through skein: already KILLED
            c.finish_time = time.time()
            if launch_error is None and code == 0:
                c.state = "SUCCEEDED"
                c.exit_message = "Container completed successfully."
            else:
                c.state = "FAILED"
                exit_code = 137 if code == -signal.SIGKILL else 143 if code == -signal.SIGTERM else code
                c.exit_message = launch_error or (
                    f"Exception from container-launch.\nContainer id: {c.yarn_container_id}\n"
                    f"Exit code: {exit_code}\n"
                    f"Container exited with a non-zero exit code {exit_code}. Last 4096 bytes of "
                    f"{c.log_file.name} :\n{tail(c.log_file)}")
            self.release(c)
        if c.service == "master":
            if code == 0:
                self.finish(app, "FINISHED", "SUCCEEDED", "Completed Successfully")
            else:
                self.finish(app, "FINISHED", "FAILED",
                            f"Master script exited with code {code}; the end of its log "
                            f"({c.log_file}):\n{tail(c.log_file, 2048)}")
        else:
            self.allocate()

    def finish(self, app: Application, state: str, final_status: str, diagnostics: str, delay_s: float = 0.0) -> None:
        """Unregister (or kill) an application: every container is stopped, the master last."""
        with self.lock:
            if app.state in ("FINISHED", "FAILED", "KILLED"):
                return
            app.state, app.final_status, app.diagnostics = state, final_status, diagnostics
            app.finish_time = time.time()
            app.kv_changed.notify_all()
            running = [c for cs in app.containers.values() for c in cs if c.state in ("REQUESTED", "RUNNING")]
            for c in running:
                if c.state == "RUNNING":
                    self.release(c)
                c.state = "KILLED"
                c.finish_time = time.time()
                c.exit_message = "Container killed by the ApplicationMaster.\nContainer killed on request. Exit code is 143"
            if app.master is not None and app.master.state == "RUNNING":
                app.master.state, app.master.finish_time = "KILLED", time.time()

        def stop() -> None:
            time.sleep(delay_s)  # the shutdown call gets its answer first
            for c in running:
                stop_process_group(c.proc)
            if app.master is not None:
                stop_process_group(app.master.proc)
            if app.server is not None:
                app.server.close()
            shutil.rmtree(app.staging, ignore_errors=True)
            self.allocate()

        if delay_s:
            threading.Thread(target=stop, daemon=True).start()
        else:
            stop()

    # ---- tests ---------------------------------------------------------------------------------

    def test_call(self, method: str, params: dict) -> object:
        if method == "containers":
            with self.lock:
                out = []
                for app in self.apps.values():
                    for c in [app.master] + [c for cs in app.containers.values() for c in cs]:
                        if c is not None:
                            out.append({**c.to_json(), "application": app.id,
                                        "pid": c.proc.pid if c.proc else None,
                                        "alive": c.proc is not None and c.proc.poll() is None})
                return out
        if method == "uploads":
            with self.lock:
                return list(self.uploads)
        if method == "inject":
            with self.lock:
                self.faults.update(params)
            return None
        if method == "applications":
            with self.lock:
                return [a.report() for a in self.apps.values()]
        raise CallError("ValueError", f"unknown test call {method}")

    def stop_all(self) -> None:
        with self.lock:
            self.stopping = True
            apps = list(self.apps.values())
        for app in apps:
            self.finish(app, "KILLED", "KILLED", "The fake YARN cluster stopped.")
        for app in apps:  # including those whose delayed stop has not run yet
            for c in [app.master] + [c for cs in app.containers.values() for c in cs]:
                if c is not None:
                    stop_process_group(c.proc)


def tail(path: Path | None, size: int = 4096) -> str:
    if path is None or not path.exists():
        return ""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - size))
        return f.read().decode("utf-8", "replace")


def stop_process_group(proc: subprocess.Popen | None) -> None:
    """YARN's container kill: SIGTERM to the process group, SIGKILL 250 ms later."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(0.25)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


# ---- HTTP + JSON ----------------------------------------------------------------------------


class JsonServer:
    """``POST /<method>`` with a JSON body -> ``{"result": ...}`` or ``{"error": {...}}``; the
    master's server also answers ``GET /`` and ``GET /pages/<route>/...`` like skein's web UI
    (with a redirect to the page's target instead of a proxy)."""

    def __init__(self, call, pages: dict | None = None):
        handler_call = call
        handler_pages = pages

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                params = json.loads(self.rfile.read(length) or b"{}")
                user = self.headers.get("X-Skein-User") or getpass.getuser()
                try:
                    body = {"result": handler_call(self.path.strip("/"), params, user)}
                except CallError as e:
                    body = {"error": {"type": e.kind, "message": str(e)}}
                except Exception as e:  # noqa: BLE001 - reported to the caller like skein's servers do
                    body = {"error": {"type": "ApplicationError", "message": f"{type(e).__name__}: {e}"}}
                self.answer(200, json.dumps(body, default=str).encode(), "application/json")

            def do_GET(self) -> None:
                if handler_pages is None:
                    return self.answer(404, b"not found", "text/plain")
                parts = self.path.split("/")
                if len(parts) >= 3 and parts[1] == "pages" and parts[2] in handler_pages:
                    target = handler_pages[parts[2]]["target"].rstrip("/") + "/" + "/".join(parts[3:])
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                links = "".join(f'<li><a href="/pages/{r}/">{p.get("link_name") or r}</a></li>'
                                for r, p in handler_pages.items() if p.get("link_name"))
                return self.answer(200, f"<html><body><h1>skein</h1><ul>{links}</ul></body></html>".encode(),
                                   "text/html")

            def answer(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conf-dir", required=True, type=Path)
    parser.add_argument("--root", required=True, type=Path)
    args = parser.parse_args()
    yarn = FakeYarn(args.conf_dir, args.root)

    def call(method: str, params: dict, user: str) -> object:
        if method.startswith("_test/"):
            return yarn.test_call(method[len("_test/"):], params)
        return yarn.driver_call(method, params, user)

    server = JsonServer(call)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"PORT {server.port}", flush=True)
    stop.wait()
    yarn.stop_all()
    server.close()


if __name__ == "__main__":
    main()

