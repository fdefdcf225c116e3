"""Every configuration option of pyflow, declared once, typed and documented, with Flink's keys.

This module owns the declarations; ``pyflow.config.configuration`` owns loading and the frozen
per-component views, and ``conf/pyflow-conf.yaml`` is generated from what is declared here
(``python -m pyflow.config > conf/pyflow-conf.yaml``; a unit test checks the two agree).

To add an option, declare a module-level constant in the section it belongs to::

    CHECKPOINT_INTERVAL = ConfigOption(
        "execution.checkpointing.interval", timedelta, "0 ms",
        "Interval between two checkpoints. 0 disables checkpointing.",
        section="Checkpointing")

Every ``ConfigOption`` constant in this module is collected into :data:`ALL_OPTIONS` at import
(a duplicate key, or two keys with the same environment variable, is an import error), and the
yaml file lists sections in the order they first appear here.

Values are parsed by type:

- ``int``: ``2``, ``"2"``; not ``"1.5"`` nor ``true``.
- ``float``: ``0.4``, ``"0.4"``, ``1``.
- ``bool``: ``true/false/yes/no/1/0``, case-insensitive.
- ``str``: any scalar; with ``choices``, one of them, case-insensitive, normalized to its spelling.
- :class:`MemorySize`: bytes, from ``1024`` or ``"1728m"``, ``"64mb"``, ``"1 gb"`` (binary units).
- ``timedelta``: from ``500`` (milliseconds) or ``"100 ms"``, ``"10 s"``, ``"5 min"``, ``"2 h"``,
  ``"1 d"``.

>>> NUM_TASK_SLOTS.parse("2")
2
>>> str(MemorySize("1728m"))
'1728mb'
>>> format_duration(parse_duration("5min"))
'5 min'
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Mapping, TypeVar

import yaml

from pyflow.errors import ConfigurationError

__all__ = [
    "ALL_OPTIONS",
    "ConfigOption",
    "MemorySize",
    "format_duration",
    "parse_duration",
]

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Value types
# --------------------------------------------------------------------------------------------

_MEMORY_UNITS: dict[str, int] = {}
for _power, _names in enumerate(
    (
        ("b", "byte", "bytes"),
        ("k", "kb", "kib", "kibibyte", "kibibytes"),
        ("m", "mb", "mib", "mebibyte", "mebibytes"),
        ("g", "gb", "gib", "gibibyte", "gibibytes"),
        ("t", "tb", "tib", "tebibyte", "tebibytes"),
    )
):
    for _name in _names:
        _MEMORY_UNITS[_name] = 1024**_power
_MEMORY_RENDER = (("tb", 1024**4), ("gb", 1024**3), ("mb", 1024**2), ("kb", 1024), ("b", 1))
_AMOUNT_WITH_UNIT = re.compile(r"^\s*(\d+)\s*([a-zA-Zµ]*)\s*$")


class MemorySize(int):
    """A number of bytes, parsed like Flink's ``MemorySize``: ``MemorySize("1728m") == 1728 << 20``.

    Accepts a non-negative int (bytes) or a string of digits with an optional unit:
    ``b``, ``k``/``kb``, ``m``/``mb``, ``g``/``gb``, ``t``/``tb`` (case-insensitive, binary
    multiples, optional space). ``str()`` renders the largest unit that is exact, so a value
    round-trips: ``str(MemorySize("1024k")) == "1mb"``. Arithmetic returns plain ints.

    >>> MemorySize("64 MB") == 64 * 1024 * 1024
    True
    >>> str(MemorySize(1536))
    '1536b'
    """

    __slots__ = ()

    def __new__(cls, value: int | str = 0) -> "MemorySize":
        if isinstance(value, MemorySize):
            return value
        if isinstance(value, bool):
            raise ValueError(f"not a memory size: {value!r}")
        if isinstance(value, int):
            if value < 0:
                raise ValueError(f"a memory size cannot be negative: {value}")
            return super().__new__(cls, value)
        if isinstance(value, str):
            match = _AMOUNT_WITH_UNIT.match(value)
            if match is not None:
                unit = match.group(2).lower() or "b"
                if unit in _MEMORY_UNITS:
                    return super().__new__(cls, int(match.group(1)) * _MEMORY_UNITS[unit])
        raise ValueError(f"not a memory size: {value!r}")

    @property
    def bytes(self) -> int:
        return int(self)

    def __str__(self) -> str:
        value = int(self)
        for unit, multiple in _MEMORY_RENDER:
            if value and value % multiple == 0:
                return f"{value // multiple}{unit}"
        return f"{value}b"

    def __repr__(self) -> str:
        return f"MemorySize({str(self)!r})"


_DURATION_UNITS: dict[str, timedelta] = {}
for _unit, _names in (
    (timedelta(microseconds=1), ("us", "µs", "micro", "micros", "microsecond", "microseconds")),
    (timedelta(milliseconds=1), ("ms", "milli", "millis", "millisecond", "milliseconds")),
    (timedelta(seconds=1), ("s", "sec", "secs", "second", "seconds")),
    (timedelta(minutes=1), ("m", "min", "mins", "minute", "minutes")),
    (timedelta(hours=1), ("h", "hour", "hours")),
    (timedelta(days=1), ("d", "day", "days")),
):
    for _name in _names:
        _DURATION_UNITS[_name] = _unit
_DURATION_RENDER = (
    ("d", timedelta(days=1)),
    ("h", timedelta(hours=1)),
    ("min", timedelta(minutes=1)),
    ("s", timedelta(seconds=1)),
    ("ms", timedelta(milliseconds=1)),
    ("us", timedelta(microseconds=1)),
)


def parse_duration(value: timedelta | int | str) -> timedelta:
    """Parse a duration like Flink's ``TimeUtils.parseDuration``; a plain number is milliseconds.

    >>> parse_duration("10s") == parse_duration(10_000) == timedelta(seconds=10)
    True
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"a duration cannot be negative: {value}")
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value}")
        return timedelta(milliseconds=value)
    if isinstance(value, str):
        match = _AMOUNT_WITH_UNIT.match(value)
        if match is not None:
            unit = match.group(2).lower() or "ms"
            if unit in _DURATION_UNITS:
                return int(match.group(1)) * _DURATION_UNITS[unit]
    raise ValueError(f"not a duration: {value!r}")


def format_duration(value: timedelta) -> str:
    """Render a duration in the largest exact unit: ``"100 ms"``, ``"10 s"``, ``"5 min"``."""
    if not value:
        return "0 ms"
    for unit, size in _DURATION_RENDER:
        if value % size == timedelta(0):
            return f"{value // size} {unit}"
    raise AssertionError(value)  # unreachable: every timedelta is a whole number of microseconds


def yaml_scalar(value: str) -> str:
    """Quote ``value`` if YAML would not read it back as this exact string."""
    if value and value.strip() == value and "#" not in value and ": " not in value:
        try:
            if yaml.safe_load(value) == value:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# ConfigOption
# --------------------------------------------------------------------------------------------

_SUPPORTED_TYPES = (int, float, bool, str, MemorySize, timedelta)
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class ConfigOption(Generic[T]):
    """One typed, documented option with a Flink key (Flink's ``ConfigOption``).

    ``default`` may be given in any form :meth:`parse` accepts (``"1600m"``, ``"100 ms"``); it
    is stored parsed. ``min_value``/``max_value`` bound numbers, memory sizes (in bytes) and
    durations (in milliseconds). ``choices`` makes a ``str`` option enum-like.

    >>> opt = ConfigOption("execution.runtime-mode", str, "STREAMING", "Mode.",
    ...                    choices=("STREAMING", "BATCH"))
    >>> opt.parse("batch")
    'BATCH'
    """

    key: str
    type: type
    default: T
    description: str
    choices: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    section: str = ""

    def __post_init__(self) -> None:
        if self.type not in _SUPPORTED_TYPES:
            raise TypeError(f"option {self.key!r}: unsupported type {self.type!r}")
        if self.choices and self.type is not str:
            raise TypeError(f"option {self.key!r}: choices need type str")
        try:
            default = self._convert(self.default)
        except ValueError as exc:
            raise TypeError(
                f"option {self.key!r}: invalid default {self.default!r}: {exc}"
            ) from None
        object.__setattr__(self, "default", default)

    # -- parsing ------------------------------------------------------------------------------

    @property
    def env_var(self) -> str:
        """The environment variable that sets this option: ``PYFLOW_CONF_`` + the key in caps."""
        return "PYFLOW_CONF_" + re.sub(r"[.\-]", "_", self.key).upper()

    def parse(self, value: Any, source: str | None = None) -> T:
        """Return ``value`` as this option's type, or raise ConfigurationError naming the fix.

        ``source`` says where the value came from (``"-D"``, ``"environment variable X"``, a
        file path) and appears in the error.
        """
        try:
            return self._convert(value)
        except ValueError:
            where = f" (from {source})" if source else ""
            raise ConfigurationError(
                f"Invalid value {_show(value)} for '{self.key}'{where}: expected {self.expected}, "
                f"e.g. {self._example(source)}."
            ) from None

    def render(self, value: Any) -> str:
        """Render a parsed value as text that :meth:`parse` reads back to the same value."""
        if self.type is bool:
            return "true" if value else "false"
        if self.type is timedelta:
            return format_duration(value)
        if self.type is float:
            return repr(float(value))
        return str(value)

    def render_yaml(self, value: Any) -> str:
        """Render a parsed value as a YAML scalar that loads back to a parseable value."""
        text = self.render(value)
        return yaml_scalar(text) if self.type in (str, MemorySize, timedelta) else text

    @property
    def expected(self) -> str:
        """What a valid value looks like, for error messages."""
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        if self.type is bool:
            return "true or false"
        if self.type is str:
            return "a string"
        hint = ""
        if self.type is int:
            noun = "an integer"
        elif self.type is float:
            noun = "a number"
        elif self.type is MemorySize:
            noun, hint = "a memory size", " (units b, kb, mb, gb, tb)"
        else:
            noun, hint = "a duration", " (units ms, s, min, h, d; a plain number is milliseconds)"
        low = self._bound_text(self.min_value)
        high = self._bound_text(self.max_value)
        if low is not None and high is not None:
            noun = f"{noun} between {low} and {high}"
        elif low is not None:
            noun = f"{noun} >= {low}"
        elif high is not None:
            noun = f"{noun} <= {high}"
        return noun + hint

    # -- internals ----------------------------------------------------------------------------

    def _convert(self, value: Any) -> Any:
        kind = self.type
        if kind is str:
            return self._convert_str(value)
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            if isinstance(value, str):
                text = value.strip().lower()
                if text in _TRUE:
                    return True
                if text in _FALSE:
                    return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, int):
                number: Any = int(value)
            elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
                number = int(value)
            else:
                raise ValueError(value)
            compared: float = number
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError(value)
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            compared = number
        elif kind is MemorySize:
            number = MemorySize(value)
            compared = int(number)
        else:
            number = parse_duration(value)
            compared = number / timedelta(milliseconds=1)
        if self.min_value is not None and compared < self.min_value:
            raise ValueError(value)
        if self.max_value is not None and compared > self.max_value:
            raise ValueError(value)
        return number

    def _convert_str(self, value: Any) -> str:
        if value is None:
            text = ""
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            raise ValueError(value)
        if not self.choices:
            return text
        for choice in self.choices:
            if choice.lower() == text.strip().lower():
                return choice
        raise ValueError(value)

    def _bound_text(self, bound: float | None) -> str | None:
        if bound is None:
            return None
        if self.type is MemorySize:
            return str(MemorySize(int(bound)))
        if self.type is timedelta:
            return format_duration(timedelta(milliseconds=bound))
        return _number(bound)

    def _example(self, source: str | None) -> str:
        if self.choices:
            others = [c for c in self.choices if c != self.default]
            value = (others or [self.default])[0]
        elif self.type is bool:
            value = not self.default
        elif self.type is int and self.default == 1 and self.max_value != 1:
            value = 2
        else:
            value = self.default
        if source == "-D":
            return f"'-D {self.key}={self.render(value)}'"
        if source and source.startswith("environment variable"):
            return f"'{self.env_var}={self.render(value)}'"
        return f"'{self.key}: {self.render_yaml(value)}'"


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else f"'{value!r}'"


def build_registry(namespace: Mapping[str, Any]) -> dict[str, ConfigOption]:
    """Collect the ConfigOption values of ``namespace`` in order, keyed by option key.

    Raises TypeError for two different options with one key or one environment variable.
    """
    registry: dict[str, ConfigOption] = {}
    env_vars: dict[str, str] = {}
    for name, value in namespace.items():
        if not isinstance(value, ConfigOption):
            continue
        existing = registry.get(value.key)
        if existing is not None:
            if existing is value:
                continue
            raise TypeError(f"configuration option key {value.key!r} is declared twice ({name})")
        clash = env_vars.get(value.env_var)
        if clash is not None:
            raise TypeError(
                f"options {clash!r} and {value.key!r} map to one environment variable "
                f"{value.env_var}"
            )
        registry[value.key] = value
        env_vars[value.env_var] = value.key
    return registry


# --------------------------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------------------------

PARALLELISM = ConfigOption(
    "parallelism.default", int, 1,
    "Default parallelism of every operator of a job that does not set its own, and of the job "
    "itself when submitted without -p.",
    min_value=1, section="Pipeline")

MAX_PARALLELISM = ConfigOption(
    "pipeline.max-parallelism", int, 128,
    "Upper bound for the parallelism a job can be rescaled to; it is also the number of key "
    "groups keyed state is split into, so it cannot change once a job has state.",
    min_value=1, max_value=32768, section="Pipeline")

PIPELINE_NAME = ConfigOption(
    "pipeline.name", str, "",
    "Name of the job, shown in the REST API and logs, when execute() is called without one. "
    "Empty means 'pyflow job'.",
    section="Pipeline")

RUNTIME_MODE = ConfigOption(
    "execution.runtime-mode", str, "STREAMING",
    "How jobs run: STREAMING processes records continuously as they arrive; BATCH runs bounded "
    "jobs stage by stage; AUTOMATIC picks BATCH when every source is bounded.",
    choices=("STREAMING", "BATCH", "AUTOMATIC"), section="Pipeline")

TARGET = ConfigOption(
    "execution.target", str, "local",
    "Where a job is deployed: local (an embedded cluster in this process), remote (a running "
    "session cluster, reached over REST at rest.address:rest.port), or a YARN per-job, session "
    "or application cluster.",
    choices=("local", "remote", "yarn-per-job", "yarn-session", "yarn-application"),
    section="Pipeline")

ATTACHED = ConfigOption(
    "execution.attached", bool, True,
    "Whether the client waits for a submitted job to finish and reports its result (true), or "
    "returns as soon as the job is submitted (false).",
    section="Pipeline")

BUFFER_TIMEOUT = ConfigOption(
    "execution.buffer-timeout", timedelta, "100 ms",
    "Longest time a partly filled network buffer waits before it is sent downstream, trading "
    "latency for throughput. 0 flushes after every record batch.",
    section="Pipeline")

AUTO_WATERMARK_INTERVAL = ConfigOption(
    "pipeline.auto-watermark-interval", timedelta, "200 ms",
    "How often timestamp assigners emit the current watermark (Flink's periodic watermarks). "
    "0 emits after every record batch.",
    section="Pipeline")

BATCH_SIZE = ConfigOption(
    "execution.batch-size", int, 16384,
    "Most rows per Arrow record batch that sources emit and network buffers carry. Larger "
    "batches raise throughput and per-batch latency. pyflow-specific.",
    min_value=1, section="Pipeline")

PYTHON_EXECUTABLE = ConfigOption(
    "python.executable", str, "",
    "Python interpreter that runs JobManager and TaskManager processes. Empty means the "
    "interpreter running the client.",
    section="Pipeline")

# --------------------------------------------------------------------------------------------
# JobManager
# --------------------------------------------------------------------------------------------

JM_RPC_ADDRESS = ConfigOption(
    "jobmanager.rpc.address", str, "127.0.0.1",
    "Address at which clients and TaskManagers reach the JobManager.",
    section="JobManager")

JM_RPC_PORT = ConfigOption(
    "jobmanager.rpc.port", int, 6123,
    "Port of the JobManager's RPC endpoint. 0 picks any free port (only useful for embedded "
    "clusters, where it is handed to TaskManagers directly).",
    min_value=0, max_value=65535, section="JobManager")

JM_BIND_HOST = ConfigOption(
    "jobmanager.bind-host", str, "127.0.0.1",
    "Local address the JobManager's RPC endpoint listens on. Use 0.0.0.0 to listen on every "
    "interface when TaskManagers run on other machines.",
    section="JobManager")

JM_PROCESS_MEMORY = ConfigOption(
    "jobmanager.memory.process.size", MemorySize, "1600m",
    "Total memory of the JobManager process; containers on YARN are requested with this size.",
    min_value=1024**2, section="JobManager")

# --------------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------------

REST_ADDRESS = ConfigOption(
    "rest.address", str, "127.0.0.1",
    "Address at which clients reach the JobManager's REST endpoint (advertised, not bound).",
    section="REST")

REST_PORT = ConfigOption(
    "rest.port", int, 8081,
    "Port clients connect to for the REST endpoint; the server binds it too unless "
    "rest.bind-port says otherwise. 0 picks any free port. An embedded cluster (whose "
    "jobmanager.rpc.port is 0) always picks any free port, like it does for RPC.",
    min_value=0, max_value=65535, section="REST")

REST_BIND_ADDRESS = ConfigOption(
    "rest.bind-address", str, "127.0.0.1",
    "Local address the REST server listens on. Use 0.0.0.0 to listen on every interface.",
    section="REST")

REST_BIND_PORT = ConfigOption(
    "rest.bind-port", str, "",
    "Port or port range the REST server binds: \"8081\", \"50100-50200\" or \"50100,50102\" "
    "(the first free one is taken). Empty: rest.port.",
    section="REST")

REST_MAX_CONTENT_LENGTH = ConfigOption(
    "rest.server.max-content-length", MemorySize, "100mb",
    "Largest request body the REST server accepts; larger requests get 413.",
    min_value=1, section="REST")

# REST: asynchronous operations (stop, savepoint triggers)

REST_ASYNC_STORE_DURATION = ConfigOption(
    "rest.async.store-duration", timedelta, "5 min",
    "How long the result of a completed asynchronous operation (a job stop or savepoint "
    "trigger) is kept for GET /jobs/:jobid/savepoints/:triggerid; afterwards its trigger id "
    "is unknown (404). Operations still in progress are always kept.",
    min_value=1, section="REST")

# --------------------------------------------------------------------------------------------
# ResourceManager
# --------------------------------------------------------------------------------------------

TASKMANAGER_TIMEOUT = ConfigOption(
    "resourcemanager.taskmanager-timeout", timedelta, "30 s",
    "How long a TaskManager whose slots are all free is kept before it is released.",
    min_value=0, section="ResourceManager")

SLOT_REQUEST_TIMEOUT = ConfigOption(
    "slot.request.timeout", timedelta, "5 min",
    "How long a job waits for the slots it asked for before it fails with a resource error.",
    min_value=1, section="ResourceManager")

HEARTBEAT_INTERVAL = ConfigOption(
    "heartbeat.interval", timedelta, "10 s",
    "Time between two heartbeats of a TaskManager to the JobManager's ResourceManager (each "
    "carries the TaskManager's slot report and task metrics). Both sides watch them: the "
    "ResourceManager for lost TaskManagers, the TaskManager for a lost JobManager.",
    min_value=1, section="ResourceManager")

HEARTBEAT_TIMEOUT = ConfigOption(
    "heartbeat.timeout", timedelta, "50 s",
    "Time without a heartbeat after which a TaskManager or JobManager is considered lost. "
    "Must be at least heartbeat.interval.",
    min_value=1, section="ResourceManager")

RESTART_STRATEGY = ConfigOption(
    "restart-strategy.type", str, "none",
    "What happens when a task fails. Only none so far: a failed task fails the whole job.",
    choices=("none",), section="ResourceManager")

# --------------------------------------------------------------------------------------------
# TaskManager
# --------------------------------------------------------------------------------------------

NUM_TASK_SLOTS = ConfigOption(
    "taskmanager.numberOfTaskSlots", int, 1,
    "Number of parallel task slots a TaskManager offers; each slot runs one parallel pipeline "
    "of a job. A good start is the number of CPU cores of the machine.",
    min_value=1, section="TaskManager")

TM_HOST = ConfigOption(
    "taskmanager.host", str, "127.0.0.1",
    "Address at which the JobManager and other TaskManagers reach this TaskManager.",
    section="TaskManager")

TM_BIND_HOST = ConfigOption(
    "taskmanager.bind-host", str, "127.0.0.1",
    "Local address the TaskManager's RPC and data endpoints listen on. Use 0.0.0.0 to listen "
    "on every interface.",
    section="TaskManager")

TM_RPC_PORT = ConfigOption(
    "taskmanager.rpc.port", int, 0,
    "Port of the TaskManager's RPC endpoint. 0 picks any free port.",
    min_value=0, max_value=65535, section="TaskManager")

TM_DATA_PORT = ConfigOption(
    "taskmanager.data.port", int, 0,
    "Port on which the TaskManager serves record batches to downstream tasks. 0 picks any "
    "free port.",
    min_value=0, max_value=65535, section="TaskManager")

TM_RESOURCE_ID = ConfigOption(
    "taskmanager.resource-id", str, "",
    "Identifier of the TaskManager, shown in logs and the REST API. Empty means one is "
    "generated: tm-<8 hex digits> for TaskManagers an embedded cluster starts, tm-<pid> otherwise.",
    section="TaskManager")

TM_PROCESS_MEMORY = ConfigOption(
    "taskmanager.memory.process.size", MemorySize, "1728m",
    "Total memory of a TaskManager process; managed and network memory are fractions of it, "
    "and containers on YARN are requested with this size.",
    min_value=1024**2, section="TaskManager")

MANAGED_MEMORY_FRACTION = ConfigOption(
    "taskmanager.memory.managed.fraction", float, 0.4,
    "Fraction of taskmanager.memory.process.size reserved as managed memory for state "
    "backends and sorting in batch mode.",
    min_value=0, max_value=1, section="TaskManager")

TM_REGISTRATION_TIMEOUT = ConfigOption(
    "taskmanager.registration.timeout", timedelta, "5 min",
    "How long a starting TaskManager tries to register at the ResourceManager before it "
    "gives up and exits.",
    min_value=1, section="TaskManager")

# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------

NETWORK_FRACTION = ConfigOption(
    "taskmanager.memory.network.fraction", float, 0.1,
    "Fraction of taskmanager.memory.process.size used for network buffers, bounded by "
    "taskmanager.memory.network.min and taskmanager.memory.network.max.",
    min_value=0, max_value=1, section="Network")

NETWORK_MIN = ConfigOption(
    "taskmanager.memory.network.min", MemorySize, "64mb",
    "Least memory for network buffers, whatever the fraction gives.",
    section="Network")

NETWORK_MAX = ConfigOption(
    "taskmanager.memory.network.max", MemorySize, "1gb",
    "Most memory for network buffers, whatever the fraction gives.",
    section="Network")

SEGMENT_SIZE = ConfigOption(
    "taskmanager.memory.segment-size", MemorySize, "1mb",
    "Largest network buffer: a record batch larger than this is sliced before it is sent. "
    "Larger than Flink's 32kb because a buffer holds a whole Arrow record batch.",
    min_value=1024, section="Network")

BUFFERS_PER_CHANNEL = ConfigOption(
    "taskmanager.network.memory.buffers-per-channel", int, 2,
    "Exclusive buffers (credits) each input channel grants its upstream sender; more buffers "
    "keep a fast sender busy at the cost of memory.",
    min_value=1, section="Network")

FLOATING_BUFFERS = ConfigOption(
    "taskmanager.network.memory.floating-buffers-per-gate", int, 8,
    "Extra buffers an input gate shares among its channels, handed to whichever channel is "
    "backlogged.",
    min_value=0, section="Network")

BLOCKING_SHUFFLE_MEMORY = ConfigOption(
    "taskmanager.network.blocking-shuffle.memory", MemorySize, "64mb",
    "BATCH execution: memory a TaskManager uses to hold the output of finished stages (blocking "
    "result partitions) until the next stage reads it; beyond it, output spills to Arrow IPC files "
    "under io.tmp.dirs. pyflow-specific.",
    min_value=0, section="Network")

IO_TMP_DIRS = ConfigOption(
    "io.tmp.dirs", str, "",
    "Folder for spill files of BATCH execution (Flink's key). Empty: the system's temporary folder.",
    section="Network")

# --------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------

LOG_DIR = ConfigOption(
    "env.log.dir", str, "",
    "Directory of the JobManager and TaskManager log files. Empty means $PYFLOW_LOG_DIR if "
    "set, else pyflow-logs in the system's temporary directory.",
    section="Logging")

LOG_LEVEL = ConfigOption(
    "env.log.level", str, "INFO",
    "Level of the log files of JobManager and TaskManager processes.",
    choices=("DEBUG", "INFO", "WARNING", "ERROR"), section="Logging")

PID_DIR = ConfigOption(
    "env.pid.dir", str, "",
    "Directory where scripts/ keep the pid files of the processes they start. Empty means "
    "the system's temporary directory.",
    section="Logging")

# --------------------------------------------------------------------------------------------
# Job submission over REST, and the client side of a session cluster (pyflow.rest.submission,
# pyflow.rest.client, pyflow.deploy.executors, the pyflow CLI)
# --------------------------------------------------------------------------------------------

WEB_UPLOAD_DIR = ConfigOption(
    "web.upload.dir", str, "",
    "Folder where the JobManager keeps the files uploaded with a job submitted over REST (POST "
    "/jobs), one sub-folder per job, deleted when the job ends. Empty: io.tmp.dirs, else the "
    "system's temporary folder.",
    section="Job submission")

REST_CONNECTION_TIMEOUT = ConfigOption(
    "rest.connection-timeout", timedelta, "15 s",
    "Longest time a REST client (pyflow run -t remote, list, cancel, ...) waits to connect to "
    "the JobManager's REST endpoint.",
    min_value=1, section="Job submission")

REST_IDLENESS_TIMEOUT = ConfigOption(
    "rest.idleness-timeout", timedelta, "5 min",
    "Longest time a REST client waits for an answer once it sent its request (an upload of a "
    "large job graph included).",
    min_value=1, section="Job submission")

CLIENT_PROGRESS_INTERVAL = ConfigOption(
    "client.progress.interval", timedelta, "10 s",
    "How often an attached pyflow run prints a line of job progress (records per task, % of "
    "input files read) when stderr is not a terminal; on a terminal a progress line is redrawn "
    "in place every 0.5 s. 0 turns progress output off. pyflow-specific.",
    min_value=0, section="Job submission")

# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------

PROMETHEUS_PORT = ConfigOption(
    "metrics.reporter.prom.port", str, "",
    "Port or port range (\"9249\" or \"9249-9260\") of the Prometheus reporter: every JobManager "
    "and TaskManager process serves its metrics at GET /metrics on the first free port of the "
    "range, so a range gives each process of one host its own port. 0 picks any free port (the "
    "process logs which). Empty: no Prometheus reporter.",
    section="Metrics")

PROMETHEUS_HOST = ConfigOption(
    "metrics.reporter.prom.host", str, "127.0.0.1",
    "Local address the Prometheus reporter listens on. The default keeps the metrics (job and "
    "task names, ids, hosts) on this machine; use 0.0.0.0 or the host's address when the "
    "Prometheus server runs on another host. pyflow-specific (Flink's reporter listens on every "
    "interface).",
    section="Metrics")


# --------------------------------------------------------------------------------------------
# YARN
# --------------------------------------------------------------------------------------------

YARN_APPLICATION_NAME = ConfigOption(
    "yarn.application.name", str, "",
    "Name of the YARN application. Empty: 'pyflow per-job cluster: <job name>', 'pyflow "
    "application cluster: <job file>' or 'pyflow session cluster'.",
    section="YARN")

YARN_APPLICATION_QUEUE = ConfigOption(
    "yarn.application.queue", str, "default",
    "YARN queue the application is submitted to.",
    section="YARN")

YARN_APPLICATION_ATTEMPTS = ConfigOption(
    "yarn.application-attempts", int, 1,
    "How many times YARN starts the ApplicationMaster (the JobManager) of an application whose "
    "master fails before it unregisters. Without high availability a restarted master does not "
    "recover the jobs of the first one.",
    min_value=1, section="YARN")

YARN_APPLICATION_ID = ConfigOption(
    "yarn.application.id", str, "",
    "Id of the running YARN session (application_<cluster timestamp>_<number>) that "
    "-t yarn-session submits to. Empty: the session recorded in the yarn-session properties file.",
    section="YARN")

YARN_TAGS = ConfigOption(
    "yarn.tags", str, "",
    "Comma-separated tags of the YARN application (yarn application -list -appTags ...).",
    section="YARN")

YARN_SHIP_FILES = ConfigOption(
    "yarn.ship-files", str, "",
    "Semicolon-separated local files or folders copied into the working directory of the "
    "ApplicationMaster and of every TaskManager container (a folder keeps its name). The job file "
    "and the local modules it imports are shipped without being listed here.",
    section="YARN")

YARN_CONTAINER_VCORES = ConfigOption(
    "yarn.containers.vcores", int, -1,
    "Virtual cores requested for each TaskManager container. -1: taskmanager.numberOfTaskSlots.",
    min_value=-1, section="YARN")

YARN_APPMASTER_VCORES = ConfigOption(
    "yarn.appmaster.vcores", int, 1,
    "Virtual cores requested for the ApplicationMaster container, which runs the JobManager.",
    min_value=1, section="YARN")

YARN_MAXIMUM_FAILED_CONTAINERS = ConfigOption(
    "yarn.maximum-failed-containers", int, 10,
    "How many TaskManager containers may fail (exit, crash or get killed by YARN; idle "
    "TaskManagers that pyflow releases do not count) over the life of the application. Each "
    "failed container is replaced; the failure after the last allowed one fails the jobs that "
    "wait for slots, with the diagnostics of the failed containers.",
    min_value=0, section="YARN")

YARN_PROPERTIES_FILE_LOCATION = ConfigOption(
    "yarn.properties-file.location", str, "",
    "Folder of the properties file (.yarn-properties-<user>) in which yarn-session records the "
    "running session, for `pyflow run -t yarn-session`. Empty: the system's temporary folder.",
    section="YARN")

YARN_STAGING_DIRECTORY = ConfigOption(
    "yarn.staging-directory", str, "",
    "Folder on the cluster's file system (a URL: hdfs://namenode:8020/..., file:///...) where the "
    "client caches what it ships (pyflow, the job's files, the Python environment) under the hash "
    "of their content, so that a repeated submission uploads nothing new. Empty: "
    "<fs.defaultFS>/user/<user>/.pyflow, fs.defaultFS from $HADOOP_CONF_DIR/core-site.xml.",
    section="YARN")

YARN_PYTHON_ENVIRONMENT = ConfigOption(
    "yarn.python-environment", str, "",
    "A packed Python environment (a venv-pack or conda-pack archive: .tar.gz, .tgz or .zip; a "
    "local path or a URL on the cluster's file system) that runs the ApplicationMaster and the "
    "TaskManagers; YARN unpacks it in each container. Empty: the Python installed on the cluster's "
    "nodes (python.executable, else python3 on their PATH), which must have pyflow's dependencies. "
    "pyflow-specific.",
    section="YARN")

KERBEROS_LOGIN_PRINCIPAL = ConfigOption(
    "security.kerberos.login.principal", str, "",
    "Kerberos principal the YARN client (skein) logs in with, together with "
    "security.kerberos.login.keytab. Empty: the ticket cache (kinit).",
    section="YARN")

KERBEROS_LOGIN_KEYTAB = ConfigOption(
    "security.kerberos.login.keytab", str, "",
    "Keytab file of security.kerberos.login.principal.",
    section="YARN")


#: Every option declared above, by key, in declaration order.
ALL_OPTIONS: dict[str, ConfigOption] = build_registry(globals())
