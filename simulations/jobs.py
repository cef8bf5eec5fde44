"""One simulation run as a pure function: ``run_job(job, trace, catalog) -> Scorecard``.

Everything a run depends on is in its arguments, and they all pickle, so a run gives the
same scorecard in this process, in a Dask worker process, or on another machine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from scaler.core.catalog import Catalog
from scaler.core.model import CAPACITY_TYPES, PodSpec, PoolSpec
from scaler.core.settings import Settings, preset
from scaler.inputs import load_workload
from simulations.config import SimConfig, split_overrides
from simulations.engine import Simulation
from simulations.scorecard import Scorecard

POLICIES = ("scaler", "ca-least-waste", "karpenter-like")

POLICY_WORLD: dict[str, dict[str, str]] = {
    # cluster-autoscaler reads no interruption queue: users run aws-node-termination-handler
    # beside it, which cordons and drains on the Spot warning.
    "ca-least-waste": {"notice_handler": "nth"},
}
"""Simulator settings that go with a policy unless ``--set`` says otherwise."""


@dataclass(frozen=True)
class Trace:
    """A loaded trace: its label (the file name without ``.json``), pods and pools (None:
    the catalog's default pools)."""

    label: str
    pods: tuple[PodSpec, ...]
    pools: tuple[PoolSpec, ...] | None
    path: str = ""


@dataclass(frozen=True)
class CatalogRef:
    """Which catalog: ``None`` text = the packaged one; else the catalog file's text (so a
    remote worker needs no access to the file)."""

    text: str | None = None
    source: str = "<packaged>"

    def load(self) -> Catalog:
        return _catalog(self.text, self.source)


@dataclass(frozen=True)
class Job:
    trace: str
    policy: str
    overrides: tuple[tuple[str, str], ...] = ()
    """``--set`` and ``--sweep`` values, core and simulator names together."""
    seed: int = 0
    capacity_types: tuple[str, ...] = CAPACITY_TYPES
    until_s: float | None = None
    burstable: bool = False
    """Burstable types in the default pools (``--burstable``)."""


def load_trace(path: str | Path) -> Trace:
    workload = load_workload(path)
    label = Path(path).name.removesuffix(".json")
    return Trace(label=label, pods=workload.pods, pools=workload.pools, path=str(path))


def catalog_ref(path: str | None) -> CatalogRef:
    if path is None:
        return CatalogRef()
    text = Path(path).read_text(encoding="utf-8")
    Catalog.from_json(text, source=path)  # fail here, with the file's name, not in a worker
    return CatalogRef(text=text, source=path)


def configure(overrides: Mapping[str, str], policy: str) -> tuple[Settings, SimConfig]:
    """The policy's settings and the simulator's config with ``overrides`` applied."""
    core, sim = split_overrides(overrides)
    world = {**POLICY_WORLD.get(policy, {}), **sim}
    return preset(policy).with_overrides(core), SimConfig().with_overrides(world)


def run_job(
    job: Job,
    trace: Trace,
    catalog: CatalogRef,
    progress: Callable[[float], None] | None = None,
) -> Scorecard:
    cat = catalog.load()
    settings, config = configure(dict(job.overrides), job.policy)
    pools = (
        trace.pools if trace.pools is not None
        else _default_pools(catalog, job.capacity_types, job.burstable)
    )
    sim = Simulation(
        pods=trace.pods,
        pools=pools,
        catalog=cat,
        settings=settings,
        config=config,
        seed=job.seed,
        until_s=job.until_s,
        trace=trace.label,
        policy=job.policy,
        overrides=dict(job.overrides),
        progress=progress,
    )
    return sim.run()


@functools.lru_cache(maxsize=4)
def _catalog(text: str | None, source: str) -> Catalog:
    return Catalog.load() if text is None else Catalog.from_json(text, source=source)


@functools.lru_cache(maxsize=8)
def _default_pools(
    catalog: CatalogRef, capacity_types: tuple[str, ...], burstable: bool = False
) -> tuple[PoolSpec, ...]:
    return tuple(catalog.load().default_pools(capacity_types, burstable=burstable))
