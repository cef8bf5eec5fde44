"""The yardstick for placement: one pod at a time, one pool at a time, in plain Python.

:func:`reference_place` is what :func:`scaler.core.placement.place` replaces: for a pod, walk
every pool, keep those it fits and may run on, take the cheapest. It uses the model's own
rules (:meth:`Requirement.matches`, :meth:`SelectorTerm.matches`, :meth:`Toleration.tolerates`)
and none of the NumPy code, so agreeing with it is evidence that ``place()`` is right, and
timing it says what the NumPy version buys.

It lives in the package, not in ``tests/``, because ``scaler bench place`` runs it; the
property tests in ``tests/core/test_placement.py`` use it too. It knows nothing of pool max
sizes (every pod is placed as if alone): compare it with ``place()`` on pools without limits.

The order of preference is the documented one: per-pod USD/hour (node price + Spot risk,
divided by pods per node on a packing pool), then the node's own USD/hour, then the smaller
allocatable memory, CPU, GPU, then the pool name. Without packing pools the first two are the
same number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scaler.core.catalog import GPU_TAINT
from scaler.core.model import (
    CPU,
    GPU,
    MEM,
    PREFER_NO_SCHEDULE,
    PodSpec,
    Requirement,
    Taint,
)
from scaler.core.offerings import Offerings
from scaler.core.settings import PlacementSettings

# The same slack placement allows when comparing float requests with allocatable.
EPS = 1e-9


@dataclass(frozen=True, slots=True)
class RefPool:
    """One pool as plain Python values: what a node offers, costs and demands of its pods."""

    name: str
    capacity_type: str
    arch: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    zones: tuple[str, ...]
    choose_zone: bool
    gpu_model: str | None
    allocatable: tuple[float, ...]
    """In :data:`scaler.core.model.RESOURCES` order."""
    cost_usd_per_hour: float
    """Node price plus Spot-risk penalty."""
    pack: bool = False
    available: bool = True


def reference_pools(offerings: Offerings, available: Sequence[bool] | None = None) -> list[RefPool]:
    """The resolved pools of ``offerings`` (catalog figures, prices, labels) as plain values.

    Resolving pools against the catalog is not what is being compared, so it is shared."""
    out = []
    for i, pool in enumerate(offerings.pools):
        out.append(
            RefPool(
                name=pool.name,
                capacity_type=pool.capacity_type,
                arch=offerings.arch[i],
                labels=dict(offerings.labels[i]),
                taints=tuple(offerings.taints[i]),
                zones=tuple(offerings.zones[i]),
                choose_zone=bool(offerings.choose_zone[i]),
                gpu_model=offerings.gpu_model[i],
                allocatable=tuple(float(x) for x in offerings.allocatable[i]),
                cost_usd_per_hour=float(offerings.price[i]) + float(offerings.risk[i]),
                pack=bool(offerings.pack[i]),
                available=True if available is None else bool(available[i]),
            )
        )
    return out


def pods_per_node(requests: Sequence[float], pool: RefPool) -> int:
    """How many such pods one node holds: 1 unless the pool packs."""
    if not pool.pack:
        return 1
    ratios = [a / r for r, a in zip(requests, pool.allocatable, strict=True) if r > 0]
    return max(math.floor(min(ratios) + EPS), 1) if ratios else 1


def allows(pod: PodSpec, pool: RefPool) -> bool:
    """Every non-resource constraint of ``pod`` holds on a node of ``pool``."""
    if pod.capacity_types and pool.capacity_type not in pod.capacity_types:
        return False
    if pod.arch is not None and pool.arch != pod.arch:
        return False
    labels = pool.labels
    for key, value in pod.node_selector:
        if not Requirement(key, "In", (value,)).matches(labels):
            return False
    if pod.affinity and not any(term.matches(labels) for term in pod.affinity):
        return False
    wants_gpu = pod.requests.gpu > 0
    for taint in pool.taints:
        if taint.effect == PREFER_NO_SCHEDULE:
            continue
        # A pod that requests GPUs tolerates the GPU taint (ExtendedResourceToleration).
        if wants_gpu and taint.key == GPU_TAINT.key:
            continue
        if not any(t.tolerates(taint) for t in pod.tolerations):
            return False
    if pod.zone is not None and not (
        pod.zone in pool.zones and (len(pool.zones) == 1 or pool.choose_zone)
    ):
        return False
    if wants_gpu and pod.gpu_models:
        model = (pool.gpu_model or "").upper()
        if model not in {m.upper() for m in pod.gpu_models}:
            return False
    return True


def fits(requests: Sequence[float], pool: RefPool) -> bool:
    """The pod's requests fit one empty node, and no GPU node is bought for a CPU pod."""
    alloc = pool.allocatable
    for r, a in zip(requests, alloc, strict=True):
        if r > a + EPS:
            return False
    return not (requests[GPU] == 0 and alloc[GPU] > 0)


def preference(
    requests: Sequence[float], pool: RefPool
) -> tuple[float, float, float, float, float, str]:
    """Smaller is better; see the module docstring."""
    alloc = pool.allocatable
    per_pod = pool.cost_usd_per_hour / pods_per_node(requests, pool)
    return (per_pod, pool.cost_usd_per_hour, alloc[MEM], alloc[CPU], alloc[GPU], pool.name)


def sized(pod: PodSpec, settings: PlacementSettings | None = None) -> list[float]:
    """The pod's requests as placement sizes it: a zero CPU or memory request is the
    requestless floor (PlacementSettings.requestless_cpu_milli / requestless_memory_mib)."""
    settings = settings or PlacementSettings()
    requests: list[float] = pod.requests.as_array().tolist()
    if requests[CPU] == 0:
        requests[CPU] = settings.requestless_cpu_milli
    if requests[MEM] == 0:
        requests[MEM] = settings.requestless_memory_mib
    return requests


def reference_place(
    pod: PodSpec, pools: Sequence[RefPool], settings: PlacementSettings | None = None
) -> RefPool | None:
    """The pool ``pod`` goes to, or None if no pool can run it."""
    requests = sized(pod, settings)
    best: RefPool | None = None
    best_key: tuple[float, float, float, float, float, str] | None = None
    for pool in pools:
        if not pool.available or not fits(requests, pool) or not allows(pod, pool):
            continue
        key = preference(requests, pool)
        if best_key is None or key < best_key:
            best, best_key = pool, key
    return best
