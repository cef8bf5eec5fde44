"""Benchmarks of scaler's decisions; ``scaler bench place`` is the command.

Placement is measured on pods drawn from a real trace (Alibaba's openb GPU cluster, 2023:
``openb_pod_list_default.csv``, read from ``../shared/data``, never copied) against the
catalog's default pools, and compared in the same run with the straightforward per-pod Python
loop of :mod:`scaler.bench_reference`, which must choose the same pool for every pod.

The timed section is ``place(pods, offerings)`` exactly as ``scaler place`` times it: the
offerings are built beforehand (reported separately, as the one-off cost they are) and fresh
for every repeat, so no repeat profits from masks the previous one cached. The warm figure
(the same offerings again, as in a running reconciler) is reported beside it.
"""

from __future__ import annotations

import csv
import gc
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scaler.bench_reference import reference_place, reference_pools
from scaler.core.catalog import Catalog
from scaler.core.model import PodSpec, PoolSpec, Resources, SpecError
from scaler.core.offerings import Offerings, build_offerings
from scaler.core.placement import Placement, group_pods, place
from scaler.core.settings import PlacementSettings
from scaler.importers import openb_gpu_models

DEFAULT_TRACE = Path("../shared/data/traces/alibaba_gpu_v2023/openb_pod_list_default.csv")
REPO = Path(__file__).resolve().parent.parent

# Targets from the placement issue.
TARGET_DECISION_MS = 50.0
TARGET_SPEEDUP = 50.0
TARGET_PEAK_MIB = 300.0


@dataclass(frozen=True, slots=True)
class Shape:
    """What one trace row asks for."""

    cpu_milli: float
    memory_mib: float
    gpu: int
    gpu_models: tuple[str, ...]


def resolve_trace(path: str | Path | None) -> Path:
    """``path``, or the default trace relative to the working directory, then to the repo."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise SpecError(str(p), "no such trace file")
        return p
    for base in (Path.cwd(), REPO):
        p = base / DEFAULT_TRACE
        if p.is_file():
            return p.resolve()
    raise SpecError(
        str(DEFAULT_TRACE),
        "trace not found (looked relative to the working directory and to the repository); "
        "pass --trace PATH to openb_pod_list_default.csv from alibaba/clusterdata",
    )


def shape_of(row: dict[str, str]) -> Shape:
    """One openb row. ``num_gpu`` whole GPUs; a fractional share (``gpu_milli`` > 0 with
    ``num_gpu`` 0) still needs one whole GPU on a one-pod-per-node node (DOMAIN.md)."""
    gpus = int(row["num_gpu"] or 0)
    if gpus == 0 and float(row.get("gpu_milli") or 0) > 0:
        gpus = 1
    return Shape(
        cpu_milli=float(row["cpu_milli"] or 0),
        memory_mib=float(row["memory_mib"] or 0),
        gpu=gpus,
        gpu_models=openb_gpu_models(row.get("gpu_spec") or "") if gpus else (),
    )


def load_shapes(path: Path) -> list[Shape]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"cpu_milli", "memory_mib", "num_gpu"} - set(reader.fieldnames or ())
            if missing:
                raise SpecError(
                    str(path), f"not an openb pod list: no {', '.join(sorted(missing))}"
                )
            shapes = []
            for i, row in enumerate(reader, start=2):
                try:
                    shapes.append(shape_of(row))
                except ValueError as e:
                    raise SpecError(f"{path}: line {i}", str(e)) from None
    except OSError as e:
        raise SpecError(str(path), f"cannot read: {e.strerror or e}") from None
    if not shapes:
        raise SpecError(str(path), "no pods in the trace")
    return shapes


def draw_pods(shapes: Sequence[Shape], n: int, seed: int) -> list[PodSpec]:
    """``n`` pods whose requests are drawn uniformly, with replacement, from ``shapes``."""
    rng = np.random.default_rng(seed)
    pods = []
    for k, i in enumerate(rng.integers(0, len(shapes), size=n)):
        s = shapes[int(i)]
        pods.append(
            PodSpec(
                name=f"bench-{k:05d}",
                requests=Resources(
                    cpu_milli=s.cpu_milli, memory_mib=s.memory_mib, gpu=float(s.gpu), pods=1.0
                ),
                gpu_models=s.gpu_models,
            )
        )
    return pods


@dataclass(frozen=True, slots=True)
class Mismatch:
    pod: str
    place: str | None
    reference: str | None


def choices(placement: Placement) -> dict[str, str | None]:
    """Pod key -> pool name (None when unplaceable)."""
    out: dict[str, str | None] = {pod.key: g.pool.name for pod, g in placement.by_pod()}
    out.update({pod.key: None for pod, _ in placement.unplaceable_pods()})
    return out


def compare_choices(
    pods: Sequence[PodSpec], placed: dict[str, str | None], reference: dict[str, str | None]
) -> list[Mismatch]:
    """Pods (those the reference ran on) for which the two chose differently."""
    return [
        Mismatch(p.key, placed.get(p.key), reference[p.key])
        for p in pods
        if p.key in reference and placed.get(p.key, "<missing>") != reference[p.key]
    ]


@dataclass
class PlaceBench:
    """Figures of one ``scaler bench place`` run. Times in ms unless the name says s."""

    pods: int
    classes: int
    pools: int
    build_ms: list[float]
    decision_ms: list[float]
    """Cold: fresh offerings each repeat, as ``scaler place``."""
    warm_decision_ms: list[float]
    reference_s: float
    """Measured, on ``reference_pods`` pods."""
    reference_pods: int
    tracemalloc_peak_mib: float
    max_rss_mib: float
    placed: int
    unplaceable: int
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def decision_ms_median(self) -> float:
        return statistics.median(self.decision_ms)

    @property
    def reference_all_s(self) -> float:
        """Reference time for every pod: measured, or extrapolated from the pods it ran on."""
        return self.reference_s * self.pods / max(self.reference_pods, 1)

    @property
    def extrapolated(self) -> bool:
        return self.reference_pods < self.pods

    @property
    def speedup(self) -> float:
        return self.reference_all_s * 1e3 / self.decision_ms_median

    def as_json(self) -> dict[str, object]:
        return {
            "pods": self.pods,
            "classes": self.classes,
            "pools": self.pools,
            "offerings_build_ms": {
                "first": round(self.build_ms[0], 3),
                "median": round(statistics.median(self.build_ms), 3),
                "repeats": [round(x, 3) for x in self.build_ms],
            },
            "decision_ms": {
                "median": round(self.decision_ms_median, 3),
                "min": round(min(self.decision_ms), 3),
                "repeats": [round(x, 3) for x in self.decision_ms],
                "warm_median": round(statistics.median(self.warm_decision_ms), 3),
            },
            "reference": {
                "seconds": round(self.reference_s, 3),
                "pods": self.reference_pods,
                "seconds_all_pods": round(self.reference_all_s, 3),
                "extrapolated": self.extrapolated,
            },
            "speedup": round(self.speedup, 1),
            "same_choices": not self.mismatches,
            "mismatches": [
                {"pod": m.pod, "place": m.place, "reference": m.reference}
                for m in self.mismatches[:20]
            ],
            "mismatch_count": len(self.mismatches),
            "tracemalloc_peak_mib": round(self.tracemalloc_peak_mib, 2),
            "max_rss_mib": round(self.max_rss_mib, 1),
            "placed": self.placed,
            "unplaceable": self.unplaceable,
            "targets": {
                "decision_ms": TARGET_DECISION_MS,
                "speedup": TARGET_SPEEDUP,
                "peak_mib": TARGET_PEAK_MIB,
            },
        }


def run_place_bench(
    pods: Sequence[PodSpec],
    pools: Sequence[PoolSpec],
    catalog: Catalog,
    *,
    settings: PlacementSettings | None = None,
    repeats: int = 7,
    reference_budget_s: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> PlaceBench:
    """Time ``place()`` and the reference loop on ``pods``; compare their choices.

    The reference runs on every pod unless it passes ``reference_budget_s``; it then stops and
    its time is extrapolated to all pods (``PlaceBench.extrapolated``).
    """
    settings = settings or PlacementSettings()
    say = progress or (lambda _msg: None)

    def fresh() -> tuple[Offerings, float]:
        t0 = time.perf_counter()
        offerings, _problems = build_offerings(pools, catalog, settings=settings)
        return offerings, (time.perf_counter() - t0) * 1e3

    build_ms: list[float] = []
    decision_ms: list[float] = []
    placement: Placement | None = None
    say(f"place(): {repeats} repeats on fresh offerings")
    for _ in range(max(repeats, 1)):
        offerings, ms = fresh()
        build_ms.append(ms)
        gc.collect()
        t0 = time.perf_counter()
        placement = place(pods, offerings, settings=settings)
        decision_ms.append((time.perf_counter() - t0) * 1e3)
    assert placement is not None
    warm_ms = []
    for _ in range(max(repeats, 1)):
        gc.collect()
        t0 = time.perf_counter()
        place(pods, offerings, settings=settings)
        warm_ms.append((time.perf_counter() - t0) * 1e3)

    # Memory: a separate, untimed call (tracemalloc slows allocation down).
    offerings, _ = fresh()
    gc.collect()
    tracemalloc.start()
    place(pods, offerings, settings=settings)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    say(f"reference loop: {len(pods)} pods x {len(offerings)} pools")
    ref_pools = reference_pools(offerings)
    reference: dict[str, str | None] = {}
    gc.collect()
    t0 = time.perf_counter()
    for pod in pods:
        chosen = reference_place(pod, ref_pools)
        reference[pod.key] = chosen.name if chosen else None
        if time.perf_counter() - t0 > reference_budget_s:
            break
    reference_s = time.perf_counter() - t0

    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mib = rss_kib / (1024 * 1024) if sys.platform == "darwin" else rss_kib / 1024
    return PlaceBench(
        pods=len(pods),
        classes=len(group_pods(pods)),
        pools=len(offerings),
        build_ms=build_ms,
        decision_ms=decision_ms,
        warm_decision_ms=warm_ms,
        reference_s=reference_s,
        reference_pods=len(reference),
        tracemalloc_peak_mib=peak / 2**20,
        max_rss_mib=rss_mib,
        placed=sum(len(g.pods) for g in placement.groups),
        unplaceable=sum(len(u.pods) for u in placement.unplaceable),
        mismatches=compare_choices(pods, choices(placement), reference),
    )
