"""Leader election on a real coordination.k8s.io/v1 Lease (kube-apiserver v1.20.2).

Timings are short (a 2 s lease, 0.2 s retries) and every wait is bounded by ``fail_after``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from kubernetes import client

from scaler.adapters.kube.leader import LeaderElector
from tests.fixtures.kube import KubeScope

LEASE_S, RENEW_S, RETRY_S = 2.0, 1.5, 0.2
blocking = anyio.to_thread.run_sync


class Replica:
    """One scaler replica: an elector and an acting part that records when it runs."""

    def __init__(self, kube_ns: KubeScope, identity: str, **options: Any) -> None:
        timing = {"lease_duration_s": LEASE_S, "renew_deadline_s": RENEW_S}
        self.elector = LeaderElector(
            kube_ns.api,
            kube_ns.namespace,
            "scaler",
            identity,
            retry_period_s=RETRY_S,
            **{**timing, **options},
        )
        self.acting = anyio.Event()
        self.stopped_at: float | None = None
        self.terms = 0
        self.scope = anyio.CancelScope()

    async def act(self) -> None:
        self.terms += 1
        self.acting.set()
        try:
            await anyio.sleep_forever()
        finally:
            self.stopped_at = anyio.current_time()
            self.acting = anyio.Event()

    async def campaign(self) -> None:
        with self.scope:
            await self.elector.run(self.act)


def lease(kube_ns: KubeScope) -> Any:
    return client.CoordinationV1Api(kube_ns.api).read_namespaced_lease("scaler", kube_ns.namespace)


async def until(probe: Callable[[], bool], timeout_s: float = 10.0) -> None:
    with anyio.fail_after(timeout_s):
        while not probe():
            await anyio.sleep(0.02)


@pytest.mark.kube
@pytest.mark.anyio
async def test_of_two_electors_on_one_lease_exactly_one_leads(kube_ns: KubeScope):
    a, b = Replica(kube_ns, "scaler-a"), Replica(kube_ns, "scaler-b")
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.campaign)
        tg.start_soon(b.campaign)
        await until(lambda: a.elector.is_leader or b.elector.is_leader)
        # Watch for several lease periods' worth of renewals: never two, never none.
        with anyio.move_on_after(1.5 * LEASE_S):
            while True:
                assert a.elector.is_leader != b.elector.is_leader
                await anyio.sleep(0.05)
        leader = a if a.elector.is_leader else b
        assert (await blocking(lambda: lease(kube_ns))).spec.holder_identity == (
            leader.elector.identity
        )
        assert leader.terms == 1
        assert (a.terms, b.terms).count(0) == 1  # the other never acted
        tg.cancel_scope.cancel()


@pytest.mark.kube
@pytest.mark.anyio
async def test_when_the_leader_stops_renewing_the_other_takes_over_after_the_lease_expires(
    kube_ns: KubeScope,
):
    a = Replica(kube_ns, "scaler-a", release_on_cancel=False)
    b = Replica(kube_ns, "scaler-b")
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.campaign)
        await until(lambda: a.elector.is_leader)
        tg.start_soon(b.campaign)
        await until(lambda: b.elector.holder == "scaler-a")  # b has seen a's lease

        a.scope.cancel()  # a dies without releasing: no more renewals
        stopped = anyio.current_time()
        await until(lambda: b.elector.is_leader, timeout_s=3 * LEASE_S)
        waited = anyio.current_time() - stopped

        # b waits for the lease to expire as b observed it: from a's last renewal, which b
        # saw at most one retry period before a stopped.
        assert LEASE_S - 2 * RETRY_S <= waited <= LEASE_S + 1.0
        record = (await blocking(lambda: lease(kube_ns))).spec
        assert (record.holder_identity, record.lease_transitions) == ("scaler-b", 1)
        tg.cancel_scope.cancel()


@pytest.mark.kube
@pytest.mark.anyio
async def test_a_leader_cancelled_with_release_on_cancel_hands_over_at_once(kube_ns: KubeScope):
    a, b = Replica(kube_ns, "scaler-a"), Replica(kube_ns, "scaler-b")
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.campaign)
        await until(lambda: a.elector.is_leader)
        tg.start_soon(b.campaign)
        await until(lambda: b.elector.holder == "scaler-a")

        a.scope.cancel()
        stopped = anyio.current_time()
        await until(lambda: b.elector.is_leader, timeout_s=LEASE_S)
        assert anyio.current_time() - stopped < LEASE_S - RETRY_S  # before it could expire
        tg.cancel_scope.cancel()


@pytest.mark.kube
@pytest.mark.anyio
async def test_a_leader_that_loses_the_lease_stops_acting_at_once(kube_ns: KubeScope):
    a = Replica(kube_ns, "scaler-a")
    leases = client.CoordinationV1Api(kube_ns.api)
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.campaign)
        await until(lambda: a.elector.is_leader)
        await a.acting.wait()

        def force_take() -> None:  # another identity overwrites the Lease
            current = leases.read_namespaced_lease("scaler", kube_ns.namespace)
            current.spec.holder_identity = "intruder"
            leases.replace_namespaced_lease("scaler", kube_ns.namespace, current)

        await blocking(force_take)
        taken = anyio.current_time()
        await until(lambda: a.stopped_at is not None, timeout_s=RENEW_S)

        assert a.stopped_at - taken <= RETRY_S + 0.5  # the next renewal saw it: no deadline wait
        assert not a.elector.is_leader
        # The intruder never renews: once its lease expires, a campaigns its way back.
        await until(lambda: a.elector.is_leader, timeout_s=3 * LEASE_S)
        await a.acting.wait()
        assert a.terms == 2
        tg.cancel_scope.cancel()


@pytest.mark.kube
@pytest.mark.anyio
async def test_acting_stops_at_the_renew_deadline_even_while_a_renewal_hangs(kube_ns: KubeScope):
    a = Replica(kube_ns, "scaler-a")
    release = threading.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.campaign)
        await until(lambda: a.elector.is_leader)

        def hang(*args: Any, **kwargs: Any) -> Any:
            release.wait(10)  # an API server that stopped answering
            raise ConnectionError("no answer")

        a.elector._leases.replace_namespaced_lease = hang  # type: ignore[method-assign]
        broken = anyio.current_time()
        try:
            await until(lambda: a.stopped_at is not None, timeout_s=RENEW_S + 1.0)
            assert RENEW_S - 2 * RETRY_S <= a.stopped_at - broken <= RENEW_S + 0.3
        finally:
            release.set()
        tg.cancel_scope.cancel()


@pytest.mark.kube
@pytest.mark.anyio
async def test_expiry_is_judged_on_the_electors_own_clock(kube_ns: KubeScope):
    a = Replica(kube_ns, "scaler-a", release_on_cancel=False)
    now = [1000.0]
    b = Replica(kube_ns, "scaler-b", lease_duration_s=60.0, clock=lambda: now[0])
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.campaign)
        await until(lambda: a.elector.is_leader)
        a.scope.cancel()
        tg.start_soon(b.campaign)
        await until(lambda: b.elector.holder == "scaler-a")
        with anyio.move_on_after(LEASE_S + 0.5):  # real time passes; b's clock does not
            await until(lambda: b.elector.is_leader, timeout_s=60)
        assert not b.elector.is_leader

        now[0] += LEASE_S  # b's clock says a's lease has run out
        await until(lambda: b.elector.is_leader, timeout_s=2.0)
        tg.cancel_scope.cancel()


def test_timings_must_leave_the_old_leader_time_to_stop():
    api = client.ApiClient(client.Configuration())
    with pytest.raises(ValueError, match="lease_duration_s > renew_deadline_s"):
        LeaderElector(api, "ns", "scaler", "a", lease_duration_s=10, renew_deadline_s=10)
    with pytest.raises(ValueError, match="identity"):
        LeaderElector(api, "ns", "scaler", "")
