"""The live cluster: watch-fed caches of nodes and pods (``ClusterSource``) plus writes
(``Actuator``, inherited from :class:`~scaler.adapters.kube.actuator.KubeActuator`).

How the loop uses it, inside its one task group::

    cluster = KubeCluster(api, instance_pools=fleet_instances, is_gpu_type=catalog_has_gpu)
    async with anyio.create_task_group() as tg:
        await tg.start(cluster.run)          # returns once nodes and pods are listed
        seen = cluster.generation
        while True:
            view = await cluster.snapshot()
            ...decide and act...
            seen = await cluster.wait_changed(seen)   # or a timer, whichever first

The caches hold converted core values (``Node``, ``PendingPod``, ``BoundPod``), never API
objects. Pods are watched with ``status.phase!=Succeeded,status.phase!=Failed``: finished
pods hold no resources, and a cluster of Jobs can have many of them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import anyio
import structlog
from anyio.abc import TaskStatus
from kubernetes.client import ApiClient

from scaler.adapters.kube import wire
from scaler.adapters.kube.actuator import KubeActuator
from scaler.adapters.kube.client import call
from scaler.adapters.kube.convert import Converted, Problem, convert_node, convert_pod, pod_key
from scaler.adapters.kube.watch import PAGE_SIZE, WATCH_TIMEOUT_S, Reflector
from scaler.core.model import Resources
from scaler.core.observed import remember_reports
from scaler.core.state import BoundPod, ClusterView, Node, PendingPod

POD_FIELD_SELECTOR: Final = "status.phase!=Succeeded,status.phase!=Failed"
WATCH_THREADS: Final = 2
"""One worker thread per watch (pods, nodes), on their own limiter so writes never wait
behind a watch and a burst of writes never starves the watches."""

log = structlog.get_logger("scaler.kube")

_PodEntry = tuple[str, Converted[PendingPod | BoundPod | None]]


class KubeCluster(KubeActuator):
    """Nodes and pods as the decisions see them, kept current by watches.

    ``instance_pools()`` gives the managed instances as the last ASG discovery saw them
    (instance id -> pool; None before the first discovery). It is asked at snapshot time:
    a node whose providerID names an instance is in that instance's pool, whatever its
    ``scaler.io/pool`` label says, and in none if the instance is in no managed group
    (terminating, detached, or another group's). AWS lists a terminating instance for
    minutes and its Node can outlive it; it must not count in its old pool, nor be removed
    twice. A node without an instance id keeps its label's pool.
    ``is_gpu_type`` says whether an instance type has GPUs (catalog). ``on_pending(key,
    now_s)`` is called, on the event loop, for each pod that newly becomes pending: the
    loop's scale-up batching hangs on it.
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        instance_pools: Callable[[], Mapping[str, str] | None] | None = None,
        is_gpu_type: Callable[[str], bool] | None = None,
        on_pending: Callable[[str, float], None] | None = None,
        clock: Callable[[], float] = time.time,
        limiter: anyio.CapacityLimiter | None = None,
        identity: str = "scaler",
        page_size: int = PAGE_SIZE,
        watch_timeout_s: float = WATCH_TIMEOUT_S,
    ) -> None:
        super().__init__(api, limiter=limiter, identity=identity, clock=clock)
        self._instance_pools = instance_pools
        self._is_gpu_type = is_gpu_type
        self._on_pending = on_pending
        self._watch_limiter = anyio.CapacityLimiter(WATCH_THREADS)
        self._nodes: dict[str, Node] = {}
        self._pending: dict[str, PendingPod] = {}
        self._bound: dict[str, BoundPod] = {}
        self._uids: dict[str, str] = {}
        self._problems: dict[str, Problem] = {}
        self._reports: dict[tuple[str, str], Resources] = {}
        """(pool, type) -> what its Ready nodes report as allocatable (scaler/core/observed.py)."""
        self._reports_view: Mapping[tuple[str, str], Resources] = MappingProxyType({})
        self._generation = 0
        self._changed: anyio.Event | None = None
        self._ready = False
        self.reflectors = (
            Reflector(
                "nodes",
                self._core.list_node,
                key=_node_name,
                convert=self._convert_node,
                on_replace=self._replace_nodes,
                on_event=self._node_event,
                limiter=self._watch_limiter,
                page_size=page_size,
                watch_timeout_s=watch_timeout_s,
                wire=wire.NODES,
            ),
            Reflector(
                "pods",
                self._core.list_pod_for_all_namespaces,
                key=pod_key,
                convert=_convert_pod_entry,
                on_replace=self._replace_pods,
                on_event=self._pod_event,
                limiter=self._watch_limiter,
                list_kwargs={"field_selector": POD_FIELD_SELECTOR},
                page_size=page_size,
                watch_timeout_s=watch_timeout_s,
                wire=wire.PODS,
            ),
        )

    # --- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Watch nodes and pods until cancelled. ``task_status.started()`` once both are
        listed, so ``await task_group.start(cluster.run)`` returns with full caches."""
        async with anyio.create_task_group() as tg:
            for reflector in self.reflectors:
                await tg.start(reflector.run, name=f"watch-{reflector.kind}")
            self._ready = True
            log.info("caches_ready", nodes=len(self._nodes), pods=self.pod_count)
            task_status.started()

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def generation(self) -> int:
        """Bumped on every change to what a snapshot would show."""
        return self._generation

    async def wait_changed(self, since: int) -> int:
        """Wait until :attr:`generation` passes ``since``; return the new generation. Taking
        the generation before the snapshot and waiting on it after loses no change."""
        while self._generation <= since:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()
        return self._generation

    # --- ClusterSource ----------------------------------------------------------------------

    async def snapshot(self) -> ClusterView:
        """Nodes (by name), bound pods, pending pods (oldest first), at ``now_s`` = clock()."""
        instances = self._instance_pools() if self._instance_pools is not None else None
        nodes = tuple(_with_pool(self._nodes[name], instances) for name in sorted(self._nodes))
        pending = sorted(self._pending.values(), key=lambda p: (p.since_s, p.pod.key))
        if remember_reports(self._reports, nodes):
            self._reports_view = MappingProxyType(dict(self._reports))
        return ClusterView(
            now_s=self._clock(),
            nodes=nodes,
            bound=tuple(self._bound.values()),
            pending=tuple(pending),
            reported_allocatable=self._reports_view,
        )

    async def pods_on(self, node: str) -> tuple[BoundPod, ...]:
        """The node's unfinished pods, listed from the API server now (LIST pods with
        fieldSelector ``spec.nodeName=<node>``), never from the watch cache: a half-open
        watch can leave the cache stale with no error, and this is the last look before the
        node is terminated."""
        selector = f"spec.nodeName={node},{POD_FIELD_SELECTOR}"
        answer = await call(
            self._limiter,
            f"list pods on node {node}",
            self._core.list_pod_for_all_namespaces,
            field_selector=selector,
        )
        out: list[BoundPod] = []
        for raw in (answer or {}).get("items") or ():
            value = convert_pod(raw).value
            if isinstance(value, BoundPod):
                out.append(value)
        return tuple(out)

    def problems(self) -> Mapping[str, Problem]:
        """Objects scaler could not fully read, by pod key or node name (current ones only)."""
        return dict(self._problems)

    @property
    def pod_count(self) -> int:
        return len(self._pending) + len(self._bound)

    def uid_of(self, pod_key: str) -> str | None:
        """The UID of a pending pod (the only pods Events are recorded on), else None."""
        return self._uids.get(pod_key)

    # --- cache upkeep (event loop thread) ---------------------------------------------------

    def _convert_node(self, raw: Mapping[str, Any]) -> Converted[Node]:
        # The pool by instance is applied at snapshot time (see the class docstring).
        return convert_node(raw, is_gpu_type=self._is_gpu_type)

    def _replace_nodes(self, items: dict[str, Converted[Node]]) -> None:
        self._nodes = {}
        for name, converted in items.items():
            self._put_node(name, converted)
        self._bump()

    def _node_event(self, name: str, converted: Converted[Node] | None) -> None:
        old = self._nodes.get(name)
        if converted is None:
            self._nodes.pop(name, None)
            self._problems.pop(name, None)
        else:
            self._put_node(name, converted)
        if self._nodes.get(name) != old:
            self._bump()

    def _put_node(self, name: str, converted: Converted[Node]) -> None:
        self._nodes[name] = converted.value
        self._note_problem(name, converted.problem)

    def _replace_pods(self, items: dict[str, _PodEntry]) -> None:
        was_pending = self._pending
        self._pending, self._bound, self._uids = {}, {}, {}
        self._problems = {k: p for k, p in self._problems.items() if p.kind != "pod"}
        for key, entry in items.items():
            value = self._put_pod(key, entry)
            seen = was_pending.get(key)
            if isinstance(value, PendingPod) and seen is not None:
                self._pending[key] = dataclasses.replace(value, since_s=seen.since_s)
        now = self._clock()
        for key in self._pending.keys() - was_pending.keys():
            self._notify_pending(key, now)
        self._bump()

    def _pod_event(self, key: str, entry: _PodEntry | None) -> None:
        old = self._pending.pop(key, None) or self._bound.pop(key, None)
        self._uids.pop(key, None)
        if entry is None:
            self._problems.pop(key, None)
            new = None
        else:
            new = self._put_pod(key, entry)
        if isinstance(new, PendingPod):
            # Pending since when *we saw it*: lastTransitionTime has one-second resolution,
            # and batching on truncated times would close a burst's window before the watch
            # has delivered the rest of it. A pod still pending keeps its first sighting.
            if isinstance(old, PendingPod):
                new = dataclasses.replace(new, since_s=old.since_s)
            else:
                now = self._clock()
                new = dataclasses.replace(new, since_s=max(new.since_s, now))
                self._notify_pending(key, now)
            self._pending[key] = new
        if new != old:
            self._bump()

    def _put_pod(self, key: str, entry: _PodEntry) -> PendingPod | BoundPod | None:
        uid, converted = entry
        self._note_problem(key, converted.problem)
        value = converted.value
        if isinstance(value, PendingPod):
            self._pending[key] = value
            if uid:
                # Events go to pending pods only (TriggeredScaleUp, NotTriggerScaleUp): the
                # 20,000 bound pods of a big cluster need not carry their UIDs (2.6 MiB).
                self._uids[key] = uid
        elif isinstance(value, BoundPod):
            self._bound[key] = value
        else:
            return None
        return value

    def _note_problem(self, key: str, problem: Problem | None) -> None:
        if problem is None:
            self._problems.pop(key, None)
            return
        if self._problems.get(key) != problem:
            log.warning("unreadable_object", problem=str(problem))
        self._problems[key] = problem

    def _notify_pending(self, key: str, now: float) -> None:
        if self._on_pending is not None:
            self._on_pending(key, now)

    def _bump(self) -> None:
        self._generation += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None


def _with_pool(node: Node, instances: Mapping[str, str] | None) -> Node:
    """The node with the pool of its instance (see :class:`KubeCluster`)."""
    if instances is None or not node.instance_id:
        return node
    pool = instances.get(node.instance_id)
    if pool == node.pool:
        return node
    # A label that is missing or names another group is not the node's pool label: pins to
    # its real pool would pass it by (scaler.core.pinning.label_pools rewrites it).
    return dataclasses.replace(node, pool=pool, pool_labelled=pool is None)


def _node_name(raw: Mapping[str, Any]) -> str:
    return str((raw.get("metadata") or {}).get("name", ""))


def _convert_pod_entry(raw: Mapping[str, Any]) -> _PodEntry:
    uid = (raw.get("metadata") or {}).get("uid") or ""
    return uid, convert_pod(raw)
