"""An ASG as DescribeAutoScalingGroups describes it -> a pool, or a reason it is disabled."""

from __future__ import annotations

from typing import Any

import pytest

from scaler.adapters.aws.asg import TemplateRef, pool_from_asg, template_refs
from scaler.adapters.aws.tags import is_discoverable, parse_go_duration
from scaler.core.catalog import Catalog
from scaler.core.model import LABEL_POOL, NO_SCHEDULE, ON_DEMAND, SPOT, PoolSpec, Resources, Taint
from scaler.core.offerings import PoolProblem, build_offerings

CLUSTER = "prod"
CA = "k8s.io/cluster-autoscaler/"
TEMPLATE = CA + "node-template/"
SUBNETS = {"subnet-a": "us-east-1a", "subnet-b": "us-east-1b"}
LT = "lt-0123456789abcdef0"


def group(
    name: str = "cpu-m5", *, tags: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """A DescribeAutoScalingGroups item as AWS returns it, discoverable for CLUSTER."""
    all_tags = {CA + "enabled": "true", CA + CLUSTER: "owned", **(tags or {})}
    item: dict[str, Any] = {
        "AutoScalingGroupName": name,
        "LaunchTemplate": {
            "LaunchTemplateId": LT,
            "LaunchTemplateName": "nodes",
            "Version": "$Latest",
        },
        "MinSize": 0,
        "MaxSize": 10,
        "DesiredCapacity": 2,
        "AvailabilityZones": ["us-east-1a", "us-east-1b"],
        "VPCZoneIdentifier": "subnet-a,subnet-b",
        "Instances": [],
        "Tags": [
            {
                "ResourceId": name,
                "ResourceType": "auto-scaling-group",
                "Key": k,
                "Value": v,
                "PropagateAtLaunch": True,
            }
            for k, v in all_tags.items()
        ],
    }
    if "MixedInstancesPolicy" in fields:
        del item["LaunchTemplate"]  # AWS describes one or the other
    item.update(fields)
    return item


def translate(
    item: dict[str, Any],
    catalog: Catalog,
    *,
    template: dict[str, Any] | None = None,
    launch_configurations: dict[str, dict[str, Any]] | None = None,
    subnets: dict[str, str] = SUBNETS,
) -> PoolSpec | PoolProblem:
    data = template if template is not None else {"InstanceType": "m5.large", "ImageId": "ami-1"}
    return pool_from_asg(
        item,
        templates={ref: data for ref in template_refs(item)},
        launch_configurations=launch_configurations or {},
        subnet_zones=subnets,
        known_types=catalog,
    )


def pool_of(item: dict[str, Any], catalog: Catalog, **kw: Any) -> PoolSpec:
    result = translate(item, catalog, **kw)
    assert isinstance(result, PoolSpec), result
    return result


def problem_of(item: dict[str, Any], catalog: Catalog, **kw: Any) -> str:
    result = translate(item, catalog, **kw)
    assert isinstance(result, PoolProblem), result
    assert result.pool == item["AutoScalingGroupName"]
    return result.reason


def mixed(overrides: list[dict[str, Any]], **distribution: int) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": LT, "Version": "$Default"},
            "Overrides": overrides,
        }
    }
    if distribution:
        policy["InstancesDistribution"] = distribution
    return policy


# --- discovery ------------------------------------------------------------------------------


def test_a_group_needs_both_discovery_tags():
    assert is_discoverable(group(), CLUSTER)
    assert not is_discoverable(group(), "other-cluster")
    only_enabled = group()
    only_enabled["Tags"] = [t for t in only_enabled["Tags"] if t["Key"] == CA + "enabled"]
    assert not is_discoverable(only_enabled, CLUSTER)


def test_a_template_without_a_version_means_its_default_version():
    item = group(LaunchTemplate={"LaunchTemplateName": "nodes"})
    assert template_refs(item) == [TemplateRef("nodes", "$Default", by_name=True)]
    assert TemplateRef("nodes", "$Default", by_name=True).request() == {
        "LaunchTemplateName": "nodes",
        "Versions": ["$Default"],
    }
    assert template_refs(group()) == [TemplateRef(LT, "$Latest")]


# --- the pool -------------------------------------------------------------------------------


def test_an_on_demand_launch_template_group_becomes_a_pool_of_its_type_sizes_and_zones(catalog):
    pool = pool_of(group(MinSize=1, MaxSize=7, DesiredCapacity=3), catalog)
    assert pool.name == "cpu-m5"
    assert pool.instance_types == ("m5.large",)
    assert pool.capacity_type == ON_DEMAND
    assert pool.zones == ("us-east-1a", "us-east-1b")
    assert (pool.min_size, pool.max_size, pool.current_size) == (1, 7, 3)
    assert pool.label_map == {LABEL_POOL: "cpu-m5"}
    assert pool.taints == ()
    assert pool.allocatable is None
    assert pool.idle_timeout_s is None
    assert not pool.choose_zone  # the ASG picks the zone, not scaler


def test_zones_come_from_the_subnets_and_fall_back_to_availability_zones(catalog):
    one_subnet = group(VPCZoneIdentifier="subnet-b", AvailabilityZones=["us-east-1b"])
    assert pool_of(one_subnet, catalog).zones == ("us-east-1b",)
    unknown_subnet = group(VPCZoneIdentifier="subnet-gone", AvailabilityZones=["us-east-1c"])
    assert pool_of(unknown_subnet, catalog).zones == ("us-east-1c",)


def test_a_launch_template_asking_for_spot_makes_a_spot_pool(catalog):
    template = {"InstanceType": "m5.large", "InstanceMarketOptions": {"MarketType": "spot"}}
    assert pool_of(group(), catalog, template=template).capacity_type == SPOT


def test_a_launch_configuration_gives_the_type_and_a_spot_price_means_spot(catalog):
    item = group(LaunchConfigurationName="lc-1")
    del item["LaunchTemplate"]
    on_demand = {"lc-1": {"LaunchConfigurationName": "lc-1", "InstanceType": "c5.large"}}
    pool = pool_of(item, catalog, launch_configurations=on_demand)
    assert (pool.instance_types, pool.capacity_type) == (("c5.large",), ON_DEMAND)
    spot = {"lc-1": {**on_demand["lc-1"], "SpotPrice": "0.05"}}
    assert pool_of(item, catalog, launch_configurations=spot).capacity_type == SPOT
    assert "launch configuration lc-1 could not be read" in problem_of(item, catalog)


def test_a_mixed_instances_policy_offers_every_override_type_not_only_the_first(catalog):
    overrides = [
        {"InstanceType": "m5.large"},
        {"InstanceType": "m5a.large", "WeightedCapacity": "1"},
    ]
    item = group(MixedInstancesPolicy=mixed(overrides))
    assert pool_of(item, catalog).instance_types == ("m5.large", "m5a.large")
    # The types are in the overrides; the template is still read, for its root volume, and
    # a template that cannot be read does not disable the group.
    assert template_refs(item) == [TemplateRef(LT, "$Default")]
    unread = pool_from_asg(
        item, templates={}, launch_configurations={}, subnet_zones=SUBNETS, known_types=catalog
    )
    assert isinstance(unread, PoolSpec) and unread.ephemeral_storage_mib == 20 * 1024.0


def _root(size_gib: int, device: str = "/dev/xvda") -> dict[str, Any]:
    return {"DeviceName": device, "Ebs": {"VolumeSize": size_gib, "VolumeType": "gp3"}}


@pytest.mark.parametrize(
    ("mappings", "mib"),
    [
        ([_root(200)], 200 * 1024.0),
        ([_root(100, "/dev/sda1")], 100 * 1024.0),
        ([_root(500, "/dev/xvdb"), _root(80)], 80 * 1024.0),  # the root device, not the largest
        ([_root(300, "/dev/xvdf")], 300 * 1024.0),  # the only volume is the root
        ([_root(50, "/dev/xvdb"), _root(60, "/dev/xvdc")], 20 * 1024.0),  # no root named
        ([{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-1"}}], 20 * 1024.0),
    ],
)
def test_the_root_volume_of_the_launch_template_is_the_nodes_ephemeral_storage(
    catalog, mappings, mib
):
    template = {"InstanceType": "m5.large", "BlockDeviceMappings": mappings}
    assert pool_of(group(), catalog, template=template).ephemeral_storage_mib == mib


def test_the_ephemeral_storage_tag_overrides_the_launch_template(catalog):
    tags = {TEMPLATE + "resources/ephemeral-storage": "40Gi"}
    template = {"InstanceType": "m5.large", "BlockDeviceMappings": [_root(200)]}
    assert pool_of(group(tags=tags), catalog, template=template).ephemeral_storage_mib == 40960.0


def test_a_launch_configurations_root_volume_is_read_too(catalog):
    item = group(LaunchConfigurationName="lc-1")
    del item["LaunchTemplate"]
    lc = {"InstanceType": "m5.large", "BlockDeviceMappings": [_root(150)]}
    pool = pool_of(item, catalog, launch_configurations={"lc-1": lc})
    assert pool.ephemeral_storage_mib == 150 * 1024.0


def test_an_eks_managed_node_group_labels_its_nodes_with_its_name(catalog):
    pool = pool_of(group(tags={"eks:nodegroup-name": "workers"}), catalog)
    assert pool.label_map["eks.amazonaws.com/nodegroup"] == "workers"
    # ... and with its capacity type, which a self-managed group's nodes do not carry.
    assert pool.label_map["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
    self_managed = pool_of(group(), catalog).label_map
    assert "eks.amazonaws.com/nodegroup" not in self_managed
    assert "eks.amazonaws.com/capacityType" not in self_managed


@pytest.mark.parametrize(
    ("distribution", "capacity_type"),
    [
        ({"OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": 0}, SPOT),
        ({"OnDemandPercentageAboveBaseCapacity": 0}, SPOT),  # base defaults to 0
        ({"OnDemandBaseCapacity": 1, "OnDemandPercentageAboveBaseCapacity": 0}, ON_DEMAND),
        ({"OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": 50}, ON_DEMAND),
        ({}, ON_DEMAND),  # AWS default: 100% on-demand
    ],
)
def test_a_mixed_pool_is_spot_only_with_no_on_demand_share_at_all(
    catalog, distribution, capacity_type
):
    item = group(MixedInstancesPolicy=mixed([{"InstanceType": "m5.large"}], **distribution))
    assert pool_of(item, catalog).capacity_type == capacity_type


@pytest.mark.parametrize(
    ("distribution", "desired", "share"),
    [
        ({"OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": 50}, 0, 0.5),
        ({"OnDemandBaseCapacity": 2, "OnDemandPercentageAboveBaseCapacity": 0}, 1, 0.0),
        ({"OnDemandBaseCapacity": 2, "OnDemandPercentageAboveBaseCapacity": 0}, 2, 1.0),
        ({}, 5, 0.0),  # AWS default: all on-demand
    ],
)
def test_a_partly_on_demand_group_says_how_much_of_its_next_node_is_spot(
    catalog, distribution, desired, share
):
    item = group(MixedInstancesPolicy=mixed([{"InstanceType": "m5.large"}], **distribution),
                 DesiredCapacity=desired)
    pool = pool_of(item, catalog)
    assert (pool.capacity_type, pool.spot_share) == (ON_DEMAND, share)


def test_capacity_rebalance_is_read_from_the_group(catalog):
    assert pool_of(group(CapacityRebalance=True), catalog).capacity_rebalance
    assert not pool_of(group(), catalog).capacity_rebalance


def test_a_mixed_policy_without_overrides_launches_its_templates_type(catalog):
    item = group(MixedInstancesPolicy=mixed([]))
    assert template_refs(item) == [TemplateRef(LT, "$Default")]
    assert pool_of(item, catalog, template={"InstanceType": "c5.large"}).instance_types == (
        "c5.large",
    )


def test_attribute_based_type_selection_disables_the_pool(catalog):
    req = {"VCpuCount": {"Min": 2}, "MemoryMiB": {"Min": 4096}}
    item = group(MixedInstancesPolicy=mixed([{"InstanceRequirements": req}]))
    assert "InstanceRequirements" in problem_of(item, catalog)


def test_an_unreadable_launch_template_disables_the_pool(catalog):
    item = group()
    result = pool_from_asg(
        item, templates={}, launch_configurations={}, subnet_zones=SUBNETS, known_types=catalog
    )
    assert isinstance(result, PoolProblem)
    assert f"launch template {LT} version $Latest could not be read" in result.reason


def test_an_instance_type_nobody_knows_disables_the_pool(catalog):
    reason = problem_of(group("odd"), catalog, template={"InstanceType": "zz.huge"})
    assert "ASG odd" in reason and "zz.huge" in reason


def test_a_group_name_that_is_no_label_value_disables_the_pool(catalog):
    reason = problem_of(group("gpu pool (a100)"), catalog)
    assert "not a valid Kubernetes label value" in reason


def test_a_group_being_deleted_is_not_offered(catalog):
    assert "Delete in progress" in problem_of(group(Status="Delete in progress"), catalog)


# --- node-template tags ---------------------------------------------------------------------


def test_node_template_tags_give_labels_taints_resources_and_idle_timeout(catalog):
    tags = {
        TEMPLATE + "label/nvidia.com/gpu": "true",
        TEMPLATE + "label/team": "science",
        TEMPLATE + "taint/nvidia.com/gpu": "true:NoSchedule",
        TEMPLATE + "taint/dedicated": ":NoExecute",
        TEMPLATE + "resources/nvidia.com/gpu": "4",
        TEMPLATE + "resources/ephemeral-storage": "100Gi",
        TEMPLATE + "resources/hugepages-2Mi": "1Gi",  # not scheduled by scaler: ignored
        TEMPLATE + "autoscaling-options/scaledownunneededtime": "5m0s",
        TEMPLATE + "autoscaling-options/scaledownutilizationthreshold": "0.5",  # CA's, ignored
    }
    pool = pool_of(group("gpu-g5", tags=tags), catalog, template={"InstanceType": "g5.12xlarge"})
    assert pool.label_map == {"nvidia.com/gpu": "true", "team": "science", LABEL_POOL: "gpu-g5"}
    assert set(pool.taints) == {
        Taint("nvidia.com/gpu", "true", NO_SCHEDULE),
        Taint("dedicated", "", "NoExecute"),
    }
    assert pool.allocatable == Resources(gpu=4.0)
    assert pool.ephemeral_storage_mib == 100 * 1024.0
    assert pool.idle_timeout_s == 300.0


def test_a_gpu_group_gets_no_gpu_taint_its_tags_do_not_declare(catalog):
    pool = pool_of(group("gpu-bare"), catalog, template={"InstanceType": "g4dn.xlarge"})
    assert pool.taints == ()


def test_resource_tags_override_the_derived_allocatable_resource_by_resource(catalog):
    tags = {TEMPLATE + "resources/nvidia.com/gpu": "2", TEMPLATE + "resources/pods": "110"}
    pool = pool_of(group("gpu", tags=tags), catalog, template={"InstanceType": "g5.12xlarge"})
    offerings, problems = build_offerings([pool], catalog)
    assert problems == []
    alloc = Resources.from_array(offerings.allocatable[0])
    assert (alloc.gpu, alloc.pods) == (2.0, 110.0)
    assert alloc.memory_mib > 180 * 1024  # derived from g5.12xlarge, not overridden


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        (TEMPLATE + "resources/memory", "lots", "not a Kubernetes quantity"),
        (TEMPLATE + "resources/nvidia.com/gpu", "0.5", "not a whole number"),
        (TEMPLATE + "taint/nvidia.com/gpu", "true:NoSchedul", "taint effect 'NoSchedul'"),
        (TEMPLATE + "taint/dedicated", "science", "expected <value>:<effect>"),
        (TEMPLATE + "label/team", "data science", "not a valid label value"),
        (TEMPLATE + "autoscaling-options/scaledownunneededtime", "10 minutes", "not a Go duration"),
        (TEMPLATE + "autoscaling-options/scaledownunneededtime", "-5m", "negative"),
    ],
)
def test_a_broken_tag_disables_that_pool_naming_the_asg_the_tag_and_the_value(
    catalog, key, value, why
):
    reason = problem_of(group("broken", tags={key: value}), catalog)
    assert reason.startswith("ASG broken: ")
    assert key in reason and repr(value) in reason and why in reason
    assert pool_of(group("fine"), catalog).name == "fine"  # the others are unaffected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("90s", 90.0),
        ("5m0s", 300.0),
        ("0", 0.0),
        ("1.5h", 5400.0),
        ("300ms", 0.3),
        ("2h0m0s", 7200.0),
        ("+1m", 60.0),
    ],
)
def test_go_durations_parse_as_time_parse_duration_does(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "5 m", "1d", "m", "1h 30m", "5m0"])
def test_what_go_refuses_is_no_duration(text):
    with pytest.raises(ValueError, match="not a Go duration"):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("distribution", "expected"),
    [
        ({}, ("lowest-price", 2)),  # AWS's defaults
        ({"SpotAllocationStrategy": "price-capacity-optimized"}, ("price-capacity-optimized", 2)),
        ({"SpotAllocationStrategy": "lowest-price", "SpotInstancePools": 4}, ("lowest-price", 4)),
    ],
)
def test_the_spot_allocation_strategy_is_read_from_the_mixed_policy(catalog, distribution,
                                                                     expected):
    item = group(MixedInstancesPolicy=mixed([{"InstanceType": "m5.large"}], **distribution))
    pool = pool_of(item, catalog)
    assert (pool.spot_allocation_strategy, pool.spot_instance_pools) == expected


def test_a_group_without_a_mixed_policy_has_no_spot_allocation_strategy(catalog):
    assert pool_of(group(), catalog).spot_allocation_strategy is None


def test_an_unknown_spot_allocation_strategy_disables_the_pool_naming_the_field(catalog):
    policy = mixed([{"InstanceType": "m5.large"}])
    policy["InstancesDistribution"] = {"SpotAllocationStrategy": "diversified"}
    item = group(MixedInstancesPolicy=policy)
    reason = problem_of(item, catalog)
    assert "SpotAllocationStrategy 'diversified'" in reason and "cpu-m5" in reason
