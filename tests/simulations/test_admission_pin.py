"""The webhook's pin as the simulator applies it to a pod (simulations.admission.pinned)."""

from __future__ import annotations

from scaler.core.model import LABEL_POOL, Requirement, SelectorTerm
from scaler.core.state import ANNOTATION_PINNED_POOLS
from simulations.admission import pinned
from simulations.testing import pod

PIN = ANNOTATION_PINNED_POOLS


def test_each_pod_gets_its_own_tier_and_keeps_its_own_annotations_in_any_order() -> None:
    # The pinned affinities and annotation sets are made once per tier (and annotations)
    # and shared: every pod must still get exactly its own.
    plain = pod("a")
    noted = pod("b", annotations={"team": "ml"})
    repinned = pod("c", annotations={PIN: "old", "team": "ml"})
    one, two = ("p1",), ("p1", "p2")
    for p, tier in [(plain, one), (noted, two), (plain, two), (repinned, one), (noted, one),
                    (repinned, two), (plain, one), (noted, two)]:
        out = pinned(p, tier)
        assert out.affinity == (SelectorTerm((Requirement(LABEL_POOL, "In", tier),)),)
        others = tuple(a for a in p.annotations if a[0] != PIN)
        assert out.annotations == (*others, (PIN, ",".join(tier)))
        assert (out.name, out.requests) == (p.name, p.requests)


def test_a_pod_with_affinity_has_the_tier_added_to_each_non_empty_term() -> None:
    term = {"matchExpressions": [{"key": "team", "operator": "In", "values": ["ml"]}]}
    p = pod("a", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term]}}})
    out = pinned(p, ("p1",))
    (only,) = out.affinity
    assert only.requirements == (*p.affinity[0].requirements,
                                 Requirement(LABEL_POOL, "In", ("p1",)))
    assert pinned(p, ()) is p
