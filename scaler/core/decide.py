"""One decision: observe a cluster view, return the actions and when to be asked again.

``decide`` is the single entry point the live loop and the simulator share. It is pure:
the view, the pools, the offerings, the memory and the settings go in, a
:class:`~scaler.core.actions.Decision` comes out; ``now`` and ``rng`` are arguments.

Scale-up, in order:
1. Capacity already coming: a pool's desired size minus its Ready nodes is in flight. Pods
   the memory knows a launch for are covered; after a restart (no memory) pending pods
   that fit a pool's in-flight slots are covered too, so a restart never scales twice.
2. Batching: new pending pods wait until ``batch_idle_s`` after the last arrival, at most
   ``batch_max_s`` after the first, then go as one decision.
3. Placement (:func:`scaler.core.placement.place`) with pool headroom and backoff.
4. Global limits (:mod:`scaler.core.limits`: nodes, USD/hour, nodes per decision) cut the
   placement in its own order; the pods held back are told which limit held them.

Scale-down: a Ready node with no workload pod (DaemonSet and mirror pods do not count) is
idle from the time recorded on it; after its pool's idle timeout it is removed, unless
scale-down is disabled on it, its pool is at min size, pods are waiting for its pool, the
cluster scaled up too recently, or the removal budget for the minute is spent.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from scaler.core.actions import (
    Action,
    Decision,
    Drain,
    MarkIdle,
    NotifyUnplaceable,
    PinPod,
    RemoveNode,
    ScaleUp,
)
from scaler.core.lifecycle import INTERRUPTION_TAINT_KEY, SPOT_NOTICE_S, rebalance_expired
from scaler.core.limits import NEXT_STEP_S, apply_limits
from scaler.core.memory import Memory
from scaler.core.model import PodSpec, PoolSpec
from scaler.core.offerings import Offerings, PoolTable, is_startup_taint, pool_table
from scaler.core.pinning import label_pools
from scaler.core.placement import cost_matrix, group_pods, place
from scaler.core.settings import Settings
from scaler.core.state import (
    ANNOTATION_DO_NOT_DISRUPT,
    ANNOTATION_DRAIN_DEADLINE,
    ANNOTATION_IDLE_SINCE,
    ANNOTATION_SAFE_TO_EVICT,
    ANNOTATION_SCALE_DOWN_DISABLED,
    BoundPod,
    ClusterView,
    Node,
    PendingPod,
)
from scaler.core.topology import pin_pending

_EPS = 1e-6


def decide(
    view: ClusterView,
    pools: Sequence[PoolSpec],
    offerings: Offerings,
    memory: Memory,
    settings: Settings,
    *,
    now: float,
    rng: np.random.Generator,
    table: PoolTable | None = None,
) -> Decision:
    """``table`` is :func:`~scaler.core.offerings.pool_table` of ``pools``, if the caller
    keeps one (the reconciler does, per pools sequence); else it is built here."""
    table = table if table is not None else pool_table(pools, offerings)
    by_name = table.by_name
    actions: list[Action] = []
    wakes: list[float] = []

    busy: set[str] = set()
    others: list[BoundPod] = []  # DaemonSet and mirror pods: they never make a node busy
    for b in view.bound:
        if b.is_workload:
            busy.add(b.node)
        else:
            others.append(b)
    uncovered, waiting_for = _uncovered(view, table, offerings, memory, settings, now, busy)
    uncovered = _above_priority_cutoff(uncovered, settings)
    uncovered = pin_pending(uncovered, view, offerings, memory, now, settings.placement)
    held: list[PendingPod] = []
    batch_closed = False
    if uncovered:
        close = _batch_close(uncovered, memory, settings)
        if close is not None and now + _EPS < close:
            held = uncovered
            wakes.append(close)
        else:
            batch_closed = True
            actions += _scale_up(uncovered, table, offerings, memory, settings, now, rng)
    wakes += [a.retry_at_s for a in actions if isinstance(a, NotifyUnplaceable) and a.retry_at_s]
    wanted = set(waiting_for.values()) | {a.pool for a in actions if isinstance(a, ScaleUp)}
    if held:
        wanted |= _feasible_pools(held, offerings, settings)
    down, down_wakes = _scale_down(
        view, by_name, offerings, memory, settings, now, wanted, busy, others
    )
    actions += down
    wakes += down_wakes
    uncordon, uncordon_wakes = rebalance_expired(view, memory, now=now)
    actions += uncordon
    wakes += uncordon_wakes
    actions += _unfinished_drains(view, memory, settings, now)
    if settings.pinning.enabled:
        actions += label_pools(view)
    wakes += [launch.deadline_s for launch in memory.launches]
    if memory.backoff_until_s and any(isinstance(a, NotifyUnplaceable) for a in actions):
        wakes.append(min(memory.backoff_until_s.values()))
    future = [w for w in wakes if w > now + _EPS]
    return Decision(
        now_s=now,
        actions=tuple(actions),
        wake_at_s=min(future) if future else None,
        waiting=tuple(p.pod.key for p in held) + tuple(sorted(waiting_for)),
        batch_closed=batch_closed,
    )


# --------------------------------------------------------------------------- scale-up


def _uncovered(
    view: ClusterView,
    table: PoolTable,
    offerings: Offerings,
    memory: Memory,
    settings: Settings,
    now: float,
    busy: set[str],
) -> tuple[list[PendingPod], dict[str, str]]:
    """Pending pods no node is coming for, and pod key -> pool for those one is. A pool
    backing off after a failed launch has nothing on its way, whatever its desired size."""
    if not view.pending:
        return [], {}
    # A node still carrying a startup taint (an agent not ready yet) is capacity on its way.
    keys = settings.placement.startup_taint_keys
    ready = Counter(
        n.pool
        for n in view.nodes
        if n.pool is not None and n.ready and n.gpu_ready
        and not any(is_startup_taint(t, keys) for t in n.taints)
    )
    # Capacity on its way: nodes asked for but not Ready (none from a pool backing off: its
    # launch failed).
    slots = {
        p.name: p.current_size - ready[p.name]
        for p in table.sized
        if p.current_size > ready[p.name] and not memory.backing_off(p.name, now)
    }
    # A pod we launched a node for also waits for a fresh empty Ready node of that pool: it
    # came up and the scheduler is about to bind the pod. Only such pods: for any other pod
    # the scheduler has had its chance at that node. A node another pod took is neither, so
    # the pods it was bought for are placed again at once, not after the provision timeout.
    fresh = now - settings.scale_up.bind_grace_s
    fresh_empty: Counter[str] = Counter(
        n.pool
        for n in view.nodes
        if n.pool is not None and n.schedulable_ready and n.created_s >= fresh
        and n.name not in busy
    )
    in_flight = memory.in_flight()
    waiting_for: dict[str, str] = {}
    rest: list[PendingPod] = []
    for pp in view.pending:
        pool = in_flight.get(pp.pod.key)
        if pool is not None and pool in table.by_name and slots.get(pool, 0) > 0:
            slots[pool] -= 1
            waiting_for[pp.pod.key] = pool
        elif pool is not None and pool in table.by_name and fresh_empty[pool] > 0:
            fresh_empty[pool] -= 1
            waiting_for[pp.pod.key] = pool
        else:
            rest.append(pp)
    if rest and any(v > 0 for v in slots.values()):
        rest = _cover_by_slots(rest, slots, offerings, settings, waiting_for)
    return rest, waiting_for


def _above_priority_cutoff(pending: list[PendingPod], settings: Settings) -> list[PendingPod]:
    """Expendable pods (priority below the cutoff) never cause a scale-up, and never hold a
    batch window open: they run only where room already is (cluster-autoscaler's
    expendable-pods-priority-cutoff)."""
    cutoff = settings.scale_up.priority_cutoff
    if all(pp.pod.priority >= cutoff for pp in pending):
        return pending
    return [pp for pp in pending if pp.pod.priority >= cutoff]


def _cover_by_slots(
    pending: list[PendingPod],
    slots: dict[str, int],
    offerings: Offerings,
    settings: Settings,
    waiting_for: dict[str, str],
) -> list[PendingPod]:
    """Nodes are coming that no remembered launch explains (we restarted, or someone else
    scaled): let the pods that fit them wait for them, cheapest slot first."""
    pods = [pp.pod for pp in pending]
    classes = group_pods(pods)
    reps = [c[0] for c in classes]
    req = np.array([p.requests.as_array() for p in reps]).reshape(len(reps), -1)
    matrix, _ = cost_matrix(reps, req, offerings, np.ones(len(offerings), bool), settings.placement)
    # Only the few pools with nodes on the way are candidates, cheapest first per class.
    columns = np.array(
        [i for name, n in slots.items() if n > 0 and (i := offerings.get(name)) is not None],
        dtype=np.int64,
    )
    covered: set[str] = set()
    for c, members in enumerate(classes):
        row = matrix[c, columns]
        left = list(members)
        for j in np.argsort(row, kind="stable"):
            if not left or not np.isfinite(row[j]):
                break
            name = offerings.pools[columns[j]].name
            while left and slots.get(name, 0) > 0:
                pod = left.pop()
                slots[name] -= 1
                waiting_for[pod.key] = name
                covered.add(pod.key)
    return [pp for pp in pending if pp.pod.key not in covered]


def _batch_close(pending: list[PendingPod], memory: Memory, settings: Settings) -> float | None:
    """When the batch window of the pods that are new since the last decision closes."""
    new = [pp.since_s for pp in pending if pp.since_s > memory.batch_floor_s]
    if not new:
        return None
    up = settings.scale_up
    return min(max(new) + up.batch_idle_s, min(new) + up.batch_max_s)


def _scale_up(
    pending: list[PendingPod],
    table: PoolTable,
    offerings: Offerings,
    memory: Memory,
    settings: Settings,
    now: float,
    rng: np.random.Generator,
) -> list[Action]:
    headroom = table.headroom
    available = memory.available(offerings, now)
    placement = place(
        [pp.pod for pp in pending],
        offerings,
        headroom=headroom,
        available=available,
        settings=settings.placement,
        rng=rng,
        sizes=table.sizes,
    )
    actions: list[Action] = []
    groups, held = apply_limits(placement.groups, table, offerings, settings.limits)
    for g in groups:
        actions.append(
            ScaleUp(
                pool=g.pool.name,
                count=g.nodes,
                pods=tuple(p.key for p in g.pods),
                instance_type=g.instance_type,
                price_usd_per_hour=g.price_usd_per_hour,
                reason=g.reason,
                runner_up=g.runner_up,
                runner_up_cost_usd_per_hour=g.runner_up_cost_usd_per_hour,
            )
        )
        if settings.pinning.enabled:
            actions += [PinPod(pod, g.pool.name, g.reason) for pod in g.pods]
    new = {pp.pod.key for pp in pending if pp.since_s > memory.batch_floor_s}
    for u in placement.unplaceable:
        fresh = tuple(p for p in u.pods if p.key in new)
        if fresh:
            actions.append(NotifyUnplaceable(fresh, u.reason))
    if held is not None:
        # Every held pod is placed again by a later decision; only those new to this one
        # are told (as for unplaceable pods), so a long wait is one Event, not one a tick.
        step = held.limit == "max_new_nodes_per_decision"
        actions.append(NotifyUnplaceable(
            tuple(p for p in held.pods if p.key in new), held.reason, limit=held.limit,
            retry_at_s=now + NEXT_STEP_S if step else None,
        ))
    return actions


def _feasible_pools(
    pending: list[PendingPod], offerings: Offerings, settings: Settings
) -> set[str]:
    pods: list[PodSpec] = [c[0] for c in group_pods([pp.pod for pp in pending])]
    req = np.array([p.requests.as_array() for p in pods]).reshape(len(pods), -1)
    matrix, _ = cost_matrix(pods, req, offerings, np.ones(len(offerings), bool), settings.placement)
    return {offerings.pools[i].name for i in np.flatnonzero(np.isfinite(matrix).any(axis=0))}


# ------------------------------------------------------------------------- scale-down


def _scale_down(
    view: ClusterView,
    by_name: dict[str, PoolSpec],
    offerings: Offerings,
    memory: Memory,
    settings: Settings,
    now: float,
    wanted: set[str],
    busy: set[str],
    others: list[BoundPod],
) -> tuple[list[Action], list[float]]:
    sd = settings.scale_down
    # A DaemonSet or mirror pod never makes a node busy, but one that must not be disrupted pins its node (cluster-autoscaler's safe-to-evict
    # "false", Karpenter's do-not-disrupt). Busy nodes are never removed anyway.
    protected = {b.node for b in others if not _disruptable(b.pod)}
    actions: list[Action] = []
    wakes: list[float] = []
    removing: Counter[str] = Counter()
    budget = sd.max_removals_per_minute - len(memory.removals_s)
    for node in view.nodes:
        if node.name in busy:  # most nodes, most ticks: the cheapest test first
            if (node.annotations or node.name in memory.idle_since_s) and _idle_since(
                node, memory
            ) is not None:
                actions.append(MarkIdle(node.name, None))
            continue
        pool = by_name.get(node.pool) if node.pool is not None else None
        if pool is None or not node.ready:
            continue
        recorded = _idle_since(node, memory)
        if recorded is None:
            recorded = now
            actions.append(MarkIdle(node.name, now))
        if pool.name in wanted or _disabled(node) or node.name in protected:
            continue
        timeout = pool.idle_timeout_s if pool.idle_timeout_s is not None else sd.idle_timeout_s
        due = max(recorded + timeout, memory.last_scale_up_s + sd.delay_after_scale_up_s)
        if now + _EPS < due:
            wakes.append(due)
            continue
        if pool.current_size - removing[pool.name] <= pool.min_size:
            continue
        if budget <= 0:
            if memory.removals_s:
                wakes.append(memory.removals_s[0] + 60.0)
            continue
        budget -= 1
        removing[pool.name] += 1
        i = offerings.get(pool.name)
        price = float(offerings.price[i]) if i is not None else 0.0
        actions.append(
            RemoveNode(
                node=node.name,
                pool=pool.name,
                instance_id=node.instance_id,
                reason=f"idle {now - recorded:.0f}s (timeout {timeout:.0f}s), ${price:.4f}/h",
                price_usd_per_hour=price,
            )
        )
    return actions, wakes


def _unfinished_drains(
    view: ClusterView, memory: Memory, settings: Settings, now: float
) -> list[Action]:
    """A node we tainted for an interruption that this process knows nothing about (it
    restarted mid-drain) still has workload pods: drain it again, by the deadline the old
    process wrote on the node (``scaler.io/drain-deadline``; one already past means evict
    now). Without it (the old process died before writing it), assume the warning just came."""
    out: list[Action] = []
    for node in view.nodes:
        if node.name in memory.interrupted or not any(
            t.key == INTERRUPTION_TAINT_KEY for t in node.taints
        ):
            continue
        pods = tuple(b.pod for b in view.bound if b.node == node.name and b.is_workload)
        if pods:
            deadline = _written_deadline(node, now)
            if deadline is None:
                deadline = now + SPOT_NOTICE_S - settings.lifecycle.drain_margin_s
            out.append(Drain(node.name, pods, deadline, "resuming an interrupted node's drain",
                             terminate=True))
    return out


def _written_deadline(node: Node, now: float) -> float | None:
    raw = node.annotation(ANNOTATION_DRAIN_DEADLINE)
    try:
        deadline = float(raw) if raw is not None else None
    except ValueError:
        return None
    if deadline is None or not math.isfinite(deadline):
        return None
    return max(deadline, now)


def _idle_since(node: Node, memory: Memory) -> float | None:
    raw = node.annotation(ANNOTATION_IDLE_SINCE)
    if raw is not None:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
    return memory.idle_since_s.get(node.name)


def _disruptable(pod: PodSpec) -> bool:
    return (
        pod.annotation(ANNOTATION_SAFE_TO_EVICT) != "false"
        and pod.annotation(ANNOTATION_DO_NOT_DISRUPT) != "true"
    )


def _disabled(node: Node) -> bool:
    return (
        node.annotation(ANNOTATION_SCALE_DOWN_DISABLED) == "true"
        or node.annotation(ANNOTATION_DO_NOT_DISRUPT) == "true"
    )
