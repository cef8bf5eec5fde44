"""Acting on a decision, one handler per action, against recording fake ports.

These are unit tests of dispatch: each handler's calls to the ports, what it reports and
what it hands to memory. The ports' real behaviour is tested in tests/adapters and
tests/contracts; the handlers in a whole loop in tests/simulations and tests/e2e.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

import anyio
import pytest

from scaler.core.actions import (
    Action,
    Cordon,
    Decision,
    Drain,
    DrainCause,
    Evict,
    Forget,
    GiveUpLaunch,
    LabelNode,
    Limit,
    MarkIdle,
    NotifyUnplaceable,
    RemoveNode,
    ScaleUp,
    Uncordon,
    Untaint,
)
from scaler.core.memory import Memory
from scaler.core.model import NO_SCHEDULE, PodSpec, Taint
from scaler.core.settings import Settings
from scaler.core.state import (
    ANNOTATION_DRAIN_DEADLINE,
    ANNOTATION_IDLE_SINCE,
    TAINT_REMOVING,
    BoundPod,
    ClusterView,
    Node,
    PendingPod,
)
from scaler.loop import actuation
from scaler.loop.actuation import (
    BACKOFF_RETRY_S,
    GIVE_UP_RETICK_S,
    HANDLERS,
    LIMIT_EVENTS,
    WRITE_RETRY_S,
    Act,
)
from scaler.ports import NotFound, PortError, Rejected, Throttled
from scaler.telemetry import by_name

NOW = 1000.0


class Ports:
    """Actuator, fleet, cluster source and clock in one: records every call as
    ``(method, args...)``; ``fail[method]`` is raised by that method's next call."""

    def __init__(self, view: ClusterView, *, live: ClusterView | None = None) -> None:
        self.view = view
        self.live = live or view
        self.calls: list[tuple[Any, ...]] = []
        self.fail: dict[str, PortError] = {}
        self.given_back = 0

    def _call(self, method: str, *args: Any) -> None:
        self.calls.append((method, *args))
        error = self.fail.pop(method, None)
        if error is not None:
            raise error

    def named(self, method: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == method]

    # Actuator
    async def annotate_node(self, node: str, key: str, value: str | None) -> None:
        self._call("annotate_node", node, key, value)

    async def label_node(self, node: str, key: str, value: str) -> None:
        self._call("label_node", node, key, value)

    async def record_event(self, pod: PodSpec, reason: str, message: str, *, warning: bool) -> None:
        self._call("record_event", pod.key, reason, message, warning)

    async def cordon(self, node: str) -> None:
        self._call("cordon", node)

    async def uncordon(self, node: str) -> None:
        self._call("uncordon", node)

    async def taint(self, node: str, taint: Taint) -> None:
        self._call("taint", node, taint.key)

    async def untaint(self, node: str, key: str, effect: str | None = None) -> None:
        self._call("untaint", node, key)

    async def evict(self, pod: PodSpec, *, grace_period_s: int | None = None) -> None:
        self._call("evict", pod.key)

    # Fleet
    async def set_desired(self, pool: str, desired: int) -> None:
        self._call("set_desired", pool, desired)

    async def terminate(self, node: Node) -> None:
        self._call("terminate", node.name)

    async def give_up(self, pool: str, count: int, keep: Collection[str]) -> int:
        self._call("give_up", pool, count, frozenset(keep))
        return self.given_back

    async def complete_lifecycle(self, hook: Any) -> None:
        self._call("complete_lifecycle", hook)

    # ClusterSource
    async def snapshot(self) -> ClusterView:
        self._call("snapshot")
        return self.live

    def staleness_s(self) -> float:
        return 0.0

    async def pods_on(self, node: str) -> Sequence[BoundPod]:
        self._call("pods_on", node)
        return [b for b in self.live.bound if b.node == node]

    # Clock
    def now(self) -> float:
        return NOW

    async def sleep_until(self, t: float) -> None:
        return None


def pod(name: str, namespace: str = "ns") -> PodSpec:
    return PodSpec(name, namespace=namespace)


def node(name: str, pool: str | None = "cpu", *, instance: str | None = None,
         ready: bool = True) -> Node:
    return Node(name, pool, "m5.large", "on-demand", instance_id=instance, ready=ready)


def acting(
    actions: Sequence[Action],
    view: ClusterView | None = None,
    *,
    memory: Memory | None = None,
    live: ClusterView | None = None,
    spawn: Callable[[Callable[[], Awaitable[None]]], None] | None = None,
) -> tuple[Act, Ports, list[tuple[str, dict[str, object]]], list[float]]:
    view = view or ClusterView(now_s=NOW)
    ports = Ports(view, live=live)
    seen: list[tuple[str, dict[str, object]]] = []
    retries: list[float] = []
    a = Act(
        cluster=ports, fleet=ports, actuator=ports, clock=ports,  # type: ignore[arg-type]
        memory=memory or Memory(), settings=Settings(),
        observe=by_name(lambda e, f: seen.append((e, f))),
        decision=Decision(now_s=NOW, actions=tuple(actions)), view=view,
        retry=retries.append, spawn=spawn,
    )
    return a, ports, seen, retries


def handle(a: Act, action: Action) -> None:
    anyio.run(HANDLERS[type(action)], a, action)


def test_every_action_but_scale_up_has_a_handler_and_scale_ups_are_batched():
    kinds = set(typing.get_args(Action))
    assert set(HANDLERS) == kinds - {ScaleUp}


def test_a_pools_scale_ups_are_one_write_then_each_is_remembered_and_announced():
    ups = [
        ScaleUp("cpu", 2, ("ns/a",), "m5.large", 0.096, "fits"),
        ScaleUp("cpu", 1, ("ns/b",), "m5.large", 0.096, "fits"),
        ScaleUp("gpu", 1, ("ns/c",), "g5.xlarge", 1.006, "fits"),
    ]
    view = ClusterView(now_s=NOW, pending=tuple(PendingPod(pod(n), 900.0) for n in "abc"))
    a, ports, seen, retries = acting(ups, view)
    anyio.run(actuation.act, a, {"cpu": 3, "gpu": 0})
    assert ports.named("set_desired") == [("set_desired", "cpu", 6), ("set_desired", "gpu", 1)]
    assert [(launch.pool, launch.count) for launch in a.memory.launches] == [
        ("cpu", 2), ("cpu", 1), ("gpu", 1)
    ]
    assert [e for e, _ in seen] == ["scale_up"] * 3
    assert [c[1:3] for c in ports.named("record_event")] == [
        ("ns/a", "TriggeredScaleUp"), ("ns/b", "TriggeredScaleUp"), ("ns/c", "TriggeredScaleUp")
    ]
    assert retries == []


def test_a_refused_write_backs_off_tells_the_pods_and_asks_for_a_tick_soon():
    up = ScaleUp("cpu", 1, ("ns/a",), "m5.large", 0.096, "fits")
    view = ClusterView(now_s=NOW, pending=(PendingPod(pod("a"), 900.0),))
    a, ports, seen, retries = acting([up], view)
    ports.fail["set_desired"] = Rejected("AccessDenied")
    anyio.run(actuation.act, a, {"cpu": 0})
    assert a.memory.backing_off("cpu", NOW)
    assert a.memory.launches == []
    assert [e for e, _ in seen] == ["scale_up_failed", "pool_backoff"]
    assert seen[1][1]["cause"] == "write_rejected"
    assert [c[2] for c in ports.named("record_event")] == ["FailedScaleUp"]
    assert retries == [NOW + BACKOFF_RETRY_S]


def test_a_throttled_write_is_retried_without_backing_off():
    up = ScaleUp("cpu", 1, ("ns/a",), "m5.large", 0.096, "fits")
    a, ports, seen, retries = acting([up])
    ports.fail["set_desired"] = Throttled("Rate exceeded")
    anyio.run(actuation.act, a, {"cpu": 0})
    assert not a.memory.backing_off("cpu", NOW)
    assert a.memory.write_failures == {"cpu": 1}
    assert [e for e, _ in seen] == ["scale_up_failed"]
    assert retries == [NOW + WRITE_RETRY_S]


def test_a_closed_batch_moves_the_memorys_floor():
    a, _, _, _ = acting([])
    a.decision = Decision(now_s=NOW, batch_closed=True)
    anyio.run(actuation.act, a, {})
    assert a.memory.batch_floor_s == NOW


def test_unplaceable_pods_each_get_an_event_and_are_counted():
    a, ports, seen, _ = acting([])
    handle(a, NotifyUnplaceable((pod("a"), pod("b")), "needs 200 GPUs"))
    assert [c[1:3] for c in ports.calls] == [("ns/a", "NotTriggerScaleUp"),
                                             ("ns/b", "NotTriggerScaleUp")]
    assert seen == [("unplaceable", {"pods": 2, "reason": "needs 200 GPUs"})]


def test_pods_held_by_a_limit_get_at_most_limit_events_events():
    a, ports, seen, _ = acting([])
    pods = tuple(pod(f"p{i}") for i in range(LIMIT_EVENTS + 3))
    handle(a, NotifyUnplaceable(pods, "max 10 nodes", limit=Limit.MAX_NODES_TOTAL))
    assert len(ports.named("record_event")) == LIMIT_EVENTS
    assert seen == [("limited", {"pods": LIMIT_EVENTS + 3, "limit": "max_nodes_total",
                                 "reason": "max 10 nodes"})]
    a, ports, seen, _ = acting([])
    handle(a, NotifyUnplaceable((), "max 10 nodes", limit=Limit.MAX_NODES_TOTAL))
    assert ports.calls == [] and seen == []


def test_mark_idle_writes_the_annotation_and_the_timer_and_a_gone_node_is_no_error():
    a, ports, _, _ = acting([])
    handle(a, MarkIdle("n1", 12.5))
    assert ports.calls == [("annotate_node", "n1", ANNOTATION_IDLE_SINCE, "12.500")]
    assert a.memory.idle_since_s == {"n1": 12.5}
    ports.fail["annotate_node"] = NotFound("gone")
    handle(a, MarkIdle("n1", None))
    assert a.memory.idle_since_s == {}


def test_cordon_taints_and_a_failed_write_is_reported_not_raised():
    a, ports, seen, _ = acting([])
    ports.fail["cordon"] = Throttled("slow down")
    handle(a, Cordon("n1", "Spot interruption warning", Taint("k", "true", NO_SCHEDULE)))
    assert ports.calls == [("cordon", "n1"), ("taint", "n1", "k")]
    assert [e for e, _ in seen] == ["node_write_failed", "cordon"]


def test_uncordon_untaints_and_ends_the_rebalance_watch():
    a, ports, seen, _ = acting([], memory=Memory(rebalance_until_s={"n1": 5.0}))
    handle(a, Uncordon("n1", "no interruption followed", taint_key="rebalance"))
    assert ports.calls == [("uncordon", "n1"), ("untaint", "n1", "rebalance")]
    assert a.memory.rebalance_until_s == {}
    assert seen == [("uncordon", {"node": "n1", "reason": "no interruption followed"})]


def test_label_node_sets_the_label():
    a, ports, seen, _ = acting([])
    handle(a, LabelNode("n1", "scaler.io/pool", "cpu", "known from providerID"))
    assert ports.calls == [("label_node", "n1", "scaler.io/pool", "cpu")]
    assert seen == [("node_labelled", {"node": "n1", "label": "scaler.io/pool=cpu"})]


def test_forget_drops_the_node_from_memory_and_calls_nothing():
    a, ports, seen, _ = acting(
        [], memory=Memory(idle_since_s={"n1": 1.0}, rebalance_until_s={"n1": 2.0})
    )
    handle(a, Forget("n1", "instance terminated"))
    assert ports.calls == [] and a.memory.idle_since_s == {} and a.memory.rebalance_until_s == {}
    assert [e for e, _ in seen] == ["forget"]


def test_a_terminating_drain_is_remembered_written_on_the_node_and_spawned():
    n1 = node("n1", instance="i-1")
    view = ClusterView(now_s=NOW, nodes=(n1,))
    spawned: list[Callable[[], Awaitable[None]]] = []
    a, ports, seen, _ = acting([], view, spawn=spawned.append)
    handle(a, Drain("n1", (), NOW + 100.0, "Spot interruption warning", terminate=True,
                    cause=DrainCause.SPOT_INTERRUPTION))
    assert a.memory.interrupted == {"n1": NOW + 100.0}
    assert ports.calls == [("annotate_node", "n1", ANNOTATION_DRAIN_DEADLINE, "1100.000")]
    assert len(spawned) == 1 and seen == []
    anyio.run(spawned[0])  # the drain itself: nothing to evict, then terminate
    assert ports.named("terminate") == [("terminate", "n1")]


def test_a_drain_that_does_not_terminate_runs_in_place_without_a_deadline_note():
    a, ports, seen, _ = acting([], ClusterView(now_s=NOW, nodes=(node("n1"),)))
    handle(a, Drain("n1", (pod("a"),), NOW + 60.0, "rebalance recommendation",
                    cause=DrainCause.REBALANCE_RECOMMENDATION))
    assert a.memory.interrupted == {}
    assert ports.calls == [("evict", "ns/a")]
    assert [e for e, _ in seen] == ["drained"]


def test_an_eviction_remembers_the_workload_and_the_pool_it_left():
    a, ports, seen, _ = acting([], ClusterView(now_s=NOW, nodes=(node("n1", "big"),)))
    handle(a, Evict(pod("web-7d9f8-x2b4q"), "n1", "misplaced"))
    assert ports.calls == [("evict", "ns/web-7d9f8-x2b4q")]
    assert list(a.memory.migrations_s) == [NOW]
    assert a.memory.migrated == {"ns/web-7d9f8": (NOW, "big")}
    assert [e for e, _ in seen] == ["migrate"]


def test_a_failed_eviction_is_reported_and_leaves_memory_alone():
    a, ports, seen, _ = acting([], ClusterView(now_s=NOW, nodes=(node("n1"),)))
    ports.fail["evict"] = Throttled("PDB")
    handle(a, Evict(pod("web"), "n1", "misplaced"))
    assert not a.memory.migrations_s and a.memory.migrated == {}
    assert [e for e, _ in seen] == ["evict_failed"]


def test_a_removal_runs_the_protocol_and_counts_against_the_budget():
    n1 = node("n1", instance="i-1")
    view = ClusterView(now_s=NOW, nodes=(n1,))
    a, ports, seen, _ = acting([], view, memory=Memory(idle_since_s={"n1": 0.0}))
    handle(a, RemoveNode("n1", "cpu", "i-1", "idle 600s"))
    assert ports.calls == [
        ("snapshot",), ("taint", "n1", TAINT_REMOVING), ("pods_on", "n1"), ("terminate", "n1")
    ]
    assert list(a.memory.removals_s) == [NOW] and a.memory.idle_since_s == {}
    assert [e for e, _ in seen] == ["remove_node"]


def test_a_removal_is_cancelled_when_a_fresh_look_finds_the_node_busy_looked_once():
    n1, n2 = node("n1"), node("n2")
    view = ClusterView(now_s=NOW, nodes=(n1, n2))
    live = ClusterView(now_s=NOW, nodes=(n1, n2), bound=(BoundPod(pod("a"), "n1"),))
    a, ports, seen, _ = acting([], view, live=live, memory=Memory(idle_since_s={"n1": 0.0}))
    handle(a, RemoveNode("n1", "cpu", None, "idle"))
    handle(a, RemoveNode("n2", "cpu", None, "idle"))
    assert ports.named("snapshot") == [("snapshot",)]
    assert ports.named("terminate") == [("terminate", "n2")]
    assert a.memory.idle_since_s == {"n1": 0.0}
    assert [e for e, _ in seen] == ["remove_cancelled", "remove_node"]


def test_a_removal_is_cancelled_when_a_fresh_look_finds_the_node_gone():
    n1, n2 = node("n1"), node("n2")
    view = ClusterView(now_s=NOW, nodes=(n1, n2))
    live = ClusterView(now_s=NOW, nodes=(n2,))
    a, ports, seen, _ = acting([], view, live=live, memory=Memory(idle_since_s={"n1": 0.0}))
    handle(a, RemoveNode("n1", "cpu", None, "idle"))
    handle(a, RemoveNode("n2", "cpu", None, "idle"))
    assert ports.named("terminate") == [("terminate", "n2")]
    assert [e for e, _ in seen] == ["remove_cancelled", "remove_node"]


def test_a_removal_of_a_node_already_going_drops_its_timer_but_counts_nothing():
    view = ClusterView(now_s=NOW, nodes=(node("n1"),))
    a, ports, seen, _ = acting([], view, memory=Memory(idle_since_s={"n1": 0.0}))
    ports.fail["terminate"] = NotFound("instance terminating")
    handle(a, RemoveNode("n1", "cpu", None, "idle"))
    assert a.memory.idle_since_s == {} and not a.memory.removals_s
    assert [e for e, _ in seen] == ["remove_cancelled"]


def test_untaint_removes_the_removal_taint():
    a, ports, seen, _ = acting([])
    handle(a, Untaint("n1", "a removal that did not finish"))
    assert ports.calls == [("untaint", "n1", TAINT_REMOVING)]
    assert [e for e, _ in seen] == ["untaint"]


def test_giving_up_backs_off_keeps_ready_or_busy_instances_and_retries_soon():
    view = ClusterView(
        now_s=NOW,
        nodes=(node("ok", instance="i-ok"), node("busy", instance="i-busy", ready=False),
               node("late", instance="i-late", ready=False)),
        bound=(BoundPod(pod("a"), "busy"),),
    )
    a, ports, seen, retries = acting([], view)
    ports.given_back = 1
    handle(a, GiveUpLaunch("cpu", 1, "node never registered within 600s"))
    assert ports.calls == [("give_up", "cpu", 1, frozenset({"i-ok", "i-busy"}))]
    assert a.memory.backing_off("cpu", NOW)
    assert retries == [NOW + GIVE_UP_RETICK_S]
    assert seen == [("launch_given_up", {"pool": "cpu", "count": 1, "taken_back": 1,
                                         "reason": "node never registered within 600s"})]


def test_a_failed_give_up_still_backs_the_pool_off():
    a, ports, seen, _ = acting([])
    ports.fail["give_up"] = Throttled("slow")
    handle(a, GiveUpLaunch("cpu", 1, "late"))
    assert a.memory.backing_off("cpu", NOW)
    assert [e for e, _ in seen] == ["give_up_failed"]


@pytest.mark.parametrize("kind", sorted(HANDLERS, key=lambda k: k.__name__))
def test_act_sends_each_action_to_its_own_handler(kind, monkeypatch):
    got: list[object] = []

    async def record(a: Act, action: object) -> None:
        got.append(action)

    monkeypatch.setitem(HANDLERS, kind, record)  # type: ignore[arg-type]
    sample: dict[type, Action] = {
        NotifyUnplaceable: NotifyUnplaceable((), "r"),
        MarkIdle: MarkIdle("n", None), Cordon: Cordon("n", "r"), Uncordon: Uncordon("n", "r"),
        LabelNode: LabelNode("n", "k", "v", "r"), Forget: Forget("n", "r"),
        Drain: Drain("", (), NOW, "r", cause=DrainCause.RESUMED), Evict: Evict(pod("a"), "n", "r"),
        RemoveNode: RemoveNode("gone", "cpu", None, "r"), Untaint: Untaint("n", "r"),
        GiveUpLaunch: GiveUpLaunch("cpu", 1, "r"),
    }
    a, _, _, _ = acting([sample[kind]])
    anyio.run(actuation.act, a, {})
    assert got == [sample[kind]]
