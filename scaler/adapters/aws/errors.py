"""botocore errors -> the ports' domain errors, once, at this boundary.

Retries happen below this line, in botocore's ``standard`` retry mode (exponential backoff
with full jitter, capped at 20 s, at most ``max_attempts`` tries): an error that reaches
:func:`translate` has already been retried, and the caller backs off further.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from botocore.exceptions import BotoCoreError, ClientError

from scaler.ports import InsufficientCapacity, NotFound, PortError, Rejected, Throttled


class AtMinSize(PortError):
    """Terminating the instance would take its ASG below MinSize; nothing was done."""


THROTTLE_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        # "You already have a pending update to an Auto Scaling resource": retry later.
        "ResourceContention",
        "ScalingActivityInProgress",
    }
)
CAPACITY_CODES: Final = frozenset(
    {"InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity"}
)
REJECTED_CODES: Final = frozenset(
    {
        # IAM said no (the policy's tag condition, a missing permission, an SCP).
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthFailure",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        # The request is wrong as asked: a desired size above MaxSize, a bad parameter.
        "ValidationError",
        "InvalidParameterValue",
        "InvalidParameterCombination",
    }
)
"""Errors that the same request meets again: a write refused so is not worth retrying soon."""


def translate(error: ClientError, operation: str) -> PortError:
    """The domain error for a botocore ``ClientError`` of ``operation``."""
    info = error.response.get("Error", {}) if isinstance(error.response, dict) else {}
    code = str(info.get("Code", ""))
    message = str(info.get("Message", ""))
    text = f"{operation}: {code}: {message}" if code else f"{operation}: {error}"
    lowered = message.lower()
    if code in THROTTLE_CODES:
        return Throttled(text)
    if code in CAPACITY_CODES:
        return InsufficientCapacity(text)
    if "NotFound" in code:  # InvalidInstanceID.NotFound, InvalidLaunchTemplateId.NotFound, ...
        return NotFound(text)
    if code == "ValidationError":
        # Auto Scaling says so for an unknown group ("AutoScalingGroup name not found") or
        # instance ("Instance Id not found - No managed instance found for instance ID").
        if "not found" in lowered:
            return NotFound(text)
        # "Terminating instance without replacement will violate group's min size constraint."
        if "min size" in lowered:
            return AtMinSize(text)
    if code in REJECTED_CODES:
        return Rejected(text)
    return PortError(text)


@contextlib.contextmanager
def translated(operation: str) -> Iterator[None]:
    """Run a client call (or a paginator's iteration) with its errors translated."""
    try:
        yield
    except ClientError as e:
        raise translate(e, operation) from e
    except BotoCoreError as e:  # connection refused, timeouts, unreadable answers
        raise PortError(f"{operation}: {e}") from e
