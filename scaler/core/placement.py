"""Placement: every pending pod on the pool whose node costs the fewest dollars per hour.

The hot path is NumPy over a (classes x pools) matrix:

1. Pods with the same constraints form one class (cluster-autoscaler's equivalence
   groups): 10,000 pods drawn from a real trace are a few hundred classes.
2. ``feasible[c, p]``: the class's requests fit pool ``p``'s allocatable on every resource
   axis, no GPU node for a pod without GPUs, and the pool's labels, taints, zone, arch, GPU
   model and capacity type allow it (a cached (P,) mask per constraint set).
3. ``cost[c, p]``: the node's USD/hour plus its Spot-risk penalty, divided by pods per node
   on the few pools that opt into packing; ``inf`` where infeasible. The penalty is the
   pool's interruptions per hour x the class's expected lost work (h) x the pool's price
   when the pods' lost work is estimated (:mod:`scaler.core.runtime`; pods with different
   estimates are different classes), else the pool's ``risk`` (``spot_lost_work_h``).
4. The choice is the first minimum of each row: columns are in tie-break order
   (:mod:`scaler.core.offerings`), so equal prices resolve to the smaller node, then the
   name.
5. Pool headroom (max size minus nodes already there or launching) is checked with one
   ``bincount``; only when a pool overflows are classes walked one by one down their sorted
   rows, so the next-cheapest pool takes the rest.

Nothing here raises on a pod no pool can run: it gets a reason (:mod:`scaler.core.explain`).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np

from scaler.core.classkeys import keys as pod_keys
from scaler.core.diversify import spread_spot
from scaler.core.explain import unplaceable_reason
from scaler.core.frozen import slot_init
from scaler.core.model import CPU, GPU, MEM, BoolArray, FloatArray, IntArray, PodSpec, PoolSpec
from scaler.core.offerings import Offerings
from scaler.core.settings import PlacementSettings

_EPS = 1e-9


@slot_init
@dataclass(frozen=True, slots=True)
class PlacedGroup:
    """Pods of one class that go to one pool, and the nodes to launch for them."""

    pods: tuple[PodSpec, ...]
    pool: PoolSpec
    pool_index: int
    instance_type: str
    nodes: int
    price_usd_per_hour: float
    """One node's price."""
    cost_usd_per_hour: float
    """Per pod: node price plus Spot risk, divided among pods on a packing pool."""
    zone: str | None
    risk_usd_per_hour: float
    """One node's Spot interruption-risk penalty (0 on-demand)."""
    fitting_pools: int
    runner_up: str | None
    runner_up_cost_usd_per_hour: float | None
    reason: str
    pods_per_node: int = 0
    """Pods one node takes (1 unless the pool packs); 0: not said."""


@slot_init
@dataclass(frozen=True, slots=True)
class Unplaceable:
    pods: tuple[PodSpec, ...]
    reason: str


@slot_init
@dataclass(frozen=True, slots=True)
class Placement:
    groups: tuple[PlacedGroup, ...]
    unplaceable: tuple[Unplaceable, ...]

    def nodes_by_pool(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for g in self.groups:
            out[g.pool.name] = out.get(g.pool.name, 0) + g.nodes
        return out

    def by_pod(self) -> Iterator[tuple[PodSpec, PlacedGroup]]:
        for g in self.groups:
            for pod in g.pods:
                yield pod, g

    def unplaceable_pods(self) -> Iterator[tuple[PodSpec, str]]:
        for u in self.unplaceable:
            for pod in u.pods:
                yield pod, u.reason


def group_pods(
    pods: Sequence[PodSpec], lost_work_h: FloatArray | None = None
) -> list[list[PodSpec]]:
    """Pods with equal constraints together, classes in order of first appearance; with
    ``lost_work_h`` (N,), split by equal expected lost work too (their Spot risk differs)."""
    return _classes(pods, lost_work_h)[0]


def _classes(
    pods: Sequence[PodSpec], lost_work_h: FloatArray | None
) -> tuple[list[list[PodSpec]], FloatArray | None]:
    """:func:`group_pods`, and each class's lost work (C,) when ``lost_work_h`` is given."""
    classes: dict[tuple[object, ...], list[PodSpec]] = {}
    if lost_work_h is None:
        for pod in pods:
            key = pod_keys(pod)[1]
            bucket = classes.get(key)
            if bucket is None:
                classes[key] = [pod]
            else:
                bucket.append(pod)
        return list(classes.values()), None
    # The same, remembering where each class's pods are (one dict lookup per pod).
    at: dict[tuple[object, ...], list[int]] = {}
    for k, pod in enumerate(pods):
        key = pod_keys(pod)[1]
        where = at.get(key)
        if where is None:
            at[key] = [k]
        else:
            where.append(k)
    out: list[list[PodSpec]] = []
    hours: list[float] = []
    for where in at.values():
        values = lost_work_h[where]
        if values.min() == values.max():  # the usual class: one workload, one estimate
            out.append([pods[k] for k in where])
            hours.append(float(values[0]))
            continue
        split: dict[float, list[PodSpec]] = {}
        for k, v in zip(where, values.tolist(), strict=True):
            split.setdefault(v, []).append(pods[k])
        out += split.values()
        hours += split.keys()
    return out, np.array(hours, dtype=np.float64)


def place(
    pods: Sequence[PodSpec],
    offerings: Offerings,
    *,
    headroom: FloatArray | None = None,
    available: BoolArray | None = None,
    settings: PlacementSettings | None = None,
    rng: np.random.Generator | None = None,
    sizes: FloatArray | None = None,
    lost_work_h: FloatArray | None = None,
) -> Placement:
    """Choose a pool for every pod, one pod per node unless the pool packs.

    With ``settings.expander == "least-waste"`` the choice follows cluster-autoscaler instead
    (so the simulator can show what it costs): ``rng`` breaks its ties.

    ``headroom`` (P,) is how many more nodes each pool may add (default: max size minus
    current size, ``inf`` without a max). ``available`` (P,) is False for pools that are
    backing off after a failed launch. ``sizes`` (P,) is each pool's desired size (default:
    the pools' ``current_size``): a class whose cheapest pool has equals in other zones is
    spread over them so their sizes even out (:func:`balance_similar`). ``lost_work_h`` (N,)
    is each pod's expected lost work if interrupted (:func:`scaler.core.runtime.lost_work_h`);
    without it every pod is charged the pools' ``risk``.
    """
    settings = settings or PlacementSettings()
    classes, class_lost = _classes(pods, _spot_relevant(lost_work_h, offerings))
    if not classes:
        return Placement((), ())
    n_pools = len(offerings)
    if headroom is None:
        headroom = default_headroom(offerings)
    reps = [c[0] for c in classes]
    if (
        len(reps) == 1 and n_pools and class_lost is None and settings.expander == "cost"
        and not reps[0].preferred and not offerings.any_similar
    ):
        # The usual decision: one class (most often one pod), priced by the pools' own
        # risk. Worked out on its kept row with scalars, unless place() must go on.
        cost_row, ppn_row, _, _ = kept = _kept_rows(reps, offerings, settings)[0]
        if available is not None and not available.all():
            cost_row = np.where(available, cost_row, np.inf)
        one = _place_one(classes[0], cost_row, ppn_row, offerings,
                         offerings.all_open if available is None else available, headroom,
                         kept=cost_row is kept[0])
        if one is not None:
            return one
    counts = np.array([len(c) for c in classes], dtype=np.int64)
    matrix, per_node = open_rows(reps, offerings, settings, class_lost)
    if available is None:
        # Every pool open (no pool backing off, the usual decision): no mask to apply; the
        # all-True one is made only for the rare paths that name it.
        available = offerings.all_open
    elif not available.all():
        matrix = np.where(available[None, :], matrix, np.inf)
    # The reasons name each class's own risk only where it has one of its own.
    dollars = matrix if class_lost is not None else None
    if settings.expander == "least-waste":
        req = np.array([p.requests.as_array() for p in reps], dtype=np.float64)
        matrix = least_waste_matrix(matrix, req.reshape(len(reps), -1), offerings,
                                    rng or np.random.default_rng(0))
    # ndarray methods, not np.argmin and np.all: the same answers without NumPy's Python
    # wrappers, which cost more than the work on a row or two.
    best = matrix.argmin(axis=1) if n_pools else np.zeros(len(reps), dtype=np.int64)
    best_cost = matrix[np.arange(len(reps)), best] if n_pools else np.full(len(reps), np.inf)
    placeable = np.isfinite(best_cost)

    preferred = _prefer(reps, matrix, best, best_cost, offerings) if n_pools else {}
    nodes_needed = np.where(placeable, _nodes_for(counts, per_node, best), 0)
    shares: dict[int, list[tuple[int, int]]] = {}
    if settings.expander == "cost" and offerings.any_similar:
        shares = balance_similar(matrix, best, best_cost, counts, offerings, sizes, preferred)
    spread = spread_spot(matrix, best, best_cost, counts, offerings, settings,
                         skip=shares.keys() | preferred.keys())
    shares.update(spread.shares)
    demand = np.bincount(best[placeable], weights=nodes_needed[placeable], minlength=n_pools)
    for k, parts in shares.items():
        # One pod per node on the pools balanced (packing pools are never split).
        demand[best[k]] -= nodes_needed[k]
        for i, n in parts:
            demand[i] += n
    if n_pools and (demand <= headroom + _EPS).all():
        groups = []
        for c in placeable.nonzero()[0]:
            split = shares.get(int(c))
            if split is None:
                groups.append(
                    _group(
                        classes[c], int(best[c]), int(nodes_needed[c]), matrix[c], offerings,
                        per_node[c], None if dollars is None else dollars[c],
                    )
                )
                continue
            lo = 0
            for i, n in split:
                group = _group(classes[c][lo : lo + n], i, n, matrix[c], offerings, per_node[c],
                               None if dollars is None else dollars[c])
                note = spread.notes.get(int(c))
                groups.append(
                    group if note is None
                    else dataclasses.replace(group, reason=f"{note}; {group.reason}")
                )
                lo += n
        unplaceable = [
            Unplaceable(tuple(classes[c]), _why(reps[c], offerings, available, headroom, matrix[c]))
            for c in (~placeable).nonzero()[0]
        ]
        return Placement(tuple(groups), tuple(unplaceable))
    return _place_with_limits(
        classes,
        reps,
        matrix,
        per_node,
        best_cost,
        offerings,
        available,
        headroom.astype(np.float64).copy(),
        dollars,
    )


def _place_one(
    pods: list[PodSpec],
    row: FloatArray,
    per_node: FloatArray,
    offerings: Offerings,
    available: BoolArray,
    headroom: FloatArray,
    *,
    kept: bool = False,
) -> Placement | None:
    """:func:`place` of one class priced by the pools' own risk, with no preferences and no
    pool similar to another (nothing to balance): the same answer with scalars in place of
    its (1, P) steps, on the class's (P,) ``row`` (read, not written; ``kept``: ``row`` and
    ``per_node`` are a kept row's own arrays, :func:`_kept_rows`, never written); None
    where place() must go on: the cheapest pool is Spot (the burst may be spread), or a
    pool would overflow (the walk down the row). A pool takes no node unless it is the
    cheapest, so only its headroom is compared with the nodes asked; the others must only
    be able to take none (``0 <= headroom + eps``, which is ``headroom >= -eps``)."""
    if kept:
        # The same classes are placed decision after decision: what the row alone decides
        # (its cheapest pool, that group's terms) is kept with the offerings' rows.
        memo = offerings.open_rows.terms
        entry = memo.get(id(row))
        if entry is not None and entry[0] is row and entry[1] is per_node:
            best, ppn, terms = typing.cast(tuple[int, float, _Terms | None], entry[2])
        else:
            best, ppn, terms = found = _cheapest_terms(row, per_node, offerings)
            if len(memo) >= offerings.open_rows.KEPT:
                memo.clear()
            memo[id(row)] = (row, per_node, found)
    else:
        best, ppn, terms = _cheapest_terms(row, per_node, offerings)
    # Python floats and one reduction: the same tests as NumPy scalars and a (P,) mask.
    if terms is None:
        if math.isfinite(float(row[best])):
            return None  # the cheapest pool is Spot
        if not _MIN(headroom) >= -_EPS:
            return None
        return Placement(
            (), (Unplaceable(tuple(pods), _why(pods[0], offerings, available, headroom, row)),)
        )
    nodes = math.ceil(len(pods) / ppn)
    if not (nodes <= headroom.item(best) + _EPS and _MIN(headroom) >= -_EPS):
        return None
    return Placement((_from_terms(terms, pods, nodes, offerings),), ())


_MIN = np.minimum.reduce
"""``ndarray.min`` without its Python wrapper. A NaN headroom comes out as the minimum and
fails ``>= -_EPS``, as it failed the (P,) comparison whose ``all()`` this replaces."""


def _cheapest_terms(
    row: FloatArray, per_node: FloatArray, offerings: Offerings
) -> tuple[int, float, _Terms | None]:
    """``row``'s cheapest pool, its pods per node, and the terms of a group there when it
    fits (a finite cost) and is not Spot (else None)."""
    best = int(row.argmin())
    ppn = float(per_node[best])
    if not math.isfinite(float(row[best])) or offerings.spot[best]:
        return best, ppn, None
    return best, ppn, _terms(best, row, offerings, per_node, None)


def _spot_relevant(lost: FloatArray | None, offerings: Offerings) -> FloatArray | None:
    """``lost`` as an array, or None where it cannot change a cost (no pool is ever
    interrupted): pods are then grouped and priced exactly as without it."""
    rate = offerings.interruptions_per_h
    if lost is None or rate is None or not rate.any():
        return None
    return np.asarray(lost, dtype=np.float64)


def balance_similar(
    matrix: FloatArray,
    best: IntArray,
    best_cost: FloatArray,
    counts: IntArray,
    offerings: Offerings,
    sizes: FloatArray | None,
    preferred: dict[int, BoolArray] | None = None,
) -> dict[int, list[tuple[int, int]]]:
    """Classes whose cheapest pool has equals in other zones (same node, same cost:
    :attr:`Offerings.similar`), spread over those equals so their sizes even out, as
    cluster-autoscaler's balance-similar-node-groups does; this also spreads Spot risk over
    zones. Without it every tie goes to the first by name, the ``-1a`` group.

    Returns class -> [(pool, pods)] for the classes split (one pod per node: packing pools
    are left alone). The (C, P) test is NumPy; only the classes that have equals are walked,
    over their few equal pools."""
    sim = offerings.similar
    finite = np.isfinite(best_cost)
    eq = (
        (sim[None, :] == sim[best][:, None])
        & (matrix <= best_cost[:, None] + _EPS)
        & (finite & ~offerings.pack[best])[:, None]
    )
    for k, mask in (preferred or {}).items():
        eq[k] &= mask
    split = np.flatnonzero(eq.sum(axis=1) > 1)
    if not len(split):
        return {}
    level = (
        np.array([p.current_size for p in offerings.pools], dtype=np.float64)
        if sizes is None
        else sizes.astype(np.float64).copy()
    )
    out: dict[int, list[tuple[int, int]]] = {}
    for c in split:
        members = np.flatnonzero(eq[c])
        share = _water_fill(int(counts[c]), level[members])
        level[members] += share
        out[int(c)] = [(int(i), int(n)) for i, n in zip(members, share, strict=True) if n > 0]
    return out


def _prefer(
    reps: Sequence[PodSpec],
    matrix: FloatArray,
    best: IntArray,
    best_cost: FloatArray,
    offerings: Offerings,
) -> dict[int, BoolArray]:
    """Preferred node affinity breaks ties among pools of equal cost: for each class that
    has preferences, ``best`` moves to the first equal-cost pool with the highest summed
    weight (in place), and the (P,) mask of such pools is returned for balancing."""
    out: dict[int, BoolArray] = {}
    for c, rep in enumerate(reps):
        if not rep.preferred or not np.isfinite(best_cost[c]):
            continue
        score = offerings.preference_scores(rep.preferred)
        tied = matrix[c] <= best_cost[c] + _EPS
        top = tied & (score == score[tied].max())
        best[c] = int(np.argmax(top))
        out[c] = top
    return out


def _water_fill(n: int, sizes: FloatArray) -> IntArray:
    """``n`` new nodes over pools of these sizes, the smallest raised first; equal sizes go
    in the pools' tie-break order. Shape of ``sizes``."""
    k = len(sizes)
    order = np.argsort(sizes, kind="stable")
    s = sizes[order]
    level, m, left = float(s[0]), 1, n
    while m < k and (s[m] - level) * m <= left:
        left -= int((s[m] - level) * m)
        level = float(s[m])
        m += 1
    add = np.zeros(k, dtype=np.int64)
    add[:m] = (level - s[:m]).astype(np.int64) + left // m
    out = np.zeros(k, dtype=np.int64)
    out[order] = add
    # The remainder, one each, to the pools at the level that come first in tie-break order.
    out[np.sort(order[:m])[: left % m]] += 1
    return out


def default_headroom(offerings: Offerings) -> FloatArray:
    return np.array(
        [
            np.inf if p.max_size is None else max(p.max_size - p.current_size, 0)
            for p in offerings.pools
        ],
        dtype=np.float64,
    )


def cost_matrix(
    reps: Sequence[PodSpec],
    req: FloatArray,
    offerings: Offerings,
    available: BoolArray,
    settings: PlacementSettings,
    *,
    columns: IntArray | None = None,
    lost_work_h: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """(C, P) USD/hour per pod, ``inf`` where the class cannot run; and (C, P) pods per node.
    With ``columns`` (pool indices), only those pools: (C, len(columns)), the same values.
    With ``lost_work_h`` (C,), a class's Spot risk is the pools' interruptions per hour x its
    lost work x their price (a (C, P) term) instead of the pools' ``risk``.

    Computed in chunks of classes so the (chunk x P x R) fit test stays small.
    """
    pick: IntArray | slice = slice(None) if columns is None else columns
    n_classes = len(reps)
    n_pools = len(offerings) if columns is None else len(columns)
    req = requestless_floor(req, settings)
    matrix = np.full((n_classes, n_pools), np.inf)
    per_node = np.ones((n_classes, n_pools))
    if n_pools == 0:
        return matrix, per_node
    alloc = offerings.allocatable[pick]
    pack, has_gpu, pool_cost = offerings.pack[pick], offerings.has_gpu[pick], offerings.cost[pick]
    any_pack = bool(pack.any())
    masks = np.stack([offerings.constraint_mask(p)[pick] for p in reps]) & available[pick][None, :]
    rates = offerings.interruptions_per_h
    lost: FloatArray | None = None
    price = rate = pool_cost
    if lost_work_h is not None and rates is not None and bool(rates[pick].any()):
        # Per class: price x (1 + interruptions/h x its lost hours), a (C, P) broadcast.
        lost, price, rate = lost_work_h, offerings.price[pick], rates[pick]
    step = max(1, settings.chunk_classes)
    for lo in range(0, n_classes, step):
        hi = min(lo + step, n_classes)
        r = req[lo:hi]
        fits = np.all(r[:, None, :] <= alloc[None, :, :] + _EPS, axis=2)
        # A GPU node is never bought for a pod that asks for no GPU.
        if settings.never_gpu_for_cpu_pods:
            fits &= ~(has_gpu[None, :] & (r[:, GPU] == 0)[:, None])
        feasible = fits & masks[lo:hi]
        if lost is not None:
            cost = spot_priced(price[None, :], rate[None, :], lost[lo:hi, None])
        else:
            cost = np.broadcast_to(pool_cost, feasible.shape)
        if any_pack:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(r[:, None, :] > 0, alloc[None, :, :] / r[:, None, :], np.inf)
            ppn = np.floor(ratio.min(axis=2) + _EPS)
            ppn = np.where(pack[None, :], np.maximum(ppn, 1.0), 1.0)
            # Hostname anti-affinity: kube-scheduler puts one such pod per node.
            solo = np.array([p.one_per_node for p in reps[lo:hi]], dtype=bool)
            ppn = np.where(solo[:, None], 1.0, ppn)
            per_node[lo:hi] = ppn
            cost = cost / ppn
        matrix[lo:hi] = np.where(feasible, cost, np.inf)
    return matrix, per_node


def spot_priced(
    price: FloatArray, interruptions_per_h: FloatArray, lost_work_h: FloatArray | float
) -> FloatArray:
    """USD/hour of a node for a pod an interruption costs ``lost_work_h`` hours of work:
    price x (1 + interruptions/h x lost hours). The one formula :func:`cost_matrix`, the
    kept rows (:func:`open_rows`) and the admission tier cache price by: their answers must
    agree to the bit."""
    return price * (1.0 + interruptions_per_h * lost_work_h)


def open_rows(
    reps: Sequence[PodSpec],
    offerings: Offerings,
    settings: PlacementSettings,
    lost_work_h: FloatArray | None = None,
    *,
    columns: IntArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """:func:`cost_matrix` of ``reps`` over every pool of ``offerings`` (only ``columns``,
    when given), every pool available: the same values, from rows kept on the offerings
    (:class:`~scaler.core.offerings.OpenRows`) and computed only for classes not asked
    about before. A row depends on its class alone (each cell on its own pool), so the key
    is all ``cost_matrix`` reads of a pod: its constraints and whether it wants a node to
    itself. A class's Spot risk by ``lost_work_h`` is priced from its kept fit and pods per
    node, as ``cost_matrix`` prices it, not kept (estimates vary pod by pod). Availability
    is a mask the caller applies (:func:`place` does)."""
    found = _kept_rows(reps, offerings, settings)
    pick: IntArray | slice = slice(None) if columns is None else columns
    width = len(offerings) if columns is None else len(columns)
    shape = (len(found), width)
    rates = offerings.interruptions_per_h
    spot = lost_work_h is not None and rates is not None and bool(rates[pick].any())
    if len(found) == 1 and not spot:
        # The usual ask, one class: its row as a (1, width) copy, without a list to convert.
        cost_row, ppn_row, _, _ = found[0]
        return cost_row[pick].reshape(shape).copy(), ppn_row[pick].reshape(shape).copy()
    per_node_out = np.array([r[1][pick] for r in found]).reshape(shape)
    if not spot:
        return np.array([r[0][pick] for r in found]).reshape(shape), per_node_out
    assert lost_work_h is not None and rates is not None
    # cost_matrix's Spot branch, with the same operations in the same order.
    feasible = np.array([r[2][pick] for r in found]).reshape(shape)
    lost = np.asarray(lost_work_h, dtype=np.float64)
    cost = spot_priced(offerings.price[pick][None, :], rates[pick][None, :], lost[:, None])
    if bool(offerings.pack[pick].any()):
        cost = cost / per_node_out
    return np.where(feasible, cost, np.inf), per_node_out


_Row = tuple[FloatArray, FloatArray, BoolArray, frozenset[str]]
"""A kept row (:class:`~scaler.core.offerings.OpenRows`): cost, pods per node, where the
class fits, and the names of those pools."""


def _kept_rows(
    reps: Sequence[PodSpec], offerings: Offerings, settings: PlacementSettings
) -> list[_Row]:
    """The kept row of each of ``reps``, computing (and keeping) the ones not asked before."""
    kept = offerings.open_rows.for_settings(settings)
    row_keys = [pod_keys(p)[2] for p in reps]
    rows = [kept.get(k) for k in row_keys]
    if None in rows:
        missing: dict[tuple[object, ...], PodSpec] = {}
        for key, pod, row in zip(row_keys, reps, rows, strict=True):
            if row is None:
                missing.setdefault(key, pod)
        new = list(missing.values())
        req = np.array([p.requests.as_array() for p in new]).reshape(len(new), -1)
        matrix, per_node = cost_matrix(
            new, req, offerings, np.ones(len(offerings), bool), settings
        )
        if len(kept) + len(new) > offerings.open_rows.KEPT:
            kept.clear()
        fresh_rows: dict[tuple[object, ...], _Row] = {}
        pools = offerings.pools
        for i, fresh in enumerate(missing):
            fit = np.isfinite(matrix[i])
            names = frozenset(pools[j].name for j in np.flatnonzero(fit).tolist())
            fresh_rows[fresh] = kept[fresh] = (matrix[i], per_node[i], fit, names)
        rows = [fresh_rows[k] if r is None else r for k, r in zip(row_keys, rows, strict=True)]
    return typing.cast(list[_Row], rows)


def open_cells(
    reps: Sequence[PodSpec], offerings: Offerings, settings: PlacementSettings,
    columns: Sequence[int],
) -> tuple[list[list[float]], list[list[float]]]:
    """:func:`open_rows` over a few ``columns`` (no Spot risk by lost work), as Python
    floats: ``open_rows(reps, ..., columns=columns)`` as lists, without the arrays."""
    found = _kept_rows(reps, offerings, settings)
    # ndarray.item per cell: for a few cells cheaper than take() and tolist(), same floats.
    return (
        [[cost.item(i) for i in columns] for cost, _, _, _ in found],
        [[ppn.item(i) for i in columns] for _, ppn, _, _ in found],
    )

def fitting_pools(
    pods: Sequence[PodSpec], offerings: Offerings, settings: PlacementSettings
) -> AbstractSet[str]:
    """Names of the pools some of ``pods`` fit, every pool open (where their
    :func:`open_rows` are finite): each kept row carries its own, worked out with it."""
    distinct: dict[tuple[object, ...], PodSpec] = {}
    for pod in pods:
        distinct.setdefault(pod_keys(pod)[2], pod)
    sets = [names for _, _, _, names in _kept_rows(list(distinct.values()), offerings, settings)]
    if len(sets) == 1:
        return sets[0]
    return frozenset().union(*sets)


def requestless_floor(req: FloatArray, settings: PlacementSettings) -> FloatArray:
    """(C, R) requests with a zero CPU or memory request raised to the requestless floor
    (PlacementSettings.requestless_cpu_milli / requestless_memory_mib)."""
    floor = np.zeros(req.shape[1])
    floor[CPU], floor[MEM] = settings.requestless_cpu_milli, settings.requestless_memory_mib
    if not floor.any():
        return req
    return np.where(req == 0, floor[None, :], req)


def least_waste_matrix(
    cost: FloatArray, req: FloatArray, offerings: Offerings, rng: np.random.Generator
) -> FloatArray:
    """cluster-autoscaler's least-waste expander as a (C, P) score, ``inf`` where infeasible.

    Score = unused CPU fraction + unused memory fraction of the new node; GPUs are not
    scored. Equal scores (every pool scores 2.0 for a pod with no requests) are broken by a
    seeded random draw, as CA's fallback random expander does.
    """
    alloc = offerings.allocatable
    with np.errstate(divide="ignore", invalid="ignore"):
        cpu = np.where(alloc[None, :, CPU] > 0, 1 - req[:, None, CPU] / alloc[None, :, CPU], 1.0)
        mem = np.where(alloc[None, :, MEM] > 0, 1 - req[:, None, MEM] / alloc[None, :, MEM], 1.0)
    score = np.round(cpu + mem, 6) + rng.random(cost.shape) * 1e-7
    return np.where(np.isfinite(cost), score, np.inf)


def _nodes_for(counts: IntArray, per_node: FloatArray, pool: IntArray) -> IntArray:
    ppn = per_node[np.arange(len(counts)), pool] if per_node.size else np.ones(len(counts))
    return np.ceil(counts / ppn).astype(np.int64)


def _group(
    pods: Sequence[PodSpec],
    i: int,
    nodes: int,
    row: FloatArray,
    offerings: Offerings,
    per_node: FloatArray,
    dollars: FloatArray | None = None,
) -> PlacedGroup:
    """``row`` is what was minimised: dollars, or least-waste scores (then named so);
    ``dollars`` the class's USD/hour per pod (default: the pools' ``cost``)."""
    return _from_terms(_terms(i, row, offerings, per_node, dollars), pods, nodes, offerings)


_Terms = tuple[int, float, float, float, int, str | None, float | None, str, int]
"""What a group's pool and row make of it, whatever its pods: (pool index, price, cost,
risk, fitting pools, runner-up, its cost, reason, pods per node)."""


def _terms(
    i: int, row: FloatArray, offerings: Offerings, per_node: FloatArray,
    dollars: FloatArray | None,
) -> _Terms:
    """:func:`_group`'s terms for pool ``i`` of ``row``."""
    finite = np.isfinite(row)
    n_fit = int(np.count_nonzero(finite))
    masked = row.copy()
    masked[i] = np.inf
    second = int(masked.argmin())
    has_second = bool(np.isfinite(masked[second]))
    price = float(offerings.price[i])
    ppn = int(per_node[i])
    if dollars is None:
        risk = float(offerings.risk[i])
        cost = float(offerings.cost[i]) / ppn
        second_cost = float(offerings.cost[second]) / int(per_node[second]) if has_second else None
    else:
        cost = float(dollars[i])
        risk = max(cost * ppn - price, 0.0)
        second_cost = float(dollars[second]) if has_second else None
    by_dollars = abs(float(row[i]) - cost) < 1e-9
    what = f"${price:.4f}/h"
    if risk:
        what += f" + ${risk:.4f}/h Spot risk"
    if ppn > 1:
        what += f", {ppn} pods per node"
    if by_dollars:
        reason = f"cheapest of {n_fit} fitting pools ({what})"
    else:
        reason = f"least waste of {n_fit} fitting pools (score {row[i]:.3f}, {what})"
    runner_up = offerings.pools[second].name if has_second else None
    if has_second:
        reason += f"; next {runner_up} ${second_cost:.4f}/h"
    return i, price, cost, risk, n_fit, runner_up, second_cost, reason, ppn


def _from_terms(
    terms: _Terms, pods: Sequence[PodSpec], nodes: int, offerings: Offerings
) -> PlacedGroup:
    i, price, cost, risk, n_fit, runner_up, second_cost, reason, ppn = terms
    return PlacedGroup(
        pods=tuple(pods),
        pool=offerings.pools[i],
        pool_index=i,
        instance_type=offerings.instance_type[i],
        nodes=nodes,
        price_usd_per_hour=price,
        cost_usd_per_hour=cost,
        zone=offerings.zone_for(i, pods[0]),
        risk_usd_per_hour=risk,
        fitting_pools=n_fit,
        runner_up=runner_up,
        runner_up_cost_usd_per_hour=second_cost,
        reason=reason,
        pods_per_node=ppn,
    )


def _why(
    pod: PodSpec, offerings: Offerings, available: BoolArray, headroom: FloatArray, row: FloatArray
) -> str:
    return unplaceable_reason(pod, offerings, available=available, headroom=headroom)


def _place_with_limits(
    classes: list[list[PodSpec]],
    reps: list[PodSpec],
    matrix: FloatArray,
    per_node: FloatArray,
    best_cost: FloatArray,
    offerings: Offerings,
    available: BoolArray,
    headroom: FloatArray,
    dollars: FloatArray | None = None,
) -> Placement:
    """Some pool would overflow: walk classes, higher priority first, then dearest first
    (big pods have fewest options), each down its own row in cost order, taking what
    headroom is left."""
    groups: list[PlacedGroup] = []
    unplaceable: list[Unplaceable] = []
    order = sorted(
        range(len(classes)),
        key=lambda c: (
            -reps[c].priority,
            -best_cost[c] if np.isfinite(best_cost[c]) else -np.inf,
            c,
        ),
    )
    start_headroom = headroom.copy()
    for c in order:
        row = matrix[c]
        pods = list(classes[c])
        if not np.isfinite(best_cost[c]):
            unplaceable.append(
                Unplaceable(tuple(pods), _why(reps[c], offerings, available, start_headroom, row))
            )
            continue
        full: list[str] = []
        for i in np.argsort(row, kind="stable"):
            if not pods or not np.isfinite(row[i]):
                break
            ppn = int(per_node[c, i])
            room = headroom[i] * ppn
            if room < 1:
                pool = offerings.pools[i]
                full.append(f"{pool.name} at max {pool.max_size}")
                continue
            take = int(min(len(pods), room))
            nodes = math.ceil(take / ppn)
            headroom[i] -= nodes
            group = _group(pods[:take], int(i), nodes, row, offerings, per_node[c],
                           None if dollars is None else dollars[c])
            if full:
                group = dataclasses.replace(
                    group, reason=f"cheaper pools full ({', '.join(full[:3])}); {group.reason}"
                )
            groups.append(group)
            pods = pods[take:]
            if pods:
                full.append(f"{offerings.pools[i].name} at max {offerings.pools[i].max_size}")
        if pods:
            fitting = [offerings.pools[i] for i in np.flatnonzero(np.isfinite(row))]
            names = ", ".join(f"{p.name} (max {p.max_size})" for p in fitting[:5])
            more = f" and {len(fitting) - 5} more" if len(fitting) > 5 else ""
            unplaceable.append(
                Unplaceable(tuple(pods), f"every pool that fits is at its max size: {names}{more}")
            )
    return Placement(tuple(groups), tuple(unplaceable))
