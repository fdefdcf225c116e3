"""The smallest job: `pyflow run benchmarks/trivial_job.py` measures the fixed cost of a run
(interpreter + imports, embedded cluster, one TaskManager process, deploy, finish, shut down)."""
from pyflow import StreamExecutionEnvironment

env = StreamExecutionEnvironment.get_execution_environment()
env.from_collection([1, 2, 3]).print()
env.execute("trivial")
