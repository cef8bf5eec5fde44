"""Fixtures of the fault suite: the real parts of :mod:`tests.fixtures.fault_parts`, fresh per
test, with the fault proxies in front of moto and of the session's API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.aws import tagged_groups
from tests.fixtures.fault_parts import BURST_GROUPS, CLUSTER, SPOT_GROUPS, Parts
from tests.fixtures.faults import AwsFaultProxy
from tests.fixtures.kube_faults import TcpFaultProxy, proxied_kubeconfig


def _parts(kube_env: Any, kube_ns: Any, aws: str, tmp_path: Path, groups: list) -> Iterator[Parts]:
    tagged_groups(aws, CLUSTER, groups)
    sqs = boto3.client("sqs", endpoint_url=aws)
    queue_url = sqs.create_queue(QueueName="scaler-interruptions")["QueueUrl"]
    with AwsFaultProxy(aws) as aws_proxy, TcpFaultProxy.for_url(kube_env.server) as kube_proxy:
        yield Parts(
            kubeconfig=kube_env.kubeconfig,
            api=kube_ns.api,
            asg=boto3.client("autoscaling", endpoint_url=aws),
            ec2=boto3.client("ec2", endpoint_url=aws),
            namespace=kube_ns.namespace,
            aws_proxy=aws_proxy,
            kube_proxy=kube_proxy,
            scaler_kubeconfig=proxied_kubeconfig(
                kube_env.kubeconfig, kube_proxy, tmp_path / "kubeconfig"
            ),
            logs=tmp_path,
            sqs=sqs,
            queue_url=queue_url,
        )


@pytest.fixture
def burst_parts(kube_env: Any, kube_ns: Any, aws: str, tmp_path: Path) -> Iterator[Parts]:
    """cpu-small (m5.large, where a burst goes) and cpu-mid (m5.xlarge, the next-best)."""
    yield from _parts(kube_env, kube_ns, aws, tmp_path, BURST_GROUPS)


@pytest.fixture
def spot_parts(kube_env: Any, kube_ns: Any, aws: str, tmp_path: Path) -> Iterator[Parts]:
    """spot-m5 running two instances, od-m5 and od-m5x empty."""
    yield from _parts(kube_env, kube_ns, aws, tmp_path, SPOT_GROUPS)
