"""Every AWS call ends in bounded time: botocore's timeouts and retries, and an overall deadline.

botocore bounds each HTTP attempt (connect and read timeouts) and the number of attempts
(``standard`` retry mode), but not their sum: 5 attempts of a 30 s read plus backoff is over
two and a half minutes, and one slow SetDesiredCapacity once held a tick for 191 s.
:class:`Deadlined` wraps an aiobotocore client so that each call (each page of a paginator)
runs under an anyio deadline covering all of its attempts; a call that misses it raises the
port's :class:`~scaler.ports.TimedOut`, naming the operation, at this boundary.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Final

import anyio
from aiobotocore.config import AioConfig

from scaler.ports import TimedOut

CONNECT_TIMEOUT_S: Final = 3.0
"""An AWS endpoint answers a TCP connect in milliseconds; seconds mean it will not."""
READ_TIMEOUT_S: Final = 10.0
"""Per attempt. The calls scaler makes answer in well under a second (a page of 100 groups
included); botocore retries a read timeout as a transient error."""
MAX_ATTEMPTS: Final = 3
"""Tries per call in botocore's standard mode (exponential backoff with jitter): a throttle
or a 5xx gets two more chances within the deadline, and the caller's own backoff does the
rest (the reconciler retries a failed write 10 s later)."""
CALL_DEADLINE_S: Final = 20.0
"""Overall, per call, attempts and backoff included: a tick waits at most this long on one
AWS call, and a Spot warning's replacement launch (which waits for the tick's AWS writes)
is still under way well inside the warning's 120 s."""


def client_config(
    region: str | None,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> AioConfig:
    """botocore's per-attempt bounds for one client."""
    return AioConfig(
        region_name=region,
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
    )


class Deadlined:
    """``client`` with every API call (and every paginator page) bounded by ``deadline_s``.

    Anything else (``meta``, ``exceptions``) passes through unchanged."""

    def __init__(self, client: Any, deadline_s: float = CALL_DEADLINE_S) -> None:
        self._client = client
        self.deadline_s = deadline_s
        self._operations: dict[str, str] = dict(client.meta.method_to_api_mapping)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name == "get_paginator":
            return self._paginator(attr)
        operation = self._operations.get(name)
        if operation is None:
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            with _deadline(operation, self.deadline_s):
                return await attr(*args, **kwargs)

        return call

    def _paginator(self, get: Callable[[str], Any]) -> Callable[[str], Any]:
        def paginator(method: str) -> _Paginator:
            operation = self._operations.get(method, method)
            return _Paginator(get(method), operation, self.deadline_s)

        return paginator


class _Paginator:
    def __init__(self, paginator: Any, operation: str, deadline_s: float) -> None:
        self._paginator = paginator
        self._operation = operation
        self._deadline_s = deadline_s

    def paginate(self, **kwargs: Any) -> AsyncIterator[Any]:
        return self._pages(self._paginator.paginate(**kwargs))

    async def _pages(self, pages: Any) -> AsyncIterator[Any]:
        iterator = pages.__aiter__()
        while True:
            with _deadline(self._operation, self._deadline_s):
                try:
                    page = await iterator.__anext__()
                except StopAsyncIteration:
                    return
            yield page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._paginator, name)


@contextlib.contextmanager
def _deadline(operation: str, seconds: float) -> Iterator[None]:
    """``anyio.fail_after``, its timeout the port's TimedOut naming the operation."""
    try:
        with anyio.fail_after(seconds):
            yield
    except TimeoutError as e:
        raise TimedOut(f"{operation}: no answer within {seconds:g} s (retries included)") from e
