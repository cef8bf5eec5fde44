"""The scorecard of one run, and the oracle it is measured against.

The **oracle** is a lower bound on what any one-pod-per-node policy can pay: every pod alone
on its cheapest fitting node type (the core's :func:`~scaler.core.placement.place` over the
same pools, honouring the pod's constraints, with no Spot-risk penalty and no pool size
limits) for exactly its lifetime: no boot, no idle, no interruption. A policy that packs
several pods on one node could in principle go below it; none of the bundled ones does.

A pod's oracle price is also its **fit price**, which the ledger uses to tell *useful* from
*oversized* dollars (:mod:`simulations.ledger`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaler.core.catalog import Catalog
from scaler.core.model import PodSpec, PoolSpec
from scaler.core.offerings import Offerings, build_offerings
from scaler.core.placement import place
from scaler.core.settings import PlacementSettings

ORACLE_PLACEMENT = PlacementSettings(
    spot_lost_work_h=0.0,
    diversify_max_pools=1,  # every pod on its cheapest pool: a spread burst pays more
)


def fit_prices(
    pods: Sequence[PodSpec], pools: Sequence[PoolSpec], catalog: Catalog
) -> tuple[dict[str, float], Offerings]:
    """USD/hour of each pod alone on its cheapest fitting pool (pods that fit no pool are
    left out), and the offerings that was computed on."""
    offerings, _ = build_offerings(pools, catalog, settings=ORACLE_PLACEMENT)
    if not len(offerings) or not pods:
        return {}, offerings
    unlimited = np.full(len(offerings), np.inf)
    placement = place(pods, offerings, headroom=unlimited, settings=ORACLE_PLACEMENT)
    return {pod.key: g.cost_usd_per_hour for pod, g in placement.by_pod()}, offerings


_kept_fit: tuple[object, object, object, dict[str, float], Offerings] | None = None
"""The last (pods, pools, catalog, fits, offerings) :func:`shared_fit_prices` worked out."""


def shared_fit_prices(
    pods: Sequence[PodSpec], pools: Sequence[PoolSpec], catalog: Catalog
) -> tuple[dict[str, float], Offerings]:
    """:func:`fit_prices`, kept for the next call with the very same pods, pools and catalog
    when the pods and pools are tuples (which cannot change): the runs of one trace under
    several policies or settings (``scaler simulate``'s jobs) work it out once. Each caller
    gets its own dict; the offerings are shared (read only, their mask cache pure)."""
    global _kept_fit
    kept = _kept_fit
    if kept is not None and kept[0] is pods and kept[1] is pools and kept[2] is catalog:
        return dict(kept[3]), kept[4]
    fits, offerings = fit_prices(pods, pools, catalog)
    if isinstance(pods, tuple) and isinstance(pools, tuple):
        _kept_fit = (pods, pools, catalog, fits, offerings)
        fits = dict(fits)
    return fits, offerings


def lifetime_s(pod: PodSpec, until_s: float | None) -> float:
    """How long the pod runs: its duration, cut at ``until_s`` if the run is cut."""
    if until_s is None:
        return pod.duration_s or 0.0
    if pod.arrival_s >= until_s:
        return 0.0
    run = until_s - pod.arrival_s
    return run if pod.duration_s is None else min(pod.duration_s, run)


def oracle_cost(pods: Sequence[PodSpec], fits: Mapping[str, float], until_s: float | None) -> float:
    return sum(fits[p.key] * lifetime_s(p, until_s) / 3600.0 for p in pods if p.key in fits)


@dataclass(frozen=True)
class Scorecard:
    """Everything one (trace, policy, overrides, seed) run measured. Dollars are USD."""

    trace: str
    policy: str
    overrides: Mapping[str, str]
    seed: int
    pods: int
    span_s: float
    """The trace's span: ``--until``, else when its last pod would finish on time."""
    end_s: float
    """When the run stopped: later than the span if pods were delayed (they still run their
    full duration), never later than the span plus ``drain_cap_s``."""
    total_cost_usd: float
    oracle_cost_usd: float
    on_demand_cost_usd: float
    spot_cost_usd: float
    useful_usd: float
    waste_usd: Mapping[str, float]
    pending_s: Mapping[str, float]
    node_hours_by_pool: Mapping[str, float]
    scale_ups: int
    launch_failures: int
    interruptions: int
    pods_finished: int
    pods_lost: int
    unplaceable: int
    ticks: int
    series: Mapping[str, Sequence[float]] = field(default_factory=dict, compare=False)
    pool_changes: Sequence[tuple[float, str, str, float]] = field(default=(), compare=False)
    """(t, pool, capacity type, USD/h change): for ``--metrics-out``."""
    waste_spans: Sequence[tuple[float, float, str, str, float]] = field(default=(), compare=False)
    """(from, to, reason, pool, USD/h): for ``--metrics-out``."""
    """``t_s``, ``usd_per_hour`` and ``nodes``: a step function, one point per change."""

    @property
    def over_oracle_pct(self) -> float | None:
        if self.oracle_cost_usd <= 0:
            return None
        return (self.total_cost_usd / self.oracle_cost_usd - 1.0) * 100.0

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` record (no time series; they go to plots)."""
        over = self.over_oracle_pct
        return {
            "trace": self.trace,
            "policy": self.policy,
            "overrides": dict(self.overrides),
            "seed": self.seed,
            "pods": self.pods,
            "trace_span_s": _r(self.span_s, 3),
            "simulated_s": _r(self.end_s, 3),
            "total_cost_usd": _r(self.total_cost_usd),
            "oracle_cost_usd": _r(self.oracle_cost_usd),
            "over_oracle_pct": None if over is None else _r(over, 3),
            "on_demand_cost_usd": _r(self.on_demand_cost_usd),
            "spot_cost_usd": _r(self.spot_cost_usd),
            "useful_usd": _r(self.useful_usd),
            "waste_usd": {k: _r(v) for k, v in self.waste_usd.items()},
            "pending_s": {k: _r(v, 3) for k, v in self.pending_s.items()},
            "node_hours_by_pool": {k: _r(v, 4) for k, v in sorted(self.node_hours_by_pool.items())},
            "node_hours": _r(sum(self.node_hours_by_pool.values()), 4),
            "scale_ups": self.scale_ups,
            "launch_failures": self.launch_failures,
            "interruptions": self.interruptions,
            "pods_finished": self.pods_finished,
            "pods_lost": self.pods_lost,
            "unplaceable": self.unplaceable,
            "ticks": self.ticks,
        }


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    a = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(a.max())}


def _r(x: float, digits: int = 6) -> float:
    return round(float(x), digits) if math.isfinite(x) else x
