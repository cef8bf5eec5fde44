"""scaler's settings: one frozen tree, units in the names, a reason for every default.

``Settings`` is what ``--set name=value`` and the ConfigMap override. Each field's docstring
(the string under it) says what it does and why the default is what it is.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

T = TypeVar("T")

MAX_TIME_S: Final = 3.2e8
"""The largest time scaler reads from a setting or a trace (about ten years, in seconds):
floats still count milliseconds there, and a time like 1e18 would have a simulated clock
step by zero (t + 1 == t)."""


@dataclass(frozen=True, slots=True)
class Range:
    """What a number in a settings tree may be, declared once per field: ``lo <= x <= hi``.
    A field without one takes :func:`default_range`."""

    lo: float = 0.0
    hi: float = math.inf

    def admits(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def __str__(self) -> str:
        if self.hi == math.inf:
            return f"a finite number >= {self.lo:g}"
        return f"a number from {self.lo:g} to {self.hi:g}"


PROBABILITY: Final = Range(0.0, 1.0)


def ranged(default: Any, valid: Range) -> Any:
    """A field whose numbers must lie in ``valid`` (checked by :func:`apply_overrides`)."""
    return field(default=default, metadata={"range": valid})


def default_range(name: str) -> Range:
    """Every number in these trees is a non-negative quantity (seconds, dollars, counts,
    rates), and a time (``*_s``) is at most :data:`MAX_TIME_S`. A field that may be negative
    says so with :func:`ranged`."""
    return Range(0.0, MAX_TIME_S) if name.endswith("_s") else Range()


@dataclass(frozen=True, slots=True)
class PlacementSettings:
    spot_interruptions_per_month_by_bucket: tuple[float, ...] = (0.025, 0.075, 0.125, 0.175, 0.25)
    """Expected interruptions per node-month by Spot Instance Advisor bucket (<5%, 5-10%,
    10-15%, 15-20%, >20% of instances interrupted per month): each bucket's midpoint."""

    spot_interruptions_per_month_unknown: float = 0.25
    """For a Spot type the Advisor has no bucket for: assume the worst bucket."""

    spot_lost_work_h: float = 24.0
    """Work an interruption throws away, in hours of the node's price, where nothing better
    is known of the pod (no expected-runtime annotation, no history; and for notebooks): a
    day of an unsaved notebook or an uncheckpointed training run. A Spot pool is charged its
    expected loss, interruptions per hour x lost work x its $/h, on top of its price, so the
    cheapest pool does not win when it is reclaimed far more often than a nearly-as-cheap
    one. (An earlier default charged a bucket's monthly rate as a share of each hour's price:
    ~700x the expected loss; the simulator showed it cost ~25% on Spot-heavy traces.)"""

    spot_risk_by_runtime: bool = True
    """Charge each pod's own expected lost work (:mod:`scaler.core.runtime`: its expected
    runtime annotation, its kind, the runtimes of its workload's and namespace's finished
    pods) instead of ``spot_lost_work_h`` for every pod, which then applies only where
    nothing is known: a 10-minute batch pod and a pod that runs for weeks are not the same
    Spot risk."""

    service_lost_work_h: float = 0.1
    """Work a service pod (ReplicaSet, StatefulSet, DaemonSet) loses to an interruption: a
    restart elsewhere, about six minutes to schedule, pull and warm up; its work is not redone."""

    runtime_min_samples: int = ranged(5, Range(1.0))
    """Finished runs a namespace needs before its history judges its pods: fewer say little
    about a heavy tail."""

    diversify_band: float = 0.05
    """Spot pools whose per-pod cost is within this fraction of the cheapest may share a
    burst (:mod:`scaler.core.diversify`): 5% on part of a burst is far below what one reclaim
    of every node of a long-running burst redoes. Keep it below ``tier_tolerance``: a pod's
    admission tier must hold the pool it is spread to."""

    diversify_min_pods: int = ranged(4, Range(2.0))
    """A burst of at least this many like pods bound for one Spot pool is spread: below it a
    reclaim takes few nodes whatever their pool."""

    diversify_max_pools: int = ranged(3, Range(1.0))
    """Spread a burst until it covers this many capacity pools (type x zone; a multi-zone pool
    counts one per zone), so one reclaim can hit about a third of it; 1 turns spreading off."""

    chunk_classes: int = ranged(512, Range(1.0))
    """Pod classes scored per NumPy chunk: bounds the (classes x pools x resources) temporary
    to a few tens of MB with the full catalog."""

    expander: Literal["cost", "least-waste"] = "cost"
    """How a pool is chosen: ``cost`` (absolute USD/hour, scaler) or ``least-waste``
    (cluster-autoscaler's: unused CPU fraction + unused memory fraction, GPUs ignored, ties
    broken at random). ``least-waste`` exists so the simulator can show what users run now."""

    never_gpu_for_cpu_pods: bool = True
    """Never buy a GPU node for a pod that requests no GPU (cluster-autoscaler has no such
    rule; only taints keep such pods off GPU nodes there)."""

    requestless_cpu_milli: float = 250.0
    """CPU a pod that requests none is sized as when choosing its node, as a LimitRange
    default would size it: a notebook with no requests still needs a node it can run on."""

    requestless_memory_mib: float = 1024.0
    """Memory a pod that requests none is sized as: without it a requestless notebook "fits"
    a t3.nano (~113 MiB allocatable). The choice among fitting pools stays by dollars."""

    startup_taint_keys: tuple[str, ...] = (
        "node.cloudprovider.kubernetes.io/uninitialized",
        "node.cilium.io/agent-not-ready",
        "ebs.csi.aws.com/agent-not-ready",
        "efs.csi.aws.com/agent-not-ready",
    )
    """Taints a node carries only while it starts (the cloud controller or a node agent
    removes them): a pool's template taint of these blocks no pod, and a node carrying only
    these (or ``ignore-taint.cluster-autoscaler.kubernetes.io/`` ones) is capacity on its way,
    not a reason to scale again. The defaults are the taints those agents document."""


@dataclass(frozen=True, slots=True)
class ScaleUpSettings:
    batch_idle_s: float = 1.0
    """Act this long after the last new pending pod (Karpenter's batch idle duration), so a
    Dask cluster of 50 workers is one decision, not 50."""

    batch_max_s: float = 10.0
    """...but no later than this after the first (Karpenter's batch max duration)."""

    scan_interval_s: float = 0.0
    """0: act on events (watches). >0: act only on a fixed scan grid, as cluster-autoscaler
    does every 10 s; used by the ca-least-waste policy."""

    provision_timeout_s: float = 900.0
    """A launched node that has not registered (and advertised its GPUs) by then is given up
    on and its pods are placed again (cluster-autoscaler's max-node-provision-time, 15 min)."""

    bind_grace_s: float = 600.0
    """An empty Ready node younger than this counts as capacity for pending pods that fit
    it (the scheduler is about to bind them); an older one evidently is not wanted by them.
    Ten minutes covers registration, Ready and GPU advertisement."""

    launch_failure_ttl_s: float = 180.0
    """A pool whose launch failed (InsufficientInstanceCapacity, no IPs) is skipped this
    long; its pods go to the next-cheapest pool at once (Karpenter marks the offering
    unavailable for 3 minutes)."""

    write_failures_before_backoff: int = 3
    """A pool whose scale-up write fails this many times in a row (throttled, a 5xx, a
    timeout: each already retried by botocore) backs off like a failed launch, so its pods go
    to the next pool. A refused write (AccessDenied, a validation error) backs off at once:
    asking again gets the same answer. Three tries 10 s apart ride out a throttling burst."""

    priority_cutoff: int = ranged(-10, Range(-(2**31), 10**9))  # a pod priority's range
    """Pending pods whose priority is below this never trigger a scale-up: they are
    expendable, and fill room that is already there (cluster-autoscaler's
    expendable-pods-priority-cutoff, default -10). Overprovisioning placeholders run at -1 so
    they do trigger one and hold a warm node."""


@dataclass(frozen=True, slots=True)
class ScaleDownSettings:
    idle_timeout_s: float = 120.0
    """Remove a node this long after its last workload pod left. Long enough to reuse a
    node between a notebook's restarts, short enough that idle nodes do not collect stray
    small pods (cluster-autoscaler waits 600 s). Per pool: the ASG tag
    ``k8s.io/cluster-autoscaler/node-template/autoscaling-options/scaledownunneededtime``."""

    delay_after_scale_up_s: float = 0.0
    """No scale-down in a pool within this long of its last scale-up (cluster-autoscaler's
    scale-down-delay-after-add is 600 s; scaler's idle timer already covers new nodes)."""

    max_removals_per_minute: int = 60
    """Disruption budget: at most this many nodes removed per minute, cluster-wide."""

    max_cache_age_s: float = 45.0
    """Node removals, drains that end in a termination, and evictions wait (for that tick)
    while the cluster cache is older than this: a healthy watch hears from the API server at
    least every 30 s (scaler/adapters/kube/watch.py), so older means it may be missing a pod
    bound to the node since. Reads and scale-ups go on."""


@dataclass(frozen=True, slots=True)
class PinningSettings:
    enabled: bool = True
    """Pin each pending pod to the pool chosen for it (a nodeSelector on scaler.io/pool), so
    kube-scheduler cannot drop a 4 GB notebook on an idle 512 GB node."""

    tier_tolerance: float = 0.25
    """The admission webhook pins a new pod to its cheapest pool *and* every pool within this
    fraction of its cost: a pod's selector cannot change after admission, and a pin to one
    pool would strand the pod if that pool then fails to launch."""

    tier_max_pools: int = 4
    """At most this many pools in a webhook pin (the cheapest first)."""

    tier_fallback: bool = True
    """When the tolerance leaves one pool, add the runner-up if it costs at most
    ``misplaced_factor`` times as much: a tier of one pool strands its pods while that pool
    cannot launch, and a fallback within that factor is never a node scaler would call
    misplaced (so the idle 512 GiB node stays out of reach of a 4 GiB notebook)."""

    exclusive: bool = True
    """A pod pinned to pools that do not pack also gets a node to itself (a label and a
    required pod anti-affinity on the hostname): scaler buys one node per such pod, and
    kube-scheduler would otherwise stack several on whichever node has room."""


@dataclass(frozen=True, slots=True)
class LifecycleSettings:
    drain_margin_s: float = 15.0
    """Evictions must finish this long before an interruption's deadline (the node is
    reclaimed 120 s after the warning; aws-node-termination-handler starts draining at once)."""

    interrupted_pool_ttl_s: float = 180.0
    """After a Spot interruption, the pool is not chosen for this long (Karpenter marks the
    offering unavailable for 3 minutes): its capacity is being reclaimed right now."""

    wait_for_reclaimed_pool: bool = True
    """A pod drained by a Spot interruption waits out its pool's ``interrupted_pool_ttl_s``
    instead of taking the next pool when the next pool's extra cost over the pod's expected
    remaining life (its age when interrupted) exceeds the wait priced at the next pool: a
    replacement otherwise stays on a dearer pool for the rest of a run that can last weeks."""

    rebalance_action: Literal["cordon", "drain", "none"] = "cordon"
    """On a rebalance recommendation: ``cordon`` (pre-provision a replacement and cordon;
    pods keep running), ``drain`` (also evict now) or ``none`` (Karpenter's choice)."""

    rebalance_window_s: float = 1800.0
    """A node cordoned for a rebalance recommendation is uncordoned if no interruption came
    within this long (other tools leave it cordoned forever; most recommendations are never
    followed by an interruption)."""

    misplaced_factor: float = ranged(2.0, Range(1.0))
    """A running pod is misplaced when its node costs more than this times its cheapest
    fitting pool."""

    migration_restart_s: float = 600.0
    """A moved pod is away about this long (eviction, a new node's boot and GPU advertising,
    its start): a restartable pod dearer than its fit by less than ``misplaced_factor`` is
    moved only when the saving over its expected remaining life (its age) beats paying its
    node this long."""

    migrations_per_minute: int = 2
    """Misplaced pods annotated ``scaler.io/restartable: "true"`` are evicted (to re-pend
    onto the cheaper pool) at most this often, PDBs respected. 0 disables migration. Only
    where the replacement is pinned at admission, and once per workload until it sticks
    (scaler.core.lifecycle.why_not_migrated): an unpinned one lands on the same node."""


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """Global caps on scale-up (scaler/core/limits.py); pods they hold back get a
    NotTriggerScaleUp Event naming the limit. 0 means no limit."""

    max_nodes_total: int = 0
    """At most this many nodes in scaler's pools together (desired sizes: launches in flight
    count). 0: unlimited, as cluster-autoscaler's --max-nodes-total: only the operator knows
    what the cluster must never exceed (IP space, EC2 quotas, control-plane size)."""

    max_usd_per_hour: float = 0.0
    """At most this many USD/hour for the nodes of scaler's pools together, at the prices
    decisions use (live Spot prices). 0: unlimited: a budget is the operator's to set."""

    max_new_nodes_per_decision: int = 1000
    """At most this many nodes added by one decision; the rest are placed by the next one,
    a second later (cluster-autoscaler's --max-nodes-per-scaleup default). A burst of 20,000
    pods is bought in steps a person can watch and stop, not one write of 16,672 nodes."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole settings tree."""

    placement: PlacementSettings = field(default_factory=PlacementSettings)
    scale_up: ScaleUpSettings = field(default_factory=ScaleUpSettings)
    scale_down: ScaleDownSettings = field(default_factory=ScaleDownSettings)
    pinning: PinningSettings = field(default_factory=PinningSettings)
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)

    def with_overrides(self, overrides: Mapping[str, str]) -> Settings:
        """A copy with ``name=value`` overrides; ``name`` is a field of any section
        (``idle_timeout_s``) or ``section.field`` when the name is ambiguous."""
        return apply_overrides(self, overrides)


def field_names(settings: object) -> dict[str, str]:
    """Every leaf field as ``{name: "section.name"}`` (ambiguous names map to "")."""
    out: dict[str, str] = {}
    for sec in dataclasses.fields(settings):  # type: ignore[arg-type]
        value = getattr(settings, sec.name)
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                out[f.name] = "" if f.name in out else f"{sec.name}.{f.name}"
    return out


def apply_overrides(tree: T, overrides: Mapping[str, str], *, what: str = "setting") -> T:
    """A copy of a frozen tree of sections with ``name=value`` overrides applied; ``name`` is
    a leaf (``idle_timeout_s``) or ``section.leaf`` when the leaf is ambiguous. Values are
    read by the field's type: numbers, booleans (true/false, yes/no, on/off, 1/0), ``None``
    for optional fields, ``Literal`` choices (checked), comma-separated tuples, and
    ``key:value`` pairs. Every number must be finite and in its field's :class:`Range`
    (:func:`ranged`, else :func:`default_range`). The simulator's settings use the same
    function."""
    result: Any = tree
    for name, raw in overrides.items():
        result = _override(result, name, raw, what)
    return typing.cast(T, result)


def _override(tree: Any, name: str, raw: str, what: str) -> Any:
    names = field_names(tree)
    path = name if "." in name else names.get(name)
    if not path:
        known = ", ".join(sorted(n for n, p in names.items() if p))
        problem = (
            "is ambiguous; say section.name" if path == "" else f"is not a {what}; known: {known}"
        )
        raise ValueError(f"--set {name}: {problem}")
    section_name, _, leaf = path.partition(".")
    section = getattr(tree, section_name, None)
    if section is None or leaf not in {f.name for f in dataclasses.fields(section)}:
        raise ValueError(f"--set {name}: no such {what}")
    hint = typing.get_type_hints(type(section))[leaf]
    value = _coerce(raw, hint, name)
    spec = next(f for f in dataclasses.fields(section) if f.name == leaf)
    valid = spec.metadata.get("range") or default_range(leaf)
    for number in _numbers(value):
        if not (math.isfinite(number) and valid.admits(number)):
            raise ValueError(f"--set {name}={raw}: expected {valid}, got {number:g}")
    return dataclasses.replace(tree, **{section_name: dataclasses.replace(section, **{leaf: value})})


def _numbers(value: Any) -> list[float]:
    """The numbers in a coerced value: itself, a tuple's items, a ``key:value`` pair's value."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        try:
            return [float(value)]
        except OverflowError:  # an int of hundreds of digits
            return [math.inf]
    if isinstance(value, tuple):
        return [n for item in value for n in _numbers(item)]
    return []


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _coerce(raw: str, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    text = raw.strip()
    try:
        if origin is typing.Literal:
            if text in args:
                return text
            raise ValueError(f"--set {name}={raw}: expected one of {', '.join(map(str, args))}")
        if origin in (typing.Union, types.UnionType):
            if text.lower() in ("none", "null", "") and type(None) in args:
                return None
            (inner,) = [a for a in args if a is not type(None)]
            return _coerce(text, inner, name)
        if origin is tuple and len(args) == 2 and args[1] is not Ellipsis:
            key, sep, value = text.rpartition(":")  # a key:value pair
            if not sep or not key:
                raise ValueError(text)
            return (_coerce(key, args[0], name), _coerce(value, args[1], name))
        if origin is tuple:
            return tuple(_coerce(x, args[0], name) for x in text.split(",") if x.strip())
        if hint is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if hint in (int, float, str):
            return hint(text)
    except ValueError as e:
        if str(e).startswith("--set"):
            raise
    pair = origin is tuple and len(args) == 2 and args[1] is not Ellipsis
    want = "key:value" if pair else getattr(hint, "__name__", str(hint))
    raise ValueError(f"--set {name}={raw}: expected {want}")


def preset(name: str) -> Settings:
    """The settings of a named policy: ``scaler`` (the product), ``ca-least-waste``
    (cluster-autoscaler as users run it) and ``karpenter-like``."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(PRESETS)}") from None


PRESETS: dict[str, Settings] = {
    "scaler": Settings(),
    # cluster-autoscaler defaults: 10 s scan, scale-down-unneeded-time 10 min,
    # scale-down-delay-after-add 10 min, least-waste expander, nothing pins pods.
    "ca-least-waste": Settings(
        placement=PlacementSettings(
            expander="least-waste",
            never_gpu_for_cpu_pods=False,
            diversify_max_pools=1,
            requestless_cpu_milli=0.0,
            requestless_memory_mib=0.0,
        ),
        scale_up=ScaleUpSettings(batch_idle_s=0.0, batch_max_s=0.0, scan_interval_s=10.0),
        scale_down=ScaleDownSettings(idle_timeout_s=600.0, delay_after_scale_up_s=600.0),
        pinning=PinningSettings(enabled=False),
    ),
    # Karpenter: cheapest fitting type per pod (no risk weighting beyond price), batching
    # 1 s / 10 s, empty nodes removed at once (consolidateAfter: 0s), no pinning.
    "karpenter-like": Settings(
        placement=PlacementSettings(
            spot_lost_work_h=0.0, requestless_cpu_milli=0.0, requestless_memory_mib=0.0,
            diversify_max_pools=1,
            spot_risk_by_runtime=False,
        ),
        scale_down=ScaleDownSettings(idle_timeout_s=0.0),
        pinning=PinningSettings(enabled=False),
        # Karpenter replaces an interrupted node at once on the next offering.
        lifecycle=LifecycleSettings(wait_for_reclaimed_pool=False),
    ),
}
