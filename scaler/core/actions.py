"""What a decision asks the world to do. Small frozen values that carry their reason.

The reconciler hands each action to the port that performs it; the dry-run adapters log
them instead. Nothing here performs anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scaler.core.model import PodSpec, Taint


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
    limit: str | None = None
    """Set when a pool could run the pods but a global limit held them back: the limit's
    setting name (``max_nodes_total``, ...; scaler/core/limits.py)."""
    retry_at_s: float | None = None
    """When a decision will place them (a per-decision cap); None: when something changes."""


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


@dataclass(frozen=True, slots=True)
class Untaint:
    """Remove scaler's removal taint (``scaler.io/removing``) from a node that is not being
    removed after all: a process died between tainting and terminating it, or a pod landed."""

    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class GiveUpLaunch:
    """``count`` nodes asked of ``pool`` have not registered within the provision timeout:
    take them back (desired size lowered, the unregistered instances terminated), back the
    pool off, and let their pods be placed again."""

    pool: str
    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class Cordon:
    """Mark the node unschedulable and taint it, so nothing new lands on a node that is
    going away (``taint`` None: cordon only)."""

    node: str
    reason: str
    taint: Taint | None = None


@dataclass(frozen=True, slots=True)
class Uncordon:
    """Undo a :class:`Cordon` (a rebalance recommendation that no interruption followed)."""

    node: str
    reason: str
    taint_key: str | None = None


@dataclass(frozen=True, slots=True)
class LifecycleHook:
    """An ASG lifecycle action to complete (CONTINUE) once the node is drained."""

    asg: str
    hook: str
    token: str
    instance_id: str


@dataclass(frozen=True, slots=True)
class Drain:
    """Evict the node's workload pods through the Eviction API (PodDisruptionBudgets
    respected, retried) so that all are gone by ``deadline_s``; then complete ``hook``."""

    node: str
    pods: tuple[PodSpec, ...]
    deadline_s: float
    reason: str
    hook: LifecycleHook | None = None
    terminate: bool = False
    """Then terminate the instance and shrink its pool: otherwise the ASG replaces a
    reclaimed Spot node itself, on top of the replacement scaler already launched."""


@dataclass(frozen=True, slots=True)
class Evict:
    """Evict one pod so it is re-created and placed again (a misplaced, restartable pod)."""

    pod: PodSpec
    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class LabelNode:
    """Set a label on a node: ``scaler.io/pool`` on a node whose pool is known from its
    providerID only, so that pods pinned to the pool can be scheduled on it."""

    node: str
    key: str
    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class Forget:
    """The node's instance stopped or terminated: drop what is remembered about it."""

    node: str
    reason: str


Action = (
    ScaleUp | PinPod | NotifyUnplaceable | MarkIdle | RemoveNode | Cordon | Uncordon | Drain
    | Evict | Forget | LabelNode
    | Untaint | GiveUpLaunch
)


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
