"""Scorecards for people and programs: a rich table, JSON, CSV, a PNG, one HTML page."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from simulations.ledger import WASTE_REASONS
from simulations.scorecard import Scorecard

if TYPE_CHECKING:
    from rich.console import Console

LEGEND = (
    ("total $", "what the nodes cost, from launch to termination (EC2 bills booting nodes)"),
    (
        "vs oracle",
        "how much more than the oracle: every pod alone on its cheapest fitting node for "
        "exactly its lifetime, no boot, no idle (negative: pods shared nodes, which the "
        "one-pod-per-node oracle never does)",
    ),
    (
        "waste $",
        "idle: nodes with no pod | oversized: node price above what the pod needs (its "
        "cheapest fit) | booting: nodes not Ready yet | interrupted: work lost to Spot "
        "reclaims, done again",
    ),
    ("pending", "time from a pod's arrival (or restart) to running: median / 95th pct / worst"),
    ("nodes", "nodes launched; intr: Spot interruptions; lost: pods that never ran"),
)


def label(sc: Scorecard) -> str:
    """The policy, with the overrides it ran with: ``scaler idle_timeout_s=30``."""
    extra = " ".join(f"{k}={v}" for k, v in sc.overrides.items())
    return f"{sc.policy} {extra}".strip()


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f}m"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def money(usd: float) -> str:
    if abs(usd) >= 1000:
        return f"{usd:,.0f}"
    if abs(usd) >= 10:
        return f"{usd:,.1f}"
    return f"{usd:,.2f}"


def over(sc: Scorecard) -> str:
    pct = sc.over_oracle_pct
    return "-" if pct is None else f"+{pct:.1f}%" if pct >= 0 else f"{pct:.1f}%"


def by_trace(results: Sequence[Scorecard]) -> dict[str, list[Scorecard]]:
    out: dict[str, list[Scorecard]] = {}
    for sc in results:
        out.setdefault(sc.trace, []).append(sc)
    return out


def trace_title(rows: Sequence[Scorecard]) -> str:
    first = rows[0]
    return (
        f"{first.trace}: {first.pods:,} pods over {duration(first.span_s)}; "
        f"oracle ${money(first.oracle_cost_usd)}"
    )


# ------------------------------------------------------------------------------ table

COLUMNS = (
    "policy",
    "total $",
    "vs oracle",
    "on-demand $",
    "Spot $",
    "idle $",
    "oversized $",
    "booting $",
    "interrupted $",
    "pending p50/p95/max",
    "nodes",
    "intr",
    "lost",
)


def rows_of(sc: Scorecard) -> list[str]:
    p = sc.pending_s
    w = sc.waste_usd
    return [
        label(sc),
        money(sc.total_cost_usd),
        over(sc),
        money(sc.on_demand_cost_usd),
        money(sc.spot_cost_usd),
        *(money(w[r]) for r in WASTE_REASONS),
        f"{duration(p['p50'])} / {duration(p['p95'])} / {duration(p['max'])}",
        f"{sc.scale_ups:,}",
        f"{sc.interruptions:,}",
        f"{sc.pods_lost:,}",
    ]


def print_table(results: Sequence[Scorecard], console: Console) -> None:
    from rich.table import Table  # rich loads only for the table, not for JSON or CSV

    console.print(
        "[bold]scaler simulate[/]: the same trace under each policy, same seed. Dollars are "
        "USD for the whole trace."
    )
    for name, text in LEGEND:
        console.print(f"  [bold]{name}[/]: {text}")
    for rows in by_trace(results).values():
        cells = [rows_of(sc) for sc in rows]
        keep = fitting_columns(cells, console.width)
        table = Table(title=trace_title(rows), title_justify="left", title_style="bold")
        for i in keep:
            col = COLUMNS[i]
            table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)
        for row in cells:
            table.add_row(*(row[i] for i in keep))
        console.print(table)
        dropped = [COLUMNS[i] for i in range(len(COLUMNS)) if i not in keep]
        if dropped:
            console.print(f"  (narrow terminal: left out {', '.join(dropped)}; --json or "
                          "--csv has every column)")


DROP_FIRST = ("booting $", "interrupted $", "intr", "lost", "on-demand $", "Spot $", "nodes",
              "oversized $", "idle $")
"""Detail columns, least telling first, left out of the table until it fits the terminal.
The policy, its total dollars, the comparison with the oracle and the pending times stay."""


def fitting_columns(cells: Sequence[Sequence[str]], width: int) -> list[int]:
    """Indexes of :data:`COLUMNS` that fit ``width`` (rich's heavy box: a cell is its text
    plus a space each side and one border)."""
    keep = list(range(len(COLUMNS)))

    def needed() -> int:
        return 1 + sum(
            3 + max(len(COLUMNS[i]), *(len(row[i]) for row in cells)) for i in keep
        )

    for name in DROP_FIRST:
        if needed() <= width:
            break
        keep.remove(COLUMNS.index(name))
    return keep


# ------------------------------------------------------------------------ JSON, CSV


def to_json(results: Sequence[Scorecard]) -> dict[str, Any]:
    return {"results": [sc.as_json() for sc in results]}


def write_json(results: Sequence[Scorecard], out: IO[str]) -> None:
    json.dump(to_json(results), out, indent=2)
    out.write("\n")


CSV_FIELDS = (
    "trace",
    "policy",
    "overrides",
    "seed",
    "pods",
    "total_cost_usd",
    "oracle_cost_usd",
    "over_oracle_pct",
    "on_demand_cost_usd",
    "spot_cost_usd",
    *(f"waste_{r}_usd" for r in WASTE_REASONS),
    "pending_p50_s",
    "pending_p95_s",
    "pending_p99_s",
    "pending_max_s",
    "node_hours",
    "scale_ups",
    "launch_failures",
    "interruptions",
    "pods_finished",
    "pods_lost",
    "unplaceable",
)


def write_csv(results: Sequence[Scorecard], out: IO[str]) -> None:
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for sc in results:
        j = sc.as_json()
        row = {k: j[k] for k in CSV_FIELDS if k in j}
        row["overrides"] = " ".join(f"{k}={v}" for k, v in sc.overrides.items())
        for r in WASTE_REASONS:
            row[f"waste_{r}_usd"] = j["waste_usd"][r]
        for q in ("p50", "p95", "p99", "max"):
            row[f"pending_{q}_s"] = j["pending_s"][q]
        writer.writerow(row)


# ------------------------------------------------------------------------ charts


def figure(results: Sequence[Scorecard]) -> Any:
    """Per trace, cost rate and node count over time, one line per policy (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traces = by_trace(results)
    fig, axes = plt.subplots(
        len(traces), 2, figsize=(12, 3.2 * len(traces)), squeeze=False, constrained_layout=True
    )
    for row, (name, runs) in enumerate(traces.items()):
        span = max(sc.end_s for sc in runs)
        unit, scale = ("days", 86400.0) if span > 3 * 86400 else ("hours", 3600.0)
        cost_ax, nodes_ax = axes[row]
        for sc in runs:
            t = [x / scale for x in sc.series["t_s"]]
            cost_ax.step(t, sc.series["usd_per_hour"], where="post", label=label(sc), lw=1)
            nodes_ax.step(t, sc.series["nodes"], where="post", label=label(sc), lw=1)
        cost_ax.set_title(f"{name}: cost rate")
        cost_ax.set_ylabel("USD / hour")
        nodes_ax.set_title(f"{name}: nodes")
        nodes_ax.set_ylabel("nodes")
        for ax in (cost_ax, nodes_ax):
            ax.set_xlabel(unit)
            ax.grid(alpha=0.3)
        cost_ax.legend(fontsize="small")
    return fig


def png_bytes(results: Sequence[Scorecard]) -> bytes:
    import matplotlib.pyplot as plt

    fig = figure(results)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_plot(results: Sequence[Scorecard], path: str) -> None:
    with open(path, "wb") as f:
        f.write(png_bytes(results))


# -------------------------------------------------------------------------- HTML

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { padding: .25em .6em; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: 600; } code { background: #f3f3f3; padding: 0 .2em; }
img { max-width: 100%; }
"""


def html_page(results: Sequence[Scorecard], *, command: str = "") -> str:
    """One self-contained page: inline CSS, the charts as a base64 PNG, no external URL."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>scaler simulate report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>scaler simulate</h1>",
    ]
    if command:
        parts.append(f"<p><code>{esc(command)}</code></p>")
    parts.append("<dl>")
    for name, text in LEGEND:
        parts.append(f"<dt>{esc(name)}</dt><dd>{esc(text)}</dd>")
    parts.append("</dl>")
    for rows in by_trace(results).values():
        parts.append(f"<h2>{esc(trace_title(rows))}</h2><table><thead><tr>")
        parts += [f"<th>{esc(c)}</th>" for c in COLUMNS]
        parts.append("</tr></thead><tbody>")
        for sc in rows:
            parts.append("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in rows_of(sc)) + "</tr>")
        parts.append("</tbody></table>")
    png = base64.b64encode(png_bytes(results)).decode("ascii")
    parts.append("<h2>Cost rate and nodes over time</h2>")
    parts.append(
        f'<img alt="cost rate and node count over time" src="data:image/png;base64,{png}">'
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(results: Sequence[Scorecard], path: str, *, command: str = "") -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(html_page(results, command=command))
