"""Writes to the cluster: the ``Actuator`` port and the node/pod helpers later issues use.

Every call is one API request (two for read-modify-writes) run by
:func:`scaler.adapters.kube.client.call`; errors arrive as the port's domain errors. The
exact requests each method makes are listed in docs/kubernetes.md for the ClusterRole.

Eviction prefers ``policy/v1`` and falls back to ``policy/v1beta1`` when the server does
not serve v1 (Kubernetes < 1.22), remembering which one worked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import anyio
import structlog
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from scaler.adapters.kube.client import (
    REQUEST_TIMEOUT_S,
    TRANSPORT_ERRORS,
    call,
    retry_conflicts,
    status_of,
    translate,
)
from scaler.adapters.kube.rest import CoreV1
from scaler.core.model import PodSpec, Taint

EVENT_COMPONENT: Final = "scaler"
EVENT_DEDUP_S: Final = 300.0
"""The same Event (pod, reason, message) is not sent again within this window: the loop may
decide the same thing every tick, and the API server keeps Events for an hour."""
EVENT_MESSAGE_MAX: Final = 1024
EVICTION_VERSIONS: Final = ("policy/v1", "policy/v1beta1")
REQUEST_TIMEOUTS: Final = (REQUEST_TIMEOUT_S, REQUEST_TIMEOUT_S)

log = structlog.get_logger("scaler.kube")


class KubeActuator:
    """The cluster-writing half of :class:`~scaler.adapters.kube.cluster.KubeCluster`.

    ``identity`` names this replica in Events (``reportingInstance``); ``clock`` stamps them.
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        limiter: anyio.CapacityLimiter | None = None,
        identity: str = EVENT_COMPONENT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api
        self._core = CoreV1(api)
        self._limiter = limiter or anyio.CapacityLimiter(8)
        self._identity = identity
        self._clock = clock
        self._recent_events: dict[tuple[str, str, str], float] = {}
        self.eviction_version: str | None = None
        """The Eviction apiVersion the server accepted, once known."""

    def uid_of(self, pod_key: str) -> str | None:
        """The pod's UID if known (the cluster cache knows it): Events name it so that
        ``kubectl describe pod`` shows them."""
        return None

    # --- Actuator port --------------------------------------------------------------------

    async def annotate_node(self, node: str, key: str, value: str | None) -> None:
        """Set an annotation, or remove it with None (JSON merge patch: PATCH nodes)."""
        body = {"metadata": {"annotations": {key: value}}}
        await self._patch_node(node, body, f"annotate node {node}")

    async def label_node(self, node: str, key: str, value: str) -> None:
        """Set a label (JSON merge patch: PATCH nodes)."""
        body = {"metadata": {"labels": {key: value}}}
        await self._patch_node(node, body, f"label node {node} {key}={value}")

    async def record_event(self, pod: PodSpec, reason: str, message: str, *, warning: bool) -> None:
        """A core/v1 Event on the pod (CREATE events in the pod's namespace), source component
        ``scaler``. Repeats of the same event within :data:`EVENT_DEDUP_S` are dropped."""
        now = self._clock()
        dedup_key = (pod.key, reason, message)
        last = self._recent_events.get(dedup_key)
        if last is not None and now - last < EVENT_DEDUP_S:
            return
        self._recent_events[dedup_key] = now
        if len(self._recent_events) > 4096:
            self._recent_events = {
                k: t for k, t in self._recent_events.items() if now - t < EVENT_DEDUP_S
            }
        involved = {"apiVersion": "v1", "kind": "Pod", "namespace": pod.namespace, "name": pod.name}
        uid = self.uid_of(pod.key)
        if uid:
            involved["uid"] = uid
        body = event_body(involved, pod.namespace, reason, message, warning=warning,
                          identity=self._identity, now=now)
        try:
            await call(
                self._limiter,
                f"create event on pod {pod.key}",
                self._core.create_namespaced_event,
                pod.namespace,
                body,
            )
        except BaseException:
            self._recent_events.pop(dedup_key, None)
            raise

    # --- helpers for scale-down and interruption handling ---------------------------------

    async def cordon(self, node: str) -> None:
        """Mark the node unschedulable (PATCH nodes)."""
        await self._patch_node(node, {"spec": {"unschedulable": True}}, f"cordon node {node}")

    async def uncordon(self, node: str) -> None:
        await self._patch_node(node, {"spec": {"unschedulable": None}}, f"uncordon node {node}")

    async def taint(self, node: str, taint: Taint) -> None:
        """Add ``taint`` (replacing one with the same key and effect). GET then PATCH nodes,
        guarded by resourceVersion: the taint list is replaced whole, so a concurrent writer
        (the node lifecycle controller, another taint) must not be overwritten; 409 retries."""

        def change(taints: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = [
                t for t in taints if (t.get("key"), t.get("effect")) != (taint.key, taint.effect)
            ]
            new = {"key": taint.key, "effect": taint.effect}
            if taint.value:
                new["value"] = taint.value
            return [*kept, new]

        await self._edit_taints(node, change, f"taint node {node} {taint}")

    async def untaint(self, node: str, key: str, effect: str | None = None) -> None:
        """Remove taints with ``key`` (and ``effect``, if given). GET then PATCH nodes."""

        def change(taints: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                t
                for t in taints
                if not (t.get("key") == key and (effect is None or t.get("effect") == effect))
            ]

        await self._edit_taints(node, change, f"untaint node {node} {key}")

    async def evict(self, pod: PodSpec, *, grace_period_s: int | None = None) -> None:
        """Ask the API server to evict the pod (CREATE pods/eviction), honouring its
        PodDisruptionBudgets: a budget that allows no disruption now raises ``Throttled``
        (429), a pod already gone ``NotFound``.

        policy/v1 first; a server without it (< 1.22) refuses with 404, or with 400 "no kind
        Eviction is registered for version policy/v1" (what 1.20 actually answers); then
        policy/v1beta1, and that choice is remembered.
        """
        what = f"evict pod {pod.key}"
        versions = EVICTION_VERSIONS if self.eviction_version is None else (self.eviction_version,)
        for version in versions:
            body: dict[str, Any] = {
                "apiVersion": version,
                "kind": "Eviction",
                "metadata": {"name": pod.name, "namespace": pod.namespace},
            }
            if grace_period_s is not None:
                body["deleteOptions"] = {"gracePeriodSeconds": grace_period_s}
            try:
                await anyio.to_thread.run_sync(
                    self._post_eviction, pod.name, pod.namespace, body, limiter=self._limiter
                )
            except ApiException as e:
                if version != versions[-1] and _version_not_served(e, version):
                    log.debug("eviction_version_not_served", version=version)
                    continue
                raise translate(e, what) from e
            except TRANSPORT_ERRORS as e:
                raise translate(e, what) from e
            self.eviction_version = version
            return

    def _post_eviction(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        # A dict body: the typed V1Eviction would pin the apiVersion this method is for.
        evict: Any = self._core.create_namespaced_pod_eviction
        response = evict(name, namespace, body, _request_timeout=REQUEST_TIMEOUTS)
        response.release_conn()

    # --- internals ------------------------------------------------------------------------

    async def _patch_node(self, node: str, body: dict[str, Any], what: str) -> Any:
        return await call(self._limiter, what, self._core.patch_node, node, body)

    async def _edit_taints(
        self, node: str, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]], what: str
    ) -> None:
        async def attempt() -> None:
            current = await call(self._limiter, what, self._core.read_node, node)
            taints = (current.get("spec") or {}).get("taints") or []
            new = change(taints)
            if new == taints:
                return
            body = {
                # A merge patch that names resourceVersion is refused with 409 if it is stale.
                "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                "spec": {"taints": new or None},
            }
            await self._patch_node(node, body, what)

        await retry_conflicts(what, attempt)


def _version_not_served(e: ApiException, version: str) -> bool:
    """Did the server refuse the Eviction's apiVersion (rather than the eviction itself)?"""
    status = status_of(e)
    if e.status == 404:
        # A missing pod is also a 404, with details.kind "pods": that one is final.
        return (status.get("details") or {}).get("kind") != "pods"
    if e.status == 400:
        message = status.get("message") or ""
        return "no kind" in message and version in message
    return False


def event_body(
    involved: dict[str, str],
    namespace: str,
    reason: str,
    message: str,
    *,
    warning: bool,
    identity: str,
    now: float,
) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (a pod or a node), as scaler reports it."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        # client-go's naming: <object>.<unix nanoseconds in hex>, unique per object.
        "metadata": {"name": f"{involved['name']}.{int(now * 1e9):x}", "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message[:EVENT_MESSAGE_MAX],
        "type": "Warning" if warning else "Normal",
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "reportingInstance": identity,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
