"""Migrating misplaced pods never loops.

An evicted pod's controller re-creates it; kube-scheduler puts an unpinned replacement on the
emptiest node that fits, which is the dear node it just left. Pools: small (m5.large,
$0.096/h) and big (m5.4xlarge, $0.768/h); a 2 GiB pod alone on a big node is misplaced.
"""

from __future__ import annotations

import pytest

from scaler.adapters.kube import webhook
from scaler.core.actions import Evict
from scaler.core.catalog import Catalog
from scaler.core.lifecycle import migrations, misplaced, pod_costs, why_not_migrated, workload_of
from scaler.core.memory import MIGRATION_MEMORY_S, Memory
from scaler.core.model import LABEL_POOL, PodSpec, PoolSpec, Requirement, Resources, SelectorTerm
from scaler.core.offerings import build_offerings
from scaler.core.settings import Settings
from scaler.core.state import (
    ANNOTATION_PIN,
    ANNOTATION_PINNED_POOLS,
    ANNOTATION_RESTARTABLE,
    BoundPod,
    ClusterView,
    Node,
)

POOLS = [
    PoolSpec("small", ("m5.large",), current_size=1),
    PoolSpec("big", ("m5.4xlarge",), current_size=2),
]
NODES = (
    Node("small-1", "small", "m5.large", "on-demand"),
    Node("big-1", "big", "m5.4xlarge", "on-demand"),
    Node("big-2", "big", "m5.4xlarge", "on-demand"),
)
RESTARTABLE = (ANNOTATION_RESTARTABLE, "true")
PINNED = (ANNOTATION_PINNED_POOLS, "small")


@pytest.fixture(scope="module")
def offerings(catalog: Catalog):
    off, problems = build_offerings(POOLS, catalog)
    assert not problems
    return off


def pod(name: str, *annotations: tuple[str, str], namespace: str = "ml", created: float = 0.0,
        **kw) -> PodSpec:
    return PodSpec(name, namespace=namespace, arrival_s=created, annotations=annotations,
                   requests=Resources(cpu_milli=500, memory_mib=2048, pods=1), **kw)


def review(offerings, *bound: BoundPod, memory: Memory | None = None):
    """What Reconciler.review does: costs, misplaced, migrations."""
    settings = Settings()
    costs = pod_costs(ClusterView(1000.0, nodes=NODES, bound=bound), offerings, settings)
    bad = misplaced(costs, settings)
    moves = migrations(bad, memory or Memory(), settings, costs=costs)
    return [m.pod.name for m in moves if isinstance(m, Evict)], costs, bad


# Some pod of namespace ml was pinned by the webhook: ml's new pods are pinned.
EVIDENCE = BoundPod(pod("notebook-0", PINNED), "small-1")


def test_a_misplaced_pod_in_a_namespace_without_pinning_is_not_evicted(offerings):
    alone = BoundPod(pod("web-7d9f8c-x2b4k", RESTARTABLE), "big-1")
    evicted, _, bad = review(offerings, alone)
    assert [c.pod.name for c in bad] == ["web-7d9f8c-x2b4k"]
    assert evicted == [], "its replacement would land on big-1 again"
    (c,) = bad
    assert why_not_migrated(c, set(), Memory(), bad, bad) == "namespace ml is not pinned at admission"


def test_a_misplaced_pod_in_a_pinned_namespace_is_evicted(offerings):
    evicted, _, _ = review(offerings, EVIDENCE, BoundPod(pod("web-7d9f8c-x2b4k", RESTARTABLE), "big-1"))
    assert evicted == ["web-7d9f8c-x2b4k"]


def test_pods_the_webhook_would_leave_unpinned_are_not_evicted(offerings):
    opted_out = BoundPod(pod("a-7d9f8c-x2b4k", RESTARTABLE, (ANNOTATION_PIN, "false")), "big-1")
    # Its owner chose the pools itself (the webhook leaves it alone): big is among them.
    either = (SelectorTerm((Requirement(LABEL_POOL, "In", ("small", "big")),)),)
    own_pool = BoundPod(pod("b-7d9f8c-x2b4k", RESTARTABLE, affinity=either), "big-2")
    evicted, _, bad = review(offerings, EVIDENCE, opted_out, own_pool)
    assert len(bad) == 2 and evicted == []


def test_a_replacement_that_came_back_misplaced_is_not_evicted_again(offerings):
    memory = Memory()
    first, _, _ = review(offerings, EVIDENCE, BoundPod(pod("web-7d9f8c-x2b4k", RESTARTABLE), "big-1"),
                         memory=memory)
    assert first == ["web-7d9f8c-x2b4k"]
    memory.migrated[workload_of(pod("web-7d9f8c-x2b4k"))] = (1000.0, "big")  # as act() records
    # The ReplicaSet re-created it (same workload, a new name, created after the eviction)
    # and the scheduler put it on big-1 again (say the webhook was down).
    back = BoundPod(pod("web-7d9f8c-q5z7w", RESTARTABLE, created=1001.0), "big-1")
    evicted, costs, bad = review(offerings, EVIDENCE, back, memory=memory)
    assert evicted == []
    (c,) = bad
    assert why_not_migrated(c, {"ml"}, memory, costs, bad) == (
        "its last migration came back misplaced on big"
    )


def test_a_workload_moves_one_pod_at_a_time_until_its_replacement_runs(offerings):
    memory = Memory()
    memory.migrated["ml/web-7d9f8c"] = (1000.0, "big")
    old = BoundPod(pod("web-7d9f8c-b2c4d", RESTARTABLE, created=10.0), "big-2")
    evicted, _, _ = review(offerings, EVIDENCE, old, memory=memory)
    assert evicted == [], "the first replacement is still pending"
    moved = BoundPod(pod("web-7d9f8c-q5z7w", RESTARTABLE, created=1001.0), "small-1")
    evicted, _, _ = review(offerings, EVIDENCE, old, moved, memory=memory)
    assert evicted == ["web-7d9f8c-b2c4d"], "the last move stuck: the next pod may go"


def test_a_workloads_migration_is_forgotten_after_a_day():
    memory = Memory(migrated={"ml/web-7d9f8c": (1000.0, "big")})
    memory.forget(now=1000.0 + MIGRATION_MEMORY_S - 1, pending=set())
    assert memory.migrated
    memory.forget(now=1000.0 + MIGRATION_MEMORY_S, pending=set())
    assert not memory.migrated


@pytest.mark.parametrize(
    ("name", "workload"),
    [
        ("web-7d9f8c6b5-x2b4k", "ml/web-7d9f8c6b5"),  # a Deployment's ReplicaSet pod
        ("train-q5z7w", "ml/train"),  # a Job's pod
        ("db-0", "ml/db-0"),  # a StatefulSet pod keeps its name
        ("notebook", "ml/notebook"),
        ("web-abcde", "ml/web-abcde"),  # vowels: not a generated suffix
    ],
)
def test_workload_of_strips_only_the_generated_suffix(name, workload):
    assert workload_of(pod(name)) == workload


def test_the_core_and_the_webhook_name_the_same_annotations():
    assert webhook.ANNOTATION_PINNED_POOLS == ANNOTATION_PINNED_POOLS
    assert webhook.ANNOTATION_PIN == ANNOTATION_PIN


def test_a_pod_waits_while_a_pool_as_cheap_as_its_fit_backs_off(offerings):
    # Its replacement would be admitted to the tier it has now (small is out) and bound
    # back on big-1; once small is back the same review moves it.
    settings = Settings()
    alone = BoundPod(pod("web-7d9f8c-x2b4k", RESTARTABLE), "big-1")
    costs = pod_costs(ClusterView(1000.0, nodes=NODES, bound=(EVIDENCE, alone)), offerings,
                      settings)
    bad = misplaced(costs, settings)
    memory = Memory()
    memory.reclaimed("small", now=990.0, until_s=1180.0, lives={})
    held = migrations(bad, memory, settings, costs=costs, offerings=offerings, now=1000.0)
    assert held == []
    (c,) = bad
    cheapest = float(offerings.price[offerings.index("small")])
    assert why_not_migrated(c, {"ml"}, memory, costs, bad, held_from=cheapest) == (
        "a pool as cheap as its fit is backing off: its replacement would come back here"
    )
    after = migrations(bad, memory, settings, costs=costs, offerings=offerings, now=1200.0)
    assert [m.pod.name for m in after if isinstance(m, Evict)] == ["web-7d9f8c-x2b4k"]
