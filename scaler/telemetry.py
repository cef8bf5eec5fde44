"""Typed telemetry: what the loop reports, as values. No implementations of subscribers here.

The loop (the reconciler, its actuation handlers, drains and removals, the control loop)
emits one event per thing worth logging or counting, to a :data:`Telemetry` callable that
the composition root fans out to subscribers (``scaler.adapters``): structlog lines,
Prometheus metrics, Events on nodes, the status ConfigMap's pool history. The simulator
subscribes nothing.

Each event's ``name`` and :meth:`Event.fields` make its log line (``event=remove_node
node=... pool=... reason=...``): the names are stable, docs and tests grep them. Subscribers
that count or label read typed attributes -- the causes and limits declared in
:mod:`scaler.core.actions`, an :class:`Operation` for failures -- never the prose
``reason``, which is for people and may be reworded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import ClassVar

from scaler.core.actions import BackoffCause, DrainCause, Limit, RemovalCause, ScaleUp
from scaler.core.state import ClusterView


class Operation(StrEnum):
    """What failed (``scaler_operation_errors_total{operation}``)."""

    SCALE_UP = "scale_up"
    REMOVE = "remove"
    EVICT = "evict"
    EVICT_DEADLINE = "evict_deadline"
    NODE_WRITE = "node_write"
    LIFECYCLE_COMPLETE = "lifecycle_complete"
    NOTICE_FEED = "notice_feed"
    REVIEW = "review"
    REPLACEMENT = "replacement"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing the loop did or saw. ``name`` is the log event's name."""

    name: ClassVar[str]

    def fields(self) -> dict[str, object]:
        """The log line's keys and values (enums as their plain values)."""
        return {
            f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
        }


def _plain(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


@dataclass(frozen=True, slots=True)
class Failure(Event):
    """A write or background task that failed; counted by ``operation`` when it has one
    (None: only logged)."""

    operation: ClassVar[Operation | None] = None


# ------------------------------------------------------------------ scale-up and down


@dataclass(frozen=True, slots=True)
class ScaledUp(Event):
    """A pool's desired size was raised for ``action``."""

    name: ClassVar[str] = "scale_up"
    action: ScaleUp

    def fields(self) -> dict[str, object]:
        a = self.action
        return {
            "pool": a.pool, "count": a.count, "pods": len(a.pods),
            "instance_type": a.instance_type, "price_usd_per_hour": a.price_usd_per_hour,
            "reason": a.reason, "runner_up": a.runner_up,
            "runner_up_cost_usd_per_hour": a.runner_up_cost_usd_per_hour,
        }


@dataclass(frozen=True, slots=True)
class NodeRemoved(Event):
    """A node's instance was terminated (its pool shrunk by one)."""

    name: ClassVar[str] = "remove_node"
    node: str
    pool: str | None
    cause: RemovalCause
    reason: str
    instance_id: str | None = None
    price_usd_per_hour: float = 0.0


@dataclass(frozen=True, slots=True)
class RemovalCancelled(Event):
    """A removal did not happen: the node turned busy or was already gone."""

    name: ClassVar[str] = "remove_cancelled"
    node: str
    pool: str | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LaunchFailed(Event):
    """The cloud reported a launch of ``pool`` failed."""

    name: ClassVar[str] = "launch_failed"
    pool: str
    reason: str


@dataclass(frozen=True, slots=True)
class LaunchGivenUp(Event):
    """Nodes of ``pool`` never registered: ``taken_back`` of ``count`` were taken back."""

    name: ClassVar[str] = "launch_given_up"
    pool: str
    count: int
    taken_back: int
    reason: str


@dataclass(frozen=True, slots=True)
class PoolBackedOff(Event):
    """Failed scale-up writes took ``pool`` out of decisions until ``until_s``."""

    name: ClassVar[str] = "pool_backoff"
    pool: str
    cause: BackoffCause
    reason: str
    until_s: float


@dataclass(frozen=True, slots=True)
class PoolDisabled(Event):
    """A pool left out of the offerings (an unknown instance type, no price, ...)."""

    name: ClassVar[str] = "pool_disabled"
    pool: str
    reason: str


@dataclass(frozen=True, slots=True)
class PodsUnplaceable(Event):
    """``pods`` pending pods no pool fits (first decision that saw them)."""

    name: ClassVar[str] = "unplaceable"
    pods: int
    reason: str


@dataclass(frozen=True, slots=True)
class PodsLimited(Event):
    """``pods`` pending pods a global limit held back."""

    name: ClassVar[str] = "limited"
    pods: int
    limit: Limit
    reason: str


# ------------------------------------------------------------------ nodes


@dataclass(frozen=True, slots=True)
class NodeCordoned(Event):
    name: ClassVar[str] = "cordon"
    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class NodeUncordoned(Event):
    name: ClassVar[str] = "uncordon"
    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class NodeUntainted(Event):
    """Scaler's removal taint came off a node that is not being removed after all."""

    name: ClassVar[str] = "untaint"
    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class NodeLabelled(Event):
    name: ClassVar[str] = "node_labelled"
    node: str
    label: str


@dataclass(frozen=True, slots=True)
class NodeForgotten(Event):
    """The node's instance stopped or terminated: what was remembered of it is dropped."""

    name: ClassVar[str] = "forget"
    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class Drained(Event):
    """A drain ended: ``evicted`` of ``pods``, all by the deadline or not (``in_time``)."""

    name: ClassVar[str] = "drained"
    node: str
    pods: int
    evicted: int
    in_time: bool
    took_s: float
    reason: str
    cause: DrainCause


@dataclass(frozen=True, slots=True)
class PodMigrated(Event):
    """A misplaced pod was evicted to be placed again on a cheaper pool."""

    name: ClassVar[str] = "migrate"
    pod: str
    reason: str


@dataclass(frozen=True, slots=True)
class DestructiveHeld(Event):
    """A removal, terminating drain or eviction held back: the cluster cache was too old."""

    name: ClassVar[str] = "destructive_held"
    action: str
    target: str
    cache_age_s: float


# ------------------------------------------------------------------ the loop


@dataclass(frozen=True, slots=True)
class ClusterSeen(Event):
    """The snapshot a tick decides on (pending pods, their age, scale-up latency)."""

    name: ClassVar[str] = "cluster_seen"
    view: ClusterView

    def fields(self) -> dict[str, object]:
        return {"nodes": len(self.view.nodes), "pending": len(self.view.pending)}


@dataclass(frozen=True, slots=True)
class NoticeHandled(Event):
    """An interruption notice was answered with ``actions`` actions (0: ignored)."""

    name: ClassVar[str] = "notice"
    kind: str
    actions: int


@dataclass(frozen=True, slots=True)
class Reviewed(Event):
    name: ClassVar[str] = "review"
    waste_usd_per_hour: float
    misplaced: int
    migrated: int


@dataclass(frozen=True, slots=True)
class ReconcileFailed(Event):
    """A tick failed; the loop retries it after ``retry_in_s``."""

    name: ClassVar[str] = "reconcile_error"
    error: str
    retry_in_s: float


# ------------------------------------------------------------------ failures


@dataclass(frozen=True, slots=True)
class ScaleUpFailed(Failure):
    name: ClassVar[str] = "scale_up_failed"
    operation: ClassVar[Operation | None] = Operation.SCALE_UP
    pool: str
    desired: int
    error: str
    backoff: bool


@dataclass(frozen=True, slots=True)
class RemoveFailed(Failure):
    name: ClassVar[str] = "remove_failed"
    operation: ClassVar[Operation | None] = Operation.REMOVE
    node: str
    error: str
    pool: str | None = None


@dataclass(frozen=True, slots=True)
class EvictFailed(Failure):
    name: ClassVar[str] = "evict_failed"
    operation: ClassVar[Operation | None] = Operation.EVICT
    pod: str
    error: str


@dataclass(frozen=True, slots=True)
class EvictGaveUp(Failure):
    """A drain's eviction still refused at the deadline."""

    name: ClassVar[str] = "evict_gave_up"
    operation: ClassVar[Operation | None] = Operation.EVICT_DEADLINE
    pod: str
    error: str


@dataclass(frozen=True, slots=True)
class NodeWriteFailed(Failure):
    name: ClassVar[str] = "node_write_failed"
    operation: ClassVar[Operation | None] = Operation.NODE_WRITE
    node: str
    error: str


@dataclass(frozen=True, slots=True)
class LifecycleCompleteFailed(Failure):
    name: ClassVar[str] = "lifecycle_complete_failed"
    operation: ClassVar[Operation | None] = Operation.LIFECYCLE_COMPLETE
    node: str
    error: str


@dataclass(frozen=True, slots=True)
class NoticeFeedFailed(Failure):
    name: ClassVar[str] = "notice_feed_error"
    operation: ClassVar[Operation | None] = Operation.NOTICE_FEED
    error: str
    retry_in_s: float


@dataclass(frozen=True, slots=True)
class ReviewFailed(Failure):
    name: ClassVar[str] = "review_error"
    operation: ClassVar[Operation | None] = Operation.REVIEW
    error: str


@dataclass(frozen=True, slots=True)
class ReplacementFailed(Failure):
    """Replacements for an interruption could not be launched (the next tick places the
    drained pods again)."""

    name: ClassVar[str] = "replacement_failed"
    operation: ClassVar[Operation | None] = Operation.REPLACEMENT
    error: str


@dataclass(frozen=True, slots=True)
class GiveUpFailed(Failure):
    name: ClassVar[str] = "give_up_failed"
    operation: ClassVar[Operation | None] = Operation.GIVE_UP
    pool: str
    error: str


@dataclass(frozen=True, slots=True)
class CancelUnfulfilledFailed(Failure):
    name: ClassVar[str] = "cancel_unfulfilled_failed"
    pool: str
    error: str


@dataclass(frozen=True, slots=True)
class DrainLiveReadFailed(Failure):
    name: ClassVar[str] = "drain_live_read_failed"
    node: str
    error: str


Telemetry = Callable[[Event], None]
"""Receives each event the loop emits."""


def ignore(event: Event) -> None:
    return None


def fan_out(*subscribers: Telemetry) -> Telemetry:
    """One telemetry callable that hands each event to every subscriber, in order."""

    def emit(event: Event) -> None:
        for subscriber in subscribers:
            subscriber(event)

    return emit


def by_name(sink: Callable[[str, dict[str, object]], None]) -> Telemetry:
    """A subscriber for code that wants the log view: ``sink(event.name, event.fields())``."""
    return lambda event: sink(event.name, event.fields())
