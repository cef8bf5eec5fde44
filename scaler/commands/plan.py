"""``scaler plan``: read-only; what the next tick would do and why, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from scaler.commands.place import console
from scaler.commands.run import add_connection_flags, connection_options
from scaler.core.actions import (
    Decision,
    GiveUpLaunch,
    LabelNode,
    MarkIdle,
    NotifyUnplaceable,
    RemoveNode,
    ScaleUp,
    Untaint,
)
from scaler.core.memory import Memory
from scaler.core.offerings import PoolProblem
from scaler.core.state import TAINT_REMOVING

NAMED_PODS = 5
"""Pods named on a table row before the rest are counted ("+12 more"): a row stays a line or
two, and ``--json`` names them all."""


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "plan",
        help="what would the next tick do, and why? (writes nothing)",
        description="Observe the cluster and its ASGs once and print the decision the next "
        "tick would make. Nothing is written to Kubernetes or AWS.",
    )
    add_connection_flags(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scaler import app
    from scaler.adapters.observe import configure_logging

    configure_logging(json=args.log_format == "json", level="warning")
    opts = connection_options(args, dry_run=True, leader_elect=False)
    decision, reconciler = anyio.run(app.plan, opts)
    problems = app.disabled_pools(reconciler)
    backoff = backing_off(reconciler.memory, decision.now_s)
    if args.json:
        json.dump(as_json(decision, problems, backoff), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_plan(decision, problems, backing_off=backoff)
    return 0


def backing_off(memory: Memory, now: float) -> list[dict[str, Any]]:
    """Pools the decision skipped after a failure (a launch, a write, an interruption), with
    why and how long is left."""
    return [
        {"pool": pool, "reason": memory.backoff_reason.get(pool, ""), "left_s": round(until - now)}
        for pool, until in sorted(memory.backoff_until_s.items())
        if until > now
    ]


def rows(decision: Decision) -> list[dict[str, Any]]:
    """The decision's actions as rows, one per (pool, type, price) for scale-ups and one per
    reason for pods that cannot be placed, each naming its pods: a burst of 50 pods is one
    row that says which pods, not 50 anonymous ones."""
    ups: dict[tuple[str, str, float], dict[str, Any]] = {}
    unplaceable: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for a in decision.actions:
        if isinstance(a, ScaleUp):
            key = (a.pool, a.instance_type, a.price_usd_per_hour)
            row = ups.get(key)
            if row is None:
                row = ups[key] = {
                    "action": "scale_up", "pool": a.pool, "instance_type": a.instance_type,
                    "count": 0, "price_usd_per_hour": a.price_usd_per_hour, "pods": [],
                    "reasons": [],
                }
                out.append(row)
            row["count"] += a.count
            row["pods"] += list(a.pods)
            if a.reason not in row["reasons"]:
                row["reasons"].append(a.reason)
        elif isinstance(a, NotifyUnplaceable):
            # Pods a global limit holds back say so (NotifyUnplaceable.limit, where the
            # decision has limits); the others fit no pool.
            kind = "held_back" if a.limit is not None else "cannot_place"
            row = unplaceable.get(kind + a.reason)
            if row is None:
                row = unplaceable[kind + a.reason] = {
                    "action": kind, "count": 0, "pods": [], "reasons": [a.reason],
                }
                out.append(row)
            row["count"] += len(a.pods)
            row["pods"] += [p.key for p in a.pods]
        elif isinstance(a, RemoveNode):
            out.append({"action": "remove_node", "node": a.node, "pool": a.pool, "count": -1,
                        "price_usd_per_hour": a.price_usd_per_hour, "reasons": [a.reason]})
        elif isinstance(a, MarkIdle) and a.since_s is not None:
            out.append({"action": "idle_timer", "node": a.node,
                        "reasons": ["no workload pods; timer starts"]})
        elif isinstance(a, LabelNode):
            out.append({"action": "label_node", "node": a.node,
                        "reasons": [f"{a.key}={a.value}: {a.reason}"]})
        elif isinstance(a, Untaint):
            out.append({"action": "untaint", "node": a.node,
                        "reasons": [f"{TAINT_REMOVING}: {a.reason}"]})
        elif isinstance(a, GiveUpLaunch):
            out.append({"action": "give_up_launch", "pool": a.pool, "count": -a.count,
                        "reasons": [a.reason]})
    return out


def as_json(
    decision: Decision,
    problems: Sequence[PoolProblem],
    backoff: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    return {
        "now_s": decision.now_s,
        "actions": rows(decision),
        "waiting_pods": list(decision.waiting),
        "next_decision_in_s": (
            None if decision.wake_at_s is None else max(0.0, decision.wake_at_s - decision.now_s)
        ),
        "disabled_pools": [{"pool": p.pool, "reason": p.reason} for p in problems],
        "backing_off_pools": list(backoff),
    }


def _named(pods: Sequence[str]) -> str:
    """``ns: a, b, c (+2 more)`` when the pods share a namespace (the usual burst), else
    their ``ns/name`` keys."""
    namespaces = {key.partition("/")[0] for key in pods}
    if len(namespaces) == 1 and all("/" in key for key in pods):
        shown = ", ".join(key.partition("/")[2] for key in pods[:NAMED_PODS])
        shown = f"{next(iter(namespaces))}: {shown}"
    else:
        shown = ", ".join(pods[:NAMED_PODS])
    return shown + (f" (+{len(pods) - NAMED_PODS} more)" if len(pods) > NAMED_PODS else "")


def print_plan(
    decision: Decision,
    problems: Sequence[PoolProblem],
    *,
    backing_off: Sequence[dict[str, Any]] = (),
) -> None:
    from rich.table import Table

    out = console()
    table = Table(title="scaler plan: what the next tick would do", title_justify="left")
    # The dollars never wrap or shrink; the pods and the reason wrap to the terminal.
    table.add_column("action", no_wrap=True)
    table.add_column("target", overflow="fold", ratio=2)
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("$/h", justify="right", no_wrap=True, min_width=7)
    table.add_column("pods", overflow="fold", ratio=3)
    table.add_column("why", overflow="fold", ratio=3)
    for row in rows(decision):
        kind = row["action"]
        price = f"{row['price_usd_per_hour']:.4f}" if "price_usd_per_hour" in row else ""
        why = "; ".join(row["reasons"])
        if kind == "scale_up":
            table.add_row("scale up", f"{row['pool']} ({row['instance_type']})",
                          f"+{row['count']}", price, _named(row["pods"]), why)
        elif kind in ("cannot_place", "held_back"):
            table.add_row(kind.replace("_", " "), "-", str(row["count"]), "-",
                          _named(row["pods"]), why)
        elif kind == "remove_node":
            table.add_row("remove node", f"{row['node']} ({row['pool']})", "-1", price, "", why)
        elif kind == "give_up_launch":
            table.add_row("give up launch", row["pool"], str(row["count"]), "", "", why)
        else:
            table.add_row(kind.replace("_", " "), row["node"], "", "", "", why)
    out.print(table)
    if decision.waiting:
        out.print(f"{len(decision.waiting)} pending pods wait (batch window open or nodes on "
                  f"the way): {_named(decision.waiting)}")
    if decision.wake_at_s is not None:
        out.print(f"next decision due in {max(0.0, decision.wake_at_s - decision.now_s):.0f} s")
    if problems:
        disabled = Table(title="disabled pools (never chosen until fixed)", title_justify="left")
        disabled.add_column("pool", no_wrap=True)
        disabled.add_column("why", overflow="fold")
        for p in problems:
            disabled.add_row(p.pool, p.reason)
        out.print(disabled)
    if backing_off:
        skipped = Table(title="pools backing off (skipped until then)", title_justify="left")
        skipped.add_column("pool", no_wrap=True)
        skipped.add_column("left", justify="right", no_wrap=True)
        skipped.add_column("why", overflow="fold")
        for b in backing_off:
            skipped.add_row(b["pool"], f"{b['left_s']} s", b["reason"])
        out.print(skipped)
    if not decision.actions and not decision.waiting:
        out.print("nothing to do: no pending pods, no idle nodes past their timeout")
