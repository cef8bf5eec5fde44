"""Acting on a decision: one small handler per action kind.

The reconciler plans (observe, decide) and hands the decision to :func:`act`. Scale-ups go
first, batched: one desired-size write per pool for all of its :class:`ScaleUp` actions.
Then every other action, in the decision's order, goes to the handler :data:`HANDLERS`
names for its type. A handler performs its action through the ports, reports it to the
observer, and hands what it learned to :func:`scaler.core.memory.absorb` -- the one place
memory changes after an outcome, so the live loop and the simulator (which drive this same
code) update it identically. No handler decides anything.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from scaler.core.actions import (
    BackoffCause,
    Cordon,
    Decision,
    Drain,
    Evict,
    Forget,
    GiveUpLaunch,
    LabelNode,
    MarkIdle,
    NotifyUnplaceable,
    RemoveNode,
    ScaleUp,
    Uncordon,
    Untaint,
)
from scaler.core.lifecycle import workload_of
from scaler.core.memory import (
    BatchClosed,
    Evicted,
    Forgotten,
    GaveUp,
    IdleMarked,
    Interrupted,
    Launched,
    Memory,
    Outcome,
    Removed,
    Uncordoned,
    WriteFailed,
    absorb,
)
from scaler.core.settings import Settings
from scaler.core.state import (
    ANNOTATION_DRAIN_DEADLINE,
    ANNOTATION_IDLE_SINCE,
    TAINT_REMOVING,
    ClusterView,
    Node,
)
from scaler.core.viewindex import bound_index, node_index
from scaler.loop.drain import drain
from scaler.loop.removal import remove_node
from scaler.ports import (
    Actuator,
    Clock,
    ClusterSource,
    Fleet,
    InsufficientCapacity,
    NotFound,
    PortError,
    Rejected,
)
from scaler.telemetry import (
    EvictFailed,
    GiveUpFailed,
    LaunchGivenUp,
    NodeCordoned,
    NodeForgotten,
    NodeLabelled,
    NodeRemoved,
    NodeUncordoned,
    NodeUntainted,
    NodeWriteFailed,
    PodMigrated,
    PodsLimited,
    PodsUnplaceable,
    PoolBackedOff,
    RemovalCancelled,
    ScaledUp,
    ScaleUpFailed,
    Telemetry,
)

WRITE_RETRY_S: Final = 10.0
"""After a failed scale-up write, tick again this soon (the pods are still pending)."""
LIMIT_EVENTS: Final = 500
"""Pods held back by a global limit get an Event each, up to this many a decision (the rest
are counted and logged): a burst must not turn into thousands of Event writes a tick."""
BACKOFF_RETRY_S: Final = 1.0
"""After a failed write backed its pool off, tick again this soon: the pods go to the
next-cheapest pool now, not at the next event."""
GIVE_UP_RETICK_S: Final = 0.5
"""After giving a launch up, tick again this soon: its pods go to the next-best pool."""

Drainer = Callable[[], Coroutine[Any, Any, None]]
"""A drain to run to its end: a coroutine function, as a task group's ``start_soon`` takes."""

Spawn = Callable[[Drainer], object]


@dataclass(slots=True)  # one per acting tick (28,000 on DLRM): slots build at a third the cost
class Act:
    """One decision being acted on: the ports, the memory, and the view it was made on."""

    cluster: ClusterSource
    fleet: Fleet
    actuator: Actuator
    clock: Clock
    memory: Memory
    settings: Settings
    observe: Telemetry
    decision: Decision
    view: ClusterView
    retry: Callable[[float], None]
    """Ask for the next tick by this time (a write failed, a launch was given up)."""
    spawn: Spawn | None = None
    """Where drains run (the control loop's task group); None: in place."""
    _fresh: ClusterView | None = field(default=None, init=False)

    def node(self, name: str) -> Node | None:
        """The decision's view of node ``name`` (the view's own index: no pass over every
        node per decision)."""
        return node_index(self.view).by_name.get(name)

    @property
    def now(self) -> float:
        return self.decision.now_s

    def absorb(self, outcome: Outcome) -> bool:
        # The decision's time read directly, not through :attr:`now`: one call fewer for
        # each of the 41,000 outcomes of a DLRM replay.
        return absorb(self.memory, outcome, self.settings, now=self.decision.now_s)

    async def busy_or_gone(self, name: str) -> bool:
        """Re-checked just before removing: a pod scheduled onto the node since the
        decision, or the node already gone, cancels its removal (one fresh snapshot per
        decision, asked through its indexes)."""
        if self._fresh is None:
            self._fresh = await self.cluster.snapshot()
        fresh = self._fresh
        return name in bound_index(fresh).busy or name not in node_index(fresh).by_name

    async def quietly(self, call: Awaitable[None], node: str) -> None:
        """A node write whose failure is reported, not raised (the next decision retries);
        the node already gone is no failure."""
        try:
            await call
        except NotFound:
            pass
        except PortError as e:
            self.observe(NodeWriteFailed(node, str(e)))


async def act(a: Act, sizes: Mapping[str, int]) -> None:
    """Carry out ``a.decision``; ``sizes``: the current desired size of each pool a
    :class:`ScaleUp` names."""
    if a.decision.batch_closed:
        a.absorb(BatchClosed())
    others = actions = a.decision.actions
    for action in actions:  # most decisions that act mark a node or remove one: no list
        if isinstance(action, ScaleUp):
            await scale_up(a, sizes)
            others = tuple(x for x in actions if not isinstance(x, ScaleUp))
            break
    for action in others:
        await HANDLERS[type(action)](a, action)


# ------------------------------------------------------------------------ scale-ups


async def scale_up(a: Act, sizes: Mapping[str, int]) -> None:
    """One desired-size write per pool for all its ScaleUps (a decision may split a pool's
    nodes over several groups of pods); each is announced on its pods once the write is in."""
    adds: dict[str, int] = defaultdict(int)
    for action in a.decision.actions:
        if isinstance(action, ScaleUp):
            adds[action.pool] += action.count
    for pool, count in adds.items():
        desired = sizes[pool] + count
        try:
            await a.fleet.set_desired(pool, desired)
        except PortError as e:
            await _scale_up_failed(a, pool, desired, e)
            continue
        for action in a.decision.actions:
            if isinstance(action, ScaleUp) and action.pool == pool:
                a.absorb(Launched(action))
                a.observe(ScaledUp(action))
                await _announce(a, action)


async def _scale_up_failed(a: Act, pool: str, desired: int, error: PortError) -> None:
    """A refused write (AccessDenied, a validation error, a group gone) backs the pool
    off at once: retrying it forever would strand its pods. A transient one (throttled,
    5xx, timeout) is retried soon, and backs the pool off after
    ``write_failures_before_backoff`` in a row. Backed off, the pods are told why and
    placed again on the next-cheapest pool at the next tick."""
    up = a.settings.scale_up
    persistent = isinstance(error, Rejected | NotFound | InsufficientCapacity)
    reason = (
        f"scale-up refused: {error}"
        if persistent
        else f"{up.write_failures_before_backoff} scale-up writes failed in a row: {error}"
    )
    backed_off = a.absorb(WriteFailed(pool, reason, persistent))
    a.observe(ScaleUpFailed(pool, desired, str(error), backed_off))
    a.retry(a.now + (BACKOFF_RETRY_S if backed_off else WRITE_RETRY_S))
    if not backed_off:
        return
    cause = BackoffCause.WRITE_REJECTED if persistent else BackoffCause.WRITE_FAILING
    a.observe(PoolBackedOff(pool, cause, reason, a.now + up.launch_failure_ttl_s))
    message = (
        f"scaler: pool {pool} skipped for {up.launch_failure_ttl_s:.0f}s: {reason}; "
        "the pod goes to the next-cheapest pool"
    )
    pods = {key for act in a.decision.actions if isinstance(act, ScaleUp) and act.pool == pool
            for key in act.pods}
    for pp in a.view.pending:
        if pp.pod.key in pods:
            await a.actuator.record_event(pp.pod, "FailedScaleUp", message, warning=True)


async def _announce(a: Act, action: ScaleUp) -> None:
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
    for pp in a.view.pending:
        if pp.pod.key in pods:
            await a.actuator.record_event(pp.pod, "TriggeredScaleUp", message, warning=False)


# ------------------------------------------------------------------------ one handler each


async def notify_unplaceable(a: Act, action: NotifyUnplaceable) -> None:
    """No pool fits the pods (an Event each); or (``limit`` set) a global limit held them
    back: counted, logged, and told which limit, at most ``LIMIT_EVENTS`` Events a decision
    (20,000 held pods are not 20,000 API calls)."""
    if action.limit is None:
        a.observe(PodsUnplaceable(len(action.pods), action.reason))
        for pod in action.pods:
            await a.actuator.record_event(
                pod, "NotTriggerScaleUp", f"scaler: no pool fits: {action.reason}", warning=True
            )
        return
    if not action.pods:
        return
    a.observe(PodsLimited(len(action.pods), action.limit, action.reason))
    for pod in action.pods[:LIMIT_EVENTS]:
        await a.actuator.record_event(
            pod, "NotTriggerScaleUp", f"scaler: held back: {action.reason}", warning=True
        )


async def mark_idle(a: Act, action: MarkIdle) -> None:
    a.absorb(IdleMarked(action.node, action.since_s))
    value = None if action.since_s is None else f"{action.since_s:.3f}"
    # try, not contextlib.suppress: no context manager to make per mark (18k on openb).
    try:
        await a.actuator.annotate_node(action.node, ANNOTATION_IDLE_SINCE, value)
    except NotFound:  # the node is gone: nothing to mark
        return


async def cordon(a: Act, action: Cordon) -> None:
    await a.quietly(a.actuator.cordon(action.node), action.node)
    if action.taint is not None:
        await a.quietly(a.actuator.taint(action.node, action.taint), action.node)
    a.observe(NodeCordoned(action.node, action.reason))


async def uncordon(a: Act, action: Uncordon) -> None:
    await a.quietly(a.actuator.uncordon(action.node), action.node)
    if action.taint_key is not None:
        await a.quietly(a.actuator.untaint(action.node, action.taint_key), action.node)
    a.absorb(Uncordoned(action.node))
    a.observe(NodeUncordoned(action.node, action.reason))


async def label_node(a: Act, action: LabelNode) -> None:
    await a.quietly(a.actuator.label_node(action.node, action.key, action.value), action.node)
    a.observe(NodeLabelled(action.node, f"{action.key}={action.value}"))


async def forget(a: Act, action: Forget) -> None:
    a.absorb(Forgotten(action.node))
    a.observe(NodeForgotten(action.node, action.reason))


async def start_drain(a: Act, action: Drain) -> None:
    """The drain itself may take until its deadline: it runs in ``a.spawn`` when given."""
    if action.terminate and action.node:
        a.absorb(Interrupted(action.node, action.deadline_s))
        # On the node, for a process that takes the drain over after a restart.
        await a.quietly(
            a.actuator.annotate_node(
                action.node, ANNOTATION_DRAIN_DEADLINE, f"{action.deadline_s:.3f}"
            ),
            action.node,
        )
    run = functools.partial(
        drain, action, a.node(action.node), actuator=a.actuator, fleet=a.fleet,
        clock=a.clock, observe=a.observe, cluster=a.cluster,
    )
    if a.spawn is not None:
        a.spawn(run)
    else:
        await run()


async def evict(a: Act, action: Evict) -> None:
    try:
        await a.actuator.evict(action.pod)
    except PortError as e:
        a.observe(EvictFailed(action.pod.key, str(e)))
        return
    left = a.node(action.node)
    a.absorb(Evicted(workload_of(action.pod), left.pool if left is not None else None))
    a.observe(PodMigrated(action.pod.key, action.reason))


async def remove(a: Act, action: RemoveNode) -> None:
    """Through the removal protocol (:mod:`scaler.loop.removal`), unless the node is busy
    or gone by a fresh look."""
    node = a.node(action.node)
    if node is None or await a.busy_or_gone(action.node):
        a.observe(RemovalCancelled(action.node, action.pool))
        return
    removed = await remove_node(
        node, cluster=a.cluster, actuator=a.actuator, fleet=a.fleet, observe=a.observe,
        pool=action.pool,
    )
    if removed is not None:
        a.absorb(Removed(action.node, removed))
    if removed:
        a.observe(NodeRemoved(action.node, action.pool, action.cause, action.reason,
                              action.instance_id, action.price_usd_per_hour))


async def untaint(a: Act, action: Untaint) -> None:
    await a.quietly(a.actuator.untaint(action.node, TAINT_REMOVING), action.node)
    a.observe(NodeUntainted(action.node, action.reason))


async def give_up(a: Act, action: GiveUpLaunch) -> None:
    """The pool backs off like after a failed launch and its pods are placed again at
    the next tick (soon); the nodes that never registered are taken back. If taking
    them back fails, they are still on their way next tick, unexplained, and get a new
    timeout (Memory.adopt): it is tried again then."""
    a.absorb(GaveUp(action.pool, action.reason))
    a.retry(a.now + GIVE_UP_RETICK_S)
    busy = {b.node for b in a.view.bound if b.is_workload}
    keep = {
        n.instance_id for n in a.view.nodes if n.instance_id and (n.ready or n.name in busy)
    }
    try:
        given = await a.fleet.give_up(action.pool, action.count, keep)
    except PortError as e:
        a.observe(GiveUpFailed(action.pool, str(e)))
        return
    a.observe(LaunchGivenUp(action.pool, action.count, given, action.reason))


Handler = Callable[[Act, Any], Awaitable[None]]

HANDLERS: Final[Mapping[type, Handler]] = {
    NotifyUnplaceable: notify_unplaceable,
    MarkIdle: mark_idle,
    Cordon: cordon,
    Uncordon: uncordon,
    LabelNode: label_node,
    Forget: forget,
    Drain: start_drain,
    Evict: evict,
    RemoveNode: remove,
    Untaint: untaint,
    GiveUpLaunch: give_up,
}
"""Action type -> its handler; every action but :class:`ScaleUp` (batched by
:func:`scale_up`) has one."""


__all__ = [
    "BACKOFF_RETRY_S",
    "GIVE_UP_RETICK_S",
    "HANDLERS",
    "LIMIT_EVENTS",
    "WRITE_RETRY_S",
    "Act",
    "act",
]
