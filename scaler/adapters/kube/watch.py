"""List-then-watch of one resource kind, feeding a cache (client-go's Reflector, small).

:class:`Reflector` lists the kind page by page, hands the converted objects to its owner
(``on_replace``), then watches from the list's resourceVersion and hands over every change
(``on_event``). Conversion happens in the worker thread; the owner's callbacks run on the
event loop thread, so the owner's caches need no lock. The watch resumes from the last
resourceVersion seen (bookmarks included); a 410 Gone (the server's history no longer
reaches back that far) means list again. Errors back off exponentially, capped.

A watch cannot go stale silently. Each one asks the server to end it after
:data:`WATCH_TIMEOUT_S`; that timely end is the heartbeat: a healthy but idle watch hears from
the server at least that often. (Bookmarks are asked for too and count, but a v1.20 server
sends none on a kind that has not changed, measured against the test control plane.) A read
silent for :data:`WATCH_READ_TIMEOUT_S` therefore means the connection is dead (half-open:
stalled, no error, no FIN), and the watch is ended and resumed.
:meth:`Reflector.age_s` is the time since the server was last heard from (a list, a watch
answered, an event, a bookmark, a watch's clean end): the cache's age, which the loop bounds
before destructive actions and ``/readyz`` reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar

import anyio
import structlog
from anyio.abc import TaskStatus
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from scaler.adapters.heap import release_free_memory
from scaler.adapters.kube.client import REQUEST_TIMEOUT_S, TRANSPORT_ERRORS, Backoff, Interruptible
from scaler.adapters.kube.wire import WHOLE, Wire

V = TypeVar("V")

PAGE_SIZE: Final = 100
"""Objects per list page: a 20,000-pod list is 200 requests of about 1 MB, never one 200 MB
body. Not client-go's 500: a decoded page is transient garbage that Python's allocator keeps
resident. Measured (benchmarks/controller_memory.py, 5,000 nodes + 20,000 pods) when pages
were still decoded whole with json: 264 MiB RSS at 500, 190 MiB at 100. wire.py now builds
a fraction of each page, so 500 may cost less today; not re-measured."""
WATCH_TIMEOUT_S: Final = 30.0
"""The server ends each watch after this long and we resume it from its resourceVersion (the
server's watch cache answers; no list). Not client-go's 5-10 min: the end is the heartbeat
that tells an idle watch from a dead one, so this bounds a healthy watch's cache age. Two
watches re-opened every 30 s cost the server nothing worth counting."""
WATCH_READ_TIMEOUT_S: Final = WATCH_TIMEOUT_S + 10.0
"""A watch connection silent this long is dead: a healthy one hears its end (or an event)
within :data:`WATCH_TIMEOUT_S`. (The client's default was 330 s, and TCP keep-alive cannot
see a peer that still acknowledges but no longer forwards.)"""
UNREACHABLE_RETRY_MAX_S: Final = 2.0
"""Longest pause between tries while the server cannot be reached at all (connection refused,
reset, timed out): no request reaches it, so retrying costs it nothing, and this pause is
what new pods wait after the network comes back (a 30 s cap cost them 15 s after a 20 s
cut). A server that answers with errors still gets the full backoff."""
_MIN_HEALTHY_WATCH_S: Final = 1.0
"""A watch that ends sooner than this, with no error, still counts as a failure for backoff,
so a server that closes watches at once is not hammered."""

log = structlog.get_logger("scaler.kube.watch")


class Gone(Exception):
    """410: the resourceVersion is too old; the cache must be rebuilt from a list."""


class Reflector(Generic[V]):
    """Keep one kind's cache current. ``list_fn`` is the client's list call for the kind
    (:meth:`~scaler.adapters.kube.rest.CoreV1.list_node`); ``key`` names an object; ``convert`` turns it into the value
    the cache stores (run in the worker thread); ``on_replace`` receives the whole kind
    after every list, ``on_event`` one key and its new value (None: deleted). ``wire``
    decodes the responses: ``wire.PODS`` keeps only the fields the converters read."""

    def __init__(
        self,
        kind: str,
        list_fn: Callable[..., Any],
        *,
        key: Callable[[Mapping[str, Any]], str],
        convert: Callable[[Mapping[str, Any]], V],
        on_replace: Callable[[dict[str, V]], None],
        on_event: Callable[[str, V | None], None],
        limiter: anyio.CapacityLimiter,
        list_kwargs: Mapping[str, Any] | None = None,
        page_size: int = PAGE_SIZE,
        watch_timeout_s: float = WATCH_TIMEOUT_S,
        read_timeout_s: float | None = None,
        wire: Wire = WHOLE,
    ) -> None:
        self.kind = kind
        self.wire = wire
        self._list_fn = list_fn
        self._key = key
        self._convert = convert
        self._on_replace = on_replace
        self._on_event = on_event
        self._limiter = limiter
        self._list_kwargs = dict(list_kwargs or {})
        self._page_size = page_size
        self._watch_timeout_s = watch_timeout_s
        self._read_timeout_s = (
            read_timeout_s
            if read_timeout_s is not None
            else watch_timeout_s + WATCH_READ_TIMEOUT_S - WATCH_TIMEOUT_S
        )
        self.resource_version = ""
        self.relists = 0
        self.reconnects = 0
        """Watches re-opened after an error (a dead connection included)."""
        self._heard_at: float | None = None
        """time.monotonic() when the server was last heard from; set from the worker thread
        too (a float assignment, atomic under the GIL)."""

    def age_s(self) -> float:
        """Seconds since the server was last heard from on this kind (inf before the first
        list): how old the cache may be."""
        heard = self._heard_at
        return float("inf") if heard is None else max(0.0, time.monotonic() - heard)

    def _heard(self) -> None:
        self._heard_at = time.monotonic()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """List (retrying until it works), signal readiness, then watch forever."""
        backoff = Backoff()
        await self._relist(backoff)
        task_status.started()
        while True:
            started = anyio.current_time()
            heard_before = self._heard_at
            try:
                await Interruptible().run(self._limiter, self._watch_blocking)
            except Gone:
                log.info("watch_expired", kind=self.kind, resource_version=self.resource_version)
                await self._relist(backoff)
                continue
            except TRANSPORT_ERRORS as e:
                if isinstance(e, ApiException) and e.status == 410:
                    await self._relist(backoff)
                    continue
                if self._heard_at != heard_before and self._ran_healthy(started):
                    # The watch was answered and ran: the failures before it are history
                    # (without this a second cut started from the first one's long pause).
                    backoff.reset()
                delay = _retry_delay(backoff, e)
                self.reconnects += 1
                log.warning(
                    "watch_failed", kind=self.kind, error=str(e), retry_in_s=round(delay, 2)
                )
                await anyio.sleep(delay)
                continue
            if self._ran_healthy(started):
                backoff.reset()
            else:
                await anyio.sleep(backoff.next_delay())

    def _ran_healthy(self, started: float) -> bool:
        return anyio.current_time() - started >= _MIN_HEALTHY_WATCH_S

    async def _relist(self, backoff: Backoff) -> None:
        while True:
            try:
                items = await Interruptible().run(self._limiter, self._list_blocking)
            except TRANSPORT_ERRORS as e:
                delay = _retry_delay(backoff, e)
                log.warning("list_failed", kind=self.kind, error=str(e), retry_in_s=round(delay, 2))
                await anyio.sleep(delay)
                continue
            self.relists += 1
            self._heard()
            self._on_replace(items)
            backoff.reset()
            log.debug("listed", kind=self.kind, count=len(items), rv=self.resource_version)
            release_free_memory()  # the decoded pages were freed; give their heap pages back
            return

    # --- worker thread ------------------------------------------------------------------

    def _list_blocking(self, call: Interruptible) -> dict[str, V]:
        items: dict[str, V] = {}
        token = ""
        while True:
            kwargs: dict[str, Any] = {
                **self._list_kwargs,
                "limit": self._page_size,
                "_request_timeout": (REQUEST_TIMEOUT_S, 2 * REQUEST_TIMEOUT_S),
            }
            if token:
                kwargs["_continue"] = token
            response = self._list_fn(**kwargs)
            call.hold(response)
            try:
                page = self.wire.page(response.data)
            finally:
                response.release_conn()
            for obj in page.get("items") or ():
                key = self._key(obj)
                converted = self._safe_convert(key, obj)
                if converted is not _SKIP:
                    items[key] = converted
            meta = page.get("metadata") or {}
            token = meta.get("continue") or ""
            if not token:
                self.resource_version = meta.get("resourceVersion") or ""
                return items

    def _watch_blocking(self, call: Interruptible) -> None:
        response = self._list_fn(
            **self._list_kwargs,
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=max(1, int(self._watch_timeout_s)),
            # The read timeout bounds each wait for bytes, not the whole watch: it is what
            # ends a half-open connection.
            _request_timeout=(REQUEST_TIMEOUT_S, self._read_timeout_s),
        )
        call.hold(response)
        self._heard()
        try:
            for line in iter_resp_lines(response):
                self._heard()
                if line:
                    self._handle(self.wire.event(line))
        finally:
            response.release_conn()
        self._heard()  # the server ended the watch on time: it is alive

    def _handle(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message", ""))
            raise ApiException(status=obj.get("code"), reason=obj.get("message"))
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind != "BOOKMARK":
            key = self._key(obj)
            value = None if kind == "DELETED" else self._safe_convert(key, obj)
            if value is not _SKIP:
                anyio.from_thread.run_sync(self._on_event, key, value)
        if version:
            self.resource_version = version

    def _safe_convert(self, key: str, obj: Mapping[str, Any]) -> Any:
        """The converted object, or ``_SKIP``: converters report unreadable fields as values,
        so an exception here is a bug, and one odd object must not stop the watch."""
        try:
            return self._convert(obj)
        except Exception:
            log.exception("convert_failed", kind=self.kind, key=key)
            return _SKIP


_SKIP: Final = object()


def _retry_delay(backoff: Backoff, error: BaseException) -> float:
    """The pause before the next try: the backoff's, at most
    :data:`UNREACHABLE_RETRY_MAX_S` when the server was not reached at all."""
    delay = backoff.next_delay()
    if isinstance(error, ApiException):
        return delay
    return min(delay, UNREACHABLE_RETRY_MAX_S)
