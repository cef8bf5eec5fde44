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
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import anyio
import structlog
from anyio.abc import TaskStatus
from kubernetes.client import ApiClient
from urllib3.exceptions import MaxRetryError

from scaler.adapters.kube import wire
from scaler.adapters.kube.actuator import KubeActuator
from scaler.adapters.kube.client import TRANSPORT_ERRORS, call, keep_alive, translate
from scaler.adapters.kube.convert import Converted, Problem, convert_node, convert_pod, pod_key
from scaler.adapters.kube.learned import LearnedStore
from scaler.adapters.kube.nodeviews import NodeViews
from scaler.adapters.kube.rest import StorageV1
from scaler.adapters.kube.volumes import (
    Claim,
    StorageClass,
    Volume,
    claim_zones,
    convert_claim,
    convert_class,
    convert_volume,
)
from scaler.adapters.kube.watch import PAGE_SIZE, WATCH_TIMEOUT_S, Reflector
from scaler.core.model import LABEL_ZONE, PodSpec, Requirement, Resources, SelectorTerm
from scaler.core.observed import remember_reports, remember_templates
from scaler.core.runtime import RuntimeHistory, RuntimeRecorder
from scaler.core.state import BoundPod, ClusterView, Node, NodeTemplateReport, PendingPod
from scaler.core.viewchange import ViewsByKey
from scaler.core.viewindex import ViewIndexes
from scaler.ports import PortError

POD_FIELD_SELECTOR: Final = "status.phase!=Succeeded,status.phase!=Failed"
CHECK_TIMEOUT_S: Final = 10.0
"""How long ``scaler plan`` and ``scaler run --once`` wait for the API server's first answer
before saying it cannot be reached."""
WATCH_THREADS: Final = 5
"""One worker thread per watch (pods, nodes, claims, volumes, storage classes), on their own
limiter so writes never wait behind a watch and a burst of writes never starves the
watches."""

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
    twice. A node without an instance id keeps its label's pool. A node's value with its
    pool is worked out again only when the node changes or the map moves its instance: a
    map handed over is never changed in place afterwards (a discovery makes a new one), so
    the same object is the same map (:mod:`.nodeviews`).
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
        read_timeout_s: float | None = None,
        learned: LearnedStore | None = None,
    ) -> None:
        # Keep-alive on every connection, watches included (scaler/adapters/kube/client.py).
        super().__init__(keep_alive(api), limiter=limiter, identity=identity, clock=clock)
        self._instance_pools = instance_pools
        self._is_gpu_type = is_gpu_type
        self._on_pending = on_pending
        self._watch_limiter = anyio.CapacityLimiter(WATCH_THREADS)
        self._indexes = ViewIndexes()
        """Kept across snapshots: per-tick questions are answered from what changed, as the
        views below tell it."""
        self._nodes = NodeViews(self._indexes.tell_nodes)
        """By name, in name order (the order scale-down, labelling and drains break ties
        in, as before the views were kept)."""
        self._pending: dict[str, PendingPod] = {}
        self._pending_view: tuple[PendingPod, ...] | None = None
        """The pending pods as the last snapshot gave them; None once a pending pod, a claim,
        a volume or a storage class changed (decide keeps its covering of the pending pods
        while it is handed the same tuple)."""
        self._bound: ViewsByKey[str, BoundPod] = ViewsByKey(self._indexes.tell_bound,
                                                            listed=False)
        """In the order their last events came (an event takes a pod out and puts it back)."""
        self._uids: dict[str, str] = {}
        self._problems: dict[str, Problem] = {}
        self._reports: dict[tuple[str, str], Resources] = {}
        """(pool, type) -> what its Ready nodes report as allocatable (scaler/core/observed.py)."""
        self._reports_view: Mapping[tuple[str, str], Resources] = MappingProxyType({})
        self._pvcs: dict[str, Claim] = {}
        self._pvs: dict[str, Volume] = {}
        self._classes: dict[str, StorageClass] = {}
        self._storage = StorageV1(api)
        self._templates: dict[tuple[str, str], NodeTemplateReport] = {}
        """(pool, type) -> the labels and taints its Ready nodes carry (scaler/core/observed.py)."""
        self._templates_view: Mapping[tuple[str, str], NodeTemplateReport] = MappingProxyType({})
        self._learned = learned
        """Where reports and templates outlive a restart (scaler/adapters/kube/learned.py)."""
        self._runtimes = RuntimeRecorder()
        """How long pods ran that finished (Succeeded/Failed) or were deleted after they
        started, as this process saw them end (scaler/core/runtime.py)."""
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
                read_timeout_s=read_timeout_s,
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
                read_timeout_s=read_timeout_s,
                wire=wire.PODS,
            ),
            self._volume_reflector(
                "persistentvolumeclaims",
                self._core.list_persistent_volume_claim_for_all_namespaces,
                pod_key,
                convert_claim,
                self._pvcs,
                page_size,
                watch_timeout_s,
                read_timeout_s,
            ),
            self._volume_reflector(
                "persistentvolumes",
                self._core.list_persistent_volume,
                _node_name,
                convert_volume,
                self._pvs,
                page_size,
                watch_timeout_s,
                read_timeout_s,
            ),
            self._volume_reflector(
                "storageclasses",
                self._storage.list_storage_class,
                _node_name,
                convert_class,
                self._classes,
                page_size,
                watch_timeout_s,
                read_timeout_s,
            ),
        )

    # --- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Watch nodes and pods until cancelled. ``task_status.started()`` once both are
        listed, so ``await task_group.start(cluster.run)`` returns with full caches."""
        async with anyio.create_task_group() as tg:
            if self._learned is not None:
                await self._adopt_learned(self._learned)
                tg.start_soon(self._learned.keep, self._learned_state, name="keep-learned")
            for reflector in self.reflectors:
                await tg.start(reflector.run, name=f"watch-{reflector.kind}")
            self._ready = True
            log.info("caches_ready", nodes=len(self._nodes), pods=self.pod_count)
            task_status.started()

    async def _adopt_learned(self, store: LearnedStore) -> None:
        """Start from what an earlier process learned; live nodes overwrite it as they report."""
        reports, templates = await store.load()
        for key, value in reports.items():
            self._reports.setdefault(key, value)
        for key, template in templates.items():
            self._templates.setdefault(key, template)
        self._reports_view = MappingProxyType(dict(self._reports))
        self._templates_view = MappingProxyType(dict(self._templates))
        log.info("learned_loaded", pools=len({k[0] for k in set(reports) | set(templates)}))

    def _learned_state(self) -> tuple[Mapping[tuple[str, str], Resources],
                                      Mapping[tuple[str, str], NodeTemplateReport]]:
        return self._reports_view, self._templates_view

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def server(self) -> str:
        """The API server's URL, for messages."""
        return str(self._api.configuration.host)

    async def check(self) -> None:
        """One authorized read (a list of one node). Raises ``PortError`` naming the API
        server if it cannot be reached or refuses us: for the commands that must fail fast
        (``plan``, ``run --once``), where the watches would retry forever."""

        def blocking() -> None:
            self._core.list_node(
                limit=1, _request_timeout=(CHECK_TIMEOUT_S, CHECK_TIMEOUT_S)
            ).release_conn()

        try:
            await anyio.to_thread.run_sync(blocking, limiter=self._limiter)
        except TRANSPORT_ERRORS as e:
            reason = getattr(e, "reason", None) if isinstance(e, MaxRetryError) else None
            text = str(reason) if reason is not None else str(translate(e, "list nodes"))
            raise PortError(f"Kubernetes API server {self.server}: {text}") from e

    def unready_reason(self, max_age_s: float) -> str | None:
        """Why ``/readyz`` says no (None: ready): caches not listed yet, or older than
        ``max_age_s`` (the bound past which destructive actions wait; build the cluster
        with ``watch_timeout_s=watch_timeout_for(max_age_s)`` so a healthy watch stays
        under it)."""
        if not self._ready:
            return f"caches not listed yet from the API server {self.server}"
        age = self.staleness_s()
        if age > max_age_s:
            return (
                f"cache is {age:.0f} s old (API server {self.server} not heard from; "
                f"bound {max_age_s:g} s)"
            )
        return None

    def staleness_s(self) -> float:
        """The cache's age: seconds since the server was last heard from, on the kind heard
        from least recently (inf until both are listed). A healthy watch keeps it under
        ``watch_timeout_s``; a dead one lets it grow until the watch is re-opened."""
        return max(r.age_s() for r in self.reflectors)

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
        """Nodes (by name), bound pods, pending pods (oldest first), at ``now_s`` = clock().

        Each tuple is the last snapshot's while nothing in it changed; a new nodes or bound
        tuple's change is told to the indexes (scaler/core/viewchange.py): a tick does work
        for what changed, not for every node and pod. The pending pods are few: sorted
        afresh when one of them (or a volume) changed."""
        instances = self._instance_pools() if self._instance_pools is not None else None
        nodes = self._nodes.values(instances)
        pending = self._pending_view
        if pending is None:
            pending = self._pending_view = tuple(sorted(
                (self._with_claim_zones(p) for p in self._pending.values()),
                key=lambda p: (p.since_s, p.pod.key),
            ))
        # What nodes report changes only when a node or the instance -> pool map does, and
        # only in the groups of the nodes that changed: passes over every node are not
        # per-tick work.
        learn = self._nodes.to_learn(nodes)
        if learn is not None:
            self._learn(learn)
        return ClusterView(
            now_s=self._clock(),
            nodes=nodes,
            bound=self._bound.values(),
            pending=pending,
            reported_allocatable=self._reports_view,
            reported_templates=self._templates_view,
            runtimes=self._runtimes.history(),
            indexes=self._indexes,
        )

    def runtime_history(self) -> RuntimeHistory:
        """How long finished pods ran (what ``snapshot().runtimes`` carries), for the
        admission webhook, which prices a new pod's Spot risk by it without a snapshot."""
        return self._runtimes.history()

    def _learn(self, nodes: Iterable[Node]) -> None:
        """Allocatable, labels and taints the pools' Ready nodes report
        (scaler/core/observed.py), kept across snapshots and saved by the learned store."""
        nodes = tuple(nodes)
        changed = False
        if remember_reports(self._reports, nodes):
            self._reports_view = MappingProxyType(dict(self._reports))
            changed = True
        if remember_templates(self._templates, nodes):
            self._templates_view = MappingProxyType(dict(self._templates))
            changed = True
        if changed and self._learned is not None:
            self._learned.changed.set()

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
        for name, converted in items.items():
            self._note_problem(name, converted.problem)
        self._nodes.replace({name: converted.value for name, converted in items.items()})
        self._bump()

    def _node_event(self, name: str, converted: Converted[Node] | None) -> None:
        if converted is None:
            self._problems.pop(name, None)
        else:
            self._note_problem(name, converted.problem)
        if self._nodes.put(name, None if converted is None else converted.value):
            self._bump()

    def _replace_pods(self, items: dict[str, _PodEntry]) -> None:
        was_pending = self._pending
        self._pending, self._uids, self._pending_view = {}, {}, None
        self._bound.clear()  # set again in the list's order
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
        old: PendingPod | BoundPod | None = self._pending.pop(key, None)
        if old is None and (old := self._bound.get(key)) is not None:
            self._bound.drop(key)  # set again at the end if still bound, as in a dict
        self._uids.pop(key, None)
        if entry is None:
            self._problems.pop(key, None)
            new = None
        else:
            new = self._put_pod(key, entry)
        if new is None and isinstance(old, BoundPod) and old.is_workload:
            # Finished (the watch's selector lets go of Succeeded and Failed pods) or deleted
            # after it started: one run of its workload, this long.
            self._runtimes.record(old.pod, self._clock() - old.started_s)
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
            if isinstance(old, PendingPod) or isinstance(new, PendingPod):
                self._pending_view = None
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
            self._bound.set(key, value)
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

    # --- volumes (claims, volumes, classes: the zones a pending pod's claims allow) ------------

    def _volume_reflector(
        self,
        kind: str,
        list_fn: Callable[..., Any],
        key: Callable[[Mapping[str, Any]], str],
        convert: Callable[[Mapping[str, Any]], Any],
        cache: dict[str, Any],
        page_size: int,
        watch_timeout_s: float,
        read_timeout_s: float | None,
    ) -> Reflector[Any]:
        def replace(items: dict[str, Any]) -> None:
            self._replace_volumes(cache, items)

        def event(name: str, value: Any) -> None:
            self._volume_event(cache, name, value)

        return Reflector(
            kind,
            list_fn,
            key=key,
            convert=convert,
            on_replace=replace,
            on_event=event,
            limiter=self._watch_limiter,
            page_size=page_size,
            watch_timeout_s=watch_timeout_s,
            read_timeout_s=read_timeout_s,
        )

    def _replace_volumes(self, cache: dict[str, Any], items: Mapping[str, Any]) -> None:
        cache.clear()
        cache.update(items)
        self._pending_view = None  # the zones pending pods' claims allow
        self._bump()

    def _volume_event(self, cache: dict[str, Any], key: str, value: Any) -> None:
        old = cache.pop(key, None)
        if value is not None:
            cache[key] = value
        if value != old:
            self._pending_view = None  # the zones pending pods' claims allow
            self._bump()

    def _with_claim_zones(self, pending: PendingPod) -> PendingPod:
        if not pending.pod.claims:
            return pending
        pod = self.limited_by_claims(pending.pod)
        return pending if pod is pending.pod else dataclasses.replace(pending, pod=pod)

    def limited_by_claims(self, pod: PodSpec) -> PodSpec:
        """The pod limited to the zones its claims allow (see :mod:`.volumes`): one zone is
        the pod's zone, as a zone node selector would make it; several (a class allowing a
        few) or a conflict are a required node-affinity requirement on the zone label."""
        zones = claim_zones(pod.claims, self._pvcs, self._pvs, self._classes)
        if zones is None:
            return pod
        if len(zones) == 1 and pod.zone in (None, *zones):
            (zone,) = zones
            return dataclasses.replace(pod, zone=zone)
        need = Requirement(LABEL_ZONE, "In", tuple(sorted(zones)))
        terms = tuple(
            SelectorTerm((*t.requirements, need)) for t in pod.affinity
        ) or (SelectorTerm((need,)),)
        return dataclasses.replace(pod, affinity=terms)

    def claim_aware(
        self, choose: Callable[[PodSpec], Awaitable[tuple[str, ...]]]
    ) -> Callable[[PodSpec], Awaitable[tuple[str, ...]]]:
        """A webhook chooser that sees the pod limited by its claims: pinned at admission to
        pools of other zones, a pod whose volume is in one zone could never run."""

        async def limited(pod: PodSpec) -> tuple[str, ...]:
            return await choose(self.limited_by_claims(pod) if pod.claims else pod)

        return limited

    def _notify_pending(self, key: str, now: float) -> None:
        if self._on_pending is not None:
            self._on_pending(key, now)

    def _bump(self) -> None:
        self._generation += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None


def watch_timeout_for(max_cache_age_s: float) -> float:
    """A watch timeout under which a healthy, idle watch is heard from (the server ends it
    on time) well within ``max_cache_age_s``: two thirds of it, at
    most :data:`WATCH_TIMEOUT_S`, at least the API's 1 s."""
    return max(1.0, min(WATCH_TIMEOUT_S, max_cache_age_s * 2.0 / 3.0))


def _node_name(raw: Mapping[str, Any]) -> str:
    return str((raw.get("metadata") or {}).get("name", ""))


def _convert_pod_entry(raw: Mapping[str, Any]) -> _PodEntry:
    uid = (raw.get("metadata") or {}).get("uid") or ""
    return uid, convert_pod(raw)
