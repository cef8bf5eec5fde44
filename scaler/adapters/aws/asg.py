"""An Auto Scaling group, as AWS describes it, -> a :class:`PoolSpec` (or why it cannot be one).

Pure translation, no I/O: :mod:`scaler.adapters.aws.fleet` fetches the group
(DescribeAutoScalingGroups), the launch template versions, launch configurations and subnets
it refers to, and hands them here; the tags are read by :mod:`scaler.adapters.aws.tags`.
The conventions are cluster-autoscaler's, so users keep their ASGs (DOMAIN.md, docs/aws.md),
with two differences: every type of a mixed-instances policy is offered (not only the
first), and a group scaler cannot read is disabled with a reason naming the ASG, never
guessed at nor fatal to the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any, Final

from scaler.adapters.aws.tags import (
    PriceOverride,
    TagError,
    enabled_problem,
    parse_node_template,
    parse_pack,
    parse_price_override,
    tags_of,
    valid_label_value,
)
from scaler.core.model import (
    EKS_CAPACITY_LABEL_VALUE,
    LABEL_CAPACITY_TYPE,
    LABEL_NODEGROUP,
    LABEL_POOL,
    ON_DEMAND,
    SPOT,
    PoolSpec,
)
from scaler.core.names import shown
from scaler.core.offerings import PoolProblem
from scaler.core.spot_allocation import DEFAULT_SPOT_INSTANCE_POOLS, LOWEST_PRICE, STRATEGIES

# EC2 launch templates that do not name a version mean the default one (AWS API reference,
# LaunchTemplateSpecification.Version).
DEFAULT_VERSION: Final = "$Default"
LATEST_VERSION: Final = "$Latest"

# AWS defaults of InstancesDistribution when a mixed-instances policy leaves them out.
_DEFAULT_OD_BASE: Final = 0
_DEFAULT_OD_PERCENT: Final = 100

# EKS managed node groups tag their ASG so; their nodes carry eks.amazonaws.com/nodegroup.
TAG_EKS_NODEGROUP: Final = "eks:nodegroup-name"
# The root device of the EKS-optimized AMIs (AL2, AL2023, Bottlerocket's OS volume) and of
# Ubuntu's; the kubelet's ephemeral storage lives on it. Bottlerocket keeps containers and
# ephemeral storage on a second volume (/dev/xvdb): such groups say so with the
# node-template/resources/ephemeral-storage tag, or scaler learns it from the first node.
_ROOT_DEVICES: Final = ("/dev/xvda", "/dev/sda1")
_GIB_MIB: Final = 1024.0

# ------------------------------------------------------------------ what to fetch for a group


@dataclass(frozen=True, slots=True)
class TemplateRef:
    """One launch template version a group launches from.

    ``template`` is the template's id (``lt-...``) or, when the group names it so, its name;
    ``version`` is a number, ``$Default`` or ``$Latest`` as the group gives it.
    """

    template: str
    version: str
    by_name: bool = False

    @property
    def symbolic(self) -> bool:
        """``$Default``/``$Latest`` can point at another version tomorrow; numbers cannot."""
        return self.version.startswith("$")

    def request(self) -> dict[str, Any]:
        """Arguments of DescribeLaunchTemplateVersions for this version."""
        key = "LaunchTemplateName" if self.by_name else "LaunchTemplateId"
        return {key: self.template, "Versions": [self.version]}

    def __str__(self) -> str:
        return f"launch template {self.template} version {self.version}"


def _template_ref(spec: Mapping[str, Any] | None) -> TemplateRef | None:
    if not spec:
        return None
    version = str(spec.get("Version") or DEFAULT_VERSION)
    if spec.get("LaunchTemplateId"):
        return TemplateRef(str(spec["LaunchTemplateId"]), version)
    if spec.get("LaunchTemplateName"):
        return TemplateRef(str(spec["LaunchTemplateName"]), version, by_name=True)
    return None


def template_refs(group: Mapping[str, Any]) -> list[TemplateRef]:
    """The launch template versions :func:`pool_from_asg` needs for this group: its types
    (unless a mixed-instances policy's overrides name them) and its root volume's size."""
    policy = group.get("MixedInstancesPolicy")
    if policy:
        lt = policy.get("LaunchTemplate") or {}
        ref = _template_ref(lt.get("LaunchTemplateSpecification"))
    else:
        ref = _template_ref(group.get("LaunchTemplate"))
    return [ref] if ref is not None else []


def launch_configuration_name(group: Mapping[str, Any]) -> str | None:
    name = group.get("LaunchConfigurationName")
    return str(name) if name else None


def subnet_ids(group: Mapping[str, Any]) -> list[str]:
    """Subnets of ``VPCZoneIdentifier`` (a comma-separated list)."""
    raw = str(group.get("VPCZoneIdentifier") or "")
    return [s.strip() for s in raw.split(",") if s.strip()]


def instance_types_of(
    group: Mapping[str, Any],
    templates: Mapping[TemplateRef, Mapping[str, Any] | None],
    launch_configurations: Mapping[str, Mapping[str, Any]],
) -> tuple[str, ...]:
    """The instance types a group may launch, as far as the data given tells (no errors)."""
    launch = _launch(group, templates, launch_configurations)
    return launch[0] if isinstance(launch, tuple) else ()


# ------------------------------------------------------------------------------- the pool


def pool_from_asg(
    group: Mapping[str, Any],
    *,
    templates: Mapping[TemplateRef, Mapping[str, Any] | None],
    launch_configurations: Mapping[str, Mapping[str, Any]],
    subnet_zones: Mapping[str, str],
    known_types: Container[str],
) -> PoolSpec | PoolProblem:
    """Translate one discovered ASG.

    ``templates`` maps each of :func:`template_refs` to its ``LaunchTemplateData`` (``None``
    or absent: it could not be read); ``launch_configurations`` maps names to
    DescribeLaunchConfigurations items; ``subnet_zones`` maps subnet ids to zones;
    ``known_types`` is the catalog, or anything that also holds types DescribeInstanceTypes
    knows. Never raises for a bad group: every problem is a :class:`PoolProblem`.
    """
    name = str(group.get("AutoScalingGroupName", ""))
    try:
        pool = _pool(name, group, templates, launch_configurations, subnet_zones, known_types)
        pool = _priced(group, pool)
        return dataclasses.replace(pool, pack=True) if parse_pack(tags_of(group)) else pool
    except TagError as e:
        return PoolProblem(name, f"ASG {shown(name)}: {e}; pool disabled")
    except _Problem as e:
        return PoolProblem(name, f"ASG {shown(name)}: {e}")


class _Problem(Exception):
    pass


def _priced(group: Mapping[str, Any], pool: PoolSpec) -> PoolSpec:
    """The pool at what the company pays for it (price tags, tags.parse_price_override)."""
    override = parse_price_override(tags_of(group))
    if override == PriceOverride():
        return pool
    return dataclasses.replace(
        pool, price_usd_per_hour=override.usd_per_hour, price_multiplier=override.multiplier
    )


def _pool(
    name: str,
    group: Mapping[str, Any],
    templates: Mapping[TemplateRef, Mapping[str, Any] | None],
    launch_configurations: Mapping[str, Mapping[str, Any]],
    subnet_zones: Mapping[str, str],
    known_types: Container[str],
) -> PoolSpec:
    if not valid_label_value(name) or not name:
        raise _Problem(
            "the name is not a valid Kubernetes label value (at most 63 letters, digits, "
            "'-', '_' or '.', starting and ending alphanumeric); scaler pins pods to pools "
            f"by the label {LABEL_POOL}=<ASG name>"
        )
    if group.get("Status"):
        raise _Problem(f"status {group['Status']!r}")
    disabled = enabled_problem(tags_of(group))
    if disabled is not None:
        raise _Problem(f"{disabled}; pool disabled")
    launch = _launch(group, templates, launch_configurations)
    if isinstance(launch, str):
        raise _Problem(launch)
    types, capacity_type = launch
    unknown = [t for t in types if t not in known_types]
    if unknown:
        raise _Problem(
            f"instance type {', '.join(unknown)} is neither in the catalog nor known to "
            "DescribeInstanceTypes"
        )
    zones = _zones(group, subnet_zones)
    if not zones:
        raise _Problem("no availability zones (neither AvailabilityZones nor subnets)")
    tags = tags_of(group)
    template = parse_node_template(tags)
    labels = {}
    if tags.get(TAG_EKS_NODEGROUP):  # an EKS managed node group labels its nodes so
        labels[LABEL_NODEGROUP] = tags[TAG_EKS_NODEGROUP]
        labels[LABEL_CAPACITY_TYPE] = EKS_CAPACITY_LABEL_VALUE[capacity_type]
    labels.update(template.labels)
    labels[LABEL_POOL] = name
    pool = PoolSpec(
        name=name,
        instance_types=types,
        capacity_type=capacity_type,
        zones=zones,
        min_size=int(group.get("MinSize", 0)),
        max_size=int(group["MaxSize"]) if group.get("MaxSize") is not None else None,
        current_size=int(group.get("DesiredCapacity", 0)),
        labels=tuple(sorted(labels.items())),
        taints=template.taints,
        allocatable=template.allocatable,
        idle_timeout_s=template.idle_timeout_s,
        spot_share=spot_share(group) if capacity_type == ON_DEMAND else 0.0,
        capacity_rebalance=bool(group.get("CapacityRebalance", False)),
        **_spot_allocation(group),
    )
    # The tag overrides what the launch template gives (cluster-autoscaler's precedence).
    root = template.ephemeral_storage_mib
    if root is None:
        root = root_volume_mib(group, templates, launch_configurations)
    if root is not None:
        pool = dataclasses.replace(pool, ephemeral_storage_mib=root)
    return pool


def root_volume_mib(
    group: Mapping[str, Any],
    templates: Mapping[TemplateRef, Mapping[str, Any] | None],
    launch_configurations: Mapping[str, Mapping[str, Any]],
) -> float | None:
    """The size of the group's root EBS volume in MiB, from its launch template's (or launch
    configuration's) BlockDeviceMappings; None when they do not say (the AMI's size)."""
    refs = template_refs(group)
    if refs:
        data = templates.get(refs[0]) or {}
        mappings = data.get("BlockDeviceMappings") or ()
    else:
        lc = launch_configurations.get(launch_configuration_name(group) or "") or {}
        mappings = lc.get("BlockDeviceMappings") or ()
    sizes = {
        str(m.get("DeviceName") or ""): (m.get("Ebs") or {}).get("VolumeSize")
        for m in mappings
        if (m.get("Ebs") or {}).get("VolumeSize")
    }
    root = next((sizes[d] for d in _ROOT_DEVICES if d in sizes), None)
    if root is None and len(sizes) == 1 and len(mappings) == 1:
        root = next(iter(sizes.values()))  # one volume: the root, whatever its device name
    return float(root) * _GIB_MIB if root else None


def _launch(
    group: Mapping[str, Any],
    templates: Mapping[TemplateRef, Mapping[str, Any] | None],
    launch_configurations: Mapping[str, Mapping[str, Any]],
) -> tuple[tuple[str, ...], str] | str:
    """(instance types, capacity type), or what is wrong."""
    policy = group.get("MixedInstancesPolicy")
    if policy:
        lt = policy.get("LaunchTemplate") or {}
        overrides = lt.get("Overrides") or ()
        if any(o.get("InstanceRequirements") for o in overrides):
            return (
                "mixed-instances policy selects types by attributes (InstanceRequirements); "
                "scaler needs them listed as InstanceType overrides"
            )
        types = _override_types(overrides)
        if not types:
            found = _template_type(lt.get("LaunchTemplateSpecification"), templates)
            if isinstance(found, str):
                return found
            types = (found[0],)
        # Spot only when no on-demand share is asked for at all; any partial mix may launch
        # on-demand nodes, and pricing it as on-demand is the conservative estimate.
        dist = policy.get("InstancesDistribution") or {}
        base = int(dist.get("OnDemandBaseCapacity", _DEFAULT_OD_BASE))
        percent = int(dist.get("OnDemandPercentageAboveBaseCapacity", _DEFAULT_OD_PERCENT))
        return types, SPOT if base == 0 and percent == 0 else ON_DEMAND
    if group.get("LaunchTemplate"):
        found = _template_type(group["LaunchTemplate"], templates)
        if isinstance(found, str):
            return found
        itype, data = found
        market = (data.get("InstanceMarketOptions") or {}).get("MarketType")
        return (itype,), SPOT if market == "spot" else ON_DEMAND
    lc_name = launch_configuration_name(group)
    if lc_name:
        lc = launch_configurations.get(lc_name)
        if lc is None:
            return f"launch configuration {lc_name} could not be read"
        if not lc.get("InstanceType"):
            return f"launch configuration {lc_name} names no instance type"
        return (str(lc["InstanceType"]),), SPOT if lc.get("SpotPrice") else ON_DEMAND
    return "no launch template, mixed-instances policy or launch configuration"


def spot_share(group: Mapping[str, Any]) -> float:
    """The share of the group's next node on Spot, from MixedInstancesPolicy's
    InstancesDistribution: on-demand while below ``OnDemandBaseCapacity``, then Spot for
    ``100 - OnDemandPercentageAboveBaseCapacity`` percent. 0 without a mixed policy."""
    policy = group.get("MixedInstancesPolicy")
    if not policy:
        return 0.0
    dist = policy.get("InstancesDistribution") or {}
    base = int(dist.get("OnDemandBaseCapacity", _DEFAULT_OD_BASE))
    percent = int(dist.get("OnDemandPercentageAboveBaseCapacity", _DEFAULT_OD_PERCENT))
    if int(group.get("DesiredCapacity", 0)) < base:
        return 0.0
    return min(max(100 - percent, 0), 100) / 100.0


def _spot_allocation(group: Mapping[str, Any]) -> dict[str, Any]:
    """PoolSpec's SpotAllocationStrategy and SpotInstancePools fields from the group's
    InstancesDistribution; none without a mixed-instances policy (one type: nothing to pick).
    AWS's defaults when the policy leaves them out: lowest-price over 2 pools."""
    policy = group.get("MixedInstancesPolicy")
    if not policy:
        return {}
    dist = policy.get("InstancesDistribution") or {}
    strategy = str(dist.get("SpotAllocationStrategy") or LOWEST_PRICE)
    if strategy not in STRATEGIES:
        raise _Problem(
            f"MixedInstancesPolicy.InstancesDistribution.SpotAllocationStrategy {strategy!r} "
            f"is not one of {', '.join(STRATEGIES)}"
        )
    pools = dist.get("SpotInstancePools")
    try:
        n = DEFAULT_SPOT_INSTANCE_POOLS if pools is None else int(pools)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise _Problem(
            "MixedInstancesPolicy.InstancesDistribution.SpotInstancePools: expected a whole "
            f"number from 1, got {pools!r}"
        )
    return {"spot_allocation_strategy": strategy, "spot_instance_pools": n}


def _override_types(overrides: Any) -> tuple[str, ...]:
    # Every type, not only the first as cluster-autoscaler does: any of them may launch.
    return tuple(dict.fromkeys(str(o["InstanceType"]) for o in overrides if o.get("InstanceType")))


def _template_type(
    spec: Mapping[str, Any] | None, templates: Mapping[TemplateRef, Mapping[str, Any] | None]
) -> tuple[str, Mapping[str, Any]] | str:
    ref = _template_ref(spec)
    if ref is None:
        return "launch template reference has neither an id nor a name"
    data = templates.get(ref)
    if data is None:
        return f"{ref} could not be read"
    if data.get("InstanceRequirements"):
        return f"{ref} selects types by attributes (InstanceRequirements); name an InstanceType"
    if not data.get("InstanceType"):
        return f"{ref} names no instance type"
    return str(data["InstanceType"]), data


def _zones(group: Mapping[str, Any], subnet_zones: Mapping[str, str]) -> tuple[str, ...]:
    subnets = subnet_ids(group)
    if subnets and all(s in subnet_zones for s in subnets):
        return tuple(sorted({subnet_zones[s] for s in subnets}))
    # AWS fills AvailabilityZones from the subnets too; it is the fallback when a subnet
    # could not be described.
    return tuple(sorted({str(z) for z in group.get("AvailabilityZones") or ()}))
