"""A group whose writes are always denied: the live controller against the real kube-apiserver
+ kube-scheduler and moto behind a small fault proxy on 127.0.0.1.

moto enforces IAM only in some setups, so the fault proxy (tests/fixtures/faults.py) plays
IAM: it answers ``SetDesiredCapacity`` on one group with AWS's own 403 AccessDenied and passes
every other request to moto unchanged.

Groups (us-east-1 catalog prices): ``denied`` m5a.large $0.086/h, ``allowed`` m5.large
$0.096/h: the denied one is the cheapest, so it is chosen first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from kubernetes import client

from scaler.adapters.aws.fleet import AwsFleet
from scaler.adapters.metrics import Metrics
from scaler.app import Controller, RunOptions, build
from scaler.core.actions import ScaleUp
from scaler.core.catalog import Catalog
from scaler.ports import Rejected
from scaler.telemetry import Event
from tests.fixtures.aws import Group, tagged_groups
from tests.fixtures.faults import AwsFaultProxy, access_denied
from tests.fixtures.kube import wait_for

CLUSTER = "denied"


@pytest.fixture
def proxy(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsFaultProxy]:
    """IAM's answer for one group: SetDesiredCapacity on ``denied`` is refused with AWS's
    403 AccessDenied; every other request goes to moto unchanged."""
    with AwsFaultProxy(aws) as p:
        p.add("SetDesiredCapacity", access_denied(), where={"AutoScalingGroupName": "denied"})
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)  # scaler's clients go through it
        yield p


@pytest.fixture
def account(aws: str) -> Any:
    return tagged_groups(aws, CLUSTER, [Group("denied", "m5a.large"), Group("allowed", "m5.large")])


def desired(asg: Any) -> dict[str, int]:
    groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["AutoScalingGroupName"]: g["DesiredCapacity"] for g in groups}


@pytest.mark.anyio
async def test_the_fleet_reports_an_access_denied_write_as_rejected(account, proxy, catalog):
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        with pytest.raises(Rejected, match="AccessDenied"):
            await fleet.set_desired("denied", 1)
        await fleet.set_desired("allowed", 1)
    assert proxy.faulted("SetDesiredCapacity") == 1
    assert desired(account) == {"denied": 0, "allowed": 1}


@contextlib.asynccontextmanager
async def controller(
    kube_env: Any, catalog: Catalog, observe: Any
) -> AsyncIterator[Controller]:
    opts = RunOptions(cluster_name=CLUSTER, kubeconfig=str(kube_env.kubeconfig), leader_elect=False)
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        await fleet.discover()
        ctl = build(opts, fleet, catalog, observer=observe)
        async with anyio.create_task_group() as tg:
            await tg.start(ctl.cluster.run)
            yield ctl
            tg.cancel_scope.cancel()


@pytest.mark.kube
@pytest.mark.anyio
async def test_a_denied_group_backs_off_and_its_pod_goes_to_the_next_cheapest_group(
    kube_env, kube_ns, account, proxy, catalog
):
    kube_ns.make_pod("nb", requests={"cpu": "500m", "memory": "2Gi"})
    metrics = Metrics()
    events: list[tuple[str, dict[str, Any]]] = []

    def observe(event: Event) -> None:
        events.append((event.name, event.fields()))
        metrics(event)

    ups: list[ScaleUp] = []
    async with controller(kube_env, catalog, observe) as ctl:
        with anyio.fail_after(20):
            while not (await ctl.cluster.snapshot()).pending:
                await anyio.sleep(0.05)
            # Tick as the loop would until a write succeeds (nothing scales on an empty
            # cluster otherwise).
            while desired(account)["allowed"] == 0:
                decision = await ctl.reconciler.tick()
                ups += [a for a in decision.actions if isinstance(a, ScaleUp)]
                await anyio.sleep(0.3)
        # Ticks after that: the denied group is not asked again while it backs off.
        for _ in range(3):
            await ctl.reconciler.tick()
        memory = ctl.reconciler.memory
        assert memory.backing_off("denied", ctl.reconciler.clock.now())
        assert "AccessDenied" in memory.backoff_reason["denied"]

    assert [u.pool for u in ups] == ["denied", "allowed"]
    assert proxy.faulted("SetDesiredCapacity") == 1, "one refusal backs the group off: it is not retried forever"
    assert desired(account) == {"denied": 0, "allowed": 1}
    (backoff,) = [f for e, f in events if e == "pool_backoff"]
    assert backoff["pool"] == "denied" and backoff["cause"] == "write_rejected"
    assert metrics.registry.get_sample_value(
        "scaler_pool_backoffs_total", {"pool": "denied", "cause": "write_rejected"}
    ) == 1.0

    def failed_event() -> Any:
        evs = kube_ns.core.list_namespaced_event(kube_ns.namespace).items
        return [e for e in evs if e.reason == "FailedScaleUp"]

    (ev,) = wait_for(failed_event, what="FailedScaleUp event")
    assert ev.type == "Warning" and ev.involved_object.name == "nb"
    assert "pool denied skipped for 180s" in ev.message and "AccessDenied" in ev.message
    assert isinstance(ev, client.CoreV1Event)
