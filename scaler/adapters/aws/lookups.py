"""What ASGs refer to, read from AWS and cached: launch template versions, launch
configurations, subnets' zones, instance type specs.

Numbered template versions, launch configurations, subnets and instance types never change
and are cached for good; ``$Default``/``$Latest`` may move and are re-read after
``ttl_s``. A lookup that fails is logged and never raised: the group that needed it becomes
a :class:`~scaler.core.offerings.PoolProblem` (or keeps the last answer) and the others
scale on. Clients are passed per call, so the fleet owns them (and tests can wrap them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

from scaler.adapters.aws.asg import TemplateRef
from scaler.adapters.aws.errors import translated
from scaler.adapters.aws.parse import instance_type_from_description
from scaler.core.catalog import Catalog
from scaler.core.model import InstanceType
from scaler.ports import NotFound, PortError

log = structlog.get_logger("scaler.adapters.aws")

# $Default/$Latest may point at a new version after an edit; 5 minutes is soon enough for a
# change of instance type to show, and one call per template per 5 minutes is nothing.
TEMPLATE_TTL_S: Final = 300.0
# API limits on names per request: DescribeLaunchConfigurations takes 50; filters 200.
_LC_BATCH: Final = 50
_FILTER_BATCH: Final = 100


@dataclass
class _Cached:
    value: Mapping[str, Any] | None
    at_s: float


@dataclass
class LaunchData:
    """The caches, and the calls that fill them."""

    catalog: Catalog
    ttl_s: float = TEMPLATE_TTL_S
    templates: dict[TemplateRef, _Cached] = field(default_factory=dict)
    launch_configurations: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    subnet_zones: dict[str, str] = field(default_factory=dict)
    described: dict[str, InstanceType] = field(default_factory=dict)
    undescribable: dict[str, float] = field(default_factory=dict)
    """Type name -> when DescribeInstanceTypes last did not know it (asked again after ttl)."""

    def __contains__(self, name: object) -> bool:
        """A type the catalog or DescribeInstanceTypes knows (``known_types`` of a pool)."""
        return name in self.catalog or name in self.described

    def instance_type(self, name: str) -> InstanceType | None:
        return self.catalog.get(name) or self.described.get(name)

    async def read_templates(
        self, ec2: Any, refs: Iterable[TemplateRef], now_s: float
    ) -> dict[TemplateRef, Mapping[str, Any] | None]:
        """``LaunchTemplateData`` per version (``None``: it does not exist or was never read)."""
        out: dict[TemplateRef, Mapping[str, Any] | None] = {}
        for ref in refs:
            cached = self.templates.get(ref)
            if cached is None or (ref.symbolic and now_s - cached.at_s >= self.ttl_s):
                await self._read_template(ec2, ref, now_s)
            cached = self.templates.get(ref)
            out[ref] = cached.value if cached else None
        return out

    async def _read_template(self, ec2: Any, ref: TemplateRef, now_s: float) -> None:
        try:
            with translated(f"DescribeLaunchTemplateVersions {ref.template}"):
                answer = await ec2.describe_launch_template_versions(**ref.request())
        except NotFound as e:
            log.warning("aws.launch_template_missing", template=str(ref), error=str(e))
            self.templates[ref] = _Cached(None, now_s)
            return
        except PortError as e:
            # Throttled or unreachable: keep what we knew, ask again at the next discovery.
            log.warning("aws.launch_template_unread", template=str(ref), error=str(e))
            return
        versions = answer.get("LaunchTemplateVersions") or []
        self.templates[ref] = _Cached(
            versions[0].get("LaunchTemplateData") if versions else None, now_s
        )

    async def read_launch_configurations(
        self, autoscaling: Any, names: Iterable[str]
    ) -> dict[str, Mapping[str, Any]]:
        wanted = set(names)
        missing = sorted(wanted - self.launch_configurations.keys())
        for i in range(0, len(missing), _LC_BATCH):
            try:
                with translated("DescribeLaunchConfigurations"):
                    pages = autoscaling.get_paginator("describe_launch_configurations")
                    batch = missing[i : i + _LC_BATCH]
                    async for page in pages.paginate(LaunchConfigurationNames=batch):
                        for lc in page.get("LaunchConfigurations", []):
                            self.launch_configurations[str(lc["LaunchConfigurationName"])] = lc
            except PortError as e:
                log.warning("aws.launch_configurations_unread", error=str(e))
        return {n: lc for n, lc in self.launch_configurations.items() if n in wanted}

    async def read_subnet_zones(self, ec2: Any, subnet_ids: Iterable[str]) -> dict[str, str]:
        wanted = set(subnet_ids)
        missing = sorted(wanted - self.subnet_zones.keys())
        for i in range(0, len(missing), _FILTER_BATCH):
            # A filter, not SubnetIds=: one deleted subnet must not fail the whole request.
            flt = [{"Name": "subnet-id", "Values": missing[i : i + _FILTER_BATCH]}]
            try:
                with translated("DescribeSubnets"):
                    pages = ec2.get_paginator("describe_subnets")
                    async for page in pages.paginate(Filters=flt):
                        for subnet in page.get("Subnets", []):
                            zone = str(subnet["AvailabilityZone"])
                            self.subnet_zones[str(subnet["SubnetId"])] = zone
            except PortError as e:
                log.warning("aws.subnets_unread", error=str(e))
        return {s: z for s, z in self.subnet_zones.items() if s in wanted}

    async def describe(self, ec2: Any, names: Sequence[str]) -> None:
        """DescribeInstanceTypes for ``names`` not described yet; raises on failure."""
        todo = [n for n in dict.fromkeys(names) if n not in self.described]
        for i in range(0, len(todo), _FILTER_BATCH):
            # A filter, not InstanceTypes=: one unknown name must not fail the others.
            flt = [{"Name": "instance-type", "Values": todo[i : i + _FILTER_BATCH]}]
            with translated("DescribeInstanceTypes"):
                pages = ec2.get_paginator("describe_instance_types")
                async for page in pages.paginate(Filters=flt):
                    for item in page.get("InstanceTypes", []):
                        self._add_described(item)

    def _add_described(self, item: Mapping[str, Any]) -> None:
        name = str(item["InstanceType"])
        try:
            itype = instance_type_from_description(item, priced_like=self.catalog.get(name))
        except ValueError as e:
            log.warning("aws.instance_type_unusable", instance_type=name, reason=str(e))
            return
        self.described[name] = itype

    async def describe_quietly(self, ec2: Any, names: Sequence[str], now_s: float) -> None:
        """:meth:`describe` for discovery: failures are logged, unknown names remembered."""
        todo = [
            n
            for n in names
            if n not in self and now_s - self.undescribable.get(n, -math.inf) >= self.ttl_s
        ]
        if not todo:
            return
        try:
            await self.describe(ec2, todo)
        except PortError as e:
            log.warning("aws.instance_types_unread", instance_types=todo, error=str(e))
            return
        for name in todo:
            if name not in self.described:
                self.undescribable[name] = now_s
