"""The simulator runs the live loop's own pipelines, not copies: the interruption pipeline
over the simulated InterruptionFeed, and the admission chooser the kube webhook uses."""

from __future__ import annotations

from typing import Any

import pytest

import scaler.loop.admission
from scaler.core.model import PodSpec
from scaler.core.pinning import Pin
from scaler.ports import Throttled
from simulations.testing import pod, pool, simulate
from tests.simulations.test_engine import BIG, SMALL, interrupted_once, three_pods


def test_spot_warnings_reach_the_reconciler_through_the_feed_parsed_and_acked() -> None:
    sim = interrupted_once("reconciler")
    sc = sim.scorecard()
    feed = sim.feed
    # Each warning went in as an EventBridge message, was parsed by the core's parser,
    # acted on, and deleted; nothing was left in the queue or moved aside.
    assert feed.counts["spot_interruption"] == sc.interruptions >= 1
    assert feed.counts["acked"] == sc.interruptions
    assert not feed.queue and not feed.aside
    notices = [t for t, w, _ in sim.world.timeline if w == "spot-notice"]
    assert [c.at_s for c in feed.calls_to("ack")] == notices
    # respond() remembered the deadline the message carried: the warning's time + 120 s.
    assert len(sim.cluster.calls_to("cordon")) == sc.interruptions


def test_nth_and_none_handlers_put_nothing_in_the_feed() -> None:
    for handler in ("nth", "none"):
        sim = interrupted_once(handler)
        assert sim.feed.calls == [] and sim.feed.counts["received"] == 0


def test_a_failed_respond_is_retried_when_its_message_is_visible_again() -> None:
    first: list[float] = []

    def factory(**kwargs: Any) -> Any:
        from scaler.loop.reconciler import Reconciler

        reconciler = Reconciler(**kwargs)
        respond = reconciler.respond

        async def failing_once(notices: Any, **kw: Any) -> Any:
            if not first:
                first.append(reconciler.clock.now())
                raise Throttled("the API server is busy")
            return await respond(notices, **kw)

        reconciler.respond = failing_once  # type: ignore[method-assign]
        return reconciler

    spot = pool("m5.large", name="spot", capacity_type="spot")
    job = pod("job", cpu="1", memory="2Gi", duration_s=1800)
    for seed in range(40):
        first.clear()
        sim = simulate([job], pools=[spot], seed=seed, overrides={"hazard_scale": "2000"},
                       until_s=86400, reconciler_factory=factory)
        if first:
            break
    else:
        pytest.fail("no seed gave an interruption")
    acked = [c.at_s for c in sim.feed.calls_to("ack")]
    assert acked[0] == pytest.approx(first[0] + sim.feed.visibility_timeout_s)
    assert sim.feed.counts["spot_interruption"] == sim.feed.counts["received"] >= 2


def test_every_new_pod_is_pinned_by_the_live_chooser(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    real = scaler.loop.admission.choose_pin

    async def counting(source: Any, pod: PodSpec, **kw: Any) -> Pin:
        asked.append(pod.key)
        return await real(source, pod, **kw)

    monkeypatch.setattr(scaler.loop.admission, "choose_pin", counting)
    sim = simulate(three_pods(), pools=[SMALL, BIG], until_s=2000)
    assert asked == ["default/p1", "default/p2", "default/p3"]
    admitted = [s for _, w, s in sim.world.timeline if w == "admitted"]
    assert admitted == ["default/p1 small", "default/p2 small", "default/p3 big"]
