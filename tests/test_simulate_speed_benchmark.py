"""``benchmarks/simulate_speed.py``: the runs it makes, the figures it derives from them and
what it says when a trace is missing. Not a timing test: the figures live in
docs/benchmarks.md."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "simulate_speed.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("simulate_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulate_speed"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = load()


def run(trace: str, policy: str, rnd: int, wall: float, cpu: float, ticks: int,
        launches: int) -> Any:
    return bench.Run(trace, policy, "cached", rnd, wall, cpu, 50.0, ticks, launches, 10, 1.0)


def test_denser_repeats_each_pod_a_second_apart_under_new_names() -> None:
    trace: dict[str, Any] = {"version": 1, "pods": [{"name": "a", "arrival_s": 10.0, "duration_s": 5.0},
                                    {"name": "b", "arrival_s": 20.0, "duration_s": 1.0}]}
    dense: dict[str, Any] = bench.denser(trace, 3)
    assert dense["version"] == 1
    assert [(p["name"], p["arrival_s"]) for p in dense["pods"]] == [
        ("a-c0", 10.0), ("a-c1", 11.0), ("a-c2", 12.0),
        ("b-c0", 20.0), ("b-c1", 21.0), ("b-c2", 22.0),
    ]
    assert all(p["duration_s"] == 5.0 for p in dense["pods"][:3])
    assert [p["name"] for p in trace["pods"]] == ["a", "b"]  # the input is left alone


def test_the_ratio_pairs_runs_of_the_same_round() -> None:
    # Round 0 ran on a slow machine, round 1 on a fast one: each round's pair is compared,
    # so the ratio is 2.0 both times, not the 0.4 or 10 a pairing across rounds would give.
    runs = [
        run("openb", "scaler", 0, 10.0, 9.0, 400, 20),
        run("openb", "karpenter-like", 0, 5.0, 4.5, 100, 10),
        run("openb", "scaler", 1, 2.0, 1.8, 400, 20),
        run("openb", "karpenter-like", 1, 1.0, 0.9, 100, 10),
    ]
    assert bench.round_ratios(runs, "openb", "cached", "scaler") == [2.0, 2.0]
    summaries = bench.summarise(runs)
    assert [(s.policy, s.wall_median_s, s.wall_min_s, s.runs) for s in summaries] == [
        ("scaler", 6.0, 2.0, 2), ("karpenter-like", 3.0, 1.0, 2)]
    lines = bench.targets(runs, summaries, 1)
    assert lines[0] == "openb scaler (cached) <= 5 s: median 6.00 s, min 2.00 s: not met"
    # CPU per launch: scaler 5.4 s / 20 against 2.7 s / 10 (equal); per tick 5.4/400 : 2.7/100.
    assert lines[1] == (
        "openb scaler / karpenter-like (cached) <= 1.25x: median of 2 rounds 2.00x: not met; "
        "nodes launched 2.00x, ticks 4.00x; CPU per node launched 1.00x, per tick 0.50x"
    )


def test_targets_name_only_the_issues_traces_and_judge_density_by_cpu() -> None:
    runs = [
        run("spot-batch", "scaler", 0, 9.0, 9.0, 10, 1),
        run("openb", "scaler", 0, 4.0, 4.0, 10, 1),
        run("openb-x8", "scaler", 0, 40.0, 33.0, 10, 1),
    ]
    lines = bench.targets(runs, bench.summarise(runs), 8)
    assert lines == [
        "openb scaler (cached) <= 5 s: median 4.00 s, min 4.00 s: met",
        "openb x8 (cached): 10 pods for 8.25x the CPU of 10 (no worse than linear: <= 8x): "
        "not met",
    ]


def tiny_trace(tmp_path: Path) -> Path:
    workload = json.loads((REPO / "traces" / "datascience-week.json").read_text())
    workload["pods"] = workload["pods"][:40]
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(workload))
    return path


def test_a_run_reports_what_scaler_simulate_says(tmp_path: Path) -> None:
    trace = tiny_trace(tmp_path)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--trace", str(trace), "--rounds", "2", "--json"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )
    report = json.loads(out.stdout)
    own = json.loads(subprocess.run(
        [sys.executable, "-m", "scaler", "simulate", str(trace), "--policy", "scaler",
         "--capacity-types", "on-demand", "--json"],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout)["results"][0]
    scaler_runs = [r for r in report["runs"] if r["policy"] == "scaler"]
    assert [(r["round"], r["bytecode"]) for r in scaler_runs] == [(0, "cached"), (1, "cached")]
    assert {(r["ticks"], r["scale_ups"], r["pods"]) for r in scaler_runs} == {
        (own["ticks"], own["scale_ups"], own["pods"])}
    assert all(r["wall_s"] > 0 and r["cpu_s"] > 0 and r["max_rss_mb"] > 10
               for r in report["runs"])
    assert {s["policy"] for s in report["summaries"]} == {"scaler", "karpenter-like"}
    assert report["reference_ms_before"] > 0 and report["reference_ms_after"] > 0
    assert report["targets"] == []  # not one of the traces the issue's targets name


def test_a_missing_trace_is_named_and_nothing_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--trace", str(tmp_path / "nope.json")],
        capture_output=True, text=True, cwd=REPO,
    )
    assert out.returncode == 2
    assert f"--trace {tmp_path / 'nope.json'}: no such file" in out.stderr


def test_absent_public_data_is_skipped_and_said(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO,
    )
    assert out.returncode == 0
    assert "skipped openb:" in out.stderr and "skipped dlrm:" in out.stderr
    assert "nothing to time" in out.stderr


@pytest.mark.parametrize("arg", [["--rounds", "0"], ["--public", "openx"]])
def test_bad_arguments_are_refused(arg: list[str]) -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), *arg], capture_output=True, text=True,
                         cwd=REPO)
    assert out.returncode == 2
    assert arg[0] in out.stderr


def split(trace: str, policy: str, rnd: int, ticks: int, cpu: float, tick_cpu: float) -> Any:
    """A run whose ticks all decided something, and with no admission."""
    return bench.Split(trace, policy, rnd, ticks, cpu, tick_cpu, 0, 0.0, 0, 0.0)


def ratio_line(lines: list[str]) -> str:
    """The whole-split line of scaler against the baseline (the one before the tick budget)."""
    (line,) = [x for x in lines if " / karpenter-like: rest " in x]
    return line


def test_the_split_pairs_rounds_and_says_what_the_target_leaves_the_ticks() -> None:
    # Round 1 ran on a machine twice as slow: paired by round, both rounds say the same.
    splits = [
        split("openb", "scaler", 0, 400, 5.0, 3.0),
        split("openb", "karpenter-like", 0, 200, 3.2, 1.6),
        split("openb", "scaler", 1, 400, 10.0, 6.0),
        split("openb", "karpenter-like", 1, 200, 6.4, 3.2),
    ]
    lines = bench.split_lines(splits)
    assert lines[0] == "openb scaler: 7.50 s CPU = ticks 4.50 s (400 ticks, 11250 us each) + rest 3.00 s"
    # Rest 2.0 / 1.6; ticks 3.0 / 1.6. Both ticks at x: 2.0 + 3.0x = 1.25 (1.6 + 1.6x) when
    # x = 0 (the rests alone are 1.25x). Scaler's alone: 1.25 x 3.2 = 4.0 leaves (4.0 - 2.0)
    # / 3.0 of its ticks.
    assert ratio_line(lines) == ("openb scaler / karpenter-like: rest 1.25x, ticks 1.88x; 1.25x would "
                        "need both policies' ticks at 0% of their CPU now, or scaler's alone "
                        "at 67%")


def test_the_split_says_when_free_ticks_would_not_be_enough() -> None:
    lines = bench.split_lines([split("dlrm", "scaler", 0, 10, 6.0, 1.0),
                               split("dlrm", "karpenter-like", 0, 10, 3.0, 1.0)])
    assert ratio_line(lines).endswith("not even with every tick free")
    assert "rest 2.50x" in ratio_line(lines)
    # Rest 2.0 / 2.0, ticks 3.0 / 1.0: 2.0 + 3.0x = 1.25 (2.0 + 1.0x) at x = 0.5 / 1.75;
    # scaler's alone: (1.25 x 3.0 - 2.0) / 3.0.
    lines = bench.split_lines([split("dlrm", "scaler", 0, 10, 5.0, 3.0),
                               split("dlrm", "karpenter-like", 0, 10, 3.0, 1.0)])
    assert ratio_line(lines) == ("dlrm scaler / karpenter-like: rest 1.00x, ticks 3.00x; 1.25x would "
                         "need both policies' ticks at 29% of their CPU now, or scaler's alone "
                         "at 58%")
    lines = bench.split_lines([split("dlrm", "scaler", 0, 10, 3.6, 1.0),
                               split("dlrm", "karpenter-like", 0, 10, 3.0, 1.0)])
    assert ratio_line(lines).endswith("1.25x would need nothing: met as it is")


def counted(trace: str, policy: str, rnd: int, ticks: int, cpu: float, tick_cpu: float,
            idle: tuple[int, float], admission: tuple[int, float] = (0, 0.0)) -> Any:
    return bench.Split(trace, policy, rnd, ticks, cpu, tick_cpu, *idle, *admission)


def test_the_split_prices_a_tick_with_admission_free_too() -> None:
    # Scaler: 1,000 ticks, 2.0 s of rest of which 0.5 s admission (world 1.5 s); baseline:
    # 400 ticks, rest 1.4 s. Every tick at c: 1.5 + 1000c = 1.25 (1.4 + 400c) when
    # c = 0.25 / 500 = 500 us. Idle ticks: 300 in 0.06 s (200 us), 100 in 0.01 s (100 us).
    lines = bench.split_lines([
        counted("openb", "scaler", 0, 1000, 4.0, 2.0, (300, 0.06), (800, 0.5)),
        counted("openb", "karpenter-like", 0, 400, 2.2, 0.8, (100, 0.01)),
    ])
    assert lines[1] == ("openb scaler: 300 ticks decided nothing, 200 us each; admission "
                        "0.50 s of the rest (800 pods, 625 us each)")
    # No admission (karpenter-like pins nothing): none said.
    assert lines[3] == "openb karpenter-like: 100 ticks decided nothing, 100 us each"
    assert lines[-1] == ("openb scaler / karpenter-like, admission free too: rest 1.07x; "
                         "1.25x would need every tick at most 500.0 us in both policies (a "
                         "tick that decides nothing costs 200 / 100 us now)")


def test_the_tick_budget_says_when_no_tick_cost_would_do_and_when_ticks_do_not_matter() -> None:
    # World 1.9 s against 1.4 s: over 1.25x before any tick is paid for.
    lines = bench.split_lines([
        counted("openb", "scaler", 0, 1000, 4.0, 2.0, (300, 0.06), (800, 0.1)),
        counted("openb", "karpenter-like", 0, 400, 2.2, 0.8, (100, 0.01)),
    ])
    assert lines[-1] == ("openb scaler / karpenter-like, admission free too: rest 1.36x; "
                         "1.25x is out of reach even with every tick free (a tick that "
                         "decides nothing costs 200 / 100 us now)")
    lines = bench.split_lines([
        counted("dlrm", "scaler", 0, 500, 4.0, 2.0, (300, 0.06)),
        counted("dlrm", "karpenter-like", 0, 400, 2.2, 0.8, (100, 0.01)),
    ])
    assert lines[-1].endswith("scaler ticks at most 1.25x as often: no tick cost bars it")
    # No tick decided nothing in either run: said so, with no cost to give. Rest 2.0 / 2.0,
    # ticks 30 / 10: 2.0 + 30c = 1.25 (2.0 + 10c) at c = 0.5 / 17.5 s.
    lines = bench.split_lines([split("dlrm", "scaler", 0, 30, 5.0, 3.0),
                               split("dlrm", "karpenter-like", 0, 10, 3.0, 1.0)])
    assert lines[1] == "dlrm scaler: no tick decided nothing"
    assert lines[-1] == ("dlrm scaler / karpenter-like, admission free too: rest 1.00x; 1.25x "
                         "would need every tick at most 28571.4 us in both policies (a tick "
                         "that decides nothing costs - / - us now)")


def test_tick_split_reads_the_last_line_and_refuses_none() -> None:
    line = json.dumps({"tick_split": {
        "ticks": 7, "tick_cpu_s": 0.25, "idle_ticks": 3, "idle_tick_cpu_s": 0.05,
        "admissions": 4, "admission_cpu_s": 0.125}})
    assert bench.tick_split(f"progress\n{line}\n") == {
        "ticks": 7, "tick_cpu_s": 0.25, "idle_ticks": 3, "idle_tick_cpu_s": 0.05,
        "admissions": 4, "admission_cpu_s": 0.125}
    with pytest.raises(SystemExit, match="no tick_split line"):
        bench.tick_split("Traceback ...\n")
    with pytest.raises(SystemExit, match="has no 'admissions'"):
        bench.tick_split('{"tick_split": {"ticks": 7, "tick_cpu_s": 0.25, "idle_ticks": 3, '
                         '"idle_tick_cpu_s": 0.05}}')


def test_the_split_counts_the_ticks_scaler_simulate_reports(tmp_path: Path) -> None:
    trace = tiny_trace(tmp_path)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--trace", str(trace), "--rounds", "1", "--split",
         "--json"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )
    report = json.loads(out.stdout)
    ticks = {r["policy"]: r["ticks"] for r in report["runs"]}
    splits = report["splits"]
    assert {s["policy"]: s["ticks"] for s in splits} == ticks
    assert all(0 < s["tick_cpu_s"] < s["cpu_s"] for s in splits)
    assert all(0 < s["idle_ticks"] < s["ticks"] for s in splits)
    assert all(0 < s["idle_tick_cpu_s"] < s["tick_cpu_s"] for s in splits)
    # Admission: once per pod under scaler (it pins), never under karpenter-like (it does not).
    admitted = {s["policy"]: s["admissions"] for s in splits}
    pods = {r["policy"]: r["pods"] for r in report["runs"]}
    assert admitted == {"scaler": pods["scaler"], "karpenter-like": 0}
    assert report["split"][-2].startswith("tiny scaler / karpenter-like: rest ")
    assert report["split"][-1].startswith("tiny scaler / karpenter-like, admission free too")
