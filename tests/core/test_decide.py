"""decide(): batching, in-flight coverage, restarts, backoff, idle teardown.

Scenarios use three pools from the bundled catalog: small (m5.large, $0.096/h), big
(m5.4xlarge, $0.768/h) and gpu (g5.xlarge). Times are plain seconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scaler.core.actions import MarkIdle, NotifyUnplaceable, RemoveNode, ScaleUp
from scaler.core.catalog import Catalog
from scaler.core.decide import decide
from scaler.core.memory import Memory
from scaler.core.model import PodSpec, PoolSpec, Resources
from scaler.core.offerings import build_offerings, pool_table
from scaler.core.settings import Settings, preset
from scaler.core.state import (
    ANNOTATION_IDLE_SINCE,
    ANNOTATION_SCALE_DOWN_DISABLED,
    BoundPod,
    ClusterView,
    LaunchFailure,
    Node,
    PendingPod,
)


def pools(*, small: int = 0, big: int = 0, small_min: int = 0, small_max: int = 10) -> list[PoolSpec]:
    return [
        PoolSpec("small", ("m5.large",), min_size=small_min, max_size=small_max, current_size=small),
        PoolSpec("big", ("m5.4xlarge",), max_size=10, current_size=big),
        PoolSpec("gpu", ("g5.xlarge",), max_size=4),
    ]


def pod(name: str, *, cpu: float = 500, mem: float = 2048, gpu: float = 0) -> PodSpec:
    return PodSpec(name, requests=Resources(cpu_milli=cpu, memory_mib=mem, gpu=gpu, pods=1))


def pending(*pods: PodSpec, since: float = 100.0, step: float = 0.0) -> tuple[PendingPod, ...]:
    return tuple(PendingPod(p, since + i * step) for i, p in enumerate(pods))


def node(name: str, pool: str = "small", *, ready: bool = True, idle_since: float | None = None,
         **kw: object) -> Node:
    ann = () if idle_since is None else ((ANNOTATION_IDLE_SINCE, f"{idle_since}"),)
    extra = tuple(kw.pop("annotations", ()))  # type: ignore[arg-type]
    return Node(name, pool, "m5.large", "on-demand", ready=ready, annotations=ann + extra, **kw)  # type: ignore[arg-type]


def run(view: ClusterView, ps: list[PoolSpec], catalog: Catalog, memory: Memory | None = None,
        settings: Settings | None = None):
    offerings, problems = build_offerings(ps, catalog)
    assert not problems
    return decide(view, pool_table(ps, offerings), memory or Memory(), settings or preset("scaler"),
                  now=view.now_s, rng=np.random.default_rng(0))


def test_new_pending_pods_wait_for_the_batch_window_then_go_as_one_scale_up(catalog):
    pods = pending(*(pod(f"w{i}") for i in range(50)), since=100.0, step=0.01)  # last at 100.49
    held = run(ClusterView(100.6, pending=pods), pools(small_max=100), catalog)
    assert held.actions == ()
    assert held.wake_at_s == pytest.approx(101.49)  # 1 s after the last arrival
    assert len(held.waiting) == 50
    go = run(ClusterView(101.5, pending=pods), pools(small_max=100), catalog)
    ups = go.of(ScaleUp)
    assert len(ups) == 1 and ups[0].pool == "small" and ups[0].count == 50
    assert go.batch_closed


def test_batch_window_is_capped_at_batch_max_after_the_first_pod(catalog):
    # A steady trickle every 0.5 s never leaves 1 s of quiet: act 10 s after the first.
    pods = pending(*(pod(f"t{i}") for i in range(30)), since=100.0, step=0.5)
    held = run(ClusterView(105.0, pending=pods[:11]), pools(small_max=100), catalog)
    assert held.wake_at_s == pytest.approx(106.0)
    d = run(ClusterView(110.0, pending=pods[:21]), pools(small_max=100), catalog)
    assert d.of(ScaleUp) and d.of(ScaleUp)[0].count == 21


def test_pods_older_than_the_last_decision_do_not_wait_again(catalog):
    memory = Memory(batch_floor_s=200.0)
    d = run(ClusterView(200.1, pending=pending(pod("old"), since=150.0)), pools(), catalog, memory)
    assert d.of(ScaleUp), "a pod that waited through an earlier decision is placed at once"


def test_a_launch_in_flight_covers_its_pods_so_a_repeated_tick_does_not_scale_twice(catalog):
    memory = Memory()
    pods = pending(pod("a"), pod("b"), since=100.0)
    first = run(ClusterView(102.0, pending=pods), pools(), catalog, memory)
    (up,) = first.of(ScaleUp)
    memory.launched(up, now=102.0, timeout_s=900.0)
    memory.batch_floor_s = 102.0
    again = run(ClusterView(103.0, pending=pods), pools(small=2), catalog, memory)
    assert again.of(ScaleUp) == []
    assert set(again.waiting) == {"default/a", "default/b"}


def test_after_a_restart_desired_capacity_not_yet_ready_covers_pending_pods(catalog):
    # Memory is empty (new process); the ASG was already raised to 2 with nothing Ready.
    pods = pending(pod("a"), pod("b"), since=100.0)
    d = run(ClusterView(130.0, pending=pods, nodes=(node("n1", ready=False),)), pools(small=2), catalog)
    assert d.of(ScaleUp) == []
    # A third pod has no slot left and is placed.
    d = run(ClusterView(130.0, pending=pods + pending(pod("c"), since=100.0)), pools(small=2), catalog)
    assert [u.count for u in d.of(ScaleUp)] == [1]


def test_a_failed_launch_backs_the_pool_off_and_its_pods_go_to_the_next_cheapest(catalog):
    memory = Memory()
    pods = pending(pod("a"), since=100.0)
    (up,) = run(ClusterView(102.0, pending=pods), pools(), catalog, memory).of(ScaleUp)
    assert up.pool == "small"
    memory.launched(up, now=102.0, timeout_s=900.0)
    memory.batch_floor_s = 102.0
    memory.launch_failed(LaunchFailure("small", 110.0, "InsufficientInstanceCapacity"), ttl_s=180.0)
    d = run(ClusterView(111.0, pending=pods), pools(small=0), catalog, memory)
    assert [u.pool for u in d.of(ScaleUp)] == ["big"]
    # After the TTL the cheap pool is back.
    memory.forget(now=291.0, pending={"default/a"})
    memory.launches.clear()
    d = run(ClusterView(291.0, pending=pods), pools(), catalog, memory)
    assert [u.pool for u in d.of(ScaleUp)] == ["small"]


def test_unplaceable_pods_are_notified_once_with_the_reason(catalog):
    memory = Memory()
    pods = pending(pod("huge", mem=10_000_000), since=100.0)
    d = run(ClusterView(102.0, pending=pods), pools(), catalog, memory)
    (note,) = d.of(NotifyUnplaceable)
    # The largest pool it may use is named: big (m5.4xlarge, the most memory of the three;
    # the GPU pool is out because the pod asks for no GPU).
    assert note.reason.startswith("needs memory") and "the largest pool it may use, big," in note.reason
    memory.batch_floor_s = 102.0
    again = run(ClusterView(200.0, pending=pods), pools(), catalog, memory)
    assert again.of(NotifyUnplaceable) == []


def test_an_idle_node_is_marked_then_removed_after_the_timeout(catalog):
    ps = pools(small=1)
    d = run(ClusterView(200.0, nodes=(node("n1"),)), ps, catalog)
    assert d.actions == (MarkIdle("n1", 200.0),)
    assert d.wake_at_s == pytest.approx(320.0)
    d = run(ClusterView(319.0, nodes=(node("n1", idle_since=200.0),)), ps, catalog)
    assert d.of(RemoveNode) == [] and d.wake_at_s == pytest.approx(320.0)
    d = run(ClusterView(320.0, nodes=(node("n1", idle_since=200.0, instance_id="i-1"),)), ps, catalog)
    (rm,) = d.of(RemoveNode)
    assert rm.node == "n1" and rm.pool == "small" and rm.instance_id == "i-1"


def test_daemonset_and_mirror_pods_do_not_keep_a_node_alive_but_workloads_do(catalog):
    ps = pools(small=1)
    ds = BoundPod(pod("fluentbit"), "n1", daemonset=True)
    mirror = BoundPod(pod("static"), "n1", mirror=True)
    view = ClusterView(500.0, nodes=(node("n1", idle_since=100.0),), bound=(ds, mirror))
    assert run(view, ps, catalog).of(RemoveNode)
    busy = dataclasses.replace(view, bound=(ds, BoundPod(pod("nb"), "n1")))
    d = run(busy, ps, catalog)
    assert d.of(RemoveNode) == [] and d.actions == (MarkIdle("n1", None),)


def test_scale_down_respects_min_size_disabled_annotation_and_recent_scale_up(catalog):
    old = {"idle_since": 0.0}
    assert run(ClusterView(1000.0, nodes=(node("n1", **old),)), pools(small=1, small_min=1), catalog).of(RemoveNode) == []
    disabled = node("n1", annotations=((ANNOTATION_SCALE_DOWN_DISABLED, "true"),), **old)
    assert run(ClusterView(1000.0, nodes=(disabled,)), pools(small=1), catalog).of(RemoveNode) == []
    ca = preset("ca-least-waste")  # 600 s unneeded, 600 s after any scale-up
    memory = Memory(last_scale_up_s=900.0)
    d = run(ClusterView(1000.0, nodes=(node("n1", **old),)), pools(small=1), catalog, memory, ca)
    assert d.of(RemoveNode) == [] and d.wake_at_s == pytest.approx(1500.0)


def test_scale_down_reads_the_first_of_a_repeated_annotation_and_ignores_one_not_a_time(catalog):
    # As Node.annotation reads them: the first value of a key is the one that counts.
    first_recent = node("n1", annotations=(
        (ANNOTATION_IDLE_SINCE, "990.0"), (ANNOTATION_IDLE_SINCE, "0.0"),
    ))
    d = run(ClusterView(1000.0, nodes=(first_recent,)), pools(small=1), catalog)
    assert d.actions == () and d.wake_at_s is not None and d.wake_at_s > 1000.0
    first_enabled = node("n1", idle_since=0.0, annotations=(
        (ANNOTATION_SCALE_DOWN_DISABLED, "false"), (ANNOTATION_SCALE_DOWN_DISABLED, "true"),
    ))
    assert run(ClusterView(1000.0, nodes=(first_enabled,)), pools(small=1), catalog).of(RemoveNode)
    first_disabled = node("n1", idle_since=0.0, annotations=(
        (ANNOTATION_SCALE_DOWN_DISABLED, "true"), (ANNOTATION_SCALE_DOWN_DISABLED, "false"),
    ))
    assert run(ClusterView(1000.0, nodes=(first_disabled,)), pools(small=1), catalog).actions == ()
    # Not a time: the memory's, else marked idle from now.
    garbled = node("n1", annotations=((ANNOTATION_IDLE_SINCE, "soon"),))
    view = ClusterView(1000.0, nodes=(garbled,))
    assert run(view, pools(small=1), catalog).actions == (MarkIdle("n1", 1000.0),)
    remembered = run(view, pools(small=1), catalog, Memory(idle_since_s={"n1": 0.0}))
    assert remembered.of(RemoveNode)


def test_two_idle_nodes_in_a_pool_at_min_plus_one_remove_only_one(catalog):
    nodes = (node("n1", idle_since=0.0), node("n2", idle_since=0.0))
    d = run(ClusterView(1000.0, nodes=nodes), pools(small=2, small_min=1), catalog)
    assert len(d.of(RemoveNode)) == 1


def test_removal_budget_caps_removals_per_minute(catalog):
    settings = dataclasses.replace(
        preset("scaler"),
        scale_down=dataclasses.replace(preset("scaler").scale_down, max_removals_per_minute=2),
    )
    nodes = tuple(node(f"n{i}", idle_since=0.0) for i in range(5))
    d = run(ClusterView(1000.0, nodes=nodes), pools(small=5), catalog, settings=settings)
    assert len(d.of(RemoveNode)) == 2


def test_a_fresh_node_is_not_removed_while_pods_wait_for_its_pool(catalog):
    # Karpenter-like removes empty nodes at once; the node that just became Ready for a
    # pending pod must survive until the scheduler binds the pod.
    memory = Memory()
    pods = pending(pod("a"), since=100.0)
    (up,) = run(ClusterView(102.0, pending=pods), pools(), catalog, memory).of(ScaleUp)
    memory.launched(up, now=102.0, timeout_s=900.0)
    view = ClusterView(200.0, pending=pods, nodes=(node("n1"),))
    d = run(view, pools(small=1), catalog, memory, preset("karpenter-like"))
    assert d.of(RemoveNode) == []


def test_gpu_pod_scales_the_gpu_pool_from_zero(catalog):
    d = run(ClusterView(102.0, pending=pending(pod("train", gpu=1, mem=8192))), pools(), catalog)
    (up,) = d.of(ScaleUp)
    assert up.pool == "gpu" and up.count == 1


def test_zero_request_pod_goes_to_the_cheapest_pool_every_time(catalog):
    for seed in range(5):
        offerings, _ = build_offerings(pools(), catalog)
        d = decide(ClusterView(102.0, pending=pending(PodSpec("empty"))),
                   pool_table(pools(), offerings),
                   Memory(), preset("scaler"), now=102.0, rng=np.random.default_rng(seed))
        assert [u.pool for u in d.of(ScaleUp)] == ["small"]


def test_least_waste_policy_picks_at_random_among_ties_for_a_zero_request_pod(catalog):
    chosen = set()
    for seed in range(20):
        offerings, _ = build_offerings(pools(), catalog)
        d = decide(ClusterView(102.0, pending=pending(PodSpec("empty"))),
                   pool_table(pools(), offerings),
                   Memory(), preset("ca-least-waste"), now=102.0, rng=np.random.default_rng(seed))
        chosen |= {u.pool for u in d.of(ScaleUp)}
    assert {"small", "big"} <= chosen


@pytest.mark.parametrize(
    "annotations",
    [
        (("cluster-autoscaler.kubernetes.io/safe-to-evict", "false"),),
        (("karpenter.sh/do-not-disrupt", "true"),),
    ],
)
def test_a_pod_that_must_not_be_disrupted_keeps_even_an_otherwise_idle_node(catalog, annotations):
    # A DaemonSet pod does not make a node busy, but one marked not-to-disrupt pins it.
    guard = BoundPod(PodSpec("agent", annotations=annotations), "n1", daemonset=True)
    view = ClusterView(1000.0, nodes=(node("n1", idle_since=0.0),), bound=(guard,))
    assert run(view, pools(small=1), catalog).of(RemoveNode) == []
    free = ClusterView(1000.0, nodes=(node("n1", idle_since=0.0),),
                       bound=(BoundPod(PodSpec("agent"), "n1", daemonset=True),))
    assert run(free, pools(small=1), catalog).of(RemoveNode)


def test_a_pod_whose_new_node_another_pod_took_is_placed_again_at_once(catalog):
    memory = Memory()
    pods = pending(pod("a"), since=100.0)
    (up,) = run(ClusterView(102.0, pending=pods), pools(), catalog, memory).of(ScaleUp)
    memory.launched(up, now=102.0, timeout_s=900.0)
    memory.batch_floor_s = 102.0
    # The node came up, but pod b got it first: nothing is on its way for a any more.
    taken = ClusterView(
        200.0, pending=pods, nodes=(node("n1", created_s=190.0),), bound=(BoundPod(pod("b"), "n1"),)
    )
    d = run(taken, pools(small=1), catalog, memory)
    assert [(u.pool, u.count) for u in d.of(ScaleUp)] == [("small", 1)]
    # Had it still been empty, the scheduler would be about to bind a there: wait.
    empty = ClusterView(200.0, pending=pods, nodes=(node("n1", created_s=190.0),))
    assert run(empty, pools(small=1), catalog, memory).of(ScaleUp) == []


def test_a_fresh_empty_node_covers_a_pod_no_launch_is_remembered_for_until_the_bind_grace(catalog):
    # No launch of ours is remembered for this pod (a restart): the empty node that just came
    # up is where the scheduler is about to bind it. Had the scheduler passed it over for a
    # reason scaler does not model, the pod is placed once the node is older than
    # bind_grace_s (600 s): late, never twice.
    pods = pending(pod("a"), since=100.0)
    view = ClusterView(200.0, pending=pods, nodes=(node("n1", created_s=190.0),))
    assert run(view, pools(small=1), catalog).of(ScaleUp) == []
    later = ClusterView(791.0, pending=pods, nodes=(node("n1", created_s=190.0),))
    assert [(u.pool, u.count) for u in run(later, pools(small=1), catalog).of(ScaleUp)] == [("small", 1)]


def test_a_drain_cut_short_by_a_restart_is_resumed_from_the_taint_it_left():
    from scaler.core.actions import Drain
    from scaler.core.lifecycle import INTERRUPTION_TAINT_KEY
    from scaler.core.model import NO_SCHEDULE, Taint

    catalog = Catalog.load()
    tainted = node("n1", unschedulable=True, taints=(Taint(INTERRUPTION_TAINT_KEY, "true", NO_SCHEDULE),))
    view = ClusterView(500.0, nodes=(tainted,), bound=(BoundPod(pod("nb"), "n1"),))
    # A new process: no memory of the interruption, the node still has a workload pod.
    (drain,) = run(view, pools(small=1), catalog).of(Drain)
    assert drain.node == "n1" and [p.name for p in drain.pods] == ["nb"] and drain.terminate
    assert drain.deadline_s == pytest.approx(500.0 + 120.0 - 15.0)
    # The process that is draining it knows, and does not start a second drain.
    assert run(view, pools(small=1), catalog, Memory(interrupted={"n1": 605.0})).of(Drain) == []
    # Nothing left on it: nothing to drain.
    assert run(ClusterView(500.0, nodes=(tainted,)), pools(small=1), catalog).of(Drain) == []


def test_a_resumed_drain_keeps_the_deadline_the_old_process_wrote():
    from scaler.core.actions import Drain
    from scaler.core.lifecycle import INTERRUPTION_TAINT_KEY
    from scaler.core.model import NO_SCHEDULE, Taint
    from scaler.core.state import ANNOTATION_DRAIN_DEADLINE

    catalog = Catalog.load()
    taint = (Taint(INTERRUPTION_TAINT_KEY, "true", NO_SCHEDULE),)

    def resumed(deadline: str) -> float:
        tainted = node("n1", unschedulable=True, taints=taint,
                       annotations=((ANNOTATION_DRAIN_DEADLINE, deadline),))
        view = ClusterView(500.0, nodes=(tainted,), bound=(BoundPod(pod("nb"), "n1"),))
        (drain,) = run(view, pools(small=1), catalog).of(Drain)
        return drain.deadline_s

    assert resumed("560.000") == 560.0  # 60 s left of the original warning, not a fresh 105
    assert resumed("450.000") == 500.0  # already past: evict now
    assert resumed("soon") == pytest.approx(500.0 + 120.0 - 15.0)  # unreadable: as if new


def test_nodes_known_by_their_provider_id_only_get_their_pool_label(catalog):
    from scaler.core.actions import LabelNode
    from scaler.core.pinning import LABEL_BUDGET

    view = ClusterView(
        0.0,
        nodes=(
            node("labelled"),
            node("unlabelled", pool_labelled=False),
            node("not-ours", pool=None, pool_labelled=False),  # type: ignore[arg-type]
        ),
        bound=tuple(BoundPod(PodSpec(f"w-{n}"), n) for n in ("labelled", "unlabelled", "not-ours")),
    )
    labels = [a for a in run(view, pools(), catalog).actions if isinstance(a, LabelNode)]
    assert labels == [LabelNode("unlabelled", "scaler.io/pool", "small", labels[0].reason)]
    # Pins are what need the label: without pinning nothing is written.
    off = preset("scaler").with_overrides({"enabled": "false"})
    assert not [a for a in run(view, pools(), catalog, settings=off).actions if isinstance(a, LabelNode)]
    # A big unlabelled cluster is labelled a budget at a time.
    many = ClusterView(0.0, nodes=tuple(node(f"n{i}", pool_labelled=False) for i in range(LABEL_BUDGET + 7)))
    assert sum(isinstance(a, LabelNode) for a in run(many, pools(), catalog).actions) == LABEL_BUDGET


# --- priority -----------------------------------------------------------------------------


def test_a_pod_below_the_priority_cutoff_never_triggers_a_scale_up(catalog):
    expendable = dataclasses.replace(pod("batch-filler"), priority=-100)
    d = run(ClusterView(200.0, pending=pending(expendable)), pools(), catalog)
    assert d.of(ScaleUp) == [] and d.of(NotifyUnplaceable) == []
    assert d.wake_at_s is None  # nor does it hold a batch window open
    # A placeholder at -1 (>= the default cutoff of -10) does: it holds a warm node.
    placeholder = dataclasses.replace(pod("overprovisioning"), priority=-1)
    d = run(ClusterView(200.0, pending=pending(placeholder)), pools(), catalog)
    assert [u.pool for u in d.of(ScaleUp)] == ["small"]
    lowered = dataclasses.replace(
        preset("scaler"),
        scale_up=dataclasses.replace(preset("scaler").scale_up, priority_cutoff=0),
    )
    d = run(ClusterView(200.0, pending=pending(placeholder)), pools(), catalog, settings=lowered)
    assert d.of(ScaleUp) == []


def test_when_pools_are_capped_the_higher_priority_pods_are_served_first(catalog):
    # One node of room left in "small" and none elsewhere for these pods: the important pod,
    # although it came last and is the cheaper class, gets it.
    low = dataclasses.replace(pod("low", mem=4096), priority=0)
    high = dataclasses.replace(pod("high", mem=1024), priority=1000)
    ps = [PoolSpec("small", ("m5.large",), max_size=1)]
    d = run(ClusterView(200.0, pending=pending(low, high)), ps, catalog)
    (up,) = d.of(ScaleUp)
    assert up.pods == ("default/high",)
    (note,) = d.of(NotifyUnplaceable)
    assert [p.name for p in note.pods] == ["low"] and "max size" in note.reason


def test_pods_held_in_the_batch_window_keep_the_idle_nodes_of_the_pools_they_fit(catalog):
    # A GPU pod just arrived and waits for its window: the idle GPU node stays (its pool is
    # the only one the pod fits), the idle small node goes.
    ps = pools(small=1)
    ps[2] = dataclasses.replace(ps[2], current_size=1)
    nodes = (node("n1", idle_since=0.0), node("n2", "gpu", idle_since=0.0))
    waiting = pending(pod("g", gpu=1), since=999.9)
    d = run(ClusterView(1000.0, nodes=nodes, pending=waiting), ps, catalog)
    assert d.waiting == ("default/g",)
    assert [a.node for a in d.of(RemoveNode)] == ["n1"]
    # The same nodes with nobody waiting: both go.
    d = run(ClusterView(1000.0, nodes=nodes), ps, catalog)
    assert [a.node for a in d.of(RemoveNode)] == ["n1", "n2"]
