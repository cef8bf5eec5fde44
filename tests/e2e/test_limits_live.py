"""Global limits, live: the real kube-apiserver + kube-scheduler and moto over HTTP. Pods a
limit holds back are told so in an Event that names the limit."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from scaler.adapters.aws.fleet import AwsFleet
from scaler.app import RunOptions, build
from scaler.core.actions import ScaleUp
from scaler.core.catalog import Catalog
from scaler.core.settings import Settings
from scaler.telemetry import by_name
from tests.fixtures.aws import Group, tagged_groups
from tests.fixtures.kube import wait_for

pytestmark = [pytest.mark.kube, pytest.mark.anyio]

CLUSTER = "limits"


async def test_pods_over_max_nodes_total_get_an_event_naming_the_limit(
    kube_env, kube_ns, aws, catalog: Catalog
):
    account = tagged_groups(aws, CLUSTER, [Group("cpu-small", "m5.large")])
    for i in range(3):
        kube_ns.make_pod(f"nb-{i}", requests={"cpu": "500m", "memory": "2Gi"})
    settings = Settings().with_overrides({"max_nodes_total": "1"})
    opts = RunOptions(cluster_name=CLUSTER, kubeconfig=str(kube_env.kubeconfig),
                      leader_elect=False, settings=settings)
    events: list[tuple[str, dict[str, Any]]] = []
    ups: list[ScaleUp] = []
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        await fleet.discover()
        ctl = build(opts, fleet, catalog, observer=by_name(lambda e, f: events.append((e, f))))
        async with anyio.create_task_group() as tg:
            await tg.start(ctl.cluster.run)
            with anyio.fail_after(20):
                while len((await ctl.cluster.snapshot()).pending) < 3:
                    await anyio.sleep(0.05)
                while not ups:
                    decision = await ctl.reconciler.tick()
                    ups += [a for a in decision.actions if isinstance(a, ScaleUp)]
                    await anyio.sleep(0.3)
            for _ in range(3):  # later ticks: still at the limit, nothing more
                decision = await ctl.reconciler.tick()
                assert not decision.of(ScaleUp)
            tg.cancel_scope.cancel()
    assert [(u.pool, u.count) for u in ups] == [("cpu-small", 1)]
    groups = account.describe_auto_scaling_groups()["AutoScalingGroups"]
    assert [g["DesiredCapacity"] for g in groups] == [1]
    (limited,) = [f for e, f in events if e == "limited"]
    assert limited["pods"] == 2 and limited["limit"] == "max_nodes_total"

    def held_events() -> Any:
        evs = kube_ns.core.list_namespaced_event(kube_ns.namespace).items
        found = [e for e in evs if e.reason == "NotTriggerScaleUp"]
        return found if len(found) == 2 else None

    evs = wait_for(held_events, what="two NotTriggerScaleUp events")
    launched = set(ups[0].pods)
    assert {f"{kube_ns.namespace}/{e.involved_object.name}" for e in evs}.isdisjoint(launched)
    for e in evs:
        assert e.type == "Warning"
        assert "limit max_nodes_total=1 reached" in e.message, e.message
