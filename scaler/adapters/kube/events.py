"""Events on Nodes: what scaler did to a node, where ``kubectl describe node`` shows it.

Pod Events (TriggeredScaleUp, NotTriggerScaleUp) are written by the actuator as part of an
action. Node Events are derived from the loop's typed events instead (:mod:`scaler.telemetry`):
a cordon, an uncordon, a drain's end, a removal and a failed removal each become one Event on
the node, and a cordon of a node with a Spot interruption pending adds a ``SpotInterruption``
Event. The subscriber is called synchronously inside the loop, so it only queues; :meth:`NodeEvents.run` (a task in
the leader's task group) sends them. A full queue drops Events rather than slow the loop,
and a failed write is logged, never retried: an Event is a courtesy, not state.

Nodes are cluster-scoped; their Events live in the ``default`` namespace, as the kubelet's
and cluster-autoscaler's do (``kubectl describe node`` finds them there).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import anyio
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from kubernetes.client import ApiClient

from scaler.adapters.kube.actuator import EVENT_COMPONENT, EVENT_DEDUP_S, event_body
from scaler.adapters.kube.client import call
from scaler.adapters.kube.rest import CoreV1
from scaler.ports import PortError
from scaler.telemetry import (
    Drained,
    Event,
    NodeCordoned,
    NodeRemoved,
    NodeUncordoned,
    RemoveFailed,
)

NODE_EVENT_NAMESPACE: Final = "default"
QUEUE: Final = 256
"""Events waiting to be sent; beyond it they are dropped (a burst of removals is also in the
logs and metrics)."""

log = structlog.get_logger("scaler.kube")


@dataclass(frozen=True, slots=True)
class NodeEvent:
    node: str
    reason: str
    message: str
    warning: bool


def node_events(event: Event, *, interrupted: Callable[[str], bool]) -> list[NodeEvent]:
    """The node Events one loop event stands for (none for most). ``interrupted(node)``:
    does the node have a Spot interruption pending (the reconciler's memory)?"""
    if isinstance(event, NodeCordoned) and event.node:
        out = [NodeEvent(event.node, "Cordoned", f"scaler: cordoned: {event.reason}", False)]
        if interrupted(event.node):
            out.append(NodeEvent(
                event.node, "SpotInterruption",
                "scaler: Spot interruption notice: the instance is reclaimed in about 2 "
                "minutes; its pods are being evicted and a replacement launched", True,
            ))
        return out
    if isinstance(event, NodeUncordoned) and event.node:
        return [NodeEvent(event.node, "Uncordoned", f"scaler: uncordoned: {event.reason}", False)]
    if isinstance(event, Drained) and event.node:
        late = "" if event.in_time else " (not all before the deadline)"
        return [NodeEvent(
            event.node, "Drained" if event.in_time else "DrainIncomplete",
            f"scaler: evicted {event.evicted} of {event.pods} pods{late}: {event.reason}",
            not event.in_time,
        )]
    if isinstance(event, NodeRemoved) and event.node:
        price = event.price_usd_per_hour
        cost = f", ${price:.4f}/h" if math.isfinite(price) and price else ""
        return [NodeEvent(
            event.node, "ScaleDown",
            f"scaler: terminating the instance (pool {event.pool}{cost}): {event.reason}", False,
        )]
    if isinstance(event, RemoveFailed) and event.node:
        return [NodeEvent(
            event.node, "ScaleDownFailed", f"scaler: could not terminate: {event.error}", True
        )]
    return []


class NodeEvents:
    """A subscriber that turns loop events into node Events, and the task that sends them."""

    def __init__(
        self,
        api: ApiClient,
        *,
        interrupted: Callable[[str], bool] = lambda node: False,
        identity: str = EVENT_COMPONENT,
        clock: Callable[[], float] = time.time,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        self._core = CoreV1(api)
        self.interrupted = interrupted
        """Has this node a Spot interruption pending? (set once the reconciler exists)"""
        self._identity = identity
        self._clock = clock
        self._limiter = limiter or anyio.CapacityLimiter(2)
        self._send: MemoryObjectSendStream[NodeEvent]
        self._receive: MemoryObjectReceiveStream[NodeEvent]
        self._send, self._receive = anyio.create_memory_object_stream[NodeEvent](QUEUE)
        self._recent: dict[tuple[str, str, str], float] = {}
        self.dropped = 0
        self.sent = 0

    def __call__(self, event: Event) -> None:
        for e in node_events(event, interrupted=self.interrupted):
            try:
                self._send.send_nowait(e)
            except anyio.WouldBlock:
                self.dropped += 1

    async def run(self) -> None:
        """Send queued Events until cancelled."""
        async for e in self._receive:
            try:
                await self.send(e)
            except PortError as error:
                log.warning("node_event_failed", node=e.node, reason=e.reason, error=str(error))

    async def send(self, e: NodeEvent) -> None:
        """One CREATE of a core/v1 Event about the Node; a repeat within
        :data:`~scaler.adapters.kube.actuator.EVENT_DEDUP_S` is dropped."""
        now = self._clock()
        key = (e.node, e.reason, e.message)
        last = self._recent.get(key)
        if last is not None and now - last < EVENT_DEDUP_S:
            return
        self._recent = {k: t for k, t in self._recent.items() if now - t < EVENT_DEDUP_S}
        self._recent[key] = now
        # A Node's UID is its name as far as kubectl describe's field selector goes; the
        # kubelet's own node Events carry uid = name too.
        involved = {"apiVersion": "v1", "kind": "Node", "name": e.node, "uid": e.node}
        body = event_body(involved, NODE_EVENT_NAMESPACE, e.reason, e.message,
                          warning=e.warning, identity=self._identity, now=now)
        try:
            await call(
                self._limiter,
                f"create event on node {e.node}",
                self._core.create_namespaced_event,
                NODE_EVENT_NAMESPACE,
                body,
            )
        except BaseException:
            self._recent.pop(key, None)
            raise
        self.sent += 1
