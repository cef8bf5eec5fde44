"""One port for people and probes: ``/metrics`` (Prometheus), ``/healthz`` (the process
answers) and ``/readyz`` (caches are listed and current; the loop may act). ``/readyz``
answers 503 with the reason while the API server cannot be listed or its watches have gone
quiet past the cache-age bound."""

from __future__ import annotations

from collections.abc import Callable

import anyio
from aiohttp import web
from anyio.abc import TaskStatus
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest


async def serve(
    host: str,
    port: int,
    *,
    ready: Callable[[], bool],
    registry: CollectorRegistry = REGISTRY,
    unready_reason: Callable[[], str] | None = None,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``task_status.started(port)`` with the bound port (``port=0``
    picks a free one, for tests). ``unready_reason()`` is the 503's text."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ok\n")
        reason = unready_reason() if unready_reason is not None else "caches not ready"
        return web.Response(status=503, text=f"{reason}\n")

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics), web.get("/healthz", healthz),
                    web.get("/readyz", readyz)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        bound = int(runner.addresses[0][1])  # (host, port) of the listening socket
        task_status.started(bound)
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()
