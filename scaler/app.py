"""The composition root: real adapters in, the loop out. ``scaler run`` and ``scaler plan``.

One anyio task group holds everything, each task named:

- ``http`` (``/metrics``, ``/healthz``, ``/readyz``), started first;
- ``watch-nodes`` / ``watch-pods`` (:class:`~scaler.adapters.kube.cluster.KubeCluster`);
  ``/readyz`` turns ready when both are listed, and not ready again while the cache is older
  than ``max_cache_age_s`` (a watch gone quiet);
- ``webhook`` (optional: the pinning admission webhook over TLS, on every replica);
- ``prices`` (Spot price refresh; a failed refresh keeps the last good prices);
- ``on-demand-prices`` (with ``--live-prices``: the region's on-demand prices from the AWS
  Price List API, hourly; read once before anything else, see ``_open_fleet``);
- ``review`` (leader only: cost, waste and misplaced pods for ``/metrics``, and
  migrations, every ``review_interval_s``; :mod:`scaler.loop.review`);
- ``status`` and ``node-events`` (leader only, not with ``--dry-run``: the status ConfigMap,
  :mod:`scaler.adapters.kube.status`, and Events on nodes, :mod:`scaler.adapters.kube.events`);
- ``notices`` (leader only, with ``--queue-url``: the interruption pipeline,
  :mod:`scaler.loop.notices`, over the SQS feed);
- ``leader`` (a coordination.k8s.io Lease), which runs ``control-loop`` only while this
  replica holds the lease and cancels it the moment the lease is lost.

``--dry-run`` swaps the writing adapters for dry-run ones; nothing else checks the flag.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from functools import partial

import anyio
import numpy as np
import structlog
from anyio.abc import TaskGroup

from scaler.adapters.aws.dryrun import DryRunFleet
from scaler.adapters.aws.fleet import AwsFleet
from scaler.adapters.aws.lean import aws_session
from scaler.adapters.aws.pricing import OnDemandPriceList, on_demand_for
from scaler.adapters.aws.queue import SqsInterruptionFeed
from scaler.adapters.aws.tags import discovery_tag_keys
from scaler.adapters.http import serve
from scaler.adapters.kube.client import load_api_client
from scaler.adapters.kube.cluster import KubeCluster, watch_timeout_for
from scaler.adapters.kube.dryrun import DryRunActuator
from scaler.adapters.kube.events import NodeEvents
from scaler.adapters.kube.leader import LeaderElector
from scaler.adapters.kube.learned import LearnedStore
from scaler.adapters.kube.status import (
    PoolHistory,
    StatusConfigMap,
    StatusInputs,
    StatusWriter,
    status_document,
)
from scaler.adapters.kube.webhook import serve_webhook
from scaler.adapters.metrics import Metrics
from scaler.adapters.observe import LogObserver, Observer
from scaler.core.actions import Decision
from scaler.core.catalog import Catalog
from scaler.core.offerings import PoolProblem
from scaler.core.settings import Settings
from scaler.loop.admission import make_chooser
from scaler.loop.notices import notice_loop
from scaler.loop.reconciler import Reconciler
from scaler.loop.review import REVIEW_INTERVAL_S, review_loop
from scaler.loop.runner import control_loop
from scaler.ports import Actuator, Fleet
from scaler.telemetry import fan_out, ignore


@dataclass(frozen=True, slots=True)
class RunOptions:
    cluster_name: str
    kubeconfig: str | None = None
    region: str | None = None
    catalog: str | None = None
    settings: Settings = field(default_factory=Settings)
    dry_run: bool = False
    once: bool = False
    leader_elect: bool = True
    lease_namespace: str = "scaler-system"
    lease_name: str = "scaler"
    identity: str = ""
    listen_host: str = "0.0.0.0"
    listen_port: int = 8080
    price_refresh_s: float = 600.0
    """Spot prices move slowly; ten minutes keeps DescribeSpotPriceHistory calls cheap."""
    webhook_host: str = "0.0.0.0"
    webhook_port: int | None = None
    """The pinning admission webhook (docs/webhook.md) runs when this and both files are set."""
    webhook_cert_file: str | None = None
    webhook_key_file: str | None = None
    queue_url: str | None = None
    """SQS queue fed by EventBridge with interruption notices (docs/interruptions.md)."""
    quarantine_queue_url: str | None = None
    review_interval_s: float = REVIEW_INTERVAL_S
    """Reviews (cost and waste for /metrics, migrations): the simulator's interval too."""
    misplaced_top_pods: int = 20
    """Misplaced pods exported one by one (the rest summed per namespace): bounds the series."""
    status_interval_s: float = 10.0
    """The status ConfigMap is rebuilt this often and written only if it changed: a reader
    sees a scale-up within seconds, and a quiet cluster costs one write a heartbeat."""
    status_heartbeat_s: float = 60.0
    """...and rewritten at least this often, so its ``written_at`` shows the leader alive."""
    live_prices: bool = False
    """On-demand prices from the AWS Price List API (pricing:GetProducts), not the catalog."""
    on_demand_refresh_s: float = 3600.0
    """AWS changes list prices a few times a year: hourly is fresh, and ~10 calls an hour."""


class WallClock:
    def now(self) -> float:
        return time.time()

    async def sleep_until(self, t: float) -> None:
        await anyio.sleep(max(0.0, t - time.time()))


@dataclass
class Controller:
    """The wired parts, for ``run`` and for tests that drive them."""

    cluster: KubeCluster
    fleet: AwsFleet
    reconciler: Reconciler


def _identity(opts: RunOptions) -> str:
    return opts.identity or os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def build(
    opts: RunOptions,
    fleet: AwsFleet,
    catalog: Catalog,
    *,
    observer: Observer | None = None,
    metrics: Metrics | None = None,
) -> Controller:
    api = load_api_client(opts.kubeconfig)

    def instance_pools() -> Mapping[str, str] | None:
        discovery = fleet.last_discovery
        return discovery.instances if discovery is not None else None

    def is_gpu_type(name: str) -> bool:
        itype = catalog.get(name)
        return bool(itype and itype.gpu_count)

    # A healthy idle watch must be heard from well within the cache-age bound.
    watch_timeout_s = watch_timeout_for(opts.settings.scale_down.max_cache_age_s)
    # What nodes taught about their pools outlives a restart (docs/kubernetes.md); plan and
    # dry runs read it and write nothing.
    learned = LearnedStore(api, opts.lease_namespace, read_only=opts.dry_run)
    cluster = KubeCluster(api, instance_pools=instance_pools, is_gpu_type=is_gpu_type,
                          identity="scaler", watch_timeout_s=watch_timeout_s, learned=learned)
    writer_fleet: Fleet = DryRunFleet(fleet) if opts.dry_run else fleet
    actuator: Actuator = DryRunActuator() if opts.dry_run else cluster
    reconciler = Reconciler(
        cluster=cluster,
        fleet=writer_fleet,
        actuator=actuator,
        catalog=catalog,
        settings=opts.settings,
        clock=WallClock(),
        rng=np.random.default_rng(),
        prices=fleet,
        observer=observer or LogObserver(),
    )
    if metrics is not None:
        metrics.follow(reconciler)
    return Controller(cluster=cluster, fleet=fleet, reconciler=reconciler)


async def run_until_signalled(opts: RunOptions) -> Decision | None:
    """:func:`run`, stopped cleanly by SIGTERM or SIGINT. In a container scaler is PID 1,
    which the kernel gives no default SIGTERM handler: without this a rollout would wait out
    the grace period and never hand the Lease over."""
    result: Decision | None = None
    async with anyio.create_task_group() as tg:

        async def main() -> None:
            nonlocal result
            result = await run(opts)
            tg.cancel_scope.cancel()

        async def signals() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
                async for signum in received:
                    structlog.get_logger("scaler").info("stopping", signal=signum.name)
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(signals, name="signals")
        tg.start_soon(main, name="main")
    return result


async def run(opts: RunOptions, *, observer: Observer | None = None) -> Decision | None:
    """Run the controller until cancelled; with ``once``, one tick, returning its decision."""
    catalog = Catalog.load(opts.catalog)
    async with _open_fleet(opts, catalog) as fleet:
        await fleet.discover()
        metrics = Metrics(
            top_misplaced=opts.misplaced_top_pods,
            catalog_built_at=catalog.built_at,
            broken_pools=lambda: [p.pool for p in getattr(fleet.last_discovery, "problems", ())],
            dry_run=opts.dry_run,
        )
        observe = LogObserver(metrics) if observer is None else fan_out(observer, metrics)
        history = PoolHistory()
        node_events = NodeEvents(load_api_client(opts.kubeconfig), identity=_identity(opts))
        observe = fan_out(observe, history, *(() if opts.dry_run else (node_events,)))
        ctl = build(opts, fleet, catalog, observer=observe, metrics=metrics)
        node_events.interrupted = ctl.reconciler.memory.interrupted.__contains__
        if not opts.once:  # after build: a bad kubeconfig is named first
            check_groups(fleet, fatal=False)
        async with anyio.create_task_group() as tg:
            if opts.once:
                # Fail fast, one line naming the server: the watches would retry forever.
                check_groups(fleet, fatal=True)  # AWS already answered: nothing to wait for
                await ctl.cluster.check()
                await tg.start(ctl.cluster.run, name="watches")
                decision = await control_loop(ctl.reconciler, ctl.cluster, once=True)
                tg.cancel_scope.cancel()
                return decision
            max_age_s = opts.settings.scale_down.max_cache_age_s
            http = partial(serve, opts.listen_host, opts.listen_port,
                           ready=lambda: ctl.cluster.unready_reason(max_age_s) is None,
                           unready_reason=lambda: ctl.cluster.unready_reason(max_age_s) or "",
                           registry=metrics.registry)
            # Served before the first list: while the API server cannot be listed (retried
            # forever) /readyz says so instead of nothing answering.
            await tg.start(http, name="http")
            await tg.start(ctl.cluster.run, name="watches")
            tg.start_soon(_refresh_prices, fleet, opts.price_refresh_s, metrics, name="prices")
            if fleet.on_demand is not None:
                on_demand = fleet.on_demand
                metrics.on_demand_at = lambda: on_demand.refreshed_at_s
                tg.start_soon(_refresh_on_demand, fleet.on_demand, opts.on_demand_refresh_s,
                              name="on-demand-prices")
            if opts.webhook_port is not None and opts.webhook_cert_file and opts.webhook_key_file:
                # Every replica serves it (the Service picks any); followers' offerings are
                # refreshed by Reconciler.offerings_now, since they never tick.
                webhook = partial(
                    serve_webhook,
                    opts.webhook_host,
                    opts.webhook_port,
                    cert_file=opts.webhook_cert_file,
                    key_file=opts.webhook_key_file,
                    choose=ctl.cluster.claim_aware(
                        make_chooser(ctl.reconciler, ctl.cluster.runtime_history)
                    ),
                )
                await tg.start(webhook, name="webhook")

            async def act() -> None:
                metrics.leading(True)
                try:
                    async with anyio.create_task_group() as acting:
                        acting.start_soon(control_loop, ctl.reconciler, ctl.cluster, name="control-loop")
                        acting.start_soon(review_loop, ctl.reconciler, metrics.update,
                                          opts.review_interval_s, name="review")
                        if opts.queue_url:
                            acting.start_soon(_notices, opts, ctl.reconciler, acting, metrics,
                                              name="notices")
                        if not opts.dry_run:
                            acting.start_soon(node_events.run, name="node-events")
                            acting.start_soon(_status_writer(opts, ctl, history).run,
                                              name="status")
                finally:
                    metrics.leading(False)

            if opts.leader_elect:
                elector = LeaderElector(load_api_client(opts.kubeconfig), opts.lease_namespace,
                                        opts.lease_name, _identity(opts))
                await elector.run(act)
            else:
                await act()
    return None


async def _notices(
    opts: RunOptions, reconciler: Reconciler, tg: TaskGroup, metrics: Metrics | None = None
) -> None:
    """Interruption notices from SQS, acted on as they arrive (not at the next tick), by
    the pipeline the simulator also runs (:mod:`scaler.loop.notices`)."""
    assert opts.queue_url is not None
    async with SqsInterruptionFeed.open(
        opts.queue_url, quarantine_queue_url=opts.quarantine_queue_url, region=opts.region
    ) as feed:
        if metrics is not None:
            metrics.feed(feed.counts)
        await notice_loop(feed, reconciler, spawn=tg.start_soon)


async def _refresh_prices(fleet: AwsFleet, every_s: float, metrics: Metrics | None = None) -> None:
    while True:
        if await fleet.refresh_prices() and metrics is not None:
            metrics.prices_refreshed(time.time())
        await anyio.sleep(every_s)


@contextlib.asynccontextmanager
async def _open_fleet(opts: RunOptions, catalog: Catalog) -> AsyncIterator[AwsFleet]:
    """The cluster's ASGs, priced for its region (pricing.on_demand_for refuses a catalog of
    another region unless live prices replace it). The region as AwsFleet.open finds it."""
    region = opts.region or aws_session().get_config_variable("region") or catalog.region
    async with (
        on_demand_for(region, catalog.region, live=opts.live_prices) as on_demand,
        AwsFleet.open(opts.cluster_name, catalog, region=region) as fleet,
    ):
        fleet.on_demand = on_demand
        yield fleet


async def _refresh_on_demand(prices: OnDemandPriceList, every_s: float) -> None:
    """The first read was made at start; a failed one keeps the last good prices."""
    while True:
        await anyio.sleep(every_s)
        await prices.refresh()




async def plan(opts: RunOptions) -> tuple[Decision, Reconciler]:
    """Observe and decide once, writing nothing."""
    catalog = Catalog.load(opts.catalog)
    async with _open_fleet(opts, catalog) as fleet:
        await fleet.discover()
        ctl = build(opts, fleet, catalog, observer=ignore)
        check_groups(fleet, fatal=True)
        await ctl.cluster.check()  # one line naming the server, not a list retried forever
        async with anyio.create_task_group() as tg:
            await tg.start(ctl.cluster.run, name="watches")
            decision, _, _ = await ctl.reconciler.plan()
            tg.cancel_scope.cancel()
        return decision, ctl.reconciler


class NoGroupsDiscovered(ValueError):
    """No ASG carries the cluster's discovery tags: almost always a wrong --cluster-name or
    --region (a usage error, exit 2)."""


def no_groups_message(fleet: AwsFleet) -> str:
    region = getattr(getattr(fleet.autoscaling, "meta", None), "region_name", None) or "?"
    enabled, cluster = discovery_tag_keys(fleet.cluster_name)
    return (
        f"--cluster-name {fleet.cluster_name}: no Auto Scaling group in {region} carries "
        f"the tags {enabled} and {cluster}; check --cluster-name and --region"
    )


def check_groups(fleet: AwsFleet, *, fatal: bool) -> None:
    """``plan`` and ``run --once`` stop with :class:`NoGroupsDiscovered`; the controller
    (``fatal`` False) warns and keeps discovering every tick, since groups are often tagged
    after the controller is deployed, and a crash loop would hide the status ConfigMap that
    says what is wrong."""
    discovery = fleet.last_discovery
    if discovery is not None and discovery.groups:
        return
    if fatal:
        raise NoGroupsDiscovered(no_groups_message(fleet))
    structlog.get_logger("scaler").warning("no_groups_discovered",
                                           problem=no_groups_message(fleet))


def disabled_pools(reconciler: Reconciler) -> list[PoolProblem]:
    """Pools scaler will not choose, and why: groups discovery could not translate (the
    fleet's) and pools the offerings left out (the reconciler's)."""
    fleet = reconciler.prices  # the real fleet, also behind --dry-run's wrapper
    found = fleet.last_discovery if isinstance(fleet, AwsFleet) else None
    out = list(found.problems) if found is not None else []
    return out + [p for p in reconciler.problems if p not in out]


def _status_writer(opts: RunOptions, ctl: Controller, history: PoolHistory) -> StatusWriter:
    async def build(now: float) -> object:
        view = await ctl.cluster.snapshot()
        discovery = ctl.fleet.last_discovery
        reconciler = ctl.reconciler
        last = reconciler.last_decision
        pools = reconciler.pools_seen or (discovery.pools if discovery is not None else ())
        warnings = [] if discovery is not None and discovery.groups else [
            no_groups_message(ctl.fleet)
        ]
        return status_document(StatusInputs(
            now_s=now,
            leader=_identity(opts),
            cluster_name=opts.cluster_name,
            pools=pools,
            disabled=disabled_pools(reconciler),
            backoff_until_s=reconciler.memory.backoff_until_s,
            backoff_reason=reconciler.memory.backoff_reason,
            history=history,
            last_tick_s=None if last is None else last.now_s,
            last_decide_ms=None if last is None else reconciler.last_decide_ms,
            pending_pods=len(view.pending),
            nodes=len(view.nodes),
            warnings=warnings,
        ))

    target = StatusConfigMap(load_api_client(opts.kubeconfig), opts.lease_namespace)
    return StatusWriter(target, build, interval_s=opts.status_interval_s,
                        heartbeat_s=opts.status_heartbeat_s)
