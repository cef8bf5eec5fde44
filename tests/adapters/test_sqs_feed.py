"""SqsInterruptionFeed against moto in server mode, over real HTTP (aiobotocore)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from scaler.adapters.aws.queue import (
    ATTR_ERROR,
    ATTR_REASON,
    ATTR_RECEIVE_COUNT,
    ATTR_SOURCE_MESSAGE_ID,
    SqsInterruptionFeed,
)
from scaler.core.interruptions import (
    Dedup,
    MalformedMessage,
    RebalanceRecommendation,
    Received,
    ScheduledChange,
    SpotInterruption,
    StateChange,
    TerminateLifecycleAction,
    UnknownMessage,
)
from scaler.ports import NotFound

EVENTS = Path(__file__).resolve().parent.parent / "fixtures" / "eventbridge"
NOTICES = {
    "spot-interruption-warning.json": SpotInterruption,
    "rebalance-recommendation.json": RebalanceRecommendation,
    "state-change-shutting-down.json": StateChange,
    "health-scheduled-change.json": ScheduledChange,
    "asg-terminate-lifecycle-action.json": TerminateLifecycleAction,
}
MALFORMED = "malformed-spot-instance-id.json"
TRUNCATED = "malformed-truncated.json"
UNKNOWN = "unknown-ec2-launch-lifecycle-action.json"
TEST_NOTIFICATION = "asg-test-notification.json"

pytestmark = pytest.mark.anyio


def body(name: str) -> str:
    return (EVENTS / name).read_text()


@pytest.fixture
def sqs(aws: str) -> Any:
    return boto3.client("sqs")


@pytest.fixture
def queues(sqs: Any) -> tuple[str, str]:
    main = sqs.create_queue(QueueName="scaler-interruptions")["QueueUrl"]
    quarantine = sqs.create_queue(QueueName="scaler-interruptions-quarantine")["QueueUrl"]
    return main, quarantine


def send(sqs: Any, queue: str, *names: str) -> dict[str, str]:
    """Send fixture bodies; returns message id -> fixture name."""
    return {sqs.send_message(QueueUrl=queue, MessageBody=body(n))["MessageId"]: n for n in names}


async def drain(feed: SqsInterruptionFeed) -> list[Received]:
    """Receive until the queue has nothing visible left."""
    out: list[Received] = []
    for _ in range(20):
        batch = await feed.receive(max_messages=10, wait_s=0)
        if not batch:
            return out
        out.extend(batch)
    raise AssertionError("the queue never ran dry")


def depth(sqs: Any, queue: str) -> tuple[int, int]:
    """(visible, in flight) messages in the queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def quarantined(sqs: Any, queue: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        out.extend(batch)
    return out


async def test_the_client_honours_aws_endpoint_url(aws, queues):
    async with SqsInterruptionFeed.open(queues[0]) as feed:
        assert feed.sqs.meta.endpoint_url == aws
        assert feed.sqs.meta.region_name == "us-east-1"


async def test_each_kind_is_received_and_acked_while_bad_ones_are_quarantined(sqs, queues):
    main, quarantine = queues
    sent = send(sqs, main, *NOTICES, MALFORMED, TRUNCATED, UNKNOWN, TEST_NOTIFICATION)

    async with SqsInterruptionFeed.open(main, quarantine_queue_url=quarantine) as feed:
        received = await drain(feed)
        notices = {sent[r.message_id]: r for r in received if r.notice is not None}
        errors = {sent[r.message_id]: r for r in received if r.error is not None}

        assert {name: type(r.notice) for name, r in notices.items()} == NOTICES
        assert all(r.receive_count == 1 and r.receipt_handle for r in received)
        assert isinstance(errors[MALFORMED].error, MalformedMessage)
        assert errors[MALFORMED].error.field == "detail.instance-id"
        assert isinstance(errors[TRUNCATED].error, MalformedMessage)
        assert isinstance(errors[UNKNOWN].error, UnknownMessage)
        assert TEST_NOTIFICATION not in notices | errors  # a no-op, deleted by the feed

        # Only the notices are left, in flight until the controller acks them.
        assert depth(sqs, main) == (0, len(NOTICES))
        for r in notices.values():
            await feed.ack(r)
        for r in errors.values():
            await feed.ack(r)  # a no-op: already moved aside
        assert depth(sqs, main) == (0, 0)

        assert feed.counts["received"] == len(sent)
        assert feed.counts["malformed"] == 2
        assert feed.counts["unknown"] == 1
        assert feed.counts["quarantined"] == 3
        assert feed.counts["test_notification"] == 1
        assert feed.counts["acked"] == len(NOTICES)
        for kind in ("spot_interruption", "rebalance_recommendation", "state_change"):
            assert feed.counts[kind] == 1

    moved = {
        sent[m["MessageAttributes"][ATTR_SOURCE_MESSAGE_ID]["StringValue"]]: m
        for m in quarantined(sqs, quarantine)
    }
    assert set(moved) == {MALFORMED, TRUNCATED, UNKNOWN}
    for name, message in moved.items():
        assert message["Body"] == body(name)  # the original, byte for byte
        assert message["MessageAttributes"][ATTR_RECEIVE_COUNT]["StringValue"] == "1"
    attributes = moved[MALFORMED]["MessageAttributes"]
    assert attributes[ATTR_ERROR]["StringValue"] == "malformed"
    assert attributes[ATTR_REASON]["StringValue"].startswith("detail.instance-id: ")
    attributes = moved[UNKNOWN]["MessageAttributes"]
    assert attributes[ATTR_ERROR]["StringValue"] == "unknown"
    assert "EC2 Instance-launch Lifecycle Action" in attributes[ATTR_REASON]["StringValue"]


async def test_a_duplicate_delivery_parses_twice_and_dedup_says_seen(sqs, queues):
    main, _ = queues
    send(sqs, main, "spot-interruption-warning.json", "spot-interruption-warning.json")
    async with SqsInterruptionFeed.open(main) as feed:
        first, second = await drain(feed)
    assert first.message_id != second.message_id
    assert first.notice == second.notice
    dedup = Dedup()
    assert first.notice is not None and second.notice is not None
    assert not dedup.seen(first.notice, now=first.notice.at_s + 1.0)
    dedup.record(first.notice, now=first.notice.at_s + 1.0)
    assert dedup.seen(second.notice, now=first.notice.at_s + 2.0)


async def test_a_notice_never_acked_is_quarantined_after_max_receives(sqs, queues):
    main, quarantine = queues
    send(sqs, main, "rebalance-recommendation.json")
    async with SqsInterruptionFeed.open(
        main, quarantine_queue_url=quarantine, max_receives=2
    ) as feed:
        for attempt in (1, 2):
            (r,) = await feed.receive(wait_s=0)
            assert r.receive_count == attempt
            await feed.extend(r, 0)  # as if its visibility timed out: back in the queue
        assert await feed.receive(wait_s=0) == []  # the third receive moves it aside
        assert feed.counts["exhausted"] == 1
    assert depth(sqs, main) == (0, 0)
    (moved,) = quarantined(sqs, quarantine)
    assert moved["Body"] == body("rebalance-recommendation.json")
    assert moved["MessageAttributes"][ATTR_ERROR]["StringValue"] == "exhausted"
    assert moved["MessageAttributes"][ATTR_RECEIVE_COUNT]["StringValue"] == "3"


async def test_without_a_quarantine_queue_bad_messages_are_parked_not_deleted(sqs, queues):
    main, quarantine = queues
    send(sqs, main, MALFORMED)
    async with SqsInterruptionFeed.open(main, park_s=600) as feed:
        (r,) = await feed.receive(wait_s=0)
        assert isinstance(r.error, MalformedMessage)
        await feed.ack(r)  # must not delete it
        assert await feed.receive(wait_s=0) == []  # parked: not retried in a tight loop
        assert feed.counts["parked"] == 1
        assert feed.counts["quarantined"] == 0
    assert depth(sqs, main) == (0, 1)
    assert depth(sqs, quarantine) == (0, 0)


async def test_bad_messages_redrive_to_the_queue_dead_letter_queue_when_parked(sqs, queues):
    main, dlq = queues
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    policy = {"deadLetterTargetArn": dlq_arn["QueueArn"], "maxReceiveCount": "1"}
    sqs.set_queue_attributes(QueueUrl=main, Attributes={"RedrivePolicy": json.dumps(policy)})
    send(sqs, main, UNKNOWN)
    async with SqsInterruptionFeed.open(main, park_s=0) as feed:
        (r,) = await feed.receive(wait_s=0)
        assert isinstance(r.error, UnknownMessage)
        assert await feed.receive(wait_s=0) == []  # SQS moved it on the second receive
    assert depth(sqs, main) == (0, 0)
    (moved,) = quarantined(sqs, dlq)
    assert moved["Body"] == body(UNKNOWN)


async def test_without_a_quarantine_queue_an_exhausted_notice_is_parked_for_long(sqs, queues):
    main, _ = queues
    send(sqs, main, "rebalance-recommendation.json")
    async with SqsInterruptionFeed.open(main, max_receives=1) as feed:
        (r,) = await feed.receive(wait_s=0)
        await feed.extend(r, 0)
        assert await feed.receive(wait_s=0) == []
        assert feed.counts["exhausted"] == 1
        assert feed.counts["parked"] == 1
    assert depth(sqs, main) == (0, 1)


async def test_a_failed_copy_to_quarantine_keeps_the_original(aws, sqs, queues):
    main, _ = queues
    send(sqs, main, MALFORMED)
    gone = f"{aws}/123456789012/no-such-quarantine"
    async with SqsInterruptionFeed.open(main, quarantine_queue_url=gone) as feed:
        (r,) = await feed.receive(wait_s=0)
        assert isinstance(r.error, MalformedMessage)
        assert feed.counts["quarantined"] == 0
        assert feed.counts["parked"] == 1
    assert depth(sqs, main) == (0, 1)


async def test_a_missing_queue_is_not_found(aws):
    url = f"{aws}/123456789012/no-such-queue"
    async with SqsInterruptionFeed.open(url) as feed:
        with pytest.raises(NotFound):
            await feed.receive(wait_s=0)


async def test_receive_rejects_sizes_sqs_would_refuse(queues):
    async with SqsInterruptionFeed.open(queues[0]) as feed:
        with pytest.raises(ValueError):
            await feed.receive(max_messages=11)
        with pytest.raises(ValueError):
            await feed.receive(wait_s=21)
