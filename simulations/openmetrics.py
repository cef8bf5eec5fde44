"""A simulation's series in the live controller's metric names, as OpenMetrics text.

``scaler simulate ... --metrics-out run.om`` writes, per (trace, policy) run,
``scaler_node_cost_dollars_per_hour{pool, capacity_type}`` and
``scaler_waste_dollars_per_hour{reason, pool}`` (idle, booting, oversized) over simulated time
(the series the controller exports, with ``trace`` and ``policy`` labels added) and the run's
``scaler_scale_ups_total``. Interrupted work is known only once it is lost, so it appears in
the scorecard, not as a rate. Load it into Prometheus with::

    promtool tsdb create-blocks-from openmetrics run.om ./data

and the dashboard's cost panels read a cost study the way they read a cluster. Simulated
time 0 is placed at ``origin_s`` (default 2026-01-01T00:00:00Z): Prometheus needs absolute
timestamps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from simulations.scorecard import Scorecard

ORIGIN_S = 1767225600.0  # 2026-01-01T00:00:00Z


def _labels(**labels: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in sorted(labels.items())) + "}"


def render(cards: Sequence[Scorecard], *, origin_s: float = ORIGIN_S) -> str:
    cost: list[str] = []
    waste: list[str] = []
    ups: list[str] = []
    for sc in cards:
        run = {"trace": sc.trace, "policy": sc.policy}
        rate: dict[tuple[str, str], float] = defaultdict(float)
        points: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        for t, pool, capacity_type, delta in sc.pool_changes:
            key = (pool, capacity_type)
            rate[key] = max(rate[key] + delta, 0.0)
            series = points[key]
            if series and series[-1][0] == t:
                series[-1] = (t, rate[key])
            else:
                series.append((t, rate[key]))
        for (pool, capacity_type), series in sorted(points.items()):
            labels = _labels(pool=pool, capacity_type=capacity_type, **run)
            cost += [
                f"scaler_node_cost_dollars_per_hour{labels} {value:.6f} {origin_s + t:.3f}"
                for t, value in series
            ]
        changes: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        for start, end, reason, pool, usd_per_hour in sc.waste_spans:
            changes[(reason, pool)] += [(start, usd_per_hour), (end, -usd_per_hour)]
        for (reason, pool), deltas in sorted(changes.items()):
            labels = _labels(reason=reason, pool=pool, **run)
            level = 0.0
            series2: list[tuple[float, float]] = []
            for t, delta in sorted(deltas):
                level += delta
                value = max(round(level, 9), 0.0)
                if series2 and series2[-1][0] == t:
                    series2[-1] = (t, value)
                elif not series2 or series2[-1][1] != value:
                    series2.append((t, value))
            waste += [
                f"scaler_waste_dollars_per_hour{labels} {value:.6f} {origin_s + t:.3f}"
                for t, value in series2
            ]
        ups.append(
            f"scaler_scale_ups_total{_labels(**run)} {sc.scale_ups} {origin_s + sc.end_s:.3f}"
        )
    return "\n".join([
        "# TYPE scaler_node_cost_dollars_per_hour gauge",
        "# HELP scaler_node_cost_dollars_per_hour Managed nodes' cost.",
        *cost,
        "# TYPE scaler_waste_dollars_per_hour gauge",
        "# HELP scaler_waste_dollars_per_hour Node spend that buys nothing, by reason.",
        *waste,
        "# TYPE scaler_scale_ups counter",
        "# HELP scaler_scale_ups Scale-up actions: one per pool per decision.",
        *ups,
        "# EOF",
        "",
    ])


def write(cards: Sequence[Scorecard], path: str | Path, *, origin_s: float = ORIGIN_S) -> None:
    Path(path).write_text(render(cards, origin_s=origin_s), encoding="utf-8")
