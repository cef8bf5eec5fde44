"""The reconciler: observe -> decide -> act -> absorb outcomes. One tick at a time.

The same class runs in the cluster (ports backed by Kubernetes and AWS) and in the
simulator (ports backed by a simulated world). It owns the :class:`Memory` and the cached
offerings; it never decides anything itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio
import numpy as np

from scaler.core.actions import (
    Action,
    Cordon,
    Decision,
    Drain,
    Evict,
    Forget,
    GiveUpLaunch,
    LabelNode,
    MarkIdle,
    NotifyUnplaceable,
    PinPod,
    RemoveNode,
    ScaleUp,
    Uncordon,
    Untaint,
)
from scaler.core.catalog import Catalog
from scaler.core.decide import decide, nodes_on_the_way
from scaler.core.interruptions import Notice, RebalanceRecommendation, SpotInterruption
from scaler.core.lifecycle import (
    PodCost,
    Waste,
    drained_lives,
    migrations,
    misplaced,
    pod_costs,
    respond,
    waste,
    workload_of,
    worth_moving,
)
from scaler.core.memory import Memory
from scaler.core.model import PodSpec, PoolSpec
from scaler.core.observed import ObservedPools
from scaler.core.offerings import Offerings, PoolProblem, PoolTable
from scaler.core.settings import Settings
from scaler.core.state import (
    ANNOTATION_DRAIN_DEADLINE,
    ANNOTATION_IDLE_SINCE,
    TAINT_REMOVING,
    BoundPod,
    ClusterView,
    Node,
    PendingPod,
)
from scaler.loop.drain import drain
from scaler.loop.offerings_cache import OfferingsCache
from scaler.loop.removal import remove_node
from scaler.ports import (
    Actuator,
    Clock,
    ClusterSource,
    Fleet,
    InsufficientCapacity,
    NotFound,
    PortError,
    PriceSource,
    Rejected,
)

WRITE_RETRY_S = 10.0
"""After a failed scale-up write, tick again this soon (the pods are still pending)."""
LIMIT_EVENTS = 500
"""Pods held back by a global limit get an Event each, up to this many a decision (the rest
are counted and logged): a burst must not turn into thousands of Event writes a tick."""
BACKOFF_RETRY_S = 1.0
"""After a failed write backed its pool off, tick again this soon: the pods go to the
next-cheapest pool now, not at the next event."""
GIVE_UP_RETICK_S = 0.5
"""After giving a launch up, tick again this soon: its pods go to the next-best pool."""

Observer = Callable[[str, dict[str, object]], None]
"""Receives ``(event, fields)`` for each thing worth logging or counting (adapters turn
them into structlog events and Prometheus metrics; the simulator ignores them)."""


def _ignore(event: str, fields: dict[str, object]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Review:
    view: ClusterView
    offerings: Offerings
    costs: list[PodCost]
    waste: Waste
    misplaced: list[PodCost]
    migrated: int


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
        self._ds_bound: tuple[BoundPod, ...] | None = None
        self._ds: tuple[PodSpec, ...] = ()
        self._pending_seen: tuple[PendingPod, ...] | None = None
        self._pending_set: set[str] = set()
        self._cache = OfferingsCache(catalog, settings, clock, prices, self.observe)
        self._capped = ObservedPools()
        """Pools capped by what their registered nodes report (scaler/core/observed.py)."""
        self.last_decision: Decision | None = None
        self.last_decide_ms: float = 0.0
        self._last_nodes: list[str] = []
        self._retry_at_s: float | None = None
        self._lock = anyio.Lock()
        """Held while reading pool sizes and writing new ones: a tick and an interruption
        response never both raise a pool from the same observed size."""

    # ------------------------------------------------------------------ one tick

    async def tick(
        self, *, spawn: Callable[[Callable[[], Awaitable[None]]], None] | None = None
    ) -> Decision:
        """One observe-decide-act round. Drains it starts go to ``spawn`` (the control loop's
        task group) so a tick never waits out a drain; without one they run in place."""
        async with self._lock:
            decision, view, pools = await self.plan()
            self._retry_at_s = None
            decision = self._hold_if_stale(decision)
            await self.act(decision, view, pools, spawn=spawn)
        if self._retry_at_s is not None and (
            decision.wake_at_s is None or self._retry_at_s < decision.wake_at_s
        ):
            # A write failed (throttled, an API error): ask again soon, not at the next event.
            decision = dataclasses.replace(decision, wake_at_s=self._retry_at_s)
        # A launch made by this tick must be looked at again by its provision timeout even if
        # nothing else happens: a node that never registers sends no event.
        deadline = min((launch.deadline_s for launch in self.memory.launches), default=None)
        if deadline is not None and (decision.wake_at_s is None or deadline < decision.wake_at_s):
            decision = dataclasses.replace(decision, wake_at_s=deadline)
        return decision

    async def respond(
        self,
        notices: Sequence[Notice],
        *,
        spawn: Callable[[Callable[[], Awaitable[None]]], None] | None = None,
    ) -> list[Action]:
        """Act on interruption notices now, between ticks and beside a tick in progress.
        Cordons, taints and drain starts read the watch cache and the pools as last read and
        write only to Kubernetes, so they never wait for a tick's AWS calls (a Spot warning
        gives 120 s). Replacement launches raise a pool's desired size from its observed
        size, so they alone take the tick's lock, after the rest, and read the sizes again
        under it. Drains (which may take until the deadline) are handed to ``spawn`` (a task
        group's ``start_soon``) or awaited in place."""
        now = self.clock.now()
        view = await self.cluster.snapshot()
        pools, offerings = self._cache.pools_seen, self._offerings
        if offerings is None or not pools:
            # No tick has read the pools yet: read them now (AWS, under its deadline).
            view, pools = await self._view_and_pools()
            offerings = await self._current_offerings(pools, self._daemonsets(view))
        actions: list[Action] = []
        for notice in notices:
            mine = respond(
                notice,
                view,
                pools,
                offerings,
                self.memory,
                self.settings,
                now=now,
                rng=self.rng,
            )
            self._remember(notice, mine, view, now)
            actions += mine
            self.observe("notice", {"kind": notice.kind, "actions": len(mine)})
        first = tuple(a for a in actions if not isinstance(a, ScaleUp))
        await self.act(Decision(now_s=now, actions=first), view, pools, spawn=spawn)
        launches = tuple(a for a in actions if isinstance(a, ScaleUp))
        if launches:
            async with self._lock:
                try:
                    fresh = self._capped(await self.fleet.pools(), view.reported_allocatable)
                except PortError as e:
                    # The next tick places the drained pods again; nothing is lost.
                    self.observe("replacement_failed", {"error": str(e)})
                else:
                    await self.act(Decision(now_s=now, actions=launches), view, fresh)
        return actions

    async def review(self) -> Review:
        """Where the money goes now: each workload pod's cost against its cheapest fit,
        waste by reason and pool, misplaced pods; restartable misplaced pods are migrated
        within the budget. The live loop runs this every minute for metrics."""
        async with self._lock:
            view, pools = await self._view_and_pools()
            offerings = await self._current_offerings(pools, self._daemonsets(view))
            costs = pod_costs(view, offerings, self.settings)
            bad = misplaced(costs, self.settings)
            pays = worth_moving(costs, self.settings, now=view.now_s)
            moves = migrations(bad + pays, self.memory, self.settings, costs=costs)
            if moves:
                held = self._hold_if_stale(Decision(now_s=self.clock.now(), actions=tuple(moves)))
                await self.act(held, view, pools)
        result = Review(view, offerings, costs, waste(view, offerings, costs), bad, len(moves))
        self.observe(
            "review",
            {
                "waste_usd_per_hour": round(result.waste.total(), 4),
                "misplaced": len(bad),
                "migrated": len(moves),
            },
        )
        return result

    def _remember(
        self, notice: Notice, actions: list[Action], view: ClusterView, now: float
    ) -> None:
        lc = self.settings.lifecycle
        by_instance = {n.instance_id: n for n in view.nodes if n.instance_id}
        for instance_id in notice.instance_ids:
            node = by_instance.get(instance_id)
            if node is None:
                continue
            if isinstance(notice, SpotInterruption):
                self.memory.interrupted[node.name] = notice.deadline_s
                self.memory.rebalance_until_s.pop(node.name, None)
                if node.pool is not None:
                    self.memory.reclaimed(
                        node.pool,
                        now=now,
                        until_s=now + lc.interrupted_pool_ttl_s,
                        lives=drained_lives(view, node.name, now=now),
                    )
            elif isinstance(notice, RebalanceRecommendation) and any(
                isinstance(a, Cordon) and a.node == node.name for a in actions
            ):
                self.memory.rebalance_until_s[node.name] = now + lc.rebalance_window_s

    async def plan(self) -> tuple[Decision, ClusterView, Sequence[PoolSpec]]:
        """Observe and decide, writing nothing (``scaler plan`` stops here)."""
        now = self.clock.now()
        # Pools first: the view's node -> pool mapping then comes from the same discovery as
        # the pools' sizes (a node terminated by the last tick is no longer in its pool).
        pools = await self.fleet.pools()
        view = await self.cluster.snapshot()
        # Registered nodes tell what a pool's nodes really hold (scaler/core/observed.py).
        pools = self._capped(pools, view.reported_allocatable, view.reported_templates)
        failures = await self.fleet.launch_failures(self.memory.failures_seen_s)
        ttl = self.settings.scale_up.launch_failure_ttl_s
        for failure in failures:
            if failure.at_s > self.memory.failures_seen_s:
                self.memory.launch_failed(failure, ttl_s=ttl)
                self.observe("launch_failed", {"pool": failure.pool, "reason": failure.reason})
                try:
                    await self.fleet.cancel_unfulfilled(failure.pool)
                except PortError as e:
                    self.observe("cancel_unfulfilled_failed", {"pool": failure.pool, "error": str(e)})
        self.memory.forget(now=now, pending=self._pending_keys(view))
        table = await self._cache.table_for(pools, self._daemonsets(view))
        # Nodes on their way that no launch of this process explains get a provision timeout.
        self.memory.adopt(
            nodes_on_the_way(view, table, self.settings.placement.startup_taint_keys),
            now=now,
            timeout_s=self.settings.scale_up.provision_timeout_s,
        )
        t0 = time.perf_counter()
        decision = decide(view, table, self.memory, self.settings, now=now, rng=self.rng)
        self.memory.overdue.clear()  # judged by this decision (GiveUpLaunch)

        self.last_decide_ms = (time.perf_counter() - t0) * 1e3
        self.last_decision = decision
        return decision, view, pools

    async def act(
        self,
        decision: Decision,
        view: ClusterView,
        pools: Sequence[PoolSpec],
        *,
        spawn: Callable[[Callable[[], Awaitable[None]]], None] | None = None,
    ) -> None:
        now = decision.now_s
        if decision.batch_closed:
            self.memory.batch_floor_s = now
        by_name = self._pool_table(pools, self._offerings).by_name if self._offerings else {
            p.name: p for p in pools
        }
        sizes = {name: by_name[name].current_size for name in
                 {a.pool for a in decision.actions if isinstance(a, ScaleUp)} if name in by_name}
        adds: dict[str, int] = defaultdict(int)
        for action in decision.actions:
            if isinstance(action, ScaleUp):
                adds[action.pool] += action.count
        for pool, count in adds.items():
            desired = sizes[pool] + count
            try:
                await self.fleet.set_desired(pool, desired)
            except PortError as e:
                await self._scale_up_failed(pool, desired, e, decision, view)
                continue
            self.memory.write_succeeded(pool)
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
            elif isinstance(action, NotifyUnplaceable) and action.limit is not None:
                await self._held_by_limit(action)
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
            elif isinstance(action, Cordon):
                await self._quietly(self.actuator.cordon(action.node), action.node)
                if action.taint is not None:
                    await self._quietly(self.actuator.taint(action.node, action.taint), action.node)
                self.observe("cordon", {"node": action.node, "reason": action.reason})
            elif isinstance(action, Uncordon):
                await self._quietly(self.actuator.uncordon(action.node), action.node)
                if action.taint_key is not None:
                    await self._quietly(
                        self.actuator.untaint(action.node, action.taint_key), action.node
                    )
                self.memory.rebalance_until_s.pop(action.node, None)
                self.observe("uncordon", {"node": action.node, "reason": action.reason})
            elif isinstance(action, LabelNode):
                await self._quietly(
                    self.actuator.label_node(action.node, action.key, action.value), action.node
                )
                self.observe(
                    "node_labelled",
                    {"node": action.node, "label": f"{action.key}={action.value}"},
                )
            elif isinstance(action, Forget):
                for table in (self.memory.idle_since_s, self.memory.rebalance_until_s):
                    table.pop(action.node, None)
                self.observe("forget", {"node": action.node, "reason": action.reason})
            elif isinstance(action, Drain):
                if action.terminate and action.node:
                    self.memory.interrupted[action.node] = action.deadline_s
                    # On the node, for a process that takes the drain over after a restart.
                    await self._quietly(
                        self.actuator.annotate_node(
                            action.node, ANNOTATION_DRAIN_DEADLINE, f"{action.deadline_s:.3f}"
                        ),
                        action.node,
                    )
                drain = self._drainer(action, nodes.get(action.node))
                if spawn is not None:
                    spawn(drain)
                else:
                    await drain()
            elif isinstance(action, Evict):
                try:
                    await self.actuator.evict(action.pod)
                except PortError as e:
                    self.observe("evict_failed", {"pod": action.pod.key, "error": str(e)})
                    continue
                self.memory.migrations_s.append(now)
                left = nodes.get(action.node)
                if left is not None and left.pool is not None:
                    self.memory.migrated[workload_of(action.pod)] = (now, left.pool)
                self.observe("migrate", {"pod": action.pod.key, "reason": action.reason})
            elif isinstance(action, RemoveNode):
                node = nodes.get(action.node)
                if busy_now is None:
                    busy_now = await self._busy_nodes()
                if node is None or action.node in busy_now:
                    self.observe("remove_cancelled", {"node": action.node, "pool": action.pool})
                    continue
                removed = await remove_node(
                    node, cluster=self.cluster, actuator=self.actuator, fleet=self.fleet,
                    observe=self.observe, pool=action.pool,
                )
                if removed is not None:
                    self.memory.idle_since_s.pop(action.node, None)
                if removed:
                    self.memory.removed(now=now)
                    self.observe("remove_node", _fields(action))
            elif isinstance(action, Untaint):
                await self._quietly(self.actuator.untaint(action.node, TAINT_REMOVING), action.node)
                self.observe("untaint", {"node": action.node, "reason": action.reason})
            elif isinstance(action, GiveUpLaunch):
                await self._give_up(action, view, now)

    async def _give_up(self, action: GiveUpLaunch, view: ClusterView, now: float) -> None:
        """The pool backs off like after a failed launch and its pods are placed again at
        the next tick (soon); the nodes that never registered are taken back. If taking
        them back fails, they are still on their way next tick, unexplained, and get a new
        timeout (Memory.adopt): it is tried again then."""
        self.memory.gave_up(
            action.pool, now=now, ttl_s=self.settings.scale_up.launch_failure_ttl_s,
            reason=action.reason,
        )
        retry = now + GIVE_UP_RETICK_S
        self._retry_at_s = retry if self._retry_at_s is None else min(self._retry_at_s, retry)
        busy = {b.node for b in view.bound if b.is_workload}
        keep = {
            n.instance_id for n in view.nodes if n.instance_id and (n.ready or n.name in busy)
        }
        try:
            given = await self.fleet.give_up(action.pool, action.count, keep)
        except PortError as e:
            self.observe("give_up_failed", {"pool": action.pool, "error": str(e)})
            return
        self.observe(
            "launch_given_up",
            {"pool": action.pool, "count": action.count, "taken_back": given,
             "reason": action.reason},
        )

    async def _held_by_limit(self, action: NotifyUnplaceable) -> None:
        """Pods a global limit held back: counted, logged, and told which limit (at most
        ``LIMIT_EVENTS`` Events a decision: 20,000 held pods are not 20,000 API calls)."""
        if not action.pods:
            return
        self.observe("limited", {"pods": len(action.pods), "limit": action.limit,
                                 "reason": action.reason})
        for pod in action.pods[:LIMIT_EVENTS]:
            await self.actuator.record_event(
                pod, "NotTriggerScaleUp", f"scaler: held back: {action.reason}", warning=True
            )

    async def _scale_up_failed(
        self, pool: str, desired: int, error: PortError, decision: Decision, view: ClusterView
    ) -> None:
        """A refused write (AccessDenied, a validation error, a group gone) backs the pool
        off at once: retrying it forever would strand its pods. A transient one (throttled,
        5xx, timeout) is retried soon, and backs the pool off after
        ``write_failures_before_backoff`` in a row. Backed off, the pods are told why and
        placed again on the next-cheapest pool at the next tick."""
        now = decision.now_s
        up = self.settings.scale_up
        persistent = isinstance(error, Rejected | NotFound | InsufficientCapacity)
        reason = (
            f"scale-up refused: {error}"
            if persistent
            else f"{up.write_failures_before_backoff} scale-up writes failed in a row: {error}"
        )
        backed_off = self.memory.write_failed(
            pool, now=now, reason=reason, ttl_s=up.launch_failure_ttl_s,
            persistent=persistent, after=up.write_failures_before_backoff,
        )
        self.observe("scale_up_failed", {"pool": pool, "desired": desired, "error": str(error),
                                         "backoff": backed_off})
        retry = now + (BACKOFF_RETRY_S if backed_off else WRITE_RETRY_S)
        self._retry_at_s = retry if self._retry_at_s is None else min(self._retry_at_s, retry)
        if not backed_off:
            return
        cause = "write_rejected" if persistent else "write_failing"
        self.observe("pool_backoff", {"pool": pool, "cause": cause, "reason": reason,
                                      "until_s": now + up.launch_failure_ttl_s})
        message = (
            f"scaler: pool {pool} skipped for {up.launch_failure_ttl_s:.0f}s: {reason}; "
            "the pod goes to the next-cheapest pool"
        )
        pods = {key for a in decision.of(ScaleUp) if isinstance(a, ScaleUp) and a.pool == pool
                for key in a.pods}
        for pp in view.pending:
            if pp.pod.key in pods:
                await self.actuator.record_event(pp.pod, "FailedScaleUp", message, warning=True)

    async def _quietly(self, call: Awaitable[None], node: str) -> None:
        try:
            await call
        except NotFound:
            pass
        except PortError as e:
            self.observe("node_write_failed", {"node": node, "error": str(e)})

    def _hold_if_stale(self, decision: Decision) -> Decision:
        """The decision without its destructive actions (node removals, drains that end in
        a termination, evictions) while the cluster cache is older than
        ``scale_down.max_cache_age_s``: a watch that went quiet may be hiding a pod bound
        to the node since. They are decided again at the next tick, asked for soon."""
        held = [a for a in decision.actions if _destructive(a)]
        if not held:
            return decision
        age = self.cluster.staleness_s()
        if age <= self.settings.scale_down.max_cache_age_s:
            return decision
        for action in held:
            self.observe(
                "destructive_held",
                {"action": type(action).__name__, "target": _target(action),
                 "cache_age_s": round(age, 1)},
            )
        self._retry_at_s = decision.now_s + WRITE_RETRY_S
        return dataclasses.replace(
            decision, actions=tuple(a for a in decision.actions if not _destructive(a))
        )

    def _drainer(self, action: Drain, node: Node | None) -> Callable[[], Awaitable[None]]:
        return functools.partial(
            drain, action, node, actuator=self.actuator, fleet=self.fleet, clock=self.clock,
            observe=self.observe, cluster=self.cluster,
        )

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

    async def offerings_now(self, *, max_age_s: float = 60.0) -> Offerings:
        """The cached offerings, for the admission webhook (which must answer within its
        timeout); looked up again when older than ``max_age_s`` (a follower never ticks)."""

        async def pools() -> Sequence[PoolSpec]:
            return (await self._view_and_pools())[1]

        return await self._cache.now(pools, max_age_s=max_age_s)

    async def _view_and_pools(self) -> tuple[ClusterView, Sequence[PoolSpec]]:
        """A snapshot, and the fleet's pools capped by what their registered nodes report
        (:mod:`scaler.core.observed`)."""
        view = await self.cluster.snapshot()
        return view, self._capped(
            await self.fleet.pools(), view.reported_allocatable, view.reported_templates
        )

    @property
    def pools_seen(self) -> Sequence[PoolSpec]:
        """The pools as last read (live sizes), for the webhook's headroom."""
        return self._cache.pools_seen

    @property
    def problems(self) -> list[PoolProblem]:
        """Pools left out of the offerings, and why."""
        return self._cache.problems

    def _daemonsets(self, view: ClusterView) -> tuple[PodSpec, ...]:
        """One spec per DaemonSet, recomputed only when the bound pods changed (sources hand
        back the same tuple until then): a pass over every pod is not per-tick work."""
        if view.bound is not self._ds_bound:
            self._ds_bound, self._ds = view.bound, view.daemonsets()
        return self._ds

    def _pending_keys(self, view: ClusterView) -> set[str]:
        """The pending pods' keys, recomputed only when the pending tuple changed (sources
        hand back the same tuple until then). Read-only for callers."""
        if view.pending is not self._pending_seen:
            self._pending_seen, self._pending_set = view.pending, {
                pp.pod.key for pp in view.pending
            }
        return self._pending_set

    def _pool_table(self, pools: Sequence[PoolSpec], offerings: Offerings) -> PoolTable:
        return self._cache.table(pools, offerings)

    async def _current_offerings(
        self, pools: Sequence[PoolSpec], daemonsets: tuple[PodSpec, ...] = ()
    ) -> Offerings:
        return await self._cache.current(pools, daemonsets)

    @property
    def _offerings(self) -> Offerings | None:
        return self._cache.offerings


def _destructive(action: Action) -> bool:
    """Actions that cannot be taken back if the cache they were decided on was stale."""
    return isinstance(action, RemoveNode | Evict) or (
        isinstance(action, Drain) and action.terminate
    )


def _target(action: Action) -> str:
    if isinstance(action, Evict):
        return action.pod.key
    return str(getattr(action, "node", ""))


def _fields(action: ScaleUp | RemoveNode) -> dict[str, object]:
    out = {f.name: getattr(action, f.name) for f in dataclasses.fields(action)}
    if isinstance(action, ScaleUp):
        out["pods"] = len(action.pods)
    return out


__all__ = ["Observer", "Reconciler", "Review"]
