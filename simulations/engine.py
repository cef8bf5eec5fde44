"""The discrete-event engine: a heap of events, simulated time, and the real reconciler.

One run is a pure function of (pods, pools, catalog, settings, simulator config, seed):
events are ordered by (time, phase, sequence) and every random draw comes from generators
seeded from ``seed`` (one stream for the world, one for the reconciler's decisions).

The reconciler — :class:`scaler.loop.reconciler.Reconciler`, the class that runs in the
cluster — is driven inside one ``anyio.run``:

- after each batch of world events that the autoscaler would hear about (a pod pending, a
  node Ready or advertising GPUs, a pod finished, a node gone, a launch failure listed) —
  at once for event-driven policies (``scan_interval_s`` = 0), on the next multiple of the
  scan interval for cluster-autoscaler-like ones;
- and at the last decision's ``Decision.wake_at_s`` (batch window end, idle timer, backoff
  end), rounded up to the scan grid for scanning policies. Only the last: a decision asks
  for the earliest time anything it knows of falls due, so a later decision's wake replaces
  an earlier one, as it does in the live loop (scaler/loop/runner.py sleeps until the
  latest decision's wake time or a change).

Nothing else ticks: simulated time in which nothing happens costs nothing.

Around the reconciler run the live process's own pipelines (the objects :mod:`scaler.app`
composes, over simulated ports):

- admission: each new pod passes :func:`scaler.loop.admission.make_chooser`'s chooser, the
  one the live webhook asks, before kube-scheduler sees it;
- interruptions: the world's Spot warnings go into a
  :class:`~simulations.ports.SimInterruptionFeed` as EventBridge messages and come out
  through :func:`scaler.loop.notices.notice_pass` (parse, dedup, respond, ack) at once;
- reviews: ``Reconciler.review`` every :data:`~scaler.loop.review.REVIEW_INTERVAL_S` of
  simulated time, as the live leader runs it (misplaced and worth-moving pods migrated),
  while anything else is still to happen. A review migrates only restartable pods, so a run
  whose workload has none skips them (the simulator exports no metrics).
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import numpy as np

from scaler.core.actions import Decision
from scaler.core.catalog import Catalog
from scaler.core.interruptions import Dedup
from scaler.core.model import PodSpec, PoolSpec, SpecError
from scaler.core.settings import Settings
from scaler.core.state import ANNOTATION_RESTARTABLE
from scaler.loop.admission import PinChooser, make_chooser
from scaler.loop.notices import notice_pass
from scaler.loop.reconciler import Reconciler
from scaler.loop.review import REVIEW_INTERVAL_S
from scaler.ports import PortError
from simulations import events as ev
from simulations.admission import pinned
from simulations.clock import SimClock
from simulations.config import SimConfig
from simulations.events import EventQueue
from simulations.objects import PENDING
from simulations.ports import SimCluster, SimFleet, SimInterruptionFeed
from simulations.scorecard import Scorecard, oracle_cost, percentiles, shared_fit_prices
from simulations.world import World

ReconcilerFactory = Callable[..., Reconciler]
"""Builds the reconciler from the keywords :class:`Reconciler` takes (tests wrap a port or
tell one to fail first)."""
Progress = Callable[[float], None]

NOTICES: Final = "notices"
"""A reconcile-phase event: read the interruption feed again (a failed respond's messages
are visible again)."""
REVIEW: Final = "review"
RARE_COLLECTIONS: Final = (5_000_000, 10, 1_000_000)
"""The collector's thresholds inside :func:`rare_collections`: a young collection once five
million more container objects are alive than at the last one (openb and DLRM runs end
about half a million up: none), a full one never."""


@contextlib.contextmanager
def rare_collections() -> Iterator[None]:
    """The cyclic garbage collector all but off inside. A run, or a trace being read, makes
    no cyclic garbage (measured: the collector freed nothing in runs of openb, DLRM and the
    bundled traces, under every policy, launch failures included), yet its passes walk what
    the run keeps (pods, nodes, runs, recorded calls): 0.1 to 0.2 s of young and middle
    collections a run, plus four to six full ones at 0.2 to 0.45 s in all. Should some run
    make cycles, they are still freed, five million objects at a time. The caller's
    thresholds come back after."""
    thresholds = gc.get_threshold()
    gc.set_threshold(*RARE_COLLECTIONS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def real_reconciler(**kwargs: Any) -> Reconciler:
    return Reconciler(**kwargs)


def nominal_end(pods: Sequence[PodSpec], until_s: float | None) -> float:
    """``until_s``, else when the last pod would finish had every pod started on arrival."""
    if until_s is not None:
        return until_s
    ends = [p.arrival_s + p.duration_s for p in pods if p.duration_s is not None]
    if not ends:
        raise SpecError("trace", "no pod has a duration_s; say how long to run with --until")
    return max(ends)


@dataclass
class Simulation:
    pods: Sequence[PodSpec]
    pools: Sequence[PoolSpec]
    catalog: Catalog
    settings: Settings
    config: SimConfig = field(default_factory=SimConfig)
    seed: int = 0
    until_s: float | None = None
    record: bool = False
    """Keep the world's timeline, the decisions and the ports' calls (tests read them)."""
    trace: str = ""
    policy: str = ""
    overrides: Mapping[str, str] = field(default_factory=dict)
    reconciler_factory: ReconcilerFactory = real_reconciler
    progress: Progress | None = None

    def __post_init__(self) -> None:
        self.nominal_end_s = nominal_end(self.pods, self.until_s)
        self.end_s = self.nominal_end_s
        """When the run stopped (set by :meth:`run`)."""
        kept = [p for p in self.pods if p.arrival_s <= self.nominal_end_s]
        if len(kept) < len(self.pods) or not isinstance(self.pods, tuple):
            self.pods = kept  # else the caller's tuple, so runs of one trace share fit prices
        # The world needs only what a node is (allocatable, labels, taints, price), which
        # the oracle's offerings already hold.
        self.fits, offerings = shared_fit_prices(self.pods, self.pools, self.catalog)
        # The chooser answers () when pinning is off: the webhook is left out then.
        webhook = self.config.cluster.admission_webhook and self.settings.pinning.enabled
        world_seed, decide_seed = np.random.SeedSequence(self.seed).spawn(2)
        self.queue = EventQueue()
        self.clock = SimClock()
        self.world = World(
            pods=self.pods,
            pools=self.pools,
            offerings=offerings,
            catalog=self.catalog,
            config=self.config,
            fit_usd_per_hour=self.fits,
            rng=np.random.default_rng(world_seed),
            queue=self.queue,
            clock=self.clock,
            record=self.record,
            admission=webhook,
        )
        self.cluster = SimCluster(self.world, self.clock, record=self.record)
        self.fleet = SimFleet(self.world, self.clock, self.catalog, record=self.record)
        self.reconciler = self.reconciler_factory(
            cluster=self.cluster,
            fleet=self.fleet,
            actuator=self.cluster,
            catalog=self.catalog,
            settings=self.settings,
            clock=self.clock,
            rng=np.random.default_rng(decide_seed),
            prices=self.fleet,
        )
        self.choose: PinChooser | None = (
            make_chooser(self.reconciler, self.world.runtimes.history) if webhook else None
        )
        self.feed = SimInterruptionFeed(self.clock, record=self.record)
        self.dedup = Dedup()
        self.review_s = REVIEW_INTERVAL_S
        self.reviews = 0
        self._next_review_s: float | None = None
        self.scan_s = self.settings.scale_up.scan_interval_s
        self.ticks = 0
        self.decisions: list[Decision] = []
        self._tick_at: set[float] = set()
        """When ticks are due for a change heard (one per time)."""
        self._wake_s: float | None = None
        """When the last decision asked to be woken: the only wake that still holds, as in
        the live loop, which sleeps until the latest decision's wake time or a change."""

    # ----------------------------------------------------------------- running

    def run(self) -> Scorecard:
        with rare_collections():
            anyio.run(self._loop)
        return self.scorecard()

    async def _loop(self) -> None:
        queue, world = self.queue, self.world
        # Looked up once, not per event (86,000 on DLRM): none of these is ever replaced.
        choose, feed, advance = self.choose, self.feed, self.clock.advance
        handle, pop_at, kube_schedule = world.handle, queue.pop_at, world.scheduling_pass()
        take_new_pending, take_filled = world.take_new_pending, world.take_filled
        tick, world_phase = self.reconciler.tick, ev.WORLD
        scanning = self.scan_s > 0
        nominal = self.nominal_end_s
        drain = self.until_s is None
        hard_end = nominal + self.config.run.drain_cap_s if drain else nominal
        report_every = max(len(self.pods) // 200, 1) * 4
        handled = 0
        stop = hard_end
        if any(p.annotation(ANNOTATION_RESTARTABLE) == "true" for p in self.pods):
            self._next_review_s = self.review_s
            queue.push(self.review_s, REVIEW, None, phase=ev.RECONCILE)
        while (entry := queue.pop_until(hard_end)) is not None:
            t, phase, kind, payload = entry
            if (
                self._next_review_s is not None and not len(queue)
                and (t, phase) == (self._next_review_s, ev.RECONCILE)
            ):
                continue  # the next review is all that is left: nothing to review any more
            advance(t)
            if phase == world_phase:
                heard = handle(kind, payload, t)
                handled += 1
                while (event := pop_at(t, world_phase)) is not None:
                    heard |= handle(*event, t)
                    handled += 1
                # As _schedule and _deliver_notices, without a coroutine each when there is
                # nothing to admit or deliver (most events).
                if choose is not None and world.created:
                    await self._admit()
                kube_schedule()
                if world.notices or feed.queue:
                    heard |= await self._deliver_notices()
                # An arrival matters only if kube-scheduler found no node for it, or put it
                # on an empty node. (Asked only when there is something to take.)
                if world.arrived:
                    heard |= take_new_pending()
                if world.filled:
                    heard |= take_filled()
                if drain and t >= nominal and world.all_done():
                    stop = t
                    break
                if heard:
                    self._tick_after_change(t)
                if self.progress is not None and handled % report_every == 0:
                    self.progress(min(t / nominal, 1.0) if nominal > 0 else 1.0)
                continue
            if kind == NOTICES:
                if await self._deliver_notices():
                    self._tick_after_change(t)
                continue
            if kind == REVIEW:
                await self._review(t)
                continue
            if t in self._tick_at:
                self._tick_at.discard(t)
            elif t != self._wake_s:
                continue  # a wake a later decision superseded (or one this time already had)
            decision = await tick()
            self.ticks += 1
            if self.record:
                self.decisions.append(decision)
            if choose is not None and world.created:
                await self._admit()
            kube_schedule()
            # Pods its drains evicted and pods bound to empty nodes are watch events, live.
            pending = take_new_pending() if world.arrived else False
            if (world.filled and take_filled()) or pending:
                self._tick_after_change(t)
            wake = decision.wake_at_s
            self._wake_s = None
            if wake is not None and wake > t:
                self._wake_s = self._on_grid(wake) if scanning else wake
                if self._wake_s not in self._tick_at:
                    queue.push(self._wake_s, ev.TICK, None, phase=ev.RECONCILE)
        else:
            # Nothing left to happen: the run ends with its last event (or the nominal end).
            stop = min(max(nominal, self.clock.now()), hard_end)
        self.end_s = stop
        self.clock.advance(max(stop, self.clock.now()))
        world.finish(stop)
        if self.progress is not None:
            self.progress(1.0)

    async def _review(self, t: float) -> None:
        """``Reconciler.review`` as the live leader runs it; its evictions re-create pods,
        which pass admission and may need a tick."""
        await self.reconciler.review()
        self.reviews += 1
        await self._schedule()
        if self.world.take_new_pending() | self.world.take_filled():
            self._tick_after_change(t)
        self._next_review_s = t + self.review_s
        self.queue.push(self._next_review_s, REVIEW, None, phase=ev.RECONCILE)

    async def _deliver_notices(self) -> bool:
        """The world's Spot warnings go into the feed as EventBridge messages and through
        the live pipeline at once (live, SQS long-polling hands them over within a second).
        A failed respond leaves its messages in the feed: they are read again when SQS would
        show them again. True if any notice was received."""
        if self.world.notices:
            for node in self.world.take_notices():
                self.feed.spot_warning(node.instance_id)
        if not self.feed.queue:
            return False
        received = 0
        while self.feed.visible():
            try:
                got = await notice_pass(self.feed, self.dedup, self.reconciler, wait_s=0)
            except PortError:
                retry = self.clock.now() + self.feed.visibility_timeout_s
                self.queue.push(retry, NOTICES, None, phase=ev.RECONCILE)
                continue
            if not got:
                break
            received += got
        if received:
            await self._schedule()
        return received > 0

    async def _schedule(self) -> None:
        """New pods pass the admission webhook, then kube-scheduler binds what it can."""
        if self.choose is not None and self.world.created:
            await self._admit()
        self.world.kube_schedule()

    async def _admit(self) -> None:
        assert self.choose is not None
        for pod in self.world.take_created():
            pin = await self.choose(pod.live)
            if pin:
                live = pinned(pod.live, pin.pools)
                # As pin_patch: a pod that could not be pinned gets no label either.
                self.world.admit(pod, live, exclusive=pin.exclusive and live is not pod.live)
            else:
                self.world.admit(pod)

    def _on_grid(self, t: float) -> float:
        if self.scan_s <= 0:
            return t
        return math.ceil(t / self.scan_s - 1e-9) * self.scan_s

    def _tick_after_change(self, t: float) -> None:
        """A tick at ``t`` on the grid, unless one is due then already."""
        if self.scan_s > 0:
            t = self._on_grid(t)
        if t not in self._tick_at:
            self._tick_at.add(t)
            self.queue.push(t, ev.TICK, None, phase=ev.RECONCILE)

    # --------------------------------------------------------------- results

    def scorecard(self) -> Scorecard:
        world, ledger = self.world, self.world.ledger
        pods = world.pods.values()
        return Scorecard(
            trace=self.trace,
            policy=self.policy,
            overrides=dict(self.overrides),
            seed=self.seed,
            pods=len(world.pods),
            span_s=self.nominal_end_s,
            end_s=self.end_s,
            total_cost_usd=ledger.total_usd,
            oracle_cost_usd=oracle_cost(self.pods, self.fits, self.until_s),
            on_demand_cost_usd=ledger.cost_usd["on-demand"],
            spot_cost_usd=ledger.cost_usd["spot"],
            useful_usd=ledger.useful_usd,
            waste_usd=dict(ledger.waste_usd),
            pending_s=percentiles(ledger.pending_s),
            node_hours_by_pool={k: v / 3600.0 for k, v in ledger.node_seconds_by_pool.items()},
            scale_ups=world.scale_ups,
            launch_failures=world.launch_failures,
            interruptions=world.interruptions,
            pods_finished=sum(1 for p in pods if p.finished_s is not None),
            pods_lost=sum(1 for p in pods if p.state == PENDING),
            unplaceable=sum(1 for p in pods if p.unplaceable),
            ticks=self.ticks,
            series={
                "t_s": list(ledger.series_t),
                "usd_per_hour": list(ledger.series_usd_per_hour),
                "nodes": [float(n) for n in ledger.series_nodes],
            },
            pool_changes=tuple(ledger.pool_changes),
            waste_spans=tuple(ledger.waste_spans),
        )
