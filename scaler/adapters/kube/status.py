"""The status ConfigMap: what scaler is doing, readable with kubectl, like
cluster-autoscaler's ``cluster-autoscaler-status``.

The leader writes ``scaler-status`` in its own namespace: one JSON document under the key
``status.json`` (``kubectl -n scaler-system get configmap scaler-status -o
jsonpath='{.data.status\\.json}'``, or ``scaler status``). It names the leader, the last
tick, pending pods and nodes, and per pool its size, health (``ok``, ``backoff``,
``disabled``), why it backs off or is disabled, and its last scale-up and scale-down.

Writes are rate-limited (:class:`StatusWriter`): the document is rebuilt every
``interval_s``, and written only when something other than the timestamps changed, or
``heartbeat_s`` after the last write (so ``written_at`` tells a reader the leader is alive).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import anyio
import structlog
from kubernetes.client import ApiClient

from scaler.adapters.kube.client import call
from scaler.adapters.kube.rest import CoreV1ConfigMaps
from scaler.core.model import PoolSpec
from scaler.core.offerings import PoolProblem
from scaler.ports import NotFound, PortError
from scaler.telemetry import Event, NodeRemoved, ScaledUp

STATUS_NAME: Final = "scaler-status"
STATUS_KEY: Final = "status.json"
FORMAT_VERSION: Final = 1
VOLATILE: Final = ("written_at", "last_tick_at", "last_decide_ms")
"""Fields that change every tick without anything having happened: a change of only these
waits for the heartbeat."""

log = structlog.get_logger("scaler.kube")


def iso(t: float | None) -> str | None:
    if t is None or not math.isfinite(t):
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PoolHistory:
    """A subscriber to the loop's events that remembers each pool's last scale-up and
    scale-down (unix seconds)."""

    clock: Callable[[], float] = time.time
    last_scale_up_s: dict[str, float] = field(default_factory=dict)
    last_scale_down_s: dict[str, float] = field(default_factory=dict)

    def __call__(self, event: Event) -> None:
        if isinstance(event, ScaledUp):
            self.last_scale_up_s[event.action.pool] = self.clock()
        elif isinstance(event, NodeRemoved) and event.pool is not None:
            self.last_scale_down_s[event.pool] = self.clock()


@dataclass(frozen=True)
class StatusInputs:
    """What the document is built from; the composition root gathers it each interval."""

    now_s: float
    leader: str
    cluster_name: str
    pools: Sequence[PoolSpec]
    disabled: Sequence[PoolProblem]
    backoff_until_s: Mapping[str, float]
    backoff_reason: Mapping[str, str]
    history: PoolHistory
    last_tick_s: float | None
    last_decide_ms: float | None
    pending_pods: int
    nodes: int
    warnings: Sequence[str] = ()


def status_document(s: StatusInputs) -> dict[str, Any]:
    pools: list[dict[str, Any]] = []
    disabled = _first_reasons(s.disabled)
    for p in s.pools:
        until = s.backoff_until_s.get(p.name)
        backing_off = until is not None and until > s.now_s
        pools.append({
            "name": p.name,
            "instance_types": list(p.instance_types),
            "capacity_type": p.capacity_type,
            "size": p.current_size,
            "min_size": p.min_size,
            "max_size": p.max_size,
            "health": "backoff" if backing_off else "ok",
            "backoff_until": iso(until) if backing_off else None,
            "backoff_reason": s.backoff_reason.get(p.name) if backing_off else None,
            "disabled_reason": None,
            "last_scale_up_at": iso(s.history.last_scale_up_s.get(p.name)),
            "last_scale_down_at": iso(s.history.last_scale_down_s.get(p.name)),
        })
    seen = {p.name for p in s.pools}
    for name, reason in disabled.items():
        if name in seen:
            continue  # usable after all (e.g. a problem cleared by the newest discovery)
        pools.append({
            "name": name, "health": "disabled", "disabled_reason": reason,
            "last_scale_up_at": iso(s.history.last_scale_up_s.get(name)),
            "last_scale_down_at": iso(s.history.last_scale_down_s.get(name)),
        })
    pools.sort(key=lambda p: p["name"])
    return {
        "version": FORMAT_VERSION,
        "written_at": iso(s.now_s),
        "cluster_name": s.cluster_name,
        "leader": s.leader,
        "last_tick_at": iso(s.last_tick_s),
        "last_decide_ms": None if s.last_decide_ms is None else round(s.last_decide_ms, 1),
        "pending_pods": s.pending_pods,
        "nodes": s.nodes,
        "warnings": list(s.warnings),
        "pools": pools,
    }


def _first_reasons(problems: Iterable[PoolProblem]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in problems:
        out.setdefault(p.pool, p.reason)
    return out


def changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Did anything but the timestamps change?"""
    if old is None:
        return True
    return _lasting(old) != _lasting(new)


def _lasting(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in VOLATILE}


def due(
    last_written: Mapping[str, Any] | None,
    last_written_s: float | None,
    new: Mapping[str, Any],
    *,
    now: float,
    heartbeat_s: float,
) -> bool:
    """Write now? When the content changed, or the heartbeat is due."""
    if last_written is None or last_written_s is None:
        return True
    return changed(last_written, new) or now - last_written_s >= heartbeat_s


class StatusConfigMap:
    """Reads and writes the one ConfigMap (GET, PATCH, and CREATE the first time)."""

    def __init__(
        self,
        api: ApiClient,
        namespace: str,
        name: str = STATUS_NAME,
        *,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        self._core = CoreV1ConfigMaps(api)
        self.namespace = namespace
        self.name = name
        self._limiter = limiter or anyio.CapacityLimiter(1)

    async def write(self, document: Mapping[str, Any]) -> None:
        data = {STATUS_KEY: json.dumps(document, indent=2, sort_keys=False)}
        what = f"write configmap {self.namespace}/{self.name}"
        try:
            await call(self._limiter, what, self._core.patch_namespaced_config_map,
                       self.name, self.namespace, {"data": data})
        except NotFound:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": self.name,
                    "namespace": self.namespace,
                    "labels": {"app.kubernetes.io/name": "scaler",
                               "app.kubernetes.io/component": "status"},
                },
                "data": data,
            }
            await call(self._limiter, what, self._core.create_namespaced_config_map,
                       self.namespace, body)

    async def read(self) -> dict[str, Any]:
        """The document; ``NotFound`` if no leader has written one yet."""
        what = f"read configmap {self.namespace}/{self.name}"
        cm = await call(self._limiter, what, self._core.read_namespaced_config_map,
                        self.name, self.namespace)
        text = ((cm or {}).get("data") or {}).get(STATUS_KEY)
        if not text:
            raise NotFound(f"{what}: no {STATUS_KEY} key")
        try:
            document = json.loads(text)
        except ValueError as e:
            raise PortError(f"{what}: {STATUS_KEY} is not JSON: {e}") from e
        if not isinstance(document, dict):
            raise PortError(f"{what}: {STATUS_KEY} is not a JSON object")
        return document


class StatusWriter:
    """Rebuilds the document every ``interval_s`` and writes it when :func:`due`."""

    def __init__(
        self,
        target: StatusConfigMap,
        build: Callable[[float], Any],
        *,
        clock: Callable[[], float] = time.time,
        interval_s: float = 10.0,
        heartbeat_s: float = 60.0,
    ) -> None:
        self.target = target
        self.build = build
        self.clock = clock
        self.interval_s = interval_s
        self.heartbeat_s = heartbeat_s
        self.last: dict[str, Any] | None = None
        self.last_s: float | None = None
        self.writes = 0

    async def step(self) -> bool:
        """Build once and write if due; True if it wrote. A failed write is logged and
        retried at the next interval."""
        now = self.clock()
        document = await self.build(now)
        if not due(self.last, self.last_s, document, now=now, heartbeat_s=self.heartbeat_s):
            return False
        try:
            await self.target.write(document)
        except PortError as e:
            log.warning("status_write_failed", error=str(e))
            return False
        self.last, self.last_s = document, now
        self.writes += 1
        return True

    async def run(self) -> None:
        while True:
            await self.step()
            await anyio.sleep(self.interval_s)
