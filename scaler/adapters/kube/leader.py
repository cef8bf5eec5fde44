"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it, in anyio.

Only the leader acts; every replica keeps its caches warm. The acting part runs inside a
cancel scope that the elector owns::

    elector = LeaderElector(api, "kube-system", "scaler", identity=pod_name)
    async with anyio.create_task_group() as tg:
        await tg.start(cluster.run)
        tg.start_soon(elector.run, reconcile_forever)   # acts only while leading

On losing the lease, acting stops at once: the scope is cancelled the moment a renewal
finds another holder, and in any case when ``renew_deadline_s`` passes without a successful
renewal (a deadline on the scope itself, so a hung request cannot delay it). The deadline
is shorter than the lease, so the old leader has stopped before anyone else may start.

Writes are guarded by the Lease's resourceVersion (a stale write gets 409 and loses).
Expiry of another holder's lease is judged from when *this* replica last saw the record
change, on its own ``clock``, never from the timestamps in the record: clocks of different
machines need not agree (client-go does the same).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

import anyio
import structlog
from anyio.abc import TaskStatus
from kubernetes.client import ApiClient

from scaler.adapters.kube.client import Conflict, call
from scaler.adapters.kube.rest import CoordinationV1
from scaler.ports import NotFound, PortError

JITTER: Final = 1.2
"""Retry periods are stretched by up to this factor (client-go's JitterFactor), so replicas
do not all try at the same instant."""

log = structlog.get_logger("scaler.kube.leader")


class _Round(Enum):
    HELD = "held"  # we hold the lease now
    OTHER = "other"  # someone else holds an unexpired lease
    FAILED = "failed"  # the API call failed or lost a race; try again


class LeaderElector:
    """Hold the Lease ``namespace/name`` as ``identity`` and run the acting part only then.

    ``clock`` (seconds, monotonic by default) times the expiry of other holders' leases;
    tests pass their own. ``release_on_cancel`` gives the lease up when :meth:`run` is
    cancelled while leading (a rolling update hands over at once instead of after
    ``lease_duration_s``).
    """

    def __init__(
        self,
        api: ApiClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration_s: float = 15.0,
        renew_deadline_s: float = 10.0,
        retry_period_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        release_on_cancel: bool = True,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        # client-go's defaults and checks: lease 15 s > renew deadline 10 s > retry 2 s x 1.2.
        if not lease_duration_s > renew_deadline_s > retry_period_s * JITTER > 0:
            raise ValueError(
                "need lease_duration_s > renew_deadline_s > retry_period_s x 1.2 > 0, got "
                f"{lease_duration_s}, {renew_deadline_s}, {retry_period_s}"
            )
        if not identity:
            raise ValueError("identity must not be empty")
        self._leases = CoordinationV1(api)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration_s = lease_duration_s
        self.renew_deadline_s = renew_deadline_s
        self.retry_period_s = retry_period_s
        self._clock = clock
        self._release_on_cancel = release_on_cancel
        self._limiter = limiter or anyio.CapacityLimiter(1)
        self._request_timeout = (retry_period_s, renew_deadline_s)
        self._is_leader = False
        self._observed_rv: str | None = None
        self._observed_at = 0.0
        self._last_lease: dict[str, Any] | None = None
        self.holder: str | None = None
        """The holder this replica last saw ("" or None: nobody)."""

    @property
    def is_leader(self) -> bool:
        return self._is_leader

    async def run(
        self,
        act: Callable[[], Awaitable[None]],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Campaign, and run ``act()`` whenever this replica leads. If the lease is lost,
        ``act`` is cancelled and campaigning resumes. Returns when ``act`` returns (the lease
        is then released); errors from ``act`` propagate (in an ExceptionGroup, as from any
        anyio task group). ``task_status.started()`` after the first attempt to acquire."""
        started = False
        try:
            while True:
                while True:
                    held = await self._round() is _Round.HELD
                    if not started:
                        task_status.started()
                        started = True
                    if held:
                        break
                    await anyio.sleep(self.retry_period_s * random.uniform(1.0, JITTER))
                if await self._lead(act):
                    await self._release()
                    return
        except BaseException:
            # Cancelled, or act failed: hand over now rather than after the lease runs out.
            if self._is_leader and self._release_on_cancel:
                with anyio.CancelScope(shield=True), anyio.move_on_after(self.renew_deadline_s):
                    await self._release()
            raise
        finally:
            self._is_leader = False

    async def _lead(self, act: Callable[[], Awaitable[None]]) -> bool:
        """Run ``act`` while renewing. True if ``act`` finished, False if the lease was lost."""
        self._is_leader = True
        log.info("started_leading", lease=f"{self.namespace}/{self.name}", identity=self.identity)
        finished = False
        with anyio.CancelScope(deadline=anyio.current_time() + self.renew_deadline_s) as acting:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_renewing, acting, name="lease-renew")
                await act()
                finished = True
                tg.cancel_scope.cancel()
        finished = finished and not acting.cancel_called
        self._is_leader = finished  # still ours if act just finished; released next
        if not finished:
            log.warning(
                "stopped_leading",
                lease=f"{self.namespace}/{self.name}",
                identity=self.identity,
                holder=self.holder,
            )
        return finished

    async def _keep_renewing(self, acting: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(self.retry_period_s)
            outcome = await self._round()
            if outcome is _Round.HELD:
                acting.deadline = anyio.current_time() + self.renew_deadline_s
            elif outcome is _Round.OTHER:
                self._is_leader = False
                acting.cancel()
                return
            # FAILED: try again next period; the scope's deadline ends acting if that lasts.

    # --- one round of client-go's tryAcquireOrRenew ---------------------------------------

    async def _round(self) -> _Round:
        try:
            return await self._try_acquire_or_renew()
        except Conflict:
            return _Round.FAILED
        except PortError as e:
            log.warning("lease_round_failed", error=str(e))
            return _Round.FAILED

    async def _try_acquire_or_renew(self) -> _Round:
        now = _micro_time()
        try:
            lease = await self._call(
                "read", self._leases.read_namespaced_lease, self.name, self.namespace
            )
        except NotFound:
            spec = self._spec(now, acquire_time=now, transitions=0)
            body = {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
            create = self._leases.create_namespaced_lease
            self._observe(await self._call("create", create, self.namespace, body))
            return _Round.HELD
        self._observe(lease)
        record = lease.get("spec") or {}
        holder = record.get("holderIdentity") or ""
        duration = record.get("leaseDurationSeconds") or self.lease_duration_s
        if holder and holder != self.identity and self._observed_at + duration > self._clock():
            return _Round.OTHER
        ours = holder == self.identity
        transitions = record.get("leaseTransitions") or 0
        spec = self._spec(
            now,
            acquire_time=record.get("acquireTime") if ours else now,
            transitions=transitions if ours else transitions + 1,
        )
        body = {"metadata": lease["metadata"], "spec": spec}  # carries resourceVersion
        replace = self._leases.replace_namespaced_lease
        self._observe(await self._call("replace", replace, self.name, self.namespace, body))
        return _Round.HELD

    async def _release(self) -> None:
        """Give the lease up if still ours (client-go's release: empty holder, 1 s lease)."""
        lease = self._last_lease
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        now = _micro_time()
        record = lease.get("spec") or {}
        spec = {
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": record.get("leaseTransitions") or 0,
        }
        body = {"metadata": lease["metadata"], "spec": spec}
        try:
            replace = self._leases.replace_namespaced_lease
            self._observe(await self._call("release", replace, self.name, self.namespace, body))
            log.info("released_lease", lease=f"{self.namespace}/{self.name}")
        except PortError as e:
            log.warning("lease_release_failed", error=str(e))
        self._is_leader = False

    def _spec(self, now: str, *, acquire_time: str | None, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": math.ceil(self.lease_duration_s),
            "acquireTime": acquire_time or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def _observe(self, lease: dict[str, Any]) -> None:
        rv = (lease.get("metadata") or {}).get("resourceVersion")
        if rv != self._observed_rv:
            self._observed_rv = rv
            self._observed_at = self._clock()
        self._last_lease = lease
        self.holder = (lease.get("spec") or {}).get("holderIdentity") or ""

    async def _call(self, verb: str, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        what = f"{verb} lease {self.namespace}/{self.name}"
        result = await call(self._limiter, what, fn, *args, _request_timeout=self._request_timeout)
        return result if isinstance(result, dict) else {}


def _micro_time() -> str:
    """A Lease's MicroTime: RFC 3339 with microseconds, UTC (for people reading the Lease;
    expiry is never judged from it)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
