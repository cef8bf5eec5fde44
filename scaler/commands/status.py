"""``scaler status``: read the status ConfigMap the leader writes and print it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import anyio

from scaler.commands.place import console


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "status",
        help="what is the controller doing? (reads the scaler-status ConfigMap)",
        description="Print the status the leader writes to the scaler-status ConfigMap: the "
        "leader, its last tick, pending pods, nodes, and each pool's size, health, backoff and "
        "last scale-up and scale-down.",
    )
    p.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster config, else "
                   "$KUBECONFIG / ~/.kube/config)")
    p.add_argument("--namespace", default="scaler-system",
                   help="where scaler runs (its --lease-namespace; default scaler-system)")
    p.add_argument("--json", action="store_true", help="print the document as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scaler.adapters.kube.client import load_api_client
    from scaler.adapters.kube.status import StatusConfigMap

    target = StatusConfigMap(load_api_client(args.kubeconfig), args.namespace)
    document = anyio.run(target.read)
    if args.json:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_status(document)
    return 0


def _when(value: Any) -> str:
    return str(value).replace("T", " ").removesuffix("Z") if value else "-"


STALE_S = 180.0
"""The leader rewrites the status at least every minute: three minutes without a write means
no replica leads (or it cannot write)."""


def _age(value: Any, now: float | None = None) -> str:
    """`` (42 s ago)``, flagged when stale; empty if the time cannot be read."""
    try:
        written = datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return ""
    age = (time.time() if now is None else now) - written.timestamp()
    stale = "; [yellow]stale: is a replica leading?[/yellow]" if age > STALE_S else ""
    return f" ({age:.0f} s ago{stale})"


def print_status(doc: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"cluster {doc.get('cluster_name')}  leader {doc.get('leader')}  "
        f"written {_when(doc.get('written_at'))} UTC{_age(doc.get('written_at'))}"
    )
    out.print(
        f"last tick {_when(doc.get('last_tick_at'))} UTC  pending pods {doc.get('pending_pods')}"
        f"  nodes {doc.get('nodes')}"
    )
    for w in doc.get("warnings") or ():
        out.print(f"[yellow]warning[/yellow] {w}")
    table = Table(title="pools", title_justify="left")
    table.add_column("pool", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("health", no_wrap=True)
    table.add_column("last up", no_wrap=True)
    table.add_column("last down", no_wrap=True)
    table.add_column("why", overflow="fold")
    for p in doc.get("pools") or ():
        size = "-" if p.get("size") is None else f"{p['size']}/{p.get('max_size') or '-'}"
        why = p.get("disabled_reason") or ""
        if p.get("backoff_reason"):
            why = f"{p['backoff_reason']} (until {_when(p.get('backoff_until'))})"
        table.add_row(p.get("name", "?"), size, p.get("health", "?"),
                      _when(p.get("last_scale_up_at")), _when(p.get("last_scale_down_at")), why)
    out.print(table)
