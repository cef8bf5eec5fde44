"""One rule for ``k8s.io/cluster-autoscaler/enabled``: the value discovery accepts is the value
the shipped IAM policy allows writes under, and a group with any other value is reported as
disabled (with the tag and its value), never chosen and never written to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scaler.adapters.aws.fleet import AwsFleet
from scaler.adapters.aws.tags import (
    ENABLED_VALUE,
    TAG_ENABLED,
    cluster_tag,
    enabled_problem,
    is_writable,
)
from scaler.core.catalog import Catalog
from scaler.ports import NotFound
from tests.fixtures.aws import CA_TAG, Group, tagged_groups

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "iam-policy.json"
WRITES = {
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
    "autoscaling:CompleteLifecycleAction",
}
CLUSTER = "tags"


def _write_conditions() -> list[dict[str, Any]]:
    policy = json.loads(POLICY.read_text())
    out = []
    for statement in policy["Statement"]:
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        if WRITES & set(actions):
            out.append(statement["Condition"])
    return out


def _iam_allows(condition: dict[str, Any], tags: dict[str, str], cluster: str) -> bool:
    """IAM's evaluation of the policy's two condition operators on a group's tags (the
    ``${ClusterName}`` placeholder filled in as deploy/README tells)."""
    for key, want in condition.get("StringEquals", {}).items():
        tag = key.removeprefix("aws:ResourceTag/").replace("${ClusterName}", cluster)
        if tags.get(tag) != want:  # StringEquals: exact and case-sensitive
            return False
    for key, null in condition.get("Null", {}).items():
        tag = key.removeprefix("aws:ResourceTag/").replace("${ClusterName}", cluster)
        if (tag not in tags) != (null == "true"):
            return False
    return True


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "yes", "1", "", "owned", " true"])
def test_discovery_uses_a_group_exactly_when_the_iam_policy_allows_writing_to_it(value):
    (condition,) = _write_conditions()
    assert condition["StringEquals"]["aws:ResourceTag/" + TAG_ENABLED] == ENABLED_VALUE
    tags = {TAG_ENABLED: value, cluster_tag(CLUSTER): "owned"}
    group = {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    assert is_writable(group, CLUSTER) == _iam_allows(condition, tags, CLUSTER)
    assert (enabled_problem(tags) is None) == (value == "true")


def test_the_cluster_tag_condition_matches_discovery_too():
    (condition,) = _write_conditions()
    without = {TAG_ENABLED: "true"}
    group = {"Tags": [{"Key": TAG_ENABLED, "Value": "true"}]}
    assert not is_writable(group, CLUSTER) and not _iam_allows(condition, without, CLUSTER)


@pytest.fixture
def account(aws: str) -> Any:
    return tagged_groups(aws, CLUSTER, [
        Group("on", "m5.large"),
        Group("yes", "m5.large", tags={CA_TAG + "enabled": "yes"}),
        Group("capital", "m5.large", tags={CA_TAG + "enabled": "True"}),
    ])


@pytest.mark.anyio
async def test_a_group_enabled_with_another_value_is_disabled_with_a_reason_and_never_written(
    account: Any, catalog: Catalog
):
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        discovery = await fleet.discover()
        assert [p.name for p in discovery.pools] == ["on"]
        reasons = {p.pool: p.reason for p in discovery.problems}
        assert set(reasons) == {"yes", "capital"}
        assert f"{TAG_ENABLED}='yes'" in reasons["yes"] and "exactly 'true'" in reasons["yes"]
        assert f"{TAG_ENABLED}='True'" in reasons["capital"]
        with pytest.raises(NotFound):
            await fleet.set_desired("yes", 3)
        await fleet.set_desired("on", 1)
    sizes = {
        g["AutoScalingGroupName"]: g["DesiredCapacity"]
        for g in account.describe_auto_scaling_groups()["AutoScalingGroups"]
    }
    assert sizes == {"on": 1, "yes": 0, "capital": 0}
