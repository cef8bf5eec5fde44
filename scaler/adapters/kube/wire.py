"""Decode list pages and watch events, keeping only the fields the converters read.

A pod as the API server sends it is several kilobytes of JSON: managedFields, env, probes,
volumes, container statuses. A node adds its image list and nodeInfo. ``json.loads``
builds every one of those values, hundreds of Python objects per pod, only for the
converters to read a dozen fields and drop the rest. Listing 20,000 pods that way churns
the allocator, and the churn stays resident. msgspec decodes into the TypedDicts below
instead: they name only the fields :mod:`scaler.adapters.kube.convert` reads, and it skips
the rest without building them. The result is a subset of the same camelCase dicts, so
the converters and their tests do not change.

Values the converters check for themselves are typed ``Any``: quantities, selectors,
taints, labels, annotations and every scalar. A malformed value therefore still reaches
its converter, which reports it as a Problem naming the object and field. If the
structure itself is not what Kubernetes sends (say a string where ``spec`` belongs), the
whole page is decoded again with ``json`` and handled as before, and nothing is lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Generic, TypedDict, TypeVar

import msgspec
import structlog

log = structlog.get_logger("scaler.kube.wire")

T = TypeVar("T")


class _Meta(TypedDict, total=False):
    name: Any
    namespace: Any
    uid: Any
    resourceVersion: Any
    creationTimestamp: Any
    deletionTimestamp: Any
    labels: Any
    annotations: Any
    ownerReferences: list[_OwnerRef]


class _OwnerRef(TypedDict, total=False):
    kind: Any
    name: Any
    controller: Any


class _Condition(TypedDict, total=False):
    type: Any
    status: Any
    reason: Any
    lastTransitionTime: Any


class _Container(TypedDict, total=False):
    name: Any
    resources: Any
    restartPolicy: Any


class _Volume(TypedDict, total=False):
    name: Any
    persistentVolumeClaim: Any
    ephemeral: Any


class _PodSpec(TypedDict, total=False):
    nodeName: Any
    priority: Any
    topologySpreadConstraints: Any
    volumes: list[_Volume]
    containers: list[_Container]
    initContainers: list[_Container]
    overhead: Any
    affinity: Any
    tolerations: Any
    nodeSelector: Any


class _PodStatus(TypedDict, total=False):
    phase: Any
    nominatedNodeName: Any
    startTime: Any
    conditions: list[_Condition]


class Pod(TypedDict, total=False):
    metadata: _Meta
    spec: _PodSpec
    status: _PodStatus


class _NodeSpec(TypedDict, total=False):
    providerID: Any
    taints: Any
    unschedulable: Any


class _NodeStatus(TypedDict, total=False):
    allocatable: Any
    conditions: list[_Condition]


class Node(TypedDict, total=False):
    metadata: _Meta
    spec: _NodeSpec
    status: _NodeStatus


_ListMeta = TypedDict("_ListMeta", {"resourceVersion": Any, "continue": Any}, total=False)


class _Page(TypedDict, Generic[T], total=False):
    metadata: _ListMeta
    items: list[T]


class _Event(TypedDict, total=False):
    type: Any
    object: msgspec.Raw


class Wire:
    """Decoders for one kind: ``Wire(Pod)``, ``Wire(Node)``; ``Wire(Any)`` keeps everything."""

    def __init__(self, kind: Any) -> None:
        self.kind = getattr(kind, "__name__", "object")
        self._page = msgspec.json.Decoder(_Page[kind])
        self._object = msgspec.json.Decoder(kind)
        self._event = msgspec.json.Decoder(_Event)
        self.fallbacks = 0
        """Pages or events decoded in full because their structure was unexpected."""

    def page(self, data: bytes) -> Mapping[str, Any]:
        """A list response: ``{"metadata": {...}, "items": [...]}``."""
        try:
            decoded: Mapping[str, Any] = self._page.decode(data)
        except msgspec.MsgspecError as e:
            return self._fallback(data, e)
        return decoded

    def event(self, line: bytes) -> Mapping[str, Any]:
        """One watch event: ``{"type": ..., "object": {...}}``. ERROR events keep their
        whole object (a Status); BOOKMARK and change events keep the kind's fields."""
        try:
            event = self._event.decode(line)
            raw = event.get("object")
            if raw is None:
                return {"type": event.get("type")}
            if event.get("type") == "ERROR":
                return {"type": "ERROR", "object": json.loads(bytes(raw))}
            return {"type": event.get("type"), "object": self._object.decode(raw)}
        except msgspec.MsgspecError as e:
            return self._fallback(line, e)

    def _fallback(self, data: bytes, error: Exception) -> Mapping[str, Any]:
        """In full with json: raises json.JSONDecodeError if it is not a JSON object (also
        when it nests too deeply for Python's recursion limit)."""
        self.fallbacks += 1
        log.info("decoded_in_full", kind=self.kind, why=str(error))
        try:
            decoded = json.loads(data)
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", _text(data), 0) from None
        if not isinstance(decoded, dict):
            raise json.JSONDecodeError(
                f"expected an object, got {type(decoded).__name__}", _text(data), 0
            )
        return decoded


def _text(data: bytes) -> str:
    return data[:200].decode("utf-8", errors="replace")


PODS: Final = Wire(Pod)
NODES: Final = Wire(Node)
WHOLE: Final = Wire(Any)
"""Every field, as ``json.loads`` would give it."""
