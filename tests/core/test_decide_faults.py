"""decide() after faults: a restart mid-burst (empty Memory), removal taints a dead process
left behind, launches whose nodes never registered. Pure: every time is an argument.

Pools as in test_decide: small (m5.large, $0.096/h), big (m5.4xlarge), gpu (g5.xlarge).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from scaler.core.actions import GiveUpLaunch, RemoveNode, ScaleUp, Untaint
from scaler.core.catalog import Catalog
from scaler.core.decide import decide
from scaler.core.memory import Launch, Memory
from scaler.core.model import PodSpec, PoolSpec, Resources, Taint
from scaler.core.offerings import build_offerings, pool_table
from scaler.core.settings import Settings, preset
from scaler.core.state import (
    ANNOTATION_IDLE_SINCE,
    TAINT_REMOVING,
    BoundPod,
    ClusterView,
    Node,
    PendingPod,
)

REMOVING = Taint(TAINT_REMOVING)


def pools(*, small: int = 0, big: int = 0, small_max: int = 200, pack: bool = False) -> list[PoolSpec]:
    return [
        PoolSpec("small", ("m5.large",), max_size=small_max, current_size=small, pack=pack),
        PoolSpec("big", ("m5.4xlarge",), max_size=10, current_size=big),
        PoolSpec("gpu", ("g5.xlarge",), max_size=4),
    ]


def pod(name: str, *, cpu: float = 500, mem: float = 2048) -> PodSpec:
    return PodSpec(name, requests=Resources(cpu_milli=cpu, memory_mib=mem, pods=1))


def node(name: str, pool: str | None = "small", **kw: object) -> Node:
    return Node(name, pool, "m5.large", "on-demand", **kw)  # type: ignore[arg-type]


def run(view: ClusterView, ps: list[PoolSpec], catalog: Catalog, memory: Memory | None = None,
        settings: Settings | None = None):
    offerings, problems = build_offerings(ps, catalog)
    assert not problems
    return decide(view, pool_table(ps, offerings), memory or Memory(), settings or preset("scaler"),
                  now=view.now_s, rng=np.random.default_rng(0))


# ------------------------------------------------------------------- restart-safe coverage


def burst_view(now: float) -> tuple[ClusterView, int]:
    """A 90-pod burst mid-flight, one pod per m5.large: the pool was raised to 90; 30 pods
    run on their nodes, 20 nodes are Ready and empty (the scheduler is about to bind), 15
    registered but not Ready, 25 not registered at all. 60 pods are still pending."""
    busy = [node(f"busy-{i}", created_s=now - 60) for i in range(30)]
    empty = [node(f"empty-{i}", created_s=now - 5) for i in range(20)]
    booting = [node(f"boot-{i}", ready=False, created_s=now - 30) for i in range(15)]
    bound = tuple(BoundPod(pod(f"p{i}"), f"busy-{i}") for i in range(30))
    pending = tuple(PendingPod(pod(f"p{i}"), 100.0) for i in range(30, 90))
    view = ClusterView(now, nodes=tuple(busy + empty + booting), bound=bound, pending=pending)
    return view, 90


def test_a_restart_mid_burst_launches_no_extra_node(catalog):
    view, desired = burst_view(130.0)
    for memory in (Memory(), Memory(batch_floor_s=129.0)):  # fresh process; after its 1st tick
        d = run(view, pools(small=desired), catalog, memory)
        assert d.of(ScaleUp) == [], "every pending pod has a node on its way or about to bind"
        assert len(d.waiting) == 60


def test_a_restart_mid_burst_still_places_pods_beyond_what_is_coming(catalog):
    view, desired = burst_view(130.0)
    more = tuple(PendingPod(pod(f"late{i}"), 100.0) for i in range(7))
    d = run(dataclasses.replace(view, pending=view.pending + more), pools(small=desired), catalog)
    assert [(u.pool, u.count) for u in d.of(ScaleUp)] == [("small", 7)]


def test_nodes_on_their_way_to_a_packing_pool_cover_as_many_pods_as_they_hold(catalog):
    # m5.large holds three 500m/2 GiB pods: two nodes coming cover six, remembered or not.
    pods = tuple(PendingPod(pod(f"p{i}"), 100.0) for i in range(6))
    memory = Memory()
    first = run(ClusterView(102.0, pending=pods), pools(pack=True), catalog, memory)
    (up,) = first.of(ScaleUp)
    assert (up.pool, up.count) == ("small", 2)
    memory.launched(up, now=102.0, timeout_s=900.0)
    memory.batch_floor_s = 102.0
    for mem in (memory, Memory(batch_floor_s=102.0)):
        again = run(ClusterView(103.0, pending=pods), pools(small=2, pack=True), catalog, mem)
        assert again.of(ScaleUp) == []


def test_a_node_being_removed_covers_no_pending_pod(catalog):
    pods = (PendingPod(pod("a"), 100.0),)
    going = node("n1", created_s=190.0, taints=(REMOVING,))
    d = run(ClusterView(200.0, pending=pods, nodes=(going,)), pools(small=1), catalog)
    assert [(u.pool, u.count) for u in d.of(ScaleUp)] == [("small", 1)]


def test_a_fresh_empty_node_with_a_taint_its_pool_does_not_declare_covers_nothing(catalog):
    # kube-scheduler passed the pod over for that taint: scale for it at once. A start-up
    # taint (the cloud controller's, a CNI agent's) only delays the scheduler: covered.
    pods = (PendingPod(pod("a"), 100.0),)
    odd = node("n1", created_s=190.0, taints=(Taint("example.com/dedicated", "x"),))
    d = run(ClusterView(200.0, pending=pods, nodes=(odd,)), pools(small=1), catalog)
    assert [(u.pool, u.count) for u in d.of(ScaleUp)] == [("small", 1)]
    starting = node("n1", created_s=190.0,
                    taints=(Taint("node.cloudprovider.kubernetes.io/uninitialized", "true"),))
    d = run(ClusterView(200.0, pending=pods, nodes=(starting,)), pools(small=1), catalog)
    assert d.of(ScaleUp) == []


# ---------------------------------------------------------------------- removal taints


def idle(name: str, **kw: object) -> Node:
    return node(name, annotations=((ANNOTATION_IDLE_SINCE, "0.0"),), **kw)


def test_a_removal_taint_left_by_a_dead_process_is_undone_when_the_node_stays(catalog):
    # Busy: a pod landed (one that tolerates everything). Wanted: pods wait for its pool.
    busy = BoundPod(pod("tolerant"), "busy")
    view = ClusterView(1000.0, nodes=(idle("busy", taints=(REMOVING,)),), bound=(busy,))
    assert run(view, pools(small=2), catalog).of(Untaint) == [
        Untaint("busy", "a removal that did not finish")
    ]
    # At its pool's min size: not removed, so untainted.
    at_min = [dataclasses.replace(p, min_size=1) if p.name == "small" else p for p in pools(small=1)]
    view = ClusterView(1000.0, nodes=(idle("n1", taints=(REMOVING,)),))
    d = run(view, at_min, catalog)
    assert d.of(RemoveNode) == [] and [u.node for u in d.of(Untaint)] == ["n1"]


def test_a_removal_taint_on_a_node_still_due_is_finished_through_the_protocol(catalog):
    view = ClusterView(1000.0, nodes=(idle("n1", taints=(REMOVING,)),))
    d = run(view, pools(small=1), catalog)
    assert [r.node for r in d.of(RemoveNode)] == ["n1"] and d.of(Untaint) == []


def test_a_removal_taint_on_a_node_in_no_pool_is_left_alone(catalog):
    # Its instance is terminating (AWS lists it as no group's): untainting invites pods.
    view = ClusterView(1000.0, nodes=(idle("n1", pool=None, taints=(REMOVING,)),))
    assert run(view, pools(), catalog).of(Untaint) == []


# ------------------------------------------------------------------- provision timeout


def test_a_launch_whose_node_never_registered_is_given_up_at_its_deadline(catalog):
    memory = Memory()
    memory.launches.append(Launch("small", 1, frozenset({"default/a"}), 100.0, 1000.0))
    pods = (PendingPod(pod("a"), 90.0),)
    memory.forget(now=999.0, pending={"default/a"})
    before = run(ClusterView(999.0, pending=pods), pools(small=1), catalog, memory)
    assert before.of(GiveUpLaunch) == [] and before.wake_at_s == 1000.0
    memory.forget(now=1000.0, pending={"default/a"})
    d = run(ClusterView(1000.0, pending=pods), pools(small=1), catalog, memory)
    assert d.of(GiveUpLaunch) == [GiveUpLaunch("small", 1, "node never registered within 900s")]


def test_an_overdue_launch_is_not_given_up_for_a_newer_launchs_nodes(catalog):
    memory = Memory()
    memory.launches += [
        Launch("small", 2, frozenset({"default/a", "default/b"}), 100.0, 1000.0),
        Launch("small", 1, frozenset({"default/c"}), 900.0, 1800.0),
    ]
    pods = tuple(PendingPod(pod(k), 90.0) for k in "abc")
    memory.forget(now=1000.0, pending={"default/a", "default/b", "default/c"})
    # Desired 3, one node Ready: two on their way, one of them the newer launch's.
    view = ClusterView(1000.0, pending=pods, nodes=(node("n1", created_s=200.0),),
                       bound=(BoundPod(pod("x"), "n1"),))
    assert run(view, pools(small=3), catalog, memory).of(GiveUpLaunch) == [
        GiveUpLaunch("small", 1, "node never registered within 900s")
    ]
    # Had both of the old launch's nodes come up, nothing would be given up.
    memory.overdue = [Launch("small", 2, frozenset(), 100.0, 1000.0)]
    ready = tuple(node(f"n{i}", created_s=200.0) for i in range(2))
    view = dataclasses.replace(view, nodes=ready, bound=tuple(BoundPod(pod(f"x{i}"), f"n{i}") for i in range(2)))
    assert run(view, pools(small=3), catalog, memory).of(GiveUpLaunch) == []


def test_nodes_on_their_way_that_no_launch_explains_are_adopted_with_a_timeout():
    memory = Memory()
    memory.launches.append(Launch("small", 1, frozenset({"default/a"}), 100.0, 1000.0))
    memory.adopt({"small": 3, "big": 1}, now=500.0, timeout_s=900.0)
    adopted = [(lnch.pool, lnch.count, lnch.deadline_s) for lnch in memory.launches[1:]]
    assert adopted == [("small", 2, 1400.0), ("big", 1, 1400.0)]
    memory.adopt({"small": 3, "big": 1}, now=510.0, timeout_s=900.0)
    assert len(memory.launches) == 3, "adopted once, not every tick"
    # A launch for no pod stays until its deadline (forget drops launches whose pods left).
    memory.forget(now=600.0, pending=set())
    assert [lnch.pool for lnch in memory.launches] == ["small", "big"]
    memory.forget(now=1400.0, pending=set())
    assert memory.launches == [] and len(memory.overdue) == 2


def test_a_given_up_pool_backs_off_and_its_pods_go_to_the_next_cheapest(catalog):
    memory = Memory()
    memory.launches.append(Launch("small", 1, frozenset({"default/a"}), 100.0, 1000.0))
    memory.gave_up("small", now=1000.0, ttl_s=180.0, reason="node never registered")
    assert memory.launches == [] and memory.backing_off("small", 1100.0)
    assert memory.failures_seen_s == float("-inf"), "the cloud's failure cursor is untouched"
    memory.batch_floor_s = 1000.0
    # The instance is gone and the size lowered: the pod is placed on the next-cheapest pool.
    d = run(ClusterView(1000.5, pending=(PendingPod(pod("a"), 90.0),)), pools(), catalog, memory)
    assert [u.pool for u in d.of(ScaleUp)] == ["big"]


def test_a_node_that_ran_pods_and_went_not_ready_is_no_launchs_shortfall(catalog):
    memory = Memory()
    memory.launches.append(Launch("small", 1, frozenset(), 100.0, 1000.0))
    memory.forget(now=1000.0, pending=set())
    # Desired 1; its one node went NotReady with a pod on it (kubelet trouble, not a launch).
    view = ClusterView(1000.0, nodes=(node("n1", ready=False, created_s=50.0),),
                       bound=(BoundPod(pod("x"), "n1"),))
    assert run(view, pools(small=1), catalog, memory).of(GiveUpLaunch) == []
