"""The lean botocore loader: what it keeps is enough for every call scaler makes, and no more.

The clients built on it are exercised against moto in test_aws_fleet.py, test_aws_queue.py and
the end-to-end tests (AwsFleet.open and SqsInterruptionFeed.open use ``aws_session()``);
here, the trimming itself, against botocore's own data files.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiobotocore.parsers import AioEC2QueryParser, AioJSONParser
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.parsers import ResponseParserError

from scaler.adapters.aws.lean import (
    _FEED,
    EC2_OPERATIONS,
    ENDPOINT_SERVICES,
    PRICING_OPERATIONS,
    SHAPE_MEMBERS,
    LeanLoader,
    LeanParserFactory,
    aws_session,
    lean,
)
from tests.deploy.test_permissions_match_code import aws_actions_in_code


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_ec2_operations_are_exactly_the_ones_the_code_calls():
    called = {a.split(":", 1)[1] for a in aws_actions_in_code() if a.startswith("ec2:")}
    assert called == EC2_OPERATIONS


def test_ec2_model_keeps_the_operations_and_every_shape_they_reach():
    full = Loader().load_service_model("ec2", "service-2")
    kept = lean("ec2/2016-11-15/service-2", full)

    assert set(kept["operations"]) == EC2_OPERATIONS
    assert len(kept["shapes"]) < len(full["shapes"]) / 10
    assert "documentation" not in _keys(kept)
    assert type(kept) is dict and type(kept["shapes"]) is dict  # no OrderedDicts
    model = ServiceModel(kept, "ec2")
    for name in EC2_OPERATIONS:
        op = model.operation_model(name)
        # Walking every member resolves every shape reference (a missing one raises).
        todo = [s for s in (op.input_shape, op.output_shape) if s is not None]
        seen: set[str] = set()
        while todo:
            shape = todo.pop()
            if shape.name in seen:
                continue
            seen.add(shape.name)
            todo += list(getattr(shape, "members", {}).values())
            todo += [getattr(shape, a) for a in ("member", "key", "value") if hasattr(shape, a)]
    history = model.operation_model("DescribeSpotPriceHistory").output_shape
    assert {"SpotPriceHistory", "NextToken"} <= set(history.members)


def test_other_models_keep_every_operation_without_documentation():
    full = Loader().load_service_model("autoscaling", "service-2")
    kept = lean("autoscaling/2011-01-01/service-2", full)
    assert set(kept["operations"]) == set(full["operations"])
    assert set(kept["shapes"]) == set(full["shapes"])
    assert "documentation" not in _keys(kept)
    # But a described instance: only what fleet.py reads of it.
    instance = kept["shapes"]["Instance"]
    assert set(instance["members"]) == SHAPE_MEMBERS["autoscaling"]["Instance"]
    assert set(instance["required"]) <= set(instance["members"])
    assert len(full["shapes"]["Instance"]["members"]) > 8


def test_every_list_pruned_in_the_answers_scaler_reads_is_of_the_trimmed_shape():
    """The XML of a list named in _PRUNED is cut to the trimmed shape's fields whatever the
    operation: so no answer to an Auto Scaling call the code makes may hold such a list of
    another shape (LaunchInstances, not called, has one: its Instances are not Instances)."""
    from scaler.adapters.aws.lean import _QueryParser

    full = Loader().load_service_model("autoscaling", "service-2")
    model = ServiceModel(lean("autoscaling/2011-01-01/service-2", full), "autoscaling")
    called = {a.split(":", 1)[1] for a in aws_actions_in_code() if a.startswith("autoscaling:")}
    assert "DescribeAutoScalingGroups" in called
    pruned = _QueryParser._PRUNED
    (trimmed,) = SHAPE_MEMBERS["autoscaling"]
    lists_seen = 0
    for name in called:
        todo = [model.operation_model(name).output_shape]
        seen: set[str] = set()
        while todo:
            shape = todo.pop()
            if shape is None or shape.name in seen:
                continue
            seen.add(shape.name)
            for member_name, member in getattr(shape, "members", {}).items():
                if member_name in pruned:
                    assert member.type_name == "list" and member.member.name == trimmed, name
                    lists_seen += 1
                todo.append(member)
            todo += [getattr(shape, a) for a in ("member", "key", "value") if hasattr(shape, a)]
    assert lists_seen >= 1
    launch = model.operation_model("LaunchInstances").output_shape
    assert launch.members["Instances"].member.name != trimmed  # what the test is for


def _groups_answer(instances: int) -> bytes:
    """A DescribeAutoScalingGroups answer as AWS writes it, indented, with ``instances``
    instances in one group."""
    member = (
        "<member><InstanceId>i-{:017x}</InstanceId><InstanceType>m5.large</InstanceType>"
        "<AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>InService"
        "</LifecycleState><HealthStatus>Healthy</HealthStatus><LaunchTemplate>"
        "<LaunchTemplateId>lt-0123</LaunchTemplateId><Version>1</Version></LaunchTemplate>"
        "<ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>\n      "
    )
    body = "".join(member.format(i) for i in range(instances))
    return (
        '<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/'
        '2011-01-01/">\n  <DescribeAutoScalingGroupsResult>\n    <AutoScalingGroups>\n'
        "      <member>\n        <AutoScalingGroupName>ng</AutoScalingGroupName>\n"
        "        <Tags><member><Key>k8s.io/cluster-autoscaler/enabled</Key><Value>true</Value>"
        "<ResourceId>ng</ResourceId><PropagateAtLaunch>true</PropagateAtLaunch></member>"
        "</Tags>\n"
        "        <MinSize>0</MinSize>\n        <MaxSize>9000</MaxSize>\n"
        f"        <DesiredCapacity>{instances}</DesiredCapacity>\n"
        f"        <Instances>\n      {body}</Instances>\n      </member>\n"
        "    </AutoScalingGroups>\n  </DescribeAutoScalingGroupsResult>\n"
        "  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>\n"
        "</DescribeAutoScalingGroupsResponse>\n"
    ).encode()


@pytest.mark.anyio
async def test_xml_answers_fed_in_pieces_parse_as_botocore_parses_them_whole():
    """An answer many pieces long (3,000 instances, ~1 MiB) gives what botocore's own
    parser gives, over the same trimmed model; garbage is botocore's parse error."""
    from aiobotocore.parsers import AioQueryParser

    full = Loader().load_service_model("autoscaling", "service-2")
    model = ServiceModel(lean("autoscaling/2011-01-01/service-2", full), "autoscaling")
    shape = model.operation_model("DescribeAutoScalingGroups").output_shape
    parser = LeanParserFactory().create_parser("query")
    assert type(parser) is not AioQueryParser and isinstance(parser, AioQueryParser)
    body = _groups_answer(3000)
    assert len(body) > 10 * _FEED

    def answer(data: bytes) -> dict[str, Any]:
        return {"body": data, "headers": {}, "status_code": 200, "context": {}}

    got = await parser.parse(answer(body), shape)
    want = await AioQueryParser().parse(answer(body), shape)
    assert got == want
    (group,) = got["AutoScalingGroups"]
    assert len(group["Instances"]) == 3000
    assert group["Instances"][-1] == {"InstanceId": f"i-{2999:017x}", "LifecycleState": "InService"}
    assert group["Tags"][0]["ResourceId"] == "ng"  # a list not pruned keeps every field
    # The tree itself holds the kept fields only (what the parse's peak is made of).
    tree = parser._parse_xml_string_to_dom(body)
    members = [m for e in tree.iter() if e.tag.endswith("}Instances") for m in e]
    assert len(members) == 3000
    assert {c.tag.rpartition("}")[2] for m in members for c in m} == {
        "InstanceId", "LifecycleState"}
    with pytest.raises(ResponseParserError, match="invalid XML"):
        await parser.parse(answer(body[: len(body) // 2]), shape)
    ec2 = LeanParserFactory().create_parser("ec2")
    assert isinstance(ec2, AioEC2QueryParser) and type(ec2) is not AioEC2QueryParser
    assert type(LeanParserFactory().create_parser("json")) is AioJSONParser  # as it was


def test_endpoint_table_keeps_every_partition_and_the_named_services():
    full = Loader().load_data("endpoints")
    kept = lean("endpoints", full)
    assert [p["partition"] for p in kept["partitions"]] == [
        p["partition"] for p in full["partitions"]
    ]
    aws = next(p for p in kept["partitions"] if p["partition"] == "aws")
    assert set(aws["services"]) <= ENDPOINT_SERVICES
    assert {"autoscaling", "ec2", "sqs", "sts"} <= set(aws["services"])
    assert aws["regions"] == next(p for p in full["partitions"] if p["partition"] == "aws")["regions"]


@pytest.mark.anyio
async def test_the_process_session_uses_the_lean_loader(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    session = aws_session()
    assert session is aws_session()
    assert isinstance(session.get_component("data_loader"), LeanLoader)
    assert isinstance(session.get_component("response_parser_factory"), LeanParserFactory)
    async with session.create_client("ec2", region_name="us-east-1") as ec2:
        assert ec2.can_paginate("describe_subnets")
        assert not hasattr(ec2, "run_instances")  # not kept: scaler never calls it
        # The trimmed endpoint table and rule set still resolve the regional endpoint.
        assert ec2.meta.endpoint_url == "https://ec2.us-east-1.amazonaws.com"
    async with session.create_client("sts", region_name="eu-west-1") as sts:
        assert sts.meta.endpoint_url == "https://sts.eu-west-1.amazonaws.com"


def test_the_lean_loader_searches_where_botocore_would(monkeypatch: pytest.MonkeyPatch, tmp_path):
    from botocore.loaders import create_loader

    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    aws_session.cache_clear()
    try:
        loader = aws_session().get_component("data_loader")
        assert loader.search_paths == create_loader(str(tmp_path)).search_paths
        assert loader.search_paths[0] == str(tmp_path)
    finally:
        aws_session.cache_clear()


def test_pricing_model_keeps_exactly_the_operations_the_code_calls():
    called = {a.split(":", 1)[1] for a in aws_actions_in_code() if a.startswith("pricing:")}
    assert called == PRICING_OPERATIONS
    full = Loader().load_service_model("pricing", "service-2")
    kept = lean("pricing/2017-10-15/service-2", full)
    assert set(kept["operations"]) == PRICING_OPERATIONS < set(full["operations"])
    model = ServiceModel(kept, "pricing")
    out = model.operation_model("GetProducts").output_shape
    assert {"PriceList", "NextToken"} <= set(out.members)
    endpoints = lean("endpoints", Loader().load_data("endpoints"))
    aws = next(p for p in endpoints["partitions"] if p["partition"] == "aws")
    assert set(aws["services"]["api.pricing"]["endpoints"]) >= {"us-east-1", "eu-central-1"}
