"""``scaler bench place`` on a few pods: the trace mapping, the comparison with the reference loop
and the command's output. Not a timing test: the figures live in docs/benchmarks.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaler.bench import (
    DEFAULT_TRACE,
    REPO,
    Mismatch,
    choices,
    compare_choices,
    draw_pods,
    load_shapes,
    resolve_trace,
    run_place_bench,
    shape_of,
)
from scaler.cli import main
from scaler.core.catalog import Catalog
from scaler.core.model import SpecError
from scaler.importers import openb_gpu_models

TRACE = REPO / DEFAULT_TRACE
needs_trace = pytest.mark.skipif(
    not TRACE.is_file(), reason=f"openb trace not available ({TRACE}; ../shared/data is absent)"
)


@pytest.mark.parametrize(
    ("spec", "models"),
    [
        ("", ()),
        ("V100M16|V100M32", ("V100",)),
        ("P100", ("V100",)),
        ("T4", ("T4",)),
        ("A10|T4", ("A10G", "T4")),
        ("A100", ("A100",)),
        ("G2", ()),  # no AWS counterpart: any GPU
        ("G2|P100|T4", ()),  # accepts a model AWS lacks: nothing ruled out
    ],
)
def test_the_bench_maps_openb_gpu_specs_as_the_importer_does(spec: str, models: tuple[str, ...]) -> None:
    assert openb_gpu_models(spec) == models


def test_a_fractional_gpu_share_still_needs_one_gpu() -> None:
    row = {"cpu_milli": "6000", "memory_mib": "12288", "num_gpu": "0", "gpu_milli": "460"}
    s = shape_of({**row, "gpu_spec": "T4"})
    assert (s.cpu_milli, s.memory_mib, s.gpu, s.gpu_models) == (6000, 12288, 1, ("T4",))
    cpu_only = shape_of({**row, "gpu_milli": "0", "gpu_spec": "T4"})
    assert (cpu_only.gpu, cpu_only.gpu_models) == (0, ())


def test_a_missing_trace_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such trace file"):
        resolve_trace(tmp_path / "nope.csv")


def test_a_csv_that_is_not_an_openb_pod_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SpecError, match="not an openb pod list"):
        load_shapes(path)


def test_the_command_exits_2_without_a_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "place", "--trace", str(tmp_path / "nope.csv")])
    assert code == 2
    assert "no such trace file" in capsys.readouterr().err


@needs_trace
def test_a_small_run_makes_the_same_choices_as_the_reference_loop() -> None:
    catalog = Catalog.load()
    pods = draw_pods(load_shapes(TRACE), 200, seed=1)
    assert pods == draw_pods(load_shapes(TRACE), 200, seed=1)  # seeded
    result = run_place_bench(pods, catalog.default_pools(), catalog, repeats=2)
    assert result.pods == 200 and result.reference_pods == 200 and not result.extrapolated
    assert result.mismatches == []
    assert result.placed + result.unplaceable == 200
    assert len(result.decision_ms) == 2 and result.speedup > 0
    assert 0 < result.tracemalloc_peak_mib < result.max_rss_mib
    doc = result.as_json()
    assert doc["same_choices"] is True and doc["mismatch_count"] == 0


@needs_trace
def test_a_different_choice_is_reported_as_a_mismatch() -> None:
    from scaler.core.offerings import build_offerings
    from scaler.core.placement import place

    catalog = Catalog.load()
    pods = draw_pods(load_shapes(TRACE), 50, seed=2)
    offerings, _ = build_offerings(catalog.default_pools(), catalog)
    placed = choices(place(pods, offerings))
    assert compare_choices(pods, placed, dict(placed)) == []
    tampered = dict(placed)
    tampered[pods[3].key] = "t3.nano-spot"
    assert compare_choices(pods, placed, tampered) == [
        Mismatch(pods[3].key, placed[pods[3].key], "t3.nano-spot")
    ]
    # Pods the reference did not reach (a budget cut) are not compared.
    partial = {p.key: placed[p.key] for p in pods[:10]}
    assert compare_choices(pods, placed, partial) == []


@needs_trace
def test_a_reference_budget_cut_short_is_extrapolated() -> None:
    catalog = Catalog.load()
    pods = draw_pods(load_shapes(TRACE), 100, seed=3)
    result = run_place_bench(
        pods, catalog.default_pools(), catalog, repeats=1, reference_budget_s=0
    )
    assert result.extrapolated and result.reference_pods == 1
    assert result.reference_all_s == pytest.approx(result.reference_s * 100)
    assert result.mismatches == []


@needs_trace
def test_the_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["bench", "place", "--trace", str(TRACE), "--pods", "200", "--repeats", "1", "--json"]
    )
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out)
    assert doc["pods"] == 200 and doc["same_choices"] is True
    assert {"decision_ms", "reference", "speedup", "tracemalloc_peak_mib", "max_rss_mib"} <= set(
        doc
    )
    assert set(doc["offerings_build_ms"]) == {"first", "median", "repeats"}
