"""The values every decision is made of: resources, pods, pools, taints and selectors.

Everything here is a frozen, hashable dataclass. Pods and pools are *specifications*: what a
pod asks for and what a pool can launch. Live state (nodes, which pod runs where, what is in
flight) lives in :mod:`scaler.core.state`.

One resource axis is used everywhere a vector is needed, in this order::

    cpu_milli, memory_mib, gpu, pods, ephemeral_mib

so ``Resources.as_array()`` and every ``(..., R)`` NumPy array agree on column meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from scaler.core.frozen import slot_init

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

RESOURCES: Final = ("cpu_milli", "memory_mib", "gpu", "pods", "ephemeral_mib")
CPU, MEM, GPU, PODS, EPH = range(len(RESOURCES))
R: Final = len(RESOURCES)

ON_DEMAND: Final = "on-demand"
SPOT: Final = "spot"
CAPACITY_TYPES: Final = (ON_DEMAND, SPOT)

AMD64: Final = "amd64"
ARM64: Final = "arm64"

# Well-known node labels (kubernetes.io and EKS conventions, DOMAIN.md).
LABEL_INSTANCE_TYPE: Final = "node.kubernetes.io/instance-type"
LABEL_ZONE: Final = "topology.kubernetes.io/zone"
LABEL_REGION: Final = "topology.kubernetes.io/region"
LABEL_OS: Final = "kubernetes.io/os"
LABEL_EBS_ZONE: Final = "topology.ebs.csi.aws.com/zone"
LABEL_NODEGROUP: Final = "eks.amazonaws.com/nodegroup"
LABEL_ARCH: Final = "kubernetes.io/arch"
LABEL_CAPACITY_TYPE: Final = "eks.amazonaws.com/capacityType"
LABEL_ACCELERATOR: Final = "k8s.amazonaws.com/accelerator"
LABEL_GPU: Final = "nvidia.com/gpu"
# The label scaler pins pods with: every pool's nodes carry it with the pool's name.
LABEL_POOL: Final = "scaler.io/pool"

EKS_CAPACITY_LABEL_VALUE: Final = {ON_DEMAND: "ON_DEMAND", SPOT: "SPOT"}

NO_SCHEDULE: Final = "NoSchedule"
NO_EXECUTE: Final = "NoExecute"
PREFER_NO_SCHEDULE: Final = "PreferNoSchedule"
TAINT_EFFECTS: Final = (NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE)


class SpecError(ValueError):
    """Bad input, with the place it came from (``where``) and what is wrong with it (``what``).

    ``where`` reads like a path a person can follow: ``pods[3] (notebook-alice).requests.memory``.
    """

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}" if where else what)
        self.where = where
        self.what = what

    def within(self, prefix: str, sep: str = ".") -> SpecError:
        """The same error, located inside ``prefix`` (a list entry; a file with ``sep=": "``)."""
        if not self.where:
            return SpecError(prefix, self.what)
        joiner = "" if self.where.startswith("[") and sep == "." else sep
        return SpecError(f"{prefix}{joiner}{self.where}", self.what)


@slot_init
@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of each resource. Memory and ephemeral storage in MiB, CPU in millicores."""

    cpu_milli: float = 0.0
    memory_mib: float = 0.0
    gpu: float = 0.0
    pods: float = 0.0
    ephemeral_mib: float = 0.0

    def as_array(self) -> FloatArray:
        """Shape (R,), in :data:`RESOURCES` order."""
        return np.array(
            [self.cpu_milli, self.memory_mib, self.gpu, self.pods, self.ephemeral_mib],
            dtype=np.float64,
        )

    @staticmethod
    def from_array(a: FloatArray) -> Resources:
        return Resources(*(float(x) for x in a[:R]))

    def __add__(self, other: Resources) -> Resources:
        return Resources.from_array(self.as_array() + other.as_array())

    def __sub__(self, other: Resources) -> Resources:
        return Resources.from_array(self.as_array() - other.as_array())

    def maximum(self, other: Resources) -> Resources:
        return Resources.from_array(np.maximum(self.as_array(), other.as_array()))

    def is_zero(self) -> bool:
        return not bool(np.any(self.as_array()))

    def describe(self) -> str:
        """Short human form: ``cpu 500m, memory 4Gi, gpu 1``; zero amounts are left out."""
        parts = []
        if self.cpu_milli:
            parts.append(f"cpu {format_cpu(self.cpu_milli)}")
        if self.memory_mib:
            parts.append(f"memory {format_mib(self.memory_mib)}")
        if self.gpu:
            parts.append(f"gpu {self.gpu:g}")
        if self.ephemeral_mib:
            parts.append(f"ephemeral-storage {format_mib(self.ephemeral_mib)}")
        return ", ".join(parts) or "no requests"


def format_cpu(milli: float) -> str:
    return f"{milli / 1000:g}" if milli % 1000 == 0 else f"{milli:g}m"


def format_mib(mib: float) -> str:
    for unit, size in (("Ti", 1024.0**2), ("Gi", 1024.0)):
        if mib >= size:
            return f"{mib / size:.4g}{unit}"
    return f"{mib:.4g}Mi"


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: str = NO_SCHEDULE

    def __str__(self) -> str:
        return (
            f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"
        )


@dataclass(frozen=True, slots=True)
class Toleration:
    """A pod's toleration. ``operator`` is ``Equal`` or ``Exists``; an empty key with
    ``Exists`` tolerates everything; an empty effect matches every effect (Kubernetes rules)."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if not self.key:
            return self.operator == "Exists"
        if self.key != taint.key:
            return False
        return self.operator == "Exists" or self.value == taint.value


SELECTOR_OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One node-selector requirement (``matchExpressions`` entry)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        op = self.operator
        if op == "In":
            return value is not None and value in self.values
        if op == "NotIn":
            return value is None or value not in self.values
        if op == "Exists":
            return value is not None
        if op == "DoesNotExist":
            return value is None
        # Gt / Lt compare integers; a label that is not an integer never matches (Kubernetes).
        try:
            have, want = int(value) if value is not None else None, int(self.values[0])
        except (ValueError, IndexError):
            return False
        if have is None:
            return False
        return have > want if op == "Gt" else have < want

    def __str__(self) -> str:
        if self.operator in ("Exists", "DoesNotExist"):
            return f"{self.key} {self.operator}"
        return f"{self.key} {self.operator} ({', '.join(self.values)})"


@dataclass(frozen=True, slots=True)
class SelectorTerm:
    """A node-selector term: all of its requirements must hold."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def selector_matches(selector: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    """A label selector (``matchLabels`` as ``In`` requirements, then ``matchExpressions``):
    every requirement holds; an empty selector matches every pod, as in Kubernetes."""
    return all(r.matches(labels) for r in selector)


@dataclass(frozen=True, slots=True)
class PodTerm:
    """A required pod (anti-)affinity term whose topology is the zone: pods matching
    ``selector`` in ``namespaces`` (empty: the pod's own) must (not) be in the zone."""

    selector: tuple[Requirement, ...]
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ZoneSpread:
    """A ``topologySpreadConstraints`` entry over the zone key with ``DoNotSchedule``: matching
    pods per zone may differ by at most ``max_skew``."""

    max_skew: int
    selector: tuple[Requirement, ...]


@slot_init
@dataclass(frozen=True, slots=True)
class PodSpec:
    """What a pod needs from a node.

    ``requests`` is the effective request Kubernetes schedules by (containers, init
    containers, sidecars and overhead already folded in), with ``pods`` = 1.
    ``affinity`` holds the required node-affinity terms (any one must match; empty = no
    constraint). ``arch`` is the architecture the pod is limited to; ``None`` means its node
    selector or affinity names ``kubernetes.io/arch`` itself and labels decide.
    """

    name: str
    requests: Resources = field(default_factory=lambda: Resources(pods=1.0))
    namespace: str = "default"
    node_selector: tuple[tuple[str, str], ...] = ()
    affinity: tuple[SelectorTerm, ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    zone: str | None = None
    arch: str | None = AMD64
    gpu_models: tuple[str, ...] = ()
    capacity_types: tuple[str, ...] = ()
    arrival_s: float = 0.0
    duration_s: float | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    priority: int = 0
    """``spec.priority`` as the Priority admission plugin sets it from the pod's
    PriorityClass: below ``priority_cutoff`` a pod never causes a scale-up, and when pools
    are capped higher priorities are served first."""
    labels: tuple[tuple[str, str], ...] = ()
    """The pod's own labels: what other pods' spread and (anti-)affinity selectors match."""
    zone_spread: tuple[ZoneSpread, ...] = ()
    zone_affinity: tuple[PodTerm, ...] = ()
    """Required pod affinity by zone: the pod goes to a zone where such pods run."""
    zone_anti_affinity: tuple[PodTerm, ...] = ()
    """Required pod anti-affinity by zone: never a zone where such pods run."""
    one_per_node: bool = False
    """Required pod anti-affinity by hostname: never two such pods on one node, so a pool
    that packs gives it a node of its own."""
    preferred: tuple[tuple[int, SelectorTerm], ...] = ()
    """Preferred node affinity (weight, term): breaks ties among pools of equal cost."""
    claims: tuple[str, ...] = ()
    """``namespace/name`` of the PersistentVolumeClaims a live pod mounts: the Kubernetes
    adapter turns them into the pod's zone from its claim and volume caches."""
    owner_kind: str | None = None
    """The kind of the pod's controller (``Job``, ``ReplicaSet``, ``StatefulSet``, ...);
    None for a bare pod. How long it runs and what an interruption costs it depend on it
    (:mod:`scaler.core.runtime`)."""

    def topology(self) -> tuple[object, ...]:
        """What besides :meth:`constraints` sets pods of a class apart: their zone spread,
        pod (anti-)affinity and preferences, which count pods of their namespace. Empty
        for the usual pod, so classes of pods without any stay as they were."""
        if not (self.zone_spread or self.zone_affinity or self.zone_anti_affinity
                or self.one_per_node or self.preferred):
            return ()
        return (
            self.namespace,
            self.zone_spread,
            self.zone_affinity,
            self.zone_anti_affinity,
            self.one_per_node,
            self.preferred,
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def constraints(self) -> tuple[object, ...]:
        """Everything that decides which pools can run this pod, and nothing else.

        Pods with equal constraints are interchangeable for placement (an equivalence class,
        as cluster-autoscaler groups pods)."""
        return (
            self.requests,
            self.node_selector,
            self.affinity,
            self.tolerations,
            self.zone,
            self.arch,
            self.gpu_models,
            self.capacity_types,
        )

    def label_constraints(self) -> tuple[object, ...]:
        """The non-resource part of :meth:`constraints`."""
        return self.constraints()[1:]

    def annotation(self, key: str) -> str | None:
        for k, v in self.annotations:
            if k == key:
                return v
        return None


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A group of identical nodes scaler may grow: an ASG, or a virtual pool in the simulator.

    A pool with several instance types (an ASG mixed-instances policy) is scored
    conservatively: allocatable is the per-resource minimum over its types (any of them may
    launch) and the price the highest among them (what a node may cost).
    """

    name: str
    instance_types: tuple[str, ...]
    capacity_type: str = ON_DEMAND
    zones: tuple[str, ...] = ()
    min_size: int = 0
    max_size: int | None = None
    current_size: int = 0
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[Taint, ...] = ()
    price_usd_per_hour: float | None = None
    allocatable: Resources | None = None
    price_multiplier: float = 1.0
    """Applied to the live or catalog price (an RI / Savings Plan / EDP discount); not to
    ``price_usd_per_hour``, which is already what the company pays."""
    observed_allocatable: tuple[tuple[str, Resources], ...] = ()
    """(instance type, what its registered nodes in this pool report as allocatable): CPU,
    memory and pods are lowered to it where the EKS model says more (:mod:`scaler.core.observed`)."""
    daemonset_overhead: Resources = field(default_factory=Resources)
    observed_labels: tuple[tuple[str, str], ...] | None = None
    """The labels every registered node of this pool carries (:mod:`scaler.core.observed`):
    when set, they replace the guessed template labels (catalog and node-template tags)."""
    observed_taints: tuple[Taint, ...] | None = None
    """The taints its registered nodes carry: when set, they replace the template's."""
    ephemeral_storage_mib: float = 20 * 1024.0  # EKS default root volume, 20 GiB
    pack: bool = False
    choose_zone: bool = False
    idle_timeout_s: float | None = None
    spot_share: float = 0.0
    """An on-demand group that mixes in Spot (an ASG's MixedInstancesPolicy): the expected
    share of its next node on Spot, by which its price and Spot risk are weighed (a partly
    on-demand group priced as all on-demand loses to dearer pools). 0 otherwise."""
    capacity_rebalance: bool = False
    """The group replaces a Spot node at risk itself (an ASG's ``CapacityRebalance``): a
    rebalance recommendation then launches nothing beside the group's own replacement."""
    spot_allocation_strategy: str | None = None
    """How the group picks the type of a Spot node (an ASG's ``SpotAllocationStrategy``,
    :mod:`scaler.core.spot_allocation`): its Spot share is priced, and its Spot risk taken,
    from the types that strategy picks. None: the dearest type (any may launch)."""
    spot_instance_pools: int = 2
    """``SpotInstancePools`` of a lowest-price group: how many of the cheapest Spot types of
    a zone it spreads over (AWS's default 2)."""

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class InstanceType:
    """One EC2 instance type from the catalog."""

    name: str
    vcpus: int
    memory_mib: int
    gpu_count: int
    gpu_model: str | None
    gpu_memory_mib: int
    arch: str
    bare_metal: bool
    max_pods: int
    on_demand_usd_per_hour: float
    spot_savings_pct: float | None
    spot_interruption_bucket: int | None
    zones: tuple[str, ...] = ()
    burstable: bool = False
    """CPU credits (t2/t3/t3a/t4g): a sustained load runs at the baseline, a fraction of
    ``vcpus``; kept out of default pools unless asked for (Catalog.default_pools)."""

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def spot_usd_per_hour(self) -> float | None:
        if self.spot_savings_pct is None:
            return None
        return self.on_demand_usd_per_hour * (1.0 - self.spot_savings_pct / 100.0)

    def price(self, capacity_type: str) -> float | None:
        return self.on_demand_usd_per_hour if capacity_type == ON_DEMAND else self.spot_usd_per_hour
