"""What a decision asks the world to do. Small frozen values that carry their reason.

The reconciler hands each action to the port that performs it; the dry-run adapters log
them instead. Nothing here performs anything.

A reason comes twice where something counts by it: as prose for people (``reason``, on the
log line and the Kubernetes Event) and as an enum (``cause``, ``limit``) that metrics label
by. Rewording the prose never moves a count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from scaler.core.frozen import slot_init
from scaler.core.model import PodSpec, Taint


class RemovalCause(StrEnum):
    """Why a node is terminated (``scaler_node_removals_total{reason}``)."""

    IDLE = "idle"
    """Idle past its timeout (the scale-down)."""
    INTERRUPTED = "interrupted"
    """Drained for an interruption notice, then terminated so its ASG does not replace it."""


class DrainCause(StrEnum):
    """What a drain answers: the notice kind (``scaler_interruptions_total{kind}``; the
    values are :attr:`scaler.core.interruptions.Notice.kind`), or a drain taken over."""

    SPOT_INTERRUPTION = "spot_interruption"
    SCHEDULED_CHANGE = "scheduled_change"
    TERMINATE_LIFECYCLE_ACTION = "terminate_lifecycle_action"
    REBALANCE_RECOMMENDATION = "rebalance_recommendation"
    RESUMED = "resumed"
    """A node tainted for an interruption by a process that restarted mid-drain."""


class BackoffCause(StrEnum):
    """Why a failed scale-up write backed its pool off (``scaler_pool_backoffs_total{cause}``)."""

    WRITE_REJECTED = "write_rejected"
    """Refused (access denied, a validation error, the group gone): at once."""
    WRITE_FAILING = "write_failing"
    """Transient failures (throttling, 5xx, timeouts), ``write_failures_before_backoff`` in
    a row."""


class Limit(StrEnum):
    """The global limits (settings ``limits.*``) that can hold pods back from a scale-up
    (``scaler_limited_pods_total{limit}``); the values are the settings' names."""

    MAX_NODES_TOTAL = "max_nodes_total"
    MAX_USD_PER_HOUR = "max_usd_per_hour"
    MAX_NEW_NODES_PER_DECISION = "max_new_nodes_per_decision"


@slot_init
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


@slot_init
@dataclass(frozen=True, slots=True)
class NotifyUnplaceable:
    """Tell the people who own ``pods`` why no pool can run them (a NotTriggerScaleUp Event)."""

    pods: tuple[PodSpec, ...]
    reason: str
    limit: Limit | None = None
    """Set when a pool could run the pods but a global limit held them back: which one
    (scaler/core/limits.py)."""
    retry_at_s: float | None = None
    """When a decision will place them (a per-decision cap); None: when something changes."""


@slot_init
@dataclass(frozen=True, slots=True)
class MarkIdle:
    """Record on the node since when it has been idle (``scaler.io/idle-since``); ``None``
    clears it because the node is busy again."""

    node: str
    since_s: float | None


@slot_init
@dataclass(frozen=True, slots=True)
class RemoveNode:
    """Terminate the node's instance and shrink its pool by one (never below min size)."""

    node: str
    pool: str
    instance_id: str | None
    reason: str
    price_usd_per_hour: float = 0.0
    cause: RemovalCause = RemovalCause.IDLE
    """The scale-down of idle nodes is the only decision that removes a node."""


@slot_init
@dataclass(frozen=True, slots=True)
class Untaint:
    """Remove scaler's removal taint (``scaler.io/removing``) from a node that is not being
    removed after all: a process died between tainting and terminating it, or a pod landed."""

    node: str
    reason: str


@slot_init
@dataclass(frozen=True, slots=True)
class GiveUpLaunch:
    """``count`` nodes asked of ``pool`` have not registered within the provision timeout:
    take them back (desired size lowered, the unregistered instances terminated), back the
    pool off, and let their pods be placed again."""

    pool: str
    count: int
    reason: str


@slot_init
@dataclass(frozen=True, slots=True)
class Cordon:
    """Mark the node unschedulable and taint it, so nothing new lands on a node that is
    going away (``taint`` None: cordon only)."""

    node: str
    reason: str
    taint: Taint | None = None


@slot_init
@dataclass(frozen=True, slots=True)
class Uncordon:
    """Undo a :class:`Cordon` (a rebalance recommendation that no interruption followed)."""

    node: str
    reason: str
    taint_key: str | None = None


@slot_init
@dataclass(frozen=True, slots=True)
class LifecycleHook:
    """An ASG lifecycle action to complete (CONTINUE) once the node is drained."""

    asg: str
    hook: str
    token: str
    instance_id: str


@slot_init
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
    cause: DrainCause = field(kw_only=True)


@slot_init
@dataclass(frozen=True, slots=True)
class Evict:
    """Evict one pod so it is re-created and placed again (a misplaced, restartable pod)."""

    pod: PodSpec
    node: str
    reason: str


@slot_init
@dataclass(frozen=True, slots=True)
class LabelNode:
    """Set a label on a node: ``scaler.io/pool`` on a node whose pool is known from its
    providerID only, so that pods pinned to the pool can be scheduled on it."""

    node: str
    key: str
    value: str
    reason: str


@slot_init
@dataclass(frozen=True, slots=True)
class Forget:
    """The node's instance stopped or terminated: drop what is remembered about it."""

    node: str
    reason: str


Action = (
    ScaleUp | NotifyUnplaceable | MarkIdle | RemoveNode | Cordon | Uncordon | Drain
    | Evict | Forget | LabelNode
    | Untaint | GiveUpLaunch
)


@slot_init
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
