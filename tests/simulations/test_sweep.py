"""Sweeps: the settings grid, and Dask giving exactly the serial results."""

from __future__ import annotations

import json

import pytest

from scaler.cli import main
from simulations import sweep
from simulations.jobs import CatalogRef, Job, Trace
from simulations.testing import pod, pool

POOLS = (pool("m5.large", name="small"), pool("m5.large", name="small-spot", capacity_type="spot"))


def tiny_trace() -> Trace:
    pods = tuple(
        pod(f"job-{i}", cpu="1", memory="2Gi", arrival_s=400.0 * i, duration_s=300.0 + 50 * i)
        for i in range(6)
    )
    return Trace(label="tiny", pods=pods, pools=POOLS)


def test_sweep_flags_make_the_cartesian_product() -> None:
    grid = sweep.parse_sweep(["idle_timeout_s=30,120,600", "batch_idle_s=1,5"])
    assert len(grid) == 6
    assert grid[0] == {"idle_timeout_s": "30", "batch_idle_s": "1"}
    assert grid[-1] == {"idle_timeout_s": "600", "batch_idle_s": "5"}
    assert sweep.parse_sweep([]) == [{}]


@pytest.mark.parametrize("bad", ["idle_timeout_s", "idle_timeout_s=", "=1,2"])
def test_a_malformed_sweep_is_an_error(bad: str) -> None:
    with pytest.raises(ValueError, match="--sweep"):
        sweep.parse_sweep([bad])


def test_plan_orders_jobs_by_trace_policy_then_grid_point() -> None:
    grid = sweep.parse_sweep(["idle_timeout_s=30,600"])
    jobs = sweep.plan(
        [tiny_trace()], ["scaler", "karpenter-like"], {"boot_s_cpu": "60"}, grid, Job("", "")
    )
    assert [(j.policy, dict(j.overrides)["idle_timeout_s"]) for j in jobs] == [
        ("scaler", "30"),
        ("scaler", "600"),
        ("karpenter-like", "30"),
        ("karpenter-like", "600"),
    ]
    assert all(dict(j.overrides)["boot_s_cpu"] == "60" for j in jobs)


def test_a_longer_idle_timeout_costs_more_idle_time(capsys, tmp_path) -> None:
    path = tmp_path / "gaps.json"
    pods = [
        {"name": f"p{i}", "requests": {"cpu": "1", "memory": "2Gi"}, "arrival_s": 1000 * i,
         "duration_s": 300}
        for i in range(4)
    ]  # fmt: skip
    path.write_text(
        json.dumps(
            {"version": 1, "pools": [{"name": "small", "instance_type": "m5.large"}], "pods": pods}
        )
    )
    code = main(["simulate", str(path), "--policy", "scaler", "--json",
                 "--sweep", "idle_timeout_s=30,600"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    results = json.loads(out)["results"]
    assert [r["overrides"] for r in results] == [
        {"idle_timeout_s": "30"},
        {"idle_timeout_s": "600"},
    ]
    short, long = (r["waste_usd"]["idle"] for r in results)
    assert long > short * 5


def test_dask_local_cluster_gives_exactly_the_serial_results() -> None:
    pytest.importorskip("dask.distributed")
    trace = tiny_trace()
    grid = sweep.parse_sweep(["idle_timeout_s=30,600"])
    jobs = sweep.plan(
        [trace], ["scaler", "ca-least-waste"], {"hazard_scale": "500"}, grid, Job("", "", seed=3)
    )
    traces = {trace.label: trace}
    serial = sweep.run_serial(jobs, traces, CatalogRef())
    fanned = sweep.run_dask(jobs, traces, CatalogRef(), "local")
    assert [s.as_json() for s in fanned] == [s.as_json() for s in serial]
    assert [dict(s.series) for s in fanned] == [dict(s.series) for s in serial]
    # The runs really differ from one another (the comparison is not vacuous).
    assert len({json.dumps(s.as_json(), sort_keys=True) for s in serial}) == len(jobs)


def test_burstable_default_pools_are_offered_to_the_simulator_only_when_asked(
    capsys, tmp_path
) -> None:
    path = tmp_path / "tiny.json"
    pods = [{"name": "tiny", "requests": {"cpu": "100m", "memory": "256Mi"}, "duration_s": 3600}]
    path.write_text(json.dumps({"version": 1, "pods": pods}))
    totals = []
    for flags in ([], ["--burstable"]):
        code = main(["simulate", str(path), "--policy", "scaler", "--json",
                     "--capacity-types", "on-demand", *flags])  # fmt: skip
        assert code == 0
        (result,) = json.loads(capsys.readouterr().out)["results"]
        totals.append(result["oracle_cost_usd"])
    # The oracle (cheapest fitting type of the pools offered) drops to a burstable price.
    assert totals[1] < totals[0]
