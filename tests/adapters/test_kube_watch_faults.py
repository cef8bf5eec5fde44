"""Watches against the real kube-apiserver through a proxy that can stall or cut them.

The proxy (``TcpFaultProxy``, tests/fixtures/kube_faults.py) sits on 127.0.0.1 in front of the session's API
server; TLS passes through it. A *stall* holds every byte without closing anything: the
half-open connection that once left scaler's cache stale for minutes with no error.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from kubernetes import client

from scaler.adapters.kube.cluster import KubeCluster
from tests.fixtures.kube import KubeEnv, KubeScope
from tests.fixtures.kube_faults import TcpFaultProxy

pytestmark = [pytest.mark.kube, pytest.mark.anyio]

blocking = anyio.to_thread.run_sync
WATCH_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 5.0


@pytest.fixture
def proxy(kube_env: KubeEnv) -> Iterator[TcpFaultProxy]:
    with TcpFaultProxy.for_url(kube_env.server) as p:
        yield p


def api_via(kube_env: KubeEnv, proxy: TcpFaultProxy, *, token: str | None = None) -> Any:
    config = client.Configuration()
    config.host = f"https://127.0.0.1:{proxy.port}"
    config.api_key = {"authorization": f"Bearer {token or kube_env.token}"}
    config.ssl_ca_cert = str(kube_env.ca_file)
    return client.ApiClient(config)


@asynccontextmanager
async def watching(kube_env: KubeEnv, proxy: TcpFaultProxy) -> AsyncIterator[KubeCluster]:
    cluster = KubeCluster(
        api_via(kube_env, proxy), watch_timeout_s=WATCH_TIMEOUT_S, read_timeout_s=READ_TIMEOUT_S
    )
    async with anyio.create_task_group() as tg:
        await tg.start(cluster.run)
        yield cluster
        tg.cancel_scope.cancel()


async def seen(cluster: KubeCluster, key: str, timeout_s: float) -> float:
    """Seconds until the cache holds pod ``key``; fails the test after ``timeout_s``."""
    start = time.monotonic()
    with anyio.fail_after(timeout_s):
        while True:
            view = await cluster.snapshot()
            if any(p.pod.key == key for p in view.pending) or any(
                b.pod.key == key for b in view.bound
            ):
                return time.monotonic() - start
            await anyio.sleep(0.05)


async def test_an_idle_healthy_watch_hears_from_the_server_within_its_timeout(
    kube_env: KubeEnv, proxy: TcpFaultProxy
):
    async with watching(kube_env, proxy) as cluster:
        ages = []
        for _ in range(int(2 * WATCH_TIMEOUT_S / 0.2)):
            ages.append(cluster.staleness_s())
            await anyio.sleep(0.2)
        # The watches' timely ends keep an idle cache's age under the timeout.
        assert max(ages) < WATCH_TIMEOUT_S + 1.0
        assert sum(r.reconnects for r in cluster.reflectors) == 0
        assert all(r.relists == 1 for r in cluster.reflectors)


async def test_a_half_open_watch_is_noticed_within_the_read_timeout_and_resumed(
    kube_env: KubeEnv, kube_ns: KubeScope, proxy: TcpFaultProxy
):
    async with watching(kube_env, proxy) as cluster:
        await anyio.sleep(0.5)
        # The open watches go silent (and a request sent on one waits too); new connections
        # still work.
        proxy.stall(reset_on_send=False)
        stalled_at = time.monotonic()
        await blocking(lambda: kube_ns.make_pod("during-stall", requests={"memory": "64Gi"}))
        key = f"{kube_ns.namespace}/during-stall"
        ages: list[float] = []

        async def sample() -> None:
            while True:
                ages.append(cluster.staleness_s())
                await anyio.sleep(0.1)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            # Before: the client's read timeout was the watch timeout + 30 s; nothing in
            # between noticed a silent connection.
            await seen(cluster, key, timeout_s=READ_TIMEOUT_S + 4.0)
            tg.cancel_scope.cancel()
        noticed_after = time.monotonic() - stalled_at
        print(f"half-open watch: pod seen {noticed_after:.2f} s after the stall, "
              f"cache age peaked at {max(ages):.2f} s")
        assert noticed_after < READ_TIMEOUT_S + 4.0
        assert sum(r.reconnects for r in cluster.reflectors) >= 1
        # The cache age rose while the watch was silent, then reset when every watch resumed
        # (the pod's may resume a moment before the others: the age is the oldest's).
        assert max(ages) > WATCH_TIMEOUT_S
        with anyio.fail_after(2.0):
            while cluster.staleness_s() >= 1.0:
                await anyio.sleep(0.05)
        assert all(r.relists == 1 for r in cluster.reflectors)  # resumed, not re-listed


async def test_after_a_cut_new_pods_are_seen_within_seconds_of_the_network_coming_back(
    kube_env: KubeEnv, kube_ns: KubeScope, proxy: TcpFaultProxy
):
    async with watching(kube_env, proxy) as cluster:
        # A first cut long enough to run the backoff up (refused ~6 times)...
        proxy.cut(refuse=True)
        await anyio.sleep(8.0)
        proxy.restore()
        await blocking(lambda: kube_ns.make_pod("after-first-cut"))
        first = await seen(cluster, f"{kube_ns.namespace}/after-first-cut", timeout_s=20)
        await anyio.sleep(1.5)  # the resumed watches run healthy for a while
        # ...then a blip: connections reset, reconnecting works at once.
        proxy.cut()
        await blocking(lambda: kube_ns.make_pod("after-blip"))
        second = await seen(cluster, f"{kube_ns.namespace}/after-blip", timeout_s=20)
    # Before: the pause after a cut grew to the 30 s cap, and a watch that reconnected and
    # ran kept the grown backoff until it ended cleanly (300 s later), so the blip waited
    # out the first cut's pauses too.
    print(f"after an 8 s cut: pod seen in {first:.2f} s; after a blip: {second:.2f} s")
    assert first < 3.5, first
    assert second < 2.5, second


async def test_the_clusters_connections_to_the_api_server_have_tcp_keepalive(kube_env: KubeEnv):
    api = kube_env.api_client()  # the client's own default: keep-alive off
    async with anyio.create_task_group() as tg:
        cluster = KubeCluster(api)
        await tg.start(cluster.run)
        pool = api.rest_client.pool_manager.connection_from_url(kube_env.server)
        # The lists' connections, back in the pool (the watches' are in use).
        socks = [c.sock for c in list(pool.pool.queue) if c is not None and c.sock is not None]
        options = [
            (
                s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            )
            for s in socks
        ]
        tg.cancel_scope.cancel()
    assert options
    assert set(options) == {(1, 30, 3)}
