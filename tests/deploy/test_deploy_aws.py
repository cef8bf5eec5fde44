"""deploy/: the IAM policy (least privilege, writes only on this cluster's tagged ASGs), the
CloudFormation stack of the interruption queue, and permissions.json that both must match."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.deploy.support import DEPLOY, REPO, load_cloudformation, load_json, permissions

ENABLED_TAG = "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled"
CLUSTER_TAG = "aws:ResourceTag/k8s.io/cluster-autoscaler/${ClusterName}"
READ_PREFIXES = ("Describe", "Get", "List", "Receive")
EVENT_DETAIL_TYPES = {
    ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    ("aws.ec2", "EC2 Instance State-change Notification"),
    ("aws.health", "AWS Health Event"),
    ("aws.autoscaling", "EC2 Instance-terminate Lifecycle Action"),
}


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    return load_json(DEPLOY / "iam-policy.json")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_cloudformation()


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _is_write(action: str) -> bool:
    return not action.split(":", 1)[1].startswith(READ_PREFIXES)


# --- IAM policy -----------------------------------------------------------------------------


def test_iam_policy_is_plain_allow_statements(policy: dict[str, Any]) -> None:
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in _actions(statement):
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z]+", action), action  # no wildcards


def test_iam_policy_grants_exactly_permissions_json(policy: dict[str, Any]) -> None:
    granted = [a for s in policy["Statement"] for a in _actions(s)]
    declared = permissions()["aws"]
    # SQS GetQueueAttributes appears twice (both queues); nothing else repeats.
    assert set(granted) == set(declared)
    assert declared == sorted(declared)


def test_every_asg_write_is_limited_to_this_clusters_tagged_groups(
    policy: dict[str, Any],
) -> None:
    conditioned = set(permissions()["aws_tag_conditioned"])
    for statement in policy["Statement"]:
        for action in _actions(statement):
            if action.startswith(("autoscaling:", "ec2:")) and _is_write(action):
                assert action in conditioned, f"{action} is a write without the tag condition"
            if action in conditioned:
                condition = statement.get("Condition", {})
                assert condition["StringEquals"][ENABLED_TAG] == "true", action
                # Present, whatever its value (eksctl writes "owned", others "true").
                assert condition["Null"][CLUSTER_TAG] == "false", action
    assert conditioned == {
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
        "autoscaling:CompleteLifecycleAction",
    }


def test_reads_on_star_and_sqs_only_on_the_queues(policy: dict[str, Any]) -> None:
    for statement in policy["Statement"]:
        actions = _actions(statement)
        if any(a.startswith("sqs:") for a in actions):
            assert all(a.startswith("sqs:") for a in actions)
            assert statement["Resource"] in ("${QueueArn}", "${QuarantineQueueArn}")
        elif not statement.get("Condition"):
            assert all(not _is_write(a) for a in actions), statement["Sid"]
            assert statement["Resource"] == "*"
    sends = [s for s in policy["Statement"] if "sqs:SendMessage" in _actions(s)]
    assert [s["Resource"] for s in sends] == ["${QuarantineQueueArn}"]


def test_iam_placeholders_are_documented(policy: dict[str, Any]) -> None:
    text = (DEPLOY / "iam-policy.json").read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders == {"ClusterName", "QueueArn", "QuarantineQueueArn"}
    guide = (REPO / "docs" / "deploy.md").read_text()
    for name in placeholders:
        assert f"${{{name}}}" in guide, f"docs/deploy.md does not explain ${{{name}}}"


def test_permissions_json_shape() -> None:
    data = permissions()
    assert set(data["aws_tag_conditioned"]) <= set(data["aws"])
    for entry in data["kubernetes"]:
        assert {"apiGroup", "resource", "verbs", "scope"} <= entry.keys()
        assert entry["scope"] in ("cluster", "namespace")
        assert entry["verbs"] and all(v.islower() for v in entry["verbs"])


# --- CloudFormation -------------------------------------------------------------------------


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_template_has_the_five_eventbridge_rules_into_the_queue(template: dict[str, Any]) -> None:
    rules = _resources(template, "AWS::Events::Rule")
    patterns = set()
    for rule in rules.values():
        pattern = rule["Properties"]["EventPattern"]
        (source,) = pattern["source"]
        (detail_type,) = pattern["detail-type"]
        patterns.add((source, detail_type))
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert patterns == EVENT_DETAIL_TYPES
    detail = {
        r["Properties"]["EventPattern"]["detail-type"][0]: r["Properties"]["EventPattern"].get(
            "detail"
        )
        for r in rules.values()
    }
    # The filters docs/interruptions.md asks for: EC2 scheduled changes only; state changes
    # that mean the node is going (pending and running would only be counted).
    assert detail["AWS Health Event"] == {
        "service": ["EC2"],
        "eventTypeCategory": ["scheduledChange"],
    }
    assert detail["EC2 Instance State-change Notification"] == {
        "state": ["stopping", "stopped", "shutting-down", "terminated"]
    }


def test_queue_policy_lets_only_these_rules_send(template: dict[str, Any]) -> None:
    rules = _resources(template, "AWS::Events::Rule")
    policy = template["Resources"]["QueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "Queue"}]
    allow = next(s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    sources = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(s["Fn::GetAtt"][0] for s in sources) == sorted(rules)


def test_queues_are_encrypted_and_redrive_to_quarantine(template: dict[str, Any]) -> None:
    queues = _resources(template, "AWS::SQS::Queue")
    assert set(queues) == {"Queue", "QuarantineQueue"}
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    redrive = queues["Queue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["QuarantineQueue", "Arn"]}
    # Redrive is the backstop: SQS gives up later than scaler does (after 5 receives).
    parameters = template["Parameters"]
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert parameters["MaxReceiveCount"]["MinValue"] > 5
    # Kept at least a lifecycle hook's default heartbeat (3600 s).
    assert parameters["MessageRetentionSeconds"]["Default"] >= 3600


def test_outputs_give_what_the_config_and_policy_need(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["QueueUrl"]["Value"] == {"Ref": "Queue"}
    assert outputs["QueueArn"]["Value"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert outputs["QuarantineQueueArn"]["Value"] == {"Fn::GetAtt": ["QuarantineQueue", "Arn"]}
    assert outputs["QuarantineQueueUrl"]["Value"] == {"Ref": "QuarantineQueue"}


@pytest.mark.slow
def test_cfn_lint_finds_nothing() -> None:
    cfn_lint = shutil.which("cfn-lint")
    if cfn_lint is None:
        pytest.skip("cfn-lint not installed (pip install cfn-lint)")
    result = subprocess.run(
        [cfn_lint, str(DEPLOY / "cloudformation.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
