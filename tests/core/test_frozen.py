"""slot_init: a frozen dataclass's __init__ that sets its slots directly builds the very
value the generated one builds, with the same signature, and refuses what it cannot mirror."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import InitVar, dataclass, field

import pytest

from scaler.core.actions import Decision, Drain, DrainCause, MarkIdle
from scaler.core.frozen import slot_init
from scaler.core.state import ClusterView, Node

_made: list[str] = []


def _shape() -> type:
    """A class with every kind of field slot_init mirrors: required, default, default
    factory, keyword-only, and a __post_init__."""

    @dataclass(frozen=True, slots=True)
    class Shape:
        name: str
        size: int = 3
        tags: list[str] = field(default_factory=lambda: ["fresh"])
        weight: float = field(default=1.5, kw_only=True)
        label: str = field(kw_only=True)

        def __post_init__(self) -> None:
            _made.append(self.name)

    return Shape


def test_a_value_built_by_slot_init_equals_the_generated_ones() -> None:
    plain, quick = _shape(), slot_init(_shape())
    assert inspect.signature(quick) == inspect.signature(plain)
    assert quick.__init__.__annotations__ == plain.__init__.__annotations__  # type: ignore[misc]
    _made.clear()
    for args, kw in [
        (("a",), {"label": "x"}),
        (("b", 7, ["t"]), {"weight": 2.0, "label": "y"}),
        ((), {"name": "c", "label": "z", "size": 0}),
    ]:
        mine, theirs = quick(*args, **kw), plain(*args, **kw)
        assert repr(mine).split("(", 1)[1] == repr(theirs).split("(", 1)[1]
        assert dataclasses.astuple(mine) == dataclasses.astuple(theirs)
    assert _made == ["a", "a", "b", "b", "c", "c"]  # __post_init__ ran for both


def test_each_value_gets_its_own_default_factory_result() -> None:
    quick = slot_init(_shape())
    one, two = quick("a", label="x"), quick("b", label="y")
    assert one.tags == ["fresh"] and one.tags is not two.tags


def test_a_value_built_by_slot_init_stays_frozen_hashable_and_picklable() -> None:
    node = Node("n", "pool", "m5.large", "on-demand", annotations=(("k", "v"),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.name = "other"  # type: ignore[misc]
    assert hash(node) == hash(dataclasses.replace(node))
    assert pickle.loads(pickle.dumps(node)) == node
    assert MarkIdle("n", 1.0) == MarkIdle(node="n", since_s=1.0)


def test_the_core_values_keep_their_arguments() -> None:
    with pytest.raises(TypeError, match="keyword-only argument: 'cause'"):
        Drain("n", (), 1.0, "r")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Decision()  # type: ignore[call-arg]
    drain = Drain("n", (), 1.0, "r", cause=DrainCause.RESUMED)
    assert (drain.hook, drain.terminate) == (None, False)
    view = ClusterView(5.0)
    assert view.nodes == () and view.reported_allocatable == {}
    assert view.indexes is not ClusterView(5.0).indexes  # a fresh set per view


def test_slot_init_refuses_a_class_it_cannot_mirror() -> None:
    @dataclass(slots=True)
    class Mutable:
        x: int

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        x: int
        scale: InitVar[int] = 1

        def __post_init__(self, scale: int) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class NotInInit:
        x: int
        y: int = field(default=0, init=False)

    for cls in (Mutable, NoSlots, WithInitVar, NotInInit):
        with pytest.raises(TypeError, match="slot_init"):
            slot_init(cls)
