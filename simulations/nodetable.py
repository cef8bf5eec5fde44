"""The live nodes as kube-scheduler sees them: arrays with one row per node slot (what it
has allocatable, what its pods use, whether it is schedulable, its pool and zone), kept by
the world as nodes come, change and go, and read by :mod:`simulations.kubesched`."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

from scaler.core.model import GPU, BoolArray, FloatArray, IntArray, R

if TYPE_CHECKING:
    from simulations.objects import SimNode


class NodeTable:
    """Live nodes as arrays, one row per slot (slots are reused). Shapes: N slots, R
    resources in the core's axis order."""

    def __init__(self, capacity: int = 64) -> None:
        self.size = 0
        """Slots ever used (the high-water mark); rows at or past it are empty."""
        self.alloc: FloatArray = np.zeros((capacity, R))
        self.used: FloatArray = np.zeros((capacity, R))
        self.used_rows: list[FloatArray] = list(self.used)
        """Each slot's row of ``used``, as a view: a bind adds to it in place, without
        indexing the table (a view, a sum and a write back) each time."""
        self.ok: BoolArray = np.zeros(capacity, dtype=bool)
        """Schedulable: Ready, GPUs advertised, not cordoned."""
        self.pool: IntArray = np.zeros(capacity, dtype=np.int64)
        """Offerings index of the node's pool."""
        self.zone: IntArray = np.full(capacity, -1, dtype=np.int64)
        self.exclusive: IntArray = np.zeros(capacity, dtype=np.int64)
        """Exclusive pods bound to the node (0 or 1, as kube-scheduler enforces)."""
        self.nodes: list[SimNode | None] = []
        self.pool_of: list[int] = []
        """``pool`` as Python ints, for the checks a few slots at a time."""
        self.alloc_of: list[list[float]] = []
        """Each slot's row of ``alloc`` as Python floats, for the same checks (write
        ``alloc`` only through :meth:`add`, :meth:`set_gpus` and :meth:`remove`)."""
        self.ready_in_pool: dict[int, set[int]] = {}
        """The slots of the schedulable nodes, by pool (offerings index); pools that never had
        one are absent. A class admitting a few pools tries only theirs."""
        self.open_in_pool: dict[int, set[int]] = {}
        """Of those, the nodes that hold no exclusive pod: an exclusive class's candidates."""
        self._free: list[int] = []
        self._zone_ids: dict[str, int] = {}
        self._ready: IntArray | None = None
        """The schedulable slots, ascending, until a slot's ``ok`` changes."""

    def set_ok(self, slot: int, ok: bool) -> None:
        """Say whether the node at ``slot`` is schedulable (write ``ok`` only through here:
        it keeps :meth:`ready` and the counts by pool current)."""
        if self.ok.item(slot) != ok:  # a Python bool: numpy's scalar compare costs 10x
            self.ok[slot] = ok
            self._ready = None
            pool = self.pool_of[slot]
            ready = self.ready_in_pool.setdefault(pool, set())
            opened = self.open_in_pool.setdefault(pool, set())
            if ok:
                ready.add(slot)
                if not self.exclusive.item(slot):
                    opened.add(slot)
            else:
                ready.discard(slot)
                opened.discard(slot)

    def hold_exclusive(self, slot: int, step: int) -> None:
        """An exclusive pod was bound to (``step`` 1) or left (-1) the node at ``slot``
        (write ``exclusive`` only through here, but in :meth:`add` and :meth:`remove`)."""
        held = self.exclusive.item(slot)
        self.exclusive[slot] = held + step
        if self.ok.item(slot) and (held == 0) != (held + step == 0):
            opened = self.open_in_pool.setdefault(self.pool_of[slot], set())
            if held:
                opened.add(slot)
            else:
                opened.discard(slot)

    def ready(self) -> IntArray:
        """The schedulable slots, ascending (the same array until one changes: read only)."""
        if self._ready is None:
            self._ready = np.flatnonzero(self.ok[: self.size])
        return self._ready

    def zone_id(self, zone: str | None) -> int:
        if zone is None:
            return -1
        return self._zone_ids.setdefault(zone, len(self._zone_ids))

    def add(self, node: SimNode, pool_index: int, alloc: FloatArray, zone: str | None) -> int:
        if self._free:
            slot = heapq.heappop(self._free)  # the lowest free slot, as ties go to it
        else:
            slot = self.size
            self.size += 1
            if slot >= len(self.ok):
                self._grow()
            self.nodes.append(None)
            self.pool_of.append(pool_index)
            self.alloc_of.append([])
        self.nodes[slot] = node
        self.alloc[slot] = alloc
        self.alloc_of[slot] = self.alloc[slot].tolist()
        # What it uses, its exclusive pods and whether it is schedulable are nothing
        # already: a slot is zeros when the table grows, and remove() clears it.
        self.pool[slot] = pool_index
        self.pool_of[slot] = pool_index
        self.zone[slot] = self.zone_id(zone)
        return slot

    def set_gpus(self, slot: int, gpus: int) -> None:
        """The node at ``slot`` advertises ``gpus`` GPUs."""
        self.alloc[slot, GPU] = gpus
        self.alloc_of[slot] = self.alloc[slot].tolist()

    def remove(self, slot: int) -> None:
        self.nodes[slot] = None
        self.set_ok(slot, False)
        self.alloc[slot] = 0.0
        self.alloc_of[slot] = self.alloc[slot].tolist()
        self.used[slot] = 0.0
        self.exclusive[slot] = 0
        heapq.heappush(self._free, slot)

    def _grow(self) -> None:
        n = len(self.ok) * 2
        self.alloc = _resized(self.alloc, n)
        self.used = _resized(self.used, n)
        self.used_rows = list(self.used)
        self.ok = _resized(self.ok, n)
        self.pool = _resized(self.pool, n)
        self.exclusive = _resized(self.exclusive, n)
        zone = np.full(n, -1, dtype=np.int64)
        zone[: len(self.zone)] = self.zone
        self.zone = zone


def _resized(a: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, *a.shape[1:]), dtype=a.dtype)
    out[: len(a)] = a
    return out
