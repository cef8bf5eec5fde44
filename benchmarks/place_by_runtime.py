"""CPU time of ``place()`` with and without per-pod Spot-risk estimates, on the pods and
pools ``scaler bench place`` uses (10,000 pods drawn from openb default's request shapes,
seed 0; the catalog's default pools, on-demand and Spot)::

    PYTHONPATH=/path/to/tree python benchmarks/place_by_runtime.py LABEL

Prints the median and minimum process CPU ms of 7 calls (fresh offerings each) for: no
estimates; one estimate for every pod (one namespace's history); four estimates drawn at
random per pod (four times the classes). A tree whose ``place()`` takes no estimates times
the first only, so the same file compares two trees run one after the other.
"""

from __future__ import annotations

import inspect
import statistics
import sys
import time
from typing import Any

import numpy as np

from scaler.bench import draw_pods, load_shapes, resolve_trace
from scaler.core.catalog import Catalog
from scaler.core.model import CAPACITY_TYPES
from scaler.core.offerings import build_offerings
from scaler.core.placement import place


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else ""
    catalog = Catalog.load()
    pods = draw_pods(load_shapes(resolve_trace(None)), 10000, 0)
    pools = catalog.default_pools(CAPACITY_TYPES)
    variants: list[tuple[str, dict[str, Any]]] = [("no estimates", {})]
    if "lost_work_h" in inspect.signature(place).parameters:
        rng = np.random.default_rng(0)
        variants.append(("one estimate", {"lost_work_h": np.full(len(pods), 871.0)}))
        four = rng.choice([0.1, 24.0, 871.0, 2000.0], size=len(pods))
        variants.append(("four estimates", {"lost_work_h": four}))
    for name, kw in variants:
        times = []
        for _ in range(7):
            offerings, _ = build_offerings(pools, catalog)
            t0 = time.process_time()
            place(pods, offerings, **kw)
            times.append((time.process_time() - t0) * 1000.0)
        print(f"{label} {name}: median {statistics.median(times):.1f} ms, min {min(times):.1f} ms")


if __name__ == "__main__":
    main()
