"""Spot diversification: a burst of like pods spread over several near-equal Spot pools.

EC2 reclaims Spot capacity per capacity pool (an instance type in an availability zone),
several instances of that pool at once (DOMAIN.md: "pools should be diversified"). A burst of
identical pods (a Dask cluster's workers, an array job) that all go to the cheapest Spot pool
is then all hit by one reclaim. EC2 Fleet's price-capacity-optimized strategy answers this by
choosing among the low-priced pools rather than the single lowest; here the same idea is
applied to placement: when a class of at least ``diversify_min_pods`` pods would all go to
one Spot pool, it is split evenly over the Spot pools whose per-pod cost (price + Spot risk)
is within ``diversify_band`` of the cheapest, until they cover ``diversify_max_pools``
capacity pools.

A pool that launches in several zones already spreads its nodes over them (an ASG balances
its AZs; the simulator's multi-zone pools place nodes in their zones in turn), so it counts
as one capacity pool per zone: a class whose cheapest pool has ``diversify_max_pools`` zones
or more is left alone, and pools with the same instance type and zones as one already taken
add nothing. Packing pools are left alone too (their pods share nodes; splitting them buys
more nodes).

Pure and NumPy-shaped like :func:`scaler.core.placement.balance_similar`, whose output format
it shares (class -> [(pool, pods)]), so placement lays both out the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

from scaler.core.model import FloatArray, IntArray
from scaler.core.offerings import Offerings
from scaler.core.settings import PlacementSettings

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Spread:
    """Classes split over several Spot pools, and the note each of their groups carries."""

    shares: dict[int, list[tuple[int, int]]]
    """class -> [(pool index, pods)], cheapest pool first."""
    notes: dict[int, str]
    """class -> why it was split (prefixed to each of its groups' reasons)."""


def spread_spot(
    matrix: FloatArray,
    best: IntArray,
    best_cost: FloatArray,
    counts: IntArray,
    offerings: Offerings,
    settings: PlacementSettings,
    *,
    skip: Collection[int] | Mapping[int, object] = (),
) -> Spread:
    """``matrix`` (C, P) per-pod cost (``inf``: cannot run there), ``best`` (C,) the chosen
    pool of each class, ``best_cost`` (C,) its cost, ``counts`` (C,) pods per class.
    ``skip``: classes already split (zone balancing) or tied by preferences."""
    max_pools = int(settings.diversify_max_pools)
    if max_pools < 2 or not len(best) or not len(offerings) or settings.expander != "cost":
        return Spread({}, {})
    spot, pack = offerings.spot, offerings.pack
    spot_best = spot[best]
    if not spot_best.any():  # every class on on-demand: nothing to spread
        return Spread({}, {})
    eligible = (
        np.isfinite(best_cost)
        & (counts >= max(int(settings.diversify_min_pods), 2))
        & spot_best
        & ~pack[best]
    )
    if not eligible.any():  # most placements: no burst bound for Spot, nothing to test
        return Spread({}, {})
    # Zone counts of the classes' chosen pools only: (C,), not a pass over every pool.
    zones_best = np.array([_zone_count(offerings, int(b)) for b in best], dtype=np.int64)
    eligible &= zones_best < max_pools
    # Candidates: feasible Spot pools within the band of the class's cheapest, one pod per
    # node. One (C, P) test; only eligible classes with a second candidate are walked.
    limit = best_cost * (1.0 + settings.diversify_band) + _EPS
    near = (matrix <= limit[:, None]) & (spot & ~pack)[None, :] & eligible[:, None]
    shares: dict[int, list[tuple[int, int]]] = {}
    notes: dict[int, str] = {}
    for k in np.flatnonzero(near.sum(axis=1) > 1):
        c = int(k)
        if c in skip:
            continue
        members = np.flatnonzero(near[c])
        # Cheapest first; equal costs keep the columns' tie-break order.
        members = members[np.argsort(matrix[c, members], kind="stable")]
        b = int(best[c])
        chosen, seen, covered = [b], {_capacity_key(offerings, b)}, int(zones_best[c])
        for i in members:
            if covered >= max_pools or len(chosen) >= counts[c]:
                break
            key = _capacity_key(offerings, int(i))
            if int(i) == b or key in seen:
                continue
            chosen.append(int(i))
            seen.add(key)
            covered += _zone_count(offerings, int(i))
        if len(chosen) < 2:
            continue
        n, n_chosen = int(counts[c]), len(chosen)
        split = [n // n_chosen + (1 if j < n % n_chosen else 0) for j in range(n_chosen)]
        shares[c] = [(p, m) for p, m in zip(chosen, split, strict=True) if m > 0]
        dearest = max(float(matrix[c, p]) for p in chosen)
        notes[c] = (
            f"{n} like pods spread over {n_chosen} Spot pools "
            f"({', '.join(offerings.pools[p].name for p in chosen)}; within "
            f"{100.0 * (dearest / float(best_cost[c]) - 1.0):.1f}% of the cheapest) "
            "so one reclaim does not take them all"
        )
    return Spread(shares, notes)


def _zone_count(offerings: Offerings, i: int) -> int:
    """How many capacity pools pool ``i`` spreads over (one per zone; no zone counts one)."""
    return max(len(offerings.zones[i]), 1)


def _capacity_key(offerings: Offerings, i: int) -> tuple[str, tuple[str, ...]]:
    """Pools with one instance type and the same zones draw on the same capacity pools."""
    return offerings.instance_type[i], offerings.zones[i]
