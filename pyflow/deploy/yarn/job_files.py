"""The files a job needs on the cluster: the job file and the local modules it imports.

:func:`collect_job_files` reads the job's ``import`` statements statically (``ast``: nothing is
imported or run), follows them into the modules that live next to the job (its folder, the
current folder, ``$PYTHONPATH``) and returns those files, laid out as they are on ``sys.path`` so
that the same imports work in the containers. Imports of installed packages are only checked:
each must resolve in this Python, or :meth:`JobFiles.check` fails early, naming the module, the
line that imports it and the fix, instead of a TaskManager failing later on the cluster.

An import inside ``try:`` with an ``except ImportError`` (or broader) handler is optional, one
under ``if TYPE_CHECKING:`` is ignored; imports inside functions count (they run on TaskManagers).
A local package is shipped whole (its data files too); pyflow itself is shipped separately.

>>> files = collect_job_files(Path("examples/wordcount.py"))     # doctest: +SKIP
>>> sorted(files.files)                                           # doctest: +SKIP
['wordcount.py']
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
import site
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from pyflow.errors import ProgramError

_OPTIONAL_HANDLERS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
_SKIPPED_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".tox", ".venv", "node_modules"}


@dataclass(frozen=True, slots=True)
class MissingImport:
    module: str
    file: Path
    line: int


@dataclass
class JobFiles:
    """``files``: name in the shipped folder -> local path (the job file is at the top)."""

    job: Path
    files: dict[str, Path] = field(default_factory=dict)
    missing: list[MissingImport] = field(default_factory=list)

    def check(self) -> None:
        """Raise ProgramError naming the first import that does not resolve."""
        if not self.missing:
            return
        first = self.missing[0]
        others = sorted({m.module for m in self.missing[1:]} - {first.module})
        also = f" (also missing: {', '.join(others)})" if others else ""
        raise ProgramError(
            f"The job imports '{first.module}' ({first.file}, line {first.line}), which is neither "
            f"installed in this Python nor a module next to the job{also}. Install it here and in the "
            f"cluster's Python environment (yarn.python-environment), or ship its folder with "
            f"yarn.ship-files.")


def collect_job_files(job: Path, search_path: Sequence[str] | None = None) -> JobFiles:
    """The job file and the local modules it imports, transitively; imports that do not resolve
    are listed in ``missing``. ``search_path`` defaults to the job's folder, the current folder
    and ``$PYTHONPATH``."""
    job = Path(job).resolve()
    roots = _local_roots(job, search_path)
    result = JobFiles(job, {job.name: job})
    seen_files: set[Path] = set()
    queue: list[tuple[Path, str | None]] = [(job, None)]  # (file, its package name for relative imports)
    while queue:
        path, package = queue.pop()
        if path in seen_files:
            continue
        seen_files.add(path)
        for imp in _imports(path):
            name = _absolute(imp, package)
            if name is None:
                continue
            resolved = _resolve(name, roots)
            if resolved is None:
                if not imp.optional:
                    result.missing.append(MissingImport(name, path, imp.line))
                continue
            if resolved and resolved[-1].is_package:  # `from pkg import sub` may name a submodule
                resolved = resolved + [m for sub in imp.names for m in (_resolve(f"{name}.{sub}", roots) or ())[-1:]]
            for local in resolved:
                _ship(local, result)
                if local.file is not None and local.file.suffix == ".py":
                    queue.append((local.file, local.package))
    result.missing.sort(key=lambda m: (str(m.file) != str(job), str(m.file), m.line))
    return result


# ---- imports of one file --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Import:
    module: str  # as written (without the leading dots)
    level: int  # leading dots of a relative import
    names: tuple[str, ...]  # `from module import names`
    line: int
    optional: bool


def _imports(path: Path) -> list[_Import]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as e:
        raise ProgramError(f"Cannot read the imports of {path}: {e}; fix the file or its encoding (UTF-8).") from None
    found: list[_Import] = []
    _visit(tree, optional=False, out=found)
    return found


def _visit(node: ast.AST, optional: bool, out: list[_Import]) -> None:
    if isinstance(node, ast.Import):
        out.extend(_Import(a.name, 0, (), node.lineno, optional) for a in node.names)
        return
    if isinstance(node, ast.ImportFrom):
        names = tuple(a.name for a in node.names if a.name != "*")
        out.append(_Import(node.module or "", node.level, names, node.lineno, optional))
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.orelse:
            _visit(child, optional, out)
        return
    if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
        guarded = optional or any(_catches_import_error(h) for h in node.handlers)  # type: ignore[attr-defined]
        for child in node.body:  # type: ignore[attr-defined]
            _visit(child, guarded, out)
        for part in (node.handlers, node.orelse, node.finalbody):  # type: ignore[attr-defined]
            for child in part:
                _visit(child, optional, out)
        return
    for child in ast.iter_child_nodes(node):
        _visit(child, optional, out)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any((isinstance(t, ast.Name) and t.id in _OPTIONAL_HANDLERS)
               or (isinstance(t, ast.Attribute) and t.attr in _OPTIONAL_HANDLERS) for t in types)


def _absolute(imp: _Import, package: str | None) -> str | None:
    if imp.level == 0:
        return imp.module or None
    if not package:
        return None  # a relative import outside a package fails in Python itself
    parts = package.split(".")
    if imp.level - 1 > len(parts) - 1:
        return None
    base = ".".join(parts[: len(parts) - (imp.level - 1)])
    return f"{base}.{imp.module}" if imp.module else base


# ---- resolution -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Local:
    """A module found next to the job: ``file`` is its source (None for a namespace package),
    ``top`` the top-level module's file or package folder, ``root`` the search path entry it was
    found under."""

    name: str
    file: Path | None
    top: Path
    root: Path
    is_package: bool

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]


def _resolve(name: str, roots: list[Path]) -> list[_Local] | None:
    """None if ``name`` does not resolve; else the local modules on its way (empty when it is an
    installed or built-in module). Nothing is imported."""
    parts = name.split(".")
    top = parts[0]
    spec = importlib.machinery.PathFinder.find_spec(top, [str(r) for r in roots])
    if spec is None or not _is_local(spec):
        return [] if _installed(top) else None
    root = _root_of(spec, roots)
    if root is None:
        return []
    top_path = root / top if (root / top).is_dir() else Path(spec.origin).resolve()
    found: list[_Local] = []
    current = spec
    for depth in range(1, len(parts) + 1):
        if depth > 1:
            locations = list(current.submodule_search_locations or [])
            current = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), locations) \
                if locations else None
            if current is None:
                return None
        origin = current.origin if current.origin and Path(current.origin).is_file() else None
        found.append(_Local(".".join(parts[:depth]), Path(origin).resolve() if origin else None, top_path,
                            root, current.submodule_search_locations is not None))
    return found


def _installed(top: str) -> bool:
    if top in sys.builtin_module_names or top in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _root_of(spec, roots: list[Path]) -> Path | None:
    """The search path entry that holds the top-level module of ``spec``."""
    candidates = []
    if spec.origin and Path(spec.origin).is_file():
        origin = Path(spec.origin).resolve()
        candidates.append(origin.parent.parent if spec.submodule_search_locations is not None else origin.parent)
    candidates += [Path(p).resolve().parent for p in spec.submodule_search_locations or []]
    return next((c for c in candidates if c in roots), None)


def _is_local(spec) -> bool:
    where = spec.origin if spec.origin and spec.origin not in ("built-in", "frozen") else None
    paths = [where] if where else list(spec.submodule_search_locations or [])
    return bool(paths) and not any(_under_installed(Path(p)) for p in paths)


def _installed_dirs() -> list[Path]:
    dirs = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if user_site:
        dirs.add(user_site)
    dirs.add(str(Path(__file__).resolve().parents[2]))  # pyflow is shipped on its own
    return [Path(d).resolve() for d in dirs if d]


def _under_installed(path: Path) -> bool:
    path = path.resolve()
    return any(path == d or d in path.parents for d in _installed_dirs())


def _local_roots(job: Path, search_path: Sequence[str] | None) -> list[Path]:
    if search_path is None:
        entries = [str(job.parent), os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    else:
        entries = [str(job.parent), *search_path]
    roots: list[Path] = []
    for entry in entries:
        if not entry:
            continue
        path = Path(entry).resolve()
        if path.is_dir() and path not in roots and not _under_installed(path):
            roots.append(path)
    if job.parent not in roots:
        roots.insert(0, job.parent)
    return roots


# ---- what gets shipped ----------------------------------------------------------------------


def _ship(local: _Local, result: JobFiles) -> None:
    if local.top.is_dir():
        for file in _package_files(local.top):
            result.files.setdefault(file.relative_to(local.root).as_posix(), file)
    else:
        result.files.setdefault(local.top.relative_to(local.root).as_posix(), local.top)


def _package_files(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".pyo")) and not name.startswith("."):
                yield Path(dirpath) / name
