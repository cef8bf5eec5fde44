"""Pieces several commands share: the catalog flag, the pools a workload implies."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from scaler.core.catalog import Catalog
from scaler.core.model import CAPACITY_TYPES, PoolSpec, SpecError
from scaler.core.offerings import Offerings, build_offerings
from scaler.core.settings import Settings
from scaler.core.spec import Workload


def add_catalog_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--catalog",
        metavar="PATH",
        help="instance catalog (scaler-catalog JSON, docs/catalog.md); default: the bundled "
        "us-east-1 catalog",
    )


def add_capacity_types_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--capacity-types",
        default="on-demand,spot",
        metavar="LIST",
        help="capacity types of the default pools when the input names none "
        "(default: on-demand,spot)",
    )
    parser.add_argument(
        "--burstable",
        action="store_true",
        help="also offer burstable types (t2/t3/t3a/t4g: CPU credits) in the default pools; "
        "they are left out unless asked for, as a sustained load runs at a fraction of them",
    )


def parse_capacity_types(text: str) -> tuple[str, ...]:
    types = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in types if t not in CAPACITY_TYPES]
    if bad or not types:
        raise SpecError(
            "--capacity-types", f"expected a list of {', '.join(CAPACITY_TYPES)}, got {text!r}"
        )
    return types


def load_catalog(path: str | None) -> Catalog:
    return Catalog.load(path)


def pools_for(
    workload: Workload, catalog: Catalog, capacity_types: Sequence[str], *, burstable: bool = False
) -> list[PoolSpec]:
    if workload.pools is not None:
        return list(workload.pools)
    return catalog.default_pools(capacity_types, burstable=burstable)


def offerings_for(
    pools: Sequence[PoolSpec], catalog: Catalog, settings: Settings, *, strict: bool
) -> Offerings:
    """Offerings for ``pools``. With ``strict`` (user-written pools), a pool that cannot be
    resolved is an error naming it; otherwise it is left out."""
    offerings, problems = build_offerings(pools, catalog, settings=settings.placement)
    if strict and problems:
        p = problems[0]
        raise SpecError(f"pool {p.pool}", p.reason)
    return offerings
