"""The interruption pipeline: feed -> dedup -> ``Reconciler.respond`` -> ack.

Live, :func:`notice_loop` runs beside the control loop over the SQS feed
(:mod:`scaler.adapters.aws.queue`); the simulator calls :func:`notice_pass` over its
simulated feed (:class:`simulations.ports.SimInterruptionFeed`) whenever the world has
warned a node, so both go through the same parsing, deduplication and acknowledgement.

A message is acked only after the actions its notice calls for were taken; a failed
respond leaves every message of the batch in the queue, to come back after its visibility
timeout (duplicates are harmless: :class:`~scaler.core.interruptions.Dedup`).
"""

from __future__ import annotations

import random
from typing import NoReturn

from scaler.core.interruptions import Dedup, Notice, Received
from scaler.loop.actuation import Spawn
from scaler.loop.reconciler import Reconciler
from scaler.ports import InterruptionFeed, PortError
from scaler.telemetry import NoticeFeedFailed

ERROR_BACKOFF_S = (2.0, 60.0)
"""First and longest pause after a failed pass (the feed or a respond failed); doubling,
with jitter: SQS or the API server is down, and asking every second would not help."""


async def notice_pass(
    feed: InterruptionFeed,
    dedup: Dedup,
    reconciler: Reconciler,
    *,
    spawn: Spawn | None = None,
    wait_s: float = 20.0,
) -> int:
    """Receive one batch and act on it: a duplicate of a notice already acted on is acked
    at once; the fresh ones go to ``reconciler.respond`` together and are recorded and
    acked after it returns. Malformed or unknown messages were moved aside by the feed and
    are skipped. Returns how many messages were received. A failing respond (or feed)
    raises, with nothing of the batch acked."""
    received = await feed.receive(wait_s=wait_s)
    now = reconciler.clock.now()
    fresh: list[tuple[Received, Notice]] = []
    for r in received:
        notice = r.notice
        if notice is None:
            continue
        if dedup.seen(notice, now):
            await feed.ack(r)
        else:
            fresh.append((r, notice))
    if fresh:
        await reconciler.respond([n for _, n in fresh], spawn=spawn)
        for r, notice in fresh:
            dedup.record(notice, now)
            await feed.ack(r)
    return len(received)


async def notice_loop(
    feed: InterruptionFeed, reconciler: Reconciler, *, spawn: Spawn | None = None
) -> NoReturn:
    """:func:`notice_pass` forever (each long-polls the feed). A failed pass is reported to
    the reconciler's observer and retried after a capped, jittered backoff (on the
    reconciler's clock)."""
    dedup = Dedup()
    failures = 0
    while True:
        try:
            await notice_pass(feed, dedup, reconciler, spawn=spawn)
        except PortError as e:
            failures += 1
            first, cap = ERROR_BACKOFF_S
            pause = min(cap, first * 2 ** (failures - 1)) * random.uniform(0.8, 1.2)
            reconciler.observe(NoticeFeedFailed(str(e), pause))
            clock = reconciler.clock
            await clock.sleep_until(clock.now() + pause)
            continue
        failures = 0


__all__ = ["ERROR_BACKOFF_S", "notice_loop", "notice_pass"]
