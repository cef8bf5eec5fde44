"""The ports of :mod:`scaler.ports`, implemented over one simulated :class:`World`.

- :class:`SimCluster` is the ClusterSource and the Actuator (what kube-apiserver answers and
  accepts);
- :class:`SimFleet` is the Fleet and the PriceSource (what the ASGs and EC2 answer);
- :class:`SimInterruptionFeed` is the InterruptionFeed (what the SQS queue EventBridge feeds
  holds): the world's Spot warnings go in as the EventBridge messages AWS sends, and come out
  parsed by the core's own :func:`~scaler.core.interruptions.parse_event`, as live.

Like Karpenter's fake cloud provider, each records every call (``calls``) and can be told to
fail the next call of a method (``fail_next("set_desired", InsufficientCapacity(...))``), so
tests can check what the reconciler asked for and how it copes when asking fails. A run that
keeps no record (``scaler simulate``: nothing reads the calls) has its ports record none.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, NamedTuple

from scaler.core.actions import LifecycleHook
from scaler.core.catalog import Catalog
from scaler.core.interruptions import MessageError, Received, TestNotification, parse_event
from scaler.core.model import InstanceType, PodSpec, PoolSpec, Taint
from scaler.core.offerings import Prices
from scaler.core.state import BoundPod, ClusterView, LaunchFailure, Node
from simulations.clock import SimClock
from simulations.world import World


class Call(NamedTuple):
    """One recorded port call."""

    at_s: float
    method: str
    args: tuple[object, ...]


class Recorder:
    """Records calls (unless ``record`` is false); raises the errors it was told to, once
    each, in order."""

    def __init__(self, clock: SimClock, *, record: bool = True) -> None:
        self.clock = clock
        self.record = record
        # Plain tuples, which the garbage collector stops tracking: a run records hundreds of
        # thousands of calls, and namedtuples it would walk at every full collection.
        self._calls: list[tuple[float, str, tuple[object, ...]]] = []
        self._failures: dict[str, list[BaseException]] = {}
        self._watched = record
        """Recording, or told to fail a call: the port methods call :meth:`_record` only
        then, so a run that does neither (``scaler simulate``) makes no call for nothing per
        port call (236,000 on openb)."""

    @property
    def calls(self) -> list[Call]:
        """Every call so far, oldest first (a new list each time)."""
        return list(map(Call._make, self._calls))

    def fail_next(self, method: str, error: BaseException) -> None:
        self._failures.setdefault(method, []).append(error)
        self._watched = True

    def calls_to(self, method: str) -> list[Call]:
        return [Call._make(c) for c in self._calls if c[1] == method]

    def _record(self, method: str, *args: object) -> None:
        if self.record:
            self._calls.append((self.clock.now(), method, args))
        if self._failures:
            queued = self._failures.get(method)
            if queued:
                error = queued.pop(0)
                if not queued:
                    del self._failures[method]
                    self._watched = self.record or bool(self._failures)
                raise error


class SimCluster(Recorder):
    """ClusterSource + Actuator."""

    def __init__(self, world: World, clock: SimClock, *, record: bool = True) -> None:
        super().__init__(clock, record=record)
        self.world = world

    async def snapshot(self) -> ClusterView:
        if self._watched:
            self._record("snapshot")
        return self.world.snapshot(self.clock.now())

    def staleness_s(self) -> float:
        return 0.0  # the simulated view is always the world's current state

    async def pods_on(self, node: str) -> tuple[BoundPod, ...]:
        """What the API server would list: the world's own record, never a cached view."""
        if self._watched:
            self._record("pods_on", node)
        return self.world.pods_on(node)

    async def annotate_node(self, node: str, key: str, value: str | None) -> None:
        if self._watched:
            self._record("annotate_node", node, key, value)
        self.world.annotate(node, key, value, self.clock.now())

    async def label_node(self, node: str, key: str, value: str) -> None:
        if self._watched:
            self._record("label_node", node, key, value)
        self.world.label(node, key, value, self.clock.now())

    async def record_event(self, pod: PodSpec, reason: str, message: str, *, warning: bool) -> None:
        if self._watched:
            self._record("record_event", pod.key, reason, message, warning)
        self.world.pod_event(pod.key, reason, self.clock.now())

    async def cordon(self, node: str) -> None:
        if self._watched:
            self._record("cordon", node)
        self.world.cordon(node, True, self.clock.now())

    async def uncordon(self, node: str) -> None:
        if self._watched:
            self._record("uncordon", node)
        self.world.cordon(node, False, self.clock.now())

    async def taint(self, node: str, taint: Taint) -> None:
        if self._watched:
            self._record("taint", node, taint)
        self.world.taint(node, taint, self.clock.now())

    async def untaint(self, node: str, key: str, effect: str | None = None) -> None:
        if self._watched:
            self._record("untaint", node, key, effect)
        self.world.taint(node, None, self.clock.now(), remove=key, effect=effect)

    async def evict(self, pod: PodSpec, *, grace_period_s: int | None = None) -> None:
        """No PodDisruptionBudgets in the simulator: an eviction always succeeds."""
        if self._watched:
            self._record("evict", pod.key)
        self.world.evict(pod.key, self.clock.now())


class SimFleet(Recorder):
    """Fleet + PriceSource: catalog prices (no live price feed in the simulator)."""

    def __init__(
        self, world: World, clock: SimClock, catalog: Catalog, *, record: bool = True
    ) -> None:
        super().__init__(clock, record=record)
        self.world = world
        self.catalog = catalog

    async def pools(self) -> Sequence[PoolSpec]:
        if self._watched:
            self._record("pools")
        return self.world.pool_views()

    def changed(
        self, before: Sequence[PoolSpec], now: Sequence[PoolSpec]
    ) -> Sequence[int] | None:
        return self.world.pools_changed(before, now)

    async def set_desired(self, pool: str, desired: int) -> None:
        if self._watched:
            self._record("set_desired", pool, desired)
        self.world.set_desired(pool, desired, self.clock.now())

    async def cancel_unfulfilled(self, pool: str) -> None:
        if self._watched:
            self._record("cancel_unfulfilled", pool)
        self.world.cancel_unfulfilled(pool, self.clock.now())

    async def give_up(self, pool: str, count: int, keep: Collection[str]) -> int:
        if self._watched:
            self._record("give_up", pool, count)
        return self.world.give_up(pool, count, keep, self.clock.now())

    async def terminate(self, node: Node) -> None:
        if self._watched:
            self._record("terminate", node.name)
        self.world.terminate(node.name, self.clock.now())

    async def launch_failures(self, since_s: float) -> Sequence[LaunchFailure]:
        if self._watched:
            self._record("launch_failures", since_s)
        return self.world.failures_since(since_s)

    async def describe_types(self, names: Sequence[str]) -> Sequence[InstanceType]:
        """The catalog's specs; unknown names are left out, as DescribeInstanceTypes does."""
        if self._watched:
            self._record("describe_types", tuple(names))
        return [self.catalog[n] for n in dict.fromkeys(names) if n in self.catalog]

    async def complete_lifecycle(self, hook: LifecycleHook) -> None:
        if self._watched:
            self._record("complete_lifecycle", hook)

    async def prices(self) -> Prices:
        if self._watched:
            self._record("prices")
        return _NO_LIVE_PRICES


_NO_LIVE_PRICES = Prices()


VISIBILITY_TIMEOUT_S: Final = 30.0
"""SQS's default visibility timeout: a message received and not deleted is hidden this long,
then delivered again."""
MAX_RECEIVES: Final = 5
"""As the SQS adapter's: a notice received more often than this is moved aside."""


@dataclass
class Message:
    """One message in the simulated queue."""

    message_id: str
    body: str
    receives: int = 0
    visible_at_s: float = 0.0


class SimInterruptionFeed(Recorder):
    """InterruptionFeed over an in-memory queue, with SQS's delivery rules.

    :meth:`spot_warning` (the world's Spot notices) and :meth:`put` (any body, for tests)
    enqueue messages. :meth:`receive` returns the visible ones, each parsed by the core's
    :func:`~scaler.core.interruptions.parse_event`; a received message is hidden for
    ``visibility_timeout_s`` and comes back unless acked (a failed respond leaves it there).
    As :class:`~scaler.adapters.aws.queue.SqsInterruptionFeed`: a malformed or unknown
    message is moved aside at once (to :attr:`aside`, with its reason) and returned as an
    error; a test notification is deleted; a notice received more than ``max_receives``
    times is moved aside, reason ``exhausted``. ``counts`` has the adapter's keys.
    """

    def __init__(
        self,
        clock: SimClock,
        *,
        visibility_timeout_s: float = VISIBILITY_TIMEOUT_S,
        max_receives: int = MAX_RECEIVES,
        record: bool = True,
    ) -> None:
        super().__init__(clock, record=record)
        self.visibility_timeout_s = visibility_timeout_s
        self.max_receives = max_receives
        self.queue: dict[str, Message] = {}
        self.aside: list[tuple[Message, str]] = []
        self.counts: Counter[str] = Counter()
        self._seq = 0

    def put(self, body: str) -> str:
        """Enqueue one message body; returns its message id."""
        self._seq += 1
        message_id = f"sim-message-{self._seq}"
        self.queue[message_id] = Message(message_id, body, visible_at_s=self.clock.now())
        return message_id

    def spot_warning(self, instance_id: str, *, action: str = "terminate") -> str:
        """The "EC2 Spot Instance Interruption Warning" EventBridge sends now for
        ``instance_id``; returns its message id."""
        now = self.clock.now()
        body = {
            "version": "0",
            "id": f"sim-event-{self._seq + 1}",
            "detail-type": "EC2 Spot Instance Interruption Warning",
            "source": "aws.ec2",
            "account": "000000000000",
            "time": _rfc3339(now),
            "region": "sim",
            "resources": [f"arn:aws:ec2:sim:000000000000:instance/{instance_id}"],
            "detail": {"instance-id": instance_id, "instance-action": action},
        }
        return self.put(json.dumps(body))

    def visible(self) -> bool:
        """Whether :meth:`receive` would return anything now."""
        now = self.clock.now()
        return any(m.visible_at_s <= now for m in self.queue.values())

    async def receive(self, max_messages: int = 10, wait_s: float = 20.0) -> list[Received]:
        """Up to ``max_messages`` visible messages, oldest first. With none visible, a long
        poll: it waits ``wait_s`` of simulated time (on the clock, which only the engine or
        a test moves) and answers with what is visible then; ``wait_s=0`` answers at once."""
        if self._watched:
            self._record("receive", max_messages)
        if not 1 <= max_messages <= 10 or not 0 <= wait_s <= 20:
            raise ValueError("max_messages must be within 1..10 and wait_s within 0..20")
        if wait_s > 0 and not self.visible():
            await self.clock.sleep_until(self.clock.now() + wait_s)
        now = self.clock.now()
        out: list[Received] = []
        for message in [m for m in self.queue.values() if m.visible_at_s <= now]:
            if len(out) == max_messages:
                break
            message.receives += 1
            message.visible_at_s = now + self.visibility_timeout_s
            self.counts["received"] += 1
            handle = self._handle(message)
            try:
                parsed = parse_event(message.body)
            except MessageError as error:
                self.counts[error.counter] += 1
                self._move_aside(message, error.reason)
                out.append(Received(error, handle, message.message_id, message.receives))
                continue
            if isinstance(parsed, TestNotification):
                self.counts[parsed.kind] += 1
                del self.queue[message.message_id]
                continue
            if message.receives > self.max_receives:
                self.counts["exhausted"] += 1
                self._move_aside(message, "exhausted")
                continue
            self.counts[parsed.kind] += 1
            out.append(Received(parsed, handle, message.message_id, message.receives))
        return out

    async def ack(self, received: Received) -> None:
        """Delete a notice's message; a no-op for an error (already moved aside). As SQS's
        DeleteMessage: the handle of an earlier receive succeeds but deletes nothing (the
        message was delivered again since), and a message already gone is no error."""
        if self._watched:
            self._record("ack", received.message_id)
        if received.error is not None:
            return
        message = self.queue.get(received.message_id)
        if message is not None and received.receipt_handle == self._handle(message):
            del self.queue[received.message_id]
        self.counts["acked"] += 1

    @staticmethod
    def _handle(message: Message) -> str:
        return f"{message.message_id}#{message.receives}"

    def _move_aside(self, message: Message, reason: str) -> None:
        del self.queue[message.message_id]
        self.aside.append((message, reason))
        self.counts["quarantined"] += 1


def _rfc3339(t: float) -> str:
    """Simulated seconds as an EventBridge ``time`` (microseconds kept)."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
