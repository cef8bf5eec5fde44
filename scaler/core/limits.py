"""Global limits on a scale-up: nodes in scaler's pools, their USD/hour, nodes per decision.

cluster-autoscaler has ``--max-nodes-total`` and ``--max-nodes-per-scaleup``, Karpenter a
NodePool's ``limits``; without them 20,000 pending pods became 16,672 new nodes in one
decision. :func:`apply_limits` cuts a placement down to what the limits allow.

The cut is deterministic: groups are served in the placement's own order (a priority order
is a separate question), each takes what the limits leave, and the first group that does not
fit whole is cut to the nodes left; it and every group after it hold their remaining pods,
which are told the limit that held them (not skipped by a later, smaller group, so the pods
that wait do not depend on how the rest happen to fit).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from scaler.core.actions import Limit
from scaler.core.model import PodSpec
from scaler.core.offerings import Offerings, PoolTable
from scaler.core.placement import PlacedGroup
from scaler.core.settings import LimitsSettings

NEXT_STEP_S = 1.0
"""Pods held back by ``max_new_nodes_per_decision`` only are placed by a decision this much
later: nothing else would wake the loop for pods it has already seen."""

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Held:
    """Pods a limit kept from this decision's scale-up."""

    pods: tuple[PodSpec, ...]
    limit: Limit
    reason: str


def managed_totals(table: PoolTable, offerings: Offerings) -> tuple[int, float]:
    """Nodes in scaler's pools (their desired sizes: launches in flight count) and their
    USD/hour at the prices decisions use."""
    nodes, usd = 0, 0.0
    price = offerings.price
    for pool in table.sized_by_name.values():  # per scale-up: no tuple of them, one price read
        nodes += pool.current_size
        i = offerings.get(pool.name)
        if i is not None:
            p = price.item(i)
            if math.isfinite(p):
                usd += pool.current_size * p
    return nodes, usd


def apply_limits(
    groups: Sequence[PlacedGroup],
    table: PoolTable,
    offerings: Offerings,
    limits: LimitsSettings,
) -> tuple[list[PlacedGroup], Held | None]:
    """The groups (some cut short) the limits allow, and the pods they hold back."""
    if not (limits.max_nodes_total or limits.max_usd_per_hour or limits.max_new_nodes_per_decision):
        return list(groups), None
    nodes_now, usd_now = managed_totals(table, offerings)
    inf = math.inf
    room_nodes = limits.max_nodes_total - nodes_now if limits.max_nodes_total else inf
    room_new = limits.max_new_nodes_per_decision or inf
    room_usd = limits.max_usd_per_hour - usd_now if limits.max_usd_per_hour else inf
    out: list[PlacedGroup] = []
    held: list[PodSpec] = []
    stop: tuple[Limit, str] | None = None
    added, added_usd = 0, 0.0
    for g in groups:
        if stop is not None:
            held += g.pods
            continue
        price = g.price_usd_per_hour
        by_usd = math.floor(room_usd / price + _EPS) if price > 0 and room_usd < inf else inf
        rooms = {
            Limit.MAX_NODES_TOTAL: room_nodes,
            Limit.MAX_NEW_NODES_PER_DECISION: room_new,
            Limit.MAX_USD_PER_HOUR: by_usd,
        }
        allowed = min(rooms.values())
        if allowed >= g.nodes:
            out.append(g)
            take_nodes = g.nodes
        else:
            take_nodes = max(int(allowed), 0)
            take = min(len(g.pods), take_nodes * _pods_per_node(g, offerings))
            if take_nodes > 0 and take > 0:
                out.append(dataclasses.replace(g, pods=g.pods[:take], nodes=take_nodes))
            else:
                take_nodes = take = 0
            held += g.pods[take:]
            limit = min(rooms, key=lambda k: rooms[k])
            stop = (limit, _reason(limit, limits, nodes_now, usd_now, added + take_nodes,
                                   added_usd + take_nodes * price))
        room_nodes -= take_nodes
        room_new -= take_nodes
        room_usd -= take_nodes * price
        added += take_nodes
        added_usd += take_nodes * price
    if stop is None or not held:
        return out, None
    return out, Held(tuple(held), stop[0], stop[1])


def _pods_per_node(g: PlacedGroup, offerings: Offerings) -> int:
    """Pods one node of the group takes (1 unless its pool packs)."""
    if g.pods_per_node:
        return g.pods_per_node
    if g.cost_usd_per_hour > 0:
        return max(1, round(float(offerings.cost[g.pool_index]) / g.cost_usd_per_hour))
    return max(1, math.ceil(len(g.pods) / max(g.nodes, 1)))


def _reason(
    limit: Limit, limits: LimitsSettings, nodes: int, usd: float, added: int, added_usd: float
) -> str:
    if limit is Limit.MAX_NODES_TOTAL:
        return (
            f"limit max_nodes_total={limits.max_nodes_total} reached: {nodes} nodes in "
            f"scaler's pools, {added} more in this decision"
        )
    if limit is Limit.MAX_USD_PER_HOUR:
        return (
            f"limit max_usd_per_hour={limits.max_usd_per_hour:g} reached: ${usd:.4f}/h in "
            f"scaler's pools, ${added_usd:.4f}/h more in this decision"
        )
    return (
        f"limit max_new_nodes_per_decision={limits.max_new_nodes_per_decision} reached: "
        f"{added} nodes in this decision; the next decision places the rest"
    )
