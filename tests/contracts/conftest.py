"""Fixtures that hand each contract test one rig per implementation of its port.

``fleet_rig``: the simulated Fleet, and AwsFleet on moto. ``cluster_rig``: the simulated
ClusterSource + Actuator, and KubeCluster + KubeActuator on the real API server.
``feed_rig``: the simulated InterruptionFeed (skipped where ``simulations.ports`` has none
yet), and SqsInterruptionFeed on moto's SQS with a quarantine queue. The real
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
    SimFeedRig,
    SimFleetRig,
    SqsFeedRig,
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


VISIBILITY_TIMEOUT_S = 0
"""A received, unacked message is visible again at once: redelivery is checked without
waiting on any clock."""
MAX_RECEIVES = 2


@pytest.fixture(params=["simulated", "sqs"])
async def feed_rig(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    options = {"visibility_timeout_s": VISIBILITY_TIMEOUT_S, "max_receives": MAX_RECEIVES}
    if request.param == "simulated":
        import simulations.ports

        feed_class = getattr(simulations.ports, "SimInterruptionFeed", None)
        if feed_class is None:
            pytest.skip("no simulated InterruptionFeed in simulations.ports on this branch yet")
        yield SimFeedRig(feed_class, **options)
        return
    import boto3

    from scaler.adapters.aws.queue import SqsInterruptionFeed

    request.getfixturevalue("aws")
    sqs = boto3.client("sqs")
    main = sqs.create_queue(QueueName="contract-interruptions")["QueueUrl"]
    quarantine = sqs.create_queue(QueueName="contract-interruptions-aside")["QueueUrl"]
    async with SqsInterruptionFeed.open(main, quarantine_queue_url=quarantine, **options) as feed:
        yield SqsFeedRig(feed, sqs, main, quarantine)
