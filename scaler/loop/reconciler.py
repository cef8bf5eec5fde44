"""The reconciler: observe -> decide -> act -> absorb outcomes. One tick at a time.

The same class runs in the cluster (ports backed by Kubernetes and AWS) and in the
simulator (ports backed by a simulated world). It owns the :class:`Memory` and the cached
offerings; it never decides anything itself.
"""

from __future__ import annotations

import dataclasses
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scaler.core.actions import (
    Action,
    Cordon,
    Decision,
    Drain,
    Evict,
    GiveUpLaunch,
    RemoveNode,
    ScaleUp,
)
from scaler.core.catalog import Catalog
from scaler.core.decide import decide
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
    worth_moving,
)
from scaler.core.memory import (
    LaunchFailureSeen,
    Memory,
    Outcome,
    RebalanceCordoned,
    SpotWarned,
    absorb,
)
from scaler.core.model import PodSpec, PoolSpec
from scaler.core.observed import ObservedPools
from scaler.core.offerings import Offerings, PoolProblem, PoolTable
from scaler.core.settings import Settings
from scaler.core.state import (
    BoundPod,
    ClusterView,
    PendingPod,
)
from scaler.core.viewindex import bound_index, node_index
from scaler.loop import actuation
from scaler.loop.actuation import WRITE_RETRY_S, Spawn
from scaler.loop.offerings_cache import OfferingsCache
from scaler.loop.ticklock import TickLock
from scaler.ports import (
    Actuator,
    Clock,
    ClusterSource,
    Fleet,
    PortError,
    PriceSource,
)
from scaler.telemetry import (
    CancelUnfulfilledFailed,
    ClusterSeen,
    DestructiveHeld,
    LaunchFailed,
    NoticeHandled,
    ReplacementFailed,
    Reviewed,
    Telemetry,
    ignore,
)

Observer = Telemetry
"""Receives each typed event (scaler/telemetry.py) worth logging or counting (adapters turn
them into structlog events and Prometheus metrics; the simulator ignores them)."""


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
        self.observe = observer or ignore
        self.memory = Memory()
        self._ds_bound: tuple[BoundPod, ...] | None = None
        self._ds: tuple[PodSpec, ...] = ()
        self._pending_seen: tuple[PendingPod, ...] | None = None
        self._pending_set: set[str] = set()
        self._cache = OfferingsCache(catalog, settings, clock, prices, self.observe,
                                     changes=fleet.changed)
        self._capped = ObservedPools()
        """Pools capped by what their registered nodes report (scaler/core/observed.py)."""
        self.last_decision: Decision | None = None
        self.last_decide_ms: float = 0.0
        self._retry_at_s: float | None = None
        self._lock = TickLock()
        """Held while reading pool sizes and writing new ones: a tick and an interruption
        response never both raise a pool from the same observed size. Taken without a
        checkpoint when free: what it guards awaits the ports at once, which is where a
        cancellation lands; a round trip through the event loop per tick bought nothing
        (the simulator ticks tens of thousands of times a run)."""

    # ------------------------------------------------------------------ one tick

    async def tick(
        self, *, spawn: Spawn | None = None
    ) -> Decision:
        """One observe-decide-act round. Drains it starts go to ``spawn`` (the control loop's
        task group) so a tick never waits out a drain; without one they run in place."""
        # The lock as a flag while free, not ``async with``: its enter and exit are two
        # coroutines awaited per tick for what one test does (the simulator ticks tens of
        # thousands of times a run, nearly always with nobody waiting).
        lock = self._lock
        if not lock.take_now():
            await lock.take()
        try:
            decision, view, pools = await self.plan()
            if self.observe is not ignore:  # the simulator's: no event to build per tick
                self.observe(ClusterSeen(view))
            self._retry_at_s = None
            # Most decisions hold no action: nothing to hold back, and no handler to run
            # (act's own test, made here so that no coroutine is made for nothing).
            if decision.actions:
                decision = self._hold_if_stale(decision)
            if decision.actions or decision.batch_closed:
                await self.act(decision, view, pools, spawn=spawn)
        finally:
            lock.release()
        if self._retry_at_s is not None and (
            decision.wake_at_s is None or self._retry_at_s < decision.wake_at_s
        ):
            # A write failed (throttled, an API error): ask again soon, not at the next event.
            decision = dataclasses.replace(decision, wake_at_s=self._retry_at_s)
        # A launch made by this tick must be looked at again by its provision timeout even if
        # nothing else happens: a node that never registers sends no event.
        launches = self.memory.launches
        deadline = min(map(_deadline, launches)) if launches else None
        if deadline is not None and (decision.wake_at_s is None or deadline < decision.wake_at_s):
            decision = dataclasses.replace(decision, wake_at_s=deadline)
        return decision

    async def respond(
        self,
        notices: Sequence[Notice],
        *,
        spawn: Spawn | None = None,
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
            self.observe(NoticeHandled(notice.kind, len(mine)))
        first = tuple(a for a in actions if not isinstance(a, ScaleUp))
        await self.act(Decision(now_s=now, actions=first), view, pools, spawn=spawn)
        launches = tuple(a for a in actions if isinstance(a, ScaleUp))
        if launches:
            async with self._lock:
                try:
                    fresh = self._capped(await self.fleet.pools(), view.reported_allocatable)
                except PortError as e:
                    # The next tick places the drained pods again; nothing is lost.
                    self.observe(ReplacementFailed(str(e)))
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
            moves = migrations(bad + pays, self.memory, self.settings, costs=costs,
                               offerings=offerings, now=self.clock.now())
            if moves:
                held = self._hold_if_stale(Decision(now_s=self.clock.now(), actions=tuple(moves)))
                await self.act(held, view, pools)
        result = Review(view, offerings, costs, waste(view, offerings, costs), bad, len(moves))
        self.observe(Reviewed(round(result.waste.total(), 4), len(bad), len(moves)))
        return result

    def _remember(
        self, notice: Notice, actions: list[Action], view: ClusterView, now: float
    ) -> None:
        by_instance = {n.instance_id: n for n in view.nodes if n.instance_id}
        for instance_id in notice.instance_ids:
            node = by_instance.get(instance_id)
            if node is None:
                continue
            outcome: Outcome | None = None
            if isinstance(notice, SpotInterruption):
                lives = drained_lives(view, node.name, now=now) if node.pool is not None else {}
                outcome = SpotWarned(node.name, node.pool, notice.deadline_s, lives)
            elif isinstance(notice, RebalanceRecommendation) and any(
                isinstance(a, Cordon) and a.node == node.name for a in actions
            ):
                outcome = RebalanceCordoned(node.name)
            if outcome is not None:
                absorb(self.memory, outcome, self.settings, now=now)

    async def plan(self) -> tuple[Decision, ClusterView, Sequence[PoolSpec]]:
        """Observe and decide, writing nothing (``scaler plan`` stops here)."""
        now = self.clock.now()
        memory, settings = self.memory, self.settings
        # Pools first: the view's node -> pool mapping then comes from the same discovery as
        # the pools' sizes (a node terminated by the last tick is no longer in its pool).
        pools = await self.fleet.pools()
        view = await self.cluster.snapshot()
        # Registered nodes tell what a pool's nodes really hold (scaler/core/observed.py).
        pools = self._capped(pools, view.reported_allocatable, view.reported_templates)
        failures = await self.fleet.launch_failures(memory.failures_seen_s)
        for failure in failures:
            if failure.at_s > memory.failures_seen_s:
                absorb(memory, LaunchFailureSeen(failure), settings, now=now)
                self.observe(LaunchFailed(failure.pool, failure.reason))
                try:
                    await self.fleet.cancel_unfulfilled(failure.pool)
                except PortError as e:
                    self.observe(CancelUnfulfilledFailed(failure.pool, str(e)))
        memory.forget(now=now, pending=self._pending_keys(view))
        table = await self._cache.table_for(pools, self._daemonsets(view))
        # Nodes on their way that no launch of this process explains get a provision timeout
        # (nodes_on_the_way's answer, without its wrapper's call per tick).
        memory.adopt(
            node_index(view).on_the_way(table, settings.placement.startup_taint_keys),
            now=now,
            timeout_s=settings.scale_up.provision_timeout_s,
        )
        t0 = time.perf_counter()
        decision = decide(view, table, memory, settings, now=now, rng=self.rng)
        memory.overdue.clear()  # judged by this decision (GiveUpLaunch)

        self.last_decide_ms = (time.perf_counter() - t0) * 1e3
        self.last_decision = decision
        return decision, view, pools

    async def act(
        self,
        decision: Decision,
        view: ClusterView,
        pools: Sequence[PoolSpec],
        *,
        spawn: Spawn | None = None,
    ) -> None:
        """Carry the decision out, one handler per action (scaler/loop/actuation.py)."""
        if not decision.actions and not decision.batch_closed:
            return  # most ticks decide nothing: no handler would run, no table to look up
        # One pass over the actions, no comprehension: most decisions that act mark one node.
        sizes: dict[str, int] = {}
        ups: set[str] = set()
        resized: list[str] = []  # the pools these actions resize
        for a in decision.actions:
            if isinstance(a, _RESIZES):
                resized.append(a.pool)
                if isinstance(a, ScaleUp):
                    ups.add(a.pool)
        if ups:  # the pool table only for the sizes a scale-up raises
            by_name = self._pool_table(pools, self._offerings).by_name if self._offerings else {
                p.name: p for p in pools
            }
            sizes = {name: by_name[name].current_size for name in ups if name in by_name}
        await actuation.act(
            actuation.Act(
                cluster=self.cluster, fleet=self.fleet, actuator=self.actuator,
                clock=self.clock, memory=self.memory, settings=self.settings,
                observe=self.observe, decision=decision, view=view, retry=self._retry,
                spawn=spawn,
            ),
            sizes,
        )
        # The next read of the pools looks first where these actions resized them.
        if resized:
            self._cache.resized(resized)

    def _retry(self, at_s: float) -> None:
        """Tick again by ``at_s`` (a write failed, a launch was given up)."""
        self._retry_at_s = at_s if self._retry_at_s is None else min(self._retry_at_s, at_s)

    def _hold_if_stale(self, decision: Decision) -> Decision:
        """The decision without its destructive actions (node removals, drains that end in
        a termination, evictions) while the cluster cache is older than
        ``scale_down.max_cache_age_s``: a watch that went quiet may be hiding a pod bound
        to the node since. They are decided again at the next tick, asked for soon."""
        for action in decision.actions:  # a loop, not a list: most decisions hold nothing
            if _destructive(action):
                break
        else:
            return decision
        held = [a for a in decision.actions if _destructive(a)]
        age = self.cluster.staleness_s()
        if age <= self.settings.scale_down.max_cache_age_s:
            return decision
        for action in held:
            self.observe(DestructiveHeld(type(action).__name__, _target(action), round(age, 1)))
        self._retry_at_s = decision.now_s + WRITE_RETRY_S
        return dataclasses.replace(
            decision, actions=tuple(a for a in decision.actions if not _destructive(a))
        )

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
    def table_seen(self) -> PoolTable | None:
        """The pool table of :attr:`pools_seen` (headroom as decide() counts it), when the
        last one built is of those pools; None otherwise."""
        return self._cache.table_seen

    @property
    def problems(self) -> list[PoolProblem]:
        """Pools left out of the offerings, and why."""
        return self._cache.problems

    def _daemonsets(self, view: ClusterView) -> tuple[PodSpec, ...]:
        """One spec per DaemonSet, from the bound pods' index (kept there across tuples while
        no DaemonSet pod comes or goes); looked up only when the bound pods changed (sources
        hand back the same tuple until then)."""
        if view.bound is not self._ds_bound:
            self._ds_bound, self._ds = view.bound, bound_index(view).daemonsets()
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


_deadline = operator.attrgetter("deadline_s")
_RESIZES = (ScaleUp, RemoveNode, GiveUpLaunch)
"""Actions that change their pool's desired size (a removal terminates with a decrement)."""


_MAY_DESTROY = (RemoveNode, Evict, Drain)
"""The kinds of action :func:`_destructive` may say yes to: one type test answers the rest
(MarkIdle, ScaleUp: most actions)."""


def _destructive(action: Action) -> bool:
    """Actions that cannot be taken back if the cache they were decided on was stale."""
    if not isinstance(action, _MAY_DESTROY):
        return False
    return not isinstance(action, Drain) or action.terminate


def _target(action: Action) -> str:
    if isinstance(action, Evict):
        return action.pod.key
    return str(getattr(action, "node", ""))


__all__ = [
    "Observer",
    "Reconciler",
    "Review",
]
