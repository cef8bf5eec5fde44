"""Expected runtime and lost work by workload (scaler/core/runtime.py), and what they do to
placement: a pod's Spot risk is the pool's interruptions per hour x the pod's own expected
lost work x the pool's price.

Hand-worked figures: m1.large Spot $0.06/h reclaimed >20% a month (0.25/730 per hour),
r1.xlarge Spot $0.09/h <5% (0.025/730); on-demand m1 $0.20, r1 $0.30 (test_placement.py's
catalog). A pod expected to lose L hours costs on m1 0.06 x (1 + 0.25/730 x L), on r1
0.09 x (1 + 0.025/730 x L): r1 wins once L > 0.03 / (0.06 x 0.25/730 - 0.09 x 0.025/730)
= 0.03 / 0.000017466 = 1,717.6 h.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaler.core.model import ON_DEMAND, SPOT, PodSpec, PoolSpec, Resources
from scaler.core.placement import place
from scaler.core.runtime import (
    ANNOTATION_EXPECTED_RUNTIME,
    MAX_WORKLOADS,
    Moments,
    RuntimeHistory,
    RuntimeRecorder,
    estimate,
    lost_work_h,
    parse_duration_s,
    with_runs,
    workload_key,
)
from scaler.core.settings import PlacementSettings
from tests.core.test_placement import GIB, offer, pod, pool

S = PlacementSettings()
H = 3600.0


def bare(name: str, ns: str = "batch", **kw: object) -> PodSpec:
    return PodSpec(name=name, namespace=ns, **kw)  # type: ignore[arg-type]


def history(*runs: tuple[PodSpec, float]) -> RuntimeHistory:
    rec = RuntimeRecorder()
    for p, t in runs:
        rec.record(p, t)
    return rec.history()


def test_durations_read_as_seconds_with_a_unit_or_none() -> None:
    assert parse_duration_s("90") == 90.0
    assert parse_duration_s("45m") == 2700.0
    assert parse_duration_s("6h") == 21600.0
    assert parse_duration_s("1.5d") == 129600.0
    assert parse_duration_s("soon") is None
    assert parse_duration_s("-3h") is None


def test_a_controllers_pods_and_a_cronjobs_jobs_are_one_workload() -> None:
    assert workload_key(bare("train-x7b2k")) == "batch/train"
    assert workload_key(bare("backup-28312345-x7b2k", owner_kind="Job")) == "batch/backup"
    # A bare pod keeps its digits: only a Job's schedule suffix is the CronJob's.
    assert workload_key(bare("backup-28312345")) == "batch/backup-28312345"
    assert workload_key(bare("openb-pod-0006")) == "batch/openb-pod-0006"


def test_an_explicit_expected_runtime_wins_over_any_history() -> None:
    p = bare("train-x7b2k", annotations=((ANNOTATION_EXPECTED_RUNTIME, "10h"),))
    h = history((bare("train-bbbbb"), 60.0))
    e = estimate(p, h, S)
    # Interrupted at a uniform moment of 10 h: 5 h lost on average.
    assert (e.remaining_s, e.lost_work_s, e.basis) == (10 * H, 5 * H, "annotation")
    older = estimate(p, h, S, age_s=4 * H)
    assert (older.remaining_s, older.lost_work_s) == (6 * H, 4 * H + 3 * H)


def test_services_lose_a_restart_and_notebooks_their_unsaved_day() -> None:
    h = history(*[(bare("web-bbbbb"), 9 * H)] * 3)
    web = estimate(bare("web-x7b2k", owner_kind="ReplicaSet"), h, S)
    assert (web.lost_work_s, web.basis) == (S.service_lost_work_h * H, "service")
    nb = estimate(bare("jupyter-ann", labels=(("component", "singleuser-server"),)), h, S)
    assert (nb.lost_work_s, nb.basis) == (S.spot_lost_work_h * H, "notebook")
    kf = estimate(bare("nb-0", owner_kind="StatefulSet", labels=(("notebook-name", "nb"),)), h, S)
    assert kf.basis == "notebook"  # a Kubeflow notebook is a StatefulSet, still a notebook


def test_a_workloads_own_runs_give_the_length_biased_half_run() -> None:
    # Runs of 1 h and 3 h: an interruption lands in a run in proportion to its length, so
    # the expected loss is (1 + 9) / (2 x 4) = 1.25 h (not half the mean, 1 h).
    h = history((bare("etl-bbbbb"), 1 * H), (bare("etl-ccccc"), 3 * H))
    e = estimate(bare("etl-x7b2k"), h, S)
    assert e.basis == "workload"
    assert e.lost_work_s == pytest.approx(1.25 * H)
    assert e.remaining_s == pytest.approx(2 * H)  # the median


def test_age_keeps_only_the_runs_still_going_and_past_them_expects_as_long_again() -> None:
    h = history((bare("etl-bbbbb"), 1 * H), (bare("etl-ccccc"), 3 * H))
    # At 2 h only the 3 h run is still going: 1 h left, 2 h done, loss 2 + 0.5 h.
    mid = estimate(bare("etl-x7b2k"), h, S, age_s=2 * H)
    assert (mid.remaining_s, mid.lost_work_s) == pytest.approx((1 * H, 2.5 * H))
    # At 5 h it has outlived every run: as long again, 5 + 2.5 h at stake.
    old = estimate(bare("etl-x7b2k"), h, S, age_s=5 * H)
    assert (old.remaining_s, old.lost_work_s) == pytest.approx((5 * H, 7.5 * H))


def test_a_heavy_tailed_namespace_expects_the_tail_where_interruptions_land() -> None:
    # 99 pods of 6 minutes and one of 1,000 h: the median pod is short, but nearly every
    # interrupted hour is the long one's: (99 x 0.01 + 1e6) / (2 x (9.9 + 1000)) h.
    runs = [(bare(f"job-{i:04d}"), 0.1 * H) for i in range(99)] + [(bare("job-long"), 1000 * H)]
    h = history(*runs)
    e = estimate(bare("job-new"), h, S)
    assert e.basis == "namespace"
    assert e.lost_work_s / H == pytest.approx((99 * 0.01 + 1000.0**2) / (2 * (9.9 + 1000.0)))
    assert e.lost_work_s > 490 * H


def test_too_little_history_falls_back_to_spot_lost_work_h() -> None:
    h = history(*[(bare(f"job-{i}"), 60.0) for i in range(S.runtime_min_samples - 1)])
    e = estimate(bare("job-new"), h, S)
    assert (e.lost_work_s, e.basis) == (S.spot_lost_work_h * H, "default")
    assert math.isnan(e.remaining_s)


def test_the_recorder_keeps_recent_runs_per_workload_and_a_bounded_number_of_workloads() -> None:
    rec = RuntimeRecorder(samples_per_workload=3, max_workloads=2)
    for t in (1.0, 2.0, 3.0, 4.0):
        rec.record(bare("a-bbbbb"), t)
    first = rec.history()
    assert first.workloads["batch/a"] == (2.0, 3.0, 4.0)
    assert rec.history() is first  # nothing new: the same snapshot
    rec.record(bare("b"), 5.0)
    rec.record(bare("c"), 6.0)  # a third workload: "a" finished longest ago, forgotten
    later = rec.history()
    assert set(later.workloads) == {"batch/b", "batch/c"}
    assert later.namespaces["batch"].count == 6
    assert first.workloads["batch/a"] == (2.0, 3.0, 4.0)  # a snapshot never changes
    rec.record(bare("d"), -1.0)  # a clock that went back: ignored
    assert rec.history() is later
    assert MAX_WORKLOADS >= 1000


def test_a_snapshot_still_held_keeps_both_maps_and_one_let_go_is_written_in_place() -> None:
    rec = RuntimeRecorder()
    rec.record(bare("a"), 1.0)
    held = rec.history()
    rec.record(bare("a"), 2.0)
    rec.record(bare("b", ns="other"), 3.0)
    assert dict(held.workloads) == {"batch/a": (1.0,)}
    assert dict(held.namespaces) == {"batch": Moments(1, 1.0, 1.0)}
    later = rec.history()
    assert dict(later.workloads) == {"batch/a": (1.0, 2.0), "other/b": (3.0,)}
    assert later.namespaces["batch"] == Moments(2, 3.0, 5.0)
    # Nobody holds ``later`` any more: the next run goes into the very maps it shared.
    workloads, namespaces = later.workloads, later.namespaces
    del later
    rec.record(bare("c"), 4.0)
    now = rec.history()
    assert now.workloads is workloads and now.namespaces is namespaces
    assert workloads["batch/c"] == (4.0,) and namespaces["batch"].count == 3
    assert dict(held.workloads) == {"batch/a": (1.0,)}


def test_every_snapshot_holds_what_was_recorded_before_it_in_recency_order() -> None:
    # Thousands of runs, so the recorder rebuilds its own dict many times over: each
    # snapshot must still be that moment's history, oldest workload first, and stay so.
    rec = RuntimeRecorder(samples_per_workload=2, max_workloads=50)
    model: dict[str, tuple[float, ...]] = {}
    kept: list[tuple[RuntimeHistory, dict[str, tuple[float, ...]]]] = []
    for i in range(3000):
        name = f"job-{(i * 7919) % 120}"
        rec.record(bare(name), float(i))
        key = f"batch/{name}"
        runs = model.pop(key, ())
        model[key] = (*runs[-1:], float(i))
        if len(model) > 50:
            del model[next(iter(model))]
        if i % 37 == 0:
            kept.append((rec.history(), dict(model)))
    for history, then in kept:
        assert list(history.workloads.items()) == list(then.items())
    assert list(rec.history().workloads.items()) == list(model.items())


def test_a_replacement_is_judged_with_the_run_its_interruption_ends() -> None:
    h = with_runs(RuntimeHistory(), [(bare("sim-pod"), 800 * H)])
    assert estimate(bare("sim-pod"), h, S).lost_work_s == pytest.approx(400 * H)


def test_without_risk_by_runtime_there_are_no_estimates() -> None:
    off = PlacementSettings(spot_risk_by_runtime=False)
    assert lost_work_h([bare("x")], RuntimeHistory(), off) is None
    got = lost_work_h([bare("x")], RuntimeHistory(), S)
    assert got is not None and got.tolist() == [S.spot_lost_work_h]


# ------------------------------------------------------------------ placement


def spot_pools() -> list[PoolSpec]:
    return [pool("m1.large", SPOT), pool("r1.xlarge", SPOT), pool("m1.large", ON_DEMAND)]


def test_a_long_pod_takes_the_steadier_spot_pool_and_a_short_one_the_cheapest() -> None:
    o = offer(spot_pools())
    short = pod("short", cpu=1000, mem=8 * GIB)
    long = pod("long", cpu=1000, mem=8 * GIB)
    placement = place([short, long], o, lost_work_h=np.array([0.1, 2000.0]))
    chosen = {p.name: g.pool.name for p, g in placement.by_pod()}
    assert chosen == {"short": "m1-spot", "long": "r1-spot"}
    g = next(g for g in placement.groups if g.pool.name == "r1-spot")
    risk = 0.025 / 730 * 2000.0 * 0.09
    assert g.risk_usd_per_hour == pytest.approx(risk)
    assert g.cost_usd_per_hour == pytest.approx(0.09 + risk)
    assert g.runner_up == "m1-spot"
    assert g.runner_up_cost_usd_per_hour == pytest.approx(0.06 * (1 + 0.25 / 730 * 2000.0))
    assert f"${risk:.4f}/h Spot risk" in g.reason
    # Just under the break-even (1,717.6 h) the cheaper pool still wins.
    (g,) = place([long], o, lost_work_h=np.array([1700.0])).groups
    assert g.pool.name == "m1-spot"


def test_estimates_change_nothing_where_no_pool_is_ever_interrupted() -> None:
    o = offer([pool("m1.large", ON_DEMAND), pool("r1.xlarge", ON_DEMAND)])
    pods = [pod("a", cpu=1000, mem=8 * GIB), pod("b", cpu=1000, mem=8 * GIB)]
    plain = place(pods, o)
    by_pod = place(pods, o, lost_work_h=np.array([0.1, 2000.0]))
    assert by_pod == plain  # one class, the same reasons
    assert len(plain.groups) == 1


def test_the_pods_per_node_of_a_group_are_what_its_pool_packs() -> None:
    o = offer([pool("m1.large", SPOT, pack=True)])
    pods = [pod(f"p{i}", cpu=900, mem=1 * GIB) for i in range(4)]
    (g,) = place(pods, o, lost_work_h=np.full(4, 50.0)).groups
    assert (g.pods_per_node, g.nodes) == (4, 1)
    # m1.large: 3,920m allocatable takes four 900m pods; the node's risk is shared.
    assert g.cost_usd_per_hour == pytest.approx(0.06 * (1 + 0.25 / 730 * 50.0) / 4)


# ------------------------------------------------------------------ after an interruption


def test_an_interrupted_long_run_is_replaced_on_the_steadier_pool_not_held_for_its_own():
    # A pod that ran 2,000 h on flaky-a (c7i.large Spot, >20% a month, $0.100/h) is
    # interrupted. Its re-created pod will have that run in its history: 1,000 h at stake.
    # flaky-a (reclaimed) 0.100 x (1 + 0.25/730 x 1000) = 0.1342, flaky-b 0.1355, steady
    # (c5.large, <5%, $0.110/h) 0.110 x (1 + 0.025/730 x 1000) = 0.1138: replaced on
    # steady now. Charged 24 h, flaky-a would be its cheapest pool: it would wait for it.
    from scaler.core.actions import ScaleUp
    from scaler.core.catalog import Catalog
    from scaler.core.interruptions import SpotInterruption
    from scaler.core.lifecycle import respond
    from scaler.core.memory import Memory
    from scaler.core.offerings import build_offerings
    from scaler.core.settings import Settings
    from scaler.core.state import BoundPod, ClusterView, Node

    pools = [PoolSpec("flaky-a", ("c7i.large",), SPOT, price_usd_per_hour=0.100, max_size=9),
             PoolSpec("flaky-b", ("r6i.large",), SPOT, price_usd_per_hour=0.101, max_size=9),
             PoolSpec("steady", ("c5.large",), SPOT, price_usd_per_hour=0.110, max_size=9)]
    offerings, problems = build_offerings(pools, Catalog.load())
    assert not problems
    now = 2000 * H + 60.0
    train = PodSpec("train-x7b2k", requests=Resources(cpu_milli=500, memory_mib=1024, pods=1))
    view = ClusterView(
        now,
        nodes=(Node("n1", "flaky-a", "c7i.large", SPOT, instance_id="i-1"),),
        bound=(BoundPod(train, "n1", started_s=60.0),),
    )
    notice = SpotInterruption("i-1", "terminate", deadline_s=now + 120, event_id="e", at_s=now)

    def launches(settings: Settings) -> list[tuple[str, tuple[str, ...]]]:
        actions = respond(notice, view, pools, offerings, Memory(), settings, now=now,
                          rng=np.random.default_rng(0))
        return [(a.pool, a.pods) for a in actions if isinstance(a, ScaleUp)]

    assert launches(Settings()) == [("steady", ("default/train-x7b2k",))]
    fixed = Settings(placement=PlacementSettings(spot_risk_by_runtime=False))
    assert launches(fixed) == []  # it waits out flaky-a's backoff


def test_kept_rows_price_each_class_s_own_lost_work_as_cost_matrix_does() -> None:
    """open_rows keeps one row per class and prices Spot risk per call: the same values
    as cost_matrix for any lost work, packing pools and a column subset included."""
    from scaler.core.placement import cost_matrix, open_rows

    o = offer([*spot_pools(), pool("m1.large", SPOT, pack=True)])
    settings = PlacementSettings()
    reps = [pod("a", cpu=1000, mem=8 * GIB), pod("b", cpu=900, mem=1 * GIB)]
    req = np.array([p.requests.as_array() for p in reps])
    for lost in (np.array([0.1, 2000.0]), np.array([1700.0, 3.0]), None):
        want, want_ppn = cost_matrix(reps, req, o, np.ones(len(o), bool), settings,
                                     lost_work_h=lost)
        got, got_ppn = open_rows(reps, o, settings, lost)
        assert np.array_equal(got, want) and np.array_equal(got_ppn, want_ppn)
        cols = np.array([3, 0], dtype=np.int64)
        got, got_ppn = open_rows(reps, o, settings, lost, columns=cols)
        assert np.array_equal(got, want[:, cols]) and np.array_equal(got_ppn, want_ppn[:, cols])
