"""Spot diversification in the simulator: a Dask cluster of 8 like workers (1 CPU, 4 GiB,
24 h each) on per-AZ Spot groups in one zone (m7i, m5, m5a, c5, r5 .large), all placed on
the cheapest pool (``diversify_max_pools=1``) or spread (the default; band 10% here so three
pools qualify), over many seeds. Reclaims hit a capacity pool (docs/simulator.md).

    python benchmarks/spot_diversification.py SEEDS [name=value ...]

``name=value`` are ``scaler simulate --set`` overrides for both arms (``hazard_scale=20``,
``reclaim_fraction=1``). One JSON line per arm: mean bill, interrupted dollars (mean, p99,
max per run), interruptions, reclaim instants and how many nodes each one warned.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import numpy as np

from simulations.testing import pod, pool, simulate

TYPES = ("m7i.large", "m5.large", "m5a.large", "c5.large", "r5.large")


def main(argv: list[str]) -> None:
    seeds = int(argv[0])
    given = dict(a.split("=", 1) for a in argv[1:])
    pools = [pool(t, name=f"{t}-spot-1a", capacity_type="spot", zones=["us-east-1a"])
             for t in TYPES]
    pods = [pod(f"dask-worker-{i}", cpu="1", memory="4Gi", duration_s=24 * 3600.0,
                capacity_types=["spot"]) for i in range(8)]
    for label, arm in (("one pool", {"diversify_max_pools": "1"}), ("spread", {})):
        total, interrupted, at_once = [], [], []
        n_intr = finished = 0
        for seed in range(seeds):
            sim = simulate(pods, pools=pools, seed=seed,
                           overrides={"diversify_band": "0.10", **given, **arm})
            sc = sim.scorecard()
            per = Counter(t for t, what, _ in sim.world.timeline if what == "spot-notice")
            at_once += list(per.values())
            total.append(sc.total_cost_usd)
            interrupted.append(sc.waste_usd["interrupted"])
            n_intr += sc.interruptions
            finished += sc.pods_finished
        a = np.array(at_once)
        print(json.dumps({
            "placement": label, "seeds": seeds, "overrides": given,
            "total_usd_mean": round(float(np.mean(total)), 4),
            "interrupted_usd_mean": round(float(np.mean(interrupted)), 4),
            "interrupted_usd_p99": round(float(np.percentile(interrupted, 99)), 4),
            "interrupted_usd_max": round(float(np.max(interrupted)), 4),
            "interruptions": n_intr, "reclaim_instants": len(a),
            "nodes_per_reclaim_mean": round(float(a.mean()), 2) if len(a) else 0.0,
            "reclaims_taking_4_or_more": int((a >= 4).sum()),
            "pods_finished": f"{finished}/{len(pods) * seeds}",
        }))


if __name__ == "__main__":
    main(sys.argv[1:])
