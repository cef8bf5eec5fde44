"""The InterruptionFeed port's contract, held by the simulated feed and by
SqsInterruptionFeed on moto's SQS alike: notices come back parsed, an ack deletes, an
unacked message is delivered again, and what cannot be acted on is moved aside, never lost
and never returned twice. Messages are the EventBridge events of tests/fixtures/eventbridge."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaler.core.interruptions import MalformedMessage, SpotInterruption, UnknownMessage
from tests.contracts.conftest import MAX_RECEIVES

pytestmark = pytest.mark.anyio

EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "eventbridge"
SPOT = (EVENTS / "spot-interruption-warning.json").read_text()
MALFORMED = (EVENTS / "malformed-spot-instance-id.json").read_text()
UNKNOWN = (EVENTS / "unknown-ec2-launch-lifecycle-action.json").read_text()
TEST_NOTIFICATION = (EVENTS / "asg-test-notification.json").read_text()


async def test_a_notice_is_received_parsed_with_its_message_id_and_first_receive(feed_rig):
    message_id = await feed_rig.put(SPOT)
    [received] = await feed_rig.feed.receive(10, 0)
    assert isinstance(received.notice, SpotInterruption)
    assert received.notice.instance_id == "i-0b2f3c4d5e6f70812"
    assert (received.message_id, received.receive_count, received.error) == (message_id, 1, None)
    assert received.receipt_handle


async def test_ack_deletes_the_message(feed_rig):
    await feed_rig.put(SPOT)
    [received] = await feed_rig.feed.receive(10, 0)
    await feed_rig.feed.ack(received)
    assert await feed_rig.queued() == 0
    assert await feed_rig.feed.receive(10, 0) == []


async def test_an_unacked_notice_comes_back_with_its_receive_count_and_the_last_ack_deletes(
    feed_rig,
):
    message_id = await feed_rig.put(SPOT)
    [first] = await feed_rig.feed.receive(10, 0)
    [again] = await feed_rig.feed.receive(10, 0)  # visibility timeout 0: visible at once
    assert (first.receive_count, again.receive_count) == (1, 2)
    assert again.message_id == first.message_id == message_id
    await feed_rig.feed.ack(again)
    assert await feed_rig.queued() == 0


async def test_receive_returns_at_most_max_messages(feed_rig):
    for _ in range(3):
        await feed_rig.put(SPOT)
    batch = await feed_rig.feed.receive(2, 0)
    assert len(batch) == 2


@pytest.mark.parametrize(("body", "error"), [(MALFORMED, MalformedMessage),
                                             (UNKNOWN, UnknownMessage)])
async def test_a_message_that_cannot_be_acted_on_is_returned_as_an_error_and_moved_aside(
    feed_rig, body: str, error: type
):
    message_id = await feed_rig.put(body)
    [received] = await feed_rig.feed.receive(10, 0)
    assert received.notice is None
    assert isinstance(received.error, error)
    assert received.message_id == message_id
    await feed_rig.feed.ack(received)  # a no-op: it is already aside, and must stay there
    assert await feed_rig.queued() == 0
    assert await feed_rig.aside() == [body]
    assert await feed_rig.feed.receive(10, 0) == []


async def test_the_asgs_test_notification_is_deleted_and_not_returned(feed_rig):
    await feed_rig.put(TEST_NOTIFICATION)
    assert await feed_rig.feed.receive(10, 0) == []
    assert await feed_rig.queued() == 0
    assert await feed_rig.aside() == []


async def test_a_notice_received_more_than_max_receives_times_is_moved_aside(feed_rig):
    await feed_rig.put(SPOT)
    for count in range(1, MAX_RECEIVES + 1):
        [received] = await feed_rig.feed.receive(10, 0)
        assert received.receive_count == count
    assert await feed_rig.feed.receive(10, 0) == []  # exhausted: not returned again
    assert await feed_rig.queued() == 0
    assert await feed_rig.aside() == [SPOT]


async def test_an_ack_with_an_earlier_receives_handle_does_not_raise(feed_rig):
    # SQS's DeleteMessage with a receipt handle that is not the latest: "the request will
    # still succeed, but the message might not be deleted" (the API reference); moto deletes.
    await feed_rig.put(SPOT)
    [first] = await feed_rig.feed.receive(10, 0)
    [_again] = await feed_rig.feed.receive(10, 0)
    await feed_rig.feed.ack(first)
