"""Interruption notices: the messages that say a node is about to go, parsed strictly.

EventBridge rules route EC2, Auto Scaling and AWS Health events to an SQS queue
(docs/interruptions.md); the SQS adapter (:mod:`scaler.adapters.aws.queue`) hands each message
body to :func:`parse_event`, which returns one frozen notice or raises a :class:`MessageError`
naming what is wrong. Anything not exactly the documented shape is an error, never a guess:
a message we misread could cordon the wrong node or miss a reclaim.

Also here, pure policy the controller uses: :func:`drain_deadline` (by when evictions must be
done) and :class:`Dedup` (duplicate deliveries are harmless). Time is always an argument.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, TypeAlias

SPOT_WARNING_S: Final = 120.0
"""EC2 emits the Spot interruption warning two minutes before it reclaims the instance."""
DRAIN_MARGIN_S: Final = 15.0
"""Evictions finish this long before a deadline: room for the kubelet to stop containers."""
LIFECYCLE_HOOK_TIMEOUT_S: Final = 3600.0
"""The ASG lifecycle hook's default HeartbeatTimeout; the event does not carry the real one."""
DEDUP_WINDOW_S: Final = 600.0
"""Longer than a Spot warning's whole life and several SQS visibility timeouts."""
DEDUP_MAX_ENTRIES: Final = 4096
"""Bounds memory if a storm of distinct events arrives; far above any real burst."""

TEST_NOTIFICATION: Final = "autoscaling:TEST_NOTIFICATION"
EC2_INSTANCE_TERMINATING: Final = "autoscaling:EC2_INSTANCE_TERMINATING"

SPOT_ACTIONS: Final = ("terminate", "stop", "hibernate")
INSTANCE_STATES: Final = (
    "pending",
    "running",
    "stopping",
    "stopped",
    "shutting-down",
    "terminated",
)
GONE_STATES: Final = ("stopping", "stopped", "shutting-down", "terminated")
"""States in which the instance no longer runs pods: the node is to be cleaned up."""

# AWS Health eventTypeCode values for EC2 scheduled changes that take an instance away.
RETIREMENT_SCHEDULED: Final = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
PERSISTENT_RETIREMENT_SCHEDULED: Final = "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED"
STOP_SCHEDULED: Final = "AWS_EC2_INSTANCE_STOP_SCHEDULED"
REBOOT_MAINTENANCE_SCHEDULED: Final = "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED"


class MessageError(ValueError):
    """A message we cannot act on. ``reason`` is one line, fit for a log or an SQS attribute."""

    counter: ClassVar[str] = "error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedMessage(MessageError):
    """A message that is not the shape AWS documents: ``field`` names where it goes wrong."""

    counter: ClassVar[str] = "malformed"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class UnknownMessage(MessageError):
    """A well-formed message of a kind scaler does not handle (a rule routes too much)."""

    counter: ClassVar[str] = "unknown"

    def __init__(self, detail_type: str, why: str = "") -> None:
        super().__init__(f"unknown detail-type {detail_type!r}" + (f" ({why})" if why else ""))
        self.detail_type = detail_type


class _OneInstance:
    """A notice about a single instance, ``instance_id``."""

    __slots__ = ()
    instance_id: str

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return (self.instance_id,)


@dataclass(frozen=True, slots=True)
class SpotInterruption(_OneInstance):
    """EC2 will stop, hibernate or terminate a Spot instance at ``deadline_s``."""

    kind: ClassVar[str] = "spot_interruption"
    instance_id: str
    action: str
    deadline_s: float
    event_id: str
    at_s: float


@dataclass(frozen=True, slots=True)
class RebalanceRecommendation(_OneInstance):
    """The instance is at elevated risk of interruption; often none follows (DOMAIN.md)."""

    kind: ClassVar[str] = "rebalance_recommendation"
    instance_id: str
    at_s: float
    event_id: str


@dataclass(frozen=True, slots=True)
class StateChange(_OneInstance):
    """The instance entered ``state`` (one of :data:`INSTANCE_STATES`)."""

    kind: ClassVar[str] = "state_change"
    instance_id: str
    state: str
    at_s: float
    event_id: str


@dataclass(frozen=True, slots=True)
class ScheduledChange:
    """AWS Health: EC2 maintenance (``code``) affecting ``instance_ids`` from ``start_s``."""

    kind: ClassVar[str] = "scheduled_change"
    instance_ids: tuple[str, ...]
    code: str
    start_s: float
    event_id: str
    at_s: float


@dataclass(frozen=True, slots=True)
class TerminateLifecycleAction(_OneInstance):
    """The ASG waits for us before terminating: drain, then CompleteLifecycleAction."""

    kind: ClassVar[str] = "terminate_lifecycle_action"
    instance_id: str
    asg: str
    hook: str
    token: str
    at_s: float
    event_id: str


@dataclass(frozen=True, slots=True)
class TestNotification:
    """What Auto Scaling sends when a lifecycle hook is created. Nothing to do."""

    __test__: ClassVar[bool] = False  # not a pytest test class, whatever its name
    kind: ClassVar[str] = "test_notification"
    asg: str | None
    event_id: str

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return ()


Notice: TypeAlias = (
    SpotInterruption
    | RebalanceRecommendation
    | StateChange
    | ScheduledChange
    | TerminateLifecycleAction
    | TestNotification
)


@dataclass(frozen=True, slots=True)
class Received:
    """One queue message as the controller sees it: a notice, or the error it was.

    Errors have already been moved aside by the feed; only notices are acknowledged, and only
    once the action they call for is recorded.
    """

    parsed: Notice | MessageError
    receipt_handle: str
    message_id: str
    receive_count: int

    @property
    def notice(self) -> Notice | None:
        return None if isinstance(self.parsed, MessageError) else self.parsed

    @property
    def error(self) -> MessageError | None:
        return self.parsed if isinstance(self.parsed, MessageError) else None


# --- parsing --------------------------------------------------------------------------------

_INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# AWS Health's startTime is an RFC 1123 date: "Sat, 05 Jun 2016 15:10:09 GMT".
_RFC1123 = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{1,2}) ([A-Z][a-z]{2}) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)
_MONTHS: Final = tuple("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())  # noqa: SIM905
_HEALTH_CODE = re.compile(r"AWS_EC2_[A-Z0-9_]+")


def _show(value: object) -> str:
    if isinstance(value, dict | list):  # never repr a (possibly deep, large) container
        return f"{'an object' if isinstance(value, dict) else 'a list'} of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _get(obj: dict[str, Any], key: str, where: str, kind: type, what: str) -> Any:
    if key not in obj:
        raise MalformedMessage(where, "missing")
    value = obj[key]
    if not isinstance(value, kind):
        raise MalformedMessage(where, f"expected {what}, got {_show(value)}")
    return value


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    value: str = _get(obj, key, where, str, "a non-empty string")
    if not value:
        raise MalformedMessage(where, "expected a non-empty string, got ''")
    return value


def _obj(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value: dict[str, Any] = _get(obj, key, where, dict, "an object")
    return value


def _choice(obj: dict[str, Any], key: str, where: str, choices: tuple[str, ...]) -> str:
    value = _str(obj, key, where)
    if value not in choices:
        raise MalformedMessage(where, f"expected one of {', '.join(choices)}, got {_show(value)}")
    return value


def _instance_id(obj: dict[str, Any], key: str, where: str) -> str:
    value = _str(obj, key, where)
    if not _INSTANCE_ID.fullmatch(value):
        raise MalformedMessage(
            where, f"expected an instance id like i-0123456789abcdef0, got {_show(value)}"
        )
    return value


def _time(obj: dict[str, Any], key: str, where: str, *, rfc1123: bool = False) -> float:
    """Unix seconds of an RFC 3339 timestamp (or, with ``rfc1123``, an HTTP date too)."""
    value = _str(obj, key, where)
    try:
        if _RFC3339.fullmatch(value):
            return datetime.fromisoformat(value.upper()).timestamp()
        m = _RFC1123.fullmatch(value) if rfc1123 else None
        if m and m[2] in _MONTHS:
            day, month, year = int(m[1]), _MONTHS.index(m[2]) + 1, int(m[3])
            at = datetime(year, month, day, int(m[4]), int(m[5]), int(m[6]), tzinfo=UTC)
            return at.timestamp()
    except (ValueError, OverflowError):
        pass  # a date that matches the pattern but does not exist (month 13, hour 24)
    expected = "an RFC 3339 or RFC 1123 time" if rfc1123 else "an RFC 3339 time"
    raise MalformedMessage(where, f"expected {expected}, got {_show(value)}")


@dataclass(frozen=True, slots=True)
class _Envelope:
    event_id: str
    at_s: float
    detail: dict[str, Any]


def _envelope(raw: dict[str, Any], detail_type: str, source: str) -> _Envelope:
    # The EventBridge envelope every AWS service event shares ("Amazon EventBridge events",
    # EventBridge User Guide): version, id, detail-type, source, account, time, region,
    # resources, detail. AWS Health documents ``resources`` as optional, so it is only typed.
    for key in ("version", "account", "region"):
        _get(raw, key, key, str, "a string")
    if _str(raw, "source", "source") != source:
        raise MalformedMessage(
            "source", f"expected {source} for {detail_type!r}, got {_show(raw['source'])}"
        )
    resources = raw.get("resources", [])
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise MalformedMessage("resources", f"expected a list of strings, got {_show(resources)}")
    return _Envelope(
        _str(raw, "id", "id"), _time(raw, "time", "time"), _obj(raw, "detail", "detail")
    )


def _spot_interruption(env: _Envelope) -> SpotInterruption:
    # EC2 User Guide, "Spot Instance interruption notices":
    # detail = {"instance-id": "i-1234567890abcdef0", "instance-action": "terminate"|"stop"|
    # "hibernate"}. The warning comes two minutes ahead, except hibernation, which "begins
    # immediately": no two-minute warning, so its deadline is the event time itself.
    instance = _instance_id(env.detail, "instance-id", "detail.instance-id")
    action = _choice(env.detail, "instance-action", "detail.instance-action", SPOT_ACTIONS)
    deadline = env.at_s if action == "hibernate" else env.at_s + SPOT_WARNING_S
    return SpotInterruption(instance, action, deadline, env.event_id, env.at_s)


def _rebalance(env: _Envelope) -> RebalanceRecommendation:
    # EC2 User Guide, "EC2 instance rebalance recommendations": detail = {"instance-id": ...}.
    instance = _instance_id(env.detail, "instance-id", "detail.instance-id")
    return RebalanceRecommendation(instance, env.at_s, env.event_id)


def _state_change(env: _Envelope) -> StateChange:
    # EC2 User Guide, "EC2 instance state change events":
    # detail = {"instance-id": "i-abcd1111", "state": "pending"|...|"terminated"}.
    instance = _instance_id(env.detail, "instance-id", "detail.instance-id")
    state = _choice(env.detail, "state", "detail.state", INSTANCE_STATES)
    return StateChange(instance, state, env.at_s, env.event_id)


def _health(env: _Envelope) -> ScheduledChange:
    # AWS Health User Guide, "Reference: AWS Health events Amazon EventBridge schema":
    # detail = {"eventArn", "service": "EC2", "eventTypeCode", "eventTypeCategory":
    # "scheduledChange", "startTime": "Sat, 05 Jun 2016 15:10:09 GMT", "affectedEntities":
    # [{"entityValue": "i-..."}], ...}. Other services and categories (issue,
    # accountNotification) are real Health events that scaler has no use for.
    d = env.detail
    service = _str(d, "service", "detail.service")
    if service != "EC2":
        raise UnknownMessage("AWS Health Event", f"service {service}")
    category = _str(d, "eventTypeCategory", "detail.eventTypeCategory")
    if category != "scheduledChange":
        raise UnknownMessage("AWS Health Event", f"eventTypeCategory {category}")
    code = _str(d, "eventTypeCode", "detail.eventTypeCode")
    if not _HEALTH_CODE.fullmatch(code):
        raise MalformedMessage("detail.eventTypeCode", f"expected AWS_EC2_..., got {_show(code)}")
    start = _time(d, "startTime", "detail.startTime", rfc1123=True)
    entities = _get(d, "affectedEntities", "detail.affectedEntities", list, "a list")
    if not entities:
        raise MalformedMessage("detail.affectedEntities", "expected at least one instance")
    ids: list[str] = []
    for i, entity in enumerate(entities):
        where = f"detail.affectedEntities[{i}]"
        if not isinstance(entity, dict):
            raise MalformedMessage(where, f"expected an object, got {_show(entity)}")
        instance = _instance_id(entity, "entityValue", f"{where}.entityValue")
        if instance not in ids:
            ids.append(instance)
    return ScheduledChange(tuple(ids), code, start, env.event_id, env.at_s)


def _lifecycle(env: _Envelope) -> TerminateLifecycleAction | TestNotification:
    # EC2 Auto Scaling User Guide, "Amazon EC2 Auto Scaling event reference": detail =
    # {"LifecycleActionToken", "AutoScalingGroupName", "LifecycleHookName", "EC2InstanceId",
    # "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}.
    d = env.detail
    if TEST_NOTIFICATION in (d.get("LifecycleTransition"), d.get("Event")):
        asg = d.get("AutoScalingGroupName")
        return TestNotification(asg if isinstance(asg, str) else None, env.event_id)
    token = _str(d, "LifecycleActionToken", "detail.LifecycleActionToken")
    asg = _str(d, "AutoScalingGroupName", "detail.AutoScalingGroupName")
    hook = _str(d, "LifecycleHookName", "detail.LifecycleHookName")
    instance = _instance_id(d, "EC2InstanceId", "detail.EC2InstanceId")
    _choice(d, "LifecycleTransition", "detail.LifecycleTransition", (EC2_INSTANCE_TERMINATING,))
    return TerminateLifecycleAction(instance, asg, hook, token, env.at_s, env.event_id)


_PARSERS: Final[dict[str, tuple[str, Callable[[_Envelope], Notice]]]] = {
    "EC2 Spot Instance Interruption Warning": ("aws.ec2", _spot_interruption),
    "EC2 Instance Rebalance Recommendation": ("aws.ec2", _rebalance),
    "EC2 Instance State-change Notification": ("aws.ec2", _state_change),
    "AWS Health Event": ("aws.health", _health),
    "EC2 Instance-terminate Lifecycle Action": ("aws.autoscaling", _lifecycle),
}


def parse_event(body: str | bytes) -> Notice:
    """The notice an SQS message body carries.

    Raises :class:`MalformedMessage` (naming the field) for anything not the documented shape,
    :class:`UnknownMessage` for a well-formed event of a kind scaler does not handle; never
    anything else.
    """
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, huge ints, deep nesting
        raise MalformedMessage("body", f"not JSON ({type(e).__name__})") from None
    if not isinstance(raw, dict):
        raise MalformedMessage("body", f"expected a JSON object, got {type(raw).__name__}")
    if "detail-type" not in raw and raw.get("Event") == TEST_NOTIFICATION:
        # Sent straight to the hook's notification target, not through EventBridge:
        # {"Service": "AWS Auto Scaling", "Event": "autoscaling:TEST_NOTIFICATION",
        #  "AutoScalingGroupName": ..., "RequestId": ..., "Time": ..., ...}
        asg, request = raw.get("AutoScalingGroupName"), raw.get("RequestId")
        return TestNotification(
            asg if isinstance(asg, str) else None, request if isinstance(request, str) else ""
        )
    detail_type = _str(raw, "detail-type", "detail-type")
    if detail_type not in _PARSERS:
        raise UnknownMessage(detail_type)
    source, parse = _PARSERS[detail_type]
    return parse(_envelope(raw, detail_type, source))


# --- policy ---------------------------------------------------------------------------------


def drain_deadline(
    notice: Notice,
    margin_s: float = DRAIN_MARGIN_S,
    *,
    hook_timeout_s: float = LIFECYCLE_HOOK_TIMEOUT_S,
) -> float:
    """Unix seconds by which the node's evictions must have finished.

    The instance goes at its deadline (Spot warning + 120 s, the Health start time, the
    lifecycle hook's timeout); evictions must be done ``margin_s`` before, and never later
    than that even if it is already past: a result at or before ``notice.at_s`` means "as
    fast as possible". ``inf`` when nothing forces the node out (rebalance, a running state).
    """
    match notice:
        case SpotInterruption():
            end = notice.deadline_s
        case ScheduledChange():
            end = notice.start_s
        case TerminateLifecycleAction():
            end = notice.at_s + hook_timeout_s
        case StateChange() if notice.state in GONE_STATES:
            return notice.at_s
        case _:
            return math.inf
    return max(notice.at_s, end - margin_s)


def eviction_budget_s(notice: Notice, now: float, margin_s: float = DRAIN_MARGIN_S) -> float:
    """Seconds left at ``now`` to finish evictions (0 when already late; inf if unforced)."""
    return max(0.0, drain_deadline(notice, margin_s) - now)


def dedup_keys(notice: Notice) -> tuple[tuple[Hashable, ...], tuple[tuple[Hashable, ...], ...]]:
    """``(event key, instance keys)``: what makes two deliveries the same news.

    The same event id, or the same kind of news about the same instance (for a state change,
    the same state; for maintenance, the same event type code: Health re-sends updates).
    """
    event = ("event", notice.event_id) if notice.event_id else ()
    match notice:
        case StateChange():
            qualifier: str = notice.state
        case ScheduledChange():
            qualifier = notice.code
        case _:
            qualifier = ""
    instances = tuple((notice.kind, i, qualifier) for i in notice.instance_ids)
    return event, instances


class Dedup:
    """Bounded memory of recent notices, so a duplicate delivery does nothing twice.

    An entry lives ``window_s`` after it was last recorded; past ``max_entries`` the oldest
    go first (an LRU). Ask :meth:`seen` when a notice arrives, :meth:`record` it once its
    action is recorded.
    """

    def __init__(
        self, window_s: float = DEDUP_WINDOW_S, max_entries: int = DEDUP_MAX_ENTRIES
    ) -> None:
        if window_s <= 0 or max_entries <= 0:
            raise ValueError("window_s and max_entries must be positive")
        self.window_s = window_s
        self.max_entries = max_entries
        self._at: OrderedDict[tuple[Hashable, ...], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._at)

    def _fresh(self, key: tuple[Hashable, ...], now: float) -> bool:
        at = self._at.get(key)
        return at is not None and now - at < self.window_s

    def seen(self, notice: Notice, now: float) -> bool:
        """Whether this event, or the same news about every instance it names, is recent."""
        event, instances = dedup_keys(notice)
        if event and self._fresh(event, now):
            return True
        return bool(instances) and all(self._fresh(k, now) for k in instances)

    def record(self, notice: Notice, now: float) -> None:
        event, instances = dedup_keys(notice)
        for key in (event, *instances) if event else instances:
            self._at[key] = now
            self._at.move_to_end(key)
        while self._at:
            oldest_key, oldest_at = next(iter(self._at.items()))
            if len(self._at) <= self.max_entries and now - oldest_at < self.window_s:
                break
            del self._at[oldest_key]
