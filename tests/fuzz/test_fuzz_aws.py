"""ASG tags and groups (scaler.adapters.aws.tags, asg, parse): a node template is read or
refused with a one-line TagError; a group is a pool or a PoolProblem, never an exception."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from scaler.adapters.aws.asg import PoolProblem, pool_from_asg
from scaler.adapters.aws.parse import parse_provider_id
from scaler.adapters.aws.tags import (
    NODE_TEMPLATE,
    TAG_LABEL,
    TAG_OPTIONS,
    TAG_RESOURCES,
    TAG_TAINT,
    TagError,
    parse_go_duration,
    parse_node_template,
)
from scaler.core.model import PoolSpec
from tests.fuzz.strategies import finite_numbers, near_names, one_line, quantities

prefixes = st.sampled_from([TAG_LABEL, TAG_TAINT, TAG_RESOURCES, TAG_OPTIONS, NODE_TEMPLATE, ""])
suffixes = near_names | st.sampled_from(
    ["cpu", "memory", "nvidia.com/gpu", "pods", "ephemeral-storage", "scaledownunneededtime",
     "ScaleDownUnneededTime"]
)  # fmt: skip
values = (
    near_names
    | quantities.map(str)
    | st.sampled_from(["true:NoSchedule", "x:Bogus", ":NoExecute", "10m", "1h30m", "-5m",
                       "1e400h", "9" * 400 + "h", "0", ".s", "1.5h", "5µs"])
)  # fmt: skip
tags = st.dictionaries(st.builds(str.__add__, prefixes, suffixes), values, max_size=5)


@given(tags)
@example({TAG_LABEL + "team": "ml\n"})  # passed as a label value before (Python's "$")
# Found by this test: a duration past Go's int64 nanoseconds came out as idle_timeout_s=inf,
# and a tag key holding a newline split the error in two lines.
@example({TAG_OPTIONS + "scaledownunneededtime": "9" * 400 + "h"})
@example({TAG_TAINT + "gpu\n": "true:NoSchedule"})
def test_node_template_tags_are_read_or_one_line_tag_error(tags):
    try:
        template = parse_node_template(tags)
    except TagError as e:
        assert one_line(e)
        return
    assert finite_numbers(template)


@given(st.text(max_size=12))
def test_go_durations_are_seconds_or_value_error(text):
    try:
        seconds = parse_go_duration(text)
    except ValueError as e:
        assert one_line(e)
        return
    assert seconds == seconds  # not NaN


groups = st.fixed_dictionaries(
    {
        "AutoScalingGroupName": near_names,
        "Tags": st.lists(st.fixed_dictionaries({"Key": st.builds(str.__add__, prefixes, suffixes),
                                                "Value": values}), max_size=4),
        "MinSize": st.integers(0, 3),
        "MaxSize": st.integers(0, 10),
        "DesiredCapacity": st.integers(0, 3),
        "AvailabilityZones": st.lists(st.sampled_from(["us-east-1a", "us-east-1b"]), max_size=2),
        "LaunchConfigurationName": st.just("lc"),
    }
)  # fmt: skip


@given(groups)
@example({"AutoScalingGroupName": "ml\n", "LaunchConfigurationName": "lc"})  # found: 2 lines
def test_a_group_is_a_pool_or_a_pool_problem(group):
    pool = pool_from_asg(
        group,
        templates={},
        launch_configurations={"lc": {"InstanceType": "m5.large"}},
        subnet_zones={},
        known_types={"m5.large"},
    )
    if isinstance(pool, PoolProblem):
        assert "\n" not in pool.reason, pool.reason
        return
    assert isinstance(pool, PoolSpec) and finite_numbers(pool)


@given(st.text(max_size=40) | st.sampled_from(["aws:///us-east-1a/i-0abc\n", "aws:///us-east-1a/i-0abc"]))
def test_provider_ids_are_read_whole_or_not_at_all(text):
    parsed = parse_provider_id(text)
    if parsed is not None:
        zone, instance = parsed
        assert text == f"{text[: text.index('/', 6) + 1]}{zone}/{instance}"
