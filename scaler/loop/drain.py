"""Draining a node before it goes: PDB-respecting evictions against a deadline.

Every workload pod is evicted concurrently through the Eviction API; a PodDisruptionBudget
that allows no disruption yet (``Throttled``) is retried with capped, jittered backoff until
the deadline. Then the node's pods are read live from the API server (not the watch cache):
a workload pod that was not evicted (it landed after the drain began, or the cache that
listed the pods was stale) is evicted too, until none is left or the deadline passes. Then
the ASG lifecycle action is completed, or the instance terminated (so a reclaimed Spot node
is not replaced by its ASG on top of scaler's own replacement) -- but never with a workload
pod still on it: such a node is left to its interruption (a few seconds later) instead.
"""

from __future__ import annotations

import random

import anyio

from scaler.core.actions import Drain, RemovalCause
from scaler.core.model import PodSpec
from scaler.core.state import Node
from scaler.ports import Actuator, Clock, ClusterSource, Fleet, NotFound, PortError, Throttled
from scaler.telemetry import (
    Drained,
    DrainLiveReadFailed,
    EvictGaveUp,
    LifecycleCompleteFailed,
    NodeRemoved,
    RemovalCancelled,
    RemoveFailed,
    Telemetry,
)

FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 5.0
"""Eviction retries double from half a second up to five (never past the deadline)."""


async def drain(
    action: Drain,
    node: Node | None,
    *,
    actuator: Actuator,
    fleet: Fleet,
    clock: Clock,
    observe: Telemetry,
    cluster: ClusterSource | None = None,
) -> None:
    started = clock.now()
    results: dict[str, bool] = {}
    async with anyio.create_task_group() as tg:
        for pod in action.pods:
            tg.start_soon(_evict_until, pod, action.deadline_s, results, actuator, clock, observe)
    left: list[str] = []
    if node is not None and cluster is not None and (action.terminate or action.hook):
        # The node is about to go: nothing may be left on it that a live read can see.
        left = await _evict_stragglers(action, node, results, cluster, actuator, clock, observe)
    # A drain with nothing to evict (a lifecycle action for an instance that never became a
    # node) is in time by definition.
    in_time = all(results.values()) and (not action.pods or clock.now() <= action.deadline_s)
    observe(Drained(action.node, len(action.pods), sum(results.values()), in_time,
                    round(clock.now() - started, 3), action.reason, action.cause))
    if action.hook is not None:
        try:
            await fleet.complete_lifecycle(action.hook)
        except PortError as e:
            observe(LifecycleCompleteFailed(action.node, str(e)))
    if action.terminate and node is not None and left:
        observe(RemovalCancelled(action.node, node.pool,
                                 f"pod {left[0]} still on it after the drain"))
    elif action.terminate and node is not None:
        try:
            await fleet.terminate(node)
        except NotFound:
            pass
        except PortError as e:
            observe(RemoveFailed(action.node, str(e)))
        else:
            observe(NodeRemoved(action.node, node.pool, RemovalCause.INTERRUPTED,
                                "drained before interruption"))


async def _evict_stragglers(
    action: Drain,
    node: Node,
    results: dict[str, bool],
    cluster: ClusterSource,
    actuator: Actuator,
    clock: Clock,
    observe: Telemetry,
) -> list[str]:
    """Read the node's pods live; evict the workload pods this drain has not evicted yet,
    until there are none or the deadline passes. Returns the keys of those still there."""
    while True:
        try:
            live = await cluster.pods_on(node.name)
        except PortError as e:
            observe(DrainLiveReadFailed(node.name, str(e)))
            return ["(unknown: the live read failed)"]
        stragglers = [b.pod for b in live if b.is_workload and not results.get(b.pod.key)]
        if not stragglers:
            return []
        if clock.now() >= action.deadline_s:
            return [p.key for p in stragglers]
        async with anyio.create_task_group() as tg:
            for pod in stragglers:
                tg.start_soon(
                    _evict_until, pod, action.deadline_s, results, actuator, clock, observe
                )


async def _evict_until(
    pod: PodSpec,
    deadline_s: float,
    results: dict[str, bool],
    actuator: Actuator,
    clock: Clock,
    observe: Telemetry,
) -> None:
    pause = FIRST_PAUSE_S
    while True:
        try:
            await actuator.evict(pod)
            results[pod.key] = True
            return
        except NotFound:
            results[pod.key] = True  # already gone: as good as evicted
            return
        except (Throttled, PortError) as e:
            left = deadline_s - clock.now()
            if left <= 0:
                results[pod.key] = False
                observe(EvictGaveUp(pod.key, str(e)))
                return
            await clock.sleep_until(clock.now() + min(pause * random.uniform(0.8, 1.2), left))
            pause = min(pause * 2, MAX_PAUSE_S)
