"""pyflow: a Python-native batch and stream processing engine with Apache Flink's architecture.

>>> from pyflow import StreamExecutionEnvironment
>>> env = StreamExecutionEnvironment.get_execution_environment()
>>> _ = env.from_collection(["to be or not to be"]).flat_map(str.split).map(lambda w: (w, 1)) \\
...        .key_by(0).sum(1).print()
>>> # env.execute("word count")  runs it on the embedded local cluster
"""

from pyflow.api import (
    AggregateFunction, ProcessWindowFunction,
    CoMapFunction, CoFlatMapFunction, CoProcessFunction, KeyedCoProcessFunction, BroadcastProcessFunction, KeyedBroadcastProcessFunction,
    OutputTag,
    ContinuousEventTimeTrigger, CountTrigger, EventTimeSessionWindows, EventTimeTrigger, GlobalWindow, GlobalWindows, ProcessingTimeSessionWindows, ProcessingTimeTrigger, PurgingTrigger, SlidingEventTimeWindows, SlidingProcessingTimeWindows, TimeWindow, Trigger, TriggerResult, TumblingEventTimeWindows, TumblingProcessingTimeWindows, WindowAssigner,
    AggregatingStateDescriptor, ListStateDescriptor, MapStateDescriptor, ReducingStateDescriptor,
    ValueStateDescriptor,
    DataStream, DataStreamSink, FileSink, FileSource, FilterFunction, FlatMapFunction, Function,
    JobClient, JobExecutionResult, KeyedProcessFunction, KeyedStream, KeySelector, MapBatchesFunction,
    MapFunction, ProcessFunction, ReduceFunction, RuntimeContext, RuntimeExecutionMode,
    StreamExecutionEnvironment, TimestampAssigner, WatermarkStrategy,
)
from pyflow.config import Configuration
from pyflow.errors import (
    ConfigurationError, JobCancellationError, JobExecutionError, NotYetSupportedError, ProgramError,
    PyflowError, RecordError, SerializationError,
)
from pyflow.runtime.messages import JobStatus

__version__ = "0.1.0"

__all__ = [
    "SerializationError",
    "AggregateFunction", "ProcessWindowFunction",
    "CoMapFunction", "CoFlatMapFunction", "CoProcessFunction", "KeyedCoProcessFunction", "BroadcastProcessFunction", "KeyedBroadcastProcessFunction",
    "OutputTag",
    "ContinuousEventTimeTrigger", "CountTrigger", "EventTimeSessionWindows", "EventTimeTrigger", "GlobalWindow", "GlobalWindows", "ProcessingTimeSessionWindows", "ProcessingTimeTrigger", "PurgingTrigger", "SlidingEventTimeWindows", "SlidingProcessingTimeWindows", "TimeWindow", "Trigger", "TriggerResult", "TumblingEventTimeWindows", "TumblingProcessingTimeWindows", "WindowAssigner",
    "AggregatingStateDescriptor", "ListStateDescriptor", "MapStateDescriptor", "ReducingStateDescriptor",
    "ValueStateDescriptor",
    "Configuration", "ConfigurationError", "DataStream", "DataStreamSink", "FileSink", "FileSource",
    "FilterFunction", "FlatMapFunction", "Function", "JobCancellationError", "JobClient",
    "JobExecutionError", "JobExecutionResult", "JobStatus", "KeySelector", "KeyedProcessFunction",
    "KeyedStream", "MapBatchesFunction", "MapFunction", "NotYetSupportedError", "ProcessFunction",
    "ProgramError", "PyflowError", "RecordError", "ReduceFunction", "RuntimeContext",
    "RuntimeExecutionMode", "StreamExecutionEnvironment", "TimestampAssigner", "WatermarkStrategy",
    "__version__",
]
