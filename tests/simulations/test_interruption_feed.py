"""SimInterruptionFeed keeps SQS's delivery rules, so the pipeline meets them in simulation."""

from __future__ import annotations

import json

import anyio
import pytest

from scaler.core.interruptions import SpotInterruption
from simulations.clock import SimClock
from simulations.ports import SimInterruptionFeed

INSTANCE = "i-0123456789abcdef0"


def _receive(feed: SimInterruptionFeed, **kw: float) -> list:
    async def run() -> list:
        return await feed.receive(wait_s=kw.get("wait_s", 0))

    return anyio.run(run)


def _ack(feed: SimInterruptionFeed, received: object) -> None:
    anyio.run(feed.ack, received)


def test_a_spot_warning_reads_back_as_the_notice_eventbridge_would_give() -> None:
    clock = SimClock(1000.0)
    feed = SimInterruptionFeed(clock)
    feed.spot_warning(INSTANCE)
    (r,) = _receive(feed)
    assert isinstance(r.notice, SpotInterruption)
    assert (r.notice.instance_id, r.notice.at_s, r.notice.deadline_s) == (INSTANCE, 1000.0, 1120.0)


def test_an_unacked_message_comes_back_after_the_visibility_timeout_with_a_new_handle() -> None:
    clock = SimClock()
    feed = SimInterruptionFeed(clock)
    feed.spot_warning(INSTANCE)
    (first,) = _receive(feed)
    assert _receive(feed) == []
    clock.advance(feed.visibility_timeout_s)
    (second,) = _receive(feed)
    assert second.receive_count == 2 and second.receipt_handle != first.receipt_handle
    _ack(feed, first)  # a stale handle: SQS answers OK and deletes nothing
    assert len(feed.queue) == 1
    _ack(feed, second)
    assert not feed.queue


def test_a_notice_received_too_often_is_moved_aside() -> None:
    clock = SimClock()
    feed = SimInterruptionFeed(clock, max_receives=2)
    feed.spot_warning(INSTANCE)
    for _ in range(2):
        assert len(_receive(feed)) == 1
        clock.advance(clock.now() + feed.visibility_timeout_s)
    assert _receive(feed) == []
    assert [reason for _, reason in feed.aside] == ["exhausted"]
    assert feed.counts["exhausted"] == 1


def test_a_test_notification_is_deleted_and_an_unknown_event_moved_aside() -> None:
    feed = SimInterruptionFeed(SimClock())
    feed.put(json.dumps({"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": "g"}))
    feed.put(json.dumps({"version": "0", "id": "1", "detail-type": "Something Else",
                         "source": "aws.ec2", "account": "1", "time": "2026-01-01T00:00:00Z",
                         "region": "x", "resources": [], "detail": {}}))
    (r,) = _receive(feed)
    assert r.error is not None and r.error.counter == "unknown"
    assert not feed.queue and len(feed.aside) == 1
    assert feed.counts["test_notification"] == 1


def test_an_empty_long_poll_waits_on_the_clock_and_bad_arguments_are_refused() -> None:
    clock = SimClock()
    feed = SimInterruptionFeed(clock)

    async def run() -> list:
        async with anyio.create_task_group() as tg:
            got: list = []

            async def poll() -> None:
                got.extend(await feed.receive(wait_s=20))

            tg.start_soon(poll)
            await anyio.sleep(0)
            feed.spot_warning(INSTANCE)
            assert not got  # still waiting
            clock.advance(20.0)
        return got

    assert len(anyio.run(run)) == 1
    with pytest.raises(ValueError, match="max_messages"):
        anyio.run(feed.receive, 11)
