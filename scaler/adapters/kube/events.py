"""Events on Nodes: what scaler did to a node, where ``kubectl describe node`` shows it.

Pod Events (TriggeredScaleUp, NotTriggerScaleUp) are written by the actuator as part of an
action. Node Events are derived from the reconciler's observations instead
(:data:`~scaler.loop.reconciler.Observer`): ``cordon``, ``uncordon``, ``drained``,
``remove_node`` and ``remove_failed`` each become one Event on the node, and a cordon of a
node with a Spot interruption pending adds a ``SpotInterruption`` Event. The observer is
called synchronously inside the loop, so it only queues; :meth:`NodeEvents.run` (a task in
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


def node_events(
    event: str, fields: dict[str, object], *, interrupted: Callable[[str], bool]
) -> list[NodeEvent]:
    """The node Events one observation stands for (none for most). ``interrupted(node)``:
    does the node have a Spot interruption pending (the reconciler's memory)?"""
    node = str(fields.get("node") or "")
    if not node:
        return []
    reason = str(fields.get("reason") or "")
    if event == "cordon":
        out = [NodeEvent(node, "Cordoned", f"scaler: cordoned: {reason}", False)]
        if interrupted(node):
            out.append(NodeEvent(
                node, "SpotInterruption",
                "scaler: Spot interruption notice: the instance is reclaimed in about 2 "
                "minutes; its pods are being evicted and a replacement launched", True,
            ))
        return out
    if event == "uncordon":
        return [NodeEvent(node, "Uncordoned", f"scaler: uncordoned: {reason}", False)]
    if event == "drained":
        evicted, pods = fields.get("evicted", 0), fields.get("pods", 0)
        in_time = bool(fields.get("in_time", True))
        late = "" if in_time else " (not all before the deadline)"
        return [NodeEvent(
            node, "Drained" if in_time else "DrainIncomplete",
            f"scaler: evicted {evicted} of {pods} pods{late}: {reason}", not in_time,
        )]
    if event == "remove_node":
        pool = fields.get("pool")
        price = fields.get("price_usd_per_hour")
        cost = f", ${price:.4f}/h" if isinstance(price, float) and math.isfinite(price) and price else ""
        return [NodeEvent(
            node, "ScaleDown", f"scaler: terminating the instance (pool {pool}{cost}): {reason}",
            False,
        )]
    if event == "remove_failed":
        return [NodeEvent(
            node, "ScaleDownFailed", f"scaler: could not terminate: {fields.get('error')}", True
        )]
    return []


class NodeEvents:
    """An observer that turns observations into node Events, and the task that sends them."""

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

    def __call__(self, event: str, fields: dict[str, object]) -> None:
        for e in node_events(event, fields, interrupted=self.interrupted):
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
