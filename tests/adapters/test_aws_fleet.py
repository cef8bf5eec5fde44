"""AwsFleet against moto in server mode, over real HTTP, through aiobotocore.

The account is built with boto3 as a user would: a VPC with subnets in two zones, launch
templates, and ASGs tagged for cluster-autoscaler discovery. What moto cannot do (real Spot
prices, failed scaling activities) is scripted on top of the real client, never instead of it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from structlog.testing import capture_logs

from scaler.adapters.aws import AtMinSize, AwsFleet, DryRunFleet, parse_provider_id
from scaler.core.catalog import Catalog
from scaler.core.model import LABEL_POOL, NO_SCHEDULE, ON_DEMAND, SPOT, Resources, Taint
from scaler.core.offerings import build_offerings
from scaler.core.state import Node
from scaler.ports import NotFound

CLUSTER = "test-cluster"
CA = "k8s.io/cluster-autoscaler/"
TEMPLATE = CA + "node-template/"
ZONES = ("us-east-1a", "us-east-1b")


def _tags(name: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "ResourceId": name,
            "ResourceType": "auto-scaling-group",
            "Key": k,
            "Value": v,
            "PropagateAtLaunch": True,
        }
        for k, v in tags.items()
    ]


DISCOVERABLE = {CA + "enabled": "true", CA + CLUSTER: "owned"}


@pytest.fixture
def account(aws: str) -> dict[str, Any]:
    """The ASGs a real cluster has, and two it must leave alone. Returns boto3 clients."""
    ec2 = boto3.client("ec2", endpoint_url=aws)
    autoscaling = boto3.client("autoscaling", endpoint_url=aws)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = ",".join(
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate(ZONES, start=1)
    )
    # moto does not check the image; DescribeImages would cost seconds per test.
    image = "ami-0eks0node0image0"

    def template(name: str, instance_type: str, **data: Any) -> str:
        answer = ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": image, "InstanceType": instance_type, **data},
        )
        return str(answer["LaunchTemplate"]["LaunchTemplateId"])

    def group(
        name: str, tags: dict[str, str], *, desired: int = 0, min_size: int = 0, **spec: Any
    ) -> None:
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=min_size,
            MaxSize=10,
            DesiredCapacity=desired,
            VPCZoneIdentifier=subnets,
            Tags=_tags(name, tags),
            **spec,
        )

    cpu = template("cpu", "m5.large")
    group(
        "cpu-m5",
        DISCOVERABLE,
        desired=2,
        LaunchTemplate={"LaunchTemplateId": cpu, "Version": "$Latest"},
    )
    template("gpu", "g5.12xlarge")  # named below, no version: $Default
    gpu_tags = {
        **DISCOVERABLE,
        TEMPLATE + "resources/nvidia.com/gpu": "4",
        TEMPLATE + "taint/nvidia.com/gpu": "true:NoSchedule",
        TEMPLATE + "label/nvidia.com/gpu": "true",
        TEMPLATE + "label/workload": "training",
        TEMPLATE + "autoscaling-options/scaledownunneededtime": "10m",
    }
    group("gpu-g5", gpu_tags, LaunchTemplate={"LaunchTemplateName": "gpu"})
    spot = template("spot-base", "m5.large")
    group(
        "spot-mixed",
        DISCOVERABLE,
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": spot, "Version": "$Default"},
                "Overrides": [{"InstanceType": "m5.large"}, {"InstanceType": "m5a.large"}],
            },
            "InstancesDistribution": {
                "OnDemandBaseCapacity": 0,
                "OnDemandPercentageAboveBaseCapacity": 0,
                "SpotAllocationStrategy": "price-capacity-optimized",
            },
        },
    )
    # Off the catalog (previous generation) but known to DescribeInstanceTypes.
    group(
        "legacy-c4", DISCOVERABLE, LaunchTemplate={"LaunchTemplateId": template("c4", "c4.large")}
    )
    # Broken: a taint effect Kubernetes does not have; a type nobody knows.
    broken_tags = {**DISCOVERABLE, TEMPLATE + "taint/dedicated": "science:Sometimes"}
    group("broken-taint", broken_tags, LaunchTemplate={"LaunchTemplateId": cpu})
    group("mystery", DISCOVERABLE, LaunchTemplate={"LaunchTemplateId": template("zz", "zz.huge")})
    # Not ours: no cluster tag; another cluster's.
    group(
        "no-cluster-tag",
        {CA + "enabled": "true"},
        desired=1,
        LaunchTemplate={"LaunchTemplateId": cpu},
    )
    other = {CA + "enabled": "true", CA + "other-cluster": "owned"}
    group("other-cluster", other, LaunchTemplate={"LaunchTemplateId": cpu})
    return {"ec2": ec2, "autoscaling": autoscaling, "subnets": subnets}


@pytest.fixture
async def fleet(account: dict[str, Any], catalog: Catalog) -> AsyncIterator[AwsFleet]:
    async with AwsFleet.open(CLUSTER, catalog) as opened:
        yield opened


def described(account: dict[str, Any], name: str) -> dict[str, Any]:
    groups = account["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return dict(groups["AutoScalingGroups"][0])


class Scripted:
    """A real aiobotocore client that records direct calls and, for the methods given a
    script, answers from it (an exception is raised) until the script runs out."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.script: dict[str, list[Any]] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.client, name)
        if name in ("get_paginator", "meta") or not callable(target):
            return target

        async def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            if self.script.get(name):
                answer = self.script[name].pop(0)
                if isinstance(answer, Exception):
                    raise answer
                return answer
            return await target(**kwargs)

        return call


# --- discovery ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_open_follows_the_standard_chain_to_moto(aws: str, catalog: Catalog):
    async with AwsFleet.open(CLUSTER, catalog) as fleet:  # AWS_ENDPOINT_URL, region from env
        assert fleet.ec2.meta.endpoint_url == aws
        assert fleet.autoscaling.meta.endpoint_url == aws
        assert fleet.ec2.meta.region_name == "us-east-1"


@pytest.mark.anyio
async def test_tagged_groups_become_pools_and_broken_ones_are_disabled_by_name(fleet: AwsFleet):
    pools = {p.name: p for p in await fleet.pools()}
    assert sorted(pools) == ["cpu-m5", "gpu-g5", "legacy-c4", "spot-mixed"]
    discovery = fleet.last_discovery
    assert discovery is not None
    problems = {p.pool: p.reason for p in discovery.problems}
    assert sorted(problems) == ["broken-taint", "mystery"]
    assert "taint/dedicated='science:Sometimes'" in problems["broken-taint"]
    assert "zz.huge" in problems["mystery"]

    cpu = pools["cpu-m5"]
    assert (cpu.instance_types, cpu.capacity_type, cpu.zones) == (("m5.large",), ON_DEMAND, ZONES)
    assert (cpu.min_size, cpu.max_size, cpu.current_size) == (0, 10, 2)
    assert cpu.label_map == {LABEL_POOL: "cpu-m5"}


@pytest.mark.anyio
async def test_a_gpu_group_at_zero_reads_its_node_template_tags(fleet: AwsFleet):
    gpu = next(p for p in await fleet.pools() if p.name == "gpu-g5")
    assert gpu.instance_types == ("g5.12xlarge",)
    assert gpu.current_size == 0
    assert gpu.taints == (Taint("nvidia.com/gpu", "true", NO_SCHEDULE),)
    assert gpu.label_map == {"nvidia.com/gpu": "true", "workload": "training", LABEL_POOL: "gpu-g5"}
    assert gpu.allocatable == Resources(gpu=4.0)
    assert gpu.idle_timeout_s == 600.0


@pytest.mark.anyio
async def test_a_mixed_instances_spot_group_offers_all_its_types_as_spot(fleet: AwsFleet):
    spot = next(p for p in await fleet.pools() if p.name == "spot-mixed")
    assert (spot.instance_types, spot.capacity_type) == (("m5.large", "m5a.large"), SPOT)


@pytest.mark.anyio
async def test_a_partly_on_demand_mixed_group_is_priced_by_its_real_mix_and_rebalances(
    fleet: AwsFleet, account: dict[str, Any], catalog: Catalog
):
    # 1 on-demand node as a base, then 25% on-demand above it: at desired 3 the next node is
    # Spot with 3 chances in 4. Before, such a group was priced as all on-demand.
    lt = account["ec2"].create_launch_template(
        LaunchTemplateName="half-spot",
        LaunchTemplateData={"ImageId": "ami-0eks0node0image0", "InstanceType": "m5.large"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    account["autoscaling"].create_auto_scaling_group(
        AutoScalingGroupName="mostly-spot",
        MinSize=0,
        MaxSize=10,
        DesiredCapacity=3,
        VPCZoneIdentifier=account["subnets"],
        Tags=_tags("mostly-spot", DISCOVERABLE),
        CapacityRebalance=True,
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": lt, "Version": "$Default"},
                "Overrides": [{"InstanceType": "m5.large"}],
            },
            "InstancesDistribution": {
                "OnDemandBaseCapacity": 1,
                "OnDemandPercentageAboveBaseCapacity": 25,
            },
        },
    )
    pools = {p.name: p for p in await fleet.pools()}
    mixed, plain = pools["mostly-spot"], pools["cpu-m5"]
    assert (mixed.capacity_type, mixed.spot_share) == (ON_DEMAND, 0.75)
    assert plain.spot_share == 0.0 and pools["spot-mixed"].spot_share == 0.0
    # CapacityRebalance, read over the real API: the group replaces at-risk nodes itself.
    assert mixed.capacity_rebalance and not plain.capacity_rebalance
    offerings, problems = build_offerings([mixed, plain], catalog)
    assert not problems
    m5 = catalog.types["m5.large"]
    od, spot = m5.price(ON_DEMAND), m5.price(SPOT)
    assert od is not None and spot is not None
    assert offerings.price[offerings.get("mostly-spot")] == pytest.approx(0.25 * od + 0.75 * spot)
    assert offerings.price[offerings.get("cpu-m5")] == pytest.approx(od)


@pytest.mark.anyio
async def test_a_type_off_the_catalog_is_described_and_left_unpriced(fleet: AwsFleet):
    types = await fleet.describe_types(["c4.large", "zz.huge", "m5.large"])
    assert [t.name for t in types] == ["c4.large", "m5.large"]
    c4, m5 = types
    assert (c4.vcpus, c4.memory_mib, c4.arch) == (2, 3840, "amd64")
    assert c4.on_demand_usd_per_hour == float("inf")
    assert m5.on_demand_usd_per_hour == 0.096  # the catalog's


@pytest.mark.anyio
async def test_discovery_maps_provider_ids_to_groups(fleet: AwsFleet, account: dict[str, Any]):
    instances = described(account, "cpu-m5")["Instances"]
    assert len(instances) == 2
    mapping = (await fleet.discover()).instances  # what KubeCluster's instance_pools reads
    for instance in instances:
        provider_id = f"aws:///{instance['AvailabilityZone']}/{instance['InstanceId']}"
        zone, instance_id = parse_provider_id(provider_id) or ("", "")
        assert zone in ZONES
        assert mapping[instance_id] == "cpu-m5"
    not_ours = described(account, "no-cluster-tag")["Instances"][0]["InstanceId"]
    assert not_ours not in mapping


@pytest.mark.anyio
async def test_an_unchanged_instance_map_is_the_same_object_and_a_changed_one_is_new(
    fleet: AwsFleet, account: dict[str, Any]
):
    """The cluster source re-pools its nodes when the map is another object: the same
    instances give the very map it holds (and cost no comparison), new ones a new map."""
    first = (await fleet.discover()).instances
    assert (await fleet.discover()).instances is first
    await fleet.set_desired("cpu-m5", 3)  # moto starts the third instance at once
    third = (await fleet.discover()).instances
    assert third is not first and len(third) == len(first) + 1
    assert {i: g for i, g in third.items() if i in first} == dict(first)


# --- actuation ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_set_desired_changes_the_groups_desired_capacity(
    fleet: AwsFleet, account: dict[str, Any]
):
    await fleet.set_desired("gpu-g5", 2)
    assert described(account, "gpu-g5")["DesiredCapacity"] == 2
    assert next(p for p in await fleet.pools() if p.name == "gpu-g5").current_size == 2


@pytest.mark.anyio
async def test_groups_without_the_cluster_tags_are_never_written_to(
    fleet: AwsFleet, account: dict[str, Any]
):
    for name in ("no-cluster-tag", "other-cluster"):
        with pytest.raises(NotFound, match=name):
            await fleet.set_desired(name, 3)
    assert described(account, "no-cluster-tag")["DesiredCapacity"] == 1
    assert described(account, "other-cluster")["DesiredCapacity"] == 0


def node_of(instance: dict[str, Any], pool: str | None) -> Node:
    return Node(
        name=f"ip-{instance['InstanceId']}",
        pool=pool,
        instance_type=instance["InstanceType"],
        capacity_type=ON_DEMAND,
        zone=instance["AvailabilityZone"],
        instance_id=instance["InstanceId"],
    )


@pytest.mark.anyio
@pytest.mark.parametrize("pool", ["cpu-m5", None])  # None: found by DescribeAutoScalingInstances
async def test_terminate_removes_the_instance_and_decrements_desired(
    fleet: AwsFleet, account: dict[str, Any], pool: str | None
):
    instance = described(account, "cpu-m5")["Instances"][0]
    await fleet.terminate(node_of(instance, pool))
    after = described(account, "cpu-m5")
    assert after["DesiredCapacity"] == 1
    assert instance["InstanceId"] not in {i["InstanceId"] for i in after["Instances"]}


@pytest.mark.anyio
async def test_terminate_never_takes_a_group_below_its_minimum(
    fleet: AwsFleet, account: dict[str, Any]
):
    account["autoscaling"].update_auto_scaling_group(AutoScalingGroupName="cpu-m5", MinSize=2)
    instance = described(account, "cpu-m5")["Instances"][0]
    with pytest.raises(AtMinSize, match="minimum size 2"):
        await fleet.terminate(node_of(instance, "cpu-m5"))
    after = described(account, "cpu-m5")
    assert after["DesiredCapacity"] == 2
    assert instance["InstanceId"] in {i["InstanceId"] for i in after["Instances"]}


@pytest.mark.anyio
async def test_terminate_refuses_an_instance_of_a_group_that_is_not_ours(
    fleet: AwsFleet, account: dict[str, Any]
):
    instance = described(account, "no-cluster-tag")["Instances"][0]
    with pytest.raises(NotFound, match="not a discoverable group"):
        await fleet.terminate(node_of(instance, None))
    assert described(account, "no-cluster-tag")["DesiredCapacity"] == 1


@pytest.mark.anyio
async def test_dry_run_reads_through_and_only_logs_writes(fleet: AwsFleet, account: dict[str, Any]):
    dry = DryRunFleet(fleet)
    assert [p.name for p in await dry.pools()] == [p.name for p in await fleet.pools()]
    instance = described(account, "cpu-m5")["Instances"][0]
    with capture_logs() as logs:
        await dry.set_desired("gpu-g5", 3)
        await dry.terminate(node_of(instance, "cpu-m5"))
    assert [entry["event"] for entry in logs] == ["dry_run.set_desired", "dry_run.terminate"]
    assert logs[0]["pool"] == "gpu-g5" and logs[0]["desired"] == 3
    assert logs[1]["instance_id"] == instance["InstanceId"]
    assert described(account, "gpu-g5")["DesiredCapacity"] == 0
    assert described(account, "cpu-m5")["DesiredCapacity"] == 2


# --- launch failures ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_launch_failures_ask_the_scaled_group_and_moto_has_none(fleet: AwsFleet):
    fleet.autoscaling = Scripted(fleet.autoscaling)
    since = time.time() - 1
    await fleet.set_desired("gpu-g5", 1)
    assert await fleet.launch_failures(since) == []
    asked = [kw for name, kw in fleet.autoscaling.calls if name == "describe_scaling_activities"]
    assert [kw["AutoScalingGroupName"] for kw in asked] == ["gpu-g5"]


@pytest.mark.anyio
async def test_a_failed_launch_in_the_scaling_activities_is_reported(fleet: AwsFleet):
    fleet.autoscaling = Scripted(fleet.autoscaling)
    since = time.time() - 1
    await fleet.set_desired("gpu-g5", 1)
    failed = {
        "ActivityId": "5e2b-0001",
        "AutoScalingGroupName": "gpu-g5",
        "Description": "Launching a new EC2 instance.  Status Reason: We currently do not have "
        "sufficient g5.12xlarge capacity in the Availability Zone you requested (us-east-1a). "
        "Launching EC2 instance failed.",
        "Cause": "At 2026-07-01T12:00:00Z an instance was started in response to a difference "
        "between desired and actual capacity, increasing the capacity from 0 to 1.",
        "StartTime": datetime.now(UTC),
        "EndTime": datetime.now(UTC),
        "StatusCode": "Failed",
        "StatusMessage": "We currently do not have sufficient g5.12xlarge capacity in the "
        "Availability Zone you requested (us-east-1a). Launching EC2 instance failed.",
        "Progress": 100,
    }
    fleet.autoscaling.script["describe_scaling_activities"] = [{"Activities": [failed]}]
    [failure] = await fleet.launch_failures(since)
    assert failure.pool == "gpu-g5"
    assert failure.reason.startswith(
        "InsufficientInstanceCapacity: We currently do not have sufficient g5"
    )


# --- prices ---------------------------------------------------------------------------------


def spot_answer(*prices: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "SpotPriceHistory": [
            {
                "AvailabilityZone": zone,
                "InstanceType": itype,
                "ProductDescription": "Linux/UNIX",
                "SpotPrice": price,
                "Timestamp": datetime.now(UTC),
            }
            for itype, zone, price in prices
        ]
    }


@pytest.mark.anyio
async def test_moto_spot_prices_are_implausible_so_the_catalog_estimate_stays(
    fleet: AwsFleet, catalog: Catalog
):
    fleet.ec2 = Scripted(fleet.ec2)
    with capture_logs() as logs:
        assert await fleet.refresh_prices() is False
    assert any(e["event"] == "aws.spot_prices_rejected" for e in logs)
    asked = [kw for name, kw in fleet.ec2.calls if name == "describe_spot_price_history"]
    assert [kw["InstanceTypes"] for kw in asked] == [["m5.large", "m5a.large"]]  # Spot pools' types
    prices = await fleet.prices()
    assert prices.usd_per_hour == {}
    m5 = catalog["m5.large"]
    assert prices.get(m5, SPOT) == m5.spot_usd_per_hour
    assert prices.get(m5, ON_DEMAND) == m5.on_demand_usd_per_hour


@pytest.mark.anyio
async def test_a_failed_or_empty_refresh_keeps_the_last_good_prices(fleet: AwsFleet):
    fleet.ec2 = Scripted(fleet.ec2)
    fleet.ec2.script["describe_spot_price_history"] = [
        spot_answer(
            ("m5.large", "us-east-1a", "0.0310"),
            ("m5.large", "us-east-1b", "0.0350"),
            ("m5.large", "us-east-1c", "0.0100"),  # the pool does not launch there
            ("m5a.large", "us-east-1a", "0.0290"),
        ),
        ClientError(
            {"Error": {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}}, "X"
        ),
        {"SpotPriceHistory": []},
    ]
    good = {("m5.large", SPOT): pytest.approx(0.033), ("m5a.large", SPOT): pytest.approx(0.029)}
    assert await fleet.refresh_prices() is True
    assert (await fleet.prices()).usd_per_hour == good
    with capture_logs() as logs:
        assert await fleet.refresh_prices() is False  # throttled
        assert await fleet.refresh_prices() is False  # empty
    assert [e["event"] for e in logs] == ["aws.spot_prices_failed", "aws.spot_prices_empty"]
    assert "RequestLimitExceeded" in logs[0]["error"]
    assert (await fleet.prices()).usd_per_hour == good  # the last good ones: no new call
    assert sum(name == "describe_spot_price_history" for name, _ in fleet.ec2.calls) == 3


@pytest.mark.anyio
async def test_mixed_spot_groups_are_priced_by_their_spot_allocation_strategy(
    fleet: AwsFleet, account: dict[str, Any], catalog: Catalog
):
    lt = account["ec2"].create_launch_template(
        LaunchTemplateName="spot-strategies",
        LaunchTemplateData={"ImageId": "ami-0eks0node0image0", "InstanceType": "m5.large"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    # Spot $/h (bucket): r5 0.0504 (0), m5n 0.0536 (0), c5 0.0349 (0), m7i 0.0323 (3).
    overrides = [{"InstanceType": t} for t in ("r5.large", "m5n.large", "c5.large", "m7i.large")]
    strategies = {
        "spot-lowest": {"SpotAllocationStrategy": "lowest-price", "SpotInstancePools": 1},
        "spot-capacity": {"SpotAllocationStrategy": "capacity-optimized"},
        "spot-prioritized": {"SpotAllocationStrategy": "capacity-optimized-prioritized"},
        "spot-pco": {"SpotAllocationStrategy": "price-capacity-optimized"},
    }
    for name, strategy in strategies.items():
        account["autoscaling"].create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=0,
            MaxSize=10,
            VPCZoneIdentifier=account["subnets"],
            Tags=_tags(name, DISCOVERABLE),
            MixedInstancesPolicy={
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {"LaunchTemplateId": lt, "Version": "$Default"},
                    "Overrides": overrides,
                },
                "InstancesDistribution": {
                    "OnDemandBaseCapacity": 0,
                    "OnDemandPercentageAboveBaseCapacity": 0,
                    **strategy,
                },
            },
        )
    pools = [p for p in await fleet.pools() if p.name in strategies]
    assert {p.name: p.spot_allocation_strategy for p in pools} == {
        n: s["SpotAllocationStrategy"] for n, s in strategies.items()
    }
    offerings, problems = build_offerings(pools, catalog)
    assert not problems

    def spot(itype: str) -> float:
        price = catalog.types[itype].price(SPOT)
        assert price is not None
        return price

    price = {p.name: float(offerings.price[i]) for i, p in enumerate(offerings.pools)}
    assert price == pytest.approx({
        "spot-lowest": spot("m7i.large"),       # the cheapest type
        "spot-capacity": spot("m5n.large"),     # the dearest of the least-reclaimed types
        "spot-prioritized": spot("r5.large"),   # the first listed of those
        "spot-pco": spot("c5.large"),           # the cheapest of those
    })
    risk = {p.name: float(offerings.risk[i]) for i, p in enumerate(offerings.pools)}
    assert risk["spot-pco"] < risk["spot-lowest"]  # m7i.large is reclaimed far more often


@pytest.mark.anyio
async def test_a_tick_never_calls_the_price_api_after_the_first_read_however_old(
    fleet: AwsFleet,
):
    now = [1_000.0]
    fleet.clock = lambda: now[0]
    fleet.ec2 = Scripted(fleet.ec2)
    fleet.ec2.script["describe_spot_price_history"] = [
        spot_answer(("m5.large", "us-east-1a", "0.0310"), ("m5.large", "us-east-1b", "0.0350"),
                    ("m5a.large", "us-east-1a", "0.0290")),
        spot_answer(("m5.large", "us-east-1a", "0.0410"), ("m5.large", "us-east-1b", "0.0450"),
                    ("m5a.large", "us-east-1a", "0.0390")),
    ]

    def reads() -> int:
        return sum(name == "describe_spot_price_history" for name, _ in fleet.ec2.calls)

    # Before any read (a one-shot run, a tick that beat the refresher): one read, so the
    # first decision is priced.
    first = await fleet.prices()
    assert first.usd_per_hour[("m5.large", SPOT)] == pytest.approx(0.033)
    now[0] += 86_400.0  # a day later: older than any freshness window
    assert (await fleet.prices()).usd_per_hour == first.usd_per_hour
    assert reads() == 1
    # Only the background refresher's read moves them.
    assert await fleet.refresh_prices() is True
    assert (await fleet.prices()).usd_per_hour[("m5.large", SPOT)] == pytest.approx(0.043)
    assert reads() == 2
