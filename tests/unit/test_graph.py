"""Graph compilation: Flink's chaining rules (one test per rule), slot sharing, plan JSON, and
the execution graph's wiring. Pure: nothing runs."""

from __future__ import annotations

import json

import pytest

from pyflow import ProgramError, StreamExecutionEnvironment
from pyflow.errors import SerializationError
from pyflow.graph.execution_graph import build_execution_graph, pointwise_consumers


@pytest.fixture
def env():
    return StreamExecutionEnvironment.get_execution_environment({"parallelism.default": 2})


def chains(env) -> list[list[str]]:
    job = env.get_job_graph(serialize=False)
    return [[op.name for op in v.operators] for v in job.vertices.values()]


# ---- chaining: one test per rule of is_chainable -------------------------------------------------


def test_forward_edges_of_equal_parallelism_chain(env):
    env.from_sequence(1, 10).map(lambda x: x).filter(lambda x: True).print()
    assert chains(env) == [["Source: Sequence Source", "Map", "Filter", "Print to Std. Out"]]


def test_key_by_breaks_the_chain(env):
    env.from_sequence(1, 10).map(lambda x: (x, 1)).key_by(0).sum(1).print()
    # the local half of the aggregation (BATCH combines before the exchange) chains to the map
    assert chains(env) == [["Source: Sequence Source", "Map", "Keyed Aggregation (local)"],
                           ["Keyed Aggregation", "Print to Std. Out"]]


@pytest.mark.parametrize("partition", ["rebalance", "rescale", "broadcast", "shuffle", "global_"])
def test_non_forward_partitioning_breaks_the_chain(env, partition):
    stream = env.from_sequence(1, 10).map(lambda x: x)
    getattr(stream, partition)().map(lambda x: x).print()
    assert chains(env) == [["Source: Sequence Source", "Map"], ["Map", "Print to Std. Out"]]


def test_parallelism_change_breaks_the_chain(env):
    env.from_sequence(1, 10).map(lambda x: x).set_parallelism(3).print()  # print: default 2
    job = env.get_job_graph(serialize=False)
    assert chains(env) == [["Source: Sequence Source"], ["Map"], ["Print to Std. Out"]]
    # Flink's default partitioner when the parallelism changes
    assert [e.partitioner.type for e in job.edges.values()] == ["rebalance", "rebalance"]


def test_start_new_chain_starts_a_chain_that_successors_join(env):
    env.from_sequence(1, 10).map(lambda x: x).map(lambda x: x).start_new_chain().map(lambda x: x).print()
    assert chains(env) == [["Source: Sequence Source", "Map"], ["Map", "Map", "Print to Std. Out"]]


def test_disable_chaining_isolates_the_operator(env):
    env.from_sequence(1, 10).map(lambda x: x).disable_chaining().map(lambda x: x).print()
    assert chains(env) == [["Source: Sequence Source"], ["Map"], ["Map", "Print to Std. Out"]]


def test_different_slot_sharing_groups_do_not_chain(env):
    env.from_sequence(1, 10).map(lambda x: x).slot_sharing_group("other").print()
    assert chains(env) == [["Source: Sequence Source"], ["Map", "Print to Std. Out"]]


def test_an_operator_with_two_inputs_does_not_chain(env):
    a = env.from_sequence(1, 10)
    b = env.from_sequence(11, 20)
    a.union(b).map(lambda x: x).print()
    assert chains(env) == [["Source: Sequence Source"], ["Source: Sequence Source"], ["Map", "Print to Std. Out"]]


def test_disabling_chaining_on_the_environment(env):
    env.disable_operator_chaining()
    env.from_sequence(1, 10).map(lambda x: x).print()
    assert chains(env) == [["Source: Sequence Source"], ["Map"], ["Print to Std. Out"]]


def test_flinks_classic_example_chains(env):
    # source -> map -> key_by/aggregate -> sink with a different parallelism
    (env.from_sequence(1, 100).map(lambda x: (x % 7, x)).key_by(0).sum(1)
        .print().set_parallelism(1))
    assert chains(env) == [["Source: Sequence Source", "Map", "Keyed Aggregation (local)"], ["Keyed Aggregation"],
                           ["Print to Std. Out"]]


def test_fan_out_keeps_both_branches_in_the_chain(env):
    mapped = env.from_sequence(1, 10).map(lambda x: x)
    mapped.filter(lambda x: x > 5).print()
    mapped.map(lambda x: -x).print()
    job = env.get_job_graph(serialize=False)
    (vertex,) = job.vertices.values()
    head = vertex.operators[1]  # the first Map
    assert len(head.chained_outputs) == 2


# ---- slot sharing ---------------------------------------------------------------------------------


def test_slot_sharing_needs_the_highest_parallelism_not_the_sum():
    env = StreamExecutionEnvironment.get_execution_environment({"parallelism.default": 6})
    env.from_sequence(1, 100).rebalance().map(lambda x: x).rebalance().print()
    job = env.get_job_graph(serialize=False)
    assert len(job.vertices) == 3
    assert job.required_slots() == 6  # not 18


def test_named_slot_sharing_groups_add_their_slots():
    env = StreamExecutionEnvironment.get_execution_environment({"parallelism.default": 4})
    stream = env.from_sequence(1, 100).map(lambda x: x)
    stream.rebalance().map(lambda x: x).set_parallelism(2).slot_sharing_group("heavy").print().set_parallelism(2)
    job = env.get_job_graph(serialize=False)
    assert job.slot_sharing_groups() == {"default": 4, "heavy": 2}
    assert job.required_slots() == 6


def test_downstream_operators_inherit_the_slot_sharing_group(env):
    env.from_sequence(1, 10).slot_sharing_group("g").map(lambda x: x).print()
    job = env.get_job_graph(serialize=False)
    assert {v.slot_sharing_group for v in job.vertices.values()} == {"g"}


def test_subtasks_share_slots_by_index():
    env = StreamExecutionEnvironment.get_execution_environment({"parallelism.default": 3})
    env.from_sequence(1, 10).rebalance().map(lambda x: x).print()
    graph = build_execution_graph(env.get_job_graph(serialize=False))
    by_slot = graph.by_slot()
    assert len(by_slot) == 3
    for slot, vertices in by_slot.items():
        assert {v.id.subtask_index for v in vertices} == {slot.index}
        assert len(vertices) == 2  # one subtask of each vertex


# ---- wiring --------------------------------------------------------------------------------------


def test_all_to_all_edges_connect_every_producer_to_every_consumer():
    env = StreamExecutionEnvironment.get_execution_environment({"parallelism.default": 3})
    env.from_sequence(1, 10).map(lambda x: (x, 1)).key_by(0).sum(1).set_parallelism(2).print()
    graph = build_execution_graph(env.get_job_graph(serialize=False))
    consumers = [v for v in graph.vertices.values() if v.job_vertex.name.startswith("Keyed")]
    assert len(consumers) == 2
    for v in consumers:
        assert sorted(c.producer.subtask_index for c in v.inputs) == [0, 1, 2]
        assert {c.subpartition_index for c in v.inputs} == {v.id.subtask_index}


@pytest.mark.parametrize("p_up,p_down,expected", [
    (2, 2, [(0,), (1,)]),
    (4, 2, [(0,), (0,), (1,), (1,)]),
    (2, 4, [(0, 1), (2, 3)]),
    (2, 3, [(0, 1), (2,)]),   # Flink: ceil(0*1.5)=0..ceil(1.5)=2, then 2..3
    (3, 2, [(0,), (1,), (1,)]),
])
def test_pointwise_connections_follow_flink(p_up, p_down, expected):
    assert [pointwise_consumers(i, p_up, p_down) for i in range(p_up)] == expected


def test_rescale_wires_pointwise():
    env = StreamExecutionEnvironment.get_execution_environment({"parallelism.default": 4})
    env.from_sequence(1, 10).rescale().map(lambda x: x).set_parallelism(2).print()
    graph = build_execution_graph(env.get_job_graph(serialize=False))
    maps = sorted((v for v in graph.vertices.values() if v.job_vertex.name.startswith("Map")),
                  key=lambda v: v.id.subtask_index)
    assert [sorted(c.producer.subtask_index for c in v.inputs) for v in maps] == [[0, 1], [2, 3]]


# ---- errors and plan -----------------------------------------------------------------------------


def test_forward_with_a_parallelism_change_is_rejected(env):
    env.from_sequence(1, 10).forward().map(lambda x: x).set_parallelism(3).print()
    with pytest.raises(ProgramError, match="Forward partitioning does not allow a change of parallelism"):
        env.get_job_graph(serialize=False)


def test_non_parallel_source_rejects_parallelism(env):
    env.from_collection([1, 2]).set_parallelism(2).print()
    with pytest.raises(ProgramError, match="non-parallel operator"):
        env.get_job_graph(serialize=False)


def test_empty_program_is_rejected(env):
    with pytest.raises(ProgramError, match="No operators defined"):
        env.get_job_graph(serialize=False)


def test_parallelism_above_max_parallelism_is_rejected():
    env = StreamExecutionEnvironment.get_execution_environment({"pipeline.max-parallelism": 4})
    env.from_sequence(1, 10).map(lambda x: x).set_parallelism(8).print()
    with pytest.raises(ProgramError, match="maximum parallelism"):
        env.get_job_graph(serialize=False)


def test_unpicklable_function_fails_at_submission_naming_it(env):
    import threading

    lock = threading.Lock()

    def uses_a_lock(x):
        with lock:
            return x

    env.from_sequence(1, 10).map(uses_a_lock).print()
    with pytest.raises(SerializationError, match="uses_a_lock"):
        env.get_job_graph()


def test_execution_plan_is_json_with_stream_and_job_graph(env):
    env.from_sequence(1, 10).map(lambda x: (x, 1)).name("pairs").key_by(0).sum(1).uid("sums").print()
    plan = json.loads(env.get_execution_plan())
    types = [n["type"] for n in plan["streamGraph"]["nodes"]]
    assert types == ["Source: Sequence Source", "pairs", "Keyed Aggregation (local)", "Keyed Aggregation",
                     "Print to Std. Out"]
    agg = plan["streamGraph"]["nodes"][3]
    assert agg["predecessors"] == [{"id": plan["streamGraph"]["nodes"][2]["id"], "ship_strategy": "HASH",
                                    "side": "second"}]
    chains_ = [n["operators"] for n in plan["jobGraph"]["nodes"]]
    assert chains_ == [["Source: Sequence Source", "pairs", "Keyed Aggregation (local)"],
                       ["Keyed Aggregation", "Print to Std. Out"]]
    assert plan["jobGraph"]["requiredSlots"] == 2
