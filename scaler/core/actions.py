"""What a decision asks the world to do. Small frozen values that carry their reason.

The reconciler hands each action to the port that performs it; the dry-run adapters log
them instead. Nothing here performs anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scaler.core.model import PodSpec


@dataclass(frozen=True, slots=True)
class ScaleUp:
    """Add ``count`` nodes to ``pool`` for ``pods`` (pod keys ``namespace/name``)."""

    pool: str
    count: int
    pods: tuple[str, ...]
    instance_type: str
    price_usd_per_hour: float
    reason: str
    runner_up: str | None = None
    runner_up_cost_usd_per_hour: float | None = None


@dataclass(frozen=True, slots=True)
class PinPod:
    """Restrict ``pod`` to ``pool``'s nodes (a nodeSelector on ``scaler.io/pool``), so the
    scheduler cannot put it on a bigger idle node of another pool."""

    pod: PodSpec
    pool: str
    reason: str


@dataclass(frozen=True, slots=True)
class NotifyUnplaceable:
    """Tell the people who own ``pods`` why no pool can run them (a NotTriggerScaleUp Event)."""

    pods: tuple[PodSpec, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class MarkIdle:
    """Record on the node since when it has been idle (``scaler.io/idle-since``); ``None``
    clears it because the node is busy again."""

    node: str
    since_s: float | None


@dataclass(frozen=True, slots=True)
class RemoveNode:
    """Terminate the node's instance and shrink its pool by one (never below min size)."""

    node: str
    pool: str
    instance_id: str | None
    reason: str
    price_usd_per_hour: float = 0.0


Action = ScaleUp | PinPod | NotifyUnplaceable | MarkIdle | RemoveNode


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything one tick decided, and when it wants to be asked again.

    ``wake_at_s`` is the earliest time at which, with nothing else happening, a decision
    would change (a batch window closing, an idle timer running out, a backoff ending). The
    live loop sleeps until then or the next watch event; the simulator jumps straight there,
    so quiet simulated days cost nothing.
    """

    now_s: float
    actions: tuple[Action, ...] = ()
    wake_at_s: float | None = None
    waiting: tuple[str, ...] = field(default=())
    """Pending pods held back this tick (batch window open, launch in flight), by key."""
    batch_closed: bool = False
    """Pending pods were placed this tick; pods pending since before now no longer hold a
    batch window open (the reconciler moves ``Memory.batch_floor_s`` to ``now_s``)."""

    def of(self, kind: type) -> list[Action]:
        return [a for a in self.actions if isinstance(a, kind)]
