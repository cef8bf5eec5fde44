"""A pod the webhook pinned can still be migrated: its ``scaler.io/pool`` requirement is the
webhook's, not its owner's (the simulator's reviews showed live reviews never moved one)."""

from __future__ import annotations

from scaler.core.lifecycle import PodCost, migrations, misplaced, why_not_migrated
from scaler.core.memory import Memory
from scaler.core.model import LABEL_POOL, PodSpec, Requirement, Resources, SelectorTerm
from scaler.core.settings import preset
from scaler.core.state import ANNOTATION_PINNED_POOLS, ANNOTATION_RESTARTABLE

TIER = ("spot-a", "od-a")


def _pod(name: str, *, by_webhook: bool) -> PodSpec:
    annotations = [(ANNOTATION_RESTARTABLE, "true")]
    if by_webhook:
        annotations.append((ANNOTATION_PINNED_POOLS, ",".join(TIER)))
    return PodSpec(
        name,
        requests=Resources(cpu_milli=500, memory_mib=2048, pods=1),
        affinity=(SelectorTerm((Requirement(LABEL_POOL, "In", TIER),)),),
        annotations=tuple(annotations),
    )


def _on_demand(pod: PodSpec) -> PodCost:
    # On the on-demand pool at 3x its Spot fit: misplaced.
    return PodCost(pod, "od-1", "od-a", 0.096, 0.096, 0.032, started_s=0.0)


def test_a_webhook_pinned_restartable_pod_on_a_dear_pool_is_migrated():
    s = preset("scaler")
    cost = _on_demand(_pod("pinned", by_webhook=True))
    bad = misplaced([cost], s)
    assert bad == [cost]
    assert why_not_migrated(cost, {"default"}, Memory(), [cost], bad) is None
    (evict,) = migrations(bad, Memory(), s, costs=[cost])
    assert evict.pod.name == "pinned"


def test_a_pod_whose_owner_chose_its_pools_is_left_alone():
    s = preset("scaler")
    mine = _on_demand(_pod("mine", by_webhook=False))
    other = _on_demand(_pod("other", by_webhook=True))  # pins the namespace
    costs = [mine, other]
    why = why_not_migrated(mine, {"default"}, Memory(), costs, misplaced(costs, s))
    assert why == "its replacement would not be pinned to a cheaper pool"
