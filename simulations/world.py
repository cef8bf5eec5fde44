"""The simulated cluster and cloud: pools whose nodes boot, pods that run for their trace
duration, Spot nodes that get reclaimed, launches that fail.

The world changes only through two doors: events the engine delivers (:meth:`World.handle`)
and the port calls the reconciler makes (:mod:`simulations.ports`). After either, the engine
calls :meth:`World.kube_schedule`, which binds what kube-scheduler would bind
(:mod:`simulations.kubesched`). Costs are booked as things change (:mod:`simulations.ledger`).

What is modelled (docs/simulator.md has the reasons):

- A launch is a node at once, NotReady, billed from then; Ready after the boot time of its
  family; a GPU node advertises its GPUs ``gpu_advertise_s`` later (DOMAIN.md).
- A launched instance may never register (``never_register_rate``): it is billed but no
  node appears, until the reconciler gives it up (``Fleet.give_up``) after the provision
  timeout.
- A launch may fail (per-pool rate): the node never appears, and after
  ``launch_failure_delay_s`` the pool's desired size reverts and the failure is listed by
  ``launch_failures()``, as ASG scaling activities list it.
- Spot reclaims hit a capacity pool (instance type x zone): each such pool with running Spot
  nodes gets reclaim events at a constant rate, and an event warns each of its nodes with
  probability ``reclaim_fraction``; the rate is set so a node's expected interruptions per
  hour are those of its type's Spot Advisor bucket (``reclaim_by_pool=false``: each node
  draws its own time from that hazard at launch, independently). The warning goes to the reconciler (``Reconciler.respond``) or,
  for a policy that has no interruption handling, to a simulated node-termination-handler
  that cordons and drains the node; 2 minutes later the node is gone and its pool's desired
  size drops by one. Drained pods lose their work and are pending again, from scratch.
- A pod runs ``duration_s`` once bound (:mod:`simulations.engine` decides when a run ends).
"""

from __future__ import annotations

import functools
import math
import typing
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from scaler.core.catalog import Catalog
from scaler.core.model import (
    GPU,
    LABEL_POOL,
    LABEL_ZONE,
    NO_EXECUTE,
    NO_SCHEDULE,
    SPOT,
    FloatArray,
    InstanceType,
    PodSpec,
    PoolSpec,
    Resources,
)
from scaler.core.offerings import Offerings
from scaler.core.runtime import RuntimeRecorder
from scaler.core.state import (
    BoundPod,
    LaunchFailure,
    Node,
    PendingPod,
)
from scaler.core.viewchange import ViewsByKey
from scaler.core.viewindex import ViewIndexes
from simulations import events as ev
from simulations.clock import SimClock
from simulations.config import SimConfig
from simulations.events import EventQueue
from simulations.kubesched import KubeScheduler
from simulations.ledger import Ledger, Run
from simulations.nodetable import NodeTable
from simulations.objects import DONE, PENDING, RUNNING, SimNode, SimPod
from simulations.requests import WorldRequests

HOURS_PER_MONTH = 730.0


class _Kind(NamedTuple):
    """What every node of one pool launches as (:meth:`World._kind`)."""

    itype: InstanceType
    capacity_type: str
    price: float
    gpus: int
    gpu_ready: bool
    alloc: FloatArray
    """Allocatable without GPUs, copied into the node's table row (read only here)."""
    boot_s: float
    never_register: float


class World(WorldRequests):
    def __init__(
        self,
        *,
        pods: Sequence[PodSpec],
        pools: Sequence[PoolSpec],
        offerings: Offerings,
        catalog: Catalog,
        config: SimConfig,
        fit_usd_per_hour: Mapping[str, float],
        rng: np.random.Generator,
        queue: EventQueue,
        clock: SimClock,
        record: bool = False,
        admission: bool = False,
    ) -> None:
        self.clock = clock
        self.admission = admission
        """An admission webhook sees each pod as it is created, before kube-scheduler does:
        a new pod is queued for kube-scheduler once admitted (:meth:`admit`), not before."""
        self.offerings = offerings
        self.catalog = catalog
        self.config = config
        self.rng = rng
        self.queue = queue
        self.ledger = Ledger()
        self.table = NodeTable()
        self.sched = KubeScheduler(self.table, offerings)
        self.timeline: list[tuple[float, str, str]] | None = [] if record else None
        self.pool_specs = {p.name: p for p in pools}
        self.desired = {p.name: p.current_size for p in pools}
        self._pool_views = list({p.name: p for p in pools}.values())
        self._pool_at = {p.name: i for i, p in enumerate(self._pool_views)}
        self._pool_sized = {(p.name, p.current_size): p for p in self._pool_views}
        """The one value of each (pool, size), a pool's own for its first size: two values
        of a pool are equal exactly when they are the same object (:meth:`pool_views`)."""
        self._pools_cache: tuple[PoolSpec, ...] | None = None
        self._pools_moved: set[int] = set()
        """Places of ``_pool_views`` changed since ``_pools_cache`` was built."""
        self._pools_step: (
            tuple[tuple[PoolSpec, ...], tuple[PoolSpec, ...], tuple[int, ...]] | None
        ) = None
        """The last two pools tuples handed out and the places where they differ
        (:meth:`pools_changed`)."""
        self.nodes: dict[str, SimNode] = {}
        self.pods: dict[str, SimPod] = {}
        self.failures: list[LaunchFailure] = []
        self.indexes = ViewIndexes()
        """Kept across snapshots, as a live source keeps its own (scaler/core/viewindex.py),
        and told what changed in each new tuple of nodes or bound pods."""
        # What the cluster looks like: each object's current view by name, in the order the
        # objects appeared, and the tuples of them rebuilt only when that part changed.
        self._node_views: ViewsByKey[str, Node] = ViewsByKey(self.indexes.tell_nodes)
        self._bound_views: ViewsByKey[str, BoundPod] = ViewsByKey(self.indexes.tell_bound)
        self._pending_views: ViewsByKey[str, PendingPod] = ViewsByKey()
        self._stale_views: dict[str, SimNode] = {}
        """Nodes changed since the last snapshot, by name, in the order they first changed."""
        self.arrived: list[SimPod] = []
        """Pods arrived or made again since :meth:`take_new_pending` last asked (read only)."""
        self.filled = False
        """A pod was bound to a node that had none since :meth:`take_filled` last asked."""
        self._seq = 0
        self._zone_turn: dict[str, int] = {}
        self._capacity_pools: dict[tuple[str, str | None], dict[str, SimNode]] = {}
        """Spot nodes not yet warned, by capacity pool (type, zone): a reclaim's targets."""
        self._reclaim_armed: set[tuple[str, str | None]] = set()
        self.scale_ups = 0
        self.launch_failures = 0
        self.interruptions = 0
        self.evictions = 0
        self.finished = 0
        self.notices: list[SimNode] = []
        self.created: list[SimPod] = []
        self.runtimes = RuntimeRecorder()
        """How long finished and lost runs ran: the view's history (scaler/core/runtime.py),
        as the live source records pods that finish or are deleted after running."""
        self._label_cache: dict[tuple[int, str | None], tuple[tuple[str, str], ...]] = {}
        self._alloc_cache: dict[tuple[int, bool], Resources] = {}
        self._kinds: dict[int, _Kind] = {}
        self.failing: Counter[str] = Counter()
        """Failed launches per pool not surfaced yet."""
        self.cancelled: Counter[str] = Counter()
        """Of those, how many no longer count in the desired size (cancel_unfulfilled)."""
        arrivals = []
        # A trace's pods of one kind share their requests value: one read-only array each.
        arrays: dict[int, FloatArray] = {}
        for spec in pods:
            fit = fit_usd_per_hour.get(spec.key, math.nan)
            req = arrays.get(id(spec.requests))
            if req is None:
                req = arrays[id(spec.requests)] = spec.requests.as_array()
                req.flags.writeable = False
            pod = SimPod(spec, spec, req, fit, spec.constraints())
            self.pods[pod.key] = pod
            arrivals.append((spec.arrival_s, ev.ARRIVE, pod))
        queue.push_known(arrivals)
        for p in pools:
            i = offerings.get(p.name)
            if i is None:
                continue
            for _ in range(p.current_size):
                # Nodes the pool already has are up and advertising from the start.
                node = self._launch(p.name, i, 0.0, boot_s=0.0)
                node.gpu_ready = True
                self.table.set_gpus(node.slot, node.gpus)
                self._node_ready(node, 0.0)

    # ------------------------------------------------------------------ events

    def handle(self, kind: str, payload: object, now: float) -> bool:
        """Apply one event; True if the autoscaler should hear of it."""
        if kind == ev.ARRIVE:
            assert isinstance(payload, SimPod)
            self._log(now, "arrive", payload.key)
            self._pend(payload, now)
            self.arrived.append(payload)
            return False
        if kind == ev.POD_DONE:
            pod, run = typing.cast("tuple[SimPod, Run]", payload)
            if pod.run is not run:
                return False  # that run was lost meanwhile
            self.runtimes.record(pod.live, now - run.start_s)
            self._unbind(pod, now, lost=False)
            pod.state, pod.finished_s = DONE, now
            self.finished += 1
            self._log(now, "done", pod.key)
            return True
        if kind == ev.LAUNCH_FAILED:
            assert isinstance(payload, str)
            self.launch_failed(payload, now)
            return True
        if kind == ev.POOL_RECLAIM:
            key, per_hour = typing.cast("tuple[tuple[str, str | None], float]", payload)
            return self._pool_reclaim(key, per_hour, now)
        node = payload
        assert isinstance(node, SimNode)
        if not node.alive:
            return False
        if kind == ev.NODE_READY:
            self._node_ready(node, now)
        elif kind == ev.GPU_READY:
            self._gpu_ready(node, now)
        elif kind == ev.SPOT_NOTICE:
            self._spot_notice(node, now)
        elif kind == ev.NODE_RECLAIMED:
            self._log(now, "reclaimed", node.name)
            self._remove(node, now)
        else:
            raise ValueError(f"unknown event {kind!r}")
        return True

    def launch_failed(self, pool: str, now: float) -> None:
        """A failed launch surfaces: listed, and the desired size it raised reverts (unless
        ``cancel_unfulfilled`` already lowered the size past it)."""
        self.failing[pool] -= 1
        if self.cancelled[pool]:
            self.cancelled[pool] -= 1
        else:
            self.desired[pool] = max(self.desired[pool] - 1, self.pool_specs[pool].min_size)
            self._pool_changed(pool)
        reason = "InsufficientInstanceCapacity: there is no capacity for this type right now"
        self.failures.append(LaunchFailure(pool=pool, at_s=now, reason=reason))
        self.launch_failures += 1
        self._log(now, "launch-failed", pool)

    def kube_schedule(self) -> int:
        return self.sched.run(self._bind)

    def scheduling_pass(self) -> Callable[[], int]:
        """:meth:`kube_schedule` without this method's frame between the caller and the
        scheduler, for the engine's loop, which asks at every step (65,000 on DLRM). The
        caller holds it: the world holding it would tie itself into a reference cycle
        (:meth:`KubeScheduler.run`)."""
        return functools.partial(self.sched.run, self._bind)

    def all_done(self) -> bool:
        """Every pod has arrived and run its full duration."""
        return self.finished == len(self.pods)

    def take_new_pending(self) -> bool:
        """Did a pod that arrived (or was made again for an evicted one) since the last
        call stay pending (kube-scheduler found no node for it)?"""
        if not self.arrived:
            return False
        pending = [p for p in self.arrived if p.state == PENDING]
        for pod in pending:
            self._log(pod.since_s, "pending", pod.key)
        self.arrived.clear()
        return bool(pending)

    def take_filled(self) -> bool:
        """Was a pod bound to an empty node since the last call? That node is no longer
        idle: live, the bind is a pod watch event the loop ticks on (and clears the node's
        idle mark); other binds change nothing a decision reads that it did not count."""
        filled, self.filled = self.filled, False
        return filled

    def finish(self, end_s: float) -> None:
        """Stop the clock: settle every node, count running pods' work as done."""
        for node in list(self.nodes.values()):
            self.ledger.settle(node, end_s)
            for run in node.runs:
                self.ledger.completed(run)
        self.ledger.close(end_s)

    # --------------------------------------------------------------- pods

    def _pend(self, pod: SimPod, now: float) -> None:
        pod.state, pod.since_s = PENDING, now
        self._pending_views.set(pod.key, PendingPod(pod.live, now))
        if self.admission:
            self.created.append(pod)
        else:
            self.sched.add(pod)

    def take_created(self) -> list[SimPod]:
        """Pods created (arrived, or re-created after an eviction) since the last call: what
        the admission webhook sees, before kube-scheduler does (with :attr:`admission` on;
        each is to be passed to :meth:`admit`)."""
        out, self.created = self.created, []
        return [p for p in out if p.state == PENDING]

    def admit(
        self, pod: SimPod, live: PodSpec | None = None, *, exclusive: bool = False
    ) -> None:
        """The pod passed the admission webhook: ``live`` is the pod as the webhook changed
        it (and, ``exclusive``, labelled it and gave it the anti-affinity that keeps it alone
        on its node); None, left as it was. It is queued for kube-scheduler now, with
        :attr:`admission` on; without, it was queued as it was created and keeps its place."""
        if live is None:
            if self.admission:
                self.sched.add(pod)
            return
        if self.timeline is not None:
            tier = next(
                (r.values for t in live.affinity for r in t.requirements if r.key == LABEL_POOL),
                (),
            )
            self._log(pod.since_s, "admitted", f"{pod.key} {','.join(tier)}")
        if not self.admission:
            self.sched.remove(pod)
        pod.live, pod.exclusive = live, exclusive
        pod.class_key = live.constraints()
        if pod.key in self._pending_views:
            self._pending_views.set(pod.key, PendingPod(live, pod.since_s))
        self.sched.add(pod, keep_place=not self.admission)

    def _bind(self, pod: SimPod, node: SimNode) -> None:
        now = self.clock.now()
        self.ledger.settle(node, now)
        self.sched.remove(pod)
        self._pending_views.drop(pod.key)
        fit = pod.fit_usd_per_hour if math.isfinite(pod.fit_usd_per_hour) else 0.0
        run = Run(pod, node, now, fit)
        pod.state, pod.run, pod.runs = RUNNING, run, pod.runs + 1
        pod.pools.append(node.pool)
        pod.bound_view = BoundPod(pod.live, node.name, now)
        self._bound_views.set(pod.key, pod.bound_view)
        self.filled |= not node.runs
        node.runs.append(run)
        row = self.table.used_rows[node.slot]
        row += pod.req
        if pod.exclusive:
            self.table.hold_exclusive(node.slot, 1)
        self.ledger.pending_s.append(now - pod.since_s)
        self._log(now, "bound", pod.key, node.name)
        if pod.spec.duration_s is not None:
            self.queue.push(now + pod.spec.duration_s, ev.POD_DONE, (pod, run))

    def _unbind(self, pod: SimPod, now: float, *, lost: bool) -> None:
        run = pod.run
        assert run is not None
        node = run.node
        self.ledger.settle(node, now)
        node.runs.remove(run)
        row = self.table.used_rows[node.slot]
        row -= pod.req
        if pod.exclusive:
            self.table.hold_exclusive(node.slot, -1)
        self.sched.node_changed(node.slot)
        (self.ledger.lost if lost else self.ledger.completed)(run)
        pod.run, pod.bound_view = None, None
        self._bound_views.drop(pod.key)

    def _evict(self, node: SimNode, now: float) -> None:
        for run in list(node.runs):
            self._evict_pod(run.pod, now)

    def _evict_pod(self, pod: SimPod, now: float) -> None:
        """The pod loses its work and is pending again, unpinned, from scratch (its
        controller makes a new pod, which nothing has pinned yet)."""
        if pod.run is not None:
            self.runtimes.record(pod.live, now - pod.run.start_s)
        self._unbind(pod, now, lost=True)
        pod.lost_runs += 1
        self.evictions += 1
        pod.live, pod.class_key = pod.spec, pod.spec.constraints()
        pod.exclusive = False
        self._log(now, "evicted", pod.key)
        self._pend(pod, now)
        self.arrived.append(pod)  # its controller's new pod: a watch event, live

    # --------------------------------------------------------------- nodes

    def _launch(self, pool: str, i: int, now: float, *, boot_s: float | None = None) -> SimNode:
        kind = self._kinds.get(i) or self._kind(i)
        self._seq += 1
        zone = self._zone(pool, self.offerings.zones[i])
        node = SimNode(
            name=f"sim-{self._seq:05d}",
            pool=pool,
            pool_index=i,
            instance_type=kind.itype.name,
            capacity_type=kind.capacity_type,
            zone=zone,
            instance_id=f"i-{self._seq:017x}",
            price_usd_per_hour=kind.price,
            gpus=kind.gpus,
            created_s=now,
            settled_s=now,
            labels=self._labels(i, zone),
            gpu_ready=kind.gpu_ready,
        )
        node.slot = self.table.add(node, i, kind.alloc, zone)
        self.nodes[node.name] = node
        self.ledger.node_added(node, now)
        # Drawn only when it can happen, so every other random draw of a run stays as it was.
        if boot_s is None and kind.never_register > 0 and self.rng.random() < kind.never_register:
            node.registered = False
        self._refresh(node)
        self._log(now, "launch" if node.registered else "launch-unregistered", node.name, pool)
        if boot_s is None and node.registered:
            self.queue.push(now + kind.boot_s, ev.NODE_READY, node)
        if node.capacity_type == SPOT and self.config.spot.interruptions:
            bucket = kind.itype.spot_interruption_bucket
            if self.config.spot.reclaim_by_pool:
                self._join_capacity_pool(node, bucket, now)
            else:
                self._draw_interruption(node, bucket, now)
        return node

    def _kind(self, i: int) -> _Kind:
        """What a node of pool ``i`` launches as: the same for all of them, so worked out at
        its pool's first launch."""
        o = self.offerings
        itype = self.catalog[o.instance_type[i]]
        gpus = int(o.allocatable[i, GPU])
        alloc = o.allocatable[i].copy()
        alloc[GPU] = 0.0  # advertised once the node's GPUs are (``_gpu_ready``)
        alloc.flags.writeable = False
        kind = self._kinds[i] = _Kind(
            itype=itype,
            capacity_type=o.pools[i].capacity_type,
            price=float(o.price[i]),
            gpus=gpus,
            gpu_ready=not o.allocatable[i, GPU],
            alloc=alloc,
            boot_s=self.config.boot_s(itype.family, gpus > 0),
            never_register=self.config.never_register_rate(o.pools[i].name),
        )
        return kind

    def _labels(self, i: int, zone: str | None) -> tuple[tuple[str, str], ...]:
        """The labels of a node of pool ``i`` in ``zone`` (cached: nodes of a pool share them)."""
        key = (i, zone)
        labels = self._label_cache.get(key)
        if labels is None:
            d = dict(self.offerings.labels[i])
            if zone is not None:
                d[LABEL_ZONE] = zone
            labels = self._label_cache[key] = tuple(sorted(d.items()))
        return labels

    def _zone(self, pool: str, zones: tuple[str, ...]) -> str | None:
        """A multi-zone pool spreads its nodes over its zones in turn (ASG AZ balancing)."""
        if not zones:
            return None
        turn = self._zone_turn.get(pool, 0)
        self._zone_turn[pool] = turn + 1
        return zones[turn % len(zones)]

    def _hazard_per_hour(self, bucket: int | None) -> float:
        """A node's interruptions per hour, from its type's Advisor bucket (0: never)."""
        spot = self.config.spot
        rates = spot.monthly_rate_by_bucket
        rate = rates[bucket] if bucket is not None and bucket < len(rates) else None
        monthly = spot.monthly_rate_unknown if rate is None else rate
        if monthly <= 0:
            return 0.0
        return -math.log1p(-min(monthly, 1 - 1e-12)) / HOURS_PER_MONTH * spot.hazard_scale

    def _draw_interruption(self, node: SimNode, bucket: int | None, now: float) -> None:
        per_hour = self._hazard_per_hour(bucket)
        if per_hour <= 0:
            return
        after_s = float(self.rng.exponential(3600.0 / per_hour))
        self.queue.push(now + after_s, ev.SPOT_NOTICE, node)

    def _join_capacity_pool(self, node: SimNode, bucket: int | None, now: float) -> None:
        """The node becomes a target of its capacity pool's reclaims; the pool's event
        stream starts when it first has a node. An event left from a time the pool was
        empty stays valid when it fills again: the stream is memoryless."""
        per_hour = self._hazard_per_hour(bucket)
        if per_hour <= 0:
            return
        key = (node.instance_type, node.zone)
        self._capacity_pools.setdefault(key, {})[node.name] = node
        if key not in self._reclaim_armed:
            self._reclaim_armed.add(key)
            self._next_reclaim(key, per_hour / self.config.spot.reclaim_fraction, now)

    def _next_reclaim(self, key: tuple[str, str | None], per_hour: float, now: float) -> None:
        after_s = float(self.rng.exponential(3600.0 / per_hour))
        self.queue.push(now + after_s, ev.POOL_RECLAIM, (key, per_hour))

    def _pool_reclaim(self, key: tuple[str, str | None], per_hour: float, now: float) -> bool:
        """One reclaim of a capacity pool: each of its nodes not yet warned is warned with
        probability ``reclaim_fraction``, all at this instant."""
        members = self._capacity_pools.get(key)
        if not members:
            self._reclaim_armed.discard(key)
            return False
        nodes = list(members.values())
        hit = self.rng.random(len(nodes)) < self.config.spot.reclaim_fraction
        for node, taken in zip(nodes, hit, strict=True):
            if taken:
                self._spot_notice(node, now)
        if members:
            self._next_reclaim(key, per_hour, now)
        else:
            self._reclaim_armed.discard(key)
        return bool(hit.any())

    def _leave_capacity_pool(self, node: SimNode) -> None:
        members = self._capacity_pools.get((node.instance_type, node.zone))
        if members is not None:
            members.pop(node.name, None)

    def _node_ready(self, node: SimNode, now: float) -> None:
        self.ledger.settle(node, now)
        node.ready = True
        self._log(now, "ready", node.name)
        if node.gpus and not node.gpu_ready:
            self.queue.push(now + self.config.boot.gpu_advertise_s, ev.GPU_READY, node)
        else:
            self._schedulable(node)
        self._refresh(node)

    def _gpu_ready(self, node: SimNode, now: float) -> None:
        self.ledger.settle(node, now)
        node.gpu_ready = True
        self.table.set_gpus(node.slot, node.gpus)
        self._log(now, "gpu-advertised", node.name)
        self._schedulable(node)
        self._refresh(node)

    def _schedulable(self, node: SimNode) -> None:
        """Recompute whether kube-scheduler may use the node; a node that may now counts as
        changed (pending pods are tried against it)."""
        ok = (
            node.ready
            and node.gpu_ready
            and not node.cordoned
            and not (node.added_taints
                     and any(t.effect in (NO_SCHEDULE, NO_EXECUTE) for t in node.added_taints))
        )
        if ok and not self.table.ok.item(node.slot):
            self.sched.node_changed(node.slot)
        self.table.set_ok(node.slot, ok)

    def _spot_notice(self, node: SimNode, now: float) -> None:
        self.ledger.settle(node, now)
        self._leave_capacity_pool(node)
        self.interruptions += 1
        self._log(now, "spot-notice", node.name)
        handler = self.config.spot.notice_handler
        if handler == "nth":
            node.cordoned = True
            self._schedulable(node)
            self._evict(node, now)
            self._refresh(node)
        elif handler == "reconciler":
            self.notices.append(node)
        self.queue.push(now + self.config.spot.notice_s, ev.NODE_RECLAIMED, node)

    def take_notices(self) -> list[SimNode]:
        """Spot nodes warned since the last call, for the reconciler to respond to."""
        out, self.notices = self.notices, []
        return [n for n in out if n.alive]

    def _remove(self, node: SimNode, now: float, *, decrement: bool = True) -> None:
        self._evict(node, now)
        self._leave_capacity_pool(node)
        self.ledger.node_removed(node, now)
        node.alive = False
        self.table.remove(node.slot)
        del self.nodes[node.name]
        self._node_views.drop(node.name)
        self._stale_views.pop(node.name, None)
        if decrement:
            self.desired[node.pool] = max(self.desired[node.pool] - 1, 0)
            self._pool_changed(node.pool)

    def _refresh(self, node: SimNode) -> None:
        """The node changed: its view is rebuilt at the next snapshot (:meth:`_views_due`).
        A node often changes twice between two (tainted, then terminated; annotated and
        tainted in one tick), and only its state at the snapshot is ever seen."""
        if not node.registered:  # an instance without a Node: the cluster shows nothing
            self._node_views.drop(node.name)
            return
        self._stale_views[node.name] = node

    def _views_due(self) -> None:
        """Build the views of the nodes changed since the last snapshot, in the order they
        first changed: a node new since then joins the views where an eager build would
        have put it (after every node already there, before any that changed later)."""
        stale, self._stale_views = self._stale_views, {}
        views, taints, allocs = self._node_views, self.offerings.taints, self._alloc_cache
        for name, node in stale.items():
            # Positionally, in Node's field order: a node view is built per change (45,000
            # on openb), and keywords cost a third more.
            views.set(name, Node(
                name, node.pool, node.instance_type, node.capacity_type, node.zone,
                node.instance_id,
                allocs.get((node.pool_index, node.gpu_ready)) or self._allocatable(node),
                node.ready, node.gpu_ready,
                node.cordoned, node.created_s, node.labels,
                taints[node.pool_index] + tuple(node.added_taints),
                tuple(sorted(node.annotations.items())),
            ))

    def _allocatable(self, node: SimNode) -> Resources:
        """Cached per (pool, GPUs advertised): every node of a pool has the same."""
        key = (node.pool_index, node.gpu_ready)
        res = self._alloc_cache.get(key)
        if res is None:
            res = self._alloc_cache[key] = Resources.from_array(self.table.alloc[node.slot])
        return res

    def _log(self, now: float, what: str, *subject: object) -> None:
        """A line of the timeline (kept only when recording): its subject's parts joined by
        spaces, so a run that does not record builds no string per event."""
        if self.timeline is not None:
            self.timeline.append((now, what, " ".join(map(str, subject))))
