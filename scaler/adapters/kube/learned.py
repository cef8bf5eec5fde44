"""What registered nodes taught scaler about their pools, kept so it outlives a restart.

:mod:`scaler.core.observed` learns, per (pool, instance type), the allocatable a Ready node
reports and the labels and taints it carries. That knowledge matters most when the pool has
no node left: scaling from zero is exactly when the guess would be wrong. So it is kept in a
ConfigMap in scaler's own namespace (``scaler-learned-nodes``, one JSON document), read once
at start and written when it changes.

Why not elsewhere:

- an annotation on the node goes with the last node when the pool scales to zero;
- ASG tags hold 50 tags of 256 characters per group (a node's labels alone exceed that) and
  writing them needs ``autoscaling:CreateOrUpdateTags`` on every group;
- a ConfigMap holds every pool in one object, needs only get/create/update on that one name
  in scaler's namespace, and ``kubectl get cm scaler-learned-nodes -o yaml`` shows it.

A document scaler cannot read is logged and ignored (the nodes teach it again); so is any
entry in it that does not decode.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import anyio
import structlog

from scaler.adapters.kube.client import call, retry_conflicts
from scaler.adapters.kube.rest import Rest, Timeout
from scaler.core.model import RESOURCES, Resources, Taint
from scaler.core.spec import parse_taint
from scaler.core.state import NodeTemplateReport
from scaler.ports import NotFound, PortError

log = structlog.get_logger("scaler.kube.learned")

CONFIGMAP: Final = "scaler-learned-nodes"
KEY: Final = "learned.json"
FORMAT: Final = 1

Reports = Mapping[tuple[str, str], Resources]
Templates = Mapping[tuple[str, str], NodeTemplateReport]


class ConfigMaps(Rest):
    """core/v1 ConfigMaps in one namespace (the methods the RBAC scan reads)."""

    _ONE: Final = "/api/v1/namespaces/{namespace}/configmaps/{name}"

    def read_namespaced_configmap(
        self, name: str, namespace: str, *, _request_timeout: Timeout = None
    ) -> Any:
        return self.request(
            "GET", self._ONE, path_params={"namespace": namespace, "name": name},
            timeout=_request_timeout,
        )

    def create_namespaced_configmap(
        self, namespace: str, body: Any, *, _request_timeout: Timeout = None
    ) -> Any:
        return self.request(
            "POST", "/api/v1/namespaces/{namespace}/configmaps",
            path_params={"namespace": namespace}, body=body, timeout=_request_timeout,
        )

    def replace_namespaced_configmap(
        self, name: str, namespace: str, body: Any, *, _request_timeout: Timeout = None
    ) -> Any:
        return self.request(
            "PUT", self._ONE, path_params={"namespace": namespace, "name": name}, body=body,
            timeout=_request_timeout,
        )


def encode(reports: Reports, templates: Templates) -> str:
    """One JSON document, entries sorted by (pool, type) so an unchanged state writes the
    same bytes."""
    entries = []
    for key in sorted(set(reports) | set(templates)):
        entry: dict[str, Any] = {"pool": key[0], "instance_type": key[1]}
        if key in reports:
            entry["allocatable"] = dict(zip(RESOURCES, reports[key].as_array().tolist(),
                                            strict=True))
        if key in templates:
            entry["labels"] = dict(templates[key].labels)
            entry["taints"] = [
                {"key": t.key, "value": t.value, "effect": t.effect} for t in templates[key].taints
            ]
        entries.append(entry)
    return json.dumps({"format": FORMAT, "pools": entries}, sort_keys=True, separators=(",", ":"))


def decode(text: str) -> tuple[dict[tuple[str, str], Resources],
                                dict[tuple[str, str], NodeTemplateReport]]:
    """The reports and templates of a document; what does not decode is logged and left out."""
    reports: dict[tuple[str, str], Resources] = {}
    templates: dict[tuple[str, str], NodeTemplateReport] = {}
    try:
        doc = json.loads(text)
        entries = doc["pools"] if doc.get("format") == FORMAT else None
    except (ValueError, AttributeError, KeyError, TypeError):
        entries = None
    if not isinstance(entries, list):
        log.warning("learned_unreadable", configmap=CONFIGMAP, key=KEY)
        return reports, templates
    for i, entry in enumerate(entries):
        try:
            key = (str(entry["pool"]), str(entry["instance_type"]))
            if "allocatable" in entry:
                alloc = entry["allocatable"]
                reports[key] = Resources(**{r: float(alloc[r]) for r in RESOURCES})
            if "labels" in entry:
                labels = tuple(sorted((str(k), str(v)) for k, v in entry["labels"].items()))
                taints: tuple[Taint, ...] = tuple(
                    parse_taint(t, f"pools[{i}].taints[{j}]")
                    for j, t in enumerate(entry.get("taints") or ())
                )
                templates[key] = NodeTemplateReport(labels, taints)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            log.warning("learned_entry_unreadable", configmap=CONFIGMAP, entry=i, error=str(e))
    return reports, templates


class LearnedStore:
    """Reads and writes the ConfigMap. ``namespace`` is scaler's own (the Lease's);
    ``read_only`` (``scaler plan``, dry runs) reads what was learned and writes nothing."""

    def __init__(
        self, api: Any, namespace: str, *, limiter: anyio.CapacityLimiter | None = None,
        name: str = CONFIGMAP, read_only: bool = False,
    ) -> None:
        self.read_only = read_only
        self._core = ConfigMaps(api)
        self.namespace = namespace
        self.name = name
        self._limiter = limiter or anyio.CapacityLimiter(1)
        self._written: str | None = None
        self.changed = anyio.Event()
        """Set by whoever changed what :meth:`keep` should write next."""

    async def keep(
        self, state: Any, *, retry_s: float = 30.0
    ) -> None:
        """Write ``state()`` (reports, templates) each time :attr:`changed` is set, until
        cancelled; a failed write is tried again after ``retry_s``."""
        while not self.read_only:
            await self.changed.wait()
            self.changed = anyio.Event()
            try:
                await self.save(*state())
            except PortError as e:
                log.warning("learned_not_saved", configmap=self.name, error=str(e))
                await anyio.sleep(retry_s)
                self.changed.set()

    async def load(self) -> tuple[dict[tuple[str, str], Resources],
                                  dict[tuple[str, str], NodeTemplateReport]]:
        """What an earlier process learned; empty when there is none or it cannot be read."""
        try:
            cm = await self._call("read", self._core.read_namespaced_configmap, self.name,
                                  self.namespace)
        except NotFound:
            return {}, {}
        except PortError as e:
            log.warning("learned_not_loaded", configmap=self.name, error=str(e))
            return {}, {}
        text = ((cm or {}).get("data") or {}).get(KEY)
        if not isinstance(text, str):
            return {}, {}
        self._written = text
        return decode(text)

    async def save(self, reports: Reports, templates: Templates) -> bool:
        """Write the state if it differs from what was last read or written; True if written.
        Errors propagate (``PortError``): the caller tries again at the next change."""
        text = encode(reports, templates)
        if text == self._written or self.read_only:
            return False

        async def attempt() -> None:
            try:
                cm = await self._call("read", self._core.read_namespaced_configmap, self.name,
                                      self.namespace)
            except NotFound:
                body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "data": {KEY: text}}
                await self._call("create", self._core.create_namespaced_configmap,
                                 self.namespace, body)
                return
            body = dict(cm or {})
            body["data"] = {**(body.get("data") or {}), KEY: text}
            # The resourceVersion read rides along: a concurrent writer makes this a 409.
            await self._call("replace", self._core.replace_namespaced_configmap, self.name,
                             self.namespace, body)

        await retry_conflicts(f"update configmap {self.namespace}/{self.name}", attempt)
        self._written = text
        return True

    async def _call(self, verb: str, fn: Any, *args: Any) -> Any:
        return await call(self._limiter, f"{verb} configmap {self.namespace}/{self.name}", fn,
                          *args)

