"""A scale-up write that keeps failing backs its pool off, so the pods move on (through the
reconciler and the recording fake ports the simulator also uses)."""

from __future__ import annotations

import itertools
from typing import Any

from scaler.commands.plan import backing_off, print_plan
from scaler.core.actions import Decision
from scaler.loop.actuation import BACKOFF_RETRY_S, WRITE_RETRY_S
from scaler.loop.reconciler import Reconciler
from scaler.ports import PortError, Rejected, Throttled
from simulations.testing import pod, pool, simulate

# $0.086/h and $0.096/h: the admission webhook pins the pod to both (one tier).
POOLS = [pool("m5a.large", max_size=5), pool("m5.large", max_size=5)]


def _failing(*errors: PortError) -> Any:
    def factory(**kwargs: Any) -> Reconciler:
        for e in errors:
            kwargs["fleet"].fail_next("set_desired", e)
        return Reconciler(**kwargs)

    return factory


def _writes(sim: Any) -> list[tuple[float, str]]:
    return [(c.at_s, c.args[0]) for c in sim.fleet.calls_to("set_desired")]


def test_a_refused_write_backs_the_pool_off_at_once_and_the_pod_goes_to_the_next_pool():
    denied = Rejected("SetDesiredCapacity m5a.large: AccessDenied: not authorized")
    sim = simulate(
        [pod("nb", memory="4Gi", arrival_s=0, duration_s=600)],
        pools=POOLS,
        reconciler_factory=_failing(denied),
    )
    (t0, first), (t1, second) = _writes(sim)
    assert (first, second) == ("m5a.large", "m5.large")
    assert t1 - t0 == BACKOFF_RETRY_S
    (event,) = [c for c in sim.cluster.calls_to("record_event") if c.args[1] == "FailedScaleUp"]
    key, _, message, warning = event.args
    assert key == "default/nb" and warning
    assert "m5a.large skipped for 180s" in message and "AccessDenied" in message
    assert sim.scorecard().pods_lost == 0


def test_a_throttled_write_is_retried_and_backs_off_only_after_three_in_a_row():
    rate = Throttled("Rate exceeded")
    sim = simulate(
        [pod("nb", memory="4Gi", arrival_s=0, duration_s=600)],
        pools=POOLS,
        reconciler_factory=_failing(rate, rate, rate),
    )
    writes = _writes(sim)
    assert [p for _, p in writes] == ["m5a.large"] * 3 + ["m5.large"]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(writes)]
    assert gaps == [WRITE_RETRY_S, WRITE_RETRY_S, BACKOFF_RETRY_S]


def test_two_throttled_writes_then_success_stay_on_the_cheapest_pool():
    rate = Throttled("Rate exceeded")
    sim = simulate(
        [pod("nb", memory="4Gi", arrival_s=0, duration_s=600)],
        pools=POOLS,
        reconciler_factory=_failing(rate, rate),
    )
    assert [p for _, p in _writes(sim)] == ["m5a.large"] * 3
    assert not [c for c in sim.cluster.calls_to("record_event") if c.args[1] == "FailedScaleUp"]


def test_scaler_plan_lists_a_pool_backing_off_with_its_reason(capsys):
    denied = Rejected("SetDesiredCapacity m5a.large: AccessDenied: not authorized")
    sim = simulate(
        [pod("nb", memory="4Gi", arrival_s=0, duration_s=600)],
        pools=POOLS,
        reconciler_factory=_failing(denied),
        until_s=60,
    )
    memory = sim.reconciler.memory
    (t0, _), _ = _writes(sim)
    print_plan(Decision(now_s=t0 + 30), [], backing_off=backing_off(memory, t0 + 30))
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    assert "pools backing off" in flat
    row = next(line for line in out.splitlines() if "m5a.large" in line and "150 s" in line)
    assert "scale-up refused" in row
    assert "AccessDenied" in out
