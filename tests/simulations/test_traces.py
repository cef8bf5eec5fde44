"""The bundled traces (traces/*.json) and their generator, tools/make_traces.py.

The files are exactly what the generator writes with its default seed, so they are changed by
changing the generator, never by hand. The feature tests pin what docs/traces.md promises.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scaler.core.catalog import Catalog
from scaler.core.offerings import build_offerings
from scaler.core.placement import place
from scaler.importers import format_workload
from scaler.inputs import load_workload

REPO = Path(__file__).resolve().parents[2]
TRACES_DIR = REPO / "traces"
HOUR, DAY = 3600.0, 86400.0
COMPONENT = "app.kubernetes.io/component"
NAMES = ("datascience-week.json", "gpu-training-bursts.json", "spot-batch.json")

Pod = dict[str, Any]


@functools.cache
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_traces", REPO / "tools" / "make_traces.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def bundled(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((TRACES_DIR / name).read_text(encoding="utf-8"))
    return doc


def pods_of(name: str, component: str | None = None) -> list[Pod]:
    pods: list[Pod] = bundled(name)["pods"]
    return [p for p in pods if component is None or p["annotations"][COMPONENT] == component]


def busy_gaps(pods: list[Pod]) -> list[tuple[float, float]]:
    """(start, end) of every spell with none of ``pods`` running."""
    spans = sorted((p["arrival_s"], p["arrival_s"] + p["duration_s"]) for p in pods)
    gaps, end = [], spans[0][1]
    for start, stop in spans[1:]:
        if start > end:
            gaps.append((end, start))
        end = max(end, stop)
    return gaps


# ------------------------------------------------------------------------ the generator


def test_the_generator_is_deterministic_for_a_seed() -> None:
    first, again, other = tool().generate(11), tool().generate(11), tool().generate(12)
    assert first == again
    assert all(first[name] != other[name] for name in NAMES)


def test_generated_traces_are_valid_workload_files(tmp_path: Path) -> None:
    assert tool().main(["--seed", "11", "--out-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES)
    for name in NAMES:
        workload = load_workload(tmp_path / name)
        assert workload.pools is None and workload.region == "us-east-1"


def test_bundled_traces_are_what_the_default_seed_generates(tmp_path: Path) -> None:
    assert tool().main(["--out-dir", str(tmp_path)]) == 0
    for name in NAMES:
        assert (tmp_path / name).read_bytes() == (TRACES_DIR / name).read_bytes(), (
            f"traces/{name} differs from `python tools/make_traces.py`: regenerate it"
        )


@pytest.mark.parametrize("name", NAMES)
def test_bundled_trace_is_a_modest_timed_workload_on_default_pools(name: str) -> None:
    workload = load_workload(TRACES_DIR / name)
    doc = bundled(name)
    assert doc["version"] == 1 and doc["region"] == "us-east-1" and "pools" not in doc
    assert 200 <= len(workload.pods) <= 3000
    for pod in doc["pods"]:
        assert isinstance(pod["arrival_s"], float) and pod["arrival_s"] >= 0
        assert isinstance(pod["duration_s"], float) and pod["duration_s"] > 0
    arrivals = [p["arrival_s"] for p in doc["pods"]]
    assert arrivals == sorted(arrivals)
    assert (TRACES_DIR / name).read_text(encoding="utf-8") == format_workload(doc)


@pytest.mark.parametrize("name", NAMES)
def test_every_bundled_pod_fits_some_default_catalog_pool(name: str) -> None:
    catalog = Catalog.load()
    offerings, _ = build_offerings(catalog.default_pools(), catalog)
    placement = place(load_workload(TRACES_DIR / name).pods, offerings)
    assert list(placement.unplaceable_pods()) == []


# ------------------------------------------------------------------- data-science week

DS = "datascience-week.json"
TIERS = {f"{gib}Gi" for gib in (4, 16, 64, 128, 256, 512)}


def test_datascience_week_has_20_to_40_people_on_every_saturn_tier() -> None:
    notebooks = pods_of(DS, "notebook")
    assert 20 <= len({p["namespace"] for p in notebooks}) <= 40
    cpu_only = [p for p in notebooks if "requests" in p and "nvidia.com/gpu" not in p["requests"]]
    assert {p["requests"]["memory"] for p in cpu_only} == TIERS
    # Memory-bound: never more than one vCPU per 4 GiB.
    for p in cpu_only:
        assert int(p["requests"]["cpu"]) * 4 <= int(p["requests"]["memory"].removesuffix("Gi"))


def test_notebooks_open_in_working_hours_and_run_one_to_eight_hours() -> None:
    notebooks = pods_of(DS, "notebook")
    weekday = [p for p in notebooks if p["arrival_s"] < 5 * DAY]
    assert len(weekday) >= 0.9 * len(notebooks)
    for p in weekday:
        assert 8 * HOUR <= p["arrival_s"] % DAY < 19 * HOUR
    assert all(HOUR <= p["duration_s"] <= 8 * HOUR for p in notebooks)


def test_about_a_sixth_of_notebooks_carry_no_requests_at_all() -> None:
    notebooks = pods_of(DS, "notebook")
    bare = [p for p in notebooks if "requests" not in p]
    assert 0.15 <= len(bare) / len(notebooks) <= 0.20
    parsed = {(p.namespace, p.name): p for p in load_workload(TRACES_DIR / DS).pods}
    for p in bare:
        requests = parsed[(p["namespace"], p["name"])].requests
        assert (requests.cpu_milli, requests.memory_mib, requests.gpu) == (0, 0, 0)


def test_a_few_notebooks_take_one_gpu_some_pinned_to_models() -> None:
    gpu = [p for p in pods_of(DS, "notebook") if "nvidia.com/gpu" in p.get("requests", {})]
    assert 3 <= len(gpu) <= 15
    assert all(p["requests"]["nvidia.com/gpu"] == 1 for p in gpu)
    pinned = [p for p in gpu if p.get("gpu_models")]
    assert 0 < len(pinned) < len(gpu)


def test_dask_clusters_of_about_ten_workers_arrive_within_a_second_and_last_an_hour() -> None:
    clusters: dict[tuple[str, str], list[Pod]] = defaultdict(list)
    for p in pods_of(DS, "dask-worker"):
        clusters[(p["namespace"], p["name"].rsplit("-worker-", 1)[0])].append(p)
    schedulers = {
        (p["namespace"], p["name"].removesuffix("-scheduler"))
        for p in pods_of(DS, "dask-scheduler")
    }
    assert set(clusters) == schedulers
    per_day: dict[int, int] = defaultdict(int)
    for workers in clusters.values():
        arrivals = [w["arrival_s"] for w in workers]
        assert 8 <= len(workers) <= 12
        assert max(arrivals) - min(arrivals) < 1.0
        assert all(40 * 60 <= w["duration_s"] <= 85 * 60 for w in workers)
        per_day[int(min(arrivals) // DAY)] += 1
    assert sorted(per_day) == [0, 1, 2, 3, 4]  # weekdays only
    assert min(per_day.values()) >= 2  # a few times a day


def test_platform_services_run_all_week_on_demand_only() -> None:
    services = pods_of(DS, "service")
    assert len(services) >= 2
    for p in services:
        assert p["capacity_types"] == ["on-demand"]
        assert p["arrival_s"] == 0 and p["duration_s"] >= 7 * DAY


# ---------------------------------------------------------------- GPU training bursts

GPU = "gpu-training-bursts.json"


def test_training_jobs_take_1_4_or_8_gpus_for_20_minutes_to_6_hours() -> None:
    jobs = pods_of(GPU)
    assert {p["requests"]["nvidia.com/gpu"] for p in jobs} == {1, 4, 8}
    assert all(20 * 60 <= p["duration_s"] <= 6 * HOUR for p in jobs)
    models = {m for p in jobs for m in p.get("gpu_models", [])}
    assert {"A10G", "L4", "A100", "H100"} <= models
    assert any("gpu_models" not in p for p in jobs)  # any GPU will do


def test_gpu_pods_go_to_zero_for_hours_between_bursts() -> None:
    jobs = pods_of(GPU)
    assert max(p["arrival_s"] for p in jobs) < 3 * DAY
    long_gaps = [(a, b) for a, b in busy_gaps(jobs) if b - a >= 2 * HOUR]
    assert len(long_gaps) >= 4


# ------------------------------------------------------------------------ Spot batch

BATCH = "spot-batch.json"


def test_batch_jobs_come_in_waves_of_short_jobs() -> None:
    jobs = pods_of(BATCH)
    assert all(2 * 60 <= p["duration_s"] <= HOUR for p in jobs)
    arrivals = sorted(p["arrival_s"] for p in jobs)
    waves: list[list[float]] = [[arrivals[0]]]
    for t in arrivals[1:]:
        if t - waves[-1][-1] > HOUR:
            waves.append([])
        waves[-1].append(t)
    assert len(waves) >= 12
    assert all(len(w) >= 50 and w[-1] - w[0] <= 15 * 60 for w in waves)


def test_most_batch_jobs_may_run_on_spot_and_some_only_on_demand() -> None:
    jobs = pods_of(BATCH)
    on_demand_only = [p for p in jobs if p.get("capacity_types") == ["on-demand"]]
    spot_ok = [p for p in jobs if "spot" in p.get("capacity_types", ["spot"])]
    assert len(on_demand_only) + len(spot_ok) == len(jobs)
    assert len(spot_ok) >= 0.7 * len(jobs)
    assert len(on_demand_only) >= 0.05 * len(jobs)
    assert any("capacity_types" not in p for p in jobs)
