"""``scaler plan``: read-only; what the next tick would do and why, as a table."""

from __future__ import annotations

import argparse
from typing import Any

import anyio
from rich.table import Table

from scaler.adapters.observe import configure_logging
from scaler.commands.place import console
from scaler.commands.run import add_connection_flags, connection_options
from scaler.core.actions import (
    Decision,
    GiveUpLaunch,
    LabelNode,
    MarkIdle,
    NotifyUnplaceable,
    PinPod,
    RemoveNode,
    ScaleUp,
    Untaint,
)


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "plan",
        help="what would the next tick do, and why? (writes nothing)",
        description="Observe the cluster and its ASGs once and print the decision the next "
        "tick would make. Nothing is written to Kubernetes or AWS.",
    )
    add_connection_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scaler import app

    configure_logging(json=args.log_format == "json", level="warning")
    opts = connection_options(args, dry_run=True, leader_elect=False)
    decision, reconciler = anyio.run(app.plan, opts)
    print_plan(decision, [f"{p.pool}: {p.reason}" for p in reconciler.problems])
    return 0


def print_plan(decision: Decision, problems: list[str]) -> None:
    out = console()
    table = Table(title="scaler plan: what the next tick would do", title_justify="left")
    for col in ("action", "target", "count", "$/h", "why"):
        table.add_column(col, no_wrap=col != "why")
    for a in decision.actions:
        if isinstance(a, ScaleUp):
            table.add_row("scale up", f"{a.pool} ({a.instance_type})", f"+{a.count}",
                          f"{a.price_usd_per_hour:.4f}", f"{len(a.pods)} pods; {a.reason}")
        elif isinstance(a, RemoveNode):
            table.add_row("remove node", f"{a.node} ({a.pool})", "-1",
                          f"{a.price_usd_per_hour:.4f}", a.reason)
        elif isinstance(a, NotifyUnplaceable):
            table.add_row("cannot place", ", ".join(p.key for p in a.pods[:3]),
                          str(len(a.pods)), "-", a.reason)
        elif isinstance(a, MarkIdle) and a.since_s is not None:
            table.add_row("idle timer", a.node, "", "", "no workload pods; timer starts")
        elif isinstance(a, LabelNode):
            table.add_row("label node", a.node, "", "", f"{a.key}={a.value}: {a.reason}")
        elif isinstance(a, Untaint):
            table.add_row("untaint", a.node, "", "", f"scaler.io/removing: {a.reason}")
        elif isinstance(a, GiveUpLaunch):
            table.add_row("give up launch", a.pool, f"-{a.count}", "", a.reason)
    pins = sum(isinstance(a, PinPod) for a in decision.actions)
    out.print(table)
    if pins:
        out.print(f"{pins} pods would be pinned to their pool (scaler.io/pool)")
    if decision.waiting:
        out.print(f"{len(decision.waiting)} pending pods wait (batch window open or nodes on the way)")
    if decision.wake_at_s is not None:
        out.print(f"next decision due in {max(0.0, decision.wake_at_s - decision.now_s):.0f} s")
    for p in problems:
        out.print(f"[yellow]pool disabled[/yellow] {p}")
    if not decision.actions and not decision.waiting:
        out.print("nothing to do: no pending pods, no idle nodes past their timeout")
