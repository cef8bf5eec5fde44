"""Which pools a new pod may be scheduled on: what the admission webhook pins.

The tier is the pool placement would choose plus every other pool whose cost per pod is
within ``tier_tolerance`` of it (at most ``tier_max_pools``, cheapest first); a lone pool gets
the runner-up as a fallback when it is within ``misplaced_factor`` of it, so a failed launch
does not strand the pod. The pod can
then wait for the node bought for it, or take a near-equal one, but never the idle 512 GiB
node next door.

Pins select on the ``scaler.io/pool`` node label, so :func:`label_pools` puts it on nodes that
lack it.

One pod per node is how the core counts nodes for pools that do not pack; :func:`pin_for`
says whether a pin also makes the pod exclusive (the webhook renders that as a label and a
required pod anti-affinity on the hostname, the simulator's kube-scheduler enforces the same
flag), so kube-scheduler never stacks two such pods on a node with room for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from scaler.core.actions import LabelNode
from scaler.core.model import LABEL_POOL, BoolArray, FloatArray, IntArray, PodSpec
from scaler.core.offerings import Offerings
from scaler.core.placement import cost_matrix, spot_priced
from scaler.core.settings import Settings
from scaler.core.state import ClusterView
from scaler.core.viewindex import node_index


def pin_tier(
    pod: PodSpec,
    offerings: Offerings,
    settings: Settings,
    *,
    available: BoolArray | None = None,
    headroom: FloatArray | None = None,
    lost_work_h: float | None = None,
    row: ClassRow | None = None,
) -> tuple[str, ...]:
    """Pool names, cheapest first; empty when no pool can run the pod (then it is left
    unpinned: the scheduler and the NotTriggerScaleUp event tell the story). ``lost_work_h``:
    the pod's expected lost work if interrupted (:mod:`scaler.core.runtime`), which prices
    its Spot risk as placement will. ``row``: the pod's class's :class:`ClassRow` over
    these offerings, which gives the same answer without scoring every pool again."""
    if len(offerings) == 0:
        return ()
    ok = _admitted(len(offerings), available, headroom)
    if row is None:
        req = pod.requests.as_array()[None, :]
        lost = None if lost_work_h is None else np.array([lost_work_h], dtype=np.float64)
        cost = cost_matrix([pod], req, offerings, ok, settings.placement, lost_work_h=lost)[0][0]
        return _cheapest(cost, None, offerings, settings)
    return _cheapest(*row.cost(offerings, ok, lost_work_h), offerings, settings)


def _cheapest(
    cost: FloatArray, columns: IntArray | None, offerings: Offerings, settings: Settings
) -> tuple[str, ...]:
    """The tier from a pod's cost per pool: ``cost[k]`` is pool ``columns[k]``'s (pool ``k``'s
    without ``columns``; ascending either way), ``inf`` where it cannot run."""
    fitting = np.flatnonzero(np.isfinite(cost))
    if not len(fitting):
        return ()
    # Positions in ``cost`` in tie-break order: a stable sort of columns kept ascending.
    fitting = fitting[np.argsort(cost[fitting], kind="stable")]
    pools = fitting if columns is None else columns[fitting]
    # A tier is all packing or all one-per-node, as its cheapest pool: a pod exclusive on one
    # of its pools and shared on another would follow neither rule.
    same = offerings.pack[pools] == offerings.pack[pools[0]]
    fitting, pools = fitting[same], pools[same]
    pin = settings.pinning
    best = float(cost[fitting[0]])
    near = int(np.count_nonzero(cost[fitting] <= best * (1.0 + pin.tier_tolerance) + 1e-12))
    if (
        near == 1
        and pin.tier_fallback
        and len(fitting) > 1
        and cost[fitting[1]] <= best * settings.lifecycle.misplaced_factor + 1e-12
    ):
        near = 2
    return tuple(offerings.pools[i].name for i in pools[: min(near, max(1, pin.tier_max_pools))])


@dataclass(frozen=True, slots=True)
class ClassRow:
    """A pod class's cost row with every pool available and lost work not priced, as
    :func:`~scaler.core.placement.cost_matrix` scores it, kept to the pools it can run on:
    neither which pools are out nor the pod's lost work changes where it fits or how many
    share a node, so a tier is found from these few pools alone (:func:`class_row`)."""

    columns: IntArray
    """Pool indices, ascending: the pools the class can run on."""
    base: FloatArray
    """Its cost there (USD/hour per pod) when lost work is not priced."""
    per_node: FloatArray
    """Pods of the class per node there (1 but on packing pools)."""
    priced: bool
    """Some pool of the offerings has an interruption rate (:func:`reads_lost_work`)."""

    def cost(
        self, offerings: Offerings, ok: BoolArray, lost_work_h: float | None
    ) -> tuple[FloatArray, IntArray]:
        """(cost, columns): the class's cost row restricted to its pools that ``ok`` admits,
        and those pools; to the bit what cost_matrix gives there for a pod of the class
        with ``lost_work_h`` over the offerings the row was scored over (elsewhere it
        gives ``inf``)."""
        keep = ok[self.columns]
        columns = self.columns[keep]
        rates = offerings.interruptions_per_h
        if lost_work_h is None or rates is None or not self.priced:
            return self.base[keep], columns
        # cost_matrix's charge for a pod whose lost work is known, on every pool once one
        # has an interruption rate: price x (1 + interruptions/h x lost hours), per pod.
        price = spot_priced(offerings.price[columns], rates[columns], lost_work_h)
        return price / self.per_node[keep], columns


def class_row(pod: PodSpec, offerings: Offerings, settings: Settings) -> ClassRow | None:
    """``pod``'s :class:`ClassRow`; None when a pool's own cost is not finite (then a
    finite cost would no longer say the pod fits: its row must be scored in full)."""
    if not bool(np.isfinite(offerings.cost).all()):
        return None
    req = pod.requests.as_array()[None, :]
    everywhere = np.ones(len(offerings), dtype=bool)
    cost, per_node = cost_matrix([pod], req, offerings, everywhere, settings.placement)
    columns = np.flatnonzero(np.isfinite(cost[0]))
    return ClassRow(columns, cost[0][columns], per_node[0][columns], reads_lost_work(offerings))


def reads_lost_work(offerings: Offerings) -> bool:
    """Whether a pod's expected lost work can change its tier: some pool has an interruption
    rate, the only case in which :func:`~scaler.core.placement.cost_matrix` prices it."""
    rates = offerings.interruptions_per_h
    return rates is not None and bool(rates.any())


def _admitted(n: int, available: BoolArray | None, headroom: FloatArray | None) -> BoolArray:
    """(P,) the pools a tier may name: available, with room for one more node. All that
    :func:`pin_tier` reads of the availability and the headroom."""
    if headroom is None:
        return np.ones(n, dtype=bool) if available is None else available.copy()
    room = headroom >= 1
    return room if available is None else available & room


LABEL_EXCLUSIVE: Final = "scaler.io/exclusive"
"""On a pod pinned to pools that do not pack: the label its own pod anti-affinity selects."""
TOPOLOGY_HOSTNAME: Final = "kubernetes.io/hostname"


class Pin(tuple[str, ...]):
    """A tier (pool names, cheapest first; a plain tuple to whoever reads it as one) and
    whether the pod must have its node to itself among exclusive pods."""

    exclusive: bool

    def __new__(cls, pools: tuple[str, ...] = (), exclusive: bool = False) -> Pin:
        pin = super().__new__(cls, pools)
        pin.exclusive = exclusive and bool(pools)
        return pin

    @property
    def pools(self) -> tuple[str, ...]:
        return tuple(self)


def pin_for(
    pod: PodSpec,
    offerings: Offerings,
    settings: Settings,
    *,
    available: BoolArray | None = None,
    headroom: FloatArray | None = None,
    readmit: BoolArray | None = None,
    lost_work_h: float | None = None,
    row: ClassRow | None = None,
) -> Pin:
    """:func:`pin_tier`, exclusive when ``pinning.exclusive`` is on and the tier's pools do
    not pack (a tier never mixes the two). The one rule the webhook and the simulator share.

    ``readmit``: pools unavailable now only because a Spot interruption reclaimed capacity
    there. The tier is then the one they would head (cheapest first) followed by today's:
    the pod can take the next pool now and still go back to its own once the backoff ends,
    instead of being held to the dearer pool for the rest of its life."""
    tier = pin_tier(pod, offerings, settings, available=available, headroom=headroom,
                    lost_work_h=lost_work_h, row=row)
    if readmit is not None and available is not None and readmit.any():
        back = pin_tier(pod, offerings, settings, available=available | readmit, headroom=headroom,
                        lost_work_h=lost_work_h, row=row)
        tier = tuple(dict.fromkeys(back + tier))
    packs = any(bool(offerings.pack[i]) for i in map(offerings.get, tier) if i is not None)
    return Pin(tier, exclusive=settings.pinning.exclusive and not packs)


TIER_CACHE_ENTRIES: Final = 4096
"""Answers a :class:`TierCache` keeps before starting over: pod classes times backoff and
headroom states (and, where pools have an interruption rate, expected lost work) seen since
the offerings last changed."""


class TierCache:
    """:func:`pin_for`'s answers, per pod class, while the offerings and settings (held, by
    identity) and the pools a tier may name (by value) stay the same: a burst of like pods
    costs one cost-matrix row, not one per pod. The answer is the function's, to the bit:
    the key holds everything it reads of the pod (its constraints and whether it wants a
    node to itself), of the masks (the pools available with room for a node, and those
    once the readmitted ones are back) and the pod's expected lost work, which it reads
    only when some pool has an interruption rate (never on-demand-only offerings; else
    every arrival would be its own key, the lost work of a finished-run history moving
    with each run that ends).

    A miss (with Spot pools, each new lost-work estimate) is answered from the class's
    :class:`ClassRow`, scored once per class for the life of the offerings."""

    def __init__(self) -> None:
        self._basis: tuple[Offerings, Settings] | None = None
        self._answers: dict[tuple[object, ...], Pin] = {}
        self._rows: dict[tuple[object, ...], ClassRow | None] = {}
        self._priced = False

    def pin(
        self,
        pod: PodSpec,
        offerings: Offerings,
        settings: Settings,
        *,
        available: BoolArray | None = None,
        headroom: FloatArray | None = None,
        readmit: BoolArray | None = None,
        lost_work_h: float | None = None,
        room: tuple[BoolArray, bytes] | None = None,
    ) -> Pin:
        """``room``: ``headroom``'s pools with room for a node and that mask's bytes, as the
        pool table that owns ``headroom`` keeps them (:attr:`PoolTable.room`); worked out
        from ``headroom`` when not given."""
        self._rebase(offerings, settings)
        n = len(offerings)
        if room is not None and available is None:
            ok_key = room[1]  # the table's own bytes: hashed once, compared by identity
        else:
            ok_key = _admitted(n, available, headroom).tobytes()
        back = None
        if readmit is not None and available is not None and readmit.any():
            back = _admitted(n, available | readmit, headroom)
        cls = (pod.constraints(), pod.one_per_node)
        key = (cls, ok_key, None if back is None else back.tobytes(),
               lost_work_h if self._priced else None)
        pin = self._answers.get(key)
        if pin is None:
            if len(self._answers) >= TIER_CACHE_ENTRIES:
                self._answers.clear()
                self._rows.clear()
            if cls in self._rows:
                row = self._rows[cls]
            else:
                row = self._rows[cls] = class_row(pod, offerings, settings)
            pin = pin_for(pod, offerings, settings, available=available, headroom=headroom,
                          readmit=readmit, lost_work_h=lost_work_h, row=row)
            self._answers[key] = pin
        return pin

    def reads_lost_work(self, offerings: Offerings, settings: Settings) -> bool:
        """:func:`reads_lost_work` of ``offerings``, kept with their answers: asked per
        admission, whether the pod's lost work is worth estimating at all."""
        self._rebase(offerings, settings)
        return self._priced

    def _rebase(self, offerings: Offerings, settings: Settings) -> None:
        basis = self._basis
        if basis is None or basis[0] is not offerings or basis[1] is not settings:
            self._basis, self._answers, self._rows = (offerings, settings), {}, {}
            self._priced = reads_lost_work(offerings)


def exclusive_term() -> dict[str, Any]:
    """The required pod anti-affinity term an exclusive pod carries: no other pod labelled
    :data:`LABEL_EXCLUSIVE`, in any namespace, on its node. Pods without the label
    (DaemonSets, pods on packing pools, pods scaler did not pin) are not matched, so they
    are never blocked by it. ``namespaceSelector: {}`` (all namespaces) is read by
    Kubernetes 1.22+; older API servers drop the field and the term holds per namespace."""
    return {
        "labelSelector": {"matchExpressions": [{"key": LABEL_EXCLUSIVE, "operator": "Exists"}]},
        "namespaceSelector": {},
        "topologyKey": TOPOLOGY_HOSTNAME,
    }


LABEL_BUDGET: Final = 50
"""Nodes labelled per tick at most: a first start on a big unlabelled cluster spreads its
PATCH requests over ticks instead of sending thousands at once."""


def label_pools(view: ClusterView, *, budget: int = LABEL_BUDGET) -> list[LabelNode]:
    """``scaler.io/pool`` for the nodes whose label does not name their pool: missing (the
    pool is known from the providerID only) or naming another group.

    Pins select on that label. On a node without it, a pod pinned to the node's pool would
    stay pending next to the capacity bought for it. DOMAIN has nodes carry the label from
    the kubelet's ``--node-labels``; this covers groups whose launch template does not.
    """
    nodes = node_index(view)
    if not nodes.any_unlabelled:  # nearly every tick: nothing to label
        return []
    out = []
    for node in nodes.unlabelled:  # kept per nodes tuple: not per-tick work
        if not node.pool_labelled and node.pool is not None:
            out.append(
                LabelNode(node.name, LABEL_POOL, node.pool, "the label does not name the pool of its instance")
            )
            if len(out) >= budget:
                break
    return out
