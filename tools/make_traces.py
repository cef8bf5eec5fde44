#!/usr/bin/env python3
"""Generate scaler's bundled workload traces, ``traces/*.json``, from a seed.

Each trace is a workload file (``scaler/schemas/workload.schema.json``, version 1, region
us-east-1, no ``pools``: the default catalog pools apply) whose every pod carries
``arrival_s`` and ``duration_s``. docs/traces.md describes each one; in short:

- ``datascience-week.json``: a data-science team's week. 20-40 people open Jupyter notebooks
  in working hours (weekdays 8-19 h, a few at weekends) on Saturn-Cloud-like tiers of
  4/16/64/128/256/512 GiB; 17 % of notebooks carry no requests at all (where
  cluster-autoscaler's least-waste expander ties and picks at random), a few take a GPU. Dask
  clusters of ~10 workers arrive within one second and run for about an hour, a few times a
  day. Three platform services run all week, on-demand only.
- ``gpu-training-bursts.json``: three days of GPU training sweeps (1/4/8-GPU jobs, A10G, L4,
  A100, H100 or any model, 20 min to 6 h) in bursts separated by quiet hours with no GPU pod
  at all, so GPU pools go to and from zero.
- ``spot-batch.json``: two days of batch waves every ~3 h: hundreds of CPU or memory jobs of
  minutes to an hour, most allowed on Spot, a fifth on-demand only.

Time 0 is Monday 00:00 local time. Output is byte-for-byte deterministic for a seed: every
trace draws from its own ``numpy.random.Generator`` seeded with ``(seed, trace number)``,
times are rounded to the millisecond, keys are sorted and each pod is one line (the layout of
``scaler.importers.format_workload``). tests/simulations/test_traces.py regenerates the
bundled files with the default seed and compares: change this script, not the files.

Usage::

    python tools/make_traces.py                          # default seed -> traces/
    python tools/make_traces.py --seed 7 --out-dir /tmp/traces
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scaler.importers import format_workload

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SEED = 20240521
DEFAULT_OUT_DIR = REPO / "traces"

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
ON_DEMAND_ONLY = ["on-demand"]
COMPONENT = "app.kubernetes.io/component"

Rng = np.random.Generator


def pod(
    name: str,
    namespace: str,
    arrival_s: float,
    duration_s: float,
    requests: Mapping[str, Any] | None,
    component: str,
    **extra: Any,
) -> dict[str, Any]:
    """One pod entry; ``requests=None`` leaves the field out (a pod with no requests)."""
    out: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "arrival_s": round(float(arrival_s), 3),
        "duration_s": round(float(duration_s), 3),
        "annotations": {COMPONENT: component},
        **extra,
    }
    if requests is not None:
        out["requests"] = dict(requests)
    return out


def lognormal_clipped(rng: Rng, median: float, sigma: float, low: float, high: float) -> float:
    return float(np.clip(median * np.exp(sigma * rng.standard_normal()), low, high))


def pick(rng: Rng, options: Sequence[Any], weights: Sequence[float]) -> Any:
    p = np.asarray(weights, dtype=float)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


# ------------------------------------------------------------------- data-science week

_PEOPLE = """ada alan barbara claude dennis donald edsger frances grace guido hedy ivan jean john ken
    leslie linus lynn margaret mary niklaus radia richard robin sophie tim tony vint whitfield
    yukihiro adele anita betty carol evelyn fran hal joan kathleen marian"""
PEOPLE = tuple(_PEOPLE.split())
TEAMS = ("forecasting", "nlp", "vision", "analytics", "risk")
# Saturn Cloud's memory tiers (GiB) with modest CPU; a data-science pod is memory-bound.
TIERS_GIB_CPU = {4: 1, 16: 2, 64: 4, 128: 8, 256: 16, 512: 32}
TIER_WEIGHTS = {4: 0.15, 16: 0.35, 64: 0.25, 128: 0.12, 256: 0.08, 512: 0.05}
NO_REQUESTS_SHARE = 0.17  # notebooks whose spec carries no requests at all
GPU_NOTEBOOK_SHARE = 0.04
GPU_NOTEBOOK_MODELS = (["T4"], ["A10G"], ["A10G", "L4"], None)
DASK_WORKER_SHAPES = ((4, "16Gi"), (2, "8Gi"), (8, "32Gi"))
SERVICES = (  # name, cpu, memory: the platform the notebooks hang off, never on Spot
    ("jupyterhub", "1", "2Gi"),
    ("mlflow", "2", "8Gi"),
    ("postgres", "2", "8Gi"),
)


def working_day_start(rng: Rng, day: int) -> float:
    """Morning arrival: most people around 9:15, nobody before 8."""
    return day * DAY + float(np.clip(rng.normal(9.25, 0.75), 8.0, 12.0)) * HOUR


def datascience_week(rng: Rng) -> list[dict[str, Any]]:
    n_people = int(rng.integers(20, 41))
    people = sorted(str(p) for p in rng.choice(PEOPLE, size=n_people, replace=False))
    team = {p: TEAMS[int(rng.integers(len(TEAMS)))] for p in people}
    preferred = {p: pick(rng, list(TIER_WEIGHTS), list(TIER_WEIGHTS.values())) for p in people}
    notebooks: list[tuple[str, float, float]] = []  # (person, start, duration)
    for day in range(7):
        for person in people:
            if day < 5:
                if rng.random() > 0.9:
                    continue  # out of office
                start = working_day_start(rng, day)
                sessions = 1 + int(rng.poisson(0.6))
            else:
                if rng.random() > 0.1:
                    continue
                start = day * DAY + float(rng.uniform(10, 15)) * HOUR
                sessions = 1
            for _ in range(sessions):
                if start >= day * DAY + 19 * HOUR:
                    break
                duration = lognormal_clipped(rng, 3 * HOUR, 0.5, 1 * HOUR, 8 * HOUR)
                notebooks.append((person, start, duration))
                start += duration + float(rng.uniform(5, 90)) * MINUTE
    n = len(notebooks)
    order = rng.permutation(n)
    no_requests = set(order[: round(NO_REQUESTS_SHARE * n)].tolist())
    gpu = set(
        order[len(no_requests) : len(no_requests) + max(4, round(GPU_NOTEBOOK_SHARE * n))].tolist()
    )
    pods = []
    count = dict.fromkeys(people, 0)
    gpu_seen = 0
    for i, (person, start, duration) in enumerate(notebooks):
        count[person] += 1
        ns = f"{team[person]}-{person}"
        name = f"jupyter-{person}-{count[person]:03d}"
        extra: dict[str, Any] = {}
        if i in no_requests:
            requests = None
        elif i in gpu:
            requests = {"cpu": "3", "memory": "12Gi", "nvidia.com/gpu": 1}
            # Cycle through the choices so every kind, "any GPU" included, is represented.
            models = GPU_NOTEBOOK_MODELS[gpu_seen % len(GPU_NOTEBOOK_MODELS)]
            gpu_seen += 1
            if models:
                extra["gpu_models"] = models
        else:
            tier = (
                preferred[person]
                if rng.random() < 0.75
                else pick(rng, list(TIER_WEIGHTS), list(TIER_WEIGHTS.values()))
            )
            requests = {"cpu": str(TIERS_GIB_CPU[tier]), "memory": f"{tier}Gi"}
        pods.append(pod(name, ns, start, duration, requests, "notebook", **extra))

    cluster = 0
    for day in range(5):
        for _ in range(2 + int(rng.poisson(1.5))):
            cluster += 1
            person = people[int(rng.integers(n_people))]
            ns = f"{team[person]}-{person}"
            t0 = day * DAY + float(rng.uniform(9.5, 17.0)) * HOUR
            life = float(rng.uniform(45, 80)) * MINUTE
            prefix = f"dask-{cluster:03d}"
            # dask-kubernetes creates the scheduler, then all workers in one go.
            pods.append(
                pod(
                    f"{prefix}-scheduler",
                    ns,
                    t0,
                    life + 30,
                    {"cpu": "1", "memory": "4Gi"},
                    "dask-scheduler",
                )
            )
            cpu, memory = pick(rng, DASK_WORKER_SHAPES, (0.6, 0.2, 0.2))
            first = t0 + float(rng.uniform(2, 5))
            for w in range(int(rng.integers(8, 13))):
                arrival = first + float(rng.uniform(0, 0.9))
                pods.append(
                    pod(
                        f"{prefix}-worker-{w:02d}",
                        ns,
                        arrival,
                        life + float(rng.uniform(-5, 5)),
                        {"cpu": str(cpu), "memory": memory},
                        "dask-worker",
                    )
                )

    for name, cpu, memory in SERVICES:
        pods.append(
            pod(
                name,
                "platform",
                0,
                7 * DAY,
                {"cpu": cpu, "memory": memory},
                "service",
                capacity_types=ON_DEMAND_ONLY,
            )
        )
    return pods


# ------------------------------------------------------------------ GPU training bursts

GPU_TEAMS = ("llm", "vision", "speech")
# gpus -> (cpu, memory, model choices, jobs per sweep low/high): sized to fit the matching
# EC2 shapes (g5/g6.2xlarge, g5/g6.12xlarge, p4d/p5.48xlarge) after kube-reserved.
GPU_JOB_SHAPES = {
    1: ("6", "24Gi", (["A10G"], ["L4"], ["A10G", "L4"], None), (8, 32)),
    4: ("40", "160Gi", (["A10G"], ["L4"], ["A10G", "L4"], None), (2, 8)),
    8: ("90", "900Gi", (["A100"], ["H100"], ["A100", "H100"], None), (1, 4)),
}
GPU_SHAPE_WEIGHTS = (0.5, 0.3, 0.2)
TRAINING_DAYS = 3


def gpu_training_bursts(rng: Rng) -> list[dict[str, Any]]:
    pods = []
    start = float(rng.uniform(8, 10)) * HOUR
    burst = 0
    sweep = 0
    while start < TRAINING_DAYS * DAY - 6 * HOUR:
        burst += 1
        last_end = start
        for _ in range(int(rng.integers(3, 7))):
            sweep += 1
            team = GPU_TEAMS[int(rng.integers(len(GPU_TEAMS)))]
            gpus = pick(rng, list(GPU_JOB_SHAPES), GPU_SHAPE_WEIGHTS)
            cpu, memory, model_choices, (low, high) = GPU_JOB_SHAPES[gpus]
            models = model_choices[int(rng.integers(len(model_choices)))]
            submitted = start + float(rng.uniform(0, 60)) * MINUTE
            median = float(rng.uniform(0.75, 2.5)) * HOUR  # one sweep's jobs run alike
            for j in range(int(rng.integers(low, high + 1))):
                arrival = submitted + float(rng.uniform(0, 30))
                duration = lognormal_clipped(rng, median, 0.4, 20 * MINUTE, 6 * HOUR)
                extra: dict[str, Any] = {}
                if models:
                    extra["gpu_models"] = models
                if gpus == 8:
                    extra["capacity_types"] = ON_DEMAND_ONLY  # days of work, no Spot
                requests = {"cpu": cpu, "memory": memory, "nvidia.com/gpu": gpus}
                name = f"train-b{burst:02d}-s{sweep:02d}-{j:02d}"
                pods.append(
                    pod(name, f"ml-{team}", arrival, duration, requests, "training", **extra)
                )
                last_end = max(last_end, arrival + duration)
        # A quiet spell long enough for every GPU node to drain and be removed.
        start = last_end + float(rng.uniform(2, 8)) * HOUR
    return pods


# ----------------------------------------------------------------------- Spot batch

# namespace -> (cpu, memory choices, duration median/low/high in minutes, on-demand share,
# jobs per wave low/high)
BATCH_PIPELINES = {
    "etl": ("2", ("4Gi", "8Gi"), (12, 2, 45), 0.1, (100, 220)),
    "render": ("8", ("16Gi",), (25, 5, 60), 0.1, (80, 200)),
    "genomics": ("4", ("32Gi", "64Gi"), (30, 10, 60), 0.1, (80, 200)),
    "reports": ("1", ("2Gi",), (5, 2, 15), 1.0, (60, 100)),  # deadline-bound: never on Spot
}
BATCH_DAYS = 2
WAVE_PERIOD_S = 3 * HOUR


def spot_batch(rng: Rng) -> list[dict[str, Any]]:
    pods = []
    spot_pipelines = [ns for ns in BATCH_PIPELINES if ns != "reports"]
    for wave in range(int(BATCH_DAYS * DAY // WAVE_PERIOD_S)):
        t0 = HOUR + wave * WAVE_PERIOD_S + float(rng.uniform(-30, 30)) * MINUTE
        # The nightly reports run at 01:00; the other waves belong to one pipeline each.
        ns = "reports" if wave % 8 == 0 else spot_pipelines[int(rng.integers(len(spot_pipelines)))]
        cpu, memories, (median, low, high), on_demand_share, (low_n, high_n) = BATCH_PIPELINES[ns]
        n = int(rng.integers(low_n, high_n + 1))
        for i, arrival in enumerate(np.sort(t0 + rng.uniform(0, 10 * MINUTE, size=n))):
            duration = lognormal_clipped(rng, median * MINUTE, 0.6, low * MINUTE, high * MINUTE)
            requests = {"cpu": cpu, "memory": memories[int(rng.integers(len(memories)))]}
            extra: dict[str, Any] = {}
            if rng.random() < on_demand_share:
                extra["capacity_types"] = ON_DEMAND_ONLY
            elif rng.random() < 0.5:
                extra["capacity_types"] = ["spot"]
            name = f"{ns}-w{wave:02d}-{i:04d}"
            pods.append(
                pod(name, f"batch-{ns}", float(arrival), duration, requests, "job", **extra)
            )
    return pods


# -------------------------------------------------------------------------- output

TRACES: dict[str, tuple[int, str, Callable[[Rng], list[dict[str, Any]]]]] = {
    "datascience-week.json": (
        1,
        "A data-science team's week: Jupyter notebooks on 4-512 GiB tiers in working hours "
        "(some with no requests, a few with a GPU), Dask clusters of ~10 workers, and "
        "on-demand platform services.",
        datascience_week,
    ),
    "gpu-training-bursts.json": (
        2,
        "Three days of GPU training sweeps (1/4/8-GPU jobs on A10G, L4, A100, H100 or any "
        "model) in bursts with quiet hours between them: GPU pools go to and from zero.",
        gpu_training_bursts,
    ),
    "spot-batch.json": (
        3,
        "Two days of Spot-friendly batch waves every ~3 h: short CPU and memory jobs, "
        "most allowed on Spot, some on-demand only.",
        spot_batch,
    ),
}


def build(name: str, seed: int) -> dict[str, Any]:
    number, description, make = TRACES[name]
    pods = make(np.random.default_rng([seed, number]))
    pods.sort(key=lambda p: (p["arrival_s"], p["namespace"], p["name"]))
    return {
        "version": 1,
        "region": "us-east-1",
        "description": f"{description} Generated by tools/make_traces.py --seed {seed}.",
        "pods": pods,
    }


def generate(seed: int = DEFAULT_SEED) -> dict[str, str]:
    """File name -> file text, for every bundled trace."""
    return {name: format_workload(build(name, seed)) for name in TRACES}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"default {DEFAULT_SEED}")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="default traces/")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in generate(args.seed).items():
        (args.out_dir / name).write_text(text, encoding="utf-8")
        n = text.count("\n    {")
        print(f"{args.out_dir / name}: {n} pods", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
