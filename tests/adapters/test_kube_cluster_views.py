"""The kube source tells its indexes what changed: after node and pod events, relists and new
instance -> pool maps, each snapshot's nodes and bound pods are what a fresh pass over the
caches gives (nodes by name with their instance's pool, bound pods in the order their last
events came), its indexes answer as ones built afresh, and no tuple was walked to get there.
Driven through the watch callbacks (a random walk) and against the real API server."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from kubernetes.client import ApiClient

from scaler.adapters.kube.cluster import KubeCluster
from scaler.adapters.kube.convert import Converted
from scaler.adapters.kube.nodeviews import _reported, with_pool
from scaler.core.model import NO_SCHEDULE, PodSpec, Resources, Taint
from scaler.core.observed import (
    remember_reports,
    remember_templates,
    reported_allocatable,
    reported_templates,
)
from scaler.core.state import (
    ANNOTATION_IDLE_SINCE,
    TAINT_REMOVING,
    BoundPod,
    ClusterView,
    Node,
    PendingPod,
)
from scaler.core.viewindex import (
    BoundIndex,
    NodeIndex,
    bound_index,
    idle_candidates,
    node_index,
    not_busy,
)
from tests.adapters.test_kube_cluster import running
from tests.fixtures.kube import KubeScope

blocking = anyio.to_thread.run_sync
NODE_CAPACITY = {"cpu": 2, "memory": "8Gi", "pods": 29}


def _ids(xs: Any) -> list[int]:
    return [id(x) for x in xs]


@pytest.fixture
def walked(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The tuples an index was walked to (NodeIndex.next, BoundIndex.next), not told of."""
    seen: list[object] = []
    for cls in (NodeIndex, BoundIndex):
        real = cls.next
        monkeypatch.setattr(cls, "next", lambda self, t, real=real: seen.append(t) or real(self, t))
    return seen


def check_indexes(view: ClusterView) -> None:
    """The view's indexes (kept by its source) answer as ones built afresh."""
    nodes, bound = node_index(view), bound_index(view)
    fresh, fresh_bound = NodeIndex.build(view.nodes), BoundIndex.build(view.bound)
    assert nodes.nodes is view.nodes and bound.bound is view.bound
    assert nodes.position == fresh.position
    assert _ids(nodes.by_name[x.name] for x in view.nodes) == _ids(view.nodes)
    assert nodes.taint_keys == fresh.taint_keys
    for key in fresh.taint_keys:
        assert _ids(nodes.tainted(key)) == _ids(fresh.tainted(key))
    assert _ids(nodes.unlabelled) == _ids(fresh.unlabelled)
    assert _ids(nodes.open_since(0.0)) == _ids(fresh.open_since(0.0))
    assert nodes.idle_annotated == fresh.idle_annotated
    assert +nodes.ready_by_pool(()) == +fresh.ready_by_pool(())
    assert set(bound.busy) == set(fresh_bound.busy)
    assert sorted(_ids(bound.others)) == sorted(_ids(fresh_bound.others))
    for x in view.nodes:
        assert bound.workload_on(x.name) == fresh_bound.workload_on(x.name)
    assert bound.daemonsets() == fresh_bound.daemonsets()
    assert _ids(not_busy(nodes, bound)) == _ids(not_busy(fresh, fresh_bound))
    assert _ids(idle_candidates(nodes, bound, {})) == _ids(idle_candidates(fresh, fresh_bound, {}))


def _pooled(raw: dict[str, Node], instances: Any) -> tuple[Node, ...]:
    """The nodes as the source made them before it kept its views: by name, each with the
    pool of its instance."""
    return tuple(with_pool(raw[name], instances) for name in sorted(raw))


# --- the source's bookkeeping, through the watch callbacks --------------------------------


def test_a_random_walk_of_events_relists_and_maps_is_told_exactly(
    walked: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(41)
    instances: dict[str, str] | None = None
    cluster = KubeCluster(ApiClient(), instance_pools=lambda: instances)
    learned: list[object] = []
    learn = cluster._learn
    monkeypatch.setattr(cluster, "_learn", lambda nodes: learned.append(nodes) or learn(nodes))
    due = True
    """The oracle: a node or the map changed since reports were learned."""
    learned_with: Any = None
    reports: dict[Any, Any] = {}
    templates: dict[Any, Any] = {}
    """The oracle: reports learned from every node whenever due."""
    raw: dict[str, Node] = {}
    """The oracle: what the node watch said last, by name."""
    bound: dict[str, BoundPod] = {}
    """The oracle: bound pods, each taken out and put back at the end by its events."""
    idle = ((ANNOTATION_IDLE_SINCE, "5"),)
    x, y = Taint("x", "", NO_SCHEDULE), Taint("y", "", NO_SCHEDULE)
    taints = [(), (x,), (x, y), (Taint(TAINT_REMOVING, "", NO_SCHEDULE), x)]
    sizes = [Resources(), *(Resources(1900 - 50 * i, 7000 + 100 * i, 0, 29) for i in range(5))]
    labels = [(), (("team", "x"),), (("team", "x"), ("tier", "web")), (("tier", "web"),)]

    def node(name: str) -> Node:
        old = raw.get(name)
        if old is not None and rng.random() < 0.6:  # a newer value (or the same, converted anew)
            field = rng.choice(["annotations", "ready", "allocatable", "labels", "taints"])
            value = {
                "annotations": lambda: idle if rng.random() < 0.5 else (),
                "ready": lambda: not old.ready,
                "allocatable": lambda: rng.choice(sizes),
                "labels": lambda: rng.choice(labels),
                "taints": lambda: rng.choice(taints),
            }[field]()
            return dataclasses.replace(old, **{field: value})
        return Node(
            name, rng.choice(["a", "b", None]), rng.choice(["m5.large", "c5.large", "r5.large", ""]),
            "on-demand", instance_id=rng.choice([None, f"i-{rng.randrange(40)}"]),
            allocatable=rng.choice(sizes), labels=rng.choice(labels),
            ready=rng.random() < 0.8, created_s=float(rng.randrange(20)),
            taints=rng.choice(taints),
            annotations=idle if rng.random() < 0.3 else (),
        )

    def pod(key: str) -> PendingPod | BoundPod | None:
        on = [*raw, "gone-node"]
        what = rng.random()
        if what < 0.15:
            return PendingPod(PodSpec(key), 0.0)
        if what < 0.2:
            return None  # unconvertible: in neither cache
        return BoundPod(PodSpec(key), rng.choice(on), daemonset=rng.random() < 0.1,
                        owner=rng.choice([None, None, "ds"]))

    def node_name() -> str:
        return "".join(rng.choice("abc") for _ in range(rng.randrange(1, 6)))

    def new_map() -> dict[str, str] | None:
        if rng.random() < 0.1:
            return None
        base = dict(instances or {})
        for _ in range(rng.randrange(4)):
            i = f"i-{rng.randrange(40)}"
            if rng.random() < 0.3:
                base.pop(i, None)
            else:
                base[i] = rng.choice(["a", "b", "c"])
        return base

    def snapshot() -> ClusterView:
        nonlocal due, learned_with
        if instances != learned_with:
            due, learned_with = True, instances
        view = anyio.run(cluster.snapshot)
        assert view.nodes == _pooled(raw, instances)
        assert len(learned) == due  # learned exactly when due
        learned.clear()
        if due:
            remember_reports(reports, view.nodes)
            remember_templates(templates, view.nodes)
        due = False
        assert dict(view.reported_allocatable) == reports
        assert dict(view.reported_templates) == templates
        assert _ids(view.bound) == _ids(bound.values())
        check_indexes(view)
        # Pending pods: sorted afresh only when one changed (the tuple decide keeps its
        # covering by), else the last tuple.
        assert view.pending == tuple(
            sorted(cluster._pending.values(), key=lambda p: (p.since_s, p.pod.key))
        )
        if pending_seen and view.pending == pending_seen[-1]:
            kept.append(view.pending is pending_seen[-1])
        pending_seen.append(view.pending)
        return view

    pending_seen: list[tuple[PendingPod, ...]] = []
    kept: list[bool] = []
    for name in ("b", "d"):
        cluster._node_event(name, Converted(raw.setdefault(name, node(name))))
    last = snapshot()
    for _ in range(600):
        for _ in range(rng.choice([0, 1, 1, 2, 5])):
            what = rng.random()
            if what < 0.35:
                name = node_name() if rng.random() < 0.5 or not raw else rng.choice(list(raw))
                was, raw[name] = raw.get(name), node(name)
                due = due or raw[name] != was
                cluster._node_event(name, Converted(raw[name]))
            elif what < 0.45 and raw:
                name = rng.choice(list(raw))
                del raw[name]
                due = True
                cluster._node_event(name, None)
            elif what < 0.85:
                key = f"ns/p{rng.randrange(60)}"
                value = pod(key) if rng.random() < 0.8 else None
                bound.pop(key, None)
                if isinstance(value, BoundPod):
                    bound[key] = value
                cluster._pod_event(key, None if value is None and rng.random() < 0.5
                                   else ("uid", Converted(value)))
            elif what < 0.95:
                instances = new_map() if rng.random() < 0.7 else dict(instances or {})
            elif what < 0.975:  # the node watch listed again
                items = {}
                for name in sorted(set(raw) | {node_name() for _ in range(2)},
                                   key=lambda _: rng.random()):
                    if rng.random() < 0.9:
                        raw[name] = node(name)
                        items[name] = Converted(raw[name])
                    else:
                        raw.pop(name, None)
                cluster._replace_nodes(items)
                due = True
            else:  # the pod watch listed again
                listed = {f"ns/p{i}": pod(f"ns/p{i}") for i in rng.sample(range(60), 30)}
                bound = {k: v for k, v in listed.items() if isinstance(v, BoundPod)}
                cluster._replace_pods({k: ("uid", Converted(v)) for k, v in listed.items()})
        view = snapshot()
        if view.nodes is last.nodes and view.bound is last.bound:
            assert view.reported_allocatable is last.reported_allocatable
        last = view
    assert walked == []
    assert kept.count(True) > 100  # the same tuple while no pending pod changed


def test_learning_reads_no_node_field_but_those_a_change_of_which_learns_again() -> None:
    """NodeViews learns a group again only when a node's pool, type, Ready, allocatable,
    labels or taints change: what observed.py learns must not follow any other field (a
    new Node field must be placed on one side or the other here)."""
    base = Node("n", "a", "m5.large", "on-demand", ready=True,
                allocatable=Resources(1900, 7000, 0, 29), labels=(("team", "x"),),
                taints=(Taint("x", "", NO_SCHEDULE),))
    other = {
        "name": "m", "capacity_type": "spot", "zone": "us-east-1b", "instance_id": "i-1",
        "gpu_ready": False, "unschedulable": True, "created_s": 5.0,
        "annotations": ((ANNOTATION_IDLE_SINCE, "5"),), "pool_labelled": False,
    }
    read = {"pool", "instance_type", "ready", "allocatable", "labels", "taints"}
    assert {f.name for f in dataclasses.fields(Node)} == read | other.keys()
    for name, value in other.items():
        changed = dataclasses.replace(base, **{name: value})
        assert _reported(changed) == _reported(base)
        assert reported_allocatable([changed]) == reported_allocatable([base])
        assert reported_templates([changed]) == reported_templates([base])


# --- against the real API server ----------------------------------------------------------


@pytest.mark.kube
@pytest.mark.anyio
async def test_against_the_api_server_each_snapshot_is_told_what_changed(
    kube_ns: KubeScope, walked: list[object]
) -> None:
    instances = {"i-0views-b": "ng-b"}
    cluster = KubeCluster(kube_ns.api, instance_pools=lambda: instances, watch_timeout_s=2)
    ns = kube_ns.namespace

    def make_node(name: str, instance: str | None = None) -> None:
        kube_ns.make_node(
            name, capacity=NODE_CAPACITY, labels={"scaler.io/pool": "ng-a"},
            provider_id=f"aws:///us-east-1a/{instance}" if instance else None,
        )

    def delete_pod(name: str) -> None:
        kube_ns.core.delete_namespaced_pod(name, ns, grace_period_seconds=0)

    async def settled(probe: Callable[[ClusterView], bool]) -> ClusterView:
        """Snapshot after every cache change until ``probe`` holds, each snapshot's nodes
        checked against a fresh pass over the cache and its indexes against fresh ones."""
        with anyio.fail_after(20):
            while True:
                seen = cluster.generation
                view = await cluster.snapshot()
                assert view.nodes == _pooled(cluster._nodes.converted, instances)
                check_indexes(view)
                if probe(view):
                    return view
                await cluster.wait_changed(seen)

    def nodes_are(*names: str) -> Callable[[ClusterView], bool]:
        return lambda v: [n.name for n in v.nodes if n.name.startswith("views-")] == [
            f"views-{x}" for x in names
        ]

    def pods_are(*names: str) -> Callable[[ClusterView], bool]:
        return lambda v: {b.pod.key for b in v.bound if b.pod.key.startswith(f"{ns}/")} == {
            f"{ns}/{x}" for x in names
        }

    await blocking(lambda: make_node("views-b", "i-0views-b"))
    await blocking(lambda: make_node("views-d"))
    await blocking(lambda: kube_ns.make_pod("on-b", node_name="views-b"))
    async with running(cluster):
        view = await settled(lambda v: nodes_are("b", "d")(v) and pods_are("on-b")(v))
        assert next(n.pool for n in view.nodes if n.name == "views-b") == "ng-b"
        # New nodes land among the others (first, between, last): the tuple stays by name.
        for name in ("views-c", "views-a", "views-e"):
            await blocking(lambda name=name: make_node(name))
        await settled(nodes_are("a", "b", "c", "d", "e"))
        await blocking(lambda: kube_ns.core.patch_node(
            "views-c", {"metadata": {"annotations": {ANNOTATION_IDLE_SINCE: "5"}}}
        ))
        await settled(lambda v: "views-c" in node_index(v).idle_annotated)
        await blocking(lambda: kube_ns.make_pod("on-c", node_name="views-c"))
        await blocking(lambda: kube_ns.make_pod("on-a", node_name="views-a"))
        await settled(pods_are("on-b", "on-c", "on-a"))
        await blocking(lambda: kube_ns.set_pod_phase("on-a", "Succeeded"))
        await blocking(lambda: delete_pod("on-b"))
        await settled(pods_are("on-c"))
        await blocking(lambda: kube_ns.core.delete_node("views-d"))
        await settled(nodes_are("a", "b", "c", "e"))
        # A new discovery moves the instance to another group: its node's pool follows,
        # with no node event.
        instances = {"i-0views-b": "ng-c"}
        view = await settled(lambda v: any(n.pool == "ng-c" for n in v.nodes))
        assert [n.name for n in view.nodes if n.pool == "ng-c"] == ["views-b"]
    # The watches stop; what changes meanwhile comes in when they list again.
    await blocking(lambda: make_node("views-bb"))
    await blocking(lambda: kube_ns.core.delete_node("views-e"))
    await blocking(lambda: kube_ns.make_pod("on-bb", node_name="views-bb"))
    await blocking(lambda: delete_pod("on-c"))
    async with running(cluster):
        await settled(lambda v: nodes_are("a", "b", "bb", "c")(v) and pods_are("on-bb")(v))
        assert [r.relists for r in cluster.reflectors[:2]] == [2, 2]
    assert walked == []
