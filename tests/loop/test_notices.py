"""The interruption pipeline (feed -> dedup -> respond -> ack) over the simulated feed and
the real reconciler, on a simulated cluster with one Spot node."""

from __future__ import annotations

import anyio
import pytest

from scaler.core.interruptions import Dedup
from scaler.loop.notices import notice_loop, notice_pass
from scaler.ports import Throttled
from scaler.telemetry import by_name
from simulations.engine import Simulation
from simulations.ports import SimInterruptionFeed
from simulations.testing import pod, pool, simulate


def _running() -> tuple[Simulation, str]:
    """A pod running on a Spot node (no interruption drawn), and that node's instance id."""
    spot = pool("m5.large", name="spot", capacity_type="spot")
    sim = simulate([pod("job", cpu="1", memory="2Gi", duration_s=7200)], pools=[spot],
                   overrides={"interruptions": "false"}, until_s=600)
    (node,) = sim.world.nodes.values()
    return sim, node.instance_id


def _pass(sim: Simulation, feed: SimInterruptionFeed, dedup: Dedup) -> int:
    async def run() -> int:
        return await notice_pass(feed, dedup, sim.reconciler, wait_s=0)

    return anyio.run(run)


def test_a_notice_is_acted_on_and_acked_and_a_duplicate_only_acked() -> None:
    sim, instance = _running()
    feed, dedup = SimInterruptionFeed(sim.clock), Dedup()
    body = feed.queue[feed.spot_warning(instance)].body
    assert _pass(sim, feed, dedup) == 1
    assert len(sim.cluster.calls_to("cordon")) == 1
    assert sim.reconciler.memory.interrupted  # the node's drain deadline is remembered
    assert not feed.queue and feed.counts["acked"] == 1
    # EventBridge delivers the same event again (at least once): acked, not acted on twice.
    feed.put(body)
    assert _pass(sim, feed, dedup) == 1
    assert len(sim.cluster.calls_to("cordon")) == 1
    assert not feed.queue and feed.counts["acked"] == 2


def test_a_malformed_message_is_moved_aside_and_never_reaches_respond() -> None:
    sim, _ = _running()
    feed, dedup = SimInterruptionFeed(sim.clock), Dedup()
    feed.put('{"detail-type": "EC2 Spot Instance Interruption Warning"}')
    assert _pass(sim, feed, dedup) == 1
    assert not feed.queue
    ((_, reason),) = feed.aside
    assert reason == "version: missing"
    assert feed.counts["malformed"] == 1 and feed.counts["acked"] == 0
    assert sim.cluster.calls_to("cordon") == []


def test_a_failed_respond_acks_nothing_and_the_notice_comes_back() -> None:
    sim, instance = _running()
    feed, dedup = SimInterruptionFeed(sim.clock), Dedup()
    feed.spot_warning(instance)
    sim.cluster.fail_next("snapshot", Throttled("the API server is busy"))
    with pytest.raises(Throttled):
        _pass(sim, feed, dedup)
    assert feed.counts["acked"] == 0 and len(feed.queue) == 1
    assert _pass(sim, feed, dedup) == 0  # hidden for the visibility timeout
    sim.clock.advance(sim.clock.now() + feed.visibility_timeout_s)
    assert _pass(sim, feed, dedup) == 1
    assert len(sim.cluster.calls_to("cordon")) == 1
    assert not feed.queue and feed.counts["acked"] == 1


def test_the_loop_reports_a_failing_feed_backs_off_and_goes_on() -> None:
    sim, instance = _running()
    feed = SimInterruptionFeed(sim.clock)
    feed.fail_next("receive", Throttled("SQS is busy"))
    feed.spot_warning(instance)
    seen: list[dict[str, object]] = []
    sim.reconciler.observe = by_name(lambda event, fields: seen.append({"event": event, **fields}))

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(notice_loop, feed, sim.reconciler)
            while not seen:
                await anyio.sleep(0)
            # Backing off: nothing is read until the clock reaches the retry.
            for _ in range(10):
                await anyio.sleep(0)
            assert feed.counts["received"] == 0
            pause = float(seen[0]["retry_in_s"])  # type: ignore[arg-type]
            sim.clock.advance(sim.clock.now() + pause)
            while not feed.counts["acked"]:
                await anyio.sleep(0)
            tg.cancel_scope.cancel()

    anyio.run(run)
    assert seen[0]["event"] == "notice_feed_error"
    assert 2.0 * 0.8 <= float(seen[0]["retry_in_s"]) <= 2.0 * 1.2  # type: ignore[arg-type]
    assert feed.counts["acked"] == 1
