"""scaler run stops cleanly on SIGTERM (it is PID 1 in its container)."""

from __future__ import annotations

import os
import signal

import anyio
import pytest

from scaler import app

pytestmark = pytest.mark.anyio


async def test_sigterm_cancels_the_controller_and_returns(monkeypatch):
    cancelled = anyio.Event()

    async def run_forever(opts, **_):
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    monkeypatch.setattr(app, "run", run_forever)

    async def send_sigterm():
        await anyio.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(send_sigterm)
            result = await app.run_until_signalled(app.RunOptions(cluster_name="x"))
    assert result is None and cancelled.is_set()
