"""``DryRunActuator``: every write the live actuator would make, logged instead of made.

It takes the place of :class:`~scaler.adapters.kube.cluster.KubeCluster` as the loop's
Actuator (the cluster still supplies snapshots), so ``--dry-run`` is decided once, in the
composition root, and nowhere else. ``calls`` keeps what was asked, for tests and for a
dry-run report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from scaler.core.model import PodSpec, Taint


@dataclass(frozen=True, slots=True)
class Call:
    """One write that was not made: the method's name and its arguments."""

    method: str
    args: tuple[tuple[str, Any], ...]


class DryRunActuator:
    """Implements the ``Actuator`` port and KubeCluster's write helpers; writes nothing."""

    def __init__(self, logger: Any = None) -> None:
        self._log = logger or structlog.get_logger("scaler.dryrun")
        self.calls: list[Call] = []

    def _record(self, method: str, **args: Any) -> None:
        self.calls.append(Call(method, tuple(args.items())))
        self._log.info("dry_run_write", action=method, **args)

    async def annotate_node(self, node: str, key: str, value: str | None) -> None:
        self._record("annotate_node", node=node, key=key, value=value)

    async def label_node(self, node: str, key: str, value: str) -> None:
        self._record("label_node", node=node, key=key, value=value)

    async def record_event(self, pod: PodSpec, reason: str, message: str, *, warning: bool) -> None:
        self._record("record_event", pod=pod.key, reason=reason, message=message, warning=warning)

    async def cordon(self, node: str) -> None:
        self._record("cordon", node=node)

    async def uncordon(self, node: str) -> None:
        self._record("uncordon", node=node)

    async def taint(self, node: str, taint: Taint) -> None:
        self._record("taint", node=node, taint=str(taint))

    async def untaint(self, node: str, key: str, effect: str | None = None) -> None:
        self._record("untaint", node=node, key=key, effect=effect)

    async def evict(self, pod: PodSpec, *, grace_period_s: int | None = None) -> None:
        self._record("evict", pod=pod.key, grace_period_s=grace_period_s)
