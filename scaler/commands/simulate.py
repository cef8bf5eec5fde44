"""``scaler simulate TRACE.json...``: replay traces through the real reconciler, per policy.

Each trace runs under each policy (``scaler``, ``ca-least-waste``, ``karpenter-like``) in a
simulated cluster and cloud (:mod:`simulations`), and the scorecards are printed side by side
against the oracle. docs/simulator.md says what is modelled.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from scaler.commands.common import add_capacity_types_flag, add_catalog_flag, parse_capacity_types
from scaler.commands.outputs import check_output_path
from scaler.core.settings import MAX_TIME_S
from simulations import report, sweep
from simulations.engine import rare_collections
from simulations.jobs import POLICIES, Job, catalog_ref, configure, load_trace

if TYPE_CHECKING:
    from rich.progress import Progress


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "simulate",
        help="what would each autoscaler have cost on these traces?",
        description="Replay workload traces (pods with arrival_s and duration_s) through the "
        "real reconciler in a simulated cluster and cloud, once per policy, and compare the "
        "bills with the oracle (every pod alone on its cheapest fitting node, no boot, no idle).",
        epilog="examples:\n  scaler simulate traces/*.json\n"
        "  scaler simulate traces/spot-batch.json --policy scaler --sweep idle_timeout_s=30,120,600\n"
        "  scaler simulate trace.json --set boot_s_gpu=300 --report report.html",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("traces", metavar="TRACE.json", nargs="+", help="workload files to replay")
    p.add_argument(
        "--policy",
        default=",".join(POLICIES),
        metavar="LIST",
        help=f"policies to compare (default: {','.join(POLICIES)})",
    )
    add_capacity_types_flag(p)
    add_catalog_flag(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a core setting (idle_timeout_s=60) or simulator setting (boot_s_cpu=120, "
        "launch_failure_rate=0.1, interruptions=false); repeatable",
    )
    p.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="run every value; several --sweep flags run the cartesian product",
    )
    p.add_argument(
        "--dask",
        metavar="local|tcp://HOST:PORT",
        help="fan runs out over Dask: 'local' starts 2 worker processes",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the scorecards as JSON")
    out.add_argument("--csv", action="store_true", help="print the scorecards as CSV")
    p.add_argument("--plot", metavar="OUT.png", help="write cost and node count over time")
    p.add_argument("--metrics-out", metavar="OUT.om",
                   help="write node cost by pool over time in the controller's Prometheus metric "
                   "names, as OpenMetrics (promtool tsdb create-blocks-from openmetrics)")
    p.add_argument("--report", metavar="OUT.html", help="write a self-contained HTML report")
    p.add_argument(
        "--until",
        metavar="SECONDS",
        type=parse_seconds,
        help="stop the simulation then (s, or with a unit: 90m, 12h, 7d); default: when the "
        "last pod would finish",
    )
    p.set_defaults(run=run)


def parse_seconds(text: str) -> float:
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    scale = units.get(text[-1:].lower())
    number = text[:-1] if scale is not None else text
    try:
        value = float(number) * (scale or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds (or 90m, 12h, 7d), got {text!r}"
        ) from None
    if not 0 < value <= MAX_TIME_S:  # nan fails this too
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_TIME_S:g} s (about 10 years), got {text!r}"
        )
    return value


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set {item}: expected name=value")
        out[name.strip()] = value.strip()
    return out


def run(args: argparse.Namespace) -> int:
    for flag, path in (("--plot", args.plot), ("--metrics-out", args.metrics_out),
                       ("--report", args.report)):
        if path is not None:
            check_output_path(flag, path)
    policies = [p.strip() for p in args.policy.split(",") if p.strip()]
    if not policies:
        raise ValueError("--policy: name at least one policy")
    require_sim_extra(args)
    overrides = parse_overrides(args.overrides)
    grid = sweep.parse_sweep(args.sweep)
    for policy in policies:  # every bad name or value fails now, before any run
        for point in grid:
            configure({**overrides, **point}, policy)
    capacity_types = parse_capacity_types(args.capacity_types)
    # Around the runs too, not only inside each: a run's objects, freed as it returns, are
    # then gone before the caller's thresholds come back. Back any earlier, they would have
    # the next young collection walk the whole finished run (0.1 s on openb).
    with rare_collections():
        traces = [load_trace(path) for path in args.traces]
        labels = [t.label for t in traces]
        if len(set(labels)) != len(labels):
            raise ValueError(f"two traces share a name: {', '.join(labels)}")
        catalog = catalog_ref(args.catalog)
        template = Job(
            trace="", policy="", seed=args.seed, capacity_types=capacity_types,
            until_s=args.until, burstable=args.burstable,
        )
        jobs = sweep.plan(traces, policies, overrides, grid, template)
        by_label = {t.label: t for t in traces}
        # What is loaded now (modules, traces, catalog) outlives the runs: frozen, it is left
        # out of the cyclic garbage collector's full passes during them (a few percent of a
        # run).
        gc.freeze()
        try:
            with _progress(jobs) as progress:
                if args.dask:
                    results = sweep.run_dask(jobs, by_label, catalog, args.dask, progress)
                else:
                    results = sweep.run_serial(jobs, by_label, catalog, progress)
        finally:
            # What the runs leave (their scorecards, the core's caches) joins the oldest
            # generation unwalked, as the loaded data does: a young collection would walk it
            # once the thresholds are back, to keep all of it.
            gc.freeze()
            gc.unfreeze()

    if args.json:
        report.write_json(results, sys.stdout)
    elif args.csv:
        report.write_csv(results, sys.stdout)
    else:
        from scaler.commands.place import console  # place's modules only for a table

        report.print_table(results, console(pipe_width=180))
    if args.plot:
        report.write_plot(results, args.plot)
    if args.metrics_out:
        from simulations import openmetrics

        openmetrics.write(results, args.metrics_out)
    if args.report:
        command = "scaler simulate " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        report.write_html(results, args.report, command=command)
    return 0


SIM_EXTRA = {"--plot": "matplotlib", "--report": "matplotlib", "--dask": "dask.distributed"}
"""Flags whose library comes with the ``sim`` extra, not with scaler itself (pyproject.toml)."""


def require_sim_extra(args: argparse.Namespace) -> None:
    """Before any work: a flag whose library is not installed is one line naming the flag and
    the extra, not a traceback after the whole simulation."""
    for flag, module in SIM_EXTRA.items():
        if not getattr(args, flag.removeprefix("--")):
            continue
        try:
            importlib.import_module(module)
        except ImportError:
            raise ValueError(
                f"{flag} needs {module.partition('.')[0]}, which scaler's sim extra installs: "
                "pip install 'scaler[sim]' (from a checkout: pip install -e '.[sim]')"
            ) from None


class _progress:
    """A rich progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = jobs
        self.bar: Progress | None = None
        self.done: list[float] = [0.0] * len(jobs)

    def __enter__(self) -> Callable[[int, float], None] | None:
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.bar.add_task("simulating", total=len(self.jobs))
        self.bar.start()
        return self.update

    def update(self, k: int, fraction: float) -> None:
        assert self.bar is not None
        self.done[k] = max(self.done[k], fraction)
        job = self.jobs[k]
        self.bar.update(
            self.task,
            completed=sum(self.done),
            description=f"{job.trace} / {job.policy}",
        )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


__all__ = ["add_parser", "run"]
