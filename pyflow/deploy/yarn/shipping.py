"""Shipping code to YARN: what a pyflow application's containers need, cached on the cluster.

A container needs pyflow itself, the job's files (the job file and its local modules, see
:mod:`pyflow.deploy.yarn.job_files`), the files of ``yarn.ship-files``, and a Python: either the
one installed on the cluster's nodes, or a packed environment (``yarn.python-environment``, a
venv-pack or conda-pack archive) that YARN unpacks in each container.

Everything large goes through :class:`Stager`: it stores a file on the cluster's file system
(``yarn.staging-directory``, any pyarrow file system: ``hdfs://``, ``file://``, ...) under the
SHA-256 of its content, ``<staging>/cache/<sha256>/<name>``, and uploads nothing when that path
exists already. Archives that pyflow builds itself (pyflow, the job's files, shipped folders) are
deterministic zip files (sorted entries, fixed timestamps), so unchanged code hashes the same and
a repeated submission uploads nothing new. The hash of a large local file is remembered by
(path, size, modification time) in ``~/.cache/pyflow/yarn-hashes.json``.

YARN (the NodeManagers) localizes the cached files into each container's working directory; the
result is a list of :class:`ShippedFile` that the spec builder (:mod:`pyflow.deploy.yarn.spec`)
puts into the skein application spec.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import urlparse

from pyflow.errors import DeploymentError

logger = logging.getLogger(__name__)

#: names of the shipped items in each container's working directory
PYFLOW_LIB = "pyflow-lib"
JOB_FILES = "pyflow-job"
ENVIRONMENT = "environment"
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ShippedFile:
    """One entry of a container's working directory: ``name`` there, ``source`` a URL on the
    cluster (or a local file that skein uploads with the application), ``archive`` if YARN
    unpacks it into a folder called ``name``."""

    name: str
    source: str
    archive: bool = False

    def spec(self) -> dict[str, str]:
        return {"source": self.source, "type": "ARCHIVE" if self.archive else "FILE"}


# ---- the content-hash cache on the cluster ------------------------------------------------------


class Stager:
    """Content-addressed storage of shipped files under ``<staging>/cache``."""

    def __init__(self, staging_directory: str):
        from pyarrow import fs as pafs

        self.url = staging_directory.rstrip("/")
        parsed = urlparse(self.url)
        if parsed.scheme in ("", "file"):
            self.url = "file://" + os.path.abspath(parsed.path if parsed.scheme else self.url)
        if parsed.scheme == "hdfs":
            _hadoop_classpath()
        try:
            self.fs, self.root = pafs.FileSystem.from_uri(self.url)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad URL
            raise DeploymentError(
                f"Cannot open the staging directory '{staging_directory}' (yarn.staging-directory): {e}. "
                f"Set it to a folder on the cluster's file system, e.g. hdfs://namenode:8020/user/me/.pyflow."
            ) from None
        #: names of the files uploaded by this stager, for the log and for tests
        self.uploaded: list[str] = []

    def url_of(self, path: str) -> str:
        parsed = urlparse(self.url)
        return f"{parsed.scheme}://{parsed.netloc}{path}"

    def put(self, local: Path, name: str | None = None) -> str:
        """The URL of ``local``'s content on the cluster, uploading it only if it is not there."""
        from pyarrow import fs as pafs

        name = name or local.name
        digest = file_sha256(local)
        folder = f"{self.root}/cache/{digest}"
        target = f"{folder}/{name}"
        size = local.stat().st_size
        try:
            info = self.fs.get_file_info(target)
            if info.type == pafs.FileType.File and info.size == size:
                logger.info("Shipping %s: already on the cluster at %s", local, self.url_of(target))
                return self.url_of(target)
            self.fs.create_dir(folder, recursive=True)
            partial = f"{folder}/.{name}.{os.getpid()}.partial"
            with local.open("rb") as src, self.fs.open_output_stream(partial) as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            self.fs.move(partial, target)
        except OSError as e:
            raise DeploymentError(
                f"Cannot upload {local} to the staging directory {self.url} (yarn.staging-directory): {e}."
            ) from None
        self.uploaded.append(name)
        logger.info("Uploaded %s (%d bytes) to %s", local, size, self.url_of(target))
        return self.url_of(target)

    def exists(self, url: str) -> bool:
        from pyarrow import fs as pafs

        try:
            filesystem, path = pafs.FileSystem.from_uri(url)
            return filesystem.get_file_info(path).type == pafs.FileType.File
        except Exception:  # noqa: BLE001 - unreadable counts as missing; the caller says so
            return False


def _hadoop_classpath() -> None:
    """pyarrow's HDFS client (libhdfs, JNI) needs Hadoop's jars on CLASSPATH."""
    if os.environ.get("CLASSPATH"):
        return
    import subprocess

    for command in (["hadoop", "classpath", "--glob"], ["yarn", "classpath", "--glob"]):
        try:
            os.environ["CLASSPATH"] = subprocess.check_output(command, text=True, timeout=60).strip()
            return
        except (OSError, subprocess.SubprocessError):
            continue


# ---- hashing --------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content; large files are remembered by (path, size, mtime)."""
    stat = path.stat()
    if stat.st_size < 16 * _CHUNK:
        return _digest(path)
    memo_file = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pyflow" / "yarn-hashes.json"
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key not in memo:
        memo[key] = _digest(path)
        try:
            memo_file.parent.mkdir(parents=True, exist_ok=True)
            partial = memo_file.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(memo))
            partial.replace(memo_file)
        except OSError:
            pass  # a cache, not a requirement
    return memo[key]


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


# ---- deterministic archives -----------------------------------------------------------------


def write_zip(target: Path, files: Iterable[tuple[str, Path]]) -> Path:
    """A zip of ``(name in the archive, local file)`` pairs whose bytes depend on the content only."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, path in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, path.read_bytes())
    partial.replace(target)
    return target


def folder_files(folder: Path, prefix: str = "") -> Iterator[tuple[str, Path]]:
    """Every file under ``folder`` as ``(prefix + relative name, path)``, skipping caches."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".pyo")):
                path = Path(dirpath) / name
                yield prefix + path.relative_to(folder).as_posix(), path


def pyflow_archive(workdir: Path) -> Path:
    """A zip of the running pyflow package (``pyflow/...`` inside), for the containers' PYTHONPATH."""
    package = Path(__file__).resolve().parents[2]
    return write_zip(workdir / f"{PYFLOW_LIB}.zip", folder_files(package, "pyflow/"))


# ---- what one application ships -------------------------------------------------------------


@dataclass
class Shipment:
    """Builds the list of shipped files of one application; ``workdir`` holds what is built
    locally (archives, per-application files) until the application is submitted."""

    stager: Stager
    workdir: Path

    def __post_init__(self) -> None:
        self.files: list[ShippedFile] = []

    @classmethod
    def create(cls, stager: Stager) -> "Shipment":
        return cls(stager, Path(tempfile.mkdtemp(prefix="pyflow-yarn-")))

    def add(self, item: ShippedFile) -> None:
        if any(f.name == item.name for f in self.files):
            raise DeploymentError(
                f"Two shipped files are both called '{item.name}' in the containers' working "
                f"directory; rename one of them (yarn.ship-files).")
        self.files.append(item)

    def ship_pyflow(self) -> None:
        self.add(ShippedFile(PYFLOW_LIB, self.stager.put(pyflow_archive(self.workdir)), archive=True))

    def ship_job_files(self, files: dict[str, Path]) -> None:
        archive = write_zip(self.workdir / f"{JOB_FILES}.zip", files.items())
        self.add(ShippedFile(JOB_FILES, self.stager.put(archive), archive=True))

    def ship_environment(self, location: str) -> None:
        """A packed Python environment: a local archive, or one already on the cluster."""
        if not location.endswith(ARCHIVE_SUFFIXES):
            raise DeploymentError(
                f"The Python environment '{location}' (yarn.python-environment) is not a .tar.gz, "
                f".tgz or .zip archive; pack one with `venv-pack -o env.tar.gz` or `conda pack -o "
                f"env.tar.gz`.")
        scheme = urlparse(location).scheme
        if scheme and scheme != "file":
            if not self.stager.exists(location):
                raise DeploymentError(
                    f"The Python environment archive '{location}' (yarn.python-environment) does not "
                    f"exist on the cluster's file system; upload it, or give a local path.")
            self.add(ShippedFile(ENVIRONMENT, location, archive=True))
            return
        path = Path(urlparse(location).path if scheme else location).expanduser()
        if not path.is_file():
            raise DeploymentError(
                f"The Python environment archive '{location}' (yarn.python-environment) does not "
                f"exist; pack one with `venv-pack -o env.tar.gz` or `conda pack -o env.tar.gz`, or leave "
                f"the option empty to use the Python installed on the cluster.")
        self.add(ShippedFile(ENVIRONMENT, self.stager.put(path, _archive_name(path)), archive=True))

    def ship_user_files(self, entries: str) -> None:
        """``yarn.ship-files``: semicolon-separated files and folders."""
        for entry in (e.strip() for e in entries.split(";")):
            if not entry:
                continue
            path = Path(entry).expanduser()
            if path.is_dir():
                archive = write_zip(self.workdir / "ship" / f"{path.name}.zip", folder_files(path))
                self.add(ShippedFile(path.name, self.stager.put(archive), archive=True))
            elif path.is_file():
                self.add(ShippedFile(path.name, self.stager.put(path)))
            else:
                raise DeploymentError(
                    f"'{entry}' in yarn.ship-files does not exist; give existing local files or "
                    f"folders, separated by ';'.")

    def ship_local(self, name: str, content: bytes | str) -> None:
        """A small per-application file; skein uploads it with the application (not cached)."""
        path = self.workdir / "app" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        self.add(ShippedFile(name, "file://" + str(path)))

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def _archive_name(path: Path) -> str:
    for suffix in ARCHIVE_SUFFIXES:
        if path.name.endswith(suffix):
            return f"{ENVIRONMENT}{suffix}"
    return path.name
