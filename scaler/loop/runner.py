"""The control loop: tick, then sleep until the cluster changes or the decision's wake time.

It knows only ports: the reconciler, a source of change notifications, a clock. The task
group that runs it beside the watches, the leader election and the HTTP server is built in
:mod:`scaler.app`.
"""

from __future__ import annotations

import random
from typing import Protocol

import anyio
from anyio.abc import TaskGroup

from scaler.core.actions import Decision
from scaler.loop.reconciler import Reconciler
from scaler.telemetry import ReconcileFailed

RESYNC_S = 30.0
"""Tick at least this often with no change at all: pools change on the AWS side (someone
edits an ASG) without any watch event telling us."""
DEBOUNCE_S = 0.05
"""After a change, let the burst it belongs to land before looking (a Dask cluster's 50
pods arrive as 50 watch events within milliseconds)."""
ERROR_BACKOFF_S = (1.0, 60.0)
"""First and longest pause after a failed tick; doubling, with jitter."""


class Changes(Protocol):
    @property
    def generation(self) -> int: ...

    async def wait_changed(self, since: int) -> int: ...


async def control_loop(
    reconciler: Reconciler,
    changes: Changes,
    *,
    once: bool = False,
    resync_s: float = RESYNC_S,
    debounce_s: float = DEBOUNCE_S,
) -> Decision | None:
    """Reconcile until cancelled (or once). A failing tick is reported to the observer and
    retried after a capped, jittered backoff; it never ends the loop."""
    async with anyio.create_task_group() as drains:
        decision = await _loop(reconciler, changes, drains, once, resync_s, debounce_s)
    return decision


async def _loop(
    reconciler: Reconciler,
    changes: Changes,
    drains: TaskGroup,
    once: bool,
    resync_s: float,
    debounce_s: float,
) -> Decision | None:
    failures = 0
    while True:
        seen = changes.generation
        try:
            decision = await reconciler.tick(spawn=drains.start_soon)
        except Exception as e:  # the loop must outlive any one bad tick
            failures += 1
            first, cap = ERROR_BACKOFF_S
            pause = min(cap, first * 2 ** (failures - 1)) * random.uniform(0.8, 1.2)
            reconciler.observe(ReconcileFailed(f"{type(e).__name__}: {e}", pause))
            if once:
                raise
            await anyio.sleep(pause)
            continue
        failures = 0
        if once:
            return decision
        now = reconciler.clock.now()
        wait = resync_s
        if decision.wake_at_s is not None:
            wait = max(0.0, min(resync_s, decision.wake_at_s - now))
        with anyio.move_on_after(wait):
            await changes.wait_changed(seen)
            await anyio.sleep(debounce_s)
