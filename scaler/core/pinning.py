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

from typing import Any, Final

import numpy as np

from scaler.core.actions import LabelNode
from scaler.core.model import LABEL_POOL, BoolArray, FloatArray, IntArray, PodSpec
from scaler.core.offerings import Offerings
from scaler.core.placement import cost_matrix
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
    columns: IntArray | None = None,
) -> tuple[str, ...]:
    """Pool names, cheapest first; empty when no pool can run the pod (then it is left
    unpinned: the scheduler and the NotTriggerScaleUp event tell the story). ``lost_work_h``:
    the pod's expected lost work if interrupted (:mod:`scaler.core.runtime`), which prices
    its Spot risk as placement will. ``columns``: pool indices, ascending, that hold every
    pool able to run the pod with all pools available (:meth:`TierCache.pin` keeps them
    per pod class); the row is then scored over those alone, to the same answer."""
    if len(offerings) == 0 or (columns is not None and not len(columns)):
        return ()
    ok = _admitted(len(offerings), available, headroom)
    req = pod.requests.as_array()[None, :]
    lost = None if lost_work_h is None else np.array([lost_work_h], dtype=np.float64)
    rates = offerings.interruptions_per_h
    if (
        columns is not None
        and lost is not None
        and rates is not None
        and bool(rates.any())
        and not bool(rates[columns].any())
    ):
        # cost_matrix prices lost work only when a pool it scores has an interruption rate:
        # over these columns alone it would charge the pools' own risk instead.
        columns = None
    row = cost_matrix([pod], req, offerings, ok, settings.placement, columns=columns,
                      lost_work_h=lost)[0][0]
    fitting = np.flatnonzero(np.isfinite(row))
    if not len(fitting):
        return ()
    # Positions in ``row`` in tie-break order: a stable sort of columns kept ascending.
    fitting = fitting[np.argsort(row[fitting], kind="stable")]
    pools = fitting if columns is None else columns[fitting]
    # A tier is all packing or all one-per-node, as its cheapest pool: a pod exclusive on one
    # of its pools and shared on another would follow neither rule.
    same = offerings.pack[pools] == offerings.pack[pools[0]]
    fitting, pools = fitting[same], pools[same]
    pin = settings.pinning
    best = float(row[fitting[0]])
    near = int(np.count_nonzero(row[fitting] <= best * (1.0 + pin.tier_tolerance) + 1e-12))
    if (
        near == 1
        and pin.tier_fallback
        and len(fitting) > 1
        and row[fitting[1]] <= best * settings.lifecycle.misplaced_factor + 1e-12
    ):
        near = 2
    return tuple(offerings.pools[i].name for i in pools[: min(near, max(1, pin.tier_max_pools))])


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
    columns: IntArray | None = None,
) -> Pin:
    """:func:`pin_tier`, exclusive when ``pinning.exclusive`` is on and the tier's pools do
    not pack (a tier never mixes the two). The one rule the webhook and the simulator share.

    ``readmit``: pools unavailable now only because a Spot interruption reclaimed capacity
    there. The tier is then the one they would head (cheapest first) followed by today's:
    the pod can take the next pool now and still go back to its own once the backoff ends,
    instead of being held to the dearer pool for the rest of its life."""
    tier = pin_tier(pod, offerings, settings, available=available, headroom=headroom,
                    lost_work_h=lost_work_h, columns=columns)
    if readmit is not None and available is not None and readmit.any():
        back = pin_tier(pod, offerings, settings, available=available | readmit, headroom=headroom,
                        lost_work_h=lost_work_h, columns=columns)
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

    A miss scores only the pools that can run the pod's class at all, found once per
    class: Spot pricing by each pod's own lost work misses per distinct estimate."""

    def __init__(self) -> None:
        self._basis: tuple[Offerings, Settings] | None = None
        self._answers: dict[tuple[object, ...], Pin] = {}
        self._columns: dict[tuple[object, ...], IntArray | None] = {}
        self._priced = False
        self._finite = False

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
    ) -> Pin:
        self._rebase(offerings, settings)
        n = len(offerings)
        ok = _admitted(n, available, headroom)
        back = None
        if readmit is not None and available is not None and readmit.any():
            back = _admitted(n, available | readmit, headroom)
        cls = (pod.constraints(), pod.one_per_node)
        key = (cls, ok.tobytes(), None if back is None else back.tobytes(),
               lost_work_h if self._priced else None)
        pin = self._answers.get(key)
        if pin is None:
            if len(self._answers) >= TIER_CACHE_ENTRIES:
                self._answers.clear()
                self._columns.clear()
            if cls in self._columns:
                columns = self._columns[cls]
            else:
                columns = self._columns[cls] = self._fitting(pod, offerings, settings)
            pin = pin_for(pod, offerings, settings, available=available, headroom=headroom,
                          readmit=readmit, lost_work_h=lost_work_h, columns=columns)
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
            self._basis, self._answers, self._columns = (offerings, settings), {}, {}
            self._priced = reads_lost_work(offerings)
            self._finite = bool(np.isfinite(offerings.cost).all())

    def _fitting(self, pod: PodSpec, offerings: Offerings, settings: Settings) -> IntArray | None:
        """The pools that can run ``pod`` with every pool available: those with a finite
        cost in its row as the pools' own price and risk (with finite ones, finite exactly
        where the pod fits and is allowed); None when some pool's cost is not finite."""
        if not self._finite:
            return None
        req = pod.requests.as_array()[None, :]
        everywhere = np.ones(len(offerings), dtype=bool)
        row = cost_matrix([pod], req, offerings, everywhere, settings.placement)[0][0]
        return np.flatnonzero(np.isfinite(row))


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
    out = []
    for node in node_index(view).unlabelled:  # kept per nodes tuple: not per-tick work
        if not node.pool_labelled and node.pool is not None:
            out.append(
                LabelNode(node.name, LABEL_POOL, node.pool, "the label does not name the pool of its instance")
            )
            if len(out) >= budget:
                break
    return out
