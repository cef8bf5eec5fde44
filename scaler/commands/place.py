"""``scaler place PODS.json``: one placement decision, as if every pod were pending now."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from scaler.commands.common import (
    add_capacity_types_flag,
    add_catalog_flag,
    load_catalog,
    offerings_for,
    parse_capacity_types,
    pools_for,
)
from scaler.core.placement import Placement, Unplaceable, place
from scaler.core.settings import Settings
from scaler.core.topology import pin_zones
from scaler.inputs import load_workload

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "place",
        help="where would these pods go, and why?",
        description="Place every pod of PODS.json, one pod per node, on the pool whose node costs "
        "the fewest dollars per hour. Without pools in the file, every catalog type is a pool.",
    )
    p.add_argument(
        "pods", metavar="PODS.json", help="workload file (scaler/schemas/workload.schema.json)"
    )
    add_catalog_flag(p)
    add_capacity_types_flag(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    workload = load_workload(args.pods)
    catalog = load_catalog(args.catalog)
    settings = Settings()
    pools = pools_for(workload, catalog, parse_capacity_types(args.capacity_types),
                      burstable=args.burstable)
    offerings = offerings_for(pools, catalog, settings, strict=workload.pools is not None)
    cutoff = settings.scale_up.priority_cutoff
    expendable = tuple(pod for pod in workload.pods if pod.priority < cutoff)
    t0 = time.perf_counter()
    # As a decision does: expendable pods are left out, zone-bound pods pinned first.
    pods = pin_zones([pod for pod in workload.pods if pod.priority >= cutoff], offerings)
    placement = place(pods, offerings, settings=settings.placement)
    decision_ms = (time.perf_counter() - t0) * 1e3
    if expendable:
        why = (
            f"expendable: priority below priority_cutoff {cutoff}, so it never causes a "
            "scale-up (it runs only where room already is)"
        )
        placement = dataclasses.replace(
            placement, unplaceable=(*placement.unplaceable, Unplaceable(expendable, why))
        )
    if args.json:
        json.dump(as_json(placement, decision_ms), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(placement, decision_ms, n_pools=len(offerings))
    return 0


def as_json(placement: Placement, decision_ms: float) -> dict[str, Any]:
    return {
        "decision_ms": round(decision_ms, 3),
        "placements": [
            {
                "pod": pod.key if pod.namespace != "default" else pod.name,
                "pool": g.pool.name,
                "instance_type": g.instance_type,
                "capacity_type": g.pool.capacity_type,
                "zone": g.zone,
                "price_usd_per_hour": round(g.price_usd_per_hour, 6),
                "reason": g.reason,
            }
            for pod, g in placement.by_pod()
        ],
        "unplaceable": [
            {"pod": pod.key if pod.namespace != "default" else pod.name, "reason": reason}
            for pod, reason in placement.unplaceable_pods()
        ],
    }


WIDE_COLUMNS = 130
"""Terminals at least this wide get every column of the placement table."""


def console(pipe_width: int = 160) -> Console:
    """The terminal's width, or ``$COLUMNS`` when set (rich reads it); ``pipe_width`` when
    output goes to a file or a pipe, so nothing there is cut for a terminal that is not
    there."""
    from rich.console import Console  # rich loads only for a command that prints a table

    if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit():
        return Console()
    return Console(width=pipe_width)


def print_table(placement: Placement, decision_ms: float, *, n_pools: int) -> None:
    from rich.table import Table

    out = console()
    n_pods = sum(len(g.pods) for g in placement.groups)
    table = Table(
        title=f"{n_pods} pods placed over {n_pools} pools in {decision_ms:.1f} ms",
        title_justify="left",
    )
    # Below WIDE_COLUMNS the detail columns (zone, runner-up) go; names and reasons wrap;
    # the dollars never wrap or shrink.
    wide = out.width >= WIDE_COLUMNS
    table.add_column("pod", overflow="fold")
    table.add_column("pool", overflow="fold")
    table.add_column("instance type", overflow="fold")
    if wide:
        table.add_column("zone")
    table.add_column("$/h", justify="right", no_wrap=True, min_width=7)
    table.add_column("+risk $/h", justify="right", no_wrap=True, min_width=9)
    if wide:
        table.add_column("runner-up", no_wrap=True)
    table.add_column("why", overflow="fold")
    for pod, g in placement.by_pod():
        runner = (
            f"{g.runner_up} ${g.runner_up_cost_usd_per_hour:.4f}"
            if g.runner_up and g.runner_up_cost_usd_per_hour is not None
            else "-"
        )
        why = f"cheapest of {g.fitting_pools} pools that fit"
        if g.nodes and len(g.pods) > g.nodes:
            why += f", {len(g.pods)} pods on {g.nodes} nodes"
        # From the figure --json prints (6 digits), so the two never differ in the 4th.
        price = f"{round(g.price_usd_per_hour, 6):.4f}"
        risk = f"{g.risk_usd_per_hour:.4f}" if g.risk_usd_per_hour else "-"
        if wide:
            table.add_row(pod.name, g.pool.name, g.instance_type, g.zone or "any", price, risk,
                          runner, why)
        else:
            table.add_row(pod.name, g.pool.name, g.instance_type, price, risk, why)
    out.print(table)
    total = sum(g.price_usd_per_hour * g.nodes for g in placement.groups)
    out.print(
        f"new nodes: {sum(g.nodes for g in placement.groups)}, ${total:.4f}/h "
        f"(${total * 730:.2f}/month at 730 h)"
    )
    if placement.unplaceable:
        bad = Table(title="cannot be placed", title_justify="left")
        bad.add_column("pod", overflow="fold")
        bad.add_column("reason")
        for pod, reason in placement.unplaceable_pods():
            bad.add_row(pod.name, reason)
        out.print(bad)
