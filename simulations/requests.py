"""What the ports ask of the world: the cluster's answers and writes (kube-apiserver), the
cloud's (ASG and EC2). :class:`World` mixes this in; :mod:`simulations.ports` calls it.
"""

from __future__ import annotations

import bisect
import dataclasses
import operator
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from scaler.core.model import PoolSpec, Taint
from scaler.core.offerings import Offerings
from scaler.core.runtime import RuntimeRecorder
from scaler.core.state import (
    ANNOTATION_IDLE_SINCE,
    BoundPod,
    ClusterView,
    LaunchFailure,
    Node,
    PendingPod,
)
from scaler.core.viewchange import ViewsByKey
from scaler.core.viewindex import ViewIndexes
from scaler.ports import NotFound, PortError, Rejected
from simulations import events as ev
from simulations.config import SimConfig
from simulations.events import EventQueue
from simulations.kubesched import KubeScheduler
from simulations.ledger import Ledger
from simulations.objects import SimNode, SimPod

_AT_S = operator.attrgetter("at_s")
_NOTHING_REPORTED: Mapping[Any, Any] = MappingProxyType({})
"""What simulated nodes report beyond their model (scaler/core/observed.py): nothing, in
one read-only mapping for every view rather than two new dicts per snapshot."""


class WorldRequests:
    """The request half of :class:`~simulations.world.World`; it reads and changes the
    world's state through the world's own helpers (``_launch``, ``_remove``, ...)."""

    # The world's state and helpers these requests use (defined by World).
    offerings: Offerings
    config: SimConfig
    rng: np.random.Generator
    queue: EventQueue
    ledger: Ledger
    sched: KubeScheduler
    timeline: list[tuple[float, str, str]] | None
    pool_specs: dict[str, PoolSpec]
    desired: dict[str, int]
    nodes: dict[str, SimNode]
    pods: dict[str, SimPod]
    failures: list[LaunchFailure]
    failing: Counter[str]
    cancelled: Counter[str]
    scale_ups: int
    _pool_views: list[PoolSpec]
    _pool_at: dict[str, int]
    _pool_sized: dict[tuple[str, int], PoolSpec]
    _pools_cache: tuple[PoolSpec, ...] | None
    _pools_moved: set[int]
    _pools_step: tuple[tuple[PoolSpec, ...], tuple[PoolSpec, ...], tuple[int, ...]] | None
    _node_views: ViewsByKey[str, Node]
    _bound_views: ViewsByKey[str, BoundPod]
    _pending_views: ViewsByKey[str, PendingPod]
    _stale_views: dict[str, SimNode]
    runtimes: RuntimeRecorder
    indexes: ViewIndexes

    if TYPE_CHECKING:

        def _launch(self, pool: str, i: int, now: float) -> SimNode: ...
        def _remove(self, node: SimNode, now: float, *, decrement: bool = True) -> None: ...
        def _refresh(self, node: SimNode) -> None: ...
        def _views_due(self) -> None: ...
        def _schedulable(self, node: SimNode) -> None: ...
        def _evict_pod(self, pod: SimPod, now: float) -> None: ...
        def _log(self, now: float, what: str, *subject: object) -> None: ...

    def snapshot(self, now: float) -> ClusterView:
        if self._stale_views:
            self._views_due()
        # Each tuple is kept until one of its views changes (ViewsByKey), and the indexes
        # are told what changed in a new node or bound tuple. Positionally, in ClusterView's field order
        # (now_s, nodes, bound, pending, reported allocatable and templates, runtimes,
        # indexes): one view per tick and more.
        return ClusterView(
            now, self._node_views.values(), self._bound_views.values(),
            self._pending_views.values(), _NOTHING_REPORTED, _NOTHING_REPORTED,
            self.runtimes.history(), self.indexes,
        )

    def pool_views(self) -> tuple[PoolSpec, ...]:
        """The same tuple, holding the same values, until a pool's size changes; a new one
        keeps where it differs from the last (:meth:`pools_changed`)."""
        if self._pools_cache is None:
            now = tuple(self._pool_views)
            last = self._pools_step[1] if self._pools_step is not None else None
            if last is not None and len(last) == len(now):
                # A size that went back where it was (3 -> 4 -> 3) changed nothing: the same
                # value is back (one per size), found without comparing fields.
                moved = tuple([i for i in sorted(self._pools_moved) if last[i] is not now[i]])
                self._pools_step = (last, now, moved)
            else:
                self._pools_step = ((), now, ())  # the first: no account before it
            self._pools_moved = set()
            self._pools_cache = now
        return self._pools_cache

    def pools_changed(
        self, before: Sequence[PoolSpec], now: Sequence[PoolSpec]
    ) -> tuple[int, ...] | None:
        """``Fleet.changed``: the places where ``now``, the last pools handed back, differs
        from ``before``, the ones handed back just before it; None for any other two."""
        step = self._pools_step
        if step is None or step[0] is not before or step[1] is not now or not before:
            return None
        return step[2]

    def _pool_changed(self, pool: str) -> None:
        i = self._pool_at[pool]
        size = self.desired[pool]
        if self._pool_views[i].current_size == size:
            return
        # A pool's size goes up and down over a few values: each is built once, and kept.
        spec = self._pool_sized.get((pool, size))
        if spec is None:
            spec = dataclasses.replace(self._pool_views[i], current_size=size)
            self._pool_sized[pool, size] = spec
        self._pool_views[i] = spec
        self._pools_moved.add(i)
        self._pools_cache = None

    def set_desired(self, pool: str, desired: int, now: float) -> None:
        spec = self.pool_specs.get(pool)
        if spec is None:
            raise NotFound(f"no pool {pool!r}")
        i = self.offerings.get(pool)
        if i is None:
            raise PortError(f"pool {pool!r} cannot launch: its types are not in the catalog")
        # Auto Scaling answers ValidationError, which the adapter translates to Rejected.
        if spec.max_size is not None and desired > spec.max_size:
            raise Rejected(
                f"ValidationError: desired capacity {desired} is above max size {spec.max_size}"
            )
        if desired < spec.min_size:
            raise Rejected(
                f"ValidationError: desired capacity {desired} is below min size {spec.min_size}"
            )
        delta = desired - self.desired[pool]
        self.desired[pool] = desired
        self._pool_changed(pool)
        self._log(now, "set-desired", pool, desired)
        rate = self.config.failure_rate(pool)
        for _ in range(max(delta, 0)):
            # Draw only where failures are possible, so turning them on for one pool leaves
            # every other random draw of the run as it was.
            if rate > 0 and self.rng.random() < rate:
                self.queue.push(
                    now + self.config.cloud.launch_failure_delay_s, ev.LAUNCH_FAILED, pool
                )
                self.failing[pool] += 1
                continue
            self.scale_ups += 1
            self._launch(pool, i, now)
        if delta < 0:
            # Scale-in: the ASG takes booting instances first (newest first), then idle ones.
            mine = [n for n in self.nodes.values() if n.pool == pool]
            mine.sort(key=lambda n: (n.ready, bool(n.runs), -n.created_s))
            for node in mine[:-delta]:
                self._remove(node, now, decrement=False)

    def cancel_unfulfilled(self, pool: str, now: float) -> None:
        """Lower the desired size to the instances the pool really has."""
        if pool not in self.desired:
            raise NotFound(f"no pool {pool!r}")
        have = sum(1 for n in self.nodes.values() if n.pool == pool)
        if self.desired[pool] > have:
            self.cancelled[pool] = self.failing[pool]
            self.desired[pool] = max(have, self.pool_specs[pool].min_size)
            self._pool_changed(pool)
            self._log(now, "set-desired", pool, self.desired[pool])

    def terminate(self, name: str, now: float) -> None:
        node = self.nodes.get(name)
        if node is None:
            raise NotFound(f"node {name!r} is gone")
        spec = self.pool_specs[node.pool]
        if self.desired[node.pool] - 1 < spec.min_size:
            raise PortError(f"ValidationError: pool {node.pool} is at its min size")
        self._log(now, "removed", name)
        self._remove(node, now)

    def give_up(self, pool: str, count: int, keep: Collection[str], now: float) -> int:
        """Terminate up to ``count`` of ``pool``'s instances that never became a Ready node
        (not in ``keep``), oldest first, shrinking the pool (never below its min size)."""
        if pool not in self.desired:
            raise NotFound(f"no pool {pool!r}")
        duds = sorted(
            (n for n in self.nodes.values()
             if n.pool == pool and not n.ready and not n.runs and n.instance_id not in keep),
            key=lambda n: (n.created_s, n.name),
        )[:count]
        for node in duds:
            self._log(now, "given-up", node.name)
            self._remove(node, now, decrement=False)
            if self.desired[pool] > self.pool_specs[pool].min_size:
                self.desired[pool] -= 1
        if duds:
            self._pool_changed(pool)
        return len(duds)

    def pods_on(self, name: str) -> tuple[BoundPod, ...]:
        node = self.nodes.get(name)
        if node is None:
            return ()
        return tuple(r.pod.bound_view for r in node.runs if r.pod.bound_view is not None)

    def failures_since(self, since_s: float) -> list[LaunchFailure]:
        # Listed as they surface, so in time order: the reconciler asks every tick for the
        # few since its last look, which must not cost a pass over every failure of the run,
        # and most ticks there are none since (nor any at all).
        failures = self.failures
        if not failures or failures[-1].at_s < since_s:
            return []
        return failures[bisect.bisect_left(failures, since_s, key=_AT_S):]

    def annotate(self, name: str, key: str, value: str | None, now: float) -> None:
        node = self.nodes.get(name)
        if node is None:
            raise NotFound(f"node {name!r} is gone")
        if value is None:
            node.annotations.pop(key, None)
        else:
            node.annotations[key] = value
        if key == ANNOTATION_IDLE_SINCE:
            self._log(now, "idle" if value is not None else "busy", name)
        self._refresh(node)

    def cordon(self, name: str, cordoned: bool, now: float) -> None:
        node = self._node(name)
        self.ledger.settle(node, now)
        node.cordoned = cordoned
        self._schedulable(node)
        self._refresh(node)
        self._log(now, "cordoned" if cordoned else "uncordoned", name)

    def taint(
        self, name: str, taint: Taint | None, now: float, *, remove: str = "",
        effect: str | None = None,
    ) -> None:
        """Add ``taint`` (replacing the one with its key and effect, as the API server's
        node has one taint per key and effect), or remove the taints with key ``remove``
        (and ``effect``, if given)."""
        node = self._node(name)
        if taint is not None:
            same = [i for i, t in enumerate(node.added_taints)
                    if (t.key, t.effect) == (taint.key, taint.effect)]
            if same:
                node.added_taints[same[0]] = taint
            else:
                node.added_taints.append(taint)
        else:
            node.added_taints = [
                t for t in node.added_taints
                if not (t.key == remove and (effect is None or t.effect == effect))
            ]
        self._schedulable(node)
        self._refresh(node)

    def label(self, name: str, key: str, value: str, now: float) -> None:
        """Set a label on the node, as the cluster shows it. Scheduling here follows the
        pool's labels, which no label the reconciler writes (its pool's) changes."""
        node = self._node(name)
        node.labels = tuple(sorted({**dict(node.labels), key: value}.items()))
        self._refresh(node)

    def evict(self, key: str, now: float) -> None:
        """The Eviction API: the pod's run is lost and it is pending again, from scratch."""
        pod = self.pods.get(key)
        if pod is None or pod.run is None:
            raise NotFound(f"pod {key!r} is not running")
        self._evict_pod(pod, now)

    def _node(self, name: str) -> SimNode:
        node = self.nodes.get(name)
        if node is None:
            raise NotFound(f"node {name!r} is gone")
        return node

    def pod_event(self, key: str, reason: str, now: float) -> None:
        pod = self.pods.get(key)
        if pod is not None and reason == "NotTriggerScaleUp":
            if not pod.unplaceable:
                self._log(now, "unplaceable", key)
            pod.unplaceable = True
