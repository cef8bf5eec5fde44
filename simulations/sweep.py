"""Many runs: the (trace x policy x settings grid) product, serially or fanned out with Dask.

``--sweep idle_timeout_s=30,120,600 --sweep batch_idle_s=1,5`` is the cartesian product of
the values (6 points). Each run is a pure function of (trace, policy, overrides, seed)
(:func:`simulations.jobs.run_job`), so ``--dask local`` (a LocalCluster of 2 worker
processes) or ``--dask tcp://HOST:PORT`` gives exactly the serial results, in the same order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from simulations.jobs import CatalogRef, Job, Trace, run_job
from simulations.scorecard import Scorecard

Progress = Callable[[int, float], None]
"""``(job index, fraction of that job done)``."""


def parse_sweep(specs: Sequence[str]) -> list[dict[str, str]]:
    """``["a=1,2", "b=x,y"]`` -> the 4 combinations, first name varying slowest."""
    axes: list[tuple[str, list[str]]] = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not items:
            raise ValueError(f"--sweep {spec}: expected name=value1,value2,...")
        if any(name == n for n, _ in axes):
            raise ValueError(f"--sweep {name}: given twice")
        axes.append((name, items))
    if not axes:
        return [{}]
    return [
        dict(zip([n for n, _ in axes], combo, strict=True))
        for combo in itertools.product(*(v for _, v in axes))
    ]


def plan(
    traces: Sequence[Trace],
    policies: Sequence[str],
    base: Mapping[str, str],
    grid: Sequence[Mapping[str, str]],
    template: Job,
) -> list[Job]:
    """Jobs in report order: trace, then policy, then grid point."""
    jobs = []
    for trace in traces:
        for policy in policies:
            for point in grid:
                overrides = {**base, **point}
                jobs.append(
                    replace(
                        template,
                        trace=trace.label,
                        policy=policy,
                        overrides=tuple(overrides.items()),
                    )
                )
    return jobs


def run_serial(
    jobs: Sequence[Job],
    traces: Mapping[str, Trace],
    catalog: CatalogRef,
    progress: Progress | None = None,
) -> list[Scorecard]:
    out = []
    for k, job in enumerate(jobs):

        def report(fraction: float, k: int = k) -> None:
            if progress is not None:
                progress(k, fraction)

        out.append(run_job(job, traces[job.trace], catalog, report))
        report(1.0)
    return out


def run_dask(
    jobs: Sequence[Job],
    traces: Mapping[str, Trace],
    catalog: CatalogRef,
    address: str,
    progress: Progress | None = None,
) -> list[Scorecard]:
    """Fan out over Dask: ``local`` starts a LocalCluster (2 worker processes, one thread
    each) for the duration of the call; anything else is a scheduler address."""
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if address == "local":
        # Everything on loopback: the scheduler's HTTP server (health, metrics) listens even
        # without a dashboard, on all interfaces at :8787 unless told otherwise.
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", worker_dashboard_address=None,
        )
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        shared_traces = {label: client.scatter(t, broadcast=True) for label, t in traces.items()}
        shared_catalog = client.scatter(catalog, broadcast=True)
        futures = [
            client.submit(run_job, job, shared_traces[job.trace], shared_catalog, pure=False)
            for job in jobs
        ]
        index = {f.key: k for k, f in enumerate(futures)}
        for future in as_completed(futures):
            if progress is not None:
                progress(index[future.key], 1.0)
        return list(client.gather(futures))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
