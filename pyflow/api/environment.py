"""StreamExecutionEnvironment: where a program declares its sources and runs its jobs.

>>> from pyflow import StreamExecutionEnvironment
>>> env = StreamExecutionEnvironment.get_execution_environment()
>>> env.set_parallelism(2)                                           # doctest: +ELLIPSIS
<pyflow.api.environment.StreamExecutionEnvironment object at ...>
>>> env.from_sequence(1, 10).map(lambda x: x * x).print()           # doctest: +ELLIPSIS
<pyflow.api.datastream.DataStreamSink object at ...>
>>> result = env.execute("squares")                                  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import uuid
from typing import Any, Callable, Sequence

import pyarrow as pa

from pyflow.api.connectors import FileSource
from pyflow.api.datastream import DataStream
from pyflow.api.durations import non_negative_millis
from pyflow.api.job_client import DetachedJobExecutionResult, JobClient, JobExecutionResult, JobListener
from pyflow.config import Configuration, options
from pyflow.errors import ProgramError
from pyflow.graph.job_graph import JobGraph, build_job_graph
from pyflow.graph.stream_graph import StreamGraph, build_stream_graph
from pyflow.graph.transformations import Transformation
from pyflow.runtime.operators.sources import CollectionSource, GeneratorSource, SequenceSource


class RuntimeExecutionMode:
    """Flink's RuntimeExecutionMode (``execution.runtime-mode``)."""

    STREAMING = "STREAMING"
    BATCH = "BATCH"
    AUTOMATIC = "AUTOMATIC"


# Set by `pyflow run` / `pyflow info` before the job file runs (Flink's ContextEnvironment): the
# CLI's options apply to every environment the program creates, and its listeners hear of every job.
_context_configuration: Configuration | None = None
_context_plan_only = False
_context_listeners: tuple[JobListener, ...] = ()


class PlanCaptured(Exception):
    """Raised by execute() under `pyflow info`: carries the job graph instead of running it."""

    def __init__(self, job_graph: JobGraph):
        super().__init__(job_graph.job_name)
        self.job_graph = job_graph


def set_context_configuration(conf: Configuration | None, *, plan_only: bool = False,
                              listeners: Sequence[JobListener] = ()) -> None:
    global _context_configuration, _context_plan_only, _context_listeners
    _context_configuration = conf
    _context_plan_only = plan_only
    _context_listeners = tuple(listeners)


class StreamExecutionEnvironment:
    def __init__(self, configuration: Configuration | None = None):
        base = (_context_configuration or Configuration.load()).copy()
        self._config = base.merged(configuration) if configuration is not None else base
        self._transformations: list[Transformation] = []
        self._chaining_enabled = True
        self._cluster = None  # set by LocalCluster.environment()
        self._listeners: list[JobListener] = list(_context_listeners)

    @staticmethod
    def get_execution_environment(configuration: Configuration | dict | None = None) -> StreamExecutionEnvironment:
        if isinstance(configuration, dict):
            configuration = Configuration(configuration)
        return StreamExecutionEnvironment(configuration)

    # ---- settings --------------------------------------------------------------------------------

    def get_config(self) -> Configuration:
        return self._config

    def configure(self, settings: dict[str, Any]) -> StreamExecutionEnvironment:
        """Set options by key, as ``-D`` would: ``env.configure({"execution.batch-size": 4096})``."""
        for key, value in settings.items():
            self._config.set(key, value)
        return self

    def set_parallelism(self, parallelism: int) -> StreamExecutionEnvironment:
        self._config.set(options.PARALLELISM, parallelism)
        return self

    def get_parallelism(self) -> int:
        return self._config.get(options.PARALLELISM)

    def set_max_parallelism(self, max_parallelism: int) -> StreamExecutionEnvironment:
        self._config.set(options.MAX_PARALLELISM, max_parallelism)
        return self

    def get_max_parallelism(self) -> int:
        return self._config.get(options.MAX_PARALLELISM)

    def set_runtime_mode(self, mode: str) -> StreamExecutionEnvironment:
        self._config.set(options.RUNTIME_MODE, mode)
        return self

    def set_buffer_timeout(self, timeout: int | datetime.timedelta) -> StreamExecutionEnvironment:
        """Longest time a partly filled batch waits before it is sent (milliseconds or timedelta)."""
        ms = non_negative_millis(timeout, "set_buffer_timeout(timeout)", allow_zero=True)
        self._config.set(options.BUFFER_TIMEOUT, datetime.timedelta(milliseconds=ms))
        return self

    def disable_operator_chaining(self) -> StreamExecutionEnvironment:
        self._chaining_enabled = False
        return self

    def is_chaining_enabled(self) -> bool:
        return self._chaining_enabled

    # ---- sources ---------------------------------------------------------------------------------

    def _add(self, t: Transformation) -> None:
        self._transformations.append(t)

    def _source(self, name: str, operator, non_parallel: bool = False) -> DataStream:
        t = Transformation(kind="source", name=name, operator=operator, non_parallel=non_parallel)
        self._add(t)
        return DataStream(self, t)

    def from_collection(self, collection: Sequence[Any], output_schema: pa.Schema | None = None) -> DataStream:
        """A bounded, non-parallel source of the given records, in order."""
        try:
            items = list(collection)
        except TypeError:
            raise ProgramError(f"from_collection() needs an iterable, got {type(collection).__name__}") from None
        name = "Source: Collection Source"
        return self._source(name, CollectionSource(name, items, output_schema), non_parallel=True)

    def from_sequence(self, start: int, end: int) -> DataStream:
        """The numbers ``start`` to ``end`` inclusive, as a parallel bounded source."""
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or end < start:
            raise ProgramError(f"from_sequence(start, end) needs integers with start <= end, got {start!r}, {end!r}")
        name = "Source: Sequence Source"
        return self._source(name, SequenceSource(name, start, end))

    def from_generator(self, function: Callable[[int], Any], count: int | None = None,
                       rate: float | None = None, output_schema: pa.Schema | None = None,
                       source_name: str = "Generator Source") -> DataStream:
        """Records ``function(0)``, ``function(1)``, ... (Flink's DataGeneratorSource).

        ``count`` None makes the source unbounded; ``rate`` limits records per second over all
        subtasks.
        """
        if not callable(function):
            raise ProgramError(f"from_generator() needs a function of the record index, got {function!r}")
        if count is not None and (not isinstance(count, int) or count < 0):
            raise ProgramError(f"from_generator(count=...) must be a non-negative integer or None, got {count!r}")
        if rate is not None and (not isinstance(rate, (int, float)) or rate <= 0):
            raise ProgramError(f"from_generator(rate=...) must be a positive number of records per second, got {rate!r}")
        name = f"Source: {source_name}"
        return self._source(name, GeneratorSource(name, function, count, rate, output_schema))

    def from_source(self, source: Any, watermark_strategy: Any = None, source_name: str | None = None) -> DataStream:
        """A source object such as ``FileSource(...)``, with event timestamps and watermarks from
        ``watermark_strategy`` (a WatermarkStrategy) when given."""
        create = getattr(source, "create_operator", None)
        if create is None:
            raise ProgramError(f"from_source() needs a source such as FileSource, got {type(source).__name__}")
        name = f"Source: {source_name or type(source).__name__}"
        stream = self._source(name, create(name))
        if watermark_strategy is not None:
            stream = stream.assign_timestamps_and_watermarks(watermark_strategy)
        return stream

    def read_files(self, path: Any, format: str | None = None, **options: Any) -> DataStream:
        """Shorthand for ``from_source(FileSource(path, format, **options))``."""
        return self.from_source(FileSource(path, format, **options), source_name="File Source")

    # ---- compilation -----------------------------------------------------------------------------

    def _batch_mode(self) -> bool:
        mode = self._config.get(options.RUNTIME_MODE)
        sources = [t for t in _reachable(self._transformations) if t.kind == "source"]
        unbounded = [t.name for t in sources if not getattr(t.operator, "bounded", True)]
        if mode == RuntimeExecutionMode.AUTOMATIC:
            return not unbounded
        if mode == RuntimeExecutionMode.BATCH and unbounded:
            raise ProgramError(
                f"BATCH execution needs bounded sources, but {', '.join(map(repr, unbounded))} "
                "is unbounded; give it a count, or run in STREAMING (or AUTOMATIC) mode")
        return mode == RuntimeExecutionMode.BATCH

    def get_stream_graph(self, job_name: str | None = None) -> StreamGraph:
        return build_stream_graph(
            self._transformations, job_name=job_name or self._default_job_name(),
            default_parallelism=self.get_parallelism(), default_max_parallelism=self.get_max_parallelism(),
            chaining_enabled=self._chaining_enabled, batch_mode=self._batch_mode())

    def get_job_graph(self, job_name: str | None = None, *, serialize: bool = True) -> JobGraph:
        stream_graph = self.get_stream_graph(job_name)
        job_graph = build_job_graph(stream_graph, uuid.uuid4().hex, serialize=serialize)
        buffer_timeout = self._config.get(options.BUFFER_TIMEOUT)
        job_graph.settings = {
            "batch_mode": stream_graph.batch_mode,
            "batch_size": self._config.get(options.BATCH_SIZE),
            "buffer_timeout_ms": buffer_timeout.total_seconds() * 1000,
            "auto_watermark_interval_ms": self._config.get(options.AUTO_WATERMARK_INTERVAL).total_seconds() * 1000,
            "user_paths": _user_paths(),
        }
        job_graph.config = self._config.to_dict()
        return job_graph

    def get_execution_plan(self) -> str:
        """The plan as JSON: the stream graph (Flink's format) and the job graph with its chains."""
        return json.dumps(self.get_job_graph(serialize=False).plan, indent=2)

    def _default_job_name(self) -> str:
        return self._config.get(options.PIPELINE_NAME) or "pyflow job"

    # ---- execution -------------------------------------------------------------------------------

    def register_job_listener(self, listener: JobListener) -> StreamExecutionEnvironment:
        """Tell ``listener`` (a JobListener) of every job this environment submits, and of the end
        of every attached ``execute()``."""
        self._listeners.append(listener)
        return self

    def execute_async(self, job_name: str | None = None) -> JobClient:
        """Submit the job to ``execution.target`` and return its JobClient without waiting."""
        if _context_plan_only:
            raise PlanCaptured(self.get_job_graph(job_name, serialize=False))
        job_graph = self.get_job_graph(job_name)
        self._transformations = []
        try:
            if self._cluster is not None:
                from pyflow.deploy.executors import submit_to_cluster

                client = submit_to_cluster(self._cluster, job_graph)
            else:
                client = self._executor().execute(job_graph, self._config)
        except BaseException as e:
            for listener in self._listeners:
                listener.on_job_submitted(None, e)
            raise
        for listener in self._listeners:
            listener.on_job_submitted(client, None)
        return client

    def execute(self, job_name: str | None = None) -> JobExecutionResult:
        """Run the job and wait for it; raises JobExecutionError with the user's traceback if it
        fails. Detached (``execution.attached: false``) it returns once the job is submitted."""
        client = self.execute_async(job_name)
        if not self._config.get(options.ATTACHED):
            detached = DetachedJobExecutionResult(client.job_id, job_name or self._default_job_name())
            self._executed(detached, None)
            return detached
        try:
            result = client.get_job_execution_result()
        except KeyboardInterrupt as e:
            client.cancel()
            self._executed(None, e)
            raise
        except BaseException as e:
            self._executed(None, e)
            raise
        self._executed(result, None)
        return result

    def _executed(self, result: JobExecutionResult | None, error: BaseException | None) -> None:
        for listener in self._listeners:
            listener.on_job_executed(result, error)

    def _executor(self):
        """The pipeline executor of ``execution.target`` (pyflow.deploy.executors)."""
        from pyflow.deploy.executors import executor_for

        return executor_for(self._config.get(options.TARGET))

    def _collect_address(self) -> str:
        """Where execute_and_collect()'s result socket listens: an address the TaskManagers reach."""
        if self._cluster is not None:
            return "127.0.0.1"
        return self._executor().collect_address(self._config)


def _reachable(transformations: list[Transformation]) -> list[Transformation]:
    seen: dict[int, Transformation] = {}
    stack = list(transformations)
    while stack:
        t = stack.pop()
        if t.id not in seen:
            seen[t.id] = t
            stack.extend(t.inputs)
    return list(seen.values())


def _user_paths() -> list[str]:
    """Folders the TaskManagers add to sys.path so that the job's own modules import there too."""
    paths = [os.getcwd()]
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main_file:
        paths.insert(0, os.path.dirname(os.path.abspath(main_file)))
    return paths
