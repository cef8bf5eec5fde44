"""Prometheus metrics: what the controller does, and what the cluster's money buys.

:class:`Metrics` owns one ``CollectorRegistry`` (served at ``/metrics`` by
:func:`scaler.adapters.http.serve`) fed from four places:

- **Events** (it subscribes to the loop's typed events, :mod:`scaler.telemetry`): counters
  and histograms, through the table :data:`EVENTS`, by event type and the event's typed
  causes (never its prose reason).
- **Reviews** (:meth:`Metrics.update`, every ``review_interval_s`` on the leader): node cost,
  waste by reason and pool, misplaced pods. These gauges are rebuilt on every review, so a
  pool, node or pod that went away leaves no stale series.
- **The loop's snapshots** (the :class:`~scaler.telemetry.ClusterSeen` event each tick)
  and **decisions** (:meth:`Metrics.follow`): pending pods, the oldest one's age, decide
  time, scale-up latency (each pod's wait from pending to the scale-up that serves it).
- **Leadership, prices, the SQS feed** (:meth:`leading`, :meth:`prices_refreshed`,
  :meth:`feed`), read when Prometheus scrapes.

Only the leader reviews and decides: when a replica stops leading its leader-only gauges are
cleared, so ``sum()`` over replicas counts one view. Label values are bounded: pools, notice
kinds and fixed reason/outcome sets; pod names only for the top ``top_misplaced`` misplaced
pods (the rest are summed per namespace). docs/metrics.md documents every metric.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from scaler.core.actions import BackoffCause, Decision, Limit, RemovalCause, ScaleUp
from scaler.core.interruptions import (
    RebalanceRecommendation,
    ScheduledChange,
    SpotInterruption,
    StateChange,
    TerminateLifecycleAction,
)
from scaler.core.lifecycle import PodCost, Waste
from scaler.core.offerings import Offerings, PoolProblem
from scaler.core.state import ClusterView
from scaler.telemetry import (
    ClusterSeen,
    DestructiveHeld,
    Drained,
    Event,
    Failure,
    LaunchFailed,
    LaunchGivenUp,
    NodeRemoved,
    NoticeHandled,
    Operation,
    PodMigrated,
    PodsLimited,
    PodsUnplaceable,
    PoolBackedOff,
    ReconcileFailed,
    ScaledUp,
)

WASTE_REASONS: Final = ("idle", "booting", "oversized", "misplaced")
"""They partition the waste: ``misplaced`` pods' waste is taken out of ``oversized``, so
``sum(scaler_waste_dollars_per_hour)`` is the whole waste, counted once."""
NOTICE_KINDS: Final = tuple(
    k.kind
    for k in (
        SpotInterruption,
        RebalanceRecommendation,
        ScheduledChange,
        TerminateLifecycleAction,
        StateChange,
    )
)
DRAINING_KINDS: Final = NOTICE_KINDS[:4]
"""Kinds whose notice can drain a node (a state change only forgets it)."""
OUTCOMES: Final = ("drained_in_time", "late", "ignored")
FEED_KEYS: Final = (
    "received",
    *NOTICE_KINDS,
    "test_notification",
    "malformed",
    "unknown",
    "exhausted",
    "quarantined",
    "parked",
    "acked",
)
"""``SqsInterruptionFeed.counts`` keys, exported at 0 before the first message."""
DECIDE_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""decide() takes milliseconds on a few thousand pods; seconds mean something is wrong."""
SCALE_UP_BUCKETS_S: Final = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200)
"""Batching alone is 1-10 s; past a minute the pod waited on backoff or a failed pool."""

OPERATIONS: Final = tuple(op.value for op in Operation)
"""``scaler_operation_errors_total{operation}``: what a :class:`~scaler.telemetry.Failure`
event names (failures with no operation are only logged)."""
REMOVAL_REASONS: Final = (*(c.value for c in RemovalCause), "other")
"""``scaler_node_removals_total{reason}``: the :class:`~scaler.core.actions.RemovalCause`
values; ``other`` stays exported at 0 for dashboards and alerts written against it."""
BACKOFF_CAUSES: Final = tuple(c.value for c in BackoffCause)
"""Why a pool was backed off by a write (the reason text is logged and on the pods' Events):
refused (AccessDenied, a validation error: at once), or failing write after write."""

DRY_RUN_EVENTS: Final = (ScaledUp, NodeRemoved, PodMigrated, Drained)
"""Events of writes that a dry run only logs. Under ``--dry-run`` they leave every counter
of work done at zero (scale-ups, nodes added, removals, migrations, drains and the scale-up
latency) and count in ``scaler_dry_run_actions_total{action}`` (the event's name) instead."""
LIMITS: Final = tuple(limit.value for limit in Limit)
"""The global limits (settings ``limits.*``) that can hold pods back."""

E = TypeVar("E", bound=Event)


def _known(values: Sequence[str], value: object) -> str:
    return str(value) if value in values else "other"


def _ignored(e: Event) -> str:
    return "ignored"


def _one(e: Event) -> float:
    return 1.0


def _always(e: Event) -> bool:
    return True


def _drain_outcome(e: Drained) -> str:
    # A drain with nothing to evict is in time by definition (the reconciler reports a
    # lifecycle drain of an instance with no node as late: its deadline is "now").
    if e.in_time or not e.pods:
        return "drained_in_time"
    return "late"


def _operation(e: Failure) -> str:
    return e.operation.value if e.operation is not None else ""


@dataclass(frozen=True)
class Count(Generic[E]):
    """One row of :data:`EVENTS`: on an ``event`` (that type or a subclass), add
    ``amount(e)`` to counter ``metric`` with labels computed from the event's typed
    attributes (never its prose), if ``when(e)``."""

    event: type[E]
    metric: str
    labels: Mapping[str, Callable[[E], str]] = field(default_factory=dict)
    amount: Callable[[E], float] = _one
    when: Callable[[E], bool] = _always


EVENTS: Final[tuple[Count[Any], ...]] = (
    Count(ScaledUp, "scaler_scale_ups_total", {"pool": lambda e: e.action.pool}),
    Count(
        ScaledUp, "scaler_nodes_added_total", {"pool": lambda e: e.action.pool},
        lambda e: float(e.action.count),
    ),
    # ScaledUp also observes scaler_scale_up_latency_seconds per pod (Metrics._latency).
    Count(
        NodeRemoved,
        "scaler_node_removals_total",
        {"pool": lambda e: str(e.pool or ""), "reason": lambda e: e.cause.value},
    ),
    Count(LaunchFailed, "scaler_launch_failures_total", {"pool": lambda e: e.pool}),
    Count(
        PoolBackedOff,
        "scaler_pool_backoffs_total",
        {"pool": lambda e: e.pool, "cause": lambda e: e.cause.value},
    ),
    Count(
        NoticeHandled,
        "scaler_interruptions_total",
        {"kind": lambda e: e.kind, "outcome": _ignored},
        when=lambda e: not e.actions,
    ),
    Count(
        Drained,
        "scaler_interruptions_total",
        # A drain taken over after a restart answers no notice of this process: "other".
        {"kind": lambda e: _known(NOTICE_KINDS, e.cause.value), "outcome": _drain_outcome},
    ),
    Count(ReconcileFailed, "scaler_reconcile_errors_total"),
    Count(PodsUnplaceable, "scaler_unplaceable_pods_total", amount=lambda e: float(e.pods)),
    Count(
        PodsLimited,
        "scaler_limited_pods_total",
        {"limit": lambda e: e.limit.value},
        lambda e: float(e.pods),
    ),
    Count(PodMigrated, "scaler_migrations_total"),
    Count(DestructiveHeld, "scaler_destructive_actions_held_total", {"action": lambda e: e.action}),
    # A launch given up (its node never registered) is a launch that failed.
    Count(LaunchGivenUp, "scaler_launch_failures_total", {"pool": lambda e: e.pool}),
    Count(
        Failure,
        "scaler_operation_errors_total",
        {"operation": _operation},
        when=lambda e: e.operation is not None,
    ),
)
"""Event type -> counter, the whole mapping (docs/metrics.md has it as a table)."""

# (name, labels, help): every counter and plain gauge; docs/metrics.md says more.
COUNTERS: Final = (
    ("scaler_scale_ups_total", ("pool",), "Scale-up actions: one per pool per decision."),
    ("scaler_nodes_added_total", ("pool",), "Nodes asked for by scale-ups (desired added)."),
    (
        "scaler_node_removals_total",
        ("pool", "reason"),
        "Nodes terminated: idle, interrupted, other.",
    ),
    ("scaler_launch_failures_total", ("pool",), "Launches the cloud reported failed."),
    (
        "scaler_pool_backoffs_total",
        ("pool", "cause"),
        "Pools skipped for a while after failed scale-up writes: write_rejected, write_failing.",
    ),
    ("scaler_interruptions_total", ("kind", "outcome"), "Interruption notices, by outcome."),
    ("scaler_reconcile_errors_total", (), "Control-loop ticks that failed (retried)."),
    (
        "scaler_dry_run_actions_total",
        ("action",),
        "Under --dry-run: writes logged, not made (scale_up, remove_node, migrate, drained).",
    ),
    ("scaler_operation_errors_total", ("operation",), "Failed writes and background work."),
    ("scaler_unplaceable_pods_total", (), "Pending pods no pool fits, per decision."),
    (
        "scaler_limited_pods_total",
        ("limit",),
        "Pending pods a global limit held back from a scale-up (first decision that held them).",
    ),
    ("scaler_migrations_total", (), "Misplaced restartable pods evicted to a cheaper pool."),
    (
        "scaler_destructive_actions_held_total",
        ("action",),
        "Removals, terminating drains, evictions held back: the cluster cache was too old.",
    ),
)
GAUGES: Final = (
    ("scaler_leader", (), "1 while this replica leads (acts), else 0."),
    ("scaler_dry_run", (), "1 when this process runs with --dry-run (writes nothing), else 0."),
    ("scaler_pending_pods", (), "Unschedulable pods the leader sees."),
    ("scaler_node_cost_dollars_per_hour", ("pool", "capacity_type"), "Managed nodes' cost."),
    ("scaler_waste_dollars_per_hour", ("reason", "pool"), "Money bought and not used."),
    ("scaler_waste_since_timestamp_seconds", ("reason", "pool"), "Wasting since, unbroken."),
    ("scaler_misplaced_pod_waste_dollars_per_hour", ("namespace", "pod"), "Top N misplaced pods."),
    ("scaler_misplaced_waste_dollars_per_hour", ("namespace",), "Other misplaced pods' waste."),
    ("scaler_misplaced_pods", (), "Misplaced pods (all of them)."),
    ("scaler_last_review_timestamp_seconds", (), "When the last review's snapshot was taken."),
)
LEADER_ONLY: Final = (
    "scaler_node_cost_dollars_per_hour",
    "scaler_waste_dollars_per_hour",
    "scaler_waste_since_timestamp_seconds",
    "scaler_misplaced_pod_waste_dollars_per_hour",
    "scaler_misplaced_waste_dollars_per_hour",
)
"""Labelled gauges cleared when this replica stops leading."""


class ReviewLike(Protocol):
    """What :meth:`Metrics.update` reads (``scaler.loop.reconciler.Review``)."""

    @property
    def view(self) -> ClusterView: ...
    @property
    def offerings(self) -> Offerings: ...
    @property
    def waste(self) -> Waste: ...
    @property
    def misplaced(self) -> Sequence[PodCost]: ...


class Follows(Protocol):
    """What :meth:`Metrics.follow` reads of the reconciler."""

    last_decision: Decision | None
    last_decide_ms: float

    @property
    def problems(self) -> list[PoolProblem]: ...


class Metrics:
    """The Prometheus face of one controller process. Subscribe it to the loop's events.

    ``clock`` (unix seconds) ages the oldest pending pod and the prices at scrape time;
    ``broken_pools()`` names pools the fleet could not even read (their ASG), on top of the
    followed reconciler's pool problems; ``catalog_built_at`` (``YYYY-MM-DD``) dates the
    on-demand prices.
    """

    def __init__(
        self,
        *,
        top_misplaced: int = 20,
        clock: Callable[[], float] = time.time,
        broken_pools: Callable[[], Iterable[str]] = lambda: (),
        catalog_built_at: str | None = None,
        dry_run: bool = False,
    ) -> None:
        if top_misplaced < 0:
            raise ValueError("top_misplaced must be >= 0")
        self.top_misplaced = top_misplaced
        self.registry = CollectorRegistry()
        self._clock = clock
        self._broken_pools = broken_pools
        self._catalog_at = (
            datetime.fromisoformat(catalog_built_at).replace(tzinfo=UTC).timestamp()
            if catalog_built_at
            else None
        )
        self._spot_at: float | None = None
        self.on_demand_at: Callable[[], float | None] | None = None
        """When live on-demand prices were last read (None: never; the catalog's apply)."""
        self._feed: Mapping[str, int] | None = None
        self._follows: Follows | None = None
        self._decision: Decision | None = None
        self._matched: set[int] = set()
        self._pending_since: dict[str, float] = {}
        self._waste_since: dict[tuple[str, str], float] = {}
        # Registered first: scraping it catches up on decisions before the histograms are read.
        self.registry.register(_Live(self))
        r = self.registry
        self.counters = {n: Counter(n, doc, labels, registry=r) for n, labels, doc in COUNTERS}
        self.gauges = {n: Gauge(n, doc, labels, registry=r) for n, labels, doc in GAUGES}
        self.decision_duration = Histogram(
            "scaler_decision_duration_seconds",
            "Time decide() took, per decision.",
            buckets=DECIDE_BUCKETS_S,
            registry=r,
        )
        self.scale_up_latency = Histogram(
            "scaler_scale_up_latency_seconds",
            "Per pod: from pending (PodScheduled=False) to the scale-up decided for it.",
            buckets=SCALE_UP_BUCKETS_S,
            registry=r,
        )
        interruptions = self.counters["scaler_interruptions_total"]
        for kind in NOTICE_KINDS:
            for outcome in OUTCOMES if kind in DRAINING_KINDS else ("ignored",):
                interruptions.labels(kind=kind, outcome=outcome)
        for op in OPERATIONS:
            self.counters["scaler_operation_errors_total"].labels(operation=op)
        for limit in LIMITS:
            self.counters["scaler_limited_pods_total"].labels(limit=limit)
        self.dry_run = dry_run
        self.gauges["scaler_dry_run"].set(1 if dry_run else 0)
        if dry_run:
            for written in DRY_RUN_EVENTS:
                self.counters["scaler_dry_run_actions_total"].labels(action=written.name)

    # ----------------------------------------------------------------------------- events

    def __call__(self, event: Event) -> None:
        if isinstance(event, ClusterSeen):
            self.saw(event.view)
            return
        self._catch_up()
        if self.dry_run and isinstance(event, DRY_RUN_EVENTS):
            # Nothing was written: counting it as done would show scale-ups that never were.
            self.counters["scaler_dry_run_actions_total"].labels(action=event.name).inc()
            return
        for row in EVENTS:
            if isinstance(event, row.event) and row.when(event):
                counter = self.counters[row.metric]
                child = (
                    counter.labels(**{k: f(event) for k, f in row.labels.items()})
                    if row.labels
                    else counter
                )
                child.inc(row.amount(event))
        if isinstance(event, ScaledUp):
            self._latency(event.action)

    def _latency(self, up: ScaleUp) -> None:
        """Find the ScaleUp in the current decision (a replacement launched for an
        interruption is in none: no pod waited for it) and observe each pod's wait."""
        decision = self._decision
        if decision is None:
            return
        for action in decision.of(ScaleUp):
            if action == up and id(action) not in self._matched:
                self._matched.add(id(action))
                assert isinstance(action, ScaleUp)
                for pod in action.pods:
                    since = self._pending_since.get(pod)
                    if since is not None:
                        self.scale_up_latency.observe(max(0.0, decision.now_s - since))
                return

    # ------------------------------------------------------------- snapshots and decisions

    def follow(self, reconciler: Follows) -> None:
        """Read decide time, decisions (for scale-up latency) and pool problems from it."""
        self._follows = reconciler

    def saw(self, view: ClusterView) -> None:
        self._catch_up()
        self._pending_since = {pp.pod.key: pp.since_s for pp in view.pending}
        self.gauges["scaler_pending_pods"].set(len(view.pending))

    def _catch_up(self) -> None:
        """Record the followed reconciler's newest decision once (called on every snapshot,
        event and scrape, so no decision goes unrecorded for long)."""
        follows = self._follows
        if (
            follows is None
            or follows.last_decision is None
            or follows.last_decision is self._decision
        ):
            return
        self._decision = follows.last_decision
        self._matched = set()
        self.decision_duration.observe(follows.last_decide_ms / 1e3)

    # ---------------------------------------------------------------------------- reviews

    def update(self, review: ReviewLike) -> None:
        """Rebuild the cost, waste and misplaced gauges from one review."""
        self.saw(review.view)
        now = review.view.now_s
        pools = {p.name for p in review.offerings.pools}
        pools |= {pool for pool, _ in review.waste.node_cost_by_pool}
        pools |= {pool for _, pool in review.waste.by_reason_pool}
        self._ensure_pool_series(pools)
        g = self.gauges
        node_cost = g["scaler_node_cost_dollars_per_hour"]
        waste = g["scaler_waste_dollars_per_hour"]
        waste_since = g["scaler_waste_since_timestamp_seconds"]
        misplaced_pod = g["scaler_misplaced_pod_waste_dollars_per_hour"]
        misplaced_rest = g["scaler_misplaced_waste_dollars_per_hour"]

        node_cost.clear()
        for (pool, capacity_type), usd in sorted(review.waste.node_cost_by_pool.items()):
            node_cost.labels(pool=pool, capacity_type=capacity_type).set(usd)

        by = waste_by_reason_pool(review.waste, review.misplaced)
        waste.clear()
        waste_since.clear()
        since: dict[tuple[str, str], float] = {}
        for reason in dict.fromkeys((*WASTE_REASONS, *(r for r, _ in by))):
            for pool in sorted(pools):
                usd = by.get((reason, pool), 0.0)
                waste.labels(reason=reason, pool=pool).set(usd)
                if usd > 0:
                    since[(reason, pool)] = self._waste_since.get((reason, pool), now)
                    waste_since.labels(reason=reason, pool=pool).set(since[(reason, pool)])
        self._waste_since = since

        ranked = sorted(review.misplaced, key=lambda c: (-c.waste_usd_per_hour, c.pod.key))
        misplaced_pod.clear()
        for c in ranked[: self.top_misplaced]:
            misplaced_pod.labels(namespace=c.pod.namespace, pod=c.pod.name).set(
                c.waste_usd_per_hour
            )
        rest: dict[str, float] = defaultdict(float)
        for c in ranked[self.top_misplaced :]:
            rest[c.pod.namespace] += c.waste_usd_per_hour
        misplaced_rest.clear()
        for namespace, usd in sorted(rest.items()):
            misplaced_rest.labels(namespace=namespace).set(usd)
        self.gauges["scaler_misplaced_pods"].set(len(ranked))
        self.gauges["scaler_last_review_timestamp_seconds"].set(now)

    def _ensure_pool_series(self, pools: Iterable[str]) -> None:
        """Pool counters start at 0, so increase() sees their first event."""
        c = self.counters
        for pool in pools:
            for name in (
                "scaler_scale_ups_total",
                "scaler_nodes_added_total",
                "scaler_launch_failures_total",
            ):
                c[name].labels(pool=pool)
            for reason in REMOVAL_REASONS:
                c["scaler_node_removals_total"].labels(pool=pool, reason=reason)
            for cause in BACKOFF_CAUSES:
                c["scaler_pool_backoffs_total"].labels(pool=pool, cause=cause)

    # ---------------------------------------------------------- leadership, prices, feed

    def leading(self, leading: bool) -> None:
        """Set ``scaler_leader``; on losing the lead, drop what only a leader knows."""
        self.gauges["scaler_leader"].set(1 if leading else 0)
        if not leading:
            for name in LEADER_ONLY:
                self.gauges[name].clear()
            self._waste_since = {}
            self.gauges["scaler_misplaced_pods"].set(0)
            self.saw(ClusterView(now_s=self._clock()))

    def prices_refreshed(self, at_s: float) -> None:
        """The Spot price refresh succeeded at ``at_s``."""
        self._spot_at = at_s

    def feed(self, counts: Mapping[str, int]) -> None:
        """Export the SQS feed's ``counts`` as ``scaler_messages_total{kind}``."""
        self._feed = counts

    def disabled_pools(self) -> set[str]:
        follows = self._follows
        pools = {p.pool for p in follows.problems} if follows is not None else set()
        return pools | set(self._broken_pools())

    def live(self) -> Iterator[Metric]:
        """The families computed at scrape time."""
        self._catch_up()
        now = self._clock()
        oldest = min(self._pending_since.values(), default=None)
        age = GaugeMetricFamily(
            "scaler_pending_pod_age_seconds", "How long the oldest pending pod has waited."
        )
        age.add_metric([], 0.0 if oldest is None else max(0.0, now - oldest))
        yield age
        disabled = GaugeMetricFamily(
            "scaler_pools_disabled",
            "Pools scaler cannot use (broken ASG, unknown instance type, ...).",
        )
        disabled.add_metric([], len(self.disabled_pools()))
        yield disabled
        prices = GaugeMetricFamily(
            "scaler_price_catalog_age_seconds",
            "Age of the prices decisions use; source: on_demand (catalog), spot (last refresh).",
            labels=["source"],
        )
        live_at = self.on_demand_at() if self.on_demand_at is not None else None
        if live_at is not None:  # live on-demand prices (--live-prices) replace the catalog's
            prices.add_metric(["on_demand"], max(0.0, now - live_at))
        elif self._catalog_at is not None:
            prices.add_metric(["on_demand"], max(0.0, now - self._catalog_at))
        if self._spot_at is not None:
            prices.add_metric(["spot"], max(0.0, now - self._spot_at))
        yield prices
        if self._feed is not None:
            messages = CounterMetricFamily(
                "scaler_messages",
                "Interruption queue messages by what the feed made of them.",
                labels=["kind"],
            )
            for kind in dict.fromkeys((*FEED_KEYS, *sorted(self._feed))):
                messages.add_metric([kind], float(self._feed.get(kind, 0)))
            yield messages


def waste_by_reason_pool(
    waste: Waste, misplaced: Sequence[PodCost]
) -> dict[tuple[str, str], float]:
    """The review's waste with misplaced pods' waste moved from ``oversized`` to
    ``misplaced``: the reasons partition the total."""
    by = dict(waste.by_reason_pool)
    moved: dict[str, float] = defaultdict(float)
    for c in misplaced:
        moved[c.pool] += c.waste_usd_per_hour
    for pool, usd in moved.items():
        by[("oversized", pool)] = max(by.get(("oversized", pool), 0.0) - usd, 0.0)
        by[("misplaced", pool)] = by.get(("misplaced", pool), 0.0) + usd
    return by


class _Live:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.live()


__all__ = ["EVENTS", "Metrics", "waste_by_reason_pool"]
