"""``scaler simulate`` outputs: the table, --json, --csv, --plot, --report, and errors."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from scaler.cli import main

POOLS = [
    {"name": "small", "instance_type": "m5.large"},
    {"name": "big", "instance_type": "r5.2xlarge"},
    {"name": "small-spot", "instance_type": "m5.large", "capacity_type": "spot"},
]


def write_trace(path: Path, pods: list[dict] | None = None) -> Path:
    pods = pods or [
        {"name": "a", "requests": {"cpu": "1", "memory": "2Gi"}, "duration_s": 1800},
        {
            "name": "b",
            "requests": {"cpu": "2", "memory": "40Gi"},
            "arrival_s": 60,
            "duration_s": 3600,
        },
        {
            "name": "c",
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "arrival_s": 120,
            "duration_s": 900,
            "capacity_types": ["on-demand"],
        },
    ]
    path.write_text(json.dumps({"version": 1, "pools": POOLS, "pods": pods}))
    return path


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    return write_trace(tmp_path / "tiny.json")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["simulate", *args])
    out, err = capsys.readouterr()
    return code, out, err


REQUIRED_KEYS = {
    "trace",
    "policy",
    "total_cost_usd",
    "oracle_cost_usd",
    "waste_usd",
    "pending_s",
    "on_demand_cost_usd",
    "spot_cost_usd",
    "node_hours_by_pool",
    "scale_ups",
    "interruptions",
    "pods_lost",
}


def test_json_has_one_result_per_policy_with_the_documented_keys(capsys, trace) -> None:
    code, out, _ = run_cli(capsys, str(trace), "--json")
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == ["results"]
    results = doc["results"]
    assert [r["policy"] for r in results] == ["scaler", "ca-least-waste", "karpenter-like"]
    for r in results:
        assert set(r) >= REQUIRED_KEYS
        assert r["trace"] == "tiny"
        assert set(r["waste_usd"]) == {"idle", "oversized", "booting", "interrupted"}
        assert set(r["pending_s"]) == {"p50", "p95", "p99", "max"}
        assert r["oracle_cost_usd"] > 0
        assert r["on_demand_cost_usd"] + r["spot_cost_usd"] == pytest.approx(
            r["total_cost_usd"], abs=1e-5
        )


def test_json_is_identical_for_the_same_seed(capsys, trace) -> None:
    outs = [run_cli(capsys, str(trace), "--json", "--seed", "5")[1] for _ in range(2)]
    assert outs[0] == outs[1]


def test_csv_has_a_header_and_a_row_per_run(capsys, trace) -> None:
    code, out, _ = run_cli(capsys, str(trace), "--csv", "--policy", "scaler,karpenter-like")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["policy"] for r in rows] == ["scaler", "karpenter-like"]
    assert float(rows[0]["total_cost_usd"]) > 0
    assert "waste_idle_usd" in rows[0] and "pending_p95_s" in rows[0]


def test_the_table_explains_its_columns(capsys, trace) -> None:
    code, out, _ = run_cli(capsys, str(trace))
    assert code == 0
    assert "oracle" in out and "idle" in out and "oversized" in out
    assert "tiny: 3 pods" in out
    for policy in ("scaler", "ca-least-waste", "karpenter-like"):
        assert policy in out


def test_set_routes_core_and_simulator_names(capsys, trace) -> None:
    _, base, _ = run_cli(capsys, str(trace), "--json", "--policy", "scaler")
    code, slow, _ = run_cli(
        capsys, str(trace), "--json", "--policy", "scaler", "--set", "boot_s_cpu=300",
        "--set", "idle_timeout_s=10",
    )  # fmt: skip
    assert code == 0
    before, after = json.loads(base)["results"][0], json.loads(slow)["results"][0]
    assert after["pending_s"]["max"] > before["pending_s"]["max"] + 200
    assert after["overrides"] == {"boot_s_cpu": "300", "idle_timeout_s": "10"}


def test_unknown_setting_is_an_error_naming_it(capsys, trace) -> None:
    code, out, err = run_cli(capsys, str(trace), "--set", "boot_time=3")
    assert code == 2
    assert "boot_time" in err and "boot_s_cpu" in err and "idle_timeout_s" in err
    assert out == ""


def test_malformed_trace_error_names_file_pod_and_field(capsys, tmp_path) -> None:
    bad = write_trace(
        tmp_path / "bad.json",
        [
            {"name": "fine", "requests": {"cpu": "1"}, "duration_s": 60},
            {"name": "broken", "requests": {"memory": "lots"}, "duration_s": 60},
        ],
    )
    code, out, err = run_cli(capsys, str(bad))
    assert code == 2
    assert str(bad) in err
    assert "pods[1] (broken)" in err
    assert "requests.memory" in err
    assert out == ""


def test_missing_duration_needs_until(capsys, tmp_path) -> None:
    trace = write_trace(tmp_path / "open.json", [{"name": "forever", "requests": {"cpu": "1"}}])
    code, _, err = run_cli(capsys, str(trace))
    assert code == 2 and "--until" in err
    code, out, _ = run_cli(capsys, str(trace), "--until", "2h", "--json", "--policy", "scaler")
    assert code == 0
    assert json.loads(out)["results"][0]["simulated_s"] == 7200


def test_plot_writes_a_png(capsys, trace, tmp_path) -> None:
    png = tmp_path / "out.png"
    code, _, _ = run_cli(capsys, str(trace), "--plot", str(png), "--json")
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_is_one_self_contained_html_page(capsys, trace, tmp_path) -> None:
    page = tmp_path / "report.html"
    code, _, _ = run_cli(capsys, str(trace), "--report", str(page), "--csv")
    assert code == 0
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and "<script" not in text
    assert "data:image/png;base64," in text
    assert "ca-least-waste" in text and "tiny: 3 pods" in text


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(chromium() is None, reason="no chromium (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(capsys, trace, tmp_path) -> None:
    page = tmp_path / "report.html"
    assert run_cli(capsys, str(trace), "--report", str(page), "--json")[0] == 0
    browser = chromium()
    assert browser is not None
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "karpenter-like" in dom and "vs oracle" in dom
    assert "<table>" in dom and "data:image/png;base64," in dom
