"""Pure readers of AWS answers (recorded shapes) and the error translation at the boundary."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from scaler.adapters.aws.errors import AtMinSize, translate
from scaler.adapters.aws.parse import (
    UNPRICED_USD_PER_HOUR,
    instance_type_from_description,
    launch_failures_from_activities,
    parse_provider_id,
    spot_prices_from_history,
)
from scaler.core.catalog import Catalog
from scaler.ports import InsufficientCapacity, NotFound, PortError, Rejected, Throttled

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


# --- providerID -----------------------------------------------------------------------------


def test_a_provider_id_gives_zone_and_instance_id():
    assert parse_provider_id("aws:///us-east-1a/i-0123456789abcdef0") == (
        "us-east-1a",
        "i-0123456789abcdef0",
    )


@pytest.mark.parametrize(
    "provider_id",
    [
        None,
        "",
        "aws:///us-east-1a/3f1b2c/fargate-ip-10-0-1-2.ec2.internal",  # Fargate: no instance
        "gce://project/us-central1-a/node-1",
        "aws:///us-east-1a/",
    ],
)
def test_anything_but_an_ec2_provider_id_is_none(provider_id):
    assert parse_provider_id(provider_id) is None


# --- scaling activities ---------------------------------------------------------------------

# DescribeScalingActivities, as recorded from AWS (ids shortened), newest first.
ACTIVITIES: list[dict[str, Any]] = [
    {
        "ActivityId": "b1f5a3c2-0001",
        "AutoScalingGroupName": "gpu-p3",
        "Description": "Launching a new EC2 instance.  Status Reason: We currently do not have "
        "sufficient p3.2xlarge capacity in the Availability Zone you requested (us-east-1a). Our "
        "system will be working on provisioning additional capacity. You can currently get "
        "p3.2xlarge capacity by not specifying an Availability Zone in your request or choosing "
        "us-east-1b, us-east-1c, us-east-1d, us-east-1f. Launching EC2 instance failed.",
        "Cause": "At 2026-07-01T12:04:10Z an instance was started in response to a difference "
        "between desired and actual capacity, increasing the capacity from 0 to 1.",
        "StartTime": T0 + timedelta(minutes=4, seconds=11),
        "EndTime": T0 + timedelta(minutes=4, seconds=12),
        "StatusCode": "Failed",
        "StatusMessage": "We currently do not have sufficient p3.2xlarge capacity in the "
        "Availability Zone you requested (us-east-1a). Our system will be working on "
        "provisioning additional capacity. You can currently get p3.2xlarge capacity by not "
        "specifying an Availability Zone in your request or choosing us-east-1b, us-east-1c, "
        "us-east-1d, us-east-1f. Launching EC2 instance failed.",
        "Progress": 100,
        "Details": '{"Subnet ID":"subnet-0a1b","Availability Zone":"us-east-1a"}',
        "AutoScalingGroupARN": "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/gpu-p3",
    },
    {
        "ActivityId": "b1f5a3c2-0002",
        "AutoScalingGroupName": "gpu-p3",
        "Description": "Launching a new EC2 instance.  Status Reason: There are not enough free "
        "addresses in subnet 'subnet-0c2d' to satisfy the requested number of instances. "
        "Launching EC2 instance failed.",
        "Cause": "At 2026-07-01T12:02:00Z an instance was started in response to a difference "
        "between desired and actual capacity, increasing the capacity from 0 to 1.",
        "StartTime": T0 + timedelta(minutes=2),
        "EndTime": T0 + timedelta(minutes=2, seconds=1),
        "StatusCode": "Failed",
        "StatusMessage": "There are not enough free addresses in subnet 'subnet-0c2d' to "
        "satisfy the requested number of instances. Launching EC2 instance failed.",
        "Progress": 100,
        "Details": '{"Subnet ID":"subnet-0c2d","Availability Zone":"us-east-1b"}',
    },
    {
        "ActivityId": "b1f5a3c2-0003",
        "AutoScalingGroupName": "gpu-p3",
        "Description": "Terminating EC2 instance: i-0aa",
        "Cause": "At 2026-07-01T12:01:00Z an instance was taken out of service in response to a "
        "user request, shrinking the capacity from 1 to 0.",
        "StartTime": T0 + timedelta(minutes=1),
        "EndTime": T0 + timedelta(minutes=1, seconds=30),
        "StatusCode": "Cancelled",
        "StatusMessage": "Instance was protected from scale in.",
        "Progress": 100,
    },
    {
        "ActivityId": "b1f5a3c2-0004",
        "AutoScalingGroupName": "gpu-p3",
        "Description": "Launching a new EC2 instance: i-0bb",
        "Cause": "At 2026-07-01T11:50:00Z ...",
        "StartTime": T0 - timedelta(minutes=10),
        "EndTime": T0 - timedelta(minutes=9),
        "StatusCode": "Successful",
        "Progress": 100,
    },
    {
        "ActivityId": "b1f5a3c2-0005",
        "AutoScalingGroupName": "gpu-p3",
        "Description": "Launching a new EC2 instance.  Status Reason: Could not launch Spot "
        "Instances. InsufficientInstanceCapacity - There is no Spot capacity available that "
        "matches your request. Launching EC2 instance failed.",
        "StartTime": T0 - timedelta(minutes=30),
        "EndTime": T0 - timedelta(minutes=30),
        "StatusCode": "Failed",
        "StatusMessage": "Could not launch Spot Instances. InsufficientInstanceCapacity - There "
        "is no Spot capacity available that matches your request. Launching EC2 instance failed.",
        "Progress": 100,
    },
]


def test_failed_launches_since_a_time_become_launch_failures_oldest_first():
    failures = launch_failures_from_activities("gpu-p3", ACTIVITIES, T0.timestamp())
    assert [f.pool for f in failures] == ["gpu-p3", "gpu-p3"]
    assert [f.at_s for f in failures] == [
        (T0 + timedelta(minutes=2, seconds=1)).timestamp(),
        (T0 + timedelta(minutes=4, seconds=12)).timestamp(),
    ]
    assert failures[0].reason.startswith("no free IP addresses in subnet: There are not enough")
    assert failures[1].reason.startswith("InsufficientInstanceCapacity: We currently do not have")
    assert "us-east-1a" in failures[1].reason


def test_older_failures_count_when_asked_from_earlier():
    failures = launch_failures_from_activities(
        "gpu-p3", ACTIVITIES, (T0 - timedelta(hours=1)).timestamp()
    )
    assert len(failures) == 3  # the Spot one too; never the cancelled termination or the success
    assert failures[0].reason.startswith("InsufficientInstanceCapacity: Could not launch Spot")


# --- Spot prices ----------------------------------------------------------------------------


def spot(itype: str, zone: str, price: str | None, minutes: int = 0) -> dict[str, Any]:
    item: dict[str, Any] = {
        "AvailabilityZone": zone,
        "InstanceType": itype,
        "ProductDescription": "Linux/UNIX",
        "Timestamp": T0 + timedelta(minutes=minutes),
    }
    if price is not None:
        item["SpotPrice"] = price
    return item


def test_a_types_spot_price_is_the_mean_of_the_latest_price_in_each_of_its_pools_zones():
    history = [
        spot("m5.large", "us-east-1a", "0.0400", minutes=0),
        spot("m5.large", "us-east-1a", "0.0300", minutes=5),  # later: this one counts
        spot("m5.large", "us-east-1b", "0.0360"),
        spot("m5.large", "us-east-1c", "0.0100"),  # no Spot pool of this type launches there
        spot("c5.large", "us-east-1a", "0.0350"),  # no Spot pool uses this type
    ]
    prices, rejected = spot_prices_from_history(
        history, {"m5.large": {"us-east-1a", "us-east-1b"}}, {"m5.large": 0.096}
    )
    assert prices == {"m5.large": pytest.approx(0.033)}
    assert rejected == []


def test_missing_or_implausible_spot_prices_are_rejected_not_used():
    history = [
        spot("m5.large", "us-east-1a", None),  # moto once left SpotPrice out
        spot("m5.large", "us-east-1b", "0.00001"),  # what moto answers today
        spot("m5.large", "us-east-1c", "garbage"),
    ]
    prices, rejected = spot_prices_from_history(history, {"m5.large": set()}, {"m5.large": 0.096})
    assert prices == {}
    assert len(rejected) == 3
    assert "implausible" in rejected[1]


# --- instance types -------------------------------------------------------------------------

# A DescribeInstanceTypes item (moto's data, trimmed to what is read).
G4AD: dict[str, Any] = {
    "InstanceType": "g4ad.xlarge",
    "BareMetal": False,
    "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
    "VCpuInfo": {"DefaultVCpus": 4},
    "MemoryInfo": {"SizeInMiB": 16384},
    "GpuInfo": {
        "Gpus": [
            {
                "Name": "Radeon Pro V520",
                "Manufacturer": "AMD",
                "Count": 1,
                "MemoryInfo": {"SizeInMiB": 8192},
            }
        ]
    },
    "NetworkInfo": {
        "MaximumNetworkInterfaces": 2,
        "DefaultNetworkCardIndex": 0,
        "NetworkCards": [{"NetworkCardIndex": 0, "MaximumNetworkInterfaces": 2}],
        "Ipv4AddressesPerInterface": 4,
    },
}
P5_CARDS: dict[str, Any] = {
    "InstanceType": "p5e.48xlarge",
    "BareMetal": False,
    "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
    "VCpuInfo": {"DefaultVCpus": 192},
    "MemoryInfo": {"SizeInMiB": 2097152},
    "GpuInfo": {
        "Gpus": [
            {
                "Name": "H200",
                "Manufacturer": "NVIDIA",
                "Count": 8,
                "MemoryInfo": {"SizeInMiB": 144384},
            }
        ]
    },
    "NetworkInfo": {
        "MaximumNetworkInterfaces": 64,
        "DefaultNetworkCardIndex": 0,
        "NetworkCards": [{"NetworkCardIndex": i, "MaximumNetworkInterfaces": 2} for i in range(32)],
        "Ipv4AddressesPerInterface": 50,
    },
}


def test_a_described_type_off_the_catalog_is_unpriced_and_reads_like_the_catalog_builder():
    p5 = instance_type_from_description(P5_CARDS)
    assert (p5.vcpus, p5.memory_mib, p5.gpu_count, p5.gpu_model, p5.gpu_memory_mib) == (
        192,
        2097152,
        8,
        "H200",
        144384,
    )
    assert p5.max_pods == 2 * (50 - 1) + 2  # the default card's ENIs, not all 64
    assert p5.on_demand_usd_per_hour == UNPRICED_USD_PER_HOUR == math.inf
    assert p5.spot_usd_per_hour is None


def test_a_non_nvidia_gpu_counts_as_no_gpu():
    g4ad = instance_type_from_description(G4AD)
    assert (g4ad.gpu_count, g4ad.gpu_model, g4ad.max_pods) == (0, None, 2 * 3 + 2)


def test_a_described_catalog_type_keeps_the_catalog_price():
    catalog = Catalog.load()
    item = {**G4AD, "InstanceType": "m5.large", "GpuInfo": {}}
    m5 = instance_type_from_description(item, priced_like=catalog["m5.large"])
    assert m5.on_demand_usd_per_hour == catalog["m5.large"].on_demand_usd_per_hour
    assert m5.spot_savings_pct == catalog["m5.large"].spot_savings_pct


def test_a_mac_type_cannot_be_a_node():
    with pytest.raises(ValueError, match="cannot run EKS nodes"):
        instance_type_from_description(
            {
                **G4AD,
                "InstanceType": "mac2.metal",
                "ProcessorInfo": {"SupportedArchitectures": ["arm64_mac"]},
            }
        )


# --- errors ---------------------------------------------------------------------------------


def client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Op")


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        ("Throttling", "Rate exceeded", Throttled),
        ("RequestLimitExceeded", "Request limit exceeded.", Throttled),
        (
            "InsufficientInstanceCapacity",
            "We currently do not have sufficient capacity",
            InsufficientCapacity,
        ),
        ("ValidationError", "AutoScalingGroup name not found - null", NotFound),
        (
            "ValidationError",
            "Instance Id not found - No managed instance found for instance ID: i-0",
            NotFound,
        ),
        ("InvalidInstanceID.NotFound", "The instance ID 'i-0' does not exist", NotFound),
        (
            "InvalidLaunchTemplateId.NotFound",
            "The specified launch template does not exist.",
            NotFound,
        ),
        (
            "ValidationError",
            "Currently, desiredSize equals minSize (1). Terminating instance without replacement "
            "will violate group's min size constraint.",
            AtMinSize,
        ),
        # Refused as asked: the same request fails again (the reconciler backs the pool off).
        ("ValidationError", "New SetDesiredCapacity value 9 is above max value 5", Rejected),
        ("UnauthorizedOperation", "You are not authorized to perform this operation.", Rejected),
        ("AccessDenied", "User: arn:aws:sts::1:assumed-role/scaler is not authorized", Rejected),
        # A server error may pass: retried, backed off only when it keeps failing.
        ("InternalFailure", "An internal error occurred", PortError),
    ],
)
def test_client_errors_become_domain_errors_once(code, message, kind):
    error = translate(client_error(code, message), "SetDesiredCapacity gpu")
    assert type(error) is kind
    assert str(error) == f"SetDesiredCapacity gpu: {code}: {message}"
