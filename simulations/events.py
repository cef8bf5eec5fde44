"""The event queue: a heap ordered by (time, phase, sequence), so a run is deterministic.

World events at a time come before the reconcile tick at that same time (phase 0 before
phase 1): the tick sees everything that happened at that instant, as a controller woken by
those watch events would. Equal times and phases keep insertion order.
"""

from __future__ import annotations

import heapq
import itertools
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


class EventQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, str, Any]] = []
        self._seq = itertools.count()

    def push(self, t: float, kind: str, payload: Any = None, *, phase: int = WORLD) -> None:
        heapq.heappush(self._heap, (t, phase, next(self._seq), kind, payload))

    def pop(self) -> tuple[float, int, str, Any]:
        t, phase, _, kind, payload = heapq.heappop(self._heap)
        return t, phase, kind, payload

    def pop_at(self, t: float, phase: int) -> tuple[str, Any] | None:
        """(kind, payload) of the next event if it is due at ``t`` in ``phase``, else None
        (nothing popped): one call per event of a batch, not a peek and a pop."""
        heap = self._heap
        if heap and heap[0][0] == t and heap[0][1] == phase:
            _, _, _, kind, payload = heapq.heappop(heap)
            return kind, payload
        return None

    def peek(self) -> tuple[float, int] | None:
        """(time, phase) of the next event, or None when empty."""
        if not self._heap:
            return None
        head = self._heap[0]
        return head[0], head[1]

    def __len__(self) -> int:
        return len(self._heap)
