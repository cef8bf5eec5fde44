"""What the reconciler remembers between ticks: launches in flight, pools backing off, the
last scale-up, recent removals. Plain data with small update methods; no I/O, no clock.

What acting on a decision taught is absorbed in one place, :func:`absorb`, from typed
outcomes (:data:`Outcome`: launched, write failed, given up, marked idle, removed, evicted,
...): the live loop and the simulator act through the same handlers
(:mod:`scaler.loop.actuation`), so they update memory identically, and the rules are
tested without ports.

Nothing here is needed for correctness after a restart: in-flight capacity is re-derived
from the pools' desired sizes versus registered nodes (and counted against every pending
pod, remembered or not), idle timers live on the nodes as annotations, and a removal cut
short lives on the node as its ``scaler.io/removing`` taint. Memory only sharpens decisions
between restarts. A launch made before a restart gets a fresh provision timeout in the new
process (:meth:`Memory.adopt`): a node that never registers is given up at most one timeout
late.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from scaler.core.actions import ScaleUp
from scaler.core.frozen import slot_init
from scaler.core.model import BoolArray
from scaler.core.offerings import Offerings
from scaler.core.settings import Settings
from scaler.core.state import LaunchFailure

MIGRATION_MEMORY_S = 86400.0
"""A workload's last migration is remembered this long: a workload whose replacement came
back misplaced is tried again at most once a day, not every minute."""


@slot_init
@dataclass(frozen=True, slots=True)
class Launch:
    """Nodes asked of ``pool`` at ``at_s`` for ``pods``; given up at ``deadline_s``."""

    pool: str
    count: int
    pods: frozenset[str]
    at_s: float
    deadline_s: float


@dataclass
class Memory:
    launches: list[Launch] = field(default_factory=list)
    backoff_until_s: dict[str, float] = field(default_factory=dict)
    backoff_reason: dict[str, str] = field(default_factory=dict)
    last_scale_up_s: float = float("-inf")
    batch_floor_s: float = float("-inf")
    """Pending pods older than this were already considered by a scale-up decision; they do
    not hold a new batch window open."""
    removals_s: deque[float] = field(default_factory=deque)
    idle_since_s: dict[str, float] = field(default_factory=dict)
    failures_seen_s: float = float("-inf")
    rebalance_until_s: dict[str, float] = field(default_factory=dict)
    """Node -> when its rebalance cordon is lifted if no interruption came."""
    interrupted: dict[str, float] = field(default_factory=dict)
    """Node -> its interruption deadline (it is going away; never uncordon it)."""
    migrations_s: deque[float] = field(default_factory=deque)
    migrated: dict[str, tuple[float, str]] = field(default_factory=dict)
    """Workload (:func:`scaler.core.lifecycle.workload_of`) -> when a pod of it was last
    evicted to move to a cheaper pool, and the pool it left; kept ``MIGRATION_MEMORY_S``."""
    reclaimed_until_s: dict[str, float] = field(default_factory=dict)
    """Pool -> end of the backoff a Spot interruption put on it (:meth:`reclaimed`): a
    backoff that pins still admit and replacements may wait out."""
    expected_life_s: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Workload (:func:`scaler.core.lifecycle.workload_of`) of a pod drained by a Spot
    interruption -> (when, its expected remaining life: its age then, as a long-running pod
    tends to run on); kept while its pool's backoff lasts and an hour more."""
    write_failures: dict[str, int] = field(default_factory=dict)
    """Pool -> scale-up writes that failed in a row (reset by a success or a backoff)."""
    overdue: list[Launch] = field(default_factory=list)
    """Launches that passed their provision timeout at the last :meth:`forget`: the next
    decision gives up what of them never registered; the reconciler then clears this."""

    # ------------------------------------------------------------------ updates

    def launched(self, action: ScaleUp, *, now: float, timeout_s: float) -> None:
        self.launches.append(
            Launch(action.pool, action.count, frozenset(action.pods), now, now + timeout_s)
        )
        self.last_scale_up_s = now

    def launch_failed(self, failure: LaunchFailure, *, ttl_s: float) -> None:
        """The pool backs off for ``ttl_s``; its in-flight launches are forgotten so their
        pods are placed again, on the next-cheapest pool, at the next tick."""
        until = failure.at_s + ttl_s
        if until > self.backoff_until_s.get(failure.pool, float("-inf")):
            self.backoff_until_s[failure.pool] = until
            self.backoff_reason[failure.pool] = failure.reason
        self.launches = [
            launch
            for launch in self.launches
            if not (launch.pool == failure.pool and launch.at_s <= failure.at_s)
        ]
        self.failures_seen_s = max(self.failures_seen_s, failure.at_s)

    def mark_unavailable(self, pool: str, *, until_s: float, reason: str) -> None:
        """Skip ``pool`` until ``until_s`` without forgetting its launches in flight (a
        Spot interruption says nothing about launches that already succeeded)."""
        if until_s > self.backoff_until_s.get(pool, float("-inf")):
            self.backoff_until_s[pool] = until_s
            self.backoff_reason[pool] = reason

    def reclaimed(self, pool: str, *, now: float, until_s: float, lives: Mapping[str, float]) -> None:
        """A Spot interruption on ``pool``: it backs off until ``until_s``, and ``lives``
        (workload -> expected remaining life, s) of the pods it drained are remembered."""
        self.mark_unavailable(pool, until_s=until_s, reason="Spot interruption")
        self.reclaimed_until_s[pool] = max(until_s, self.reclaimed_until_s.get(pool, until_s))
        for workload, life in lives.items():
            self.expected_life_s[workload] = (now, life)

    def reclaim_only(self, pool: str, now: float) -> bool:
        """``pool`` backs off only because a Spot interruption reclaimed capacity there."""
        until = self.backoff_until_s.get(pool, float("-inf"))
        return until > now and until <= self.reclaimed_until_s.get(pool, float("-inf"))

    def write_failed(self, pool: str, *, now: float, reason: str, ttl_s: float,
                     persistent: bool, after: int) -> bool:
        """A scale-up write to ``pool`` failed. The pool backs off for ``ttl_s`` (True) when
        the error is ``persistent`` (the same request will be refused again) or this is the
        ``after``-th failure in a row; a transient error short of that is retried."""
        failures = self.write_failures.get(pool, 0) + 1
        if not persistent and failures < max(after, 1):
            self.write_failures[pool] = failures
            return False
        self.write_failures.pop(pool, None)
        self.mark_unavailable(pool, until_s=now + ttl_s, reason=reason)
        return True

    def write_succeeded(self, pool: str) -> None:
        self.write_failures.pop(pool, None)

    def gave_up(self, pool: str, *, now: float, ttl_s: float, reason: str) -> None:
        """Nodes of ``pool`` never registered: back it off for ``ttl_s`` (like a failed
        launch) and forget its launches so far, so their pods are placed again elsewhere.
        Unlike :meth:`launch_failed` this moves no cursor of the cloud's failure list."""
        self.mark_unavailable(pool, until_s=now + ttl_s, reason=reason)
        self.launches = [
            launch for launch in self.launches if not (launch.pool == pool and launch.at_s <= now)
        ]

    def adopt(self, on_the_way: Mapping[str, int], *, now: float, timeout_s: float) -> None:
        """Nodes on their way that no remembered launch explains (this process restarted,
        a launch's pods went elsewhere, someone else raised the pool) get a launch of their
        own, for no pod, so they too are given up if they never register."""
        if not on_the_way:
            return
        # A plain dict, not a Counter: this runs every tick a pool has nodes on the way.
        known: dict[str, int] = {}
        for launches in (self.launches, self.overdue):  # overdue ones are judged this tick
            for launch in launches:
                known[launch.pool] = known.get(launch.pool, 0) + launch.count
        for pool, n in on_the_way.items():
            k = known.get(pool, 0)
            if n > k:
                self.launches.append(Launch(pool, n - k, frozenset(), now, now + timeout_s))

    def removed(self, *, now: float) -> None:
        self.removals_s.append(now)

    def forget(self, *, now: float, pending: set[str]) -> None:
        """Drop launches whose pods all left the pending set, and backoffs that ended.
        Launches past their deadline move to :attr:`overdue` for the next decision."""
        # Called every tick; most tables are empty most ticks, so each is scanned only when
        # it holds something (a comprehension over an empty table still costs a call).
        if self.launches:
            kept: list[Launch] = []
            for launch in self.launches:  # one pass: most ticks keep every launch
                if launch.deadline_s <= now:
                    self.overdue.append(launch)
                elif not launch.pods or not launch.pods.isdisjoint(pending):
                    kept.append(launch)
            if len(kept) < len(self.launches):
                self.launches = kept
        if self.backoff_until_s:
            for pool in [p for p, until in self.backoff_until_s.items() if until <= now]:
                del self.backoff_until_s[pool]
                self.backoff_reason.pop(pool, None)
        while self.removals_s and self.removals_s[0] <= now - 60.0:
            self.removals_s.popleft()
        while self.migrations_s and self.migrations_s[0] <= now - 60.0:
            self.migrations_s.popleft()
        if self.migrated:
            for workload in [w for w, (at, _) in self.migrated.items()
                             if at <= now - MIGRATION_MEMORY_S]:
                del self.migrated[workload]
        if self.reclaimed_until_s:
            for pool in [p for p, until in self.reclaimed_until_s.items() if until <= now]:
                del self.reclaimed_until_s[pool]
        if self.expected_life_s:
            for workload in [w for w, (at, _) in self.expected_life_s.items()
                             if at < now - 3600.0]:
                del self.expected_life_s[workload]
        if self.interrupted:
            for node in [n for n, deadline in self.interrupted.items() if deadline < now - 3600.0]:
                del self.interrupted[node]

    # ------------------------------------------------------------------- queries

    def backing_off(self, pool: str, now: float) -> bool:
        return self.backoff_until_s.get(pool, float("-inf")) > now

    def available(self, offerings: Offerings, now: float) -> BoolArray:
        """(P,) False for pools backing off, in offerings order (only the few pools in the
        backoff table are looked at)."""
        mask = np.ones(len(offerings), dtype=bool)
        for name in self.backoff_until_s:
            i = offerings.get(name)
            if i is not None and self.backing_off(name, now):
                mask[i] = False
        return mask

    def in_flight(self) -> dict[str, str]:
        """Pod key -> pool of the launch it waits for."""
        return {pod: launch.pool for launch in self.launches for pod in launch.pods}


# ---------------------------------------------------------------------- outcomes


@slot_init
@dataclass(frozen=True, slots=True)
class BatchClosed:
    """A decision placed the pending pods: older ones no longer hold a batch window open."""


@slot_init
@dataclass(frozen=True, slots=True)
class Launched:
    """The pool's desired size was raised for ``action`` (the write succeeded)."""

    action: ScaleUp


@slot_init
@dataclass(frozen=True, slots=True)
class WriteFailed:
    """A scale-up write to ``pool`` failed; ``persistent``: it would be refused again
    (access denied, a validation error, the group gone, no capacity)."""

    pool: str
    reason: str
    persistent: bool


@slot_init
@dataclass(frozen=True, slots=True)
class GaveUp:
    """Nodes asked of ``pool`` never registered within the provision timeout."""

    pool: str
    reason: str


@slot_init
@dataclass(frozen=True, slots=True)
class IdleMarked:
    """The node is idle since ``since_s`` (None: busy again)."""

    node: str
    since_s: float | None


@slot_init
@dataclass(frozen=True, slots=True)
class Uncordoned:
    """The node's rebalance cordon was lifted."""

    node: str


@slot_init
@dataclass(frozen=True, slots=True)
class Forgotten:
    """The node's instance stopped or terminated."""

    node: str


@slot_init
@dataclass(frozen=True, slots=True)
class Interrupted:
    """A drain that ends in the node's termination began; it must be gone by ``deadline_s``."""

    node: str
    deadline_s: float


@slot_init
@dataclass(frozen=True, slots=True)
class Evicted:
    """A pod of ``workload`` was evicted to move it to a cheaper pool, leaving ``pool``
    (None: its node's pool is unknown)."""

    workload: str
    pool: str | None


@slot_init
@dataclass(frozen=True, slots=True)
class Removed:
    """The removal protocol ended without the node staying: ``terminated`` now, or (False)
    its node or instance was already gone or going."""

    node: str
    terminated: bool


@slot_init
@dataclass(frozen=True, slots=True)
class LaunchFailureSeen:
    """The cloud listed a failed launch (an ASG scaling activity)."""

    failure: LaunchFailure


@slot_init
@dataclass(frozen=True, slots=True)
class SpotWarned:
    """A Spot interruption warning for ``node`` (of ``pool``; None: unknown): it goes at
    ``deadline_s``; ``lives`` are the expected remaining lives (s) of the workloads it runs
    (:func:`scaler.core.lifecycle.drained_lives`)."""

    node: str
    pool: str | None
    deadline_s: float
    lives: Mapping[str, float]


@slot_init
@dataclass(frozen=True, slots=True)
class RebalanceCordoned:
    """A rebalance recommendation cordoned ``node``: lifted after the rebalance window if no
    interruption follows."""

    node: str


Outcome = (
    BatchClosed | Launched | WriteFailed | GaveUp | IdleMarked | Uncordoned | Forgotten
    | Interrupted | Evicted | Removed | LaunchFailureSeen | SpotWarned | RebalanceCordoned
)


def absorb(memory: Memory, outcome: Outcome, settings: Settings, *, now: float) -> bool:
    """Update ``memory`` with what acting at ``now`` taught. True when acting backed a pool
    off (a failed write that is persistent or one too many in a row; a launch given up): the
    caller then asks for a tick soon. News from the cloud (a listed launch failure, a Spot
    warning) backs pools off too, and returns False: no write of this decision failed."""
    up = settings.scale_up
    # The commonest first: each case is a type test. Fields are read off the outcome, not
    # captured by position: a positional class pattern looks its __match_args__ up per
    # case tried, which cost more than the update it guards.
    o = outcome
    match o:
        case IdleMarked():
            if o.since_s is None:
                memory.idle_since_s.pop(o.node, None)
            else:
                memory.idle_since_s[o.node] = o.since_s
        case BatchClosed():
            memory.batch_floor_s = now
        case Launched():
            memory.write_succeeded(o.action.pool)
            memory.launched(o.action, now=now, timeout_s=up.provision_timeout_s)
        case WriteFailed():
            return memory.write_failed(
                o.pool, now=now, reason=o.reason, ttl_s=up.launch_failure_ttl_s,
                persistent=o.persistent, after=up.write_failures_before_backoff,
            )
        case GaveUp():
            memory.gave_up(o.pool, now=now, ttl_s=up.launch_failure_ttl_s, reason=o.reason)
            return True
        case Uncordoned():
            memory.rebalance_until_s.pop(o.node, None)
        case Forgotten():
            memory.idle_since_s.pop(o.node, None)
            memory.rebalance_until_s.pop(o.node, None)
        case Interrupted():
            memory.interrupted[o.node] = o.deadline_s
        case Evicted():
            memory.migrations_s.append(now)
            if o.pool is not None:
                memory.migrated[o.workload] = (now, o.pool)
        case Removed():
            memory.idle_since_s.pop(o.node, None)
            if o.terminated:
                memory.removed(now=now)
        case LaunchFailureSeen():
            memory.launch_failed(o.failure, ttl_s=up.launch_failure_ttl_s)
        case SpotWarned():
            memory.interrupted[o.node] = o.deadline_s
            memory.rebalance_until_s.pop(o.node, None)
            if o.pool is not None:
                memory.reclaimed(
                    o.pool, now=now, until_s=now + settings.lifecycle.interrupted_pool_ttl_s,
                    lives=o.lives,
                )
        case RebalanceCordoned():
            memory.rebalance_until_s[o.node] = now + settings.lifecycle.rebalance_window_s
    return False
