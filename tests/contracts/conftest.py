"""Fixtures that hand each contract test one rig per implementation of its port.

``fleet_rig``: the simulated Fleet, and AwsFleet on moto. ``cluster_rig``: the simulated
ClusterSource + Actuator, and KubeCluster + KubeActuator on the real API server. The real
sides share the session's moto server and control plane (tests/fixtures/aws.py, kube.py):
moto is reset and a fresh namespace made per test, nothing is started per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from scaler.core.catalog import Catalog
from tests.contracts.rigs import (
    CLUSTER,
    INSTANCE_TYPE,
    POOLS,
    AwsFleetRig,
    KubeClusterRig,
    SimClusterRig,
    SimFleetRig,
)


@pytest.fixture(params=["simulated", "aws"])
async def fleet_rig(request: pytest.FixtureRequest, catalog: Catalog) -> AsyncIterator[Any]:
    if request.param == "simulated":
        yield SimFleetRig(catalog)
        return
    from scaler.adapters.aws import AwsFleet
    from tests.fixtures.aws import Group, tagged_groups

    endpoint = request.getfixturevalue("aws")
    autoscaling = tagged_groups(
        endpoint,
        CLUSTER,
        [
            Group(p.name, INSTANCE_TYPE, min_size=p.min_size, max_size=p.max_size,
                  desired=p.desired)
            for p in POOLS
        ],
    )
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        yield AwsFleetRig(fleet, autoscaling)


@pytest.fixture(params=["simulated", pytest.param("kube", marks=pytest.mark.kube)])
async def cluster_rig(request: pytest.FixtureRequest, catalog: Catalog) -> AsyncIterator[Any]:
    if request.param == "simulated":
        yield SimClusterRig(catalog)
        return
    from scaler.adapters.kube.actuator import KubeActuator
    from scaler.adapters.kube.cluster import KubeCluster

    scope = request.getfixturevalue("kube_ns")
    cluster = KubeCluster(scope.api, watch_timeout_s=5)
    async with anyio.create_task_group() as tg:
        await tg.start(cluster.run)
        yield KubeClusterRig(scope, cluster, KubeActuator(scope.api))
        tg.cancel_scope.cancel()
