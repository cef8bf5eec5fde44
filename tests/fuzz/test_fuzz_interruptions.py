"""EventBridge messages (scaler.core.interruptions.parse_event, read by
scaler.adapters.aws.queue): any body is a notice or a MessageError in one line."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from scaler.core.interruptions import MessageError, parse_event
from tests.fuzz.strategies import finite_numbers, json_values, one_line, times

DETAIL_TYPES = [
    "EC2 Spot Instance Interruption Warning",
    "EC2 Instance Rebalance Recommendation",
    "EC2 Instance State-change Notification",
    "AWS Health Event",
    "EC2 Instance-terminate Lifecycle Action",
    "Something Else",
]
stamps = st.sampled_from(
    ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00.5+02:00", "9999-12-31T23:59:59Z",
     "0001-01-01T00:00:00Z", "2024-02-30T10:00:00Z", "Wed, 01 May 2024 10:00:00 GMT", ""]
) | st.text(max_size=25)  # fmt: skip
events = st.fixed_dictionaries(
    {
        "version": st.just("0"),
        "id": st.text(max_size=8),
        "detail-type": st.sampled_from(DETAIL_TYPES),
        "source": st.sampled_from(["aws.ec2", "aws.health", "aws.autoscaling", "x"]),
        "time": stamps,
        "resources": st.lists(st.text(max_size=30), max_size=2) | json_values,
        "detail": st.fixed_dictionaries({}, optional={
            "instance-id": st.sampled_from(["i-0123456789abcdef0", "i-01234567", "i-x"]),
            "instance-action": st.sampled_from(["terminate", "stop", "hibernate", "x"]),
            "state": st.sampled_from(["shutting-down", "running", "x"]),
            "EC2InstanceId": st.sampled_from(["i-0123456789abcdef0", "x"]),
            "LifecycleTransition": st.just("autoscaling:EC2_INSTANCE_TERMINATING"),
            "eventTypeCode": st.sampled_from(["AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED", "x"]),
            "startTime": stamps, "endTime": stamps,
            "affectedEntities": json_values,
        }) | json_values,
    }
)  # fmt: skip


@given(events | json_values | times)
def test_any_event_is_a_notice_or_a_one_line_message_error(raw):
    body = json.dumps(raw)  # NaN and Infinity too, as a careless sender would write them
    try:
        notice = parse_event(body)
    except MessageError as e:
        assert one_line(e)
        return
    assert finite_numbers(notice)


@given(st.binary(max_size=100))
def test_any_bytes_are_a_notice_or_a_message_error(body):
    try:
        parse_event(body)
    except MessageError as e:
        assert one_line(e)
