"""Node lifecycle decisions: answering interruption notices, and seeing what the bill buys.

:func:`respond` turns one notice into actions, the moment it arrives:

- Spot interruption warning: cordon and taint the node, drain its workload pods so they are
  gone ``drain_margin_s`` before the 2-minute deadline, launch replacements at once on the
  next-best pools, and mark the node's pool unavailable for ``interrupted_pool_ttl_s``.
- Rebalance recommendation (elevated risk, often never followed): pre-provision and cordon
  (setting ``rebalance_action``); :func:`rebalance_expired` uncordons after the window.
- AWS Health scheduled change: like an interruption whose deadline is the start time.
- ASG terminate lifecycle action: drain, then complete the lifecycle action.
- Instance state change to stopping/stopped/shutting-down/terminated: forget the node.

:func:`pod_costs` and :func:`waste` say where the money goes; :func:`misplaced` finds pods
on nodes far dearer than they need, and :func:`migrations` evicts the restartable ones at a
bounded rate, only where the replacement is pinned away from the dear node and never in a
loop (:func:`why_not_migrated`).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scaler.core.actions import (
    Action,
    Cordon,
    Drain,
    DrainCause,
    Evict,
    Forget,
    LifecycleHook,
    ScaleUp,
    Uncordon,
)
from scaler.core.classkeys import class_items
from scaler.core.interruptions import (
    Notice,
    RebalanceRecommendation,
    ScheduledChange,
    SpotInterruption,
    StateChange,
    TerminateLifecycleAction,
    drain_deadline,
)
from scaler.core.memory import Memory
from scaler.core.model import (
    LABEL_POOL,
    NO_SCHEDULE,
    BoolArray,
    FloatArray,
    PodSpec,
    PoolSpec,
    Taint,
)
from scaler.core.offerings import Offerings, pool_table
from scaler.core.placement import cost_matrix, group_pods, place
from scaler.core.runtime import RuntimeHistory, lost_work_h, with_runs
from scaler.core.settings import Settings
from scaler.core.state import (
    ANNOTATION_DO_NOT_DISRUPT,
    ANNOTATION_PIN,
    ANNOTATION_PINNED_POOLS,
    ANNOTATION_RESTARTABLE,
    ANNOTATION_SAFE_TO_EVICT,
    BoundPod,
    ClusterView,
    Node,
    PendingPod,
)
from scaler.core.viewindex import node_index

INTERRUPTION_TAINT_KEY = "scaler.io/interrupted"
SPOT_NOTICE_S = 120.0
"""A Spot instance is reclaimed two minutes after its interruption warning (AWS docs)."""
REBALANCE_TAINT_KEY = "scaler.io/rebalance"
_GONE_STATES = ("stopping", "stopped", "shutting-down", "terminated")


def respond(
    notice: Notice,
    view: ClusterView,
    pools: Sequence[PoolSpec],
    offerings: Offerings,
    memory: Memory,
    settings: Settings,
    *,
    now: float,
    rng: np.random.Generator,
) -> list[Action]:
    """The actions for one notice. Reads ``memory``; the reconciler records what it did."""
    lc = settings.lifecycle
    by_instance = {n.instance_id: n for n in view.nodes if n.instance_id}
    actions: list[Action] = []
    for instance_id in notice.instance_ids:
        node = by_instance.get(instance_id)
        if isinstance(notice, TerminateLifecycleAction):
            hook = LifecycleHook(notice.asg, notice.hook, notice.token, instance_id)
            if node is None:
                # Not a node (yet, or any more): nothing to drain, let the ASG go on.
                actions.append(Drain("", (), now, "instance has no node", hook=hook,
                                     cause=DrainCause.TERMINATE_LIFECYCLE_ACTION))
                continue
            deadline = drain_deadline(notice, lc.drain_margin_s)
            actions.append(Cordon(node.name, "ASG is terminating the instance",
                                  Taint(INTERRUPTION_TAINT_KEY, "terminating", NO_SCHEDULE)))
            actions.append(Drain(node.name, _workload(view, node), deadline,
                                 "ASG terminate lifecycle action", hook=hook,
                                 cause=DrainCause.TERMINATE_LIFECYCLE_ACTION))
            continue
        if node is None:
            continue
        if isinstance(notice, StateChange):
            if notice.state in _GONE_STATES:
                actions.append(Forget(node.name, f"instance {notice.state}"))
            continue
        pods = _workload(view, node)
        if isinstance(notice, SpotInterruption | ScheduledChange):
            deadline = drain_deadline(notice, lc.drain_margin_s)
            what = ("Spot interruption warning" if isinstance(notice, SpotInterruption)
                    else f"scheduled {notice.code}")
            actions.append(Cordon(node.name, what,
                                  Taint(INTERRUPTION_TAINT_KEY, "true", NO_SCHEDULE)))
            actions.append(Drain(node.name, pods, deadline, f"{what}; evict before the deadline",
                                 terminate=True, cause=DrainCause(notice.kind)))
            actions += _replace(pods, node, pools, offerings, memory, settings, now, rng,
                                why=what,
                                view=view if isinstance(notice, SpotInterruption) else None)
        elif isinstance(notice, RebalanceRecommendation):
            if lc.rebalance_action == "none" or node.name in memory.interrupted:
                continue
            actions.append(Cordon(node.name, "rebalance recommendation",
                                  Taint(REBALANCE_TAINT_KEY, "true", NO_SCHEDULE)))
            rebalances = any(p.name == node.pool and p.capacity_rebalance for p in pools)
            if not rebalances:
                # A group with CapacityRebalance launches its own replacement: one more
                # here would be a second node for the same pods.
                actions += _replace(pods, node, pools, offerings, memory, settings, now, rng,
                                    why="rebalance recommendation", view=None)
            if lc.rebalance_action == "drain":
                actions.append(Drain(node.name, pods, now + lc.rebalance_window_s,
                                     "rebalance recommendation",
                                     cause=DrainCause.REBALANCE_RECOMMENDATION))
    return actions


def _workload(view: ClusterView, node: Node) -> tuple[PodSpec, ...]:
    return tuple(b.pod for b in view.bound if b.node == node.name and b.is_workload)


def drained_lives(view: ClusterView, node: str, *, now: float) -> dict[str, float]:
    """Workload -> expected remaining life (s) of the workload pods on ``node``: each one's
    age. Its work is lost with the node, and a pod that has run for a while tends to run as
    long again (a 3-week notebook interrupted after a week is not a 10-minute batch pod)."""
    return {
        workload_of(b.pod): max(now - b.started_s, 0.0)
        for b in view.bound
        if b.node == node and b.is_workload
    }


def wait_for_reclaimed(
    pods: Sequence[PodSpec],
    lives_s: Sequence[float],
    offerings: Offerings,
    available: BoolArray,
    reclaimed: dict[int, float],
    settings: Settings,
    *,
    now: float,
    lost_work_h: FloatArray | None = None,
) -> list[bool]:
    """For each pod, whether it should wait for a reclaimed pool to come back rather than
    take the best pool open now. ``lost_work_h`` (N,): each pod's expected lost work, which
    prices its Spot risk as placement does (:mod:`scaler.core.runtime`).

    ``available`` excludes the reclaimed pools; ``reclaimed`` maps their columns to the end
    of their backoff. A pod waits when its cheapest pool, reclaimed ones included, is a
    reclaimed one and the next pool's extra cost over the pod's expected remaining life
    exceeds the wait, priced at the next pool (as if the pod had rented it meanwhile):
    ``(next - own) x life > next x wait``. Nothing else fits: it waits anyway.
    """
    out = [False] * len(pods)
    if not pods or not reclaimed or not settings.lifecycle.wait_for_reclaimed_pool:
        return out
    every = available.copy()
    cols = np.fromiter(reclaimed, dtype=np.intp, count=len(reclaimed))
    every[cols] = True
    index = {id(p): i for i, p in enumerate(pods)}
    alive = [k for k, life in enumerate(lives_s) if life > 0]
    lost = None if lost_work_h is None else np.asarray(lost_work_h, dtype=np.float64)[alive]
    classes = group_pods([pods[k] for k in alive], lost)
    if not classes:
        return out
    reps = [c[0] for c in classes]
    req = np.array([p.requests.as_array() for p in reps]).reshape(len(reps), -1)
    class_lost = None
    if lost_work_h is not None:
        class_lost = np.array([float(lost_work_h[index[id(r)]]) for r in reps])
    matrix, _ = cost_matrix(reps, req, offerings, every, settings.placement,
                            lost_work_h=class_lost)
    for c, members in enumerate(classes):
        row = matrix[c]
        best = int(np.argmin(row))
        if not np.isfinite(row[best]) or best not in reclaimed:
            continue
        open_row = np.where(available, row, np.inf)
        nxt = float(open_row.min())
        own = float(row[best])
        wait_h = max(reclaimed[best] - now, 0.0) / 3600.0
        for pod in members:
            life_h = lives_s[index[id(pod)]] / 3600.0
            out[index[id(pod)]] = not np.isfinite(nxt) or (nxt - own) * life_h > nxt * wait_h
    return out


def hold_for_reclaimed(
    pending: Sequence[PendingPod],
    offerings: Offerings,
    memory: Memory,
    settings: Settings,
    *,
    now: float,
    headroom: FloatArray,
    runtimes: RuntimeHistory | None = None,
) -> tuple[list[PendingPod], list[PendingPod], float | None]:
    """Split pending pods into (placed now, held, when to look again): held are the pods of
    workloads a Spot interruption drained whose reclaimed pool is worth waiting for
    (:func:`wait_for_reclaimed`, each pod's Spot risk by ``runtimes``); they are placed
    again when its backoff ends."""
    if not pending:  # most ticks: nothing to hold, no need to walk the reclaimed pools
        return [], [], None
    reclaimed = {
        i: until
        for pool, until in memory.reclaimed_until_s.items()
        if memory.reclaim_only(pool, now) and (i := offerings.get(pool)) is not None
    }
    if not reclaimed or not memory.expected_life_s:
        return list(pending), [], None
    lives = [memory.expected_life_s.get(workload_of(pp.pod), (0.0, 0.0))[1] for pp in pending]
    if not any(lives):
        return list(pending), [], None
    available = memory.available(offerings, now) & (headroom >= 1)
    pods = [pp.pod for pp in pending]
    lost = lost_work_h(pods, runtimes or RuntimeHistory(), settings.placement)
    wait = wait_for_reclaimed(pods, lives, offerings, available, reclaimed, settings, now=now,
                              lost_work_h=lost)
    placed = [pp for pp, w in zip(pending, wait, strict=True) if not w]
    held = [pp for pp, w in zip(pending, wait, strict=True) if w]
    return placed, held, (min(reclaimed.values()) if held else None)


def _replace(
    pods: tuple[PodSpec, ...],
    node: Node,
    pools: Sequence[PoolSpec],
    offerings: Offerings,
    memory: Memory,
    settings: Settings,
    now: float,
    rng: np.random.Generator,
    *,
    why: str,
    view: ClusterView | None,
) -> list[Action]:
    """Launch now, on the next-best pools, the nodes the node's pods will need (the node's
    own pool is skipped: its capacity is being reclaimed)."""
    if not pods:
        return []
    headroom = pool_table(pools, offerings).headroom
    available = memory.available(offerings, now)
    own = offerings.get(node.pool) if node.pool is not None else None
    if own is not None:
        available[own] = False
    # Judged as their re-created pods will be: the runs lost here are in their history then.
    runtimes = RuntimeHistory()
    if view is not None:
        ran = {b.pod.key: max(now - b.started_s, 0.0) for b in view.bound if b.node == node.name}
        runtimes = with_runs(view.runtimes, [(p, ran.get(p.key, 0.0)) for p in pods])
    lost = lost_work_h(pods, runtimes, settings.placement)
    if own is not None and view is not None:
        # Pods that would rather wait out the backoff are left pending: decide() holds them
        # until the pool is back (wait_for_reclaimed there too), then launches on it.
        lives = drained_lives(view, node.name, now=now)
        life = [lives.get(workload_of(p), 0.0) for p in pods]
        until = now + settings.lifecycle.interrupted_pool_ttl_s
        wait = wait_for_reclaimed(pods, life, offerings, available & (headroom >= 1),
                                  {own: until}, settings, now=now, lost_work_h=lost)
        if lost is not None:
            lost = lost[[not w for w in wait]]
        pods = tuple(p for p, w in zip(pods, wait, strict=True) if not w)
        if not pods:
            return []
    placement = place(pods, offerings, headroom=headroom, available=available,
                      settings=settings.placement, rng=rng, lost_work_h=lost)
    actions: list[Action] = []
    for g in placement.groups:
        actions.append(ScaleUp(
            pool=g.pool.name, count=g.nodes, pods=tuple(p.key for p in g.pods),
            instance_type=g.instance_type, price_usd_per_hour=g.price_usd_per_hour,
            reason=f"replacing {node.name} ({why}): {g.reason}",
            runner_up=g.runner_up, runner_up_cost_usd_per_hour=g.runner_up_cost_usd_per_hour,
        ))
    return actions


def rebalance_expired(view: ClusterView, memory: Memory, *, now: float) -> tuple[list[Action], list[float]]:
    """Uncordon nodes whose rebalance window passed with no interruption."""
    if not memory.rebalance_until_s:
        return [], []
    present = node_index(view).by_name
    actions: list[Action] = []
    wakes: list[float] = []
    for node, until in memory.rebalance_until_s.items():
        if node not in present or node in memory.interrupted:
            continue
        if until <= now:
            actions.append(Uncordon(node, "no interruption followed the rebalance recommendation",
                                    taint_key=REBALANCE_TAINT_KEY))
        else:
            wakes.append(until)
    return actions, wakes


# ------------------------------------------------------------------------- the bill


@dataclass(frozen=True, slots=True)
class PodCost:
    """A running workload pod, what its node costs and what the cheapest fit would."""

    pod: PodSpec
    node: str
    pool: str
    node_price_usd_per_hour: float
    share_usd_per_hour: float
    """Its share of the node's price (the node's price split over its workload pods)."""
    cheapest_fit_usd_per_hour: float
    """The cheapest pool it could run on alone (inf if none fits any more)."""
    started_s: float = 0.0
    """When it was bound to the node."""

    @property
    def waste_usd_per_hour(self) -> float:
        if not np.isfinite(self.cheapest_fit_usd_per_hour):
            return 0.0
        return max(self.share_usd_per_hour - self.cheapest_fit_usd_per_hour, 0.0)


def pod_costs(view: ClusterView, offerings: Offerings, settings: Settings) -> list[PodCost]:
    """Every workload pod on a node of a known pool, priced (one cost matrix over classes)."""
    index = {p.name: i for i, p in enumerate(offerings.pools)}
    nodes = {n.name: n for n in view.nodes}
    # The bound pods themselves, not a map by pod key: a review of 20,000 pods built 20,000
    # key strings and a dict of them (~3 MiB that the allocator kept resident after it).
    on_node: dict[str, list[BoundPod]] = defaultdict(list)
    for b in view.bound:
        node = nodes.get(b.node)
        if b.is_workload and node is not None and node.pool in index:
            on_node[b.node].append(b)
    # Classes in order of first appearance (as group_pods), each pod's class kept in step;
    # by keys worked out here, not through the pending pods' table (classkeys.py).
    classes: dict[tuple[object, ...], int] = {}
    reps: list[PodSpec] = []
    of: list[int] = []
    for bs in on_node.values():
        for b in bs:
            key = class_items(b.pod, b.pod.constraints())
            c = classes.get(key)
            if c is None:
                c = classes[key] = len(reps)
                reps.append(b.pod)
            of.append(c)
    if not reps:
        return []
    req = np.array([p.requests.as_array() for p in reps]).reshape(len(reps), -1)
    matrix, _ = cost_matrix(reps, req, offerings, np.ones(len(offerings), bool), settings.placement)
    priced = np.where(np.isfinite(matrix), offerings.price[None, :], np.inf)
    cheapest = priced.min(axis=1) if len(offerings) else np.full(len(reps), np.inf)
    # By constraints: classes that differ only in priority or topology share one fit.
    fit = {p.constraints(): float(cheapest[c]) for c, p in enumerate(reps)}
    fit_of = [fit[p.constraints()] for p in reps]
    classes_in_order = iter(of)
    out = []
    for name, bs in on_node.items():
        node = nodes[name]
        assert node.pool is not None
        price = float(offerings.price[index[node.pool]])
        share = price / len(bs)
        for b in bs:
            out.append(PodCost(b.pod, name, node.pool, price, share,
                               fit_of[next(classes_in_order)], b.started_s))
    return out


@dataclass(frozen=True, slots=True)
class Waste:
    """USD/hour spent on nothing, by reason and pool: ``idle`` (Ready, no workload pod),
    ``booting`` (not Ready yet), ``oversized`` (node price minus its pods' cheapest fits)."""

    by_reason_pool: dict[tuple[str, str], float]
    node_cost_by_pool: dict[tuple[str, str], float]
    """(pool, capacity type) -> USD/hour of its nodes."""

    def total(self, reason: str | None = None) -> float:
        return sum(v for (r, _), v in self.by_reason_pool.items() if reason in (None, r))


def waste(view: ClusterView, offerings: Offerings, costs: Sequence[PodCost]) -> Waste:
    index = {p.name: i for i, p in enumerate(offerings.pools)}
    busy = {c.node for c in costs}
    by: dict[tuple[str, str], float] = defaultdict(float)
    node_cost: dict[tuple[str, str], float] = defaultdict(float)
    for n in view.nodes:
        i = index.get(n.pool) if n.pool is not None else None
        if i is None:
            continue
        price = float(offerings.price[i])
        node_cost[(n.pool or "", offerings.pools[i].capacity_type)] += price
        if not (n.ready and n.gpu_ready):
            by[("booting", n.pool or "")] += price
        elif n.name not in busy:
            by[("idle", n.pool or "")] += price
    for c in costs:
        by[("oversized", c.pool)] += c.waste_usd_per_hour
    return Waste(dict(by), dict(node_cost))


def misplaced(costs: Sequence[PodCost], settings: Settings) -> list[PodCost]:
    """Pods whose share of their node costs more than ``misplaced_factor`` times their
    cheapest fit, dearest waste first."""
    factor = settings.lifecycle.misplaced_factor
    bad = [c for c in costs
           if np.isfinite(c.cheapest_fit_usd_per_hour)
           and c.share_usd_per_hour > factor * c.cheapest_fit_usd_per_hour]
    return sorted(bad, key=lambda c: (-c.waste_usd_per_hour, c.pod.key))


def worth_moving(costs: Sequence[PodCost], settings: Settings, *, now: float) -> list[PodCost]:
    """Restartable pods dearer than their cheapest fit by less than ``misplaced_factor``
    (:func:`misplaced` has the others) whose saving over their expected remaining life, their
    age (a pod that has run long tends to run on), beats ``migration_restart_s`` of their
    node's price: a replacement that took the next pool after a Spot interruption goes back
    to the cheapest one when that pays, dearest waste first. :func:`migrations` moves them."""
    lc = settings.lifecycle
    factor = lc.misplaced_factor
    out = []
    for c in costs:
        fit, share = c.cheapest_fit_usd_per_hour, c.share_usd_per_hour
        if (
            np.isfinite(fit)
            and fit * (1.0 + 1e-9) < share <= factor * fit
            and c.pod.annotation(ANNOTATION_RESTARTABLE) == "true"
            and (share - fit) * max(now - c.started_s, 0.0) > share * lc.migration_restart_s
        ):
            out.append(c)
    return sorted(out, key=lambda c: (-c.waste_usd_per_hour, c.pod.key))


def migrations(
    bad: Sequence[PodCost],
    memory: Memory,
    settings: Settings,
    *,
    costs: Sequence[PodCost] = (),
    offerings: Offerings | None = None,
    now: float = 0.0,
) -> list[Action]:
    """Evict restartable misplaced pods, at most ``migrations_per_minute``, and only those
    whose replacement cannot come back to a node as dear (:func:`why_not_migrated`).
    ``costs`` is every running pod's (``bad`` is taken from it); with ``offerings``, pools
    backing off at ``now`` hold the pods they would have taken."""
    budget = settings.lifecycle.migrations_per_minute - len(memory.migrations_s)
    held_from = (
        cheapest_backing_off(offerings, memory, now) if offerings is not None else math.inf
    )
    seen = costs or bad
    pinned = pinned_namespaces(seen) if settings.pinning.enabled else set()
    out: list[Action] = []
    for c in bad:
        if budget <= 0:
            break
        if (
            c.pod.annotation(ANNOTATION_RESTARTABLE) == "true"
            and c.pod.annotation(ANNOTATION_DO_NOT_DISRUPT) != "true"
            and c.pod.annotation(ANNOTATION_SAFE_TO_EVICT) != "false"
            and why_not_migrated(c, pinned, memory, seen, bad, held_from=held_from) is None
        ):
            out.append(Evict(c.pod, c.node,
                             f"misplaced: ${c.share_usd_per_hour:.4f}/h on {c.node}, fits "
                             f"${c.cheapest_fit_usd_per_hour:.4f}/h"))
            budget -= 1
    return out


def why_not_migrated(
    c: PodCost,
    pinned: set[str],
    memory: Memory,
    costs: Sequence[PodCost],
    bad: Sequence[PodCost],
    *,
    held_from: float = math.inf,
) -> str | None:
    """Why evicting this misplaced pod would not move it (None: it would).

    Its controller re-creates it, and kube-scheduler puts an unpinned replacement on the
    emptiest node that fits: the dear node it just left. So a pod moves only when its
    replacement is pinned at admission to the cheaper tier: its namespace is pinned (a pod
    of it carries the webhook's ``scaler.io/pinned-pools``), it does not opt out, and it
    does not select a pool itself (the webhook leaves such pods alone). And as a backstop,
    per workload: while the replacement of its last migration has not run yet, or came back
    misplaced on the pool it left, it is not evicted again (for ``MIGRATION_MEMORY_S``).
    While a pool at most as dear as its cheapest fit backs off (``held_from``: the cheapest
    such pool's price; a reclaim, a failed launch), the replacement would be admitted to the
    tier the pod has now and bound back on its node: it waits for a later review.
    """
    pod = c.pod
    if pod.namespace not in pinned:
        return f"namespace {pod.namespace} is not pinned at admission"
    if c.cheapest_fit_usd_per_hour >= held_from:
        return "a pool as cheap as its fit is backing off: its replacement would come back here"
    # The webhook's own pin (it annotates what it pins) is no owner's choice: the
    # replacement passes the webhook again and gets today's tier.
    owner_selects = _selects_pool(pod) and not pod.annotation(ANNOTATION_PINNED_POOLS)
    if pod.annotation(ANNOTATION_PIN) == "false" or owner_selects:
        return "its replacement would not be pinned to a cheaper pool"
    workload = workload_of(pod)
    last = memory.migrated.get(workload)
    if last is None:
        return None
    at, pool = last
    # creationTimestamp has whole seconds: a replacement made in the eviction's second counts.
    after = [x for x in costs if workload_of(x.pod) == workload and x.pod.arrival_s > at - 1.0]
    if not after:
        return "the replacement of its last migration is not running yet"
    again = {x.pod.key for x in bad}
    if any(x.pod.key in again and x.pool == pool for x in after):
        return f"its last migration came back misplaced on {pool}"
    return None


def cheapest_backing_off(offerings: Offerings, memory: Memory, now: float) -> float:
    """The lowest price among the pools backing off at ``now`` (inf if none)."""
    prices = [float(offerings.price[i]) for name in memory.backoff_until_s
              if memory.backing_off(name, now) and (i := offerings.get(name)) is not None]
    return min(prices, default=math.inf)


_GENERATED = re.compile(r"-[bcdfghjklmnpqrstvwxz2456789]{5}$")


def workload_of(pod: PodSpec) -> str:
    """``namespace/name`` without the suffix Kubernetes generates for a controller's pods
    (generateName adds 5 characters of ``bcdfghjklmnpqrstvwxz2456789``: ReplicaSet and Job
    pods), so a re-created pod has its predecessor's key; a StatefulSet's replacement keeps
    its predecessor's name anyway."""
    return f"{pod.namespace}/{_GENERATED.sub('', pod.name)}"


def pinned_namespaces(costs: Sequence[PodCost]) -> set[str]:
    """Namespaces with a pod the pinning webhook pinned: their new pods are pinned too."""
    return {c.pod.namespace for c in costs if c.pod.annotation(ANNOTATION_PINNED_POOLS)}


def _selects_pool(pod: PodSpec) -> bool:
    return any(k == LABEL_POOL for k, _ in pod.node_selector) or any(
        r.key == LABEL_POOL for t in pod.affinity for r in t.requirements
    )
