"""The event queue: ordered by (time, phase, sequence), so a run is deterministic.

World events at a time come before the reconcile tick at that same time (phase 0 before
phase 1): the tick sees everything that happened at that instant, as a controller woken by
those watch events would. Equal times and phases keep insertion order.

Events known before the run starts (a trace's arrivals: 8,151 on openb) wait in a list
sorted once, beside the heap of what the run makes happen: each push and pop costs the log
of the heap's size, which this keeps to the few hundred events in flight, not thousands.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from typing import Any, Final

ARRIVE: Final = "arrive"
NODE_READY: Final = "node-ready"
GPU_READY: Final = "gpu-advertised"
POD_DONE: Final = "pod-done"
SPOT_NOTICE: Final = "spot-notice"
NODE_RECLAIMED: Final = "node-reclaimed"
POOL_RECLAIM: Final = "pool-reclaim"
LAUNCH_FAILED: Final = "launch-failed"
TICK: Final = "tick"

WORLD: Final = 0
RECONCILE: Final = 1

_Entry = tuple[float, int, int, str, Any]
"""(time, phase, sequence, kind, payload): the sequence is unique, so entries order without
ever comparing kinds or payloads."""


class EventQueue:
    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._known: list[_Entry] = []
        """Events pushed with :meth:`push_known`, latest first (the next is popped off the
        end)."""
        self._seq = itertools.count()

    def push(self, t: float, kind: str, payload: Any = None, *, phase: int = WORLD) -> None:
        heapq.heappush(self._heap, (t, phase, next(self._seq), kind, payload))

    def push_known(self, events: Iterable[tuple[float, str, Any]], *, phase: int = WORLD) -> None:
        """Push each (time, kind, payload) of ``events``, in that order, as :meth:`push`
        would: they come out exactly as if pushed one by one."""
        seq = self._seq
        known = [(t, phase, next(seq), kind, payload) for t, kind, payload in events]
        self._known = sorted([*self._known, *known], reverse=True)

    # pop_until and pop_at take the earlier of the heap's first and the known list's last
    # themselves: one call per step, not two (86,000 steps on DLRM).

    def pop_until(self, end: float) -> tuple[float, int, str, Any] | None:
        """(time, phase, kind, payload) of the next event if it is due at or before ``end``,
        else None (nothing popped, or nothing left): one call per step."""
        heap, known = self._heap, self._known
        if known and (not heap or known[-1] < heap[0]):
            head = known[-1]
            if head[0] > end:
                return None
            known.pop()
        elif heap:
            head = heap[0]
            if head[0] > end:
                return None
            heapq.heappop(heap)
        else:
            return None
        return head[0], head[1], head[3], head[4]

    def pop_at(self, t: float, phase: int) -> tuple[str, Any] | None:
        """(kind, payload) of the next event if it is due at ``t`` in ``phase``, else None
        (nothing popped): one call per event of a batch."""
        heap, known = self._heap, self._known
        if known and (not heap or known[-1] < heap[0]):
            head = known[-1]
            if head[0] != t or head[1] != phase:
                return None
            known.pop()
        elif heap:
            head = heap[0]
            if head[0] != t or head[1] != phase:
                return None
            heapq.heappop(heap)
        else:
            return None
        return head[3], head[4]

    def __len__(self) -> int:
        return len(self._heap) + len(self._known)
