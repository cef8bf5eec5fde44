"""Pure readers of the other AWS answers the fleet needs: scaling activities, Spot price
history, instance type descriptions, node providerIDs. No I/O; tested on recorded shapes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from scaler.core.model import AMD64, ARM64, InstanceType
from scaler.core.state import LaunchFailure

# ------------------------------------------------------------------------------ providerID

# kubelet's AWS providerID: aws:///<zone>/<instance id> (Fargate adds a path; not an instance).
_PROVIDER_ID: Final = re.compile(r"aws://[^/]*/(?P<zone>[a-z0-9-]+)/(?P<id>i-[0-9a-f]+)")


def parse_provider_id(provider_id: str | None) -> tuple[str, str] | None:
    """``aws:///us-east-1a/i-0abc...`` -> ``("us-east-1a", "i-0abc...")``; ``None`` for
    anything else (no providerID yet, Fargate, another cloud)."""
    if not provider_id:
        return None
    m = _PROVIDER_ID.fullmatch(provider_id)  # not match(): "$" would allow a trailing "\n"
    return (m["zone"], m["id"]) if m else None


# ------------------------------------------------------------------------ launch failures

FAILED_STATUSES: Final = ("Failed", "Cancelled")
# StatusMessage fragments AWS uses, mapped to a short kind a person recognises. Real
# messages: "We currently do not have sufficient p3.2xlarge capacity in the Availability
# Zone you requested (us-east-1a)...", "There is no Spot capacity available that matches your
# request.", "There are not enough free addresses in subnet 'subnet-...' to satisfy the
# requested number of instances.", "You have requested more vCPU capacity than your current
# vCPU limit of 32 allows...".
_FAILURE_KINDS: Final = (
    # Before capacity: "InsufficientFreeAddressesInSubnet" also says "sufficient".
    (
        "no free IP addresses in subnet",
        ("free addresses", "available ip address", "insufficientfreeaddresses"),
    ),
    (
        "InsufficientInstanceCapacity",
        ("insufficientinstancecapacity", "sufficient", "no spot capacity"),
    ),
    (
        "account limit",
        (
            "vcpulimitexceeded",
            "vcpu limit",
            "instancelimitexceeded",
            "maxspotinstancecountexceeded",
        ),
    ),
    ("unsupported configuration", ("not supported", "unsupported")),
)
_MAX_MESSAGE: Final = 400


def failure_kind(message: str) -> str:
    text = message.lower()
    for kind, fragments in _FAILURE_KINDS:
        if any(f in text for f in fragments):
            return kind
    return "launch failed"


def launch_failures_from_activities(
    pool: str, activities: Iterable[Mapping[str, Any]], since_s: float
) -> list[LaunchFailure]:
    """Failed or cancelled *launch* activities of one ASG (DescribeScalingActivities items)
    that ended at or after ``since_s``, oldest first. ``reason`` is ``<kind>: <message>``."""
    out = []
    for activity in activities:
        if activity.get("StatusCode") not in FAILED_STATUSES:
            continue
        description = str(activity.get("Description") or "")
        if not description.lower().startswith("launching"):
            continue  # a failed termination is not a launch failure
        when = activity.get("EndTime") or activity.get("StartTime")
        if not isinstance(when, datetime):
            continue
        at_s = when.timestamp()
        if at_s < since_s:
            continue
        message = " ".join(str(activity.get("StatusMessage") or description).split())
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        out.append(
            LaunchFailure(pool=pool, at_s=at_s, reason=f"{failure_kind(message)}: {message}")
        )
    return sorted(out, key=lambda f: f.at_s)


# ----------------------------------------------------------------------------- Spot prices

# EKS nodes run Linux. Accounts born VPC-only report "Linux/UNIX", older ones also
# "Linux/UNIX (Amazon VPC)"; Karpenter asks for both.
SPOT_PRODUCTS: Final = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")
# AWS advertises Spot "at up to a 90% discount"; a price below 5% of on-demand is not a
# market price (moto answers $0.00001 for everything) and would make every Spot pool free.
MIN_SPOT_FRACTION_OF_ON_DEMAND: Final = 0.05


def spot_prices_from_history(
    history: Iterable[Mapping[str, Any]],
    zones_by_type: Mapping[str, Collection[str]],
    on_demand: Mapping[str, float],
) -> tuple[dict[str, float], list[str]]:
    """USD/hour per instance type from DescribeSpotPriceHistory items.

    The latest price per (type, zone) counts; a type's price is the **mean** over the zones
    its Spot pools may launch in (``zones_by_type``; empty = every zone seen). Mean rather
    than min: a multi-zone ASG's Spot allocation (price-capacity-optimized) does not always
    land in the cheapest zone, and the mean is what a node costs on average.
    Items without a usable ``SpotPrice``, or with one implausibly low against ``on_demand``,
    are skipped and reported as ``rejected`` (``"<type> <zone>: <why>"``).
    """
    latest: dict[tuple[str, str], tuple[datetime | None, float]] = {}
    rejected: list[str] = []
    for item in history:
        itype, zone = str(item.get("InstanceType", "")), str(item.get("AvailabilityZone", ""))
        if itype not in zones_by_type:
            continue
        wanted = zones_by_type[itype]
        if wanted and zone not in wanted:
            continue
        raw = item.get("SpotPrice")
        try:
            price = float(raw) if raw is not None else math.nan
        except (TypeError, ValueError):
            price = math.nan
        if not math.isfinite(price) or price <= 0:
            rejected.append(f"{itype} {zone}: no usable SpotPrice ({raw!r})")
            continue
        od = on_demand.get(itype)
        if od is not None and math.isfinite(od) and price < od * MIN_SPOT_FRACTION_OF_ON_DEMAND:
            rejected.append(
                f"{itype} {zone}: ${price:g}/h is implausible against on-demand ${od:g}/h"
            )
            continue
        stamp = item.get("Timestamp")
        when = stamp if isinstance(stamp, datetime) else None
        have = latest.get((itype, zone))
        if have is None or (when is not None and (have[0] is None or when > have[0])):
            latest[(itype, zone)] = (when, price)
    by_type: dict[str, list[float]] = {}
    for (itype, _), (_, price) in latest.items():
        by_type.setdefault(itype, []).append(price)
    return {t: sum(ps) / len(ps) for t, ps in sorted(by_type.items())}, rejected


# ------------------------------------------------------------------------- instance types

UNPRICED_USD_PER_HOUR: Final = math.inf
"""On-demand price of a type no price source knows: infinitely dear, so never chosen."""
_ARCHES: Final = {"x86_64": AMD64, "arm64": ARM64}


def instance_type_from_description(
    item: Mapping[str, Any], *, priced_like: InstanceType | None = None
) -> InstanceType:
    """A DescribeInstanceTypes item -> :class:`InstanceType`, as tools/build_catalog.py reads
    the same data. Prices come from ``priced_like`` (the catalog's entry) when given, else the
    type is unpriced (:data:`UNPRICED_USD_PER_HOUR`, no Spot data: a live Spot price in
    :class:`~scaler.core.offerings.Prices` still applies). ``ValueError`` for a type scaler
    cannot run nodes on (macOS, 32-bit only)."""
    name = str(item["InstanceType"])
    archs = list(item.get("ProcessorInfo", {}).get("SupportedArchitectures", []))
    arch = next((_ARCHES[a] for a in archs if a in _ARCHES), None)
    if arch is None or name.startswith("mac"):
        raise ValueError(f"{name}: architecture {archs} cannot run EKS nodes")
    # Pods ask for nvidia.com/gpu; another vendor's GPU serves none of them.
    gpus = [g for g in item.get("GpuInfo", {}).get("Gpus", []) if g.get("Manufacturer") == "NVIDIA"]
    gpu_count = sum(int(g.get("Count", 0)) for g in gpus)
    net = item.get("NetworkInfo", {})
    index = net.get("DefaultNetworkCardIndex", 0)
    cards = {c.get("NetworkCardIndex"): c for c in net.get("NetworkCards", [])}
    # AWS VPC CNI max pods: ENIs of the default network card x (IPv4 per ENI - 1) + 2.
    enis = int(
        cards[index]["MaximumNetworkInterfaces"]
        if index in cards
        else net.get("MaximumNetworkInterfaces", 1)
    )
    ips = int(net.get("Ipv4AddressesPerInterface", 1))
    return InstanceType(
        name=name,
        vcpus=int(item["VCpuInfo"]["DefaultVCpus"]),
        memory_mib=int(item["MemoryInfo"]["SizeInMiB"]),
        gpu_count=gpu_count,
        gpu_model=str(gpus[0]["Name"]) if gpu_count else None,
        gpu_memory_mib=int(gpus[0].get("MemoryInfo", {}).get("SizeInMiB", 0)) if gpu_count else 0,
        arch=arch,
        bare_metal=bool(item.get("BareMetal", False)),
        max_pods=enis * (ips - 1) + 2,
        on_demand_usd_per_hour=(
            priced_like.on_demand_usd_per_hour if priced_like else UNPRICED_USD_PER_HOUR
        ),
        spot_savings_pct=priced_like.spot_savings_pct if priced_like else None,
        spot_interruption_bucket=priced_like.spot_interruption_bucket if priced_like else None,
        zones=priced_like.zones if priced_like else (),
    )
