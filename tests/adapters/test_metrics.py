"""The metrics exporter, pure: events and hand-built reviews in, exposition text out. Also
the alert rules (promtool) and the static checks on the dashboard and docs.

Pools from the bundled catalog: od-a (m5.large on-demand, $0.096/h), big (m5.4xlarge
on-demand, $0.768/h).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import numpy as np
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scaler.adapters.metrics import (
    EVENTS,
    Metrics,
    waste_by_reason_pool,
)
from scaler.core.actions import (
    BackoffCause,
    Decision,
    Drain,
    DrainCause,
    Limit,
    RemovalCause,
    ScaleUp,
)
from scaler.core.catalog import Catalog
from scaler.core.interruptions import (
    RebalanceRecommendation,
    ScheduledChange,
    SpotInterruption,
    TerminateLifecycleAction,
)
from scaler.core.lifecycle import PodCost, Waste, misplaced, pod_costs, respond, waste
from scaler.core.memory import Memory
from scaler.core.model import PodSpec, PoolSpec, Resources
from scaler.core.offerings import PoolProblem, build_offerings
from scaler.core.settings import LifecycleSettings, Settings, preset
from scaler.core.state import BoundPod, ClusterView, Node, PendingPod
from scaler.loop.drain import drain
from scaler.loop.reconciler import Review
from scaler.telemetry import (
    CancelUnfulfilledFailed,
    ClusterSeen,
    DestructiveHeld,
    Drained,
    EvictGaveUp,
    Failure,
    GiveUpFailed,
    LaunchFailed,
    LaunchGivenUp,
    NodeCordoned,
    NodeRemoved,
    NoticeHandled,
    Operation,
    PodMigrated,
    PodsLimited,
    PodsUnplaceable,
    PoolBackedOff,
    ReconcileFailed,
    ReviewFailed,
    ScaledUp,
    ScaleUpFailed,
)

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "manifests/alerts/scaler-rules.yaml"
PROMETHEUSRULE = REPO / "manifests/components/prometheus-operator/prometheusrule.yaml"
PROMTOOL_TESTS = REPO / "tests/adapters/promtool/scaler-rules.test.yaml"
DASHBOARD = REPO / "manifests/dashboards/scaler-dashboard.json"
DOCS = REPO / "docs/metrics.md"

POOLS = [
    PoolSpec("od-a", ("m5.large",), max_size=10, current_size=2),
    PoolSpec("big", ("m5.4xlarge",), max_size=10, current_size=1),
]


@pytest.fixture(scope="module")
def offerings():
    off, problems = build_offerings(POOLS, Catalog.load())
    assert not problems
    return off


def pod(name: str, namespace: str = "default", mem: float = 1024) -> PodSpec:
    return PodSpec(
        name, namespace=namespace, requests=Resources(cpu_milli=500, memory_mib=mem, pods=1)
    )


def review_of(view: ClusterView, offerings) -> Review:
    """A review as the reconciler builds one, from the core's own functions."""
    costs = pod_costs(view, offerings, preset("scaler"))
    bad = misplaced(costs, preset("scaler"))
    return Review(view, offerings, costs, waste(view, offerings, costs), bad, 0)


def cluster(now: float = 1000.0, *, bound=(), pending=()) -> ClusterView:
    nodes = (
        Node("od-1", "od-a", "m5.large", "on-demand"),  # idle
        Node("od-2", "od-a", "m5.large", "on-demand", ready=False),  # booting
        Node("big-1", "big", "m5.4xlarge", "on-demand"),
    )
    return ClusterView(now, nodes=nodes, bound=tuple(bound), pending=tuple(pending))


def samples(metrics: Metrics) -> dict[tuple[str, frozenset], float]:
    """Every sample of the exposition text, keyed by (name, labels)."""
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def series(metrics: Metrics, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in samples(metrics).items() if n == name}


def misplaced_cost(name: str, namespace: str, waste_usd: float, pool: str = "big") -> PodCost:
    return PodCost(pod(name, namespace), "big-1", pool, 0.768, 0.1 + waste_usd, 0.1)


# ----------------------------------------------------------------------------- reviews


def test_a_review_exports_node_cost_and_waste_by_reason_and_pool(offerings):
    view = cluster(bound=[BoundPod(pod("a"), "big-1"), BoundPod(pod("b"), "big-1")])
    review = review_of(view, offerings)
    m = Metrics()
    m.update(review)

    assert value(
        m, "scaler_node_cost_dollars_per_hour", pool="od-a", capacity_type="on-demand"
    ) == pytest.approx(0.192)
    assert value(
        m, "scaler_node_cost_dollars_per_hour", pool="big", capacity_type="on-demand"
    ) == pytest.approx(0.768)
    assert value(m, "scaler_waste_dollars_per_hour", reason="idle", pool="od-a") == pytest.approx(
        0.096
    )
    assert value(
        m, "scaler_waste_dollars_per_hour", reason="booting", pool="od-a"
    ) == pytest.approx(0.096)
    # Two pods share the $0.768 node ($0.384 each) and fit a $0.096 m5.large: both misplaced,
    # so their waste is reported as misplaced and no longer as oversized.
    assert len(review.misplaced) == 2
    assert value(
        m, "scaler_waste_dollars_per_hour", reason="misplaced", pool="big"
    ) == pytest.approx(2 * (0.384 - 0.096))
    assert value(
        m, "scaler_waste_dollars_per_hour", reason="oversized", pool="big"
    ) == pytest.approx(0.0)
    # The reasons partition the waste: summing them counts every dollar once.
    assert sum(series(m, "scaler_waste_dollars_per_hour").values()) == pytest.approx(
        review.waste.total()
    )
    assert value(m, "scaler_misplaced_pods") == 2
    assert value(m, "scaler_last_review_timestamp_seconds") == 1000.0


def test_every_reason_and_known_pool_has_a_waste_series_even_at_zero(offerings):
    m = Metrics()
    m.update(review_of(cluster(), offerings))
    got = {(dict(k)["reason"], dict(k)["pool"]) for k in series(m, "scaler_waste_dollars_per_hour")}
    assert got == {
        (r, p) for r in ("idle", "booting", "oversized", "misplaced") for p in ("od-a", "big")
    }
    # ...and the pool counters start at 0, so increase() sees their first event.
    assert value(m, "scaler_scale_ups_total", pool="big") == 0.0
    assert value(m, "scaler_node_removals_total", pool="big", reason="idle") == 0.0


def test_oversized_pods_under_the_misplaced_factor_stay_oversized():
    by = waste_by_reason_pool(
        Waste({("oversized", "big"): 0.5, ("idle", "big"): 0.768}, {}),
        [misplaced_cost("x", "ns", 0.2)],
    )
    assert by == {
        ("oversized", "big"): pytest.approx(0.3),
        ("misplaced", "big"): pytest.approx(0.2),
        ("idle", "big"): pytest.approx(0.768),
    }


def test_a_thousand_misplaced_pods_still_make_twenty_pod_series():
    costs = [misplaced_cost(f"p{i}", f"ns{i % 7}", 0.001 * i) for i in range(1000)]
    no_pools, _ = build_offerings([], Catalog.load())
    m = Metrics()
    m.update(Review(ClusterView(0.0), no_pools, costs, Waste({}, {}), costs, 0))
    assert len(series(m, "scaler_misplaced_pod_waste_dollars_per_hour")) == 20
    assert len(series(m, "scaler_misplaced_waste_dollars_per_hour")) == 7


def test_series_of_pools_and_pods_that_went_away_are_cleared_on_the_next_review(offerings):
    m = Metrics()
    m.update(
        review_of(
            cluster(bound=[BoundPod(pod("a", "ml"), "big-1"), BoundPod(pod("b", "ml"), "big-1")]),
            offerings,
        )
    )
    assert series(m, "scaler_misplaced_pod_waste_dollars_per_hour")

    only_od = ClusterView(1060.0, nodes=(Node("od-1", "od-a", "m5.large", "on-demand"),))
    off, _ = build_offerings(POOLS[:1], Catalog.load())
    m.update(review_of(only_od, off))
    assert series(m, "scaler_misplaced_pod_waste_dollars_per_hour") == {}
    assert {dict(k)["pool"] for k in series(m, "scaler_node_cost_dollars_per_hour")} == {"od-a"}
    assert {dict(k)["pool"] for k in series(m, "scaler_waste_dollars_per_hour")} == {"od-a"}
    assert {dict(k)["reason"] for k in series(m, "scaler_waste_since_timestamp_seconds")} == {
        "idle"
    }
    assert value(m, "scaler_misplaced_pods") == 0


def test_waste_since_is_the_first_review_that_saw_it_until_it_stops(offerings):
    m = Metrics()
    idle_od = ClusterView(1000.0, nodes=(Node("od-1", "od-a", "m5.large", "on-demand"),))
    m.update(review_of(idle_od, offerings))
    m.update(review_of(ClusterView(1060.0, nodes=idle_od.nodes), offerings))
    assert value(m, "scaler_waste_since_timestamp_seconds", reason="idle", pool="od-a") == 1000.0

    busy = ClusterView(1120.0, nodes=idle_od.nodes, bound=(BoundPod(pod("x", mem=4096), "od-1"),))
    m.update(review_of(busy, offerings))
    assert value(m, "scaler_waste_since_timestamp_seconds", reason="idle", pool="od-a") is None

    m.update(review_of(ClusterView(1180.0, nodes=idle_od.nodes), offerings))
    assert value(m, "scaler_waste_since_timestamp_seconds", reason="idle", pool="od-a") == 1180.0


# ------------------------------------------------------------------------------ events

UP = ScaleUp("od-a", 3, ("default/a", "default/b", "default/c"), "m5.large", 0.096, "cheapest fit")


@pytest.mark.parametrize(
    ("event", "name", "labels", "expected"),
    [
        (ScaledUp(UP), "scaler_scale_ups_total", {"pool": "od-a"}, 1),
        (ScaledUp(UP), "scaler_nodes_added_total", {"pool": "od-a"}, 3),
        (
            NodeRemoved("n", "od-a", RemovalCause.IDLE, "idle 130s (timeout 120s), $0.0960/h",
                        "i-1", 0.096),
            "scaler_node_removals_total",
            {"pool": "od-a", "reason": "idle"},
            1,
        ),
        (
            NodeRemoved("n", "big", RemovalCause.INTERRUPTED, "drained before interruption"),
            "scaler_node_removals_total",
            {"pool": "big", "reason": "interrupted"},
            1,
        ),
        (
            LaunchFailed("big", "InsufficientInstanceCapacity"),
            "scaler_launch_failures_total",
            {"pool": "big"},
            1,
        ),
        (
            NoticeHandled("rebalance_recommendation", 0),
            "scaler_interruptions_total",
            {"kind": "rebalance_recommendation", "outcome": "ignored"},
            1,
        ),
        (
            NoticeHandled("spot_interruption", 3),
            "scaler_interruptions_total",
            {"kind": "spot_interruption", "outcome": "ignored"},
            0,
        ),
        (
            Drained("n", 2, 2, True, 4.0, "Spot interruption warning; evict before the deadline",
                    DrainCause.SPOT_INTERRUPTION),
            "scaler_interruptions_total",
            {"kind": "spot_interruption", "outcome": "drained_in_time"},
            1,
        ),
        (
            Drained("n", 2, 1, False, 105.0, "ASG terminate lifecycle action",
                    DrainCause.TERMINATE_LIFECYCLE_ACTION),
            "scaler_interruptions_total",
            {"kind": "terminate_lifecycle_action", "outcome": "late"},
            1,
        ),
        (
            Drained("", 0, 0, False, 0.1, "instance has no node",
                    DrainCause.TERMINATE_LIFECYCLE_ACTION),
            "scaler_interruptions_total",
            {"kind": "terminate_lifecycle_action", "outcome": "drained_in_time"},
            1,
        ),
        (
            Drained("n", 1, 1, True, 2.0, "resuming an interrupted node's drain",
                    DrainCause.RESUMED),
            "scaler_interruptions_total",
            {"kind": "other", "outcome": "drained_in_time"},
            1,
        ),
        (ReconcileFailed("Throttled: x", 1.0), "scaler_reconcile_errors_total", {}, 1),
        (PodsUnplaceable(4, "no pool has 2000Gi"), "scaler_unplaceable_pods_total", {}, 4),
        (PodMigrated("ml/a", "misplaced"), "scaler_migrations_total", {}, 1),
        (
            EvictGaveUp("ml/a", "PDB"),
            "scaler_operation_errors_total",
            {"operation": "evict_deadline"},
            1,
        ),
        (
            ScaleUpFailed("big", 3, "x", False),
            "scaler_operation_errors_total",
            {"operation": "scale_up"},
            1,
        ),
        (ReviewFailed("x"), "scaler_operation_errors_total", {"operation": "review"}, 1),
        (
            PodsLimited(7, Limit.MAX_NODES_TOTAL, "limit max_nodes_total=10"),
            "scaler_limited_pods_total",
            {"limit": "max_nodes_total"},
            7,
        ),
        (
            PoolBackedOff("big", BackoffCause.WRITE_REJECTED, "AccessDenied", 1.0),
            "scaler_pool_backoffs_total",
            {"pool": "big", "cause": "write_rejected"},
            1,
        ),
        (
            DestructiveHeld("RemoveNode", "n1", 400.0),
            "scaler_destructive_actions_held_total",
            {"action": "RemoveNode"},
            1,
        ),
    ],
)
def test_events_count_into_their_metric(event, name, labels, expected):
    m = Metrics()
    m(event)
    assert value(m, name, **labels) == expected


def test_events_no_row_counts_change_nothing():
    m = Metrics()
    before = samples(m)
    m(NodeCordoned("n", "x"))
    m(CancelUnfulfilledFailed("big", "x"))  # a failure with no operation is only logged
    assert samples(m) == before


def test_a_removal_is_labelled_by_its_cause_whatever_its_reason_says():
    """The label comes from the typed cause: a reworded reason cannot move the count."""
    for cause in RemovalCause:
        m = Metrics()
        m(NodeRemoved("n", "big", cause, "some new wording"))
        assert value(m, "scaler_node_removals_total", pool="big", reason=cause.value) == 1


def test_every_backoff_cause_and_limit_reaches_its_label():
    m = Metrics()
    for cause in BackoffCause:
        m(PoolBackedOff("big", cause, "reworded", 1.0))
        assert value(m, "scaler_pool_backoffs_total", pool="big", cause=cause.value) == 1
    for limit in Limit:
        m(PodsLimited(2, limit, "reworded"))
        assert value(m, "scaler_limited_pods_total", limit=limit.value) == 2


def failures() -> list[Failure]:
    """One event of every Failure type, with placeholder fields."""
    out: list[Failure] = []
    # slots=True makes a second class per dataclass; both are listed as subclasses.
    for kind in {k.name: k for k in Failure.__subclasses__()}.values():
        values = {
            f.name: (0 if f.type in ("int", "float") else False if f.type == "bool" else "x")
            for f in dataclasses.fields(kind)
        }
        out.append(kind(**values))
    return out


def test_every_failure_with_an_operation_counts_under_it_and_each_operation_has_one():
    m = Metrics()
    counted = set()
    for event in failures():
        m(event)
        if event.operation is not None:
            counted.add(event.operation)
            assert value(m, "scaler_operation_errors_total",
                         operation=event.operation.value) == 1, event
    assert counted == set(Operation)


def test_every_interruption_kind_and_outcome_is_exported_at_zero_from_the_start():
    got = series(Metrics(), "scaler_interruptions_total")
    assert len(got) == 4 * 3 + 1  # draining kinds x outcomes, and state changes: ignored only
    assert set(got.values()) == {0.0}


def drains_for(notice, settings: Settings, offerings, *, with_node: bool = True) -> list[Drain]:
    node = Node("n1", "od-a", "m5.large", "on-demand", instance_id="i-0123456789abcdef0")
    view = ClusterView(
        1000.0, nodes=(node,) if with_node else (), bound=(BoundPod(pod("w"), "n1"),)
    )
    actions = respond(
        notice, view, POOLS, offerings, Memory(), settings, now=1000.0, rng=np.random.default_rng(0)
    )
    return [a for a in actions if isinstance(a, Drain)]


class _Draining:
    """Actuator, fleet and clock enough for loop.drain.drain: evictions and terminations
    succeed, time stands still."""

    async def evict(self, pod: PodSpec, *, grace_period_s: int | None = None) -> None: ...
    async def complete_lifecycle(self, hook: object) -> None: ...
    async def terminate(self, node: Node) -> None: ...
    async def pods_on(self, node: str) -> list[BoundPod]:
        return []

    def now(self) -> float:
        return 1000.0


def test_the_drain_of_every_notice_kind_is_counted_under_that_kind(offerings):
    """From the core's respond() through the loop's drain to the counter: the drain carries
    its notice kind as a typed cause, and the drained event the loop emits is counted
    under it (no reason text is read on the way)."""
    iid = "i-0123456789abcdef0"
    drain_rebalance = Settings(lifecycle=LifecycleSettings(rebalance_action="drain"))
    cases = [
        (SpotInterruption(iid, "terminate", 1120.0, "e1", 1000.0), preset("scaler"), True),
        (
            ScheduledChange((iid,), "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", 5000.0, "e2", 1000.0),
            preset("scaler"),
            True,
        ),
        (
            TerminateLifecycleAction(iid, "asg", "hook", "token", 1000.0, "e3"),
            preset("scaler"),
            True,
        ),
        (
            TerminateLifecycleAction(iid, "asg", "hook", "token", 1000.0, "e4"),
            preset("scaler"),
            False,
        ),
        (RebalanceRecommendation(iid, 1000.0, "e5"), drain_rebalance, True),
    ]
    ports = _Draining()
    node = Node("n1", "od-a", "m5.large", "on-demand", instance_id=iid)
    for notice, settings, with_node in cases:
        (action,) = drains_for(notice, settings, offerings, with_node=with_node)
        m = Metrics()
        anyio.run(functools.partial(
            drain, action, node if with_node else None, actuator=ports, fleet=ports,
            clock=ports, observe=m, cluster=ports,
        ))
        got = {dict(k)["kind"]: v for k, v in series(m, "scaler_interruptions_total").items()
               if v}
        assert got == {notice.kind: 1.0}, (notice.kind, action.reason)


def test_the_event_table_names_only_declared_counters():
    m = Metrics()
    assert {row.metric for row in EVENTS} <= set(m.counters)


# ------------------------------------------------------------ snapshots and decisions


class Reconciling:
    """What Metrics.follow reads of a reconciler."""

    def __init__(self) -> None:
        self.last_decision: Decision | None = None
        self.last_decide_ms = 0.0
        self.problems: list[PoolProblem] = []

    def decided(self, decision: Decision, ms: float) -> None:
        self.last_decision, self.last_decide_ms = decision, ms


def test_scale_up_latency_is_each_pods_wait_from_pending_to_the_decision():
    m = Metrics()
    rec = Reconciling()
    m.follow(rec)
    m.saw(ClusterView(130.0, pending=(PendingPod(pod("a"), 100.0), PendingPod(pod("b"), 110.0))))
    up = ScaleUp("od-a", 1, ("default/a", "default/b"), "m5.large", 0.096, "cheapest fit")
    rec.decided(Decision(now_s=130.0, actions=(up,)), ms=4.0)
    m(ScaledUp(up))
    assert value(m, "scaler_scale_up_latency_seconds_count") == 2
    assert value(m, "scaler_scale_up_latency_seconds_sum") == pytest.approx(30.0 + 20.0)
    # The same event again (no new decision) is not counted twice...
    m(ScaledUp(up))
    assert value(m, "scaler_scale_up_latency_seconds_count") == 2
    # ...nor is a replacement launched for an interruption (in no decision: no pod waited).
    replacement = dataclasses.replace(up, reason="replacing n1 (Spot interruption warning)")
    m(ScaledUp(replacement))
    assert value(m, "scaler_scale_up_latency_seconds_count") == 2
    assert value(m, "scaler_decision_duration_seconds_count") == 1
    assert value(m, "scaler_decision_duration_seconds_sum") == pytest.approx(0.004)


def test_every_decision_is_timed_once_whenever_it_is_noticed():
    m = Metrics()
    rec = Reconciling()
    m.follow(rec)
    for i in range(3):
        rec.decided(Decision(now_s=float(i)), ms=2.0)
        generate_latest(m.registry)  # a scrape notices it
        generate_latest(m.registry)
        m.saw(ClusterView(float(i)))  # so does the next snapshot
    assert value(m, "scaler_decision_duration_seconds_count") == 3
    assert value(m, "scaler_decision_duration_seconds_bucket", le="0.0025") == 3


def test_pending_pods_and_the_oldest_ones_age_at_scrape_time():
    now = [1000.0]
    m = Metrics(clock=lambda: now[0])
    assert value(m, "scaler_pending_pods") == 0 and value(m, "scaler_pending_pod_age_seconds") == 0
    m.saw(ClusterView(1000.0, pending=(PendingPod(pod("b"), 900.0), PendingPod(pod("a"), 700.0))))
    assert value(m, "scaler_pending_pods") == 2
    assert value(m, "scaler_pending_pod_age_seconds") == 300.0
    now[0] = 1100.0
    assert value(m, "scaler_pending_pod_age_seconds") == 400.0
    m.saw(ClusterView(1100.0))
    assert value(m, "scaler_pending_pods") == 0 and value(m, "scaler_pending_pod_age_seconds") == 0


def test_the_snapshot_a_tick_decides_on_sets_the_pending_pods():
    m = Metrics(clock=lambda: 10.0)
    m(ClusterSeen(ClusterView(10.0, pending=(PendingPod(pod("a"), 5.0),))))
    assert value(m, "scaler_pending_pods") == 1
    assert value(m, "scaler_pending_pod_age_seconds") == 5.0


def test_every_tick_shows_the_metrics_its_snapshot():
    """The reconciler emits the view each tick decides on; no wrapper around its source."""
    from simulations.testing import pod as sim_pod
    from simulations.testing import pool as sim_pool
    from simulations.testing import simulate

    seen: list[ClusterView] = []

    def watched(**kwargs):
        from scaler.loop.reconciler import Reconciler

        kwargs["observer"] = lambda e: seen.append(e.view) if isinstance(e, ClusterSeen) else None
        return Reconciler(**kwargs)

    sim = simulate([sim_pod("nb", memory="4Gi", arrival_s=0, duration_s=60)],
                   pools=[sim_pool("m5.large", max_size=2)], reconciler_factory=watched)
    assert seen and any(v.pending for v in seen)
    assert len(seen) == len(sim.decisions)


def test_losing_the_lead_drops_what_only_a_leader_knows(offerings):
    m = Metrics(clock=lambda: 2000.0)
    m.leading(True)
    m.update(
        review_of(
            cluster(
                bound=[BoundPod(pod("a"), "big-1"), BoundPod(pod("b"), "big-1")],
                pending=[PendingPod(pod("p"), 900.0)],
            ),
            offerings,
        )
    )
    assert value(m, "scaler_leader") == 1 and value(m, "scaler_pending_pods") == 1
    m(ScaledUp(UP))
    m.leading(False)
    assert value(m, "scaler_leader") == 0
    for name in (
        "scaler_waste_dollars_per_hour",
        "scaler_node_cost_dollars_per_hour",
        "scaler_misplaced_pod_waste_dollars_per_hour",
        "scaler_waste_since_timestamp_seconds",
    ):
        assert series(m, name) == {}, name
    assert value(m, "scaler_pending_pods") == 0 and value(m, "scaler_pending_pod_age_seconds") == 0
    assert value(m, "scaler_scale_ups_total", pool="od-a") == 1  # counters count on


def test_pools_disabled_counts_offering_problems_and_broken_groups_once():
    broken = ["asg-no-template", "asg-bad-type"]
    m = Metrics(broken_pools=lambda: broken)
    rec = Reconciling()
    m.follow(rec)
    rec.problems = [PoolProblem("asg-bad-type", "unknown type"), PoolProblem("gpu-x", "no price")]
    assert value(m, "scaler_pools_disabled") == 3


def test_price_ages_of_the_catalog_and_the_last_spot_refresh():
    m = Metrics(clock=lambda: 1_800_000_000.0, catalog_built_at="2027-01-14")
    assert series(m, "scaler_price_catalog_age_seconds") == {
        frozenset({("source", "on_demand")}): pytest.approx(1_800_000_000.0 - 1_799_884_800.0)
    }
    m.prices_refreshed(1_799_999_400.0)
    assert value(m, "scaler_price_catalog_age_seconds", source="spot") == 600.0


def test_the_sqs_feed_counts_are_messages_by_kind():
    from collections import Counter

    m = Metrics()
    assert series(m, "scaler_messages_total") == {}  # no feed, no series
    counts: Counter[str] = Counter()
    m.feed(counts)
    counts["received"] += 3
    counts["spot_interruption"] += 2
    counts["malformed"] += 1
    counts["something_new"] += 1
    got = {dict(k)["kind"]: v for k, v in series(m, "scaler_messages_total").items()}
    assert got["received"] == 3 and got["spot_interruption"] == 2 and got["malformed"] == 1
    assert got["something_new"] == 1 and got["acked"] == 0


def test_the_exposition_passes_promtool_check_metrics(offerings):
    promtool = _promtool()
    m = Metrics(catalog_built_at="2026-11-01")
    m.follow(Reconciling())
    m.feed({"received": 1})
    m.update(
        review_of(
            cluster(bound=[BoundPod(pod("a"), "big-1"), BoundPod(pod("b"), "big-1")]), offerings
        )
    )
    for event in (ScaledUp(UP), ReconcileFailed("x", 1.0)):
        m(event)
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(m.registry),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


# ------------------------------------------------------------------------------ alerts


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must install it: {message}", pytrace=False)
        pytest.skip(message)
    return promtool


def test_the_alert_rules_pass_promtool_check_rules():
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_in_promtools_unit_tests():
    result = subprocess.run(
        [_promtool(), "test", "rules", str(PROMTOOL_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"]
    alerts = {
        r["alert"]
        for g in yaml.safe_load(RULES.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    fired = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    quiet = {c["alertname"] for t in tests for c in t["alert_rule_test"] if not c["exp_alerts"]}
    assert fired == alerts and quiet == alerts


PROMETHEUSRULE_HEADER = """\
# scaler's alerts for the Prometheus Operator: the groups of manifests/alerts/scaler-rules.yaml
# (the source of truth, with promtool unit tests), verbatim. Edit that file, then run
#   python -m tests.adapters.test_metrics --write-prometheusrule
# tests/adapters/test_metrics.py fails while the two differ.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: scaler
  namespace: scaler-system
  labels:
    app.kubernetes.io/name: scaler
spec:
"""


def prometheusrule_text(rules_text: str, current: str | None = None) -> str:
    """The rule file's ``groups:`` (comments included) under a PrometheusRule's spec; the
    header (everything up to ``spec:``) of ``current`` is kept."""
    header = PROMETHEUSRULE_HEADER
    if current and "\nspec:\n" in current:
        header = current[: current.index("\nspec:\n") + len("\nspec:\n")]
    start = rules_text.index("\ngroups:\n") + 1
    body = rules_text[start:].splitlines(keepends=True)
    return header + "".join("  " + line if line.strip() else line for line in body)


def test_the_prometheus_operator_rule_carries_the_rule_files_groups():
    rule = yaml.safe_load(PROMETHEUSRULE.read_text())
    assert rule["kind"] == "PrometheusRule" and rule["metadata"]["name"] == "scaler"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"], (
        "run: python -m tests.adapters.test_metrics --write-prometheusrule"
    )
    # What the writer makes is what is there (comments included), so rewriting is a no-op.
    text = PROMETHEUSRULE.read_text()
    assert yaml.safe_load(prometheusrule_text(RULES.read_text(), text)) == rule


# --------------------------------------------------------------- dashboard and docs


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def exported(offerings) -> set[str]:
    """Every sample name a fully fed exporter shows (``_total``, ``_bucket``, ... included)."""
    m = Metrics(catalog_built_at="2026-11-01", top_misplaced=1)
    m.feed({})
    m.prices_refreshed(0.0)
    m.update(
        review_of(
            cluster(bound=[BoundPod(pod("a"), "big-1"), BoundPod(pod("b"), "big-1")]), offerings
        )
    )
    return {name for name, _ in samples(m) if not name.endswith("_created")}


def test_the_dashboard_queries_only_metrics_that_exist(offerings):
    used = {n for e in dashboard_exprs() for n in re.findall(r"\b(scaler_[a-z_]+)", e)}
    assert used and used <= exported(offerings), used - exported(offerings)


def test_the_dashboards_first_row_answers_what_where_and_since_when():
    board = json.loads(DASHBOARD.read_text())
    assert {"name": "datasource", "type": "datasource"}.items() <= board["templating"]["list"][
        0
    ].items()
    assert all(
        p["datasource"]["uid"] == "${datasource}" for p in board["panels"] if p["type"] != "row"
    )
    rows = [i for i, p in enumerate(board["panels"]) if p["type"] == "row"]
    first = board["panels"][rows[0] + 1 : rows[1]]
    titles = " | ".join(p["title"] for p in first)
    for what in ("Waste now", "Waste by reason", "Waste by pool", "since when", "misplaced pods"):
        assert what.lower() in titles.lower(), what
    assert [board["panels"][i]["title"] for i in rows[1:]] == [
        "Cost",
        "Pending pods and scale-up latency",
        "Scale-ups and removals",
        "Interruptions",
        "Controller health",
    ]


def test_the_docs_describe_every_metric_event_and_alert(offerings):
    text = DOCS.read_text()
    names = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exported(offerings)}
    for name in names:
        assert f"`{name}`" in text, name
    for row in EVENTS:
        if row.event is Failure:
            for kind in Failure.__subclasses__():
                assert f"`{kind.name}`" in text, kind.name
        else:
            assert f"`{row.event.name}`" in text, row.event.name
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            assert f"`{rule['alert']}`" in text, rule["alert"]


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-prometheusrule"]:
        current = PROMETHEUSRULE.read_text() if PROMETHEUSRULE.exists() else None
        PROMETHEUSRULE.write_text(prometheusrule_text(RULES.read_text(), current))
        print(f"wrote {PROMETHEUSRULE.relative_to(REPO)}")
    else:
        sys.exit("usage: python -m tests.adapters.test_metrics --write-prometheusrule")


def test_a_launch_given_up_counts_as_a_launch_failure_and_a_failed_give_up_as_an_error():
    m = Metrics()
    m(LaunchGivenUp("big", 1, 1, "never"))
    assert value(m, "scaler_launch_failures_total", pool="big") == 1
    m(GiveUpFailed("big", "x"))
    assert value(m, "scaler_operation_errors_total", operation="give_up") == 1
