"""The instance catalog: what each EC2 type offers, costs and leaves to pods on an EKS node.

A :class:`Catalog` is read from a JSON file in the ``scaler-catalog`` format (version 1; schema
in ``scaler/schemas/catalog.schema.json``, fields in ``docs/catalog.md``). scaler ships one
for us-east-1, built by ``tools/build_catalog.py`` from permissively licensed public data (see
NOTICE); ``--catalog PATH`` supplies another region or fresher prices.

Validation is by hand (the core imports no jsonschema): every error is a
:class:`~scaler.core.model.SpecError` naming the file, the entry and the field, and a catalog
with any error is rejected whole.

Node capacity follows the EKS AMI (awslabs/amazon-eks-ami, nodeadm
``internal/kubelet/config.go``): :func:`eks_reserved` and :func:`node_allocatable`.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any, Final

import numpy as np

from scaler.core.model import (
    AMD64,
    ARM64,
    CAPACITY_TYPES,
    EKS_CAPACITY_LABEL_VALUE,
    LABEL_ACCELERATOR,
    LABEL_ARCH,
    LABEL_CAPACITY_TYPE,
    LABEL_EBS_ZONE,
    LABEL_GPU,
    LABEL_INSTANCE_TYPE,
    LABEL_OS,
    LABEL_POOL,
    LABEL_REGION,
    LABEL_ZONE,
    NO_SCHEDULE,
    SPOT,
    FloatArray,
    InstanceType,
    PoolSpec,
    Resources,
    SpecError,
    Taint,
)

FORMAT: Final = "scaler-catalog"
VERSION: Final = 1
PACKAGED_CATALOG: Final = "catalog-us-east-1.json"

# EKS AMI kubelet config: evictionHard memory.available<100Mi, nodefs.available<10%.
EVICTION_HARD_MIB: Final = 100
NODEFS_EVICTION_FRACTION: Final = 0.10
# EKS AMI kube-reserved ephemeral-storage: 1Gi, on every node whatever its size.
KUBE_RESERVED_EPHEMERAL_MIB: Final = 1024

# GPU nodes are tainted so (DOMAIN.md). Placement treats a pod that requests nvidia.com/gpu
# as tolerating it, as the ExtendedResourceToleration admission plugin does in real clusters.
GPU_TAINT: Final = Taint(LABEL_GPU, "true", NO_SCHEDULE)

_FIELDS: Final = (
    "name",
    "vcpus",
    "memory_mib",
    "gpu_count",
    "gpu_model",
    "gpu_memory_mib",
    "arch",
    "bare_metal",
    "max_pods",
    "on_demand_usd_per_hour",
    "spot_savings_pct",
    "spot_interruption_bucket",
    "zones",
)
# Fields a catalog may leave out (files built before they existed), with their default.
_OPTIONAL_FIELDS: Final = {"burstable": False}
_TOP_FIELDS: Final = ("format", "version", "region", "built_at", "sources", "instance_types")
_SOURCE_FIELDS: Final = ("name", "license", "data_date", "file")
_TYPE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.[a-z0-9-]+$")
# Spot Instance Advisor interruption-frequency buckets: <5%, 5-10%, 10-15%, 15-20%, >20%.
SPOT_BUCKETS: Final = ("<5%", "5-10%", "10-15%", "15-20%", ">20%")


@dataclass(frozen=True)
class Catalog:
    """Instance types of one region, by name.

    ``types`` is read-only. Iterating yields the :class:`InstanceType` values in name order;
    ``in``, ``[]`` and :meth:`get` take a type name.
    """

    region: str
    built_at: str
    types: Mapping[str, InstanceType] = field(hash=False)
    _allocatable: dict[tuple[InstanceType, float, Resources], FloatArray] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    """:meth:`allocatable` answers so far: a process builds offerings over the same pools
    more than once (the simulator for its oracle and its reconciler, live at each price
    change), and the types are fixed."""

    def __post_init__(self) -> None:
        ordered = dict(sorted(self.types.items()))
        object.__setattr__(self, "types", MappingProxyType(ordered))

    def allocatable(
        self, itype: InstanceType, *, ephemeral_storage_mib: float, daemonset_overhead: Resources
    ) -> FloatArray:
        """:func:`node_allocatable` as an array (read only), worked out once per type and
        pool setting."""
        key = (itype, ephemeral_storage_mib, daemonset_overhead)
        out = self._allocatable.get(key)
        if out is None:
            out = _allocatable_array(itype, ephemeral_storage_mib, daemonset_overhead)
            out.flags.writeable = False
            self._allocatable[key] = out
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Catalog:
        """Read and validate a catalog file; ``None`` = the packaged us-east-1 catalog."""
        if path is None:
            return _packaged()
        name = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise SpecError(name, f"cannot read catalog: {e.strerror or e}") from e
        return cls.from_json(text, source=name)

    @classmethod
    def from_json(cls, text: str, source: str = "<catalog>") -> Catalog:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(
                source, f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
            ) from e
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: object, source: str = "<catalog>") -> Catalog:
        """Validate a parsed catalog document; raise :class:`SpecError` on the first problem."""
        if not isinstance(data, dict):
            raise SpecError(source, f"expected a JSON object, got {_show(data)}")
        if data.get("format") != FORMAT:
            raise SpecError(
                f"{source}: format",
                f"expected {FORMAT!r} (a scaler instance catalog), got {_show(data.get('format'))}",
            )
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
            raise SpecError(
                f"{source}: version",
                f"unsupported catalog version {_show(version)}; "
                f"this scaler reads version {VERSION}",
            )
        _no_unknown_keys(data, _TOP_FIELDS, source)
        region = _string(data, "region", f"{source}: region")
        built_at = _string(data, "built_at", f"{source}: built_at")
        try:
            date.fromisoformat(built_at)
        except ValueError:
            raise SpecError(
                f"{source}: built_at", f"expected a date YYYY-MM-DD, got {_show(built_at)}"
            ) from None
        _check_sources(data.get("sources"), source)
        entries = data.get("instance_types")
        if not isinstance(entries, list) or not entries:
            raise SpecError(
                f"{source}: instance_types", f"expected a non-empty list, got {_show(entries)}"
            )
        types: dict[str, InstanceType] = {}
        for i, raw in enumerate(entries):
            itype = _instance_type(raw, region, f"{source}: instance_types[{i}]")
            if itype.name in types:
                raise SpecError(
                    f"{source}: instance_types[{i}] ({itype.name})", "duplicate instance type"
                )
            types[itype.name] = itype
        return cls(region=region, built_at=built_at, types=types)

    def __getitem__(self, name: str) -> InstanceType:
        try:
            return self.types[name]
        except KeyError:
            raise KeyError(f"instance type {name!r} is not in the {self.region} catalog") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.types

    def get(self, name: str, default: InstanceType | None = None) -> InstanceType | None:
        return self.types.get(name, default)

    def __len__(self) -> int:
        return len(self.types)

    def __iter__(self) -> Iterator[InstanceType]:
        return iter(self.types.values())

    def default_pools(
        self, capacity_types: Sequence[str] = CAPACITY_TYPES, *, burstable: bool = False
    ) -> list[PoolSpec]:
        """One virtual pool per (type, capacity type), for when the user names no ASGs.

        Every non-bare-metal type (bare metal is slow to boot and priced for other reasons)
        becomes ``<type>-on-demand`` and, where the catalog has Spot data, ``<type>-spot``.
        arm64 pools are among them: a pod defaults to amd64 and reaches them only when its
        selector or required affinity admits arm64 (the pool's ``kubernetes.io/arch``
        label decides). Burstable types (t2/t3/t3a/t4g: CPU credits, a sustained load runs
        at a fraction of the vCPUs) are left out unless ``burstable`` asks for them; an ASG
        of such types is offered as it is. Each pool may launch in any of the type's zones
        (``choose_zone=True``) with no size cap. GPU pools carry :data:`GPU_TAINT`; a pod
        that requests ``nvidia.com/gpu`` counts as tolerating it (placement does what the
        ExtendedResourceToleration admission plugin does in real clusters).
        ``price_usd_per_hour`` and ``allocatable`` are left ``None``: they are derived from
        the catalog (or a live price source) when decisions are made.
        Sorted by pool name.
        """
        for ct in capacity_types:
            if ct not in CAPACITY_TYPES:
                raise SpecError("capacity_types", f"expected one of {CAPACITY_TYPES}, got {ct!r}")
        pools = []
        for itype in self:
            if itype.bare_metal or (itype.burstable and not burstable):
                continue
            for ct in dict.fromkeys(capacity_types):
                if ct == SPOT and itype.spot_savings_pct is None:
                    continue
                name = f"{itype.name}-{ct}"
                labels = node_labels(itype, ct) | {LABEL_POOL: name}
                pools.append(
                    PoolSpec(
                        name=name,
                        instance_types=(itype.name,),
                        capacity_type=ct,
                        zones=itype.zones,
                        max_size=None,
                        labels=tuple(sorted(labels.items())),
                        taints=(GPU_TAINT,) if itype.gpu_count else (),
                        choose_zone=True,
                    )
                )
        return sorted(pools, key=lambda p: p.name)


@functools.cache
def _packaged() -> Catalog:
    resource = importlib.resources.files("scaler") / "data" / PACKAGED_CATALOG
    return Catalog.from_json(
        resource.read_text(encoding="utf-8"), source=f"scaler/data/{PACKAGED_CATALOG}"
    )


def eks_reserved(vcpus: int, max_pods: int) -> Resources:
    """kube-reserved of the EKS AMI (awslabs/amazon-eks-ami, nodeadm
    ``internal/kubelet/config.go``: ``getCPUMillicoresToReserve``,
    ``GetMemoryMebibytesToReserve``, kubeReserved ``ephemeral-storage: 1Gi``).

    Memory: 255 MiB + 11 MiB per pod the node may run. CPU: 6% of the first core, 1% of the
    second, 0.5% of cores 3-4, 0.25% of every core above 4, each range truncated to whole
    millicores as the AMI's integer arithmetic does. The eviction threshold
    (:data:`EVICTION_HARD_MIB`) is separate.
    """
    total = vcpus * 1000
    bounds = (0, 1000, 2000, 4000, max(total, 4000))
    per_10000 = (600, 100, 50, 25)
    cpu = sum(
        (min(total, hi) - lo) * pct // 10000
        for (lo, hi), pct in zip(itertools.pairwise(bounds), per_10000, strict=True)
        if total > lo
    )
    return Resources(
        cpu_milli=float(cpu),
        memory_mib=float(255 + 11 * max_pods),
        ephemeral_mib=float(KUBE_RESERVED_EPHEMERAL_MIB),
    )


def node_allocatable(
    itype: InstanceType,
    *,
    ephemeral_storage_mib: float,
    daemonset_overhead: Resources = Resources(),  # noqa: B008 - frozen, safe to share
    max_pods: int | None = None,
) -> Resources:
    """What pods may request on a fresh EKS node of ``itype``, daemonsets already placed.

    capacity - kube-reserved (:func:`eks_reserved`) - eviction thresholds (memory 100 MiB,
    ``nodefs.available<10%`` of the root volume) - ``daemonset_overhead``, clipped at 0.
    ``max_pods`` overrides the catalog's VPC CNI figure (prefix delegation, a pool setting);
    kube-reserved memory follows whichever value the kubelet runs with.

    Capacity is taken as the catalog's memory; the share the kernel and firmware keep (a few
    percent) is not subtracted here. Live nodes' own reports cap it (scaler/core/observed.py).
    """
    return Resources.from_array(
        _allocatable_array(itype, ephemeral_storage_mib, daemonset_overhead, max_pods)
    )


def _allocatable_array(
    itype: InstanceType,
    ephemeral_storage_mib: float,
    daemonset_overhead: Resources,
    max_pods: int | None = None,
) -> FloatArray:
    """:func:`node_allocatable` as an array, worked out on arrays: the same differences in
    the same order, without a :class:`Resources` made for each."""
    pods = itype.max_pods if max_pods is None else max_pods
    capacity = np.array([
        itype.vcpus * 1000.0,
        float(itype.memory_mib),
        float(itype.gpu_count),
        float(pods),
        float(ephemeral_storage_mib),
    ])
    eviction = np.array(
        [0.0, float(EVICTION_HARD_MIB), 0.0, 0.0, ephemeral_storage_mib * NODEFS_EVICTION_FRACTION]
    )
    reserved = eks_reserved(itype.vcpus, pods).as_array()
    left: FloatArray = np.maximum(
        capacity - reserved - eviction - daemonset_overhead.as_array(), 0.0
    )
    return left


def node_labels(itype: InstanceType, capacity_type: str) -> dict[str, str]:
    """Well-known labels a node of this type carries (no zone, no pool).

    GPU types add ``nvidia.com/gpu: "true"`` and ``k8s.amazonaws.com/accelerator`` = the
    AWS GPU name lowercased, non-alphanumerics as ``-`` (``a10g``, ``rtx-pro-4500``).
    """
    if capacity_type not in CAPACITY_TYPES:
        raise SpecError("capacity_type", f"expected one of {CAPACITY_TYPES}, got {capacity_type!r}")
    labels = {
        LABEL_INSTANCE_TYPE: itype.name,
        LABEL_ARCH: itype.arch,
        "beta.kubernetes.io/arch": itype.arch,
        LABEL_CAPACITY_TYPE: EKS_CAPACITY_LABEL_VALUE[capacity_type],
    }
    if itype.gpu_count and itype.gpu_model:
        labels[LABEL_GPU] = "true"
        labels[LABEL_ACCELERATOR] = accelerator_label(itype.gpu_model)
    return labels


# A zone is its region plus a letter (us-east-1a), or a Local/Wavelength Zone's longer name
# (us-west-2-lax-1a); either way the region is the leading <area>-<direction>-<n>.
_REGION_OF_ZONE: Final = re.compile(r"^([a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-[0-9]+)")


def region_of(zone: str) -> str | None:
    m = _REGION_OF_ZONE.match(zone)
    return m[1] if m else None


def placement_labels(zones: Sequence[str]) -> dict[str, str]:
    """Labels every Linux node of a pool in ``zones`` carries besides :func:`node_labels`.

    ``kubernetes.io/os`` (and the kubelet's ``beta.`` twins of os and arch, which charts
    still select on) are set by the kubelet; region and zone by the cloud provider; the EBS
    CSI node plugin adds ``topology.ebs.csi.aws.com/zone``. Zone labels only for a pool in
    one zone (a multi-zone ASG picks the zone per node). A Windows group says so with a
    node-template label tag, which overrides these; registered nodes' own labels replace
    them all (scaler/core/observed.py).
    """
    return dict(_placement_labels(tuple(zones)))


@functools.lru_cache(maxsize=256)
def _placement_labels(zones: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    # Pools share a handful of zone sets; 1,817 default pools need the answer 1,817 times.
    labels = {LABEL_OS: "linux", "beta.kubernetes.io/os": "linux"}
    regions = {region_of(z) for z in zones}
    if len(regions) == 1 and None not in regions:
        labels[LABEL_REGION] = str(next(iter(regions)))
    if len(zones) == 1:
        labels[LABEL_ZONE] = zones[0]
        labels[LABEL_EBS_ZONE] = zones[0]
    return tuple(labels.items())


def accelerator_label(gpu_model: str) -> str:
    """``k8s.amazonaws.com/accelerator`` value for an AWS GPU name: a valid label value."""
    return re.sub(r"[^a-z0-9]+", "-", gpu_model.lower()).strip("-")[:63].strip("-")


# --- validation -------------------------------------------------------------------------------


def _show(value: object) -> str:
    """A value as it appears in JSON, for error messages."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _no_unknown_keys(obj: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key in obj:
        if key not in known:
            raise SpecError(f"{where}.{key}" if where else key, "unknown field")


def _string(obj: Mapping[str, Any], key: str, where: str) -> str:
    if key not in obj:
        raise SpecError(where, "missing")
    value = obj[key]
    if not isinstance(value, str) or not value:
        raise SpecError(where, f"expected a non-empty string, got {_show(value)}")
    return value


def _check_sources(sources: object, source: str) -> None:
    where = f"{source}: sources"
    if not isinstance(sources, list):
        raise SpecError(where, f"expected a list, got {_show(sources)}")
    for i, s in enumerate(sources):
        if not isinstance(s, dict):
            raise SpecError(f"{where}[{i}]", f"expected an object, got {_show(s)}")
        _no_unknown_keys(s, _SOURCE_FIELDS, f"{where}[{i}]")
        for key in _SOURCE_FIELDS:
            _string(s, key, f"{where}[{i}].{key}")


def _int(value: object, where: str, *, minimum: int, maximum: int | None = None) -> int:
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= minimum
        and (maximum is None or value <= maximum)
    ):
        return value
    if maximum is not None:
        want = f"an integer from {minimum} to {maximum}"
    else:
        want = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    raise SpecError(where, f"expected {want}, got {_show(value)}")


def _number(value: object, where: str, *, ok: Callable[[float], bool], want: str) -> float:
    """A finite JSON number for which ``ok`` holds."""
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and ok(value)
    ):
        return float(value)
    raise SpecError(where, f"expected {want}, got {_show(value)}")


def _instance_type(raw: object, region: str, at: str) -> InstanceType:
    if not isinstance(raw, dict):
        raise SpecError(at, f"expected an object, got {_show(raw)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _TYPE_NAME.match(name):
        raise SpecError(
            f"{at}.name", f"expected an instance type like 'm5.large', got {_show(name)}"
        )
    at = f"{at} ({name})"
    _no_unknown_keys(raw, (*_FIELDS, *_OPTIONAL_FIELDS), at)
    for key in _FIELDS:
        if key not in raw:
            raise SpecError(f"{at}.{key}", "missing")

    gpu_count = _int(raw["gpu_count"], f"{at}.gpu_count", minimum=0)
    gpu_model = raw["gpu_model"]
    if gpu_count == 0 and gpu_model is not None:
        raise SpecError(
            f"{at}.gpu_model", f"expected null with gpu_count 0, got {_show(gpu_model)}"
        )
    if gpu_count > 0 and (not isinstance(gpu_model, str) or not gpu_model):
        raise SpecError(f"{at}.gpu_model", f"expected the GPU's name, got {_show(gpu_model)}")
    gpu_memory = _int(raw["gpu_memory_mib"], f"{at}.gpu_memory_mib", minimum=0)
    if gpu_count == 0 and gpu_memory != 0:
        raise SpecError(f"{at}.gpu_memory_mib", f"expected 0 with gpu_count 0, got {gpu_memory}")

    arch = raw["arch"]
    if arch not in (AMD64, ARM64):
        raise SpecError(f"{at}.arch", f"expected {AMD64!r} or {ARM64!r}, got {_show(arch)}")
    bare_metal = raw["bare_metal"]
    if not isinstance(bare_metal, bool):
        raise SpecError(f"{at}.bare_metal", f"expected true or false, got {_show(bare_metal)}")
    burstable = raw.get("burstable", _OPTIONAL_FIELDS["burstable"])
    if not isinstance(burstable, bool):
        raise SpecError(f"{at}.burstable", f"expected true or false, got {_show(burstable)}")

    savings_raw, bucket_raw = raw["spot_savings_pct"], raw["spot_interruption_bucket"]
    if (savings_raw is None) != (bucket_raw is None):
        raise SpecError(
            f"{at}.spot_interruption_bucket",
            "spot_savings_pct and spot_interruption_bucket must both be null (no Spot) or both set",
        )
    savings = (
        None
        if savings_raw is None
        else _number(
            savings_raw,
            f"{at}.spot_savings_pct",
            ok=lambda pct: 0 <= pct < 100,
            want="a percentage from 0 to below 100",
        )
    )
    bucket = (
        None
        if bucket_raw is None
        else _int(
            bucket_raw,
            f"{at}.spot_interruption_bucket",
            minimum=0,
            maximum=len(SPOT_BUCKETS) - 1,
        )
    )

    zones = raw["zones"]
    if not isinstance(zones, list):
        raise SpecError(f"{at}.zones", f"expected a list of zone names, got {_show(zones)}")
    for j, zone in enumerate(zones):
        if not isinstance(zone, str) or not zone.startswith(region):
            raise SpecError(f"{at}.zones[{j}]", f"expected a zone of {region}, got {_show(zone)}")
    if len(set(zones)) != len(zones):
        raise SpecError(f"{at}.zones", "duplicate zone")

    return InstanceType(
        name=name,
        vcpus=_int(raw["vcpus"], f"{at}.vcpus", minimum=1),
        memory_mib=_int(raw["memory_mib"], f"{at}.memory_mib", minimum=1),
        gpu_count=gpu_count,
        gpu_model=gpu_model,
        gpu_memory_mib=gpu_memory,
        arch=arch,
        bare_metal=bare_metal,
        max_pods=_int(raw["max_pods"], f"{at}.max_pods", minimum=1),
        on_demand_usd_per_hour=_number(
            raw["on_demand_usd_per_hour"],
            f"{at}.on_demand_usd_per_hour",
            ok=lambda usd: usd > 0,
            want="a positive price in USD per hour",
        ),
        spot_savings_pct=savings,
        spot_interruption_bucket=bucket,
        zones=tuple(sorted(zones)),
        burstable=burstable,
    )
