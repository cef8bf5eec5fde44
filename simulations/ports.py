"""The ports of :mod:`scaler.ports`, implemented over one simulated :class:`World`.

- :class:`SimCluster` is the ClusterSource and the Actuator (what kube-apiserver answers and
  accepts);
- :class:`SimFleet` is the Fleet and the PriceSource (what the ASGs and EC2 answer).

Like Karpenter's fake cloud provider, each records every call (``calls``) and can be told to
fail the next call of a method (``fail_next("set_desired", InsufficientCapacity(...))``), so
tests can check what the reconciler asked for and how it copes when asking fails.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

from scaler.core.actions import LifecycleHook
from scaler.core.catalog import Catalog
from scaler.core.model import InstanceType, PodSpec, PoolSpec, Taint
from scaler.core.offerings import Prices
from scaler.core.state import BoundPod, ClusterView, LaunchFailure, Node
from simulations.clock import SimClock
from simulations.world import World


class Call(NamedTuple):
    """One recorded port call."""

    at_s: float
    method: str
    args: tuple[object, ...]


class Recorder:
    """Records calls; raises the errors it was told to, once each, in order."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.calls: list[Call] = []
        self._failures: dict[str, list[BaseException]] = {}

    def fail_next(self, method: str, error: BaseException) -> None:
        self._failures.setdefault(method, []).append(error)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def _record(self, method: str, *args: object) -> None:
        self.calls.append(Call(self.clock.now(), method, args))
        queued = self._failures.get(method)
        if queued:
            raise queued.pop(0)


class SimCluster(Recorder):
    """ClusterSource + Actuator."""

    def __init__(self, world: World, clock: SimClock) -> None:
        super().__init__(clock)
        self.world = world

    async def snapshot(self) -> ClusterView:
        self._record("snapshot")
        return self.world.snapshot(self.clock.now())

    def staleness_s(self) -> float:
        return 0.0  # the simulated view is always the world's current state

    async def pods_on(self, node: str) -> tuple[BoundPod, ...]:
        """What the API server would list: the world's own record, never a cached view."""
        self._record("pods_on", node)
        return self.world.pods_on(node)

    async def pin(self, pod: PodSpec, pool: str) -> None:
        self._record("pin", pod.key, pool)
        self.world.pin(pod.key, pool, self.clock.now())

    async def annotate_node(self, node: str, key: str, value: str | None) -> None:
        self._record("annotate_node", node, key, value)
        self.world.annotate(node, key, value, self.clock.now())

    async def label_node(self, node: str, key: str, value: str) -> None:
        self._record("label_node", node, key, value)
        self.world.label(node, key, value, self.clock.now())

    async def record_event(self, pod: PodSpec, reason: str, message: str, *, warning: bool) -> None:
        self._record("record_event", pod.key, reason, message, warning)
        self.world.pod_event(pod.key, reason, self.clock.now())

    async def cordon(self, node: str) -> None:
        self._record("cordon", node)
        self.world.cordon(node, True, self.clock.now())

    async def uncordon(self, node: str) -> None:
        self._record("uncordon", node)
        self.world.cordon(node, False, self.clock.now())

    async def taint(self, node: str, taint: Taint) -> None:
        self._record("taint", node, taint)
        self.world.taint(node, taint, self.clock.now())

    async def untaint(self, node: str, key: str, effect: str | None = None) -> None:
        self._record("untaint", node, key, effect)
        self.world.taint(node, None, self.clock.now(), remove=key, effect=effect)

    async def evict(self, pod: PodSpec, *, grace_period_s: int | None = None) -> None:
        """No PodDisruptionBudgets in the simulator: an eviction always succeeds."""
        self._record("evict", pod.key)
        self.world.evict(pod.key, self.clock.now())


class SimFleet(Recorder):
    """Fleet + PriceSource: catalog prices (no live price feed in the simulator)."""

    def __init__(self, world: World, clock: SimClock, catalog: Catalog) -> None:
        super().__init__(clock)
        self.world = world
        self.catalog = catalog

    async def pools(self) -> Sequence[PoolSpec]:
        self._record("pools")
        return self.world.pool_views()

    async def set_desired(self, pool: str, desired: int) -> None:
        self._record("set_desired", pool, desired)
        self.world.set_desired(pool, desired, self.clock.now())

    async def cancel_unfulfilled(self, pool: str) -> None:
        self._record("cancel_unfulfilled", pool)
        self.world.cancel_unfulfilled(pool, self.clock.now())

    async def give_up(self, pool: str, count: int, keep: Collection[str]) -> int:
        self._record("give_up", pool, count)
        return self.world.give_up(pool, count, keep, self.clock.now())

    async def terminate(self, node: Node) -> None:
        self._record("terminate", node.name)
        self.world.terminate(node.name, self.clock.now())

    async def launch_failures(self, since_s: float) -> Sequence[LaunchFailure]:
        self._record("launch_failures", since_s)
        return self.world.failures_since(since_s)

    async def describe_types(self, names: Sequence[str]) -> Sequence[InstanceType]:
        """The catalog's specs; unknown names are left out, as DescribeInstanceTypes does."""
        self._record("describe_types", tuple(names))
        return [self.catalog[n] for n in dict.fromkeys(names) if n in self.catalog]

    async def complete_lifecycle(self, hook: LifecycleHook) -> None:
        self._record("complete_lifecycle", hook)

    async def prices(self) -> Prices:
        self._record("prices")
        return _NO_LIVE_PRICES


_NO_LIVE_PRICES = Prices()
