"""pyflow: a Python-native batch and stream processing engine with Apache Flink's architecture.

>>> from pyflow import StreamExecutionEnvironment
>>> env = StreamExecutionEnvironment.get_execution_environment()
>>> _ = env.from_collection(["to be or not to be"]).flat_map(str.split).map(lambda w: (w, 1)) \\
...        .key_by(0).sum(1).print()
>>> # env.execute("word count")  runs it on the embedded local cluster
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Exports load on first use (PEP 562): a TaskManager, which imports pyflow.runtime, does not pay
# for the user-facing API, and `import pyflow` stays cheap.
_EXPORTS: dict[str, str] = {
    "AggregateFunction": "pyflow.api",
    "AggregatingStateDescriptor": "pyflow.api",
    "BroadcastProcessFunction": "pyflow.api",
    "CoFlatMapFunction": "pyflow.api",
    "CoMapFunction": "pyflow.api",
    "CoProcessFunction": "pyflow.api",
    "Configuration": "pyflow.config",
    "ConfigurationError": "pyflow.errors",
    "ContinuousEventTimeTrigger": "pyflow.api",
    "CountTrigger": "pyflow.api",
    "DataStream": "pyflow.api",
    "DataStreamSink": "pyflow.api",
    "EventTimeSessionWindows": "pyflow.api",
    "EventTimeTrigger": "pyflow.api",
    "FileSink": "pyflow.api",
    "FileSource": "pyflow.api",
    "FilterFunction": "pyflow.api",
    "FlatMapFunction": "pyflow.api",
    "Function": "pyflow.api",
    "GlobalWindow": "pyflow.api",
    "GlobalWindows": "pyflow.api",
    "JobCancellationError": "pyflow.errors",
    "JobClient": "pyflow.api",
    "JobExecutionError": "pyflow.errors",
    "JobExecutionResult": "pyflow.api",
    "JobStatus": "pyflow.runtime.messages",
    "KeySelector": "pyflow.api",
    "KeyedBroadcastProcessFunction": "pyflow.api",
    "KeyedCoProcessFunction": "pyflow.api",
    "KeyedProcessFunction": "pyflow.api",
    "KeyedStream": "pyflow.api",
    "ListStateDescriptor": "pyflow.api",
    "MapBatchesFunction": "pyflow.api",
    "MapFunction": "pyflow.api",
    "MapStateDescriptor": "pyflow.api",
    "NotYetSupportedError": "pyflow.errors",
    "OutputTag": "pyflow.api",
    "ProcessFunction": "pyflow.api",
    "ProcessWindowFunction": "pyflow.api",
    "ProcessingTimeSessionWindows": "pyflow.api",
    "ProcessingTimeTrigger": "pyflow.api",
    "ProgramError": "pyflow.errors",
    "PurgingTrigger": "pyflow.api",
    "PyflowError": "pyflow.errors",
    "RecordError": "pyflow.errors",
    "ReduceFunction": "pyflow.api",
    "ReducingStateDescriptor": "pyflow.api",
    "RuntimeContext": "pyflow.api",
    "RuntimeExecutionMode": "pyflow.api",
    "SerializationError": "pyflow.errors",
    "SlidingEventTimeWindows": "pyflow.api",
    "SlidingProcessingTimeWindows": "pyflow.api",
    "StreamExecutionEnvironment": "pyflow.api",
    "TimeWindow": "pyflow.api",
    "TimestampAssigner": "pyflow.api",
    "Trigger": "pyflow.api",
    "TriggerResult": "pyflow.api",
    "TumblingEventTimeWindows": "pyflow.api",
    "TumblingProcessingTimeWindows": "pyflow.api",
    "ValueStateDescriptor": "pyflow.api",
    "WatermarkStrategy": "pyflow.api",
    "WindowAssigner": "pyflow.api",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pyflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
