"""Two-input operators on the real cluster: connect with CoMap / CoFlatMap / CoProcess, keyed
connected streams with state, and broadcast state."""

from __future__ import annotations

import pytest

import time

from pyflow import (
    CoFlatMapFunction, MapFunction, CoMapFunction, KeyedBroadcastProcessFunction, KeyedCoProcessFunction, ListStateDescriptor,
    MapStateDescriptor, ProgramError, ValueStateDescriptor,
)


class Tag(CoMapFunction):
    def map1(self, value):
        return ("left", value)

    def map2(self, value):
        return ("right", value)


class Split(CoFlatMapFunction):
    def flat_map1(self, value):
        yield from value.split()

    def flat_map2(self, value):
        yield value * 2


def test_co_map_and_co_flat_map(env):
    env.set_parallelism(2)
    left = env.from_collection([1, 2, 3])
    right = env.from_collection(["a", "b"])
    assert sorted(left.connect(right).map(Tag()).execute_and_collect()) == sorted(
        [("left", 1), ("left", 2), ("left", 3), ("right", "a"), ("right", "b")])
    words = env.from_collection(["to be", "or"])
    numbers = env.from_collection(["x"])
    assert sorted(words.connect(numbers).flat_map(Split()).execute_and_collect()) == ["be", "or", "to", "xx"]


class Enrich(KeyedCoProcessFunction):
    """Orders (customer, amount) meet customers (customer, name) by key; orders that come before
    their customer wait in list state."""

    def open(self, ctx):
        self.name = ctx.get_state(ValueStateDescriptor("name"))
        self.waiting = ctx.get_state(ListStateDescriptor("waiting"))

    def process_element1(self, order, ctx):
        if self.name.value() is None:
            self.waiting.add(order)
        else:
            yield (self.name.value(), order[1])

    def process_element2(self, customer, ctx):
        self.name.update(customer[1])
        for order in self.waiting.get():
            yield (customer[1], order[1])
        self.waiting.clear()


def test_keyed_connected_streams_share_state_per_key(env):
    env.set_parallelism(3)
    orders = env.from_collection([(c, a) for c in range(10) for a in (1, 2)])
    customers = env.from_collection([(c, f"customer-{c}") for c in range(10)])
    rows = list(orders.connect(customers).key_by(lambda o: o[0], lambda c: c[0]).process(Enrich()).execute_and_collect())
    assert sorted(rows) == sorted((f"customer-{c}", a) for c in range(10) for a in (1, 2))


RULES = MapStateDescriptor("rules")


class AfterRules(MapFunction):
    def open(self, ctx):
        time.sleep(0.5)

    def map(self, value):
        return value


class ApplyRules(KeyedBroadcastProcessFunction):
    def process_element(self, value, ctx):
        limit = ctx.get_broadcast_state(RULES).get("limit")
        if limit is not None and value[1] > limit:
            yield (ctx.get_current_key(), value[1], "over")

    def process_broadcast_element(self, rule, ctx):
        ctx.get_broadcast_state(RULES).put(rule[0], rule[1])
        return []


def test_broadcast_state_reaches_every_subtask():
    from pyflow.testing import test_cluster

    with test_cluster() as cluster:
        env = cluster.environment()
        env.set_parallelism(2)
        rules = env.from_collection([("limit", 50)]).broadcast(RULES)
        # Flink does not order a broadcast input against the other input: let the rule arrive
        # first (the value stream's mapper waits in open())
        values = env.from_generator(lambda i: (f"k{i % 4}", i * 10), count=20).map(AfterRules())
        rows = list(values.key_by(0).connect(rules).process(ApplyRules()).execute_and_collect())
    assert sorted(r[1] for r in rows) == [i * 10 for i in range(20) if i * 10 > 50]
    assert {r[0] for r in rows} == {"k0", "k1", "k2", "k3"}


def test_broadcast_state_is_read_only_on_the_element_side(env):
    class Writes(KeyedBroadcastProcessFunction):
        def process_element(self, value, ctx):
            ctx.get_broadcast_state(RULES).put("x", 1)

        def process_broadcast_element(self, value, ctx):
            return []

    from pyflow import JobExecutionError

    rules = env.from_collection([("limit", 1)]).broadcast(RULES)
    env.from_collection([("a", 1)]).key_by(0).connect(rules).process(Writes()).print()
    with pytest.raises(JobExecutionError, match="read-only in process_element"):
        env.execute()
    with pytest.raises(ProgramError, match="KeyedBroadcastProcessFunction"):
        env.from_collection([1]).key_by(lambda x: x).connect(rules).process(object())
