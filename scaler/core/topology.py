"""Zones that other pods decide: topology spread, and pod (anti-)affinity by zone.

kube-scheduler admits a pod with a ``DoNotSchedule`` zone spread only into a zone where
(matching pods there + 1) - (fewest matching pods in any eligible zone) <= maxSkew, a pod
with required zone anti-affinity never into a zone that runs a matching pod, and one with
required zone affinity only into a zone that does. A node bought elsewhere stays empty.

So before placement, each pending pod with such a constraint is pinned (``PodSpec.zone``)
to the zone it must go to, counting the pods already bound and the ones placed before it in
the same decision, as the scheduler will bind them one by one. Placement then treats it as
any pod pinned by its volume. Of the zones allowed, the one with the fewest matching pods
wins, then the cheapest pool's, then the name. A pod no zone can take is pinned to the zone
kube-scheduler would need, so placement reports that no pool can launch a node there. A pod
whose pools all leave the zone to AWS (multi-zone groups) is left as it is.

Only the few pods carrying these constraints are walked (Python, per pod); every other pod
passes through untouched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from scaler.core.memory import Memory
from scaler.core.model import BoolArray, PodSpec, PodTerm, Requirement, selector_matches
from scaler.core.offerings import Offerings
from scaler.core.placement import cost_matrix, group_pods
from scaler.core.settings import PlacementSettings
from scaler.core.state import ClusterView, PendingPod


def pin_pending(
    pending: list[PendingPod],
    view: ClusterView,
    offerings: Offerings,
    memory: Memory,
    now: float,
    settings: PlacementSettings,
) -> list[PendingPod]:
    """:func:`pin_zones` on a decision's pending pods, counting the view's bound pods."""
    if not pending or not zone_bound(pp.pod for pp in pending):
        return pending
    zones = {n.name: n.zone for n in view.nodes}
    pods = pin_zones(
        [pp.pod for pp in pending],
        offerings,
        bound=((b.pod, zones.get(b.node)) for b in view.bound if b.is_workload),
        node_zones=((dict(n.labels), n.zone) for n in view.nodes),
        available=memory.available(offerings, now),
        settings=settings,
    )
    return [pp if pp.pod is p else replace(pp, pod=p) for pp, p in zip(pending, pods, strict=True)]


def zone_bound(pods: Iterable[PodSpec]) -> bool:
    """Does any pod carry a constraint this module pins?"""
    return any(p.zone_spread or p.zone_affinity or p.zone_anti_affinity for p in pods)


def pin_zones(
    pods: Sequence[PodSpec],
    offerings: Offerings,
    *,
    bound: Iterable[tuple[PodSpec, str | None]] = (),
    node_zones: Iterable[tuple[Mapping[str, str], str | None]] = (),
    available: BoolArray | None = None,
    settings: PlacementSettings | None = None,
) -> list[PodSpec]:
    """``pods`` with those that must go to a particular zone pinned there; same order.

    ``bound``: pods on nodes, with the node's zone. ``node_zones``: every node's labels and
    zone (the spread's eligible zones are those of the nodes the pod's selector and
    affinity admit, plus the zones scaler can launch into for it)."""
    if not zone_bound(pods):
        return list(pods)
    settings = settings or PlacementSettings()
    if available is None:
        available = np.ones(len(offerings), dtype=bool)
    placed = [(p, z) for p, z in bound if z is not None]
    nodes = list(node_zones)
    pinned: dict[int, PodSpec] = {}
    index = {id(p): i for i, p in enumerate(pods)}
    for members in group_pods([p for p in pods if zone_bound([p]) and p.zone is None]):
        rep = members[0]
        zone_cost = _zone_costs(rep, offerings, available, settings)
        eligible = set(zone_cost) | {
            z for labels, z in nodes if z is not None and _admits(rep, labels)
        }
        if not zone_cost:
            # No pool that can run it launches into a zone scaler picks (multi-zone groups
            # pick their own): the zone is not scaler's to choose, as before these rules.
            continue
        for pod in members:
            zone = _choose(pod, zone_cost, eligible, placed)
            pinned[index[id(pod)]] = replace(pod, zone=zone)
            placed.append((pod, zone))
    return [pinned.get(i, p) for i, p in enumerate(pods)]


def _zone_costs(
    pod: PodSpec, offerings: Offerings, available: BoolArray, settings: PlacementSettings
) -> dict[str, float]:
    """Zone -> cost of the cheapest pool that can launch a node for ``pod`` there."""
    req = pod.requests.as_array().reshape(1, -1)
    matrix, _ = cost_matrix([pod], req, offerings, available, settings)
    costs = matrix[0]
    ok = np.isfinite(costs)
    out: dict[str, float] = {}
    single = offerings.single_zone
    for z in np.unique(single[ok & (single != "")]):
        out[str(z)] = float(costs[ok & (single == z)].min())
    # The few pools that pick a node's zone themselves serve each of their zones.
    for i in np.flatnonzero(ok & offerings.choose_zone & (single == "")):
        for z in offerings.zones[i]:
            out[z] = min(out.get(z, np.inf), float(costs[i]))
    return out


def _admits(pod: PodSpec, labels: Mapping[str, str]) -> bool:
    """The pod's node selector and required node affinity admit a node with ``labels``
    (kube-scheduler's rule for the zones a spread counts)."""
    if any(labels.get(k) != v for k, v in pod.node_selector):
        return False
    return not pod.affinity or any(t.matches(labels) for t in pod.affinity)


def _matching(
    selector: tuple[Requirement, ...],
    namespaces: Sequence[str],
    pod: PodSpec,
    placed: Iterable[tuple[PodSpec, str]],
) -> Counter[str]:
    nss = set(namespaces) or {pod.namespace}
    return Counter(
        z
        for other, z in placed
        if other.namespace in nss and selector_matches(selector, dict(other.labels))
    )


def _choose(
    pod: PodSpec,
    zone_cost: Mapping[str, float],
    eligible: set[str],
    placed: Sequence[tuple[PodSpec, str]],
) -> str:
    candidates = set(zone_cost)
    for term in pod.zone_anti_affinity:
        candidates -= set(_term_counts(term, pod, placed))
    for term in pod.zone_affinity:
        have = set(_term_counts(term, pod, placed))
        # The first of a group that matches its own affinity may start anywhere.
        if have or not selector_matches(term.selector, dict(pod.labels)):
            candidates &= have
    load: Counter[str] = Counter()
    needed: str | None = None
    for spread in pod.zone_spread:
        counts = _matching(spread.selector, (), pod, placed)
        floor = min((counts[z] for z in eligible), default=0)
        candidates = {z for z in candidates if counts[z] + 1 - floor <= spread.max_skew}
        load.update({z: counts[z] for z in eligible})
        if needed is None:
            needed = min(sorted(eligible), key=lambda z: counts[z], default=None)
    if candidates:
        return min(candidates, key=lambda z: (load[z], zone_cost[z], z))
    # Nowhere scaler can launch: name the zone kube-scheduler would need, so the pod is
    # reported unplaceable there rather than given a node it can never use.
    return needed or min(eligible - set(zone_cost), default="") or "none-left"


def _term_counts(
    term: PodTerm, pod: PodSpec, placed: Sequence[tuple[PodSpec, str]]
) -> Counter[str]:
    counts = _matching(term.selector, term.namespaces, pod, placed)
    return Counter({z: n for z, n in counts.items() if n})
