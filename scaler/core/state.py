"""Live state as the decision code sees it: nodes, pods on them, pending pods.

A :class:`ClusterView` is a frozen snapshot that the Kubernetes adapter (live) or the
simulated cluster (offline) produces; decisions never read anything else about the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from scaler.core.frozen import slot_init
from scaler.core.model import PodSpec, Resources, Taint
from scaler.core.runtime import RuntimeHistory

if TYPE_CHECKING:
    from scaler.core.viewindex import ViewIndexes

# Annotations scaler reads and writes on nodes and pods.
ANNOTATION_IDLE_SINCE: Final = "scaler.io/idle-since"
ANNOTATION_DRAIN_DEADLINE: Final = "scaler.io/drain-deadline"
"""Unix seconds by which an interrupted node's pods must be evicted; written when its drain
starts, read by a process that takes the drain over after a restart."""
"""On a node: unix seconds since when it has had no workload pod (survives restarts)."""
ANNOTATION_SCALE_DOWN_DISABLED: Final = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
ANNOTATION_SAFE_TO_EVICT: Final = "cluster-autoscaler.kubernetes.io/safe-to-evict"
ANNOTATION_DO_NOT_DISRUPT: Final = "karpenter.sh/do-not-disrupt"
ANNOTATION_RESTARTABLE: Final = "scaler.io/restartable"
ANNOTATION_PIN: Final = "scaler.io/pin"
"""On a pod: ``"false"`` opts it out of the pinning webhook."""
ANNOTATION_PINNED_POOLS: Final = "scaler.io/pinned-pools"
"""On a pod: the tier the pinning webhook pinned it to (its namespace is pinned at admission)."""
TAINT_REMOVING: Final = "scaler.io/removing"
"""scaler's own NoSchedule taint on a node it is about to terminate: kube-scheduler puts no
new pod there while the node's pods are read live and the instance is terminated."""


@slot_init
@dataclass(frozen=True, slots=True)
class Node:
    """A node in the cluster, or registered soon: an instance the cloud launched.

    ``pool`` is the pool (ASG) the node belongs to, resolved by the adapter from the node's
    providerID or its ``scaler.io/pool`` label; ``None`` for nodes scaler does not manage.
    ``ready`` is the kubelet's Ready condition; ``gpu_ready`` is False on a GPU node until
    the device plugin advertises its GPUs (DOMAIN.md: minutes after boot).
    """

    name: str
    pool: str | None
    instance_type: str
    capacity_type: str
    zone: str | None = None
    instance_id: str | None = None
    allocatable: Resources = field(default_factory=Resources)
    ready: bool = True
    gpu_ready: bool = True
    unschedulable: bool = False
    created_s: float = 0.0
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[Taint, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    pool_labelled: bool = True
    """The node's ``scaler.io/pool`` label names its pool. False for a node whose pool is
    known from its providerID only, or whose label names another group: a pod pinned to its
    pool could not be scheduled there."""

    def annotation(self, key: str) -> str | None:
        for k, v in self.annotations:
            if k == key:
                return v
        return None

    @property
    def schedulable_ready(self) -> bool:
        """Ready, GPUs advertised, not cordoned: it can take a pod now."""
        return self.ready and self.gpu_ready and not self.unschedulable


@slot_init
@dataclass(frozen=True, slots=True)
class BoundPod:
    """A pod bound to a node (running, or starting there)."""

    pod: PodSpec
    node: str
    started_s: float = 0.0
    daemonset: bool = False
    mirror: bool = False
    owner: str | None = None
    """The DaemonSet (``namespace/name``) a DaemonSet pod belongs to."""

    @property
    def is_workload(self) -> bool:
        """DaemonSet and mirror (static) pods do not keep a node alive."""
        return not (self.daemonset or self.mirror)


@slot_init
@dataclass(frozen=True, slots=True)
class PendingPod:
    """A pod the scheduler found no node for (PodScheduled=False, reason Unschedulable)."""

    pod: PodSpec
    since_s: float


@dataclass(frozen=True, slots=True)
class NodeTemplateReport:
    """What the registered nodes of one (pool, instance type) carry in common: labels (less
    the per-node ones) and taints (less those that come and go with a node's state).
    :mod:`scaler.core.observed` computes it; it replaces the pool's guessed template."""

    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[Taint, ...] = ()


@slot_init
@dataclass(frozen=True, slots=True)
class ClusterView:
    """One consistent snapshot of the cluster at ``now_s``."""

    now_s: float
    nodes: tuple[Node, ...] = ()
    bound: tuple[BoundPod, ...] = ()
    pending: tuple[PendingPod, ...] = ()
    reported_allocatable: Mapping[tuple[str, str], Resources] = field(default_factory=dict)
    """(pool, instance type) -> what its registered nodes report as allocatable, kept after
    the pool scales to zero (:mod:`scaler.core.observed`). Empty where nodes are modelled
    exactly (the simulator)."""
    reported_templates: Mapping[tuple[str, str], NodeTemplateReport] = field(default_factory=dict)
    """(pool, instance type) -> the labels and taints its registered nodes carry, kept after
    the pool scales to zero (:mod:`scaler.core.observed`). Empty in the simulator."""
    runtimes: RuntimeHistory = field(default_factory=RuntimeHistory)
    """How long finished pods ran, by workload and namespace (:mod:`scaler.core.runtime`):
    what a pod's Spot risk is judged by. Recorded by the source as pods finish."""
    indexes: ViewIndexes = field(default_factory=lambda: _fresh_indexes(), compare=False,
                                 repr=False)
    """The source's indexes over ``nodes`` and ``bound`` (:mod:`scaler.core.viewindex`),
    kept across its views while its tuples are the same objects; a fresh set by default."""

    def daemonsets(self) -> tuple[PodSpec, ...]:
        """One pod spec per DaemonSet running in the cluster (its largest pod's requests):
        what every new node its selectors and tolerations admit will run too."""
        return daemonsets_of(self.bound)

    def pods_by_node(self) -> dict[str, list[BoundPod]]:
        out: dict[str, list[BoundPod]] = {n.name: [] for n in self.nodes}
        for b in self.bound:
            out.setdefault(b.node, []).append(b)
        return out


@dataclass(frozen=True, slots=True)
class LaunchFailure:
    """The cloud could not launch nodes for a pool (InsufficientInstanceCapacity, no subnet
    IPs, ...), as reported after the fact (ASG scaling activities)."""

    pool: str
    at_s: float
    reason: str


def daemonsets_of(bound: tuple[BoundPod, ...]) -> tuple[PodSpec, ...]:
    """:meth:`ClusterView.daemonsets` of these bound pods: it reads only the pods with an
    owner, in their order (the first of equal largest ones stands)."""
    largest: dict[str, PodSpec] = {}
    for b in bound:
        if b.owner is None:
            continue
        seen = largest.get(b.owner)
        if seen is None or b.pod.requests.memory_mib > seen.requests.memory_mib:
            largest[b.owner] = b.pod
    return tuple(largest[k] for k in sorted(largest))


def _fresh_indexes() -> ViewIndexes:
    # viewindex builds on this module's types, so it is imported when a view is made.
    from scaler.core.viewindex import ViewIndexes

    return ViewIndexes()
