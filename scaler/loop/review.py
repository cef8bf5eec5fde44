"""The review: every ``REVIEW_INTERVAL_S``, where the money goes, and the migrations that pay.

:meth:`Reconciler.review <scaler.loop.reconciler.Reconciler.review>` prices every workload
pod against its cheapest fit, and evicts restartable misplaced pods (and those worth moving
back after a Spot reclaim) within the migration budget. Live, :func:`review_loop` runs it on
the leader beside the control loop and hands each result to the metrics; the simulator calls
it every ``REVIEW_INTERVAL_S`` of simulated time (:mod:`simulations.engine`), so migrations
act in a simulation as they would live.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NoReturn

import anyio

from scaler.loop.reconciler import Reconciler, Review
from scaler.telemetry import ReviewFailed

REVIEW_INTERVAL_S: Final = 60.0
"""Cost and waste for /metrics, and migrations: waste moves in minutes, and a review (one
snapshot, one cost matrix) a minute costs nothing."""


async def review_loop(
    reconciler: Reconciler,
    report: Callable[[Review], None] | None = None,
    every_s: float = REVIEW_INTERVAL_S,
) -> NoReturn:
    """A review now and every ``every_s`` seconds, each handed to ``report``, until
    cancelled. A failed review is reported to the reconciler's observer and tried again at
    the next interval: it never stops the leader's other tasks."""
    while True:
        try:
            review = await reconciler.review()
        except Exception as e:  # the task must outlive any one bad review
            reconciler.observe(ReviewFailed(f"{type(e).__name__}: {e}"))
        else:
            if report is not None:
                report(review)
            # It prices every running pod: not kept through the sleep, so the next review
            # is not built while this one is still held.
            del review
        await anyio.sleep(every_s)


__all__ = ["REVIEW_INTERVAL_S", "review_loop"]
