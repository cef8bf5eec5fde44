"""The reconciler: observe -> decide -> act -> absorb outcomes. One tick at a time.

The same class runs in the cluster (ports backed by Kubernetes and AWS) and in the
simulator (ports backed by a simulated world). It owns the :class:`Memory` and the cached
offerings; it never decides anything itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from scaler.core.actions import (
    Decision,
    MarkIdle,
    NotifyUnplaceable,
    PinPod,
    RemoveNode,
    ScaleUp,
)
from scaler.core.catalog import Catalog
from scaler.core.decide import decide
from scaler.core.memory import Memory
from scaler.core.model import PoolSpec, format_mib
from scaler.core.offerings import Offerings, PoolProblem, Prices, build_offerings
from scaler.core.settings import Settings
from scaler.core.state import ANNOTATION_IDLE_SINCE, ClusterView
from scaler.ports import Actuator, Clock, ClusterSource, Fleet, NotFound, PortError, PriceSource

Observer = Callable[[str, dict[str, object]], None]
"""Receives ``(event, fields)`` for each thing worth logging or counting (adapters turn
them into structlog events and Prometheus metrics; the simulator ignores them)."""


def _ignore(event: str, fields: dict[str, object]) -> None:
    return None


class Reconciler:
    def __init__(
        self,
        *,
        cluster: ClusterSource,
        fleet: Fleet,
        actuator: Actuator,
        catalog: Catalog,
        settings: Settings,
        clock: Clock,
        rng: np.random.Generator,
        prices: PriceSource | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.cluster = cluster
        self.fleet = fleet
        self.actuator = actuator
        self.catalog = catalog
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.prices = prices
        self.observe = observer or _ignore
        self.memory = Memory()
        self._offerings_key: tuple[object, ...] | None = None
        self._offerings: Offerings | None = None
        self.problems: list[PoolProblem] = []
        self.last_decision: Decision | None = None
        self.last_decide_ms: float = 0.0
        self._last_nodes: list[str] = []

    # ------------------------------------------------------------------ one tick

    async def tick(self) -> Decision:
        decision, view, pools = await self.plan()
        await self.act(decision, view, pools)
        return decision

    async def plan(self) -> tuple[Decision, ClusterView, Sequence[PoolSpec]]:
        """Observe and decide, writing nothing (``scaler plan`` stops here)."""
        now = self.clock.now()
        view = await self.cluster.snapshot()
        pools = await self.fleet.pools()
        failures = await self.fleet.launch_failures(self.memory.failures_seen_s)
        ttl = self.settings.scale_up.launch_failure_ttl_s
        for failure in failures:
            if failure.at_s > self.memory.failures_seen_s:
                self.memory.launch_failed(failure, ttl_s=ttl)
                self.observe("launch_failed", {"pool": failure.pool, "reason": failure.reason})
        self.memory.forget(now=now, pending={pp.pod.key for pp in view.pending})
        offerings = await self._current_offerings(pools)
        t0 = time.perf_counter()
        decision = decide(view, pools, offerings, self.memory, self.settings, now=now, rng=self.rng)
        self.last_decide_ms = (time.perf_counter() - t0) * 1e3
        self.last_decision = decision
        return decision, view, pools

    async def act(self, decision: Decision, view: ClusterView, pools: Sequence[PoolSpec]) -> None:
        now = decision.now_s
        if decision.batch_closed:
            self.memory.batch_floor_s = now
        sizes = {p.name: p.current_size for p in pools}
        adds: dict[str, int] = defaultdict(int)
        for action in decision.actions:
            if isinstance(action, ScaleUp):
                adds[action.pool] += action.count
        for pool, count in adds.items():
            desired = sizes[pool] + count
            try:
                await self.fleet.set_desired(pool, desired)
            except PortError as e:
                self.observe("scale_up_failed", {"pool": pool, "desired": desired, "error": str(e)})
                continue
            sizes[pool] = desired
            for action in decision.of(ScaleUp):
                assert isinstance(action, ScaleUp)
                if action.pool == pool:
                    self.memory.launched(
                        action, now=now, timeout_s=self.settings.scale_up.provision_timeout_s
                    )
                    self.observe("scale_up", _fields(action))
                    await self._announce(action, view)
        nodes = {n.name: n for n in view.nodes}
        self._last_nodes = list(nodes)
        busy_now: set[str] | None = None
        for action in decision.actions:
            if isinstance(action, PinPod):
                await self.actuator.pin(action.pod, action.pool)
            elif isinstance(action, NotifyUnplaceable):
                self.observe("unplaceable", {"pods": len(action.pods), "reason": action.reason})
                for pod in action.pods:
                    await self.actuator.record_event(
                        pod,
                        "NotTriggerScaleUp",
                        f"scaler: no pool fits: {action.reason}",
                        warning=True,
                    )
            elif isinstance(action, MarkIdle):
                if action.since_s is None:
                    self.memory.idle_since_s.pop(action.node, None)
                else:
                    self.memory.idle_since_s[action.node] = action.since_s
                value = None if action.since_s is None else f"{action.since_s:.3f}"
                with contextlib.suppress(NotFound):
                    await self.actuator.annotate_node(action.node, ANNOTATION_IDLE_SINCE, value)
            elif isinstance(action, RemoveNode):
                node = nodes.get(action.node)
                if busy_now is None:
                    busy_now = await self._busy_nodes()
                if node is None or action.node in busy_now:
                    self.observe("remove_cancelled", {"node": action.node, "pool": action.pool})
                    continue
                try:
                    await self.fleet.terminate(node)
                except NotFound:
                    pass
                except PortError as e:
                    self.observe("remove_failed", {"node": action.node, "error": str(e)})
                    continue
                self.memory.removed(now=now)
                self.memory.idle_since_s.pop(action.node, None)
                self.observe("remove_node", _fields(action))

    async def _busy_nodes(self) -> set[str]:
        """Re-check just before removing: a pod scheduled onto a node since the decision,
        or the node already gone, cancels its removal (one fresh snapshot per tick)."""
        view = await self.cluster.snapshot()
        busy = {b.node for b in view.bound if b.is_workload}
        present = {n.name for n in view.nodes}
        return busy | (set(self._last_nodes) - present)

    async def _announce(self, action: ScaleUp, view: ClusterView) -> None:
        runner = (
            f"; runner-up {action.runner_up} ${action.runner_up_cost_usd_per_hour:.4f}/h"
            if action.runner_up and action.runner_up_cost_usd_per_hour is not None
            else ""
        )
        message = (
            f"scaler: pool {action.pool} +{action.count} ({action.instance_type}, "
            f"${action.price_usd_per_hour:.4f}/h){runner}"
        )
        pods = set(action.pods)
        for pp in view.pending:
            if pp.pod.key in pods:
                await self.actuator.record_event(pp.pod, "TriggeredScaleUp", message, warning=False)

    # -------------------------------------------------------------- offerings cache

    async def _current_offerings(self, pools: Sequence[PoolSpec]) -> Offerings:
        """Rebuilt only when the pools' shape or the prices change, not their sizes."""
        prices = await self.prices.prices() if self.prices is not None else Prices()
        shapes = tuple(
            dataclasses.replace(p, current_size=0, min_size=0, max_size=None) for p in pools
        )
        key = (shapes, tuple(sorted(prices.usd_per_hour.items())))
        if self._offerings is None or key != self._offerings_key:
            offerings, problems = build_offerings(
                pools, self.catalog, settings=self.settings.placement, prices=prices
            )
            for p in problems:
                if p not in self.problems:
                    self.observe("pool_disabled", {"pool": p.pool, "reason": p.reason})
            self.problems = problems
            self._offerings, self._offerings_key = offerings, key
        return self._offerings


def _fields(action: ScaleUp | RemoveNode) -> dict[str, object]:
    out = {f.name: getattr(action, f.name) for f in dataclasses.fields(action)}
    if isinstance(action, ScaleUp):
        out["pods"] = len(action.pods)
    return out


__all__ = ["Observer", "Reconciler", "format_mib"]
