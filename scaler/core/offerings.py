"""Offerings: the pools scaler may grow, resolved against the catalog into arrays.

Every array is aligned on the pool axis ``P`` and the pools are sorted once, in the order
ties are broken: cost, then smaller allocatable (memory, CPU, GPU), then name. Placement can
then take the *first* minimum of any row (``np.argmin``) and be deterministic.

Building offerings is the slow, Python part (per pool, once per change of pools or prices);
placement over them is NumPy only. Label, taint and constraint masks are cached per distinct
pod constraint set, because a cluster has few of those and many ticks.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from scaler.core.catalog import Catalog, node_labels, placement_labels
from scaler.core.model import (
    CPU,
    EPH,
    GPU,
    LABEL_CAPACITY_TYPE,
    LABEL_INSTANCE_TYPE,
    LABEL_NODEGROUP,
    LABEL_POOL,
    LABEL_REGION,
    LABEL_ZONE,
    MEM,
    NO_EXECUTE,
    NO_SCHEDULE,
    ON_DEMAND,
    PODS,
    SPOT,
    BoolArray,
    FloatArray,
    InstanceType,
    PodSpec,
    PoolSpec,
    Requirement,
    Resources,
    SelectorTerm,
    Taint,
)
from scaler.core.settings import PlacementSettings
from scaler.core.spot_allocation import STRATEGIES, spot_pick

HOURS_PER_MONTH = 730.0
"""AWS bills a month as 730 hours."""

IGNORE_TAINT_PREFIX = "ignore-taint.cluster-autoscaler.kubernetes.io/"
"""cluster-autoscaler's convention: a taint under this prefix is a startup taint."""


def is_startup_taint(taint: Taint, keys: Sequence[str]) -> bool:
    """A taint a node carries only while it starts (PlacementSettings.startup_taint_keys,
    or cluster-autoscaler's ignore-taint prefix)."""
    return taint.key in keys or taint.key.startswith(IGNORE_TAINT_PREFIX)


def lasting_taints(taints: Sequence[Taint], keys: Sequence[str]) -> tuple[Taint, ...]:
    """``taints`` without the startup ones: what a pod must tolerate to run there."""
    return tuple(t for t in taints if not is_startup_taint(t, keys))


@dataclass(frozen=True, slots=True)
class PoolProblem:
    """A pool that cannot be offered, and why (a person reads this)."""

    pool: str
    reason: str


@dataclass(frozen=True, slots=True)
class Prices:
    """Live prices that replace the catalog's: USD/hour by (instance type, capacity type)."""

    usd_per_hour: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def get(self, itype: InstanceType, capacity_type: str) -> float | None:
        live = self.usd_per_hour.get((itype.name, capacity_type))
        return live if live is not None else itype.price(capacity_type)


class OpenRows:
    """Cost-matrix rows over every pool of one :class:`Offerings`, every pool open (no
    backoff, no headroom), per pod class, for the settings they were scored with. Pods
    waiting for nodes on their way, and each placement, ask about the same classes tick
    after tick; a row is ``cost_matrix``'s own (the key holds all it reads of a pod: its
    constraints and whether it wants a node to itself, and each cell depends on its own pool
    only). Filled by :func:`scaler.core.placement.open_rows`."""

    KEPT: Final = 4096

    def __init__(self) -> None:
        self.settings: object | None = None
        self.kept: dict[
            tuple[object, ...], tuple[FloatArray, FloatArray, BoolArray, frozenset[str]]
        ] = {}
        """Class key -> (cost row, pods per node, where the class fits, those pools' names)."""
        self.terms: dict[int, tuple[FloatArray, FloatArray, object]] = {}
        """A kept row's id -> (that cost row, its pods per node, what placement makes of the
        row alone: :func:`scaler.core.placement._place_one`). The entry holds the row: its
        id cannot be another's while the entry stands."""

    def for_settings(
        self, settings: object
    ) -> dict[tuple[object, ...], tuple[FloatArray, FloatArray, BoolArray, frozenset[str]]]:
        """The rows scored with ``settings`` (another settings object starts afresh)."""
        if self.settings is not settings:
            self.settings, self.kept, self.terms = settings, {}, {}
        return self.kept


@dataclass(eq=False)
class Offerings:
    """Pools as arrays, in tie-break order. Shapes: P pools, R resources."""

    pools: tuple[PoolSpec, ...]
    instance_type: tuple[str, ...]
    """The type a node of each pool is scored as (the dearest of a mixed pool)."""
    allocatable: FloatArray
    """(P, R): what pods may request on one node, daemonsets already subtracted."""
    price: FloatArray
    """(P,): USD/hour of one node."""
    risk: FloatArray
    """(P,): USD/hour interruption-risk penalty of a pod nothing is known of (0 on-demand):
    interruptions per hour x ``spot_lost_work_h`` x price."""
    cost: FloatArray
    """(P,): price + risk, what placement minimises for such a pod; a pod whose lost work is
    estimated (:mod:`scaler.core.runtime`) is charged ``interruptions_per_h`` x its own."""
    spot: BoolArray
    has_gpu: BoolArray
    gpu_model: tuple[str | None, ...]
    arch: tuple[str, ...]
    labels: tuple[dict[str, str], ...]
    taints: tuple[tuple[Taint, ...], ...]
    zones: tuple[tuple[str, ...], ...]
    choose_zone: BoolArray
    pack: BoolArray
    interruptions_per_h: FloatArray | None = None
    """(P,): expected Spot interruptions per node-hour (0 on-demand; a partly-Spot pool's
    rate x its Spot share). None: all zero."""
    _index: dict[str, int] = field(default_factory=dict, repr=False)
    _mask_cache: dict[tuple[object, ...], BoolArray] = field(default_factory=dict, repr=False)
    _label_columns: dict[str, tuple[np.ndarray, BoolArray]] = field(
        default_factory=dict, repr=False
    )
    open_rows: OpenRows = field(default_factory=lambda: OpenRows(), repr=False)
    """decide()'s cost rows per pod class over these pools (:class:`OpenRows`): kept as long
    as these offerings are, like the constraint masks."""

    def __post_init__(self) -> None:
        self._index = {p.name: i for i, p in enumerate(self.pools)}
        gpu_models = np.array([(m or "").upper() for m in self.gpu_model], dtype=object)
        self._gpu_model_upper = gpu_models
        self._arch = np.array(self.arch, dtype=object)
        vocab = sorted(
            {t for ts in self.taints for t in ts if t.effect in (NO_SCHEDULE, NO_EXECUTE)}, key=str
        )
        self._taint_vocab: tuple[Taint, ...] = tuple(vocab)
        self._pool_taints = np.zeros((len(self.pools), len(vocab)), dtype=bool)
        where = {t: j for j, t in enumerate(vocab)}
        for i, ts in enumerate(self.taints):
            for t in ts:
                if t in where:
                    self._pool_taints[i, where[t]] = True

        self.similar = _similar_ids(self)
        self.any_similar = bool(len(np.unique(self.similar)) < len(self.pools))
        """Some pools are the same node in different zones (else balancing has no work)."""
        self.all_open = np.ones(len(self.pools), dtype=bool)
        """(P,) all True: the availability of a decision with no pool backing off. Shared
        by every placement over these offerings, so it refuses writes."""
        self.all_open.flags.writeable = False
        self.single_zone = np.array(
            [zs[0] if len(zs) == 1 else "" for zs in self.zones], dtype=object
        )
        """(P,) the one zone a pool launches into; "" for a pool with several or none."""

    def __len__(self) -> int:
        return len(self.pools)

    def index(self, pool_name: str) -> int:
        return self._index[pool_name]

    def get(self, pool_name: str) -> int | None:
        return self._index.get(pool_name)

    # ------------------------------------------------------------- constraint masks

    def constraint_mask(self, pod: PodSpec) -> BoolArray:
        """(P,): pools whose labels, taints, zones, arch, GPU model and capacity type allow
        ``pod``, resources aside. Cached per distinct constraint set."""
        key = (*pod.label_constraints(), pod.requests.gpu > 0)
        mask = self._mask_cache.get(key)
        if mask is None:
            mask = np.ones(len(self.pools), dtype=bool)
            for _, m in self.constraint_masks(pod):
                mask &= m
            mask.setflags(write=False)
            self._mask_cache[key] = mask
        return mask

    def constraint_masks(self, pod: PodSpec) -> list[tuple[str, BoolArray]]:
        """Each non-resource constraint's own (P,) mask, in the order reasons are given."""
        return [
            ("capacity type", self._capacity_mask(pod)),
            ("architecture", self._arch_mask(pod)),
            ("node selector", self._selector_mask(pod)),
            ("node affinity", self._affinity_mask(pod)),
            ("taints", self._toleration_mask(pod)),
            ("zone", self._zone_mask(pod)),
            ("GPU model", self._gpu_model_mask(pod)),
        ]

    def _capacity_mask(self, pod: PodSpec) -> BoolArray:
        allowed = set(pod.capacity_types)
        if not allowed or allowed == {ON_DEMAND, SPOT}:
            return np.ones(len(self.pools), dtype=bool)
        return self.spot.copy() if SPOT in allowed else ~self.spot

    def _arch_mask(self, pod: PodSpec) -> BoolArray:
        if pod.arch is None:
            return np.ones(len(self.pools), dtype=bool)
        return np.asarray(self._arch == pod.arch, dtype=bool)

    def _label_column(self, key: str) -> tuple[np.ndarray, BoolArray]:
        col = self._label_columns.get(key)
        if col is None:
            values = np.array([lab.get(key, "") for lab in self.labels], dtype=object)
            present = np.array([key in lab for lab in self.labels], dtype=bool)
            col = (values, present)
            self._label_columns[key] = col
        return col

    def _requirement_mask(self, req: Requirement) -> BoolArray:
        values, present = self._label_column(req.key)
        op = req.operator
        if op in ("In", "NotIn"):
            hit = present & np.isin(values, list(req.values))
            return hit if op == "In" else ~hit
        if op == "Exists":
            return present.copy()
        if op == "DoesNotExist":
            return ~present
        want = int(req.values[0])
        out = np.zeros(len(self.pools), dtype=bool)
        for i in np.flatnonzero(present):
            try:
                have = int(values[i])
            except ValueError:
                continue
            out[i] = have > want if op == "Gt" else have < want
        return out

    def _selector_mask(self, pod: PodSpec) -> BoolArray:
        mask = np.ones(len(self.pools), dtype=bool)
        for key, value in pod.node_selector:
            mask &= self._requirement_mask(Requirement(key, "In", (value,)))
        return mask

    def _affinity_mask(self, pod: PodSpec) -> BoolArray:
        if not pod.affinity:
            return np.ones(len(self.pools), dtype=bool)
        mask = np.zeros(len(self.pools), dtype=bool)
        for term in pod.affinity:
            term_mask = np.ones(len(self.pools), dtype=bool)
            for req in term.requirements:
                term_mask &= self._requirement_mask(req)
            mask |= term_mask
        return mask

    def _toleration_mask(self, pod: PodSpec) -> BoolArray:
        if not self._taint_vocab:
            return np.ones(len(self.pools), dtype=bool)
        tolerated = np.array(
            [
                any(t.tolerates(taint) for t in pod.tolerations)
                # A pod that asks for GPUs tolerates the GPU taint, as the
                # ExtendedResourceToleration admission plugin makes it in real clusters.
                or (pod.requests.gpu > 0 and taint.key == "nvidia.com/gpu")
                for taint in self._taint_vocab
            ],
            dtype=bool,
        )
        blocked: BoolArray = np.any(self._pool_taints & ~tolerated, axis=1)
        return ~blocked

    def _zone_mask(self, pod: PodSpec) -> BoolArray:
        if pod.zone is None:
            return np.ones(len(self.pools), dtype=bool)
        # A multi-zone ASG picks the zone itself, so only a pool in exactly that zone, or one
        # whose zone scaler chooses per node, can honour a pod pinned by its volume.
        return np.array(
            [
                pod.zone in zs and (len(zs) == 1 or bool(choose))
                for zs, choose in zip(self.zones, self.choose_zone, strict=True)
            ],
            dtype=bool,
        )

    def _gpu_model_mask(self, pod: PodSpec) -> BoolArray:
        if not pod.gpu_models or pod.requests.gpu == 0:
            return np.ones(len(self.pools), dtype=bool)
        return np.isin(self._gpu_model_upper, [m.upper() for m in pod.gpu_models])

    def preference_scores(self, preferred: Sequence[tuple[int, SelectorTerm]]) -> FloatArray:
        """(P,) summed weights of the preferred node-affinity terms each pool's labels meet."""
        score = np.zeros(len(self.pools))
        for weight, term in preferred:
            hit = np.ones(len(self.pools), dtype=bool)
            for req in term.requirements:
                hit &= self._requirement_mask(req)
            score += weight * hit
        return score

    # ------------------------------------------------------------------ descriptions

    def zone_for(self, i: int, pod: PodSpec) -> str | None:
        """The zone a node launched for ``pod`` in pool ``i`` lands in, when known."""
        if pod.zone is not None:
            return pod.zone
        zones = self.zones[i]
        return zones[0] if len(zones) == 1 else None


_ZONE_LABELS = (
    LABEL_ZONE,
    "failure-domain.beta.kubernetes.io/zone",
    "topology.ebs.csi.aws.com/zone",
    "topology.k8s.aws/zone-id",
)
"""Labels naming the node's zone: true of the whole pool only when it has one zone."""

_PER_ZONE_LABELS = frozenset(
    {*_ZONE_LABELS, LABEL_POOL, LABEL_NODEGROUP, "alpha.eksctl.io/nodegroup-name"}
)
"""Labels that differ between otherwise identical per-zone groups: the zone's, and the
group's own name (cluster-autoscaler's AWS balancing ignores the node-group labels too)."""

_RESTATED_LABELS = frozenset(
    {
        LABEL_INSTANCE_TYPE,
        "beta.kubernetes.io/instance-type",
        LABEL_CAPACITY_TYPE,
        LABEL_REGION,
        "failure-domain.beta.kubernetes.io/region",
    }
)
"""Labels that restate what the similarity key already compares (instance types, capacity
type) or that per-zone groups share (the region). Left out because a registered node and a
template guess carry different sets of them (the cloud provider's beta twins; no
``eks.amazonaws.com/capacityType`` on a self-managed group's nodes): comparing them would stop
balancing a group against its siblings as soon as one of its nodes registered."""


def _similar_ids(o: Offerings) -> np.ndarray:
    """(P,) int: pools with equal ids are the same node in different zones (same types,
    capacity type, price, allocatable, taints, and labels but for the zone's), the groups
    cluster-autoscaler's balance-similar-node-groups evens out. Once per build."""
    ids: dict[tuple[object, ...], int] = {}
    out = np.empty(len(o.pools), dtype=np.int64)
    for i, pool in enumerate(o.pools):
        key = (
            pool.instance_types,
            pool.capacity_type,
            round(float(o.cost[i]), 9),
            tuple(np.round(o.allocatable[i], 3)),
            o.taints[i],
            pool.pack,
            tuple(sorted(
                (k, v) for k, v in o.labels[i].items()
                if k not in _PER_ZONE_LABELS and k not in _RESTATED_LABELS
            )),
        )
        out[i] = ids.setdefault(key, len(ids))
    return out


def build_offerings(
    pools: Sequence[PoolSpec],
    catalog: Catalog,
    *,
    settings: PlacementSettings | None = None,
    prices: Prices | None = None,
    daemonsets: Sequence[PodSpec] = (),
) -> tuple[Offerings, list[PoolProblem]]:
    """Resolve pools against the catalog. A pool that cannot be resolved (unknown type, no
    Spot price, mixed architectures) is left out and reported, never fatal: one broken ASG
    must not stop the others from scaling.

    ``daemonsets`` (one pod spec per DaemonSet, live) are charged to every pool whose new
    nodes they would run on, by the same label and taint rules that place pods."""
    settings = settings or PlacementSettings()
    prices = prices or Prices()
    rows = []
    problems: list[PoolProblem] = []
    for pool in pools:
        row = _resolve(pool, catalog, settings, prices, daemonsets)
        if isinstance(row, PoolProblem):
            problems.append(row)
        else:
            rows.append(row)
    rows.sort(key=lambda r: (r[2] + r[3], r[1][MEM], r[1][CPU], r[1][GPU], r[0].name))
    n = len(rows)

    def col(i: int) -> list[object]:
        return [r[i] for r in rows]

    alloc = (
        np.array([r[1] for r in rows], dtype=np.float64).reshape(n, -1) if n else np.zeros((0, 5))
    )
    price = np.array(col(2), dtype=np.float64)
    risk = np.array(col(3), dtype=np.float64)
    offerings = Offerings(
        pools=tuple(r[0] for r in rows),
        instance_type=tuple(r[4] for r in rows),
        allocatable=alloc,
        price=price,
        risk=risk,
        cost=price + risk,
        spot=np.array([r[0].capacity_type == SPOT for r in rows], dtype=bool),
        has_gpu=alloc[:, GPU] > 0 if n else np.zeros(0, dtype=bool),
        gpu_model=tuple(r[5] for r in rows),
        arch=tuple(r[6] for r in rows),
        labels=tuple(r[7] for r in rows),
        taints=tuple(r[8] for r in rows),
        zones=tuple(r[0].zones for r in rows),
        choose_zone=np.array([r[0].choose_zone for r in rows], dtype=bool),
        pack=np.array([r[0].pack for r in rows], dtype=bool),
        interruptions_per_h=np.array(col(9), dtype=np.float64),
    )
    return offerings, problems


_OBSERVED = [CPU, MEM, PODS]
"""The resources a live node's allocatable may lower (PoolSpec.observed_allocatable)."""

_Row = tuple[
    PoolSpec, "FloatArray", float, float, str, "str | None", str, dict[str, str],
    tuple[Taint, ...], float,
]


def _resolve(
    pool: PoolSpec,
    catalog: Catalog,
    settings: PlacementSettings,
    prices: Prices,
    daemonsets: Sequence[PodSpec] = (),
) -> _Row | PoolProblem:
    missing = [t for t in pool.instance_types if t not in catalog]
    if missing:
        return PoolProblem(
            pool.name,
            f"instance type {', '.join(missing)} is not in the catalog "
            f"({catalog.region}, built {catalog.built_at})",
        )
    types = [catalog[t] for t in pool.instance_types]
    archs = {t.arch for t in types}
    if len(archs) > 1:
        return PoolProblem(
            pool.name,
            f"mixes architectures {sorted(archs)}; a pod could not know which one it gets",
        )
    gpu_models = {t.gpu_model for t in types}
    if len(gpu_models) > 1:
        return PoolProblem(pool.name, f"mixes GPU models {sorted(str(m) for m in gpu_models)}")
    observed = dict(pool.observed_allocatable)
    allocs = []
    for t in types:
        derived = catalog.allocatable(
            t,
            ephemeral_storage_mib=pool.ephemeral_storage_mib,
            daemonset_overhead=pool.daemonset_overhead,
        )
        seen = observed.get(t.name)
        if seen is not None:
            derived = derived.copy()
            # What a real node of this type reports wins where it is less: the kernel's and
            # firmware's share of memory is not in any catalog. GPUs (advertised late) keep
            # the model's figure.
            net = np.maximum(seen.as_array() - pool.daemonset_overhead.as_array(), 0.0)
            derived[_OBSERVED] = np.minimum(derived[_OBSERVED], net[_OBSERVED])
            if seen.ephemeral_mib > 0:
                # The disk is whatever the launch template (or the AMI) gave, larger or
                # smaller than the model's guess: the kubelet's own figure replaces it.
                derived[EPH] = net[EPH]
        allocs.append(derived)
    alloc = np.min(np.stack(allocs), axis=0)
    if pool.allocatable is not None:
        # An explicit allocatable replaces the derived figure resource by resource; the
        # resources it leaves at zero keep the EKS-derived value.
        given = pool.allocatable.as_array()
        net = np.maximum(given - pool.daemonset_overhead.as_array(), 0.0)
        alloc = np.where(given > 0, net, alloc)
    spot_types = types  # the types a Spot node of the pool may be (SpotAllocationStrategy)
    if pool.spot_allocation_strategy not in (None, *STRATEGIES):
        return PoolProblem(
            pool.name,
            f"SpotAllocationStrategy {pool.spot_allocation_strategy!r} is not one of "
            f"{', '.join(STRATEGIES)}",
        )
    if pool.price_usd_per_hour is not None:
        price, dearest = pool.price_usd_per_hour, types[0]
    else:
        priced = [(prices.get(t, pool.capacity_type), t) for t in types]
        unpriced = [t.name for p, t in priced if p is None]
        if unpriced:
            return PoolProblem(
                pool.name, f"no {pool.capacity_type} price for {', '.join(unpriced)}"
            )
        price, dearest = max(((p, t) for p, t in priced if p is not None), key=lambda x: x[0])
        spot_prices = [prices.get(t, SPOT) for t in types] if _mixes_spot(pool) else []
        if spot_prices and all(p is not None for p in spot_prices):
            # The real mix of the next node; with a Spot price missing, all on-demand.
            spot = max(p for p in spot_prices if p is not None)
            if pool.spot_allocation_strategy is not None:
                spot, spot_types = _picked(pool, types, spot_prices)
            price = (1.0 - pool.spot_share) * price + pool.spot_share * spot
        elif pool.capacity_type == SPOT and pool.spot_allocation_strategy is not None:
            price, spot_types = _picked(pool, types, [p for p, _ in priced])
        price *= pool.price_multiplier
    if not math.isfinite(price) or any(not math.isfinite(t.on_demand_usd_per_hour) for t in types):
        # A type described live but absent from the catalog has no known price: scoring it
        # would be a guess (and 0 x inf Spot risk is NaN, which argmin would pick).
        return PoolProblem(
            pool.name,
            "no known on-demand price for its instance types; add them to the catalog (--catalog)",
        )
    per_h = 0.0
    if pool.capacity_type == SPOT or _mixes_spot(pool):
        # Expected cost of redone work per hour: interruptions per hour x lost hours x $/h,
        # the work redone at this pool's price; the most-interrupted type of a mixed pool.
        table = settings.spot_interruptions_per_month_by_bucket
        per_h = max(
            table[t.spot_interruption_bucket]
            if t.spot_interruption_bucket is not None and t.spot_interruption_bucket < len(table)
            else settings.spot_interruptions_per_month_unknown
            for t in spot_types
        ) / HOURS_PER_MONTH
        if pool.capacity_type != SPOT:
            per_h *= pool.spot_share
    risk = per_h * settings.spot_lost_work_h * price
    labels = (
        node_labels(dearest, pool.capacity_type)
        if len(types) == 1
        else {
            k: v
            for k, v in node_labels(dearest, pool.capacity_type).items()
            if all(node_labels(t, pool.capacity_type).get(k) == v for t in types)
        }
    )
    # Only EKS managed node groups label their nodes with the capacity type (asg.py puts it
    # in such a pool's labels; default pools carry it in theirs): a self-managed group's
    # nodes do not, so a pod selecting it must not be sent there.
    labels.pop(LABEL_CAPACITY_TYPE, None)
    labels.update(placement_labels(pool.zones))
    labels[LABEL_POOL] = pool.name
    labels.update(pool.labels)
    if pool.observed_labels is not None:
        labels = _learned_labels(pool)
    taints = lasting_taints(
        pool.taints if pool.observed_taints is None else pool.observed_taints,
        settings.startup_taint_keys,
    )
    if daemonsets:
        extra = sum(
            (d.requests for d in daemonsets if _runs_on(d, labels, taints)),
            Resources(),
        )
        # DaemonSet pods occupy pod slots as well as CPU and memory; not GPUs (device
        # plugins request none).
        alloc = np.maximum(alloc - Resources(extra.cpu_milli, extra.memory_mib, 0.0,
                                            extra.pods, extra.ephemeral_mib).as_array(), 0.0)
    return (
        pool,
        alloc,
        float(price),
        float(risk),
        dearest.name,
        types[0].gpu_model,
        types[0].arch,
        labels,
        taints,
        per_h,
    )


def _learned_labels(pool: PoolSpec) -> dict[str, str]:
    """What the pool's registered nodes carry, in place of the guess; zone labels only for
    a pool in one zone (a node in 1a says nothing of the next one a 1a/1b group launches)."""
    labels = dict(pool.observed_labels or ())
    if len(pool.zones) != 1:
        for key in _ZONE_LABELS:
            labels.pop(key, None)
    labels[LABEL_POOL] = pool.name
    return labels


@dataclass(eq=False)
class PoolTable:
    """Live pools (their sizes change with every scale-up) lined up with the
    :class:`Offerings` built from them: the one pool value a decision reads. Kept per pools
    sequence and updated only where a pool changed: a tick that changes nothing costs
    nothing per pool, which matters with the 1,817 default pools. The name tables move to
    the updated table (copying two dicts of every pool per change was most of an update),
    and so do the headroom and size arrays (a copy of each per change was the rest); a
    table whose tables moved on builds them again from its own pools if asked."""

    pools: Sequence[PoolSpec]
    offerings: Offerings
    _by_name: dict[str, PoolSpec] | None
    _headroom: FloatArray | None
    _sized_by_name: dict[str, PoolSpec] | None
    _sizes: FloatArray | None = None
    _room: tuple[BoolArray, bytes] | None = None
    """:attr:`room`, once asked (a table's headroom never changes: updated() makes a new
    table)."""

    @property
    def headroom(self) -> FloatArray:
        """(P,) in offerings order: how many more nodes each pool may add (inf: no max).
        Read-only for callers, and only until the next :meth:`updated` of this table."""
        if self._headroom is None:  # moved on to a later table
            self._arrays()
        assert self._headroom is not None
        return self._headroom

    @property
    def sizes(self) -> FloatArray:
        """(P,) in offerings order: each pool's desired size (zone balancing evens these
        out). Read-only for callers, and only until the next :meth:`updated` of this
        table."""
        if self._sizes is None:  # moved on to a later table
            self._arrays()
        assert self._sizes is not None
        return self._sizes

    def _arrays(self) -> None:
        by_name = {p.name: p for p in self.pools}
        self._headroom, self._sizes = _arrays_of(by_name, self.offerings)

    @property
    def room(self) -> tuple[BoolArray, bytes]:
        """(P,) the pools with room for one more node (``headroom >= 1``), and that mask's
        bytes: what the admission webhook's tiers are keyed by, asked per admitted pod while
        the pools stay as they are. Read-only for callers."""
        if self._room is None:
            mask = self.headroom >= 1
            self._room = (mask, mask.tobytes())
        return self._room

    @property
    def by_name(self) -> dict[str, PoolSpec]:
        """Pool name -> its live value. Read-only for callers."""
        if self._by_name is None:  # moved on to a later table
            self._by_name = {p.name: p for p in self.pools}
        return self._by_name

    @property
    def sized_by_name(self) -> dict[str, PoolSpec]:
        """Pools with a desired size above zero (the only ones with nodes on the way).
        Read-only for callers."""
        if self._sized_by_name is None:  # moved on to a later table
            self._sized_by_name = {p.name: p for p in self.pools if p.current_size > 0}
        return self._sized_by_name

    @property
    def sized(self) -> tuple[PoolSpec, ...]:
        return tuple(self.sized_by_name.values())

    def updated(
        self, pools: Sequence[PoolSpec], changed: Sequence[int] | None = None
    ) -> PoolTable:
        """The table for ``pools``, a later version of the same pools (sizes changed, shapes
        not). ``changed``, when the caller already knows them: :func:`changed_pools`."""
        if pools is self.pools:
            return self
        offerings = self.offerings
        if len(pools) != len(self.pools):
            return pool_table(pools, offerings)
        if changed is None:
            changed = changed_pools(self.pools, pools)
        by_name, sized = self.by_name, self.sized_by_name
        for k in changed:
            if pools[k].name not in by_name:
                return pool_table(pools, offerings)
        headroom, sizes = self.headroom, self.sizes
        self._by_name = self._sized_by_name = self._headroom = self._sizes = None
        for p in map(pools.__getitem__, changed):
            by_name[p.name] = p
            if p.current_size > 0:
                sized[p.name] = p
            else:
                sized.pop(p.name, None)
            i = offerings.get(p.name)
            if i is not None:
                headroom[i] = _headroom(p)
                sizes[i] = p.current_size
        return PoolTable(pools, offerings, by_name, headroom, sized, sizes)


def changed_pools(
    before: Sequence[PoolSpec], now: Sequence[PoolSpec], likely: Collection[int] = ()
) -> list[int]:
    """The places where ``now`` holds another pool than ``before`` (same length). Fleets
    hand back the same pool values until one changes, so the pools are compared at C speed
    (a pool compares equal to itself without a call); only a block that differs is walked
    pool by pool. A new object equal to the old one is no change.

    ``likely``: places that may have changed (the pools this process just resized). With
    ``before``'s pools put in those places, the rest of ``now`` is compared in one pass; if
    it holds the same pools, only those places are looked at. Otherwise (a guess short of
    the truth, or wrong) every block is, as without one: the answer never rests on the
    guess. Lists, not tuples: a list comparison tests identity inline, a tuple's makes a
    call per item (four times the cost over a thousand pools), and a list can take the
    guessed places without slicing around them. A list passed as ``now`` is borrowed for
    that and left as it was; one passed as ``before`` (a caller's copy of the pools it read
    last) spares a copy."""
    old = before if isinstance(before, list) else list(before)
    new = now if isinstance(now, list) else list(now)
    at = sorted(set(likely)) if len(likely) > 1 else list(likely)
    if at and at[0] >= 0 and at[-1] < len(new):  # else no guess to go by
        guessed = [new[k] for k in at]
        for k in at:
            new[k] = old[k]
        rest_same = new == old
        for k, pool in zip(at, guessed, strict=True):
            new[k] = pool
        if rest_same:
            return [k for k in at if old[k] is not new[k] and old[k] != new[k]]
    elif new == old:  # nothing changed (a new sequence of the same pools)
        return []
    out: list[int] = []
    for lo in range(0, len(new), _BLOCK):
        hi = lo + _BLOCK
        if old[lo:hi] != new[lo:hi]:
            out += [i for i in range(lo, min(hi, len(new)))
                    if old[i] is not new[i] and old[i] != new[i]]
    return out


_BLOCK: Final = 64
"""Pools compared at once by :func:`changed_pools`."""


def _headroom(p: PoolSpec) -> float:
    return np.inf if p.max_size is None else float(max(p.max_size - p.current_size, 0))


def _runs_on(daemonset: PodSpec, labels: Mapping[str, str], taints: Sequence[Taint]) -> bool:
    """Would this DaemonSet's pod run on a new node with these labels and taints?"""
    if any(labels.get(k) != v for k, v in daemonset.node_selector):
        return False
    if daemonset.affinity and not any(t.matches(labels) for t in daemonset.affinity):
        return False
    return all(
        any(t.tolerates(taint) for t in daemonset.tolerations)
        for taint in taints
        if taint.effect in (NO_SCHEDULE, NO_EXECUTE)
    )


def pool_table(pools: Sequence[PoolSpec], offerings: Offerings) -> PoolTable:
    by_name = {p.name: p for p in pools}
    headroom, sizes = _arrays_of(by_name, offerings)
    return PoolTable(
        pools, offerings, by_name, headroom, {p.name: p for p in pools if p.current_size > 0},
        sizes,
    )


def _arrays_of(
    by_name: Mapping[str, PoolSpec], offerings: Offerings
) -> tuple[FloatArray, FloatArray]:
    """(P,) headroom and sizes of the pools ``by_name``, in offerings order (a pool not
    there: as the offerings were built from it)."""
    headroom = np.array(
        [_headroom(by_name.get(p.name, p)) for p in offerings.pools], dtype=np.float64
    )
    sizes = np.array(
        [by_name.get(p.name, p).current_size for p in offerings.pools], dtype=np.float64
    )
    return headroom, sizes


def _picked(
    pool: PoolSpec, types: Sequence[InstanceType], spot_prices: Sequence[float | None]
) -> tuple[float, list[InstanceType]]:
    """The Spot price of the pool's next Spot node and the types it may be, by its
    SpotAllocationStrategy (:mod:`scaler.core.spot_allocation`); every price is known."""
    known = [p for p in spot_prices if p is not None]
    price, picked = spot_pick(
        types, known, str(pool.spot_allocation_strategy),
        spot_instance_pools=pool.spot_instance_pools,
    )
    return price, list(picked)


def _mixes_spot(pool: PoolSpec) -> bool:
    return pool.capacity_type != SPOT and pool.spot_share > 0
