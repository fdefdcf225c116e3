"""Transformations: what the DataStream API records, before any compilation.

Each DataStream call appends one ``Transformation`` (Flink's ``Transformation`` hierarchy, here a
single class with a ``kind``). Physical kinds (``source``, ``operator``, ``sink``) hold a runtime
operator; virtual kinds (``partition``, ``union``, ``side`` - a side output of its input) only
change how their inputs connect and vanish when the StreamGraph is built.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Any

from pyflow.runtime.operators.base import StreamOperator


class ChainingStrategy(enum.Enum):
    """Flink's ChainingStrategy: may an operator join the chain of its predecessor?"""

    ALWAYS = "ALWAYS"  # chain with predecessor and successors where the rules allow
    HEAD = "HEAD"  # start a new chain, successors may chain to it (start_new_chain())
    NEVER = "NEVER"  # neither (disable_chaining())


PARTITIONER_TYPES = ("forward", "rebalance", "rescale", "shuffle", "broadcast", "global", "hash")
POINTWISE_PARTITIONERS = ("forward", "rescale")


@dataclass(frozen=True)
class PartitionerSpec:
    """How records of one edge are distributed over the consumer's subtasks."""

    type: str
    key_selector: Any = None  # a KeySelector for "hash"

    def __post_init__(self) -> None:
        if self.type not in PARTITIONER_TYPES:
            raise ValueError(f"unknown partitioner {self.type!r}; one of {PARTITIONER_TYPES}")

    @property
    def pointwise(self) -> bool:
        return self.type in POINTWISE_PARTITIONERS

    @property
    def ship_strategy(self) -> str:
        """Flink's name for the edge in execution plans."""
        return {"hash": "HASH", "rebalance": "REBALANCE", "rescale": "RESCALE", "shuffle": "SHUFFLE",
                "broadcast": "BROADCAST", "global": "GLOBAL", "forward": "FORWARD"}[self.type]


_ids = itertools.count(1)


def new_transformation_id() -> int:
    return next(_ids)


@dataclass(eq=False)
class Transformation:
    """One node of the user's program.

    ``parallelism`` None means "the environment's default"; ``max_parallelism`` likewise.
    """

    kind: str  # source | operator | sink | partition | union | side
    name: str
    inputs: list[Transformation] = field(default_factory=list)
    operator: StreamOperator | None = None
    partitioner: PartitionerSpec | None = None
    parallelism: int | None = None
    max_parallelism: int | None = None
    uid: str | None = None
    chaining_strategy: ChainingStrategy = ChainingStrategy.ALWAYS
    slot_sharing_group: str | None = None
    #: a source that only runs with parallelism 1 (like Flink's non-parallel sources)
    non_parallel: bool = False
    #: for kind "side": the output tag of the input operator this stream selects
    side_tag: str | None = None
    id: int = field(default_factory=new_transformation_id)

    @property
    def is_virtual(self) -> bool:
        return self.kind in ("partition", "union", "side")

    def __repr__(self) -> str:
        return f"Transformation({self.id}, {self.kind}, {self.name!r})"
