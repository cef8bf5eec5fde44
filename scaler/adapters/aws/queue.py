"""The interruption feed: EventBridge events about our instances, read from an SQS queue.

:class:`SqsInterruptionFeed` long-polls the queue, parses each body with
:func:`scaler.core.interruptions.parse_event` and returns :class:`Received` items. It deletes
a notice only when the controller calls :meth:`~SqsInterruptionFeed.ack`, after the action it
called for is recorded: a crash in between means the message comes back, and
:class:`~scaler.core.interruptions.Dedup` makes the second delivery harmless.

A message that cannot be acted on is never silently deleted, nor retried in a tight loop:

- malformed or unknown: logged, counted, and *moved aside*. With ``quarantine_queue_url``,
  it is copied there (original body, the reason in message attributes) and then deleted from
  the main queue. Without one, its visibility timeout is raised to ``park_s`` and it stays,
  so the queue's own redrive policy moves it to the queue's dead-letter queue after
  ``maxReceiveCount`` receives (or its retention period ends it).
- a notice received more than ``max_receives`` times (the controller keeps failing on it):
  moved aside the same way with reason ``exhausted``, and no longer returned.
- the ASG's ``autoscaling:TEST_NOTIFICATION``: a known no-op, logged, counted and deleted.

``counts`` is a plain counter the metrics layer exports: ``received``, one key per notice
kind (``spot_interruption``, ...), ``malformed``, ``unknown``, ``exhausted``,
``quarantined``, ``parked``, ``acked``. See docs/interruptions.md.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

import structlog
from aiobotocore.session import AioSession
from botocore.exceptions import ClientError

from scaler.adapters.aws.deadline import CALL_DEADLINE_S, READ_TIMEOUT_S, Deadlined, client_config
from scaler.adapters.aws.errors import translated
from scaler.adapters.aws.lean import aws_session
from scaler.core.interruptions import (
    MessageError,
    Received,
    TestNotification,
    parse_event,
)
from scaler.ports import NotFound, PortError

MAX_RECEIVES: Final = 5
"""Enough for a few controller restarts; a Spot warning is stale long before the fifth."""
PARK_S: Final = 300
"""Without a quarantine queue, a bad message sleeps this long between receives."""
PARK_LONG_S: Final = 43_200 - 300
"""Just under SQS's cap: 12 hours of visibility counted from the receive (SQS refuses more)."""
WAIT_S: Final = 20
"""SQS's longest long poll: fewest empty receives, and a message still returns at once."""

# Message attributes on a quarantined copy (SQS names: letters, digits, '-', '_', '.').
ATTR_REASON: Final = "scaler.reason"
ATTR_ERROR: Final = "scaler.error"
ATTR_SOURCE_MESSAGE_ID: Final = "scaler.source-message-id"
ATTR_SOURCE_QUEUE: Final = "scaler.source-queue-url"
ATTR_RECEIVE_COUNT: Final = "scaler.receive-count"

# SQS says "this queue or receipt handle is gone" with codes botocore's generic mapping
# (``errors.translate``) does not read as NotFound: JSON protocol, then the older query one.
_SQS_NOT_FOUND: Final = frozenset(
    {
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "ReceiptHandleIsInvalid",
        "InvalidReceiptHandle",
    }
)

log = structlog.get_logger("scaler.adapters.aws.queue")


@contextlib.contextmanager
def _sqs(operation: str) -> Iterator[None]:
    try:
        with translated(operation):
            yield
    except PortError as e:
        cause = e.__cause__
        if isinstance(cause, ClientError):
            code = str(cause.response.get("Error", {}).get("Code", ""))
            if code in _SQS_NOT_FOUND:
                raise NotFound(str(e)) from cause
        raise


class SqsInterruptionFeed:
    """Interruption notices from one SQS queue. Build it with :meth:`open`; the constructor
    takes a ready aiobotocore SQS client (tests may wrap one)."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        *,
        quarantine_queue_url: str | None = None,
        max_receives: int = MAX_RECEIVES,
        park_s: int = PARK_S,
        visibility_timeout_s: int | None = None,
    ) -> None:
        if max_receives < 1 or not 0 <= park_s <= PARK_LONG_S:
            raise ValueError(f"max_receives must be >= 1 and park_s within 0..{PARK_LONG_S}")
        self.sqs = sqs
        self.queue_url = queue_url
        self.quarantine_queue_url = quarantine_queue_url
        self.max_receives = max_receives
        self.park_s = park_s
        self.visibility_timeout_s = visibility_timeout_s
        self.counts: Counter[str] = Counter()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        queue_url: str,
        *,
        quarantine_queue_url: str | None = None,
        region: str | None = None,
        session: AioSession | None = None,
        max_attempts: int = 3,
        **options: Any,
    ) -> AsyncIterator[SqsInterruptionFeed]:
        """A feed over a new SQS client, closed on exit. Endpoint, region and credentials
        come from the standard chain (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ...);
        ``options`` are the constructor's keywords."""
        session = session or aws_session()
        config = client_config(
            region or session.get_config_variable("region"),
            max_attempts=max_attempts,
            read_timeout_s=WAIT_S + READ_TIMEOUT_S,  # a long poll holds the connection WAIT_S
        )
        async with session.create_client("sqs", config=config) as sqs:
            # A long poll's own wait is part of its call: the deadline leaves room for it.
            bounded = Deadlined(sqs, WAIT_S + CALL_DEADLINE_S)
            yield cls(bounded, queue_url, quarantine_queue_url=quarantine_queue_url, **options)

    async def receive(self, max_messages: int = 10, wait_s: float = WAIT_S) -> list[Received]:
        """Up to ``max_messages`` (1..10) messages, waiting up to ``wait_s`` (0..20) s for
        the first. Notices and errors both come back; errors are already moved aside."""
        if not 1 <= max_messages <= 10 or not 0 <= wait_s <= 20:
            raise ValueError("max_messages must be within 1..10 and wait_s within 0..20")
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": int(wait_s),  # SQS takes whole seconds
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if self.visibility_timeout_s is not None:
            request["VisibilityTimeout"] = self.visibility_timeout_s
        with _sqs("ReceiveMessage"):
            answer = await self.sqs.receive_message(**request)
        out: list[Received] = []
        for message in answer.get("Messages", []):
            received = await self._take(message)
            if received is not None:
                out.append(received)
        return out

    async def ack(self, received: Received) -> None:
        """Delete a notice's message: call only once its action is recorded. A no-op for an
        error, which the feed has already moved aside (deleting it here would lose it)."""
        if received.error is not None:
            return
        await self._delete(received.receipt_handle)
        self.counts["acked"] += 1

    async def extend(self, received: Received, visibility_s: int) -> None:
        """Keep a message hidden ``visibility_s`` more seconds while its action runs (a
        lifecycle-hook drain can outlast the queue's visibility timeout)."""
        with _sqs("ChangeMessageVisibility"):
            await self.sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=received.receipt_handle,
                VisibilityTimeout=visibility_s,
            )

    # ------------------------------------------------------------------------- internals

    async def _take(self, message: dict[str, Any]) -> Received | None:
        body = str(message.get("Body", ""))
        message_id = str(message.get("MessageId", ""))
        handle = str(message["ReceiptHandle"])
        count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        self.counts["received"] += 1
        try:
            parsed = parse_event(body)
        except MessageError as error:
            self.counts[error.counter] += 1
            log.warning(
                f"interruption_message_{error.counter}",
                message_id=message_id,
                receive_count=count,
                reason=error.reason,
                body=body[:512],
            )
            await self._move_aside(message, error.counter, error.reason, count)
            return Received(error, handle, message_id, count)
        if isinstance(parsed, TestNotification):
            self.counts[parsed.kind] += 1
            log.info("interruption_test_notification", message_id=message_id, asg=parsed.asg)
            await self._delete(handle)
            return None
        if count > self.max_receives:
            self.counts["exhausted"] += 1
            reason = f"received {count} times (max {self.max_receives}) without being acked"
            log.error(
                "interruption_message_exhausted",
                message_id=message_id,
                kind=parsed.kind,
                instance_ids=list(parsed.instance_ids),
                reason=reason,
            )
            await self._move_aside(message, "exhausted", reason, count)
            return None
        self.counts[parsed.kind] += 1
        return Received(parsed, handle, message_id, count)

    async def _move_aside(
        self, message: dict[str, Any], error: str, reason: str, count: int
    ) -> None:
        handle = str(message["ReceiptHandle"])
        message_id = str(message.get("MessageId", ""))
        if self.quarantine_queue_url:
            attributes = {
                ATTR_REASON: reason[:1024],
                ATTR_ERROR: error,
                ATTR_SOURCE_MESSAGE_ID: message_id or "unknown",
                ATTR_SOURCE_QUEUE: self.queue_url,
            }
            try:
                with _sqs("SendMessage"):
                    await self.sqs.send_message(
                        QueueUrl=self.quarantine_queue_url,
                        MessageBody=message["Body"],
                        MessageAttributes={
                            **{
                                k: {"DataType": "String", "StringValue": v}
                                for k, v in attributes.items()
                            },
                            ATTR_RECEIVE_COUNT: {"DataType": "Number", "StringValue": str(count)},
                        },
                    )
            except PortError as e:  # the copy failed: keep the original, parked instead
                log.error("interruption_quarantine_failed", message_id=message_id, error=str(e))
            else:
                await self._delete(handle)
                self.counts["quarantined"] += 1
                log.warning("interruption_message_quarantined", message_id=message_id, error=error)
                return
        # Exhausted and no quarantine: park it as long as SQS allows; redrive or retention
        # ends it, and it costs one receive per 12 hours meanwhile.
        park_s = PARK_LONG_S if error == "exhausted" else self.park_s
        with _sqs("ChangeMessageVisibility"):
            await self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=park_s
            )
        self.counts["parked"] += 1
        log.warning("interruption_message_parked", message_id=message_id, park_s=park_s)

    async def _delete(self, handle: str) -> None:
        with _sqs("DeleteMessage"):
            await self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=handle)
