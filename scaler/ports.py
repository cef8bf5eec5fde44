"""The small Protocols the reconciler talks to. No implementations here.

Each port has a real adapter (``scaler.adapters``), a recording fake shared by tests and the
simulator (``simulations``), and a dry-run wrapper where it writes. Errors cross a port only
as the domain errors below, translated once at the adapter boundary.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from scaler.core.actions import LifecycleHook
from scaler.core.interruptions import Received
from scaler.core.model import InstanceType, PodSpec, PoolSpec, Taint
from scaler.core.offerings import Prices
from scaler.core.state import BoundPod, ClusterView, LaunchFailure, Node


class PortError(Exception):
    """Base of the errors a port may raise."""


class Throttled(PortError):
    """The API asked us to slow down; retry later with backoff."""


class InsufficientCapacity(PortError):
    """The cloud has no capacity for this request right now."""


class NotFound(PortError):
    """The thing acted on no longer exists (a node deleted, an instance gone)."""


class Rejected(PortError):
    """The API refused the request itself (access denied, an invalid request): asking the
    same again will fail the same way, so it is not retried soon."""


class TimedOut(PortError):
    """No answer within the call's overall deadline (retries included); nothing is known
    about whether a write took effect."""


class Clock(Protocol):
    def now(self) -> float:
        """Seconds (unix time live; simulated seconds offline)."""
        ...

    async def sleep_until(self, t: float) -> None: ...


class ClusterSource(Protocol):
    async def snapshot(self) -> ClusterView:
        """Nodes, bound pods and pending (Unschedulable) pods, one consistent view."""
        ...

    def staleness_s(self) -> float:
        """How old the view may be: seconds since the source last heard from the cluster
        (watch-fed caches; 0 where the view is always current, as in the simulator)."""
        ...

    async def pods_on(self, node: str) -> Sequence[BoundPod]:
        """The pods bound to ``node`` and not finished, read from the source of truth now
        (the API server, not a watch cache that may be stale without an error): the last
        check before a node is terminated. A failed read raises ``PortError``."""
        ...


class Fleet(Protocol):
    """The cloud side: node groups and their instances."""

    async def pools(self) -> Sequence[PoolSpec]:
        """Every pool scaler manages, ``current_size`` = the group's desired capacity."""
        ...

    def changed(
        self, before: Sequence[PoolSpec], now: Sequence[PoolSpec]
    ) -> Sequence[int] | None:
        """The places (ascending) where ``now`` holds another pool than ``before`` (an
        equal new value is no change), when both are sequences :meth:`pools` handed back,
        ``now`` the next after ``before``, and the fleet kept that account; else None, and
        the caller compares them (:func:`~scaler.core.offerings.changed_pools`). No I/O."""
        ...

    async def set_desired(self, pool: str, desired: int) -> None: ...

    async def cancel_unfulfilled(self, pool: str) -> None:
        """A launch failed: lower the pool's desired size to the instances it really has, so
        a later retry by the cloud does not bring a node nobody waits for any more."""
        ...

    async def terminate(self, node: Node) -> None:
        """Terminate the node's instance and decrement its pool's desired capacity."""
        ...

    async def give_up(self, pool: str, count: int, keep: Collection[str]) -> int:
        """Take back up to ``count`` nodes asked of ``pool`` that never registered: desired
        capacity no instance was launched for, then instances not in ``keep`` (the ids of
        Ready or busy nodes), the longest-known first, terminated with a decrement. Returns
        how many were taken back."""
        ...

    async def launch_failures(self, since_s: float) -> Sequence[LaunchFailure]:
        """Launches that failed at or after ``since_s``."""
        ...

    async def describe_types(self, names: Sequence[str]) -> Sequence[InstanceType]:
        """Specs of instance types the catalog lacks (no price: the caller supplies one)."""
        ...

    async def complete_lifecycle(self, hook: LifecycleHook) -> None:
        """Let the ASG go on terminating the instance (CompleteLifecycleAction CONTINUE)."""
        ...


class Actuator(Protocol):
    """Writes to the cluster."""

    async def annotate_node(self, node: str, key: str, value: str | None) -> None:
        """Set (or with ``None`` remove) an annotation on a node."""
        ...

    async def label_node(self, node: str, key: str, value: str) -> None:
        """Set a label on a node."""
        ...

    async def record_event(self, pod: PodSpec, reason: str, message: str, *, warning: bool) -> None:
        """A Kubernetes Event on the pod (TriggeredScaleUp, NotTriggerScaleUp)."""
        ...

    async def cordon(self, node: str) -> None: ...

    async def uncordon(self, node: str) -> None: ...

    async def taint(self, node: str, taint: Taint) -> None: ...

    async def untaint(self, node: str, key: str, effect: str | None = None) -> None: ...

    async def evict(self, pod: PodSpec, *, grace_period_s: int | None = None) -> None:
        """Evict through the Eviction API. A PodDisruptionBudget that allows no disruption
        now raises ``Throttled``; a pod already gone raises ``NotFound``."""
        ...


class InterruptionFeed(Protocol):
    """Interruption notices (EventBridge -> SQS live; drawn from Spot Advisor offline)."""

    async def receive(self, max_messages: int = 10, wait_s: float = 20.0) -> list[Received]: ...

    async def ack(self, received: Received) -> None:
        """Delete the message: only after its actions are recorded."""
        ...


class PriceSource(Protocol):
    async def prices(self) -> Prices:
        """Live prices; the last good ones if a refresh failed."""
        ...
