"""One decision: observe a cluster view, return the actions and when to be asked again.

``decide`` is the single entry point the live loop and the simulator share. It is pure:
the view, the pools, the offerings, the memory and the settings go in, a
:class:`~scaler.core.actions.Decision` comes out; ``now`` and ``rng`` are arguments.

Scale-up, in order:
1. Capacity already coming: a pool's desired size minus its Ready nodes is in flight, and
   a fresh empty Ready node (younger than ``bind_grace_s``) is about to take pods. Both are
   counted against every pending pod that fits them, remembered or not: pods the memory
   knows a launch for take their pool's first, the rest the cheapest left. So a restart, a
   rollout or a failover (empty memory) does not buy the same capacity again. A fresh node
   with a NoSchedule taint its pool does not declare (and no start-up lifts) is no one's
   capacity: kube-scheduler passed the pods over for it.
2. Batching: new pending pods wait until ``batch_idle_s`` after the last arrival, at most
   ``batch_max_s`` after the first, then go as one decision.
3. Placement (:func:`scaler.core.placement.place`) with pool headroom and backoff.
4. Global limits (:mod:`scaler.core.limits`: nodes, USD/hour, nodes per decision) cut the
   placement in its own order; the pods held back are told which limit held them.

Scale-down: a Ready node with no workload pod (DaemonSet and mirror pods do not count) is
idle from the time recorded on it; after its pool's idle timeout it is removed, unless
scale-down is disabled on it, its pool is at min size, pods are waiting for its pool, the
cluster scaled up too recently, or the removal budget for the minute is spent. The
reconciler removes a node by a protocol (docs/kubernetes.md): taint it ``scaler.io/removing``
(NoSchedule), read its pods live from the API server, then terminate it, or untaint it if a
workload pod landed. A node left with that taint and not removed now is untainted.

Provision timeout: a launch still short of Ready nodes ``provision_timeout_s`` after it was
made is given up (:class:`~scaler.core.actions.GiveUpLaunch`): the nodes that never
registered are taken back, the pool backs off, and its pods are placed again.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Container, Sequence
from collections.abc import Set as AbstractSet
from typing import Final

import numpy as np

from scaler.core.actions import (
    Action,
    Decision,
    Drain,
    DrainCause,
    GiveUpLaunch,
    MarkIdle,
    NotifyUnplaceable,
    RemoveNode,
    ScaleUp,
    Untaint,
)
from scaler.core.lifecycle import (
    INTERRUPTION_TAINT_KEY,
    SPOT_NOTICE_S,
    hold_for_reclaimed,
    rebalance_expired,
)
from scaler.core.limits import NEXT_STEP_S, apply_limits
from scaler.core.memory import Memory
from scaler.core.model import NO_EXECUTE, NO_SCHEDULE, PodSpec, PoolSpec
from scaler.core.offerings import Offerings, PoolTable, is_startup_taint
from scaler.core.pinning import label_pools
from scaler.core.placement import fitting_pools, group_pods, open_cells, place
from scaler.core.runtime import RuntimeHistory, lost_work_h
from scaler.core.settings import Settings
from scaler.core.state import (
    ANNOTATION_DO_NOT_DISRUPT,
    ANNOTATION_DRAIN_DEADLINE,
    ANNOTATION_IDLE_SINCE,
    ANNOTATION_SAFE_TO_EVICT,
    ANNOTATION_SCALE_DOWN_DISABLED,
    TAINT_REMOVING,
    ClusterView,
    Node,
    PendingPod,
)
from scaler.core.topology import pin_pending
from scaler.core.viewindex import (
    BoundIndex,
    KeptCovering,
    NodeIndex,
    bound_index,
    idle_candidates,
    node_index,
)

_EPS = 1e-6
_deadline = operator.attrgetter("deadline_s")


def decide(
    view: ClusterView,
    table: PoolTable,
    memory: Memory,
    settings: Settings,
    *,
    now: float,
    rng: np.random.Generator,
) -> Decision:
    """``table`` is the pools with their offerings (:func:`~scaler.core.offerings.pool_table`;
    the reconciler keeps one across ticks, updated where a pool changed)."""
    offerings = table.offerings
    by_name = table.by_name
    actions: list[Action] = []
    wakes: list[float] = []

    nodes = node_index(view)
    bound = bound_index(view)
    busy = bound.busy
    if view.pending:  # half the ticks none is: no call for _uncovered's first test then
        uncovered, waiting, wanted = _uncovered(view, nodes, table, offerings, memory,
                                                settings, now, busy)
    else:
        uncovered, waiting, wanted = [], (), _NO_POOLS
    if uncovered:  # most ticks no pod is left: none of these has anything to do
        uncovered = _above_priority_cutoff(uncovered, settings)
        uncovered = pin_pending(uncovered, view, offerings, memory, now, settings.placement)
        uncovered, _, reclaim_wake = hold_for_reclaimed(
            uncovered, offerings, memory, settings, now=now, headroom=table.headroom,
            runtimes=view.runtimes,
        )
        if reclaim_wake is not None:
            wakes.append(reclaim_wake)
    held: list[PendingPod] = []
    batch_closed = False
    if uncovered:
        close = _batch_close(uncovered, memory, settings)
        if close is not None and now + _EPS < close:
            held = uncovered
            wakes.append(close)
        else:
            batch_closed = True
            actions += _scale_up(uncovered, table, offerings, memory, settings, now, rng,
                                 runtimes=view.runtimes)
    if actions:  # only a scale-up made any so far
        wakes += [a.retry_at_s for a in actions
                  if isinstance(a, NotifyUnplaceable) and a.retry_at_s]
        wanted = wanted | {a.pool for a in actions if isinstance(a, ScaleUp)}
    # The held pods' pools are a kept set of hundreds of names: asked, not copied, and
    # only worked out if scale-down gets as far as asking (most ticks it does not).
    wanted_too: Container[str] = (
        _FeasiblePools(held, offerings, settings) if held else _NO_POOLS
    )
    down, down_wakes = _scale_down(
        nodes, bound, busy, by_name, offerings, memory, settings, now, wanted, wanted_too
    )
    actions += down
    wakes += down_wakes
    # What follows is for rare states (a removal or drain cut short, a launch overdue, a
    # rebalance cordon, an unlabelled node): each is asked of the index or the memory first,
    # so the common tick makes no call for them.
    taint_keys = nodes.held_taint_keys
    if TAINT_REMOVING in taint_keys:
        actions += _stale_removal_taints(nodes, down)
    if memory.overdue:
        actions += _overdue_launches(view, table, memory, settings, busy)
    if memory.rebalance_until_s:
        uncordon, uncordon_wakes = rebalance_expired(view, memory, now=now)
        actions += uncordon
        wakes += uncordon_wakes
    if INTERRUPTION_TAINT_KEY in taint_keys:
        actions += _unfinished_drains(nodes, bound, memory, settings, now)
    if settings.pinning.enabled and nodes.any_unlabelled:
        actions += label_pools(view)
    if memory.launches:
        wakes += map(_deadline, memory.launches)
    if memory.backoff_until_s and any(isinstance(a, NotifyUnplaceable) for a in actions):
        wakes.append(min(memory.backoff_until_s.values()))
    after = now + _EPS
    # The earliest wake still ahead (the first of equals, as min() picks): a loop, not a
    # filtered list, since most ticks have one or two.
    wake: float | None = None
    for w in wakes:
        if w > after and (wake is None or w < wake):
            wake = w
    # By position (now, actions, wake, waiting, batch closed): one per tick, and keywords
    # cost a third of its construction.
    return Decision(
        now,
        tuple(actions),
        wake,
        tuple(p.pod.key for p in held) + waiting if held else waiting,
        batch_closed,
    )


# --------------------------------------------------------------------------- scale-up


def _uncovered(
    view: ClusterView,
    nodes: NodeIndex,
    table: PoolTable,
    offerings: Offerings,
    memory: Memory,
    settings: Settings,
    now: float,
    busy: AbstractSet[str],
) -> tuple[list[PendingPod], tuple[str, ...], AbstractSet[str]]:
    """Pending pods no node is coming for; the keys of those one is coming for, in order,
    and the pools they wait for.

    Capacity, in nodes per pool: nodes asked for but not Ready (none from a pool backing
    off: its launch failed), and fresh empty Ready nodes (the scheduler is about to bind
    pods there). It is counted against *every* pending pod, remembered or not, so a restart,
    a rollout or a failover (empty memory) never buys the same capacity twice. Pods a
    remembered launch was made for take their pool's capacity first; the rest take what is
    left, cheapest first. A node another pod took is busy, so it covers nothing: the pods it
    was bought for are placed again at once, not after the provision timeout."""
    if not view.pending:
        return [], (), _NO_POOLS
    keys = settings.placement.startup_taint_keys
    backoff = memory.backoff_until_s  # most ticks none: no lookup per pool then
    # Pools left out of the offerings cover nothing: never counted (every count is > 0).
    pool_at = offerings.get
    capacity: dict[str, float] = {
        name: float(n)
        for name, n in nodes.on_the_way(table, keys).items()
        if pool_at(name) is not None and not (backoff and memory.backing_off(name, now))
    }
    fresh = now - settings.scale_up.bind_grace_s
    # Only open nodes (of a pool, schedulable and Ready, not being removed) created since
    # ``fresh``: the index keeps them by creation time.
    for n in nodes.open_since(fresh):
        if (n.pool is not None and n.name not in busy and pool_at(n.pool) is not None
                and not _kept_off(n, table, keys)):
            capacity[n.pool] = capacity.get(n.pool, 0.0) + 1.0
    if not capacity:
        return list(view.pending), (), _NO_POOLS
    # Pods wait for their nodes through many ticks about other nodes: the same pending
    # tuple over the same capacity (in its order, which breaks cost ties) and launches is
    # covered the same way, so the last answer stands.
    in_flight = memory.in_flight()
    coming = tuple(capacity.items())
    kept = view.indexes.cover
    if kept is None or not kept.answers(view.pending, coming, in_flight, offerings, settings):
        waiting: dict[str, str] = {}
        rest = _cover_by_slots(list(view.pending), capacity, in_flight, offerings, settings,
                               waiting)
        kept = view.indexes.cover = KeptCovering(
            # Sorted and collected once per covering, which stands through the many ticks
            # the pods wait.
            view.pending, coming, in_flight, offerings, settings, rest,
            tuple(sorted(waiting)), frozenset(waiting.values()),
        )
    return list(kept.rest), kept.waiting, kept.waiting_pools


_NO_POOLS: Final[frozenset[str]] = frozenset()


_LIFECYCLE_TAINT_PREFIX: Final = "node.kubernetes.io/"
"""The node lifecycle controller's taints (not-ready, unreachable, network-unavailable):
lifted once the node is up; kube-scheduler waits, it does not refuse."""


def _kept_off(node: Node, table: PoolTable, startup_keys: Sequence[str]) -> bool:
    """Does the node carry a NoSchedule/NoExecute taint that its pool does not declare and
    that no start-up lifts? Then kube-scheduler passed pods over for it, and it is nobody's
    capacity (the cost matrix knows only the pool's own taints)."""
    if not node.taints or node.pool is None:
        return False
    pool = table.by_name.get(node.pool)
    declared = pool.taints if pool is not None else ()
    return any(
        t.effect in (NO_SCHEDULE, NO_EXECUTE)
        and not is_startup_taint(t, startup_keys)
        and not t.key.startswith(_LIFECYCLE_TAINT_PREFIX)
        and t not in declared
        for t in node.taints
    )


def nodes_on_the_way(
    view: ClusterView, table: PoolTable, startup_keys: Sequence[str]
) -> dict[str, int]:
    """Pool -> nodes asked for (desired size) but not Ready with their GPUs advertised; a
    node still carrying a startup taint (an agent not ready yet) is on its way too.
    Kept per nodes tuple and table (:mod:`scaler.core.viewindex`): do not change it."""
    return node_index(view).on_the_way(table, startup_keys)


def _above_priority_cutoff(pending: list[PendingPod], settings: Settings) -> list[PendingPod]:
    """Expendable pods (priority below the cutoff) never cause a scale-up, and never hold a
    batch window open: they run only where room already is (cluster-autoscaler's
    expendable-pods-priority-cutoff)."""
    cutoff = settings.scale_up.priority_cutoff
    if not pending or all(pp.pod.priority >= cutoff for pp in pending):
        return pending
    return [pp for pp in pending if pp.pod.priority >= cutoff]


def _cover_by_slots(
    pending: list[PendingPod],
    capacity: dict[str, float],
    in_flight: dict[str, str],
    offerings: Offerings,
    settings: Settings,
    waiting_for: dict[str, str],
) -> list[PendingPod]:
    """Let the pods that fit the nodes on their way wait for them; return the others.

    ``capacity`` is nodes per pool, used up as pods are assigned: a pod of a class takes
    1/k of a node of a pool that packs k of them (1 on the usual one-pod-per-node pool).
    A pod whose remembered launch went to a pool takes that pool first; then every pod left
    takes the cheapest pool with room. One cost matrix over the pending pods' classes, and
    only when something is on its way."""
    pods = [pp.pod for pp in pending]
    classes = group_pods(pods)
    reps = [c[0] for c in classes]
    # Only the few pools with nodes on the way are candidates: the matrix has their columns.
    # One to three as a rule: Python floats walk them cheaper than NumPy scalars, with the
    # same values and the same arithmetic.
    columns = [i for name in capacity if (i := offerings.get(name)) is not None]
    cost, ppn = open_cells(reps, offerings, settings.placement, columns)
    names = [offerings.pools[i].name for i in columns]
    # A remembered launch's pool -> its column, by name: the pools on their way are the
    # columns, so a pool among them is found without its offerings index.
    column_of = {name: j for j, name in enumerate(names)}
    # By identity: a pod's key is formatted at each read, and a view holds each pending
    # pod once (its source keys them by namespace/name).
    covered: set[int] = set()

    def take(c: int, j: int, members: list[PodSpec]) -> list[PodSpec]:
        """Cover as many of ``members`` (class ``c``, oldest first) as the pool of column
        ``j`` has room for; return the rest."""
        name = names[j]
        room = capacity.get(name, 0.0)
        if not members or room <= 0 or not math.isfinite(cost[c][j]):
            return members
        share = 1.0 / max(ppn[c][j], 1.0)
        n = min(len(members), int((room + _EPS) / share))
        capacity[name] = room - n * share
        for pod in members[:n]:
            waiting_for[pod.key] = name
            covered.add(id(pod))
        return members[n:]

    # Remembered launches first: their pods were the reason those nodes were bought.
    if in_flight:
        for c, members in enumerate(classes):
            mine: dict[int, list[PodSpec]] = {}
            for pod in members:
                pool = in_flight.get(pod.key)
                j = column_of.get(pool) if pool is not None else None
                if j is not None:  # a pool with nothing on its way covers no pod
                    mine.setdefault(j, []).append(pod)
            for j, pods_of in mine.items():
                take(c, j, pods_of)
    # Then cheapest first per class: the finite cells in a stable sort by cost, the order
    # a stable argsort gives them (it puts inf and nan after every finite cost).
    for c, members in enumerate(classes):
        left = [p for p in members if id(p) not in covered] if covered else list(members)
        if not left:  # most classes: their remembered launches covered them all
            continue
        row = cost[c]
        for j in sorted((j for j, v in enumerate(row) if math.isfinite(v)), key=row.__getitem__):
            if not left:
                break
            left = take(c, j, left)
    return [pp for pp in pending if id(pp.pod) not in covered]


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
    *,
    runtimes: RuntimeHistory | None = None,
) -> list[Action]:
    headroom = table.headroom
    # None: every pool open (place() then applies no mask); most decisions have no backoff.
    available = memory.available(offerings, now) if memory.backoff_until_s else None
    pods = [pp.pod for pp in pending]
    rates = offerings.interruptions_per_h
    placement = place(
        pods,
        offerings,
        headroom=headroom,
        available=available,
        settings=settings.placement,
        rng=rng,
        sizes=table.sizes,
        # Each pod's Spot risk by its expected lost work (scaler/core/runtime.py); where no
        # pool is ever interrupted place() would not read it, so it is not estimated.
        lost_work_h=(
            lost_work_h(pods, runtimes or RuntimeHistory(), settings.placement)
            if rates is not None and np.count_nonzero(rates) else None
        ),
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


class _FeasiblePools:
    """The names of the pools some of ``pending`` fit (:func:`fitting_pools`), worked out
    at the first question: pods held in a batch window keep their pools from losing an idle
    node, which matters only on a tick with an idle node due for removal."""

    __slots__ = ("_names", "_offerings", "_pending", "_settings")

    def __init__(
        self, pending: list[PendingPod], offerings: Offerings, settings: Settings
    ) -> None:
        self._pending, self._offerings, self._settings = pending, offerings, settings
        self._names: AbstractSet[str] | None = None

    def __contains__(self, name: object) -> bool:
        names = self._names
        if names is None:
            names = self._names = fitting_pools(
                [pp.pod for pp in self._pending], self._offerings, self._settings.placement
            )
        return name in names


# ------------------------------------------------------------------------- scale-down


def _scale_down(
    nodes: NodeIndex,
    bound: BoundIndex,
    busy: AbstractSet[str],
    by_name: dict[str, PoolSpec],
    offerings: Offerings,
    memory: Memory,
    settings: Settings,
    now: float,
    wanted: AbstractSet[str],
    wanted_too: Container[str] = frozenset(),
) -> tuple[list[Action], list[float]]:
    """Idle nodes marked, and removed once due; pools in ``wanted`` or ``wanted_too`` have
    pods waiting for them and lose no node. ``busy``: ``bound.busy``, as decide read it."""
    sd = settings.scale_down
    # A DaemonSet or mirror pod never makes a node busy, but one that must not be disrupted
    # pins its node (cluster-autoscaler's safe-to-evict "false", Karpenter's
    # do-not-disrupt). Busy nodes are never removed anyway. Worked out only once an idle
    # node gets that far: most ticks none does.
    protected: AbstractSet[str] | None = None
    actions: list[Action] = []
    wakes: list[float] = []
    removing: dict[str, int] = {}  # a Counter costs more to make than this loop uses it
    budget = sd.max_removals_per_minute - len(memory.removals_s)
    # Read once a tick, not per idle node: the remembered idle times, and the time every
    # due time is held to (the delay after the last scale-up).
    remembered = memory.idle_since_s
    held_until = memory.last_scale_up_s + sd.delay_after_scale_up_s
    after = now + _EPS
    # Only the nodes with no workload pod and the busy ones that may still be marked idle:
    # every other node has nothing to do here.
    for node in idle_candidates(nodes, bound, remembered):
        if node.name in busy:  # most nodes, most ticks: the cheapest test first
            if (node.annotations or node.name in remembered) and _idle_since(
                node, memory
            ) is not None:
                actions.append(MarkIdle(node.name, None))
            continue
        pool = by_name.get(node.pool) if node.pool is not None else None
        if pool is None or not node.ready:
            continue
        recorded, disabled = _idle_marks(node) if node.annotations else _NO_MARKS
        if recorded is None:
            recorded = remembered.get(node.name)
            if recorded is None:
                recorded = now
                actions.append(MarkIdle(node.name, now))
        if pool.name in wanted or pool.name in wanted_too or disabled:
            continue
        if protected is None:
            others = bound.others  # most clusters' DaemonSet pods pin nothing
            protected = (
                {b.node for b in others if not _disruptable(b.pod)} if others else frozenset()
            )
        if node.name in protected:
            continue
        timeout = pool.idle_timeout_s if pool.idle_timeout_s is not None else sd.idle_timeout_s
        due = recorded + timeout  # max() of the two, without a call per idle node
        if due < held_until:
            due = held_until
        if after < due:
            wakes.append(due)
            continue
        if pool.current_size - removing.get(pool.name, 0) <= pool.min_size:
            continue
        if budget <= 0:
            if memory.removals_s:
                wakes.append(memory.removals_s[0] + 60.0)
            continue
        budget -= 1
        removing[pool.name] = removing.get(pool.name, 0) + 1
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


def _stale_removal_taints(nodes: NodeIndex, down: list[Action]) -> list[Action]:
    """A node carries scaler's removal taint but is not being removed now: the process that
    tainted it died before terminating it (or a pod landed and the untaint failed). Undo it,
    rather than finish it: the decision that tainted the node is stale, and if the node is
    still idle and due, this very decision removes it again, through the whole protocol
    (taint, live read, terminate). A node in no pool is left alone: its instance is already
    terminating (AWS lists it as no group's), and untainting it would invite pods onto it."""
    tainted = nodes.tainted(TAINT_REMOVING)
    if not tainted:  # nearly every tick
        return []
    removing = {a.node for a in down if isinstance(a, RemoveNode)}
    return [
        Untaint(n.name, "a removal that did not finish")
        for n in tainted
        if n.pool is not None and n.name not in removing
    ]


def _overdue_launches(
    view: ClusterView,
    table: PoolTable,
    memory: Memory,
    settings: Settings,
    busy: AbstractSet[str],
) -> list[Action]:
    """Launches past the provision timeout whose nodes are still not Ready: give them up.

    Nodes on their way are a pool's count, not a launch's, so the shortfall is laid at the
    oldest launches' door: a pool's nodes on their way beyond those of its launches still
    within their timeout are the overdue ones (at most what the overdue launches asked). A
    node that is not Ready but has workload pods was up once (its kubelet is in trouble,
    not its launch): it is no launch's shortfall."""
    if not memory.overdue:
        return []
    # A Ready node still carrying a startup taint did register: not a launch's shortfall
    # (give_up keeps Ready instances), so no startup keys here.
    on_the_way = Counter(nodes_on_the_way(view, table, ()))
    # Every node is looked at: the test that turns nearly all of them away comes first.
    for n in view.nodes:
        if not (n.ready and n.gpu_ready) and n.pool is not None and n.name in busy:
            on_the_way[n.pool] -= 1
    overdue: Counter[str] = Counter()
    for launch in memory.overdue:
        overdue[launch.pool] += launch.count
    newer: Counter[str] = Counter()
    for launch in memory.launches:
        newer[launch.pool] += launch.count
    timeout = settings.scale_up.provision_timeout_s
    out: list[Action] = []
    for pool in sorted(overdue):
        missing = min(overdue[pool], on_the_way.get(pool, 0) - newer[pool])
        if missing > 0:
            out.append(
                GiveUpLaunch(pool, missing, f"node never registered within {timeout:.0f}s")
            )
    return out


def _unfinished_drains(
    nodes: NodeIndex, bound: BoundIndex, memory: Memory, settings: Settings, now: float
) -> list[Action]:
    """A node we tainted for an interruption that this process knows nothing about (it
    restarted mid-drain) still has workload pods: drain it again, by the deadline the old
    process wrote on the node (``scaler.io/drain-deadline``; one already past means evict
    now). Without it (the old process died before writing it), assume the warning just came."""
    out: list[Action] = []
    for node in nodes.tainted(INTERRUPTION_TAINT_KEY):
        if node.name in memory.interrupted:
            continue
        pods = bound.workload_on(node.name)
        if pods:
            deadline = _written_deadline(node, now)
            if deadline is None:
                deadline = now + SPOT_NOTICE_S - settings.lifecycle.drain_margin_s
            out.append(Drain(node.name, pods, deadline, "resuming an interrupted node's drain",
                             terminate=True, cause=DrainCause.RESUMED))
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


_NO_MARKS: Final[tuple[None, bool]] = (None, False)


def _idle_marks(node: Node) -> tuple[float | None, bool]:
    """The time the node's idle-since annotation records (None: none, or not a time), and
    whether scale-down is disabled on it (either annotation ``"true"``), in one pass over
    its annotations and no further call: scale-down asks both of every idle node at every
    tick. Walked backwards so that the first of a repeated key wins, as
    :meth:`Node.annotation` reads it."""
    raw = disabled = not_disrupted = None
    for key, value in reversed(node.annotations):
        if key == ANNOTATION_IDLE_SINCE:
            raw = value
        elif key == ANNOTATION_SCALE_DOWN_DISABLED:
            disabled = value
        elif key == ANNOTATION_DO_NOT_DISRUPT:
            not_disrupted = value
    off = disabled == "true" or not_disrupted == "true"
    if raw is None:
        return None, off
    try:
        since = float(raw)
    except ValueError:
        return None, off
    return (since if math.isfinite(since) else None), off


def _disruptable(pod: PodSpec) -> bool:
    return (
        pod.annotation(ANNOTATION_SAFE_TO_EVICT) != "false"
        and pod.annotation(ANNOTATION_DO_NOT_DISRUPT) != "true"
    )
