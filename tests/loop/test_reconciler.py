"""The reconciler through the recording fake ports the simulator also uses."""

from __future__ import annotations

from typing import Any

from scaler.loop.reconciler import WRITE_RETRY_S, Reconciler
from scaler.ports import Throttled
from simulations.testing import pod, pool, simulate


def test_a_failed_scale_up_write_is_retried_soon_not_at_the_next_event():
    def failing_once(**kwargs: Any) -> Reconciler:
        kwargs["fleet"].fail_next("set_desired", Throttled("Rate exceeded"))
        return Reconciler(**kwargs)

    sim = simulate(
        [pod("nb", memory="4Gi", arrival_s=0, duration_s=3600)],
        pools=[pool("m5.large", max_size=5)],
        reconciler_factory=failing_once,
    )
    calls = sim.fleet.calls_to("set_desired")
    assert len(calls) == 2, calls
    first, second = calls
    # The first write failed; with nothing else happening the next try comes WRITE_RETRY_S
    # later (the batch window put the first at 1 s).
    assert second.at_s - first.at_s == WRITE_RETRY_S
    assert sim.scorecard().pods_lost == 0
