"""`scaler simulate --metrics-out`: a cost study in the live controller's metric names."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from scaler.adapters.metrics import Metrics
from simulations.openmetrics import ORIGIN_S, render
from simulations.testing import pod, pool, simulate


def card():
    sim = simulate(
        [pod("nb", cpu="1", memory="2Gi", arrival_s=0, duration_s=600)],
        pools=[pool("m5.large", name="small")],
        until_s=2000,  # past the idle timeout after the pod
    )
    return sim.scorecard(), sim


def test_node_cost_by_pool_over_time_in_the_controllers_metric_names():
    sc, sim = card()
    families = {f.name: f for f in text_string_to_metric_families(render([sc]))}
    cost = families["scaler_node_cost_dollars_per_hour"]
    points = [(s.timestamp, s.value) for s in cost.samples]
    launched = next(t for t, what, _ in sim.world.timeline if what == "launch")
    removed = next(t for t, what, _ in sim.world.timeline if what == "removed")
    # One m5.large ($0.096/h) from its launch until it was removed, idle, 120 s after the pod.
    assert [(float(t) - ORIGIN_S, v) for t, v in points] == [(launched, 0.096), (removed, 0.0)]
    assert cost.samples[0].labels == {"pool": "small", "capacity_type": "on-demand",
                                      "trace": "test", "policy": "scaler"}
    (ups,) = families["scaler_scale_ups"].samples
    assert ups.name == "scaler_scale_ups_total" and ups.value == sc.scale_ups == 1


def test_the_names_and_labels_are_the_live_exporters():
    live = {m.name for m in Metrics().registry.collect()}
    labels = {
        "scaler_node_cost_dollars_per_hour": {"pool", "capacity_type"},
        "scaler_waste_dollars_per_hour": {"reason", "pool"},
        "scaler_scale_ups": set(),
    }
    assert set(labels) <= live
    sc, _ = card()
    for family in text_string_to_metric_families(render([sc])):
        assert family.name in labels
        for sample in family.samples:
            assert set(sample.labels) - {"trace", "policy"} <= labels[family.name]


@pytest.mark.skipif(shutil.which("promtool") is None and not os.environ.get("CI"),
                    reason="promtool (Debian's prometheus package) is not installed")
def test_promtool_loads_it_into_a_prometheus_block(tmp_path: Path):
    sc, _ = card()
    source = tmp_path / "run.om"
    source.write_text(render([sc]))
    out = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert any((tmp_path / "data").iterdir())


def test_the_waste_series_integrate_to_the_scorecards_waste_by_reason():
    from scaler.inputs import load_workload

    trace = Path(__file__).resolve().parents[2] / "traces" / "datascience-week.json"
    pods = load_workload(trace).pods
    sim = simulate(pods, policy="ca-least-waste")
    sc = sim.scorecard()
    families = {f.name: f for f in text_string_to_metric_families(render([sc]))}
    by_series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for s in families["scaler_waste_dollars_per_hour"].samples:
        by_series.setdefault((s.labels["reason"], s.labels["pool"]), []).append(
            (float(s.timestamp), s.value)
        )
    dollars: dict[str, float] = {}
    for (reason, _), points in by_series.items():
        # Piecewise constant: each value holds until the next sample; series end at 0.
        total = sum(v * (t2 - t1) / 3600.0 for (t1, v), (t2, _) in itertools.pairwise(points))
        dollars[reason] = dollars.get(reason, 0.0) + total
    for reason in ("idle", "booting", "oversized"):
        assert sc.waste_usd[reason] > 0, reason
        assert dollars[reason] == pytest.approx(sc.waste_usd[reason], rel=1e-6), reason
