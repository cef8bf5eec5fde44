#!/usr/bin/env python3
"""Build scaler's packaged instance catalog from the permissively licensed public data.

Reads ONLY these sources (see NOTICE and docs/catalog.md):

- moto 5.2.5 (Apache-2.0): DescribeInstanceTypes records and the region / AZ offerings,
- awslabs/amazon-eks-ami (MIT-0): ``instance-info.jsonl``, the VPC CNI max-pods inputs,
- aws/karpenter-provider-aws (Apache-2.0): the generated on-demand price table,
- alexei-led/spotinfo (Apache-2.0): AWS's Spot Instance Advisor feed,
- awslabs/amazon-eks-ami (MIT-0) ``eni-max-pods.txt``: max pods of types the newer
  instance-info.jsonl no longer lists.

Types the price list sells but moto's DescribeInstanceTypes data lacks (p3.2xlarge,
p3.8xlarge, p3.16xlarge) are added from :data:`NOT_IN_MOTO`: vCPUs and memory from the Spot
Advisor feed's ``instance_types``, max pods from ``eni-max-pods.txt``, and the GPUs as AWS
documents them (https://aws.amazon.com/ec2/instance-types/p3/), cross-checked here.

The unlicensed files in the same directory are never opened. The CC BY-SA (sparecores) price
file is opened only for a region Karpenter's table does not cover (every region but
us-east-1); such a catalog credits it, CC-BY-SA-4.0, in its ``sources`` and is not bundled
(:func:`price_file`). moto's offerings for a region not in the shared data come from the
installed moto package (Apache-2.0) (:func:`offerings_file`).

The output is deterministic: types sorted by name, keys in a fixed order, floats in Python's
shortest round-trip form. Only ``built_at`` changes between runs; it honours
``SOURCE_DATE_EPOCH`` (https://reproducible-builds.org/specs/source-date-epoch/).

Usage::

    python tools/build_catalog.py                       # ../shared/data -> packaged catalog
    python tools/build_catalog.py --shared DIR --out catalog.json
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import json
import os
import sys
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "scaler" / "data" / "catalog-us-east-1.json"

FORMAT = "scaler-catalog"
VERSION = 1

# Field order of one catalog entry (also the order scaler.core.model.InstanceType uses).
FIELDS = (
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
    "burstable",
)

ARCHES = {"x86_64": "amd64", "arm64": "arm64"}

# Devices scaler does not schedule: a type carrying any of them is left out (its price pays
# for hardware no pod of ours asks for). Inferentia/Trainium = NeuronInfo or
# InferenceAcceleratorInfo, FPGA = FpgaInfo, Xilinx U30 media = MediaAcceleratorInfo.
OTHER_ACCELERATORS = ("NeuronInfo", "InferenceAcceleratorInfo", "FpgaInfo", "MediaAcceleratorInfo")

# Types the price list sells that moto 5.2.5's instance data lacks, with what the permissive
# sources do not hold: the GPUs (count, AWS's GPU name, MiB per GPU) and the architecture, as
# AWS documents the P3 family (https://aws.amazon.com/ec2/instance-types/p3/: Tesla V100 with
# 16 GiB each, Intel Xeon E5-2686 v4). vCPUs and memory come from the Spot Advisor feed and
# must agree with the vCPU-per-GPU ratio AWS publishes (checked by supplement_record).
NOT_IN_MOTO: dict[str, dict[str, Any]] = {
    "p3.2xlarge": {"gpus": 1, "gpu": "V100", "gpu_mib": 16384, "arch": "x86_64", "vcpus": 8},
    "p3.8xlarge": {"gpus": 4, "gpu": "V100", "gpu_mib": 16384, "arch": "x86_64", "vcpus": 32},
    "p3.16xlarge": {"gpus": 8, "gpu": "V100", "gpu_mib": 16384, "arch": "x86_64", "vcpus": 64},
}


def sources(region: str, files: Mapping[str, str]) -> list[dict[str, str]]:
    """Provenance written into the catalog; dates and licenses from shared/data/MANIFEST.md."""
    return [
        {
            "name": "moto 5.2.5 instance types (AWS DescribeInstanceTypes)",
            "license": "Apache-2.0",
            "data_date": "2026-10-27",
            "file": files["types"],
        },
        {
            "name": f"moto 5.2.5 instance type offerings, {region} (region)",
            "license": "Apache-2.0",
            "data_date": "2026-10-27",
            "file": files["region"],
        },
        {
            "name": f"moto 5.2.5 instance type offerings, {region} (availability zones)",
            "license": "Apache-2.0",
            "data_date": "2026-10-27",
            "file": files["az"],
        },
        {
            "name": "awslabs/amazon-eks-ami nodeadm instance-info.jsonl (commit 81fec2e8)",
            "license": "MIT-0",
            "data_date": "2026-07-01",
            "file": files["max_pods"],
        },
        {
            "name": "aws/karpenter-provider-aws zz_generated.pricing_aws.go (commit 1d927085)",
            "license": "Apache-2.0",
            "data_date": "2026-07-20",
            "file": files["prices"],
        },
        {
            "name": "AWS Spot Instance Advisor feed via alexei-led/spotinfo (commit 05e93313)",
            "license": "Apache-2.0",
            "data_date": "2025-06-28",
            "file": files["spot"],
        },
        {
            "name": "awslabs/amazon-eks-ami eni-max-pods.txt (commit 2bed73dc)",
            "license": "MIT-0",
            "data_date": "2026-02-27",
            "file": files["eni_max_pods"],
        },
    ]


class BuildError(Exception):
    pass


SPARECORES_CREDIT = {
    "name": "sparecores-data 0.1.0 sc-data-all.db on-demand prices (Spare Cores, PyPI wheel)",
    "license": "CC-BY-SA-4.0",
    "data_date": "2024-02-21",
}
"""Provenance of the all-regions price file (shared/data/MANIFEST.md): ShareAlike, so a
catalog priced from it stays under CC BY-SA 4.0 and credits Spare Cores."""


def price_file(shared: Path, region: str) -> tuple[Path, dict[str, str] | None]:
    """The on-demand price CSV for ``region``, and the provenance to credit when it is not
    Karpenter's (None: :func:`sources` already credits it). Karpenter's Apache-2.0 table
    covers us-east-1 only; every other region is priced from the CC BY-SA file."""
    karpenter = sorted(shared.glob(f"aws/prices/ondemand_{region}_karpenter_*.csv"))
    if karpenter:
        return karpenter[-1], None
    path = _newest(shared, "aws/prices/ondemand_all_regions_sparecores_*.csv")
    return path, dict(SPARECORES_CREDIT)


def offerings_file(shared: Path, region: str, kind: str) -> Path:
    """moto's ``kind`` (``region`` / ``az``) offerings for ``region``: the shared copy, else
    the installed moto package's (the same Apache-2.0 data, every region)."""
    path = shared / f"aws/instance_types/moto_offerings_{kind}_{region}.json.gz"
    if path.is_file():
        return path
    try:
        import moto
    except ImportError:
        return path  # reported as a missing source file
    folder = "region" if kind == "region" else "availability-zone"
    installed = (
        Path(moto.__file__).parent / "ec2/resources/instance_type_offerings" / folder
        / f"{region}.json.gz"
    )
    return installed if installed.is_file() else path


def _credited(
    credits: list[dict[str, str]], shared: Path, paths: Mapping[str, Path],
    price_credit: dict[str, str] | None,
) -> list[dict[str, str]]:
    """:func:`sources` corrected for where the prices and offerings really came from."""
    out = []
    for credit in credits:
        key = credit["file"]  # sources() was given the keys of ``paths`` as file names
        path = paths[key]
        credit = dict(credit)
        if key == "prices" and price_credit is not None:
            credit.update(price_credit)
        if not path.is_relative_to(shared):
            import moto

            inside = path.relative_to(Path(moto.__file__).parent.parent).as_posix()
            credit.update(
                name=credit["name"].replace("moto 5.2.5", f"moto {moto.__version__} (installed)"),
                data_date="unknown (the installed package's)",
                file=f"site-packages/{inside}",
            )
        else:
            credit["file"] = path.relative_to(shared).as_posix()
        out.append(credit)
    return out


def _read_json_gz(path: Path) -> Any:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def _newest(shared: Path, pattern: str) -> Path:
    found = sorted(shared.glob(pattern))
    if not found:
        raise BuildError(f"no file matches {pattern} under {shared}")
    return found[-1]  # names carry the data date, so the last one sorted is the newest


def is_current_generation(rec: Mapping[str, Any]) -> bool:
    """AWS's flag, widened to every Nitro type.

    moto's 2026 data marks m5, c5, r5, g5, m6i... ``CurrentGeneration: false`` although they
    are on sale everywhere and g5 is the only A10G family. "Runs on Nitro" is the line that
    matters: it drops the Xen-era families (m4, c4, m3, i2, d2, ...). Bare-metal types have no
    hypervisor at all (the field is absent) but are all built on the Nitro System, so
    m5.metal stays with m5.large.
    """
    return bool(
        rec.get("CurrentGeneration") or rec.get("Hypervisor") == "nitro" or rec.get("BareMetal")
    )


def exclusion_reason(rec: Mapping[str, Any]) -> str | None:
    """Why a type offered and priced in the region is left out, or None to keep it."""
    name = rec["InstanceType"]
    archs = rec["ProcessorInfo"]["SupportedArchitectures"]
    if name.startswith("mac") or any(a.endswith("_mac") for a in archs):
        return "mac"
    if not is_current_generation(rec):
        return "previous generation"
    if not any(a in ARCHES for a in archs):
        return f"architecture {archs}"
    gpus = rec.get("GpuInfo", {}).get("Gpus", [])
    if any(g.get("Manufacturer") != "NVIDIA" for g in gpus):
        return "non-NVIDIA GPU"  # pods ask for nvidia.com/gpu; an AMD Radeon serves none
    if len({g["Name"] for g in gpus}) > 1:
        return "mixed GPU models"
    for key in OTHER_ACCELERATORS:
        if key in rec:
            return f"other accelerator ({key})"
    return None


def max_pods_of(name: str, rec: Mapping[str, Any], eks: Mapping[str, Mapping[str, int]]) -> int:
    """AWS VPC CNI: ENIs of the default network card x (IPv4 per ENI - 1) + 2.

    Inputs from the EKS AMI's instance-info.jsonl (what nodeadm reads); moto's NetworkInfo for
    the default card when the AMI does not list the type yet. Not the ENI total over all cards:
    that would double max pods on multi-card types such as g6e.48xlarge.
    """
    if name in eks:
        enis, ips = eks[name]["defaultMaxENIs"], eks[name]["ipv4AddressesPerInterface"]
    else:
        net = rec["NetworkInfo"]
        index = net.get("DefaultNetworkCardIndex", 0)
        cards = {c["NetworkCardIndex"]: c for c in net.get("NetworkCards", [])}
        enis = (
            cards[index]["MaximumNetworkInterfaces"]
            if index in cards
            else net["MaximumNetworkInterfaces"]
        )
        ips = net["Ipv4AddressesPerInterface"]
    return int(enis) * (int(ips) - 1) + 2


def entry(
    rec: Mapping[str, Any],
    *,
    price: Decimal,
    max_pods: int,
    spot: Mapping[str, int] | None,
    zones: Iterable[str],
) -> dict[str, Any]:
    name = rec["InstanceType"]
    gpus = rec.get("GpuInfo", {}).get("Gpus", [])
    gpu_count = sum(int(g["Count"]) for g in gpus)
    arch = next(ARCHES[a] for a in rec["ProcessorInfo"]["SupportedArchitectures"] if a in ARCHES)
    spot_ok = spot is not None and "spot" in rec.get("SupportedUsageClasses", [])
    row = {
        "name": name,
        "vcpus": int(rec["VCpuInfo"]["DefaultVCpus"]),
        "memory_mib": int(rec["MemoryInfo"]["SizeInMiB"]),
        "gpu_count": gpu_count,
        "gpu_model": gpus[0]["Name"] if gpu_count else None,
        "gpu_memory_mib": int(gpus[0]["MemoryInfo"]["SizeInMiB"]) if gpu_count else 0,
        "arch": arch,
        "bare_metal": bool(rec.get("BareMetal", False)),
        "max_pods": max_pods,
        # Decimal -> float: the shortest repr of the 6-decimal price, stable across runs.
        "on_demand_usd_per_hour": float(price),
        "spot_savings_pct": int(spot["s"]) if spot_ok and spot else None,
        "spot_interruption_bucket": int(spot["r"]) if spot_ok and spot else None,
        "zones": sorted(set(zones)),
        # CPU credits: t2/t3/t3a/t4g run a sustained load at a baseline share of the vCPUs.
        "burstable": bool(rec.get("BurstablePerformanceSupported", False)),
    }
    assert tuple(row) == FIELDS
    return row


def build(shared: Path, region: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The catalog document (without ``built_at``) and counts of what was dropped and why."""
    price_path, price_credit = price_file(shared, region)
    paths = {
        "types": shared / "aws/instance_types/moto_instance_types.json.gz",
        "region": offerings_file(shared, region, "region"),
        "az": offerings_file(shared, region, "az"),
        "max_pods": shared / "aws/max_pods/eks_instance-info.jsonl",
        "prices": price_path,
        "spot": _newest(shared, "aws/prices/spot_advisor_data_*.json"),
        "eni_max_pods": shared / "aws/max_pods/eni-max-pods.txt",
    }
    for p in paths.values():
        if not p.is_file():
            raise BuildError(f"missing source file {p}")

    types: dict[str, Any] = _read_json_gz(paths["types"])
    offered = {o["InstanceType"] for o in _read_json_gz(paths["region"]) if o["Location"] == region}
    zones: dict[str, set[str]] = {}
    for o in _read_json_gz(paths["az"]):
        zones.setdefault(o["InstanceType"], set()).add(o["Location"])
    eks: dict[str, dict[str, int]] = {}
    with paths["max_pods"].open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                eks[rec["instanceType"]] = rec
    prices: dict[str, Decimal] = {}
    with paths["prices"].open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["region"] == region:
                prices[row["instance_type"]] = Decimal(row["ondemand_usd_per_hour"])
    with paths["spot"].open(encoding="utf-8") as f:
        feed = json.load(f)
    advisor = feed["spot_advisor"].get(region, {}).get("Linux", {})
    eni_max_pods = read_eni_max_pods(paths["eni_max_pods"])

    dropped: dict[str, int] = {}
    rows = []
    # The price list decides what the region sells; a type moto lacks may still be described
    # by the supplement.
    for name in sorted(offered | (set(NOT_IN_MOTO) & set(prices))):
        rec = types.get(name)
        if rec is None and name in NOT_IN_MOTO:
            rec = supplement_record(name, feed["instance_types"].get(name), eni_max_pods)
            eks.setdefault(name, {})  # max pods comes with the record, not the AMI's table
        if rec is None:
            reason: str | None = "not in moto"
        elif prices.get(name, Decimal(0)) <= 0:
            reason = "no on-demand price"
        else:
            reason = exclusion_reason(rec)
        if reason is not None or rec is None:
            dropped[str(reason)] = dropped.get(str(reason), 0) + 1
            continue
        rows.append(
            entry(
                rec,
                price=prices[name],
                max_pods=rec["MaxPods"] if "MaxPods" in rec else max_pods_of(name, rec, eks),
                spot=advisor.get(name),
                zones=zones.get(name, ()),
            )
        )
    dropped.update(unoffered(prices, offered, types, {r["name"] for r in rows}, region))

    doc = {
        "format": FORMAT,
        "version": VERSION,
        "region": region,
        "sources": _credited(
            sources(region, {k: k for k in paths}), shared, paths, price_credit
        ),
        "instance_types": rows,
    }
    return doc, dropped


def read_eni_max_pods(path: Path) -> dict[str, int]:
    """``<type> <max pods>`` lines of the EKS AMI's eni-max-pods.txt (``#`` comments)."""
    out: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, pods = line.split()
            out[name] = int(pods)
    return out


def supplement_record(
    name: str, advisor: Mapping[str, Any] | None, eni_max_pods: Mapping[str, int]
) -> dict[str, Any]:
    """A DescribeInstanceTypes-shaped record for a type moto lacks (:data:`NOT_IN_MOTO`)."""
    facts = NOT_IN_MOTO[name]
    if advisor is None or name not in eni_max_pods:
        raise BuildError(f"{name}: the Spot Advisor feed or eni-max-pods.txt does not list it")
    if int(advisor["cores"]) != facts["vcpus"]:
        raise BuildError(
            f"{name}: the Spot Advisor feed says {advisor['cores']} vCPUs, AWS {facts['vcpus']}"
        )
    gpu = {"Count": facts["gpus"], "Name": facts["gpu"], "Manufacturer": "NVIDIA",
           "MemoryInfo": {"SizeInMiB": facts["gpu_mib"]}}
    return {
        "InstanceType": name,
        "CurrentGeneration": True,  # AWS lists P3 as current generation
        "VCpuInfo": {"DefaultVCpus": facts["vcpus"]},
        "MemoryInfo": {"SizeInMiB": round(float(advisor["ram_gb"]) * 1024)},
        "GpuInfo": {"Gpus": [gpu]},
        "ProcessorInfo": {"SupportedArchitectures": [facts["arch"]]},
        "SupportedUsageClasses": ["on-demand", "spot"],
        "MaxPods": eni_max_pods[name],
    }


def unoffered(
    prices: Mapping[str, Decimal],
    offered: set[str],
    types: Mapping[str, Any],
    kept: set[str],
    region: str,
) -> dict[str, int]:
    """Types the price file sells in the region that the catalog still lacks, by reason with
    their names (the summary lists them): the price list is what AWS sells, moto's data only
    what it describes."""
    missing: dict[str, list[str]] = {}
    for name in sorted(set(prices) - offered - kept):
        why = (
            "priced but not in moto's instance data"
            if name not in types
            else f"priced but not in moto's {region} offerings"
        )
        missing.setdefault(why, []).append(name)
    return {f"{why} ({', '.join(names)})": len(names) for why, names in missing.items()}


def built_at() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC) if epoch else dt.datetime.now(tz=dt.UTC)
    return now.date().isoformat()


def render(doc: Mapping[str, Any], date: str) -> str:
    """Compact, diff-friendly JSON: header fields one per line, one instance type per line."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)

    lines = ["{"]
    head = {
        "format": doc["format"],
        "version": doc["version"],
        "region": doc["region"],
        "built_at": date,
    }
    lines += [f"  {dump(k)}: {dump(v)}," for k, v in head.items()]
    lines.append('  "sources": [')
    lines += [f"    {dump(s)}," for s in doc["sources"]]
    lines[-1] = lines[-1].rstrip(",")
    lines.append("  ],")
    lines.append('  "instance_types": [')
    lines += [f"    {dump(t)}," for t in doc["instance_types"]]
    lines[-1] = lines[-1].rstrip(",")
    lines.append("  ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # the hand-rolled layout must still be JSON
    return text


def summary(doc: Mapping[str, Any], dropped: Mapping[str, int]) -> str:
    rows = doc["instance_types"]
    gpus: dict[str, int] = {}
    for r in rows:
        if r["gpu_model"]:
            gpus[r["gpu_model"]] = gpus.get(r["gpu_model"], 0) + 1
    spot = sum(r["spot_savings_pct"] is not None for r in rows)
    arm = sum(r["arch"] == "arm64" for r in rows)
    lines = [
        f"{len(rows)} instance types ({spot} with Spot, {arm} arm64, "
        f"{sum(gpus.values())} with NVIDIA GPUs)",
        "GPU types by model: " + ", ".join(f"{m} {n}" for m, n in sorted(gpus.items())),
        "dropped: " + ", ".join(f"{why} {n}" for why, n in sorted(dropped.items())),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared",
        type=Path,
        default=DEFAULT_SHARED,
        help="the shared data directory (default: <repo>/../shared/data)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where to write the catalog (default: scaler/data/catalog-us-east-1.json)",
    )
    parser.add_argument("--region", default="us-east-1", help="AWS region (default: us-east-1)")
    args = parser.parse_args(argv)
    try:
        doc, dropped = build(args.shared, args.region)
    except (BuildError, OSError, KeyError, ValueError) as e:
        print(f"build_catalog: {e}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(doc, built_at()), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    print(summary(doc, dropped), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
