"""``scaler bench place``: how fast is one placement decision, and is it the right one?

The measuring lives in :mod:`scaler.bench`; this module parses flags and prints.
Exit code 0 when ``place()`` and the reference loop chose the same pool for every pod, 1
otherwise (the mismatches are printed); 2 for a bad flag or a missing trace.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from scaler.bench import (
    DEFAULT_TRACE,
    TARGET_DECISION_MS,
    TARGET_PEAK_MIB,
    TARGET_SPEEDUP,
    PlaceBench,
    draw_pods,
    load_shapes,
    resolve_trace,
    run_place_bench,
)
from scaler.commands.common import (
    add_capacity_types_flag,
    add_catalog_flag,
    load_catalog,
    parse_capacity_types,
)
from scaler.core.model import SpecError
from scaler.core.settings import Settings


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "bench",
        help="measure scaler's decisions on real traces",
        description="Benchmarks of scaler's decision code.",
    )
    targets = p.add_subparsers(dest="target", metavar="TARGET", required=True)
    pl: argparse.ArgumentParser = targets.add_parser(
        "place",
        help="time place() on trace pods against a per-pod Python loop",
        description="Draw pods (seeded) from the request shapes of an openb pod list, place "
        "them on the catalog's default pools, time place() (median of --repeats), time the "
        "straightforward per-pod Python loop on the same pods, and check both chose the same "
        "pool for every pod.",
    )
    pl.add_argument(
        "--trace",
        metavar="PATH",
        help=f"openb pod list CSV (default: {DEFAULT_TRACE}, relative to the working directory "
        "or the repository)",
    )
    pl.add_argument("--pods", type=int, default=10_000, help="pods to draw (default 10000)")
    pl.add_argument("--seed", type=int, default=0, help="draw seed (default 0)")
    pl.add_argument("--repeats", type=int, default=7, help="timed place() calls (default 7)")
    pl.add_argument(
        "--reference-budget-s",
        type=float,
        default=60.0,
        metavar="S",
        help="stop the reference loop after S seconds and extrapolate (default 60)",
    )
    add_catalog_flag(pl)
    add_capacity_types_flag(pl)
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    pl.set_defaults(run=run_place)


def run_place(args: argparse.Namespace) -> int:
    if args.pods < 1:
        raise SpecError("--pods", f"expected a positive number, got {args.pods}")
    if args.repeats < 1:
        raise SpecError("--repeats", f"expected a positive number, got {args.repeats}")
    trace = resolve_trace(args.trace)
    shapes = load_shapes(trace)
    catalog = load_catalog(args.catalog)
    pools = catalog.default_pools(parse_capacity_types(args.capacity_types),
                                  burstable=args.burstable)
    pods = draw_pods(shapes, args.pods, args.seed)
    from rich.console import Console  # rich loads only for the command that prints

    err = Console(stderr=True)
    result = run_place_bench(
        pods,
        pools,
        catalog,
        settings=Settings().placement,
        repeats=args.repeats,
        reference_budget_s=args.reference_budget_s,
        progress=None if args.json else lambda msg: err.print(f"[dim]{msg}[/dim]"),
    )
    if args.json:
        doc = {"trace": str(trace), "seed": args.seed, **result.as_json()}
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_result(result, trace=str(trace))
    return 0 if not result.mismatches else 1


def _mark(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]missed[/red]"


def print_result(r: PlaceBench, *, trace: str) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(width=None if sys.stdout.isatty() else 120)
    table = Table(
        title=f"scaler bench place: {r.pods} pods ({r.classes} classes) x {r.pools} pools",
        title_justify="left",
        caption=f"trace {trace}",
        caption_justify="left",
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target")
    median = r.decision_ms_median
    table.add_row(
        "place() decision, median / min",
        f"{median:.1f} / {min(r.decision_ms):.1f} ms",
        f"<= {TARGET_DECISION_MS:g} ms {_mark(median <= TARGET_DECISION_MS)}",
    )
    table.add_row(
        "place() warm (masks cached), median",
        f"{statistics.median(r.warm_decision_ms):.1f} ms",
        "",
    )
    ref = f"{r.reference_all_s:.2f} s"
    if r.extrapolated:
        ref += f" (extrapolated from {r.reference_pods} pods)"
    table.add_row("per-pod Python loop (reference)", ref, "")
    table.add_row(
        "speed-up",
        f"{r.speedup:.0f}x",
        f">= {TARGET_SPEEDUP:g}x {_mark(r.speedup >= TARGET_SPEEDUP)}",
    )
    table.add_row(
        "same choice for every pod",
        "yes" if not r.mismatches else f"NO: {len(r.mismatches)} differ",
        f"on {r.reference_pods} pods",
    )
    table.add_row(
        "peak memory of place() (tracemalloc)",
        f"{r.tracemalloc_peak_mib:.1f} MiB",
        f"<= {TARGET_PEAK_MIB:g} MiB {_mark(r.tracemalloc_peak_mib <= TARGET_PEAK_MIB)}",
    )
    table.add_row("process max RSS", f"{r.max_rss_mib:.0f} MiB", "")
    table.add_row(
        "offerings build (one-off), first / median",
        f"{r.build_ms[0]:.1f} / {statistics.median(r.build_ms):.1f} ms",
        "",
    )
    table.add_row("placed / unplaceable", f"{r.placed} / {r.unplaceable}", "")
    out.print(table)
    for m in r.mismatches[:20]:
        out.print(f"[red]mismatch[/red] {m.pod}: place() {m.place}, reference {m.reference}")
