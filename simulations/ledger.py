"""Where every simulated dollar goes.

Each node is billed from launch to termination (EC2 bills a booting instance). Its cost is
cut, as time passes, into exactly one of:

- **booting**: before the node is Ready (and, on a GPU node, before its GPUs are
  advertised): nothing can run there yet;
- **idle**: Ready, no workload pod on it;
- **useful**: what the pods on it would cost alone on their cheapest fitting node (their
  *fit price*, the oracle's price), while they run;
- **oversized**: the rest of the node's price while pods run on it (node price minus the
  sum of its pods' fit prices, never below 0);
- **interrupted**: the useful and oversized dollars of runs that were lost (Spot
  interruption, or a node taken away under a running pod) — that work is done again.

So ``total = useful + idle + oversized + booting + interrupted`` for every run. A node's
share is settled lazily, only when something on it changes, so the cost of accounting
grows with events, not with simulated time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scaler.core.model import ON_DEMAND, SPOT

if TYPE_CHECKING:
    from simulations.objects import SimNode, SimPod

WASTE_REASONS = ("idle", "oversized", "booting", "interrupted")


@dataclass(eq=False, slots=True)
class Run:
    """One attempt of a pod on a node, from binding to completion or loss."""

    pod: SimPod
    node: SimNode
    start_s: float
    fit_usd_per_hour: float
    useful_usd: float = 0.0
    oversized_usd: float = 0.0


@dataclass
class Ledger:
    cost_usd: dict[str, float] = field(default_factory=lambda: {ON_DEMAND: 0.0, SPOT: 0.0})
    waste_usd: dict[str, float] = field(default_factory=lambda: dict.fromkeys(WASTE_REASONS, 0.0))
    useful_usd: float = 0.0
    node_seconds_by_pool: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    pending_s: list[float] = field(default_factory=list)
    """One entry per run: how long the pod waited (arrival or restart -> running)."""
    series_t: list[float] = field(default_factory=list)
    series_usd_per_hour: list[float] = field(default_factory=list)
    series_nodes: list[int] = field(default_factory=list)
    pool_changes: list[tuple[float, str, str, float]] = field(default_factory=list)
    """(t, pool, capacity type, change of that pool's USD/h): node cost by pool over time,
    the series the live controller exports as scaler_node_cost_dollars_per_hour."""
    waste_spans: list[tuple[float, float, str, str, float]] = field(default_factory=list)
    """(from, to, reason, pool, USD/h) for idle, booting and oversized: the live controller's
    scaler_waste_dollars_per_hour over time. Interrupted work is known only once lost."""
    _rate: float = 0.0
    _nodes: int = 0

    # ------------------------------------------------------------------ nodes

    def settle(self, node: SimNode, now: float) -> None:
        """Book the node's cost since it was last settled."""
        dt = now - node.settled_s
        if dt <= 0.0:
            return
        since, node.settled_s = node.settled_s, now
        usd = node.price_usd_per_hour * dt / 3600.0
        self.cost_usd[node.capacity_type] += usd
        self.node_seconds_by_pool[node.pool] += dt
        if not (node.ready and node.gpu_ready):
            self.waste_usd["booting"] += usd
            self.waste_spans.append((since, now, "booting", node.pool, node.price_usd_per_hour))
            return
        runs = node.runs
        if not runs:
            self.waste_usd["idle"] += usd
            self.waste_spans.append((since, now, "idle", node.pool, node.price_usd_per_hour))
            return
        hours = dt / 3600.0
        # A node's only run (most nodes: one pod per node) needs no sum to find its share.
        total_fit = runs[0].fit_usd_per_hour if len(runs) == 1 else sum(
            r.fit_usd_per_hour for r in runs
        )
        oversized = 0.0
        for run in runs:
            fit = run.fit_usd_per_hour
            share = usd * (fit / total_fit) if total_fit > 0 else usd / len(runs)
            useful = min(share, fit * hours)
            run.useful_usd += useful
            run.oversized_usd += share - useful
            oversized += share - useful
        if oversized > 1e-12:
            self.waste_spans.append((since, now, "oversized", node.pool, oversized / hours))

    def node_added(self, node: SimNode, now: float) -> None:
        self.pool_changes.append((now, node.pool, node.capacity_type, node.price_usd_per_hour))
        self._rate += node.price_usd_per_hour
        self._nodes += 1
        self._point(now)

    def node_removed(self, node: SimNode, now: float) -> None:
        self.settle(node, now)
        self.pool_changes.append((now, node.pool, node.capacity_type, -node.price_usd_per_hour))
        self._rate -= node.price_usd_per_hour
        self._nodes -= 1
        self._point(now)

    def _point(self, now: float) -> None:
        if self.series_t and self.series_t[-1] == now:
            self.series_usd_per_hour[-1] = max(self._rate, 0.0)
            self.series_nodes[-1] = self._nodes
            return
        self.series_t.append(now)
        self.series_usd_per_hour.append(max(self._rate, 0.0))
        self.series_nodes.append(self._nodes)

    # ------------------------------------------------------------------- runs

    def completed(self, run: Run) -> None:
        self.useful_usd += run.useful_usd
        self.waste_usd["oversized"] += run.oversized_usd

    def lost(self, run: Run) -> None:
        self.waste_usd["interrupted"] += run.useful_usd + run.oversized_usd

    def close(self, now: float) -> None:
        """The end of the simulation: one last point for the time series."""
        self._point(now)

    @property
    def total_usd(self) -> float:
        return sum(self.cost_usd.values())
