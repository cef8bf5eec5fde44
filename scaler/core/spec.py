"""The workload input format -> model values, with errors that name the pod and the field.

One format serves ``scaler place``, the simulator's traces and the importers; its JSON Schema
is ``scaler/schemas/workload.schema.json`` (checked at the edge, in :mod:`scaler.inputs`).
This module does the semantic half: quantities, Kubernetes' effective-request rule,
selectors and tolerations. It takes plain dicts, so the Kubernetes adapter reuses it on real
pod objects (``containers``, ``initContainers``, ``affinity`` are in the API's own shape).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Final, TypeVar

from scaler.core.model import (
    AMD64,
    ARM64,
    CAPACITY_TYPES,
    LABEL_ARCH,
    LABEL_ZONE,
    SELECTOR_OPERATORS,
    TAINT_EFFECTS,
    PodSpec,
    PodTerm,
    PoolSpec,
    Requirement,
    Resources,
    SelectorTerm,
    SpecError,
    Taint,
    Toleration,
    ZoneSpread,
)
from scaler.core.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    shown,
)
from scaler.core.quantity import QuantityError, cpu_milli, memory_mib, whole_count
from scaler.core.settings import MAX_TIME_S  # the same bound as settings' times

FORMAT_VERSION = 1
GPU_RESOURCE = "nvidia.com/gpu"
# Resources scaler schedules by. Others (hugepages, vendor devices) are refused rather than
# silently ignored: a pod that needs them would never run on the node scaler buys.
KNOWN_RESOURCES = ("cpu", "memory", GPU_RESOURCE, "ephemeral-storage")
# Extended resources that do not shape the node to buy: EKS's VPC resource controller gives
# branch ENIs (security groups for pods) to pods on any supported Nitro node once it runs.
IGNORED_RESOURCES = ("vpc.amazonaws.com/pod-eni",)
# Resource name -> Resources field.
_FIELD_OF = {
    "cpu": "cpu_milli",
    "memory": "memory_mib",
    GPU_RESOURCE: "gpu",
    "ephemeral-storage": "ephemeral_mib",
    "pods": "pods",
}
# The gpu_models names are AWS's (DescribeInstanceTypes GpuInfo.Name), compared upper-case.

MAX_RESOURCE: Final = 1e12
"""The largest request of any one resource, in its unit (millicores, MiB, count): far beyond
any node (the largest has 32 TiB, 3.4e7 MiB), below the 2**63 - 1 bytes the API server caps a
quantity at (8.8e12 MiB: a capped request is a typo, not a pod), and small enough that a pod's
containers add up to a finite total."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Workload:
    """A parsed input file: the pods, and the pools if the file names any (else None)."""

    region: str | None
    pods: tuple[PodSpec, ...]
    pools: tuple[PoolSpec, ...] | None


def parse_workload(data: Any, *, source: str = "") -> Workload:
    """A whole input document. ``source`` (a file name) prefixes every error."""
    return parse_workload_entries(data, source=source)[0]


def parse_workload_entries(data: Any, *, source: str = "") -> tuple[Workload, list[Any]]:
    """:func:`parse_workload`, and the document's pod entries that are not repeats: each
    entry but those equal to an earlier one in all but their own fields (:func:`pod_shape`).
    The schema holds each field of a pod to a rule of its own, and no own field a shape
    leaves out passes this parser unless it passes the schema, so once the document has
    parsed, its pods pass the schema exactly when these entries do."""
    distinct: list[Any] = []
    try:
        return _parse_workload(data, distinct), distinct
    except SpecError as e:
        raise (e.within(source, ": ") if source else e) from None


def _parse_workload(data: Any, distinct: list[Any]) -> Workload:
    doc = _mapping(data, "")
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise SpecError("version", f"expected {FORMAT_VERSION}, got {version!r}")
    region = doc.get("region")
    if region is not None and not isinstance(region, str):
        raise SpecError("region", f"expected a string, got {region!r}")
    pods_raw = doc.get("pods")
    if not isinstance(pods_raw, list):
        raise SpecError("pods", "expected a list of pods")
    pods = _parse_pods(pods_raw, distinct)
    _unique([p.key for p in pods], "pods", "pod")
    pools: tuple[PoolSpec, ...] | None = None
    if doc.get("pools") is not None:
        pools_raw = doc["pools"]
        if not isinstance(pools_raw, list):
            raise SpecError("pools", "expected a list of pools")
        pools = tuple(_located(f"pools[{i}]", p, parse_pool) for i, p in enumerate(pools_raw))
        _unique([p.name for p in pools], "pools", "pool")
    return Workload(region=region, pods=pods, pools=pools)


def _located(where: str, raw: Any, parse: Callable[[Any], T]) -> T:
    """Run ``parse`` and prefix errors with ``where`` and, if known, the entry's name."""
    try:
        return parse(raw)
    except SpecError as e:
        raise _entry_error(where, raw, e) from None


def _entry_error(where: str, raw: Any, e: SpecError) -> SpecError:
    """``e`` prefixed with ``where`` and, if known, the entry's name."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    label = f"{where} ({shown(name)})" if isinstance(name, str) and name else where
    return e.within(label)



def _parse_pods(raws: list[Any], distinct: list[Any]) -> tuple[PodSpec, ...]:
    """Every pod entry; the entries that are not repeats go into ``distinct``. A repeat (an
    entry equal to an earlier one but for its own fields: openb's 8,151 pods have 124
    variants) is the earlier one's spec with its own fields read: nothing else in it can fail
    or come out different."""
    seen: dict[tuple[object, ...], list[Any]] = {}
    out = []
    for i, raw in enumerate(raws):
        shape = pod_shape(raw)
        template = None if shape is None else seen.get(shape)
        if template is None:
            spec = _located(f"pods[{i}]", raw, parse_pod)
            distinct.append(raw)
            if shape is not None:
                seen[shape] = [getattr(spec, f) for f in _POD_FIELDS]
        else:
            # As _located, without a partial and the entry's place formatted per pod.
            try:
                spec = _repeat(template, raw)
            except SpecError as e:
                raise _entry_error(f"pods[{i}]", raw, e) from None
        out.append(spec)
    return tuple(out)


OWN_FIELDS: Final = frozenset({"name", "arrival_s", "duration_s"})
"""The fields of a pod entry that set it apart from the pods of its kind in a trace."""
_OWN_KINDS: Final = frozenset({str, int, float})
"""The types of own field :func:`pod_shape` leaves out; any other (a null arrival, which
this parser reads as 0 and the schema refuses) is part of the shape."""
_POD_FIELDS: Final = tuple(f.name for f in fields(PodSpec))
_NAME, _ARRIVAL, _DURATION = map(_POD_FIELDS.index, ("name", "arrival_s", "duration_s"))
_SCALAR: Final = frozenset({str, int, float, bool, type(None)})


def pod_shape(raw: Any) -> tuple[object, ...] | None:
    """A pod entry but for its own fields (:data:`OWN_FIELDS` given as a string or number),
    hashable, with each value's type (1, 1.0 and true are equal in Python, not in the
    format); None for an entry whose fields are not all scalars or objects of scalars
    (lists: it is read in full)."""
    if type(raw) is not dict:
        return None
    parts: list[object] = []
    for key, value in raw.items():
        kind = type(value)
        if kind in _SCALAR:
            if kind not in _OWN_KINDS or key not in OWN_FIELDS:
                parts.append((key, kind, value))
        elif kind is dict:
            kinds = tuple(map(type, value.values()))
            if not _SCALAR.issuperset(kinds):
                return None
            parts.append((key, tuple(value.items()), kinds))
        else:
            return None
    return tuple(parts)


def _repeat(template: list[Any], raw: Any) -> PodSpec:
    """A pod entry that repeats the one ``template`` (its spec's field values, in order) was
    read from but for its own fields: checked in the order :func:`parse_pod` checks them."""
    values = template.copy()
    values[_NAME] = _pod_name(raw)
    values[_ARRIVAL], values[_DURATION] = _pod_times(raw)
    return PodSpec(*values)


def _unique(names: Sequence[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise SpecError(f"{where}[{i}]", f"duplicate {what} name {name!r}")
        seen.add(name)


# ---------------------------------------------------------------------------------- pods


def parse_pod(raw: Any) -> PodSpec:
    """One pod entry of the input format (see the JSON Schema for every field)."""
    pod = _mapping(raw, "")
    name = _pod_name(pod)
    namespace = _string(pod, "namespace") or "default"
    if not _namespace_ok(namespace):
        raise SpecError("namespace", f"{namespace!r} is not a namespace name (DNS-1123 label)")
    requests = effective_requests(pod)
    node_selector = _label_map(pod, "node_selector")
    affinity = parse_node_affinity(pod.get("affinity"), "affinity")
    tolerations = parse_tolerations(pod.get("tolerations"), "tolerations")
    zone = _string(pod, "zone")
    # A zone in the node selector is the same constraint as ``zone`` (a pinned volume):
    # multi-zone pools carry no zone label, yet one that picks its zone can honour it.
    selected_zone = dict(node_selector).get(LABEL_ZONE)
    if selected_zone is not None:
        if zone is not None and zone != selected_zone:
            raise SpecError(
                "zone", f"{zone!r} contradicts node_selector {LABEL_ZONE}={selected_zone}"
            )
        zone = selected_zone
        node_selector = tuple((k, v) for k, v in node_selector if k != LABEL_ZONE)
    arch = _string(pod, "arch")
    if arch is not None and arch not in (AMD64, ARM64):
        raise SpecError("arch", f"expected {AMD64!r} or {ARM64!r}, got {arch!r}")
    if arch is None:
        # amd64 unless the pod itself says which architectures it runs on.
        names_arch = any(k == LABEL_ARCH for k, _ in node_selector) or any(
            r.key == LABEL_ARCH for t in affinity for r in t.requirements
        )
        arch = None if names_arch else AMD64
    gpu_models = tuple(sorted({m.upper() for m in _string_list(pod, "gpu_models")}))
    capacity_types = tuple(sorted(set(_string_list(pod, "capacity_types"))))
    for i, ct in enumerate(capacity_types):
        if ct not in CAPACITY_TYPES:
            raise SpecError(f"capacity_types[{i}]", f"expected one of {CAPACITY_TYPES}, got {ct!r}")
    arrival, duration = _pod_times(pod)
    annotations = _string_map(pod, "annotations")
    for key, _ in annotations:
        if not _key_ok(key):
            raise SpecError(f"annotations.{key}", f"{key!r} is not a valid annotation key")
    if zone is not None and not is_label_value(zone):
        raise SpecError("zone", f"{zone!r} is not a valid label value")
    labels = _string_map(pod, "labels")
    for key, value in labels:
        if not _key_ok(key):
            raise SpecError(f"labels.{shown(key)}", f"{key!r} is not a valid label key")
        if not is_label_value(value):
            raise SpecError(f"labels.{shown(key)}", f"{value!r} is not a valid label value")
    priority = pod.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise SpecError("priority", f"expected an integer, got {priority!r}")
    if not -(2**31) <= priority <= 10**9:  # the API server's range for a pod's priority
        raise SpecError("priority", f"must be from -2147483648 to 1000000000, got {priority}")
    topology = parse_pod_topology(pod.get("affinity"), pod.get("topologySpreadConstraints"))
    return PodSpec(
        name=name,
        namespace=namespace,
        requests=requests,
        node_selector=node_selector,
        affinity=affinity,
        tolerations=tolerations,
        zone=zone,
        arch=arch,
        gpu_models=gpu_models,
        capacity_types=capacity_types,
        arrival_s=arrival,
        duration_s=duration,
        annotations=annotations,
        priority=priority,
        labels=labels,
        zone_spread=topology.zone_spread,
        zone_affinity=topology.zone_affinity,
        zone_anti_affinity=topology.zone_anti_affinity,
        one_per_node=topology.one_per_node,
        preferred=topology.preferred,
    )


def _pod_name(pod: Mapping[str, Any]) -> str:
    name: str = _string(pod, "name", required=True)
    if not is_dns1123_subdomain(name):
        raise SpecError("name", f"{name!r} is not a Kubernetes name (DNS-1123 subdomain)")
    return name


def _pod_times(pod: Mapping[str, Any]) -> tuple[float, float | None]:
    """``arrival_s`` and ``duration_s``."""
    arrival, duration = pod.get("arrival_s", 0), pod.get("duration_s")
    # Nearly every pod of a trace has whole or fractional seconds within bounds: those are
    # read here; anything else (null, a bool, a string, out of range, NaN, an integer too
    # big for a float) goes through the checks that say what is wrong.
    if (
        type(arrival) in _PLAIN_NUMBERS and 0 <= arrival <= MAX_TIME_S
        and (duration is None or (type(duration) in _PLAIN_NUMBERS and 0 <= duration <= MAX_TIME_S))
    ):
        return float(arrival or 0.0), None if duration is None else float(duration)
    return _checked_pod_times(pod)


_PLAIN_NUMBERS: Final = frozenset({int, float})
"""Not bool: a JSON true is no time."""


def _checked_pod_times(pod: Mapping[str, Any]) -> tuple[float, float | None]:
    """:func:`_pod_times` through the checks that word each error."""
    arrival = _time(pod, "arrival_s", default=0.0)
    duration = _time(pod, "duration_s", default=None)
    return float(arrival or 0.0), None if duration is None else float(duration)


# A trace names the same few namespaces and annotation and label keys thousands of times;
# each is checked once (they are strings here, so hashable).
_namespace_ok = functools.lru_cache(maxsize=1024)(is_dns1123_label)
_key_ok = functools.lru_cache(maxsize=1024)(is_qualified_name)


def parse_resources(raw: Any, where: str) -> Resources:
    """A ``requests``-style map (``{"cpu": "500m", "memory": "4Gi", "nvidia.com/gpu": 1}``)."""
    if raw is None:
        return Resources()
    m = _mapping(raw, where)
    values: dict[str, float] = {}
    for key, value in m.items():
        field = _FIELD_OF.get(key) if isinstance(key, str) else None
        if field is None and key not in IGNORED_RESOURCES:
            raise SpecError(
                _field(where, key),
                f"unknown resource; scaler schedules by {', '.join(KNOWN_RESOURCES)}",
            )
        try:
            # A trace repeats a few quantities thousands of times; exact parsing is costly.
            amount = _amount(key, value) if type(value) in _SCALARS else _convert(key, value)
        except QuantityError as e:
            raise SpecError(_field(where, key), str(e)) from None
        except OverflowError:  # a finite JSON number whose millicores overflow a float
            raise SpecError(_field(where, key), f"{value!r} is too large") from None
        if field is None:
            continue  # checked, not scheduled by
        if not amount <= MAX_RESOURCE:
            raise SpecError(_field(where, key), f"{value!r} is too large (at most {MAX_RESOURCE:g})")
        values[field] = amount
    return Resources(**values)


def _field(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


_SCALARS: Final = (str, int, float)
"""The types a quantity comes as (exactly: a bool is no quantity, and 1 == True in a cache)."""


def _convert(key: str, value: Any) -> float:
    """One known or ignored resource's amount in its unit (raises QuantityError)."""
    if key == "cpu":
        return float(cpu_milli(value))
    if key == "memory" or key == "ephemeral-storage":
        return memory_mib(value)
    return float(whole_count(value))  # GPUs, pods, and the ignored extended resources


_amount = functools.lru_cache(maxsize=4096, typed=True)(_convert)
""":func:`_convert` for hashable scalars, memoised (errors are raised again each time)."""


def effective_requests(pod: Mapping[str, Any]) -> Resources:
    """What the scheduler reserves for a pod, with ``pods`` = 1.

    Kubernetes' rule (KEP-753 for sidecars): the larger of (app containers + restartable
    init containers) and, for each plain init container, its request plus the sidecars started
    before it; then add the pod overhead. A pod given as plain ``requests`` is taken as is.
    """
    has_containers = "containers" in pod or "initContainers" in pod or "init_containers" in pod
    if "requests" in pod and has_containers:
        raise SpecError("requests", "give either requests or containers, not both")
    if not has_containers:
        total = parse_resources(pod.get("requests"), "requests")
    else:
        total = _from_containers(pod)
    if pod.get("overhead") is not None:
        total = total + parse_resources(pod["overhead"], "overhead")
    return Resources(
        cpu_milli=total.cpu_milli,
        memory_mib=total.memory_mib,
        gpu=total.gpu,
        pods=1.0,
        ephemeral_mib=total.ephemeral_mib,
    )


def _container_requests(c: Any, where: str) -> Resources:
    container = _mapping(c, where)
    res = container.get("resources")
    if res is not None:
        res = _mapping(res, f"{where}.resources")
        requests = parse_resources(res.get("requests"), f"{where}.resources.requests")
        limits = parse_resources(res.get("limits"), f"{where}.resources.limits")
        # Kubernetes defaults each resource's request to its limit when that resource has a
        # limit and no request (a GPU is usually given in limits only).
        given = res.get("requests") or {}
        defaulted = {
            _FIELD_OF[key]: getattr(limits, _FIELD_OF[key])
            for key in res.get("limits") or {}
            if key not in given
        }
        return replace(requests, **defaulted) if defaulted else requests
    return parse_resources(container.get("requests"), f"{where}.requests")


def _from_containers(pod: Mapping[str, Any]) -> Resources:
    app = Resources()
    for i, c in enumerate(_list(pod, "containers")):
        app = app + _container_requests(c, f"containers[{i}]")
    init_key = "initContainers" if "initContainers" in pod else "init_containers"
    sidecars = Resources()
    init_peak = Resources()
    for i, c in enumerate(_list(pod, init_key)):
        where = f"{init_key}[{i}]"
        req = _container_requests(c, where)
        policy = c.get("restartPolicy", c.get("restart_policy")) if isinstance(c, Mapping) else None
        if policy == "Always":
            sidecars = sidecars + req
            init_peak = init_peak.maximum(sidecars)
        else:
            init_peak = init_peak.maximum(req + sidecars)
    return (app + sidecars).maximum(init_peak)


# ----------------------------------------------------------------- selectors and taints


def parse_node_affinity(raw: Any, where: str) -> tuple[SelectorTerm, ...]:
    """Required node affinity, in the pod API's own shape::

        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key", "operator", "values"}]}]}}}

    Preferred terms do not constrain placement and are ignored.
    """
    if raw is None:
        return ()
    aff = _mapping(raw, where)
    node_aff = aff.get("nodeAffinity")
    if node_aff is None:
        return ()
    node_aff = _mapping(node_aff, f"{where}.nodeAffinity")
    key = "requiredDuringSchedulingIgnoredDuringExecution"
    required = node_aff.get(key)
    if required is None:
        return ()
    base = f"{where}.nodeAffinity.{key}"
    terms_raw = _mapping(required, base).get("nodeSelectorTerms")
    if not isinstance(terms_raw, list) or not terms_raw:
        raise SpecError(f"{base}.nodeSelectorTerms", "expected a non-empty list of terms")
    terms = []
    for i, t in enumerate(terms_raw):
        tw = f"{base}.nodeSelectorTerms[{i}]"
        term = _mapping(t, tw)
        exprs = _list_at(term, "matchExpressions", tw)
        if term.get("matchFields"):
            raise SpecError(
                f"{tw}.matchFields", "matchFields (node name) cannot be placed on a new node"
            )
        terms.append(
            SelectorTerm(
                tuple(_requirement(e, f"{tw}.matchExpressions[{j}]") for j, e in enumerate(exprs))
            )
        )
    return tuple(terms)


def _requirement(raw: Any, where: str) -> Requirement:
    e = _mapping(raw, where)
    key = _string(e, "key", required=True, where=where)
    op = _string(e, "operator", required=True, where=where)
    if op not in SELECTOR_OPERATORS:
        raise SpecError(
            f"{where}.operator", f"expected one of {', '.join(SELECTOR_OPERATORS)}, got {op!r}"
        )
    if not is_qualified_name(key):
        raise SpecError(f"{where}.key", f"{key!r} is not a valid label key")
    values = tuple(_string_list(e, "values", where=where))
    if op in ("In", "NotIn") and not values:
        raise SpecError(f"{where}.values", f"{op} needs at least one value")
    if op in ("Exists", "DoesNotExist") and values:
        raise SpecError(f"{where}.values", f"{op} takes no values")
    if op in ("In", "NotIn"):
        for i, value in enumerate(values):
            if not is_label_value(value):
                raise SpecError(f"{where}.values[{i}]", f"{value!r} is not a valid label value")
    if op in ("Gt", "Lt"):
        if len(values) != 1:
            raise SpecError(f"{where}.values", f"{op} takes exactly one integer value")
        try:
            int(values[0])
        except ValueError:
            raise SpecError(
                f"{where}.values[0]", f"{op} needs an integer, got {values[0]!r}"
            ) from None
    return Requirement(key=key, operator=op, values=values)


def parse_tolerations(raw: Any, where: str) -> tuple[Toleration, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SpecError(where, "expected a list of tolerations")
    out = []
    for i, t in enumerate(raw):
        tw = f"{where}[{i}]"
        tol = _mapping(t, tw)
        op = tol.get("operator") or "Equal"
        if op not in ("Equal", "Exists"):
            raise SpecError(f"{tw}.operator", f"expected Equal or Exists, got {op!r}")
        effect = tol.get("effect") or ""
        if effect and effect not in TAINT_EFFECTS:
            raise SpecError(
                f"{tw}.effect", f"expected one of {', '.join(TAINT_EFFECTS)}, got {effect!r}"
            )
        key = _string(tol, "key", where=tw) or ""
        value = _string(tol, "value", where=tw) or ""
        if op == "Exists" and value:
            raise SpecError(f"{tw}.value", "a toleration with operator Exists takes no value")
        if not key and op != "Exists":
            raise SpecError(f"{tw}.key", "an empty key needs operator Exists")
        if key and not is_qualified_name(key):
            raise SpecError(f"{tw}.key", f"{key!r} is not a valid taint key")
        if not is_label_value(value):
            raise SpecError(f"{tw}.value", f"{value!r} is not a valid taint value")
        out.append(Toleration(key=key, operator=op, value=value, effect=effect))
    return tuple(out)


def parse_taint(raw: Any, where: str) -> Taint:
    """``{"key", "value", "effect"}`` or the kubectl form ``"key=value:Effect"``."""
    if isinstance(raw, str):
        head, sep, effect = raw.rpartition(":")
        if not sep or not head:
            raise SpecError(where, f"expected key=value:Effect, got {raw!r}")
        key, _, value = head.partition("=")
        raw = {"key": key, "value": value, "effect": effect}
    t = _mapping(raw, where)
    key = _string(t, "key", required=True, where=where)
    effect = _string(t, "effect", required=True, where=where)
    if effect not in TAINT_EFFECTS:
        raise SpecError(
            f"{where}.effect", f"expected one of {', '.join(TAINT_EFFECTS)}, got {effect!r}"
        )
    value = _string(t, "value", where=where) or ""
    if not is_qualified_name(key):
        raise SpecError(f"{where}.key", f"{key!r} is not a valid taint key")
    if not is_label_value(value):
        raise SpecError(f"{where}.value", f"{value!r} is not a valid taint value")
    return Taint(key=key, value=value, effect=effect)


# ---------------------------------------------------------------------------------- pools


def parse_pool(raw: Any) -> PoolSpec:
    """One pool entry (see the JSON Schema)."""
    p = _mapping(raw, "")
    name = _string(p, "name", required=True)
    if not is_label_value(name):  # scaler writes it as the value of scaler.io/pool
        raise SpecError("name", f"{name!r} is not a valid label value")
    types: list[str]
    if "instance_type" in p and "instance_types" in p:
        raise SpecError("instance_types", "give instance_type or instance_types, not both")
    if "instance_type" in p:
        types = [_string(p, "instance_type", required=True)]
    else:
        types = _string_list(p, "instance_types")
    if not types:
        raise SpecError("instance_types", "a pool needs at least one instance type")
    capacity_type = _string(p, "capacity_type") or "on-demand"
    if capacity_type not in CAPACITY_TYPES:
        raise SpecError("capacity_type", f"expected one of {CAPACITY_TYPES}, got {capacity_type!r}")
    min_size = _count(p, "min_size", 0)
    max_raw = p.get("max_size")
    max_size = None if max_raw is None else _count(p, "max_size", 0)
    current = _count(p, "current_size", min_size)
    if max_size is not None and not (min_size <= current <= max_size):
        raise SpecError(
            "current_size", f"must lie within min_size {min_size} and max_size {max_size}"
        )
    taints_raw = p.get("taints") or []
    if not isinstance(taints_raw, list):
        raise SpecError("taints", "expected a list of taints")
    price = _number(p, "price_usd_per_hour", default=None)
    if price is not None and price < 0:
        raise SpecError("price_usd_per_hour", "must be zero or more")
    allocatable = p.get("allocatable")
    eph = _number(p, "ephemeral_storage_gib", default=20.0)
    if eph is not None and not 0 <= eph <= MAX_RESOURCE:
        raise SpecError("ephemeral_storage_gib", f"must be zero or more, got {eph!r}")
    idle = _time(p, "idle_timeout_s", default=None)
    return PoolSpec(
        name=name,
        instance_types=tuple(types),
        capacity_type=capacity_type,
        zones=tuple(_zones(p)),
        min_size=min_size,
        max_size=max_size,
        current_size=current,
        labels=_label_map(p, "labels"),
        taints=tuple(parse_taint(t, f"taints[{i}]") for i, t in enumerate(taints_raw)),
        price_usd_per_hour=price,
        allocatable=None if allocatable is None else parse_resources(allocatable, "allocatable"),
        daemonset_overhead=parse_resources(p.get("daemonset_overhead"), "daemonset_overhead"),
        ephemeral_storage_mib=float(eph if eph is not None else 20.0) * 1024.0,
        pack=_bool(p, "pack"),
        choose_zone=_bool(p, "choose_zone"),
        idle_timeout_s=idle,
    )


# -------------------------------------------------------------------- small field readers


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise SpecError(where, f"expected an object, got {_kind(raw)}")
    return raw


def _kind(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _string(m: Mapping[str, Any], key: str, *, required: bool = False, where: str = "") -> Any:
    v = m.get(key)
    if v is None:
        if required:
            raise SpecError(_at(where, key), "is required")
        return None
    if not isinstance(v, str) or (required and not v):
        raise SpecError(_at(where, key), f"expected a non-empty string, got {v!r}")
    return v


def _string_list(m: Mapping[str, Any], key: str, *, where: str = "") -> list[str]:
    v = m.get(key)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise SpecError(_at(where, key), f"expected a list of strings, got {v!r}")
    return list(v)


def _string_map(m: Mapping[str, Any], key: str) -> tuple[tuple[str, str], ...]:
    v = m.get(key)
    if v is None:
        return ()
    if not isinstance(v, Mapping) or not all(
        isinstance(k, str) and isinstance(x, str) for k, x in v.items()
    ):
        raise SpecError(key, f"expected an object of string to string, got {v!r}")
    return tuple(sorted(v.items()))


def _list_at(m: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """``m[key]`` as a list (absent or null: empty), else one line naming ``where.key``."""
    v = m.get(key) or []
    if not isinstance(v, list):
        raise SpecError(f"{where}.{key}", "expected a list")
    return v


def _zones(m: Mapping[str, Any]) -> list[str]:
    zones = _string_list(m, "zones")
    for i, zone in enumerate(zones):
        if not is_label_value(zone):  # the value of topology.kubernetes.io/zone
            raise SpecError(f"zones[{i}]", f"{zone!r} is not a valid label value")
    return zones


def _label_map(m: Mapping[str, Any], key: str) -> tuple[tuple[str, str], ...]:
    """Labels or a node selector: keys and values as the API server accepts them."""
    pairs = _string_map(m, key)
    for k, v in pairs:
        if not is_qualified_name(k):
            raise SpecError(f"{key}.{k}", f"{k!r} is not a valid label key")
        if not is_label_value(v):
            raise SpecError(f"{key}.{k}", f"{v!r} is not a valid label value")
    return pairs


def _list(m: Mapping[str, Any], key: str) -> list[Any]:
    v = m.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise SpecError(key, f"expected a list, got {_kind(v)}")
    return v


def _number(m: Mapping[str, Any], key: str, *, default: float | None) -> float | None:
    v = m.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SpecError(key, f"expected a number, got {v!r}")
    try:
        number = float(v)
    except OverflowError:  # a JSON integer of hundreds of digits
        raise SpecError(key, "expected a finite number, got an integer too large") from None
    if not math.isfinite(number):
        raise SpecError(key, f"expected a finite number, got {v!r}")
    return number


def _time(m: Mapping[str, Any], key: str, *, default: float | None) -> float | None:
    """Seconds: a number from 0 to :data:`MAX_TIME_S`."""
    v = _number(m, key, default=default)
    if v is not None and not 0 <= v <= MAX_TIME_S:
        raise SpecError(key, f"must be from 0 to {MAX_TIME_S:g} s (about 10 years), got {v!r}")
    return v


def _count(m: Mapping[str, Any], key: str, default: int) -> int:
    v = m.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise SpecError(key, f"expected a whole number >= 0, got {v!r}")
    return v


def _bool(m: Mapping[str, Any], key: str) -> bool:
    v = m.get(key, False)
    if not isinstance(v, bool):
        raise SpecError(key, f"expected true or false, got {v!r}")
    return v


# ------------------------------------------------------------------ pod topology (zones)

ZONE_TOPOLOGY_KEYS: Final = (LABEL_ZONE, "failure-domain.beta.kubernetes.io/zone")
HOSTNAME_KEY: Final = "kubernetes.io/hostname"


@dataclass(frozen=True, slots=True)
class PodTopology:
    """The parts of a pod's spec that count other pods by zone (see :class:`PodSpec`)."""

    zone_spread: tuple[ZoneSpread, ...] = ()
    zone_affinity: tuple[PodTerm, ...] = ()
    zone_anti_affinity: tuple[PodTerm, ...] = ()
    one_per_node: bool = False
    preferred: tuple[tuple[int, SelectorTerm], ...] = ()


def parse_pod_topology(affinity: Any, spread: Any, where: str = "") -> PodTopology:
    """From the pod API's own shapes: ``affinity`` (``podAffinity``, ``podAntiAffinity``,
    ``nodeAffinity.preferredDuringScheduling...``) and ``topologySpreadConstraints``.

    Kept: spread constraints over the zone key with ``whenUnsatisfiable: DoNotSchedule``;
    required pod (anti-)affinity over the zone key; required pod anti-affinity over the
    hostname (one such pod per node); preferred node affinity. Soft spread
    (``ScheduleAnyway``) and preferred pod affinity never keep a pod pending, so they are
    left to kube-scheduler. ``where`` prefixes the field paths in errors."""
    if affinity is None and spread is None:
        return _NO_TOPOLOGY  # the usual pod
    pre = f"{where}." if where else ""
    spreads = []
    if spread is not None:
        if not isinstance(spread, list):
            raise SpecError(f"{pre}topologySpreadConstraints", "expected a list")
        for i, raw in enumerate(spread):
            w = f"{pre}topologySpreadConstraints[{i}]"
            c = _mapping(raw, w)
            if c.get("whenUnsatisfiable") != "DoNotSchedule":
                continue
            if c.get("topologyKey") not in ZONE_TOPOLOGY_KEYS:
                continue
            skew = c.get("maxSkew")
            if not isinstance(skew, int) or isinstance(skew, bool) or skew < 1:
                raise SpecError(f"{w}.maxSkew", f"expected an integer of 1 or more, got {skew!r}")
            spreads.append(ZoneSpread(skew, _label_selector(c.get("labelSelector"), f"{w}.labelSelector")))
    aff = _mapping(affinity, f"{pre}affinity") if affinity is not None else {}
    required = "requiredDuringSchedulingIgnoredDuringExecution"
    zone_terms: dict[str, list[PodTerm]] = {"podAffinity": [], "podAntiAffinity": []}
    one_per_node = False
    for kind, terms in zone_terms.items():
        block = aff.get(kind)
        if block is None:
            continue
        raw_terms = _list_at(_mapping(block, f"{pre}affinity.{kind}"), required,
                             f"{pre}affinity.{kind}")
        for i, raw in enumerate(raw_terms):
            w = f"{pre}affinity.{kind}.{required}[{i}]"
            t = _mapping(raw, w)
            key = t.get("topologyKey")
            if key in ZONE_TOPOLOGY_KEYS:
                terms.append(
                    PodTerm(
                        _label_selector(t.get("labelSelector"), f"{w}.labelSelector"),
                        tuple(sorted(_string_list(t, "namespaces", where=w))),
                    )
                )
            elif key == HOSTNAME_KEY and kind == "podAntiAffinity":
                one_per_node = True
    preferred = []
    node_aff = aff.get("nodeAffinity")
    if node_aff is not None:
        block = "preferredDuringSchedulingIgnoredDuringExecution"
        raw_pref = _list_at(_mapping(node_aff, f"{pre}affinity.nodeAffinity"), block,
                            f"{pre}affinity.nodeAffinity")
        for i, raw in enumerate(raw_pref):
            w = f"{pre}affinity.nodeAffinity.{block}[{i}]"
            entry = _mapping(raw, w)
            weight = entry.get("weight")
            if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 100:
                raise SpecError(f"{w}.weight", f"expected an integer 1-100, got {weight!r}")
            pref = _mapping(entry.get("preference"), f"{w}.preference")
            exprs = _list_at(pref, "matchExpressions", f"{w}.preference")
            preferred.append((weight, SelectorTerm(tuple(
                _requirement(e, f"{w}.preference.matchExpressions[{j}]")
                for j, e in enumerate(exprs)
            ))))
    return PodTopology(
        zone_spread=tuple(spreads),
        zone_affinity=tuple(zone_terms["podAffinity"]),
        zone_anti_affinity=tuple(zone_terms["podAntiAffinity"]),
        one_per_node=one_per_node,
        preferred=tuple(preferred),
    )


_NO_TOPOLOGY: Final = PodTopology()


def _label_selector(raw: Any, where: str) -> tuple[Requirement, ...]:
    """``matchLabels`` as ``In`` requirements, then ``matchExpressions``. A missing selector
    selects no pod in Kubernetes: one requirement no label set meets stands for it."""
    if raw is None:
        return (Requirement("", "In", ()),)
    sel = _mapping(raw, where)
    labels = sel.get("matchLabels") or {}
    if not isinstance(labels, Mapping):
        raise SpecError(f"{where}.matchLabels", "expected a map of strings")
    reqs = [Requirement(str(k), "In", (str(v),)) for k, v in sorted(labels.items())]
    exprs = _list_at(sel, "matchExpressions", where)
    reqs += [_requirement(e, f"{where}.matchExpressions[{j}]") for j, e in enumerate(exprs)]
    return tuple(reqs)
