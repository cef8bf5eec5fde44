"""What Spot interruptions are expected to add to the either-capacity oracle, in the
simulator's own model: the floor a Spot-allowed run is measured against.

Each pod of a workload file goes on its oracle pool (alone on its cheapest fitting pool,
``simulations.scorecard.fit_prices``). On a Spot pool its runs are interrupted at the
simulator's constant hazard for the type's Spot Advisor bucket (``SpotSettings``: -ln(1 -
monthly rate) / 730 h), each interruption loses the run so far and the pod starts again
from scratch, and a run is cut at the simulation's hard end (the last pod's end plus
``drain_cap_s``), as the simulator cuts it. The expected extra node-hours over the pod's
lifetime, at its pool's price, summed over pods (Monte Carlo, ``--draws`` per pod, seeded),
is what interruptions are expected to cost a policy that keeps the oracle's choices; boot,
idle and replacement delays are left out. Also printed: the break-even lost work at which
placement (``price x (1 + interruptions/h x lost work)``, the placement settings' rates)
would prefer the steadiest Spot pool that fits each long pod over its cheapest::

    python benchmarks/spot_expected_loss.py /tmp/openb.json [--draws 4000] [--seed 0]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from scaler.core.catalog import Catalog
from scaler.core.model import CAPACITY_TYPES, SPOT
from scaler.core.offerings import HOURS_PER_MONTH, build_offerings
from scaler.core.placement import cost_matrix, place
from scaler.core.settings import PlacementSettings
from scaler.inputs import load_workload
from simulations.config import RunSettings, SpotSettings
from simulations.scorecard import ORACLE_PLACEMENT


def hazard_per_h(bucket: int | None, spot: SpotSettings) -> float:
    rates = spot.monthly_rate_by_bucket
    monthly = rates[bucket] if bucket is not None and bucket < len(rates) else spot.monthly_rate_unknown
    return -math.log1p(-min(monthly, 1 - 1e-12)) / HOURS_PER_MONTH * spot.hazard_scale


def expected_hours(duration_h: float, horizon_h: float, lam: float, draws: int,
                   rng: np.random.Generator) -> float:
    """Mean node-hours until the pod has run ``duration_h`` in one piece, cut at ``horizon_h``."""
    total = np.zeros(draws)
    done = np.zeros(draws, dtype=bool)
    while not done.all():
        gap = rng.exponential(1.0 / lam, draws)
        finish = ~done & (gap >= duration_h)
        total[finish] += duration_h
        done |= finish
        total[~done] += gap[~done]
        done |= total >= horizon_h
    return float(np.minimum(total, horizon_h).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload")
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    catalog = Catalog.load()
    spot = SpotSettings()
    pods = [p for p in load_workload(args.workload).pods if p.duration_s]
    offerings, _ = build_offerings(catalog.default_pools(CAPACITY_TYPES), catalog,
                                   settings=ORACLE_PLACEMENT)
    placement = place(pods, offerings, headroom=np.full(len(offerings), np.inf),
                      settings=ORACLE_PLACEMENT)
    end_h = (max(p.arrival_s + (p.duration_s or 0.0) for p in pods)
             + RunSettings().drain_cap_s) / 3600.0
    rng = np.random.default_rng(args.seed)
    oracle = extra = 0.0
    long_pods = []
    for pod, group in placement.by_pod():
        duration_h = (pod.duration_s or 0.0) / 3600.0
        oracle += group.cost_usd_per_hour * duration_h
        if group.pool.capacity_type != SPOT:
            continue
        lam = hazard_per_h(catalog[group.instance_type].spot_interruption_bucket, spot)
        horizon_h = end_h - pod.arrival_s / 3600.0
        used = expected_hours(duration_h, horizon_h, lam, args.draws, rng)
        extra += group.cost_usd_per_hour * (used - min(duration_h, horizon_h))
        if duration_h > 500:
            long_pods.append(pod)
    print(f"{args.workload}: oracle ${oracle:,.2f}; expected extra from interruptions on its "
          f"pools ${extra:,.2f} (+{100 * extra / oracle:.2f}%)")
    settings = PlacementSettings()
    rates = settings.spot_interruptions_per_month_by_bucket
    per_h = np.array([
        (rates[b] if (b := catalog[t].spot_interruption_bucket) is not None and b < len(rates)
         else settings.spot_interruptions_per_month_unknown) / HOURS_PER_MONTH
        if p.capacity_type == SPOT else 0.0
        for p, t in zip(offerings.pools, offerings.instance_type, strict=True)
    ])
    breakeven = []
    for pod in long_pods:
        row = cost_matrix([pod], pod.requests.as_array()[None, :], offerings,
                          np.ones(len(offerings), dtype=bool), settings)[0][0]
        ok = np.isfinite(row) & offerings.spot
        price = offerings.price[ok]
        rate = per_h[ok]
        cheap = int(np.argmin(price))
        steadier = rate < rate[cheap]
        if not steadier.any():
            breakeven.append(math.inf)
            continue
        # price_c (1 + r_c L) = price_s (1 + r_s L)  ->  L = (price_s - price_c) / (price_c r_c - price_s r_s)
        gain = price[cheap] * rate[cheap] - price[steadier] * rate[steadier]
        with np.errstate(divide="ignore"):
            need = np.where(gain > 0, (price[steadier] - price[cheap]) / gain, np.inf)
        breakeven.append(float(need.min()))
    if long_pods:
        longest = max((p.duration_s or 0.0) / 3600.0 for p in long_pods)
        print(f"pods running over 500 h: {len(long_pods)}, the longest {longest:,.0f} h; lost work "
              f"at which a steadier Spot pool would win, smallest over them: "
              f"{min(breakeven):,.0f} h (median {float(np.median(breakeven)):,.0f} h)")


if __name__ == "__main__":
    main()
