"""Interruption notices: strict parsing of EventBridge messages, deadlines, dedup."""

from __future__ import annotations

import copy
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler.core.interruptions import (
    RETIREMENT_SCHEDULED,
    Dedup,
    MalformedMessage,
    MessageError,
    RebalanceRecommendation,
    Received,
    ScheduledChange,
    SpotInterruption,
    StateChange,
    TerminateLifecycleAction,
    TestNotification,
    UnknownMessage,
    drain_deadline,
    eviction_budget_s,
    parse_event,
)

EVENTS = Path(__file__).resolve().parent.parent / "fixtures" / "eventbridge"
GOOD = {
    "spot": "spot-interruption-warning.json",
    "rebalance": "rebalance-recommendation.json",
    "state": "state-change-shutting-down.json",
    "health": "health-scheduled-change.json",
    "lifecycle": "asg-terminate-lifecycle-action.json",
}


def body(name: str) -> str:
    return (EVENTS / name).read_text()


def event(kind: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(body(GOOD[kind]))
    return loaded


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


DELETE = object()


def keys_of(path: str) -> list[str | int]:
    """``detail.affectedEntities[1].entityValue`` -> ``["detail", "affectedEntities", 1, ...]``."""
    return [int(k[1:-1]) if k.startswith("[") else k for k in re.findall(r"[^.\[]+|\[\d+\]", path)]


def replaced(kind: str, keys: list[str | int], value: object) -> str:
    """The fixture with the field at ``keys`` replaced by ``value``, or removed (DELETE)."""
    doc = event(kind)
    node: Any = doc
    for key in keys[:-1]:
        node = node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return json.dumps(doc)


def mutated(kind: str, path: str, value: object) -> str:
    return replaced(kind, keys_of(path), value)


# --- each kind from its fixture ---------------------------------------------------------------


def test_spot_warning_gives_the_instance_two_minutes_from_the_event_time():
    notice = parse_event(body(GOOD["spot"]))
    at = ts("2026-07-14T09:21:37")
    assert notice == SpotInterruption(
        instance_id="i-0b2f3c4d5e6f70812",
        action="terminate",
        deadline_s=at + 120.0,
        event_id="1e5527d7-bb36-4607-3370-4164db56a40e",
        at_s=at,
    )
    assert notice.instance_ids == ("i-0b2f3c4d5e6f70812",)


def test_spot_hibernation_has_no_two_minute_warning():
    notice = parse_event(mutated("spot", "detail.instance-action", "hibernate"))
    assert isinstance(notice, SpotInterruption)
    assert notice.action == "hibernate"
    assert notice.deadline_s == notice.at_s


def test_bytes_bodies_parse_like_text():
    assert parse_event(body(GOOD["spot"]).encode()) == parse_event(body(GOOD["spot"]))


def test_rebalance_recommendation_names_the_instance():
    assert parse_event(body(GOOD["rebalance"])) == RebalanceRecommendation(
        instance_id="i-0b2f3c4d5e6f70812",
        at_s=ts("2026-07-14T08:58:02"),
        event_id="5c1fd8a2-9b1e-4d2c-8e57-2f1a0c6b9d43",
    )


def test_state_change_carries_the_new_state():
    assert parse_event(body(GOOD["state"])) == StateChange(
        instance_id="i-0b2f3c4d5e6f70812",
        state="shutting-down",
        at_s=ts("2026-07-14T09:23:38"),
        event_id="7bf73129-1428-4cd3-a780-95db273d1602",
    )


def test_health_scheduled_change_lists_every_affected_instance_and_the_start():
    assert parse_event(body(GOOD["health"])) == ScheduledChange(
        instance_ids=("i-0a1b2c3d4e5f60718", "i-09f8e7d6c5b4a3921"),
        code=RETIREMENT_SCHEDULED,
        start_s=ts("2026-07-28T06:00:00"),
        event_id="7fb65329-1628-4cf3-a740-95fd457b1402",
        at_s=ts("2026-07-14T06:27:57"),
    )


def test_health_start_time_may_also_be_rfc3339():
    notice = parse_event(mutated("health", "detail.startTime", "2026-07-28T06:00:00Z"))
    assert isinstance(notice, ScheduledChange)
    assert notice.start_s == ts("2026-07-28T06:00:00")


def test_terminate_lifecycle_action_keeps_what_complete_lifecycle_action_needs():
    assert parse_event(body(GOOD["lifecycle"])) == TerminateLifecycleAction(
        instance_id="i-0633ac2b0d9769723",
        asg="scaler-m5-large-spot",
        hook="scaler-drain",
        token="0befcbdb-6ecd-498a-9ff7-ae9b54447cd6",
        at_s=ts("2026-07-14T10:19:58"),
        event_id="782d5b4c-0f6f-1fd6-9d62-ecf6aed0a470",
    )


def test_asg_test_notification_is_a_known_no_op():
    notice = parse_event(body("asg-test-notification.json"))
    assert notice == TestNotification(
        asg="scaler-m5-large-spot", event_id="4e6156f4-a9e2-4bda-a7fd-33f2ae528958"
    )
    assert notice.instance_ids == ()
    assert drain_deadline(notice) == math.inf


def test_asg_test_notification_through_eventbridge_is_a_no_op_too():
    text = mutated("lifecycle", "detail.LifecycleTransition", "autoscaling:TEST_NOTIFICATION")
    assert isinstance(parse_event(text), TestNotification)


def test_fractional_seconds_and_offsets_in_the_event_time_are_honoured():
    notice = parse_event(mutated("rebalance", "time", "2026-07-14T10:58:02.500+02:00"))
    assert notice.at_s == ts("2026-07-14T08:58:02") + 0.5  # type: ignore[union-attr]


# --- malformed and unknown ---------------------------------------------------------------------

MALFORMED = [
    # (fixture, path, replacement, field the error must name)
    ("spot", "detail.instance-id", DELETE, "detail.instance-id"),
    ("spot", "detail.instance-id", "i-XYZ", "detail.instance-id"),
    ("spot", "detail.instance-id", "i-0b2f3c4d5e6f7081", "detail.instance-id"),  # 16 hex digits
    ("spot", "detail.instance-id", "i-0B2F3C4D5E6F70812", "detail.instance-id"),
    ("spot", "detail.instance-id", "i-0b2f3c4d5e6f70812\n", "detail.instance-id"),
    ("spot", "detail.instance-id", 12345, "detail.instance-id"),
    ("spot", "detail.instance-action", "reboot", "detail.instance-action"),
    ("spot", "detail.instance-action", None, "detail.instance-action"),
    ("spot", "detail", DELETE, "detail"),
    ("spot", "detail", "i-0b2f3c4d5e6f70812", "detail"),
    ("spot", "time", DELETE, "time"),
    ("spot", "time", "2026-07-14 09:21:37", "time"),
    ("spot", "time", "2026-13-14T09:21:37Z", "time"),
    ("spot", "time", "2026-07-14T09:21:37", "time"),  # no offset: ambiguous
    ("spot", "time", "Tue, 14 Jul 2026 09:21:37 GMT", "time"),  # RFC 1123 only in Health
    ("spot", "time", 1784020897, "time"),
    ("spot", "id", DELETE, "id"),
    ("spot", "id", "", "id"),
    ("spot", "source", "aws.autoscaling", "source"),
    ("spot", "source", DELETE, "source"),
    ("spot", "version", DELETE, "version"),
    ("spot", "version", 0, "version"),
    ("spot", "account", DELETE, "account"),
    ("spot", "region", ["us-east-1"], "region"),
    ("spot", "resources", "arn:aws:ec2", "resources"),
    ("spot", "resources", [1], "resources"),
    ("spot", "detail-type", 7, "detail-type"),
    ("spot", "detail-type", DELETE, "detail-type"),
    ("rebalance", "detail.instance-id", DELETE, "detail.instance-id"),
    ("rebalance", "detail.instance-id", "", "detail.instance-id"),
    ("rebalance", "source", "aws.health", "source"),
    ("state", "detail.state", "rebooting", "detail.state"),
    ("state", "detail.state", DELETE, "detail.state"),
    ("state", "detail.instance-id", "i-abc", "detail.instance-id"),
    ("health", "detail.service", DELETE, "detail.service"),
    ("health", "detail.eventTypeCategory", 3, "detail.eventTypeCategory"),
    ("health", "detail.eventTypeCode", DELETE, "detail.eventTypeCode"),
    ("health", "detail.eventTypeCode", "AWS_RDS_MAINTENANCE_SCHEDULED", "detail.eventTypeCode"),
    ("health", "detail.startTime", DELETE, "detail.startTime"),
    ("health", "detail.startTime", "Tue, 28 Jul 2026 06:00:00 PDT", "detail.startTime"),
    ("health", "detail.startTime", "Tue, 31 Jun 2026 06:00:00 GMT", "detail.startTime"),
    ("health", "detail.startTime", "next Tuesday", "detail.startTime"),
    ("health", "detail.affectedEntities", DELETE, "detail.affectedEntities"),
    ("health", "detail.affectedEntities", [], "detail.affectedEntities"),
    ("health", "detail.affectedEntities", {"entityValue": "i-0a1b2c3d"}, "detail.affectedEntities"),
    ("health", "detail.affectedEntities[1]", "i-09f8e7d6c5b4a3921", "detail.affectedEntities[1]"),
    (
        "health",
        "detail.affectedEntities[0].entityValue",
        "vol-0a1b2c3d4e5f60718",
        "detail.affectedEntities[0].entityValue",
    ),
    (
        "health",
        "detail.affectedEntities[1].entityValue",
        DELETE,
        "detail.affectedEntities[1].entityValue",
    ),
    ("lifecycle", "detail.LifecycleActionToken", DELETE, "detail.LifecycleActionToken"),
    ("lifecycle", "detail.AutoScalingGroupName", "", "detail.AutoScalingGroupName"),
    ("lifecycle", "detail.LifecycleHookName", None, "detail.LifecycleHookName"),
    ("lifecycle", "detail.EC2InstanceId", "i-0633AC2B0D9769723", "detail.EC2InstanceId"),
    (
        "lifecycle",
        "detail.LifecycleTransition",
        "autoscaling:EC2_INSTANCE_LAUNCHING",
        "detail.LifecycleTransition",
    ),
    ("lifecycle", "detail.LifecycleTransition", DELETE, "detail.LifecycleTransition"),
    ("lifecycle", "source", "aws.ec2", "source"),
]


@pytest.mark.parametrize(
    ("kind", "path", "value", "field"),
    MALFORMED,
    ids=[f"{k}:{p}={'<deleted>' if v is DELETE else v!r}" for k, p, v, _ in MALFORMED],
)
def test_malformed_messages_name_the_field(kind, path, value, field):
    with pytest.raises(MalformedMessage) as caught:
        parse_event(mutated(kind, path, value))
    assert caught.value.field == field
    assert caught.value.reason.startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not JSON"),
        ("not json", "not JSON"),
        (b"\xff\xfe\xfa", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('"EC2 Spot Instance Interruption Warning"', "expected a JSON object"),
        ("null", "expected a JSON object"),
        ("[" * 100_000, "not JSON"),
        ("1" * 10_000, "not JSON"),
    ],
)
def test_bodies_that_are_not_a_json_object_are_malformed(text, problem):
    with pytest.raises(MalformedMessage) as caught:
        parse_event(text)
    assert caught.value.field == "body"
    assert problem in caught.value.problem


def test_malformed_fixtures_are_malformed():
    with pytest.raises(MalformedMessage) as caught:
        parse_event(body("malformed-spot-instance-id.json"))
    assert caught.value.field == "detail.instance-id"
    assert "ip-10-0-12-7.ec2.internal" in caught.value.reason
    with pytest.raises(MalformedMessage) as caught:
        parse_event(body("malformed-truncated.json"))
    assert caught.value.field == "body"


def test_unknown_detail_type_is_unknown_not_malformed():
    with pytest.raises(UnknownMessage) as caught:
        parse_event(body("unknown-ec2-launch-lifecycle-action.json"))
    assert caught.value.detail_type == "EC2 Instance-launch Lifecycle Action"
    assert "EC2 Instance-launch Lifecycle Action" in caught.value.reason


@pytest.mark.parametrize(
    ("path", "value"),
    [("detail.service", "RDS"), ("detail.eventTypeCategory", "issue")],
)
def test_health_events_for_other_services_or_categories_are_unknown(path, value):
    with pytest.raises(UnknownMessage) as caught:
        parse_event(mutated("health", path, value))
    assert caught.value.detail_type == "AWS Health Event"
    assert value in caught.value.reason


def test_errors_are_value_errors_with_a_one_line_reason():
    for error in (MalformedMessage("detail.state", "missing"), UnknownMessage("X")):
        assert isinstance(error, MessageError)
        assert isinstance(error, ValueError)
        assert "\n" not in error.reason
    assert MalformedMessage("a", "b").counter == "malformed"
    assert UnknownMessage("X").counter == "unknown"


def test_long_bad_values_are_shortened_in_the_reason():
    with pytest.raises(MalformedMessage) as caught:
        parse_event(mutated("spot", "detail.instance-id", "i-" + "z" * 10_000))
    assert len(caught.value.reason) < 200


# --- arbitrary input never escapes as anything but MessageError ------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def parse_or_error(text: str | bytes) -> object:
    try:
        return parse_event(text)
    except MessageError as e:
        return e


@given(json_values)
def test_arbitrary_json_yields_a_notice_or_a_message_error(value):
    parse_or_error(json.dumps(value))


@given(st.text() | st.binary())
def test_arbitrary_text_and_bytes_yield_a_notice_or_a_message_error(text):
    parse_or_error(text)


def leaf_paths(node: Any, keys: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """The keys to every value in a fixture, containers included."""
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    else:
        return []
    out = []
    for key, child in children:
        out.append((*keys, key))
        out.extend(leaf_paths(child, (*keys, key)))
    return out


def dotted(keys: tuple[str | int, ...]) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fixtures_with_any_field_replaced_yield_a_notice_or_a_message_error(data):
    kind = data.draw(st.sampled_from(sorted(GOOD)))
    keys = data.draw(st.sampled_from(leaf_paths(event(kind))))
    value = data.draw(st.just(DELETE) | json_values)
    result = parse_or_error(replaced(kind, list(keys), value))
    if isinstance(result, MalformedMessage):
        # The error names the replaced field, a field above it or one inside the replacement.
        path = dotted(keys)
        assert path.startswith(result.field) or result.field.startswith(path), result


# --- deadlines -------------------------------------------------------------------------------


def test_spot_evictions_must_finish_the_margin_before_the_reclaim():
    notice = parse_event(body(GOOD["spot"]))
    assert isinstance(notice, SpotInterruption)
    assert drain_deadline(notice) == notice.deadline_s - 15.0
    assert drain_deadline(notice, margin_s=30.0) == notice.at_s + 90.0
    assert eviction_budget_s(notice, now=notice.at_s + 5.0) == 100.0
    assert eviction_budget_s(notice, now=notice.at_s + 500.0) == 0.0


def test_a_margin_longer_than_the_warning_means_as_fast_as_possible():
    notice = parse_event(body(GOOD["spot"]))
    assert drain_deadline(notice, margin_s=300.0) == notice.at_s
    hibernating = parse_event(mutated("spot", "detail.instance-action", "hibernate"))
    assert drain_deadline(hibernating) == hibernating.at_s  # type: ignore[union-attr]


def test_scheduled_changes_drain_before_the_maintenance_starts():
    notice = parse_event(body(GOOD["health"]))
    assert isinstance(notice, ScheduledChange)
    assert drain_deadline(notice) == notice.start_s - 15.0


def test_lifecycle_actions_drain_within_the_hook_timeout():
    notice = parse_event(body(GOOD["lifecycle"]))
    assert isinstance(notice, TerminateLifecycleAction)
    assert drain_deadline(notice) == notice.at_s + 3600.0 - 15.0
    assert drain_deadline(notice, hook_timeout_s=300.0) == notice.at_s + 285.0


def test_an_instance_already_going_is_due_now_and_rebalance_is_never_forced():
    gone = parse_event(body(GOOD["state"]))
    assert drain_deadline(gone) == gone.at_s  # type: ignore[union-attr]
    running = parse_event(mutated("state", "detail.state", "running"))
    assert drain_deadline(running) == math.inf
    assert drain_deadline(parse_event(body(GOOD["rebalance"]))) == math.inf
    assert eviction_budget_s(parse_event(body(GOOD["rebalance"])), now=0.0) == math.inf


# --- dedup -----------------------------------------------------------------------------------


def test_a_duplicate_delivery_is_seen_within_the_window_and_forgotten_after():
    dedup = Dedup(window_s=600.0)
    notice = parse_event(body(GOOD["spot"]))
    assert not dedup.seen(notice, now=1000.0)
    dedup.record(notice, now=1000.0)
    assert dedup.seen(parse_event(body(GOOD["spot"])), now=1001.0)
    assert dedup.seen(notice, now=1599.0)
    assert not dedup.seen(notice, now=1600.0)


def test_a_different_event_with_the_same_news_about_the_instance_is_seen():
    dedup = Dedup()
    dedup.record(parse_event(body(GOOD["spot"])), now=0.0)
    again = parse_event(mutated("spot", "id", "another-event-id"))
    assert dedup.seen(again, now=10.0)


def test_new_news_about_a_known_instance_is_not_seen():
    dedup = Dedup()
    dedup.record(parse_event(body(GOOD["rebalance"])), now=0.0)
    dedup.record(parse_event(mutated("state", "detail.state", "stopping")), now=0.0)
    assert not dedup.seen(parse_event(body(GOOD["spot"])), now=1.0)
    assert not dedup.seen(parse_event(mutated("state", "id", "x")), now=1.0)  # shutting-down


def test_a_scheduled_change_is_seen_only_when_every_instance_is():
    dedup = Dedup()
    dedup.record(parse_event(body(GOOD["health"])), now=0.0)
    same_instances = parse_event(mutated("health", "id", "an-update"))
    assert dedup.seen(same_instances, now=1.0)
    doc = event("health")
    doc["id"] = "another"
    doc["detail"]["affectedEntities"].append({"entityValue": "i-0123456789abcdef0"})
    assert not dedup.seen(parse_event(json.dumps(doc)), now=1.0)


def test_dedup_memory_is_bounded_oldest_first():
    dedup = Dedup(window_s=10_000.0, max_entries=6)
    template = event("rebalance")
    notices = []
    for i in range(5):
        doc = copy.deepcopy(template)
        doc["id"] = f"event-{i}"
        doc["detail"]["instance-id"] = f"i-{i:017x}"
        notices.append(parse_event(json.dumps(doc)))
        dedup.record(notices[-1], now=float(i))
    assert len(dedup) == 6
    assert not dedup.seen(notices[0], now=5.0)
    assert not dedup.seen(notices[1], now=5.0)
    assert dedup.seen(notices[4], now=5.0)


def test_dedup_forgets_expired_entries_when_recording():
    dedup = Dedup(window_s=60.0)
    dedup.record(parse_event(body(GOOD["spot"])), now=0.0)
    dedup.record(parse_event(body(GOOD["rebalance"])), now=100.0)
    assert len(dedup) == 2  # the rebalance's event key and instance key only


def test_dedup_rejects_a_nonsense_configuration():
    with pytest.raises(ValueError):
        Dedup(window_s=0)
    with pytest.raises(ValueError):
        Dedup(max_entries=0)


# --- received --------------------------------------------------------------------------------


def test_received_tells_a_notice_from_an_error():
    notice = parse_event(body(GOOD["spot"]))
    ok = Received(notice, "handle", "message-id", 1)
    assert ok.notice == notice
    assert ok.error is None
    error = UnknownMessage("X")
    bad = Received(error, "handle", "message-id", 2)
    assert bad.notice is None
    assert bad.error is error
