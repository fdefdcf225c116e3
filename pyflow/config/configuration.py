"""Configuration: typed option values loaded from file, environment and ``-D``, and frozen views.

A :class:`Configuration` holds the options that were explicitly set, already parsed to their
types; ``get`` falls back to each option's default. Every key is checked against
:data:`pyflow.config.options.ALL_OPTIONS` when it enters, so a typo fails at once with a
suggestion and the place it came from.

Components never read a Configuration directly: they take a frozen view built once, e.g.
``TaskManagerConfiguration.from_config(conf)`` (Flink's ``TaskManagerConfiguration``).

>>> from pyflow.config import options
>>> conf = Configuration({"taskmanager.numberOfTaskSlots": "4"})
>>> conf.get(options.NUM_TASK_SLOTS)
4
>>> TaskManagerConfiguration.from_config(conf).num_slots
4
"""

from __future__ import annotations

import difflib
import logging
import os
import tempfile
import textwrap
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, TypeVar

import yaml

from pyflow.config import options as _options
from pyflow.config.options import ALL_OPTIONS, ConfigOption
from pyflow.errors import ConfigurationError

__all__ = [
    "CONF_DIR_ENV",
    "CONF_FILE_NAME",
    "Configuration",
    "JobManagerConfiguration",
    "LOG_DIR_ENV",
    "NetworkConfiguration",
    "TaskManagerConfiguration",
    "default_conf_dir",
    "render_yaml",
    "resolve_log_dir",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

CONF_FILE_NAME = "pyflow-conf.yaml"
#: Environment variable naming the directory that holds pyflow-conf.yaml.
CONF_DIR_ENV = "PYFLOW_CONF_DIR"
#: Environment variable naming the log directory when env.log.dir is empty.
LOG_DIR_ENV = "PYFLOW_LOG_DIR"
_ENV_PREFIX = "PYFLOW_CONF_"
# Variables with the option prefix that are not options.
_ENV_NOT_OPTIONS = frozenset({CONF_DIR_ENV})
_SEE_ALSO = "See conf/pyflow-conf.yaml for every option."
_CODE = "code"
_DYNAMIC = "-D"


def default_conf_dir() -> Path | None:
    """The repository's ``conf/`` folder next to the ``pyflow`` package, if it exists."""
    candidate = Path(__file__).resolve().parent.parent.parent / "conf"
    return candidate if candidate.is_dir() else None


class Configuration:
    """Explicitly set option values, parsed to their types; everything else is the default.

    Keys are validated and values parsed when they enter (constructor, :meth:`set`,
    :meth:`merged`, :meth:`load`), so a Configuration never holds a bad value. Two
    configurations are equal when they set the same options to the same values.

    >>> from pyflow.config.options import PARALLELISM, BUFFER_TIMEOUT
    >>> conf = Configuration().set(PARALLELISM, 4).set("execution.buffer-timeout", "5ms")
    >>> conf.get(BUFFER_TIMEOUT)
    datetime.timedelta(microseconds=5000)
    >>> conf.to_dict()
    {'parallelism.default': '4', 'execution.buffer-timeout': '5 ms'}
    """

    __slots__ = ("_options", "_values")
    __hash__ = None  # type: ignore[assignment]  # mutable

    def __init__(self, values: Mapping[str | ConfigOption, Any] | None = None):
        self._options: dict[str, ConfigOption] = {}
        self._values: dict[str, Any] = {}
        for key, value in (values or {}).items():
            self._set(key, value, _CODE)

    # -- access -------------------------------------------------------------------------------

    def get(self, option: ConfigOption[T] | str) -> T:
        """The value of ``option``: as set, else its default."""
        option = self._option(option, _CODE)
        if option.key in self._values:
            return self._values[option.key]
        return option.default

    def set(self, option: ConfigOption | str, value: Any) -> "Configuration":
        """Parse and set ``value``; returns self for chaining. Raises ConfigurationError."""
        self._set(option, value, _CODE)
        return self

    def contains(self, option: ConfigOption | str) -> bool:
        """Whether ``option`` was explicitly set (a default does not count)."""
        key = option.key if isinstance(option, ConfigOption) else option
        return key in self._values

    __contains__ = contains

    def __iter__(self) -> Iterator[str]:
        """The keys of the explicitly set options."""
        return iter(list(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def to_dict(self) -> dict[str, str]:
        """Explicitly set options as ``{key: text}``; ``Configuration(conf.to_dict()) == conf``."""
        return {key: self._options[key].render(value) for key, value in self._values.items()}

    def merged(self, other: "Configuration | Mapping[str | ConfigOption, Any]") -> "Configuration":
        """A new Configuration with the options of ``other`` over those of self."""
        result = self.copy()
        if isinstance(other, Configuration):
            result._options.update(other._options)
            result._values.update(other._values)
        else:
            for key, value in other.items():
                result._set(key, value, _CODE)
        return result

    def copy(self) -> "Configuration":
        result = Configuration()
        result._options = dict(self._options)
        result._values = dict(self._values)
        return result

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Configuration):
            return NotImplemented
        return self._values == other._values

    def __repr__(self) -> str:
        return f"Configuration({self.to_dict()!r})"

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        conf_dir: str | os.PathLike | None = None,
        dynamic: Mapping[str, Any] | Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> "Configuration":
        """Load defaults < ``<conf_dir>/pyflow-conf.yaml`` < ``PYFLOW_CONF_*`` < ``dynamic``.

        ``conf_dir`` None means ``$PYFLOW_CONF_DIR`` if set, else the repository's ``conf/``
        folder if it exists, else no file. A ``conf_dir`` that does not exist is an error; an
        existing directory without pyflow-conf.yaml just contributes nothing. ``conf_dir`` may
        also name the yaml file itself. ``env`` defaults to ``os.environ``; ``dynamic`` is a
        mapping or ``-D`` style ``["key=value", ...]``.
        """
        env = os.environ if env is None else env
        conf = cls()
        path = _conf_file(conf_dir, env)
        if path is not None:
            for key, value, line in _read_yaml(path):
                conf._set(key, value, f"{path} line {line}")
        conf._apply_env(env)
        if dynamic is not None:
            if isinstance(dynamic, (str, bytes)):
                dynamic = [dynamic]  # type: ignore[list-item]
            items = dynamic if isinstance(dynamic, Mapping) else cls.parse_dynamic(dynamic)
            for key, value in items.items():
                conf._set(key, value, _DYNAMIC)
        return conf

    @staticmethod
    def parse_dynamic(items: Sequence[str]) -> dict[str, str]:
        """Split ``["key=value", ...]`` (the arguments of ``-D``) at the first ``=``; later wins."""
        result: dict[str, str] = {}
        for item in items:
            key, sep, value = str(item).partition("=")
            key = key.strip()
            if not sep or not key:
                raise ConfigurationError(
                    f"Dynamic property '{item}' is not of the form key=value; write it as "
                    f"-D key=value, e.g. -D parallelism.default=2."
                )
            result[key] = value
        return result

    # -- internals ----------------------------------------------------------------------------

    def _set(self, option: ConfigOption | str, value: Any, source: str) -> None:
        option = self._option(option, source)
        self._values[option.key] = option.parse(value, source)
        self._options[option.key] = option

    @staticmethod
    def _option(option: ConfigOption | str, source: str) -> ConfigOption:
        if isinstance(option, ConfigOption):
            return option
        found = ALL_OPTIONS.get(option) if isinstance(option, str) else None
        if found is None:
            raise ConfigurationError(
                f"Unknown configuration option '{option}' (from {source})."
                f"{_suggest(str(option), list(ALL_OPTIONS))} {_SEE_ALSO}"
            )
        return found

    def _apply_env(self, env: Mapping[str, str]) -> None:
        by_var = {option.env_var: option for option in ALL_OPTIONS.values()}
        for name in sorted(env):
            if not name.startswith(_ENV_PREFIX) or name in _ENV_NOT_OPTIONS:
                continue
            option = by_var.get(name)
            if option is None:
                hint = difflib.get_close_matches(name, list(by_var), n=1, cutoff=0.8)
                did_you_mean = (
                    f" Did you mean {hint[0]} ('{by_var[hint[0]].key}')?" if hint else ""
                )
                raise ConfigurationError(
                    f"Unknown configuration option in environment variable {name}: no option "
                    f"maps to it.{did_you_mean} Unset it, or see conf/pyflow-conf.yaml for "
                    f"every option (the variable is the key in capitals, '.' and '-' as '_')."
                )
            self._set(option, env[name], f"environment variable {name}")


def _suggest(key: str, keys: list[str]) -> str:
    lowered = {k.lower(): k for k in keys}
    hint = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
    return f" Did you mean '{lowered[hint[0]]}'?" if hint else ""


def _conf_file(conf_dir: str | os.PathLike | None, env: Mapping[str, str]) -> Path | None:
    if conf_dir is None:
        from_env = env.get(CONF_DIR_ENV)
        if from_env:
            where = f"{CONF_DIR_ENV}={from_env}"
            directory = Path(from_env)
        else:
            directory = default_conf_dir()
            if directory is None:
                return None
            where = str(directory)
    else:
        directory = Path(conf_dir)
        where = str(directory)
        if directory.is_file():
            return directory
    if not directory.is_dir():
        raise ConfigurationError(
            f"Configuration directory {where} does not exist; point it at the folder holding "
            f"{CONF_FILE_NAME}, or leave it unset to use the defaults."
        )
    path = directory / CONF_FILE_NAME
    if not path.is_file():
        logger.info("No %s in %s; using defaults", CONF_FILE_NAME, directory)
        return None
    return path


def _read_yaml(path: Path) -> list[tuple[str, Any, int]]:
    """``(dotted key, value, line)`` of every leaf of the yaml file; nested mappings flatten."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read configuration file {path}: {exc.strerror}."
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return []
        if not isinstance(root, yaml.MappingNode):
            raise ConfigurationError(
                f"Configuration file {path} line {root.start_mark.line + 1} must be a mapping of "
                f"'key: value' lines, e.g. 'taskmanager.numberOfTaskSlots: 2'."
            )
        leaves: list[tuple[str, Any, int]] = []
        _flatten(loader, root, "", leaves)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(
            f"Cannot parse configuration file {path}{line}: {problem}. Fix the YAML syntax; "
            f"every line is 'key: value', e.g. 'taskmanager.numberOfTaskSlots: 2'."
        ) from None
    finally:
        loader.dispose()
    seen: dict[str, int] = {}
    for key, _value, line in leaves:
        if key in seen:
            raise ConfigurationError(
                f"Option '{key}' is set twice in {path} (lines {seen[key]} and {line}); keep one."
            )
        seen[key] = line
    return leaves


def _flatten(loader: yaml.SafeLoader, node: yaml.MappingNode, prefix: str,
             out: list[tuple[str, Any, int]]) -> None:
    loader.flatten_mapping(node)  # resolves '<<' merge keys
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        dotted = f"{prefix}{'' if key is None else key}"
        if isinstance(value_node, yaml.MappingNode):
            _flatten(loader, value_node, dotted + ".", out)
        else:
            out.append((dotted, loader.construct_object(value_node, deep=True),
                        key_node.start_mark.line + 1))


# --------------------------------------------------------------------------------------------
# The generated yaml file
# --------------------------------------------------------------------------------------------

_HEADER = """\
# pyflow configuration.
#
# This file lists every option pyflow knows, with its default value. It is generated from
# pyflow/config/options.py and checked against it by tests/unit/test_config.py; after changing
# an option there, regenerate it with:
#
#     python -m pyflow.config > conf/pyflow-conf.yaml
#
# Precedence, later wins: these defaults < this file < environment variables
# PYFLOW_CONF_<KEY> (the key in capitals, '.' and '-' as '_', e.g.
# PYFLOW_CONF_TASKMANAGER_NUMBEROFTASKSLOTS=2) < -D key=value on the command line.
# Keys may also be written as nested mappings (taskmanager: {numberOfTaskSlots: 2}).
# Memory sizes take the units b, kb, mb, gb, tb; durations ms, s, min, h, d.
"""


def render_yaml(registry: Mapping[str, ConfigOption] | None = None) -> str:
    """Every option, grouped by section, as a documented yaml file of defaults."""
    registry = ALL_OPTIONS if registry is None else registry
    sections: dict[str, list[ConfigOption]] = {}
    for option in registry.values():
        sections.setdefault(option.section or "Other", []).append(option)
    parts = [_HEADER]
    for section, members in sections.items():
        parts.append(f"\n# {'=' * 93}\n# {section}\n# {'=' * 93}\n")
        for option in members:
            lines = textwrap.wrap(option.description, width=93, break_on_hyphens=False,
                                  break_long_words=False)
            if option.choices:
                lines.append("Values: " + ", ".join(option.choices))
            parts.append("\n" + "".join(f"# {line}\n" for line in lines))
            parts.append(f"{option.key}: {option.render_yaml(option.default)}\n")
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Frozen per-component views
# --------------------------------------------------------------------------------------------


def resolve_log_dir(conf: Configuration, env: Mapping[str, str] | None = None) -> Path:
    """``env.log.dir`` if set, else ``$PYFLOW_LOG_DIR``, else ``<tempdir>/pyflow-logs``.

    Creates nothing.
    """
    env = os.environ if env is None else env
    configured = conf.get(_options.LOG_DIR)
    if configured:
        return Path(configured).expanduser()
    from_env = env.get(LOG_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Path(tempfile.gettempdir()) / "pyflow-logs"


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


def _heartbeat(conf: Configuration) -> tuple[float, float]:
    interval = conf.get(_options.HEARTBEAT_INTERVAL)
    timeout = conf.get(_options.HEARTBEAT_TIMEOUT)
    if timeout < interval:
        raise ConfigurationError(
            f"'{_options.HEARTBEAT_TIMEOUT.key}' ({_options.HEARTBEAT_TIMEOUT.render(timeout)}) is "
            f"shorter than '{_options.HEARTBEAT_INTERVAL.key}' "
            f"({_options.HEARTBEAT_INTERVAL.render(interval)}); set the timeout to a few "
            f"intervals, "
            f"e.g. 'heartbeat.timeout: 50 s' with 'heartbeat.interval: 10 s'."
        )
    return _seconds(interval), _seconds(timeout)


def _network_memory(conf: Configuration) -> int:
    """``clamp(process size * network fraction, network.min, network.max)`` in bytes."""
    low = conf.get(_options.NETWORK_MIN)
    high = conf.get(_options.NETWORK_MAX)
    if low > high:
        raise ConfigurationError(
            f"'{_options.NETWORK_MIN.key}' ({low}) is larger than '{_options.NETWORK_MAX.key}' "
            f"({high}); lower the min or raise the max."
        )
    wanted = int(conf.get(_options.TM_PROCESS_MEMORY) * conf.get(_options.NETWORK_FRACTION))
    return max(int(low), min(int(high), wanted))


@dataclass(frozen=True, slots=True)
class TaskManagerConfiguration:
    """What a TaskManager process needs from the configuration (Flink's TaskManagerConfiguration).

    Memory in bytes, durations in seconds. ``managed_memory`` is process size times the managed
    fraction; ``network_memory`` is process size times the network fraction, clamped to
    ``[network.min, network.max]``; together they never exceed the process size.
    """

    num_slots: int
    host: str
    bind_host: str
    rpc_port: int
    data_port: int
    resource_id: str
    process_memory: int
    managed_memory: int
    network_memory: int
    heartbeat_interval_s: float
    heartbeat_timeout_s: float
    registration_timeout_s: float
    log_dir: str
    log_level: str

    @classmethod
    def from_config(cls, conf: Configuration) -> "TaskManagerConfiguration":
        process = int(conf.get(_options.TM_PROCESS_MEMORY))
        managed = int(process * conf.get(_options.MANAGED_MEMORY_FRACTION))
        network = _network_memory(conf)
        if managed + network > process:
            raise ConfigurationError(
                f"Managed memory ({_options.MemorySize(managed)}) and network memory "
                f"({_options.MemorySize(network)}) exceed "
                f"'{_options.TM_PROCESS_MEMORY.key}' ({_options.MemorySize(process)}); raise "
                f"the process size or lower '{_options.MANAGED_MEMORY_FRACTION.key}' or "
                f"'{_options.NETWORK_MIN.key}'."
            )
        interval, timeout = _heartbeat(conf)
        return cls(
            num_slots=conf.get(_options.NUM_TASK_SLOTS),
            host=conf.get(_options.TM_HOST),
            bind_host=conf.get(_options.TM_BIND_HOST),
            rpc_port=conf.get(_options.TM_RPC_PORT),
            data_port=conf.get(_options.TM_DATA_PORT),
            resource_id=conf.get(_options.TM_RESOURCE_ID),
            process_memory=process,
            managed_memory=managed,
            network_memory=network,
            heartbeat_interval_s=interval,
            heartbeat_timeout_s=timeout,
            registration_timeout_s=_seconds(conf.get(_options.TM_REGISTRATION_TIMEOUT)),
            log_dir=str(resolve_log_dir(conf)),
            log_level=conf.get(_options.LOG_LEVEL),
        )


@dataclass(frozen=True, slots=True)
class NetworkConfiguration:
    """What the data plane of a TaskManager needs: where to listen, buffer sizes and counts.

    ``segment_size`` is the largest buffer in bytes (bigger record batches are sliced);
    ``network_memory`` is the byte budget for all buffers, as in TaskManagerConfiguration.
    """

    bind_host: str
    host: str
    port: int
    segment_size: int
    buffers_per_channel: int
    floating_buffers_per_gate: int
    buffer_timeout_ms: float
    batch_size: int
    network_memory: int
    blocking_memory_budget: int = 64 * 1024 * 1024
    spill_dir: str | None = None

    @classmethod
    def from_config(cls, conf: Configuration) -> "NetworkConfiguration":
        return cls(
            bind_host=conf.get(_options.TM_BIND_HOST),
            host=conf.get(_options.TM_HOST),
            port=conf.get(_options.TM_DATA_PORT),
            segment_size=int(conf.get(_options.SEGMENT_SIZE)),
            buffers_per_channel=conf.get(_options.BUFFERS_PER_CHANNEL),
            floating_buffers_per_gate=conf.get(_options.FLOATING_BUFFERS),
            buffer_timeout_ms=conf.get(_options.BUFFER_TIMEOUT) / timedelta(milliseconds=1),
            batch_size=conf.get(_options.BATCH_SIZE),
            network_memory=_network_memory(conf),
            blocking_memory_budget=int(conf.get(_options.BLOCKING_SHUFFLE_MEMORY)),
            spill_dir=conf.get(_options.IO_TMP_DIRS) or None,
        )


@dataclass(frozen=True, slots=True)
class JobManagerConfiguration:
    """What a JobManager process needs: its RPC endpoint, heartbeats, timeouts, logging.

    Durations in seconds.
    """

    rpc_address: str
    rpc_port: int
    bind_host: str
    heartbeat_interval_s: float
    heartbeat_timeout_s: float
    taskmanager_timeout_s: float
    slot_request_timeout_s: float
    log_dir: str
    log_level: str

    @classmethod
    def from_config(cls, conf: Configuration) -> "JobManagerConfiguration":
        interval, timeout = _heartbeat(conf)
        return cls(
            rpc_address=conf.get(_options.JM_RPC_ADDRESS),
            rpc_port=conf.get(_options.JM_RPC_PORT),
            bind_host=conf.get(_options.JM_BIND_HOST),
            heartbeat_interval_s=interval,
            heartbeat_timeout_s=timeout,
            taskmanager_timeout_s=_seconds(conf.get(_options.TASKMANAGER_TIMEOUT)),
            slot_request_timeout_s=_seconds(conf.get(_options.SLOT_REQUEST_TIMEOUT)),
            log_dir=str(resolve_log_dir(conf)),
            log_level=conf.get(_options.LOG_LEVEL),
        )
