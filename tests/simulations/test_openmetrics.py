"""`scaler simulate --metrics-out`: a cost study in the live controller's metric names."""

from __future__ import annotations

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
    exposition = Metrics().registry
    live = {m.name: m for m in exposition.collect()}
    assert "scaler_node_cost_dollars_per_hour" in live and "scaler_scale_ups" in live
    sc, _ = card()
    for family in text_string_to_metric_families(render([sc])):
        for sample in family.samples:
            extra = set(sample.labels) - {"trace", "policy"}
            assert extra <= {"pool", "capacity_type"}


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
