"""A fleet that reads through and only logs its writes: ``scaler --dry-run`` on AWS.

The one place dry-run is decided (the predecessor checked a flag in ten places): the
composition root wraps the real fleet in :class:`DryRunFleet` and nothing else knows.
Reads (pools, launch failures, instance types, prices) go to the wrapped fleet; writes
(``set_desired``, ``terminate``, ``give_up``) are logged with structlog as ``dry_run.*`` events. Desired
capacity therefore never changes, and the reconciler sees its scale-up as not yet launched.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import structlog

from scaler.core.actions import LifecycleHook
from scaler.core.model import InstanceType, PoolSpec
from scaler.core.offerings import Prices
from scaler.core.state import LaunchFailure, Node
from scaler.ports import Fleet

log = structlog.get_logger("scaler.dryrun")


class DryRunFleet:
    """Wraps a :class:`~scaler.ports.Fleet` (and its ``prices``, when it has them);
    implements the same ports."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    async def pools(self) -> Sequence[PoolSpec]:
        return await self.fleet.pools()

    def changed(
        self, before: Sequence[PoolSpec], now: Sequence[PoolSpec]
    ) -> Sequence[int] | None:
        return self.fleet.changed(before, now)

    async def launch_failures(self, since_s: float) -> Sequence[LaunchFailure]:
        return await self.fleet.launch_failures(since_s)

    async def describe_types(self, names: Sequence[str]) -> Sequence[InstanceType]:
        return await self.fleet.describe_types(names)

    async def prices(self) -> Prices:
        prices = getattr(self.fleet, "prices", None)
        return await prices() if prices is not None else Prices()

    async def set_desired(self, pool: str, desired: int) -> None:
        log.info("dry_run.set_desired", pool=pool, desired=desired)

    async def terminate(self, node: Node) -> None:
        log.info(
            "dry_run.terminate",
            node=node.name,
            pool=node.pool,
            instance_id=node.instance_id,
            instance_type=node.instance_type,
        )

    async def complete_lifecycle(self, hook: LifecycleHook) -> None:
        log.info(
            "dry_run.complete_lifecycle", asg=hook.asg, hook=hook.hook, instance_id=hook.instance_id
        )

    async def cancel_unfulfilled(self, pool: str) -> None:
        log.info("dry_run.cancel_unfulfilled", pool=pool)

    async def give_up(self, pool: str, count: int, keep: Collection[str]) -> int:
        log.info("dry_run.give_up", pool=pool, count=count)
        return 0
