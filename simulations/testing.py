"""Small factories for hand-checkable scenarios (tests, docs examples).

sim = simulate([pod("a", cpu="1", memory="2Gi", duration_s=600)], pools=[pool("m5.large")])
sim.world.timeline  # [(0.0, "arrive", "default/a"), (0.0, "pending", ...), ...]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scaler.core.catalog import Catalog
from scaler.core.model import PodSpec, PoolSpec
from scaler.core.spec import parse_pod, parse_pool
from simulations.engine import ReconcilerFactory, Simulation, real_reconciler
from simulations.jobs import configure


def pod(
    name: str,
    *,
    cpu: str | None = None,
    memory: str | None = None,
    gpu: int = 0,
    arrival_s: float = 0.0,
    duration_s: float | None = 3600.0,
    **fields: Any,
) -> PodSpec:
    """A pod in the workload format's own terms (``fields`` are more of its keys)."""
    requests: dict[str, Any] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    if gpu:
        requests["nvidia.com/gpu"] = gpu
    raw = {"name": name, "requests": requests, "arrival_s": arrival_s, **fields}
    if duration_s is not None:
        raw["duration_s"] = duration_s
    return parse_pod(raw)


def pool(instance_type: str, name: str | None = None, **fields: Any) -> PoolSpec:
    """A pool of one type; named after the type unless ``name`` is given."""
    return parse_pool({"name": name or instance_type, "instance_type": instance_type, **fields})


def simulate(
    pods: Sequence[PodSpec],
    *,
    pools: Sequence[PoolSpec] | None = None,
    policy: str = "scaler",
    seed: int = 0,
    overrides: Mapping[str, str] | None = None,
    until_s: float | None = None,
    catalog: Catalog | None = None,
    capacity_types: Sequence[str] = ("on-demand", "spot"),
    reconciler_factory: ReconcilerFactory = real_reconciler,
) -> Simulation:
    """Run one simulation with the timeline recorded; the caller reads ``sim.world``,
    ``sim.scorecard()`` and the ports' recorded calls."""
    catalog = catalog or Catalog.load()
    settings, config = configure(dict(overrides or {}), policy)
    sim = Simulation(
        pods=list(pods),
        pools=list(pools) if pools is not None else catalog.default_pools(capacity_types),
        catalog=catalog,
        settings=settings,
        config=config,
        seed=seed,
        until_s=until_s,
        record=True,
        trace="test",
        policy=policy,
        overrides=dict(overrides or {}),
        reconciler_factory=reconciler_factory,
    )
    sim.run()
    return sim
