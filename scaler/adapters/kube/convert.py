"""Kubernetes API objects -> core values. Pure: no client, no I/O, testable without a server.

Input is an object as the API serializes it (camelCase dicts: the watch stream's JSON, or
``ApiClient().sanitize_for_serialization(V1Pod)``). Output is the small frozen core values
the caches keep (:class:`~scaler.core.model.PodSpec`, :class:`~scaler.core.state.Node`,
:class:`~scaler.core.state.PendingPod`, :class:`~scaler.core.state.BoundPod`), never the API
object, so 20,000 pods cost megabytes, not the client's model objects.

A live object scaler cannot read (a quantity that does not parse, a resource scaler does not
schedule by) must not stop the controller: conversion returns a :class:`Problem` naming the
object and the field, and the caller logs it and carries on.

The pending rule (what makes scaler consider a pod for scale-up) is :func:`pending_since`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from scaler.adapters.kube.volumes import pod_claims
from scaler.core.model import (
    AMD64,
    LABEL_ARCH,
    LABEL_CAPACITY_TYPE,
    LABEL_GPU,
    LABEL_INSTANCE_TYPE,
    LABEL_POOL,
    LABEL_ZONE,
    ON_DEMAND,
    SPOT,
    PodSpec,
    Resources,
    SelectorTerm,
    SpecError,
    Toleration,
)
from scaler.core.names import shown
from scaler.core.quantity import QuantityError, cpu_milli, memory_mib, whole_count
from scaler.core.spec import (
    GPU_RESOURCE,
    KNOWN_RESOURCES,
    PodTopology,
    effective_requests,
    parse_node_affinity,
    parse_pod_topology,
    parse_taint,
    parse_tolerations,
)
from scaler.core.state import BoundPod, Node, PendingPod

T = TypeVar("T")

ANNOTATION_MIRROR: Final = "kubernetes.io/config.mirror"
"""Set by the kubelet on the API copy of a static pod."""
LABEL_KARPENTER_CAPACITY_TYPE: Final = "karpenter.sh/capacity-type"
# Deprecated spellings older nodes still carry (kubelet < 1.17 wrote only these).
LABEL_INSTANCE_TYPE_BETA: Final = "beta.kubernetes.io/instance-type"
LABEL_ZONE_BETA: Final = "failure-domain.beta.kubernetes.io/zone"

DROPPED_ANNOTATIONS: Final = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
"""Never kept: a copy of the whole object, often kilobytes per pod, of no use to decisions."""
MAX_ANNOTATION_CHARS: Final = 1024
"""Longer annotation values are not kept: scaler's own annotations are short flags and
timestamps, and 20,000 pods carrying kilobytes each would blow the memory budget."""

_FINISHED_PHASES: Final = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class Problem:
    """An object scaler could not fully read. ``key`` is ``namespace/name`` (pods) or the
    node's name; ``field`` is a path into the object (``spec.containers[0].resources...``)."""

    kind: str
    key: str
    field: str
    what: str

    def __str__(self) -> str:
        where = f".{self.field}" if self.field else ""
        return f"{self.kind} {shown(self.key)}{where}: {self.what}"


@dataclass(frozen=True, slots=True)
class Converted(Generic[T]):
    """A conversion's result, and what was wrong with the input if anything was."""

    value: T
    problem: Problem | None = None


# ------------------------------------------------------------------------------------ time


def parse_time(text: str | None) -> float | None:
    """RFC 3339 Time or MicroTime (``2024-05-01T10:00:00Z``, ``...00.123456Z``) -> unix s."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


# ------------------------------------------------------------------------------------ pods


def pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"


def is_daemonset_pod(pod: Mapping[str, Any]) -> bool:
    return daemonset_owner(pod) is not None


def daemonset_owner(pod: Mapping[str, Any]) -> str | None:
    """``namespace/name`` of the DaemonSet that owns the pod, or None."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or ():
        if ref.get("kind") == "DaemonSet":
            return f"{meta.get('namespace', 'default')}/{ref.get('name', '')}"
    return None


def owner_kind(pod: Mapping[str, Any]) -> str | None:
    """The kind of the pod's controller (the owner reference marked ``controller``, else the
    first), or None for a bare pod."""
    refs = [r for r in (pod.get("metadata") or {}).get("ownerReferences") or ()
            if isinstance(r, Mapping) and isinstance(r.get("kind"), str)]
    ref = next((r for r in refs if r.get("controller") is True), refs[0] if refs else None)
    return _intern(ref["kind"]) if ref is not None else None


def is_mirror_pod(pod: Mapping[str, Any]) -> bool:
    return ANNOTATION_MIRROR in ((pod.get("metadata") or {}).get("annotations") or {})


def pending_since(pod: Mapping[str, Any]) -> float | None:
    """When the scheduler last found no node for this pod, or None if it is not pending.

    Pending means all of: the PodScheduled condition is False with reason Unschedulable
    (kube-scheduler tried and failed; a pod it has not looked at yet has no such condition);
    not being deleted (no deletionTimestamp); no ``status.nominatedNodeName`` (preemption
    is freeing room for it on an existing node); not bound (no ``spec.nodeName``); not
    finished. The answer is the condition's lastTransitionTime.
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp") or spec.get("nodeName") or status.get("nominatedNodeName"):
        return None
    if status.get("phase") in _FINISHED_PHASES:
        return None
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled":
            if cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
                since = parse_time(cond.get("lastTransitionTime"))
                return since if since is not None else parse_time(meta.get("creationTimestamp"))
            return None
    return None


def pod_spec(pod: Mapping[str, Any], *, strict: bool = True) -> Converted[PodSpec | None]:
    """The scheduling-relevant part of a pod.

    ``strict`` (pending pods): a resource scaler does not schedule by, or a bad quantity, is a
    problem and the pod is not placed (value None). Not strict (bound pods, which must keep
    their node from looking empty): unknown resources are left out silently, bad quantities
    are left out and reported.
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    key = pod_key(pod)
    problem: Problem | None = None
    try:
        requests = effective_requests(_scheduling_part(spec, None if strict else _known))
        affinity_raw = spec.get("affinity")
        if is_daemonset_pod(pod):
            # The DaemonSet controller pins each pod to its node with matchFields
            # (metadata.name): meaningless on another node, and no reason to refuse the pod.
            affinity_raw = _without_match_fields(affinity_raw)
        affinity = parse_node_affinity(affinity_raw, "affinity")
        tolerations = parse_tolerations(spec.get("tolerations"), "tolerations")
        node_selector = _string_pairs(spec.get("nodeSelector"), "nodeSelector")
        topology = parse_pod_topology(affinity_raw, spec.get("topologySpreadConstraints"))
    except SpecError as e:
        problem = Problem("pod", key, f"spec.{e.where}" if e.where else "spec", e.what)
        if strict:
            return Converted(None, problem)
        requests, affinity, tolerations, node_selector = _lenient_parts(pod)
        topology = PodTopology()

    zone = None
    selected = dict(node_selector)
    if LABEL_ZONE in selected:
        # Same rule as the input format: a zone in the selector is the pod's zone, which a
        # multi-zone pool that picks its zone can honour although it carries no zone label.
        zone = selected[LABEL_ZONE]
        node_selector = tuple((k, v) for k, v in node_selector if k != LABEL_ZONE)
    names_arch = LABEL_ARCH in selected or any(
        r.key == LABEL_ARCH for t in affinity for r in t.requirements
    )
    return Converted(
        PodSpec(
            name=meta.get("name", ""),
            namespace=_intern(meta.get("namespace") or "default"),
            requests=_shared(requests),
            node_selector=_shared(node_selector),
            affinity=_shared(affinity),
            tolerations=_shared(tolerations),
            zone=zone,
            arch=None if names_arch else AMD64,
            arrival_s=parse_time(meta.get("creationTimestamp")) or 0.0,
            annotations=_shared(kept_annotations(meta.get("annotations"))),
            priority=_priority(spec.get("priority")),
            labels=_shared(_lenient_pairs(meta.get("labels"))),
            zone_spread=topology.zone_spread,
            zone_affinity=topology.zone_affinity,
            zone_anti_affinity=topology.zone_anti_affinity,
            one_per_node=topology.one_per_node,
            preferred=topology.preferred,
            claims=_shared(pod_claims(pod)),
            owner_kind=owner_kind(pod),
        ),
        problem,
    )


def _lenient_pairs(raw: Any) -> tuple[tuple[str, str], ...]:
    """Labels as kept pairs (the API server only admits string maps)."""
    if not isinstance(raw, Mapping):
        return ()
    return tuple(sorted(_shared_pair((_intern(str(k)), _intern(str(v)))) for k, v in raw.items()))


def _priority(raw: Any) -> int:
    """``spec.priority`` (an int32 the Priority admission plugin sets; absent: 0, as
    kube-scheduler reads a pod without one)."""
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0


def convert_pod(pod: Mapping[str, Any]) -> Converted[PendingPod | BoundPod | None]:
    """What a pod is to scaler: pending (see :func:`pending_since`), bound (``spec.nodeName``
    set and not Succeeded/Failed), or neither (None: not yet looked at by the scheduler,
    nominated, being deleted before binding, finished, or a DaemonSet pod that did not fit
    its node, which no new node can help)."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    node = spec.get("nodeName")
    if node:
        if status.get("phase") in _FINISHED_PHASES:
            return Converted(None)
        got = pod_spec(pod, strict=False)
        assert got.value is not None  # not strict: always a value
        started = parse_time(status.get("startTime")) or got.value.arrival_s
        owner = daemonset_owner(pod)
        bound = BoundPod(
            pod=got.value,
            node=_intern(node),
            started_s=started,
            daemonset=owner is not None,
            mirror=is_mirror_pod(pod),
            owner=_intern(owner) if owner is not None else None,
        )
        return Converted(bound, got.problem)
    since = pending_since(pod)
    if since is None or is_daemonset_pod(pod):
        return Converted(None)
    got = pod_spec(pod, strict=True)
    if got.value is None:
        return Converted(None, got.problem)
    return Converted(PendingPod(pod=got.value, since_s=since))


def _scheduling_part(
    spec: Mapping[str, Any], keep: Callable[[str, Any], bool] | None = None
) -> dict[str, Any]:
    """The fields requests come from; with ``keep``, only the amounts it accepts."""
    part = {k: spec[k] for k in ("containers", "initContainers", "overhead") if k in spec}
    if keep is None:
        return part
    for key in ("containers", "initContainers"):
        if isinstance(part.get(key), list):
            part[key] = [_filtered_container(c, keep) for c in part[key]]
    if isinstance(part.get("overhead"), Mapping):
        part["overhead"] = _filtered(part["overhead"], keep)
    return part


def _filtered_container(container: Any, keep: Callable[[str, Any], bool]) -> Any:
    if not isinstance(container, Mapping) or not isinstance(container.get("resources"), Mapping):
        return container
    res = container["resources"]
    kept = {
        k: _filtered(v, keep)
        for k, v in res.items()
        if k in ("requests", "limits") and isinstance(v, Mapping)
    }
    return {**container, "resources": kept}


def _filtered(amounts: Mapping[str, Any], keep: Callable[[str, Any], bool]) -> dict[str, Any]:
    return {k: v for k, v in amounts.items() if keep(k, v)}


def _known(name: str, _: Any) -> bool:
    return name in KNOWN_RESOURCES


def _readable(name: str, value: Any) -> bool:
    parse = whole_count if name == GPU_RESOURCE else cpu_milli if name == "cpu" else memory_mib
    try:
        parse(value)
    except QuantityError:
        return False
    return name in KNOWN_RESOURCES


def _lenient_parts(
    pod: Mapping[str, Any],
) -> tuple[
    Resources, tuple[SelectorTerm, ...], tuple[Toleration, ...], tuple[tuple[str, str], ...]
]:
    """Each part on its own, a part that cannot be read left empty (bound pods only)."""
    spec = pod.get("spec") or {}
    part = _scheduling_part(spec, _readable)
    requests = _or_default(lambda: effective_requests(part), Resources(pods=1.0))
    affinity_raw = spec.get("affinity")
    if is_daemonset_pod(pod):
        affinity_raw = _without_match_fields(affinity_raw)
    no_terms: tuple[SelectorTerm, ...] = ()
    no_tolerations: tuple[Toleration, ...] = ()
    no_labels: tuple[tuple[str, str], ...] = ()
    affinity = _or_default(lambda: parse_node_affinity(affinity_raw, "affinity"), no_terms)
    tolerations = _or_default(
        lambda: parse_tolerations(spec.get("tolerations"), "tolerations"), no_tolerations
    )
    selector = _or_default(
        lambda: _string_pairs(spec.get("nodeSelector"), "nodeSelector"), no_labels
    )
    return requests, affinity, tolerations, selector


def _or_default(parse: Callable[[], T], default: T) -> T:
    try:
        return parse()
    except SpecError:
        return default


def _without_match_fields(affinity: Any) -> Any:
    try:
        required = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        terms = required["nodeSelectorTerms"]
    except (KeyError, TypeError):
        return affinity
    kept = [
        {k: v for k, v in t.items() if k != "matchFields"}
        for t in terms
        if isinstance(t, Mapping) and t.get("matchExpressions")
    ]
    node_aff = dict(affinity["nodeAffinity"])
    if kept:
        node_aff["requiredDuringSchedulingIgnoredDuringExecution"] = {
            **required,
            "nodeSelectorTerms": kept,
        }
    else:
        node_aff.pop("requiredDuringSchedulingIgnoredDuringExecution")
    return {**affinity, "nodeAffinity": node_aff}


# ----------------------------------------------------------------------------------- nodes


def parse_provider_id(provider_id: str | None) -> tuple[str | None, str | None]:
    """``aws:///us-east-1a/i-0123456789abcdef0`` -> (zone, instance id); Nones if unknown."""
    if not provider_id or not provider_id.startswith("aws://"):
        return None, None
    parts = [p for p in provider_id[len("aws://") :].split("/") if p]
    if not parts or not parts[-1].startswith("i-"):
        return None, None
    return (parts[-2] if len(parts) >= 2 else None), parts[-1]


def convert_node(
    node: Mapping[str, Any],
    *,
    is_gpu_type: Callable[[str], bool] | None = None,
) -> Converted[Node]:
    """A Node as the decisions see it.

    ``pool``: the ``scaler.io/pool`` label, else None. The instance's group, which wins once
    the ASGs are discovered, is :class:`~scaler.adapters.kube.cluster.KubeCluster`'s to
    apply at snapshot time: the node is converted once, the discovery changes every tick.
    ``gpu_ready`` is False
    on a GPU node (label ``nvidia.com/gpu=true`` or ``is_gpu_type(instance type)``) whose
    allocatable ``nvidia.com/gpu`` is still 0 or missing: the device plugin has not
    advertised yet and the node is upcoming capacity (DOMAIN.md). Capacity type defaults to
    on-demand when neither the EKS nor the Karpenter label says.
    """
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    name = meta.get("name", "")
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    provider_zone, instance_id = parse_provider_id(spec.get("providerID"))
    pool = labels.get(LABEL_POOL)
    instance_type = labels.get(LABEL_INSTANCE_TYPE) or labels.get(LABEL_INSTANCE_TYPE_BETA) or ""

    problem: Problem | None = None
    allocatable, bad = _allocatable(status.get("allocatable"))
    if bad is not None:
        problem = Problem("node", name, f"status.allocatable.{bad[0]}", bad[1])
    taints = []
    for i, raw in enumerate(spec.get("taints") or ()):
        try:
            taints.append(parse_taint(raw, f"spec.taints[{i}]"))
        except SpecError as e:
            problem = problem or Problem("node", name, e.where, e.what)
    has_gpu = labels.get(LABEL_GPU) == "true" or bool(
        instance_type and is_gpu_type is not None and is_gpu_type(instance_type)
    )
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )
    return Converted(
        Node(
            name=_intern(name),
            pool=_intern(pool) if pool else None,
            instance_type=_intern(instance_type),
            capacity_type=_capacity_type(labels),
            zone=_intern(labels.get(LABEL_ZONE) or labels.get(LABEL_ZONE_BETA) or provider_zone),
            instance_id=instance_id,
            allocatable=allocatable,
            ready=ready,
            gpu_ready=not has_gpu or allocatable.gpu > 0,
            unschedulable=bool(spec.get("unschedulable")),
            created_s=parse_time(meta.get("creationTimestamp")) or 0.0,
            labels=tuple(sorted(_shared_pair((_intern(k), _intern(v))) for k, v in labels.items())),
            taints=tuple(taints),
            annotations=kept_annotations(meta.get("annotations")),
            pool_labelled=LABEL_POOL in labels,
        ),
        problem,
    )


def _capacity_type(labels: Mapping[str, str]) -> str:
    eks = labels.get(LABEL_CAPACITY_TYPE)
    karpenter = labels.get(LABEL_KARPENTER_CAPACITY_TYPE)
    if eks == "SPOT" or karpenter == SPOT:
        return SPOT
    return ON_DEMAND


_NODE_RESOURCES: Final = {
    "cpu": ("cpu_milli", cpu_milli),
    "memory": ("memory_mib", memory_mib),
    GPU_RESOURCE: ("gpu", whole_count),
    "pods": ("pods", whole_count),
    "ephemeral-storage": ("ephemeral_mib", memory_mib),
}


def _allocatable(raw: Any) -> tuple[Resources, tuple[str, str] | None]:
    """Known resources only (nodes advertise hugepages, EBS attach limits, ... too); a value
    that does not parse counts as 0 and is reported."""
    values: dict[str, float] = {}
    bad: tuple[str, str] | None = None
    for key, value in (raw or {}).items():
        if key not in _NODE_RESOURCES:
            continue
        attr, parse = _NODE_RESOURCES[key]
        try:
            values[attr] = float(parse(value))
        except QuantityError as e:
            bad = bad or (key, str(e))
    return Resources(**values), bad


# ---------------------------------------------------------------------------- small helpers


def kept_annotations(raw: Any) -> tuple[tuple[str, str], ...]:
    if not raw:
        return ()
    return tuple(
        sorted(
            _shared_pair((_intern(str(k)), str(v)))
            for k, v in raw.items()
            if k not in DROPPED_ANNOTATIONS and len(str(v)) <= MAX_ANNOTATION_CHARS
        )
    )


def _string_pairs(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise SpecError(where, "expected a map of strings")
    return tuple(sorted(_shared_pair((_intern(str(k)), _intern(v))) for k, v in raw.items()))


def _intern(text: str | None) -> Any:
    """Label keys, namespaces, node names repeat across thousands of objects: keep one copy."""
    return sys.intern(text) if text else text


class _Shared:
    """One copy of each equal frozen value. Bounded: emptied when full, which only costs
    memory (values shared before stay shared; new ones start over)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.table: dict[Any, Any] = {}

    def __call__(self, value: T) -> T:
        if len(self.table) >= self.limit:
            self.table.clear()
        shared: T = self.table.setdefault(value, value)
        return shared


_shared: Final = _Shared(20_000)
"""Requests, tolerations, selectors, annotations: the pods of one Deployment all carry the
same ones."""
_shared_pair: Final = _Shared(50_000)
"""Label pairs: a node's twenty-odd labels are mostly its group's, its zone's and its type's,
so 5,000 nodes hold 100,000 pairs but a few thousand distinct ones (5.6 MiB -> well under
1 MiB in benchmarks/controller_memory.py)."""
