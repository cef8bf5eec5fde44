"""Every AWS call ends within its deadline: moto in server mode behind the fault proxy
(tests/fixtures/faults.py), told to hold one operation's requests unanswered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import boto3
import pytest

from scaler.adapters.aws.fleet import AwsFleet
from scaler.adapters.aws.queue import SqsInterruptionFeed
from scaler.core.catalog import Catalog
from scaler.ports import TimedOut
from tests.fixtures.aws import Group, tagged_groups
from tests.fixtures.faults import AwsFaultProxy, delay

pytestmark = pytest.mark.anyio
CLUSTER = "deadline"
NEVER_S = 600.0
"""A hold longer than any test: the request is never answered (dropped when the proxy
closes)."""


@pytest.fixture
def proxy(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsFaultProxy]:
    """The SDKs pointed at a proxy in front of moto."""
    with AwsFaultProxy(aws) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
        yield p


def desired(aws: str, name: str) -> int:
    asg: Any = boto3.client("autoscaling", endpoint_url=aws)
    (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return int(group["DesiredCapacity"])


async def test_a_set_desired_capacity_that_never_answers_ends_at_the_deadline(
    aws: str, proxy: AwsFaultProxy, catalog: Catalog
):
    tagged_groups(aws, CLUSTER, [Group("cpu", "m5.large")])
    # 4 s, not less: on a loaded 2-core machine signing and sending alone took over 2 s once,
    # and the request must reach the proxy for the test to mean anything.
    async with AwsFleet.open(CLUSTER, catalog, call_deadline_s=4.0) as fleet:
        await fleet.discover()  # through the proxy, answered
        proxy.add("SetDesiredCapacity", delay(NEVER_S))
        started = time.monotonic()
        # Before: no overall deadline; 5 attempts of a 30 s read (a tick once waited 191 s).
        with anyio.fail_after(15), pytest.raises(TimedOut) as raised:
            await fleet.set_desired("cpu", 3)
        elapsed = time.monotonic() - started
    assert 4.0 <= elapsed < 6.5
    assert str(raised.value) == "SetDesiredCapacity: no answer within 4 s (retries included)"
    assert proxy.held("SetDesiredCapacity") >= 1  # the request really was held, not refused
    assert desired(aws, "cpu") == 0


async def test_a_paginated_describe_that_never_answers_ends_at_the_deadline(
    aws: str, proxy: AwsFaultProxy, catalog: Catalog
):
    tagged_groups(aws, CLUSTER, [Group("cpu", "m5.large")])
    async with AwsFleet.open(CLUSTER, catalog, call_deadline_s=1.5) as fleet:
        proxy.add("DescribeAutoScalingGroups", delay(NEVER_S))
        with anyio.fail_after(15), pytest.raises(TimedOut, match=r"^DescribeAutoScalingGroups: "):
            await fleet.discover()


async def test_the_sqs_long_poll_gets_its_wait_on_top_of_the_deadline(aws: str):
    url = boto3.client("sqs", endpoint_url=aws).create_queue(QueueName="q")["QueueUrl"]
    async with SqsInterruptionFeed.open(url) as feed:
        # A 1 s long poll on an empty queue answers empty; it is not cut short.
        assert await feed.receive(wait_s=1) == []
        assert feed.sqs.deadline_s > 20  # the 20 s long poll fits inside
