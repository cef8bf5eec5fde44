"""cluster-autoscaler's ASG tags: discovery, and node templates for scale-from-zero.

Pure; shared by :mod:`~scaler.adapters.aws.asg`. The table of tags is in docs/aws.md.
Where cluster-autoscaler silently skips a tag it cannot read, scaler reports it
(:class:`TagError`) and the ASG's pool is disabled: a pool built from half its tags would
launch nodes that pods then refuse (a missing taint) or cannot fit (a missing resource).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from scaler.core.model import TAINT_EFFECTS, Resources, Taint
from scaler.core.names import is_label_value, is_qualified_name, shown
from scaler.core.quantity import QuantityError, cpu_milli, memory_mib, parse_request, whole_count
from scaler.core.settings import MAX_TIME_S

CA_PREFIX: Final = "k8s.io/cluster-autoscaler/"
TAG_ENABLED: Final = CA_PREFIX + "enabled"
ENABLED_VALUE: Final = "true"
"""The one value of :data:`TAG_ENABLED` under which scaler uses a group. The shipped IAM
policy (deploy/iam-policy.json) allows writes only where the tag is exactly this
(``StringEquals``: case-sensitive), so a group discovered with any other value would be
chosen, denied on every write and retried forever; it is reported as disabled instead."""
NODE_TEMPLATE: Final = CA_PREFIX + "node-template/"
TAG_LABEL: Final = NODE_TEMPLATE + "label/"
TAG_TAINT: Final = NODE_TEMPLATE + "taint/"
TAG_RESOURCES: Final = NODE_TEMPLATE + "resources/"
TAG_OPTIONS: Final = NODE_TEMPLATE + "autoscaling-options/"
OPTION_UNNEEDED_TIME: Final = "scaledownunneededtime"
TAG_PACK: Final = "scaler.io/pack"
"""``"true"``: the group's nodes take several pods each (Dask worker pools), packed by the
core; ``"false"`` or absent: one workload pod per node, enforced by the pinning webhook."""

# Go's time.ParseDuration: [-+]? then one or more <decimal><unit>; "0" alone needs no unit.
_GO_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_MAX_S: Final = (2**63 - 1) / 1e9
_GO_PART: Final = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


# ------------------------------------------------------------------------------ discovery


def cluster_tag(cluster_name: str) -> str:
    """``k8s.io/cluster-autoscaler/<cluster-name>``."""
    return CA_PREFIX + cluster_name


def discovery_tag_keys(cluster_name: str) -> tuple[str, str]:
    """The two tag keys an ASG needs to be discovered (cluster-autoscaler's auto-discovery)."""
    return TAG_ENABLED, cluster_tag(cluster_name)


def tags_of(group: Mapping[str, Any]) -> dict[str, str]:
    """The group's tags as a dict (DescribeAutoScalingGroups lists ``{Key, Value}`` items)."""
    return {str(t["Key"]): str(t.get("Value", "")) for t in group.get("Tags") or ()}


def is_discoverable(group: Mapping[str, Any], cluster_name: str) -> bool:
    """Both discovery tags are present (any value, as cluster-autoscaler checks keys only):
    the group is looked at, and reported if :func:`enabled_problem` says it is not usable."""
    tags = tags_of(group)
    return all(key in tags for key in discovery_tag_keys(cluster_name))


def enabled_problem(tags: Mapping[str, str]) -> str | None:
    """Why a discovered group is not enabled (None: it is). The rule the IAM policy's write
    condition encodes, in one place: :data:`TAG_ENABLED` must be exactly :data:`ENABLED_VALUE`."""
    value = tags.get(TAG_ENABLED)
    if value == ENABLED_VALUE:
        return None
    return (
        f"tag {TAG_ENABLED}={value!r}: scaler uses a group only when it is exactly "
        f"{ENABLED_VALUE!r}, the value the IAM policy allows writes under"
    )


def is_writable(group: Mapping[str, Any], cluster_name: str) -> bool:
    """Discoverable and enabled: the only groups scaler ever writes to."""
    return is_discoverable(group, cluster_name) and enabled_problem(tags_of(group)) is None


# ------------------------------------------------------------------------ node templates


class TagError(ValueError):
    """A node-template tag scaler cannot read: the tag, its value and what is wrong."""

    def __init__(self, key: str, value: str, what: str) -> None:
        super().__init__(f"tag {shown(key)}={value!r}: {what}")
        self.key = key
        self.value = value
        self.what = what


@dataclass(frozen=True, slots=True)
class NodeTemplate:
    """What an ASG's node-template tags say about its nodes."""

    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[Taint, ...] = ()
    allocatable: Resources | None = None
    """Per-resource override; zero fields keep the EKS-derived figure (PoolSpec docs)."""
    ephemeral_storage_mib: float | None = None
    """The root volume, from ``resources/ephemeral-storage``: allocatable is derived from it."""
    idle_timeout_s: float | None = None


def parse_node_template(tags: Mapping[str, str]) -> NodeTemplate:
    """Labels, taints, resources and options from node-template tags; :class:`TagError` on
    the first tag that cannot be read (tags are visited in key order, so the error is stable).

    Resources: ``cpu``, ``memory``, ``nvidia.com/gpu`` and ``pods`` override allocatable (as
    cluster-autoscaler, which takes them as capacity = allocatable); ``ephemeral-storage`` is
    the root volume, from which the EKS allocatable is derived. Other resources are checked
    to be quantities and otherwise ignored (scaler does not schedule by them).
    Autoscaling options other than ``scaledownunneededtime`` are ignored.
    """
    labels: dict[str, str] = {}
    taints: list[Taint] = []
    alloc: dict[str, float] = {}
    ephemeral: float | None = None
    idle: float | None = None
    for key in sorted(tags):
        value = tags[key]
        if key.startswith(TAG_LABEL):
            label = key[len(TAG_LABEL) :]
            if not valid_label_key(label):
                raise TagError(key, value, f"{label!r} is not a valid label key")
            if not valid_label_value(value):
                raise TagError(key, value, "not a valid label value")
            labels[label] = value
        elif key.startswith(TAG_TAINT):
            taints.append(_taint(key, key[len(TAG_TAINT) :], value))
        elif key.startswith(TAG_RESOURCES):
            resource = key[len(TAG_RESOURCES) :]
            try:
                if resource == "cpu":
                    alloc["cpu_milli"] = float(cpu_milli(value))
                elif resource == "memory":
                    alloc["memory_mib"] = memory_mib(value)
                elif resource == "nvidia.com/gpu":
                    alloc["gpu"] = float(whole_count(value))
                elif resource == "pods":
                    alloc["pods"] = float(whole_count(value))
                elif resource == "ephemeral-storage":
                    ephemeral = memory_mib(value)
                else:
                    parse_request(value)
            except QuantityError as e:
                raise TagError(key, value, str(e)) from None
        elif (
            key.startswith(TAG_OPTIONS) and key[len(TAG_OPTIONS) :].lower() == OPTION_UNNEEDED_TIME
        ):
            try:
                idle = parse_go_duration(value)
            except ValueError as e:
                raise TagError(key, value, str(e)) from None
            if idle < 0:
                raise TagError(key, value, "a negative duration")
            if idle > MAX_TIME_S:
                raise TagError(key, value, f"longer than {MAX_TIME_S:g} s (about 10 years)")
    return NodeTemplate(
        labels=tuple(sorted(labels.items())),
        taints=tuple(sorted(taints, key=str)),
        allocatable=Resources(**alloc) if alloc else None,
        ephemeral_storage_mib=ephemeral,
        idle_timeout_s=idle,
    )


def parse_pack(tags: Mapping[str, str]) -> bool:
    """The :data:`TAG_PACK` opt-in; :class:`TagError` for anything but ``true``/``false``
    (any case): a typo must not silently give a Dask pool one node per worker, or stack
    notebooks on a pool meant for one each."""
    value = tags.get(TAG_PACK)
    if value is None:
        return False
    word = value.strip().lower()
    if word not in ("true", "false"):
        raise TagError(TAG_PACK, value, 'expected "true" or "false"')
    return word == "true"


def _taint(tag: str, key: str, value: str) -> Taint:
    taint_value, sep, effect = value.rpartition(":")
    if not sep:
        raise TagError(tag, value, "expected <value>:<effect>")
    if effect not in TAINT_EFFECTS:
        raise TagError(
            tag, value, f"taint effect {effect!r} is not one of {', '.join(TAINT_EFFECTS)}"
        )
    if not valid_label_key(key):
        raise TagError(tag, value, f"{key!r} is not a valid taint key")
    if not valid_label_value(taint_value):
        raise TagError(tag, value, f"{taint_value!r} is not a valid taint value")
    return Taint(key, taint_value, effect)


def valid_label_key(key: str) -> bool:
    """``[prefix/]name``, as the API server checks it (:mod:`scaler.core.names`)."""
    return is_qualified_name(key)


def valid_label_value(value: str) -> bool:
    return is_label_value(value)


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration (``time.ParseDuration``): ``90s``, ``10m``, ``1h30m``,
    ``5m0s``, ``1.5h``, ``300ms``; ``0`` needs no unit. ``ValueError`` otherwise."""
    s = text
    sign = 1.0
    if s[:1] in ("-", "+"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"{text!r} is not a Go duration (e.g. 10m, 1h30m, 90s)")
    total, pos = 0.0, 0
    while pos < len(s):
        m = _GO_PART.match(s, pos)
        if m is None:
            raise ValueError(f"{text!r} is not a Go duration (e.g. 10m, 1h30m, 90s)")
        total += float(m[1]) * _GO_UNITS[m[2]]
        pos = m.end()
    if total > _GO_MAX_S:  # Go counts int64 nanoseconds and refuses more
        raise ValueError(f"{text!r} is out of range for a Go duration (at most about 292 years)")
    return sign * total


# ------------------------------------------------------------------------ price overrides

TAG_PRICE: Final = "scaler.io/price-usd-per-hour"
"""What one node of the group really costs, USD/hour (a capacity reservation already paid
for: 0). Replaces every live and catalog price of the group's types."""
TAG_DISCOUNT: Final = "scaler.io/price-discount"
"""The share taken off the group's price (RI, Savings Plan, EDP): ``0.3`` or ``30%``."""


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """What the company pays for a group's nodes, when it is not the list price."""

    usd_per_hour: float | None = None
    multiplier: float = 1.0


def parse_price_override(tags: Mapping[str, str]) -> PriceOverride:
    """The group's price tags; :class:`TagError` for a value that is not a finite price or a
    discount in [0, 1), or for both tags at once (which one would win is a guess)."""
    fixed = tags.get(TAG_PRICE)
    discount = tags.get(TAG_DISCOUNT)
    if fixed is not None and discount is not None:
        raise TagError(TAG_DISCOUNT, discount, f"set either it or {TAG_PRICE}, not both")
    if fixed is not None:
        price = _finite(TAG_PRICE, fixed, "a price in USD per hour such as 0.0625")
        if price < 0:
            raise TagError(TAG_PRICE, fixed, "a negative price")
        return PriceOverride(usd_per_hour=price)
    if discount is not None:
        text = discount.strip()
        percent = text.endswith("%")
        share = _finite(TAG_DISCOUNT, discount, "a share such as 0.3 or 30%",
                        text[:-1] if percent else text)
        if percent:
            share /= 100.0
        if not 0.0 <= share < 1.0:
            raise TagError(TAG_DISCOUNT, discount, "a discount must be at least 0 and below 100%")
        return PriceOverride(multiplier=1.0 - share)
    return PriceOverride()


def _finite(key: str, value: str, example: str, text: str | None = None) -> float:
    try:
        number = float(value.strip() if text is None else text)
    except ValueError:
        raise TagError(key, value, f"expected {example}") from None
    if not abs(number) < float("inf"):  # NaN compares false too
        raise TagError(key, value, f"expected {example}")
    return number
