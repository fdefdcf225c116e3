"""What users import: the environment, streams, functions, sources and sinks."""

from pyflow.api.connectors import FileSink, FileSource
from pyflow.api.datastream import (
    BroadcastConnectedStream, BroadcastStream, ConnectedStreams, DataStream, DataStreamSink, KeyedStream,
    WindowedStream,
)
from pyflow.api.environment import RuntimeExecutionMode, StreamExecutionEnvironment
from pyflow.api.functions import (
    AggregateFunction, ProcessWindowFunction,
    CoMapFunction, CoFlatMapFunction, CoProcessFunction, KeyedCoProcessFunction, BroadcastProcessFunction, KeyedBroadcastProcessFunction,
    FilterFunction, FlatMapFunction, Function, KeyedProcessFunction, KeySelector, MapBatchesFunction,
    MapFunction, ProcessFunction, ReduceFunction,
)
from pyflow.api.job_client import JobClient, JobExecutionResult
from pyflow.api.watermarks import TimestampAssigner, WatermarkStrategy
from pyflow.api.windowing import (
    ContinuousEventTimeTrigger, CountTrigger, EventTimeSessionWindows, EventTimeTrigger, GlobalWindow, GlobalWindows, ProcessingTimeSessionWindows, ProcessingTimeTrigger, PurgingTrigger, SlidingEventTimeWindows, SlidingProcessingTimeWindows, TimeWindow, Trigger, TriggerResult, TumblingEventTimeWindows, TumblingProcessingTimeWindows, WindowAssigner,
)
from pyflow.runtime.operators.functions import OutputTag, RuntimeContext
from pyflow.state import (
    AggregatingStateDescriptor, ListStateDescriptor, MapStateDescriptor, ReducingStateDescriptor,
    ValueStateDescriptor,
)

__all__ = [
    "AggregateFunction", "ProcessWindowFunction",
    "BroadcastConnectedStream", "BroadcastStream", "ConnectedStreams", "WindowedStream",
    "CoMapFunction", "CoFlatMapFunction", "CoProcessFunction", "KeyedCoProcessFunction", "BroadcastProcessFunction", "KeyedBroadcastProcessFunction",
    "OutputTag",
    "ContinuousEventTimeTrigger", "CountTrigger", "EventTimeSessionWindows", "EventTimeTrigger", "GlobalWindow", "GlobalWindows", "ProcessingTimeSessionWindows", "ProcessingTimeTrigger", "PurgingTrigger", "SlidingEventTimeWindows", "SlidingProcessingTimeWindows", "TimeWindow", "Trigger", "TriggerResult", "TumblingEventTimeWindows", "TumblingProcessingTimeWindows", "WindowAssigner",
    "AggregatingStateDescriptor", "ListStateDescriptor", "MapStateDescriptor", "ReducingStateDescriptor",
    "ValueStateDescriptor",
    "DataStream", "DataStreamSink", "FileSink", "FileSource", "FilterFunction", "FlatMapFunction",
    "Function", "JobClient", "JobExecutionResult", "KeySelector", "KeyedProcessFunction",
    "KeyedStream", "MapBatchesFunction", "MapFunction", "ProcessFunction", "ReduceFunction",
    "RuntimeContext", "RuntimeExecutionMode", "StreamExecutionEnvironment", "TimestampAssigner",
    "WatermarkStrategy",
]
