"""The reconciler through the recording fake ports the simulator also uses."""

from __future__ import annotations

from typing import Any

from scaler.loop.actuation import WRITE_RETRY_S
from scaler.loop.reconciler import Reconciler
from scaler.ports import Throttled
from scaler.telemetry import DestructiveHeld
from simulations.testing import pod, pool, simulate


def test_a_failed_scale_up_write_is_retried_soon_not_at_the_next_event():
    def failing_once(**kwargs: Any) -> Reconciler:
        kwargs["fleet"].fail_next("set_desired", Throttled("Rate exceeded"))
        return Reconciler(**kwargs)

    sim = simulate(
        [pod("nb", memory="4Gi", arrival_s=0, duration_s=3600)],
        pools=[pool("m5.large", max_size=5)],
        reconciler_factory=failing_once,
    )
    calls = sim.fleet.calls_to("set_desired")
    assert len(calls) == 2, calls
    first, second = calls
    # The first write failed; with nothing else happening the next try comes WRITE_RETRY_S
    # later (the batch window put the first at 1 s).
    assert second.at_s - first.at_s == WRITE_RETRY_S
    assert sim.scorecard().pods_lost == 0


class _StaleBetween:
    """The simulator's cluster, reporting a cache older than any bound in [start_s, end_s)."""

    def __init__(self, cluster: Any, start_s: float, end_s: float) -> None:
        self._cluster, self._start_s, self._end_s = cluster, start_s, end_s

    async def snapshot(self) -> Any:
        return await self._cluster.snapshot()

    def staleness_s(self) -> float:
        return 1e6 if self._start_s <= self._cluster.clock.now() < self._end_s else 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)


def test_a_removal_waits_while_the_cluster_cache_is_too_old_and_goes_once_it_is_fresh():
    held: list[DestructiveHeld] = []

    def stale_for_a_while(**kwargs: Any) -> Reconciler:
        kwargs["cluster"] = _StaleBetween(kwargs["cluster"], 700.0, 1000.0)
        kwargs["observer"] = lambda e: held.append(e) if isinstance(e, DestructiveHeld) else None
        return Reconciler(**kwargs)

    def removals(factory: Any) -> list[float]:
        sim = simulate(
            [pod("nb", memory="4Gi", arrival_s=0, duration_s=600)],
            pools=[pool("m5.large", max_size=5)],
            overrides={"idle_timeout_s": "120"},
            until_s=2000,
            reconciler_factory=factory,
        )
        return [c.at_s for c in sim.fleet.calls_to("terminate")]

    (fresh,) = removals(lambda **kw: Reconciler(**kw))
    assert 700.0 <= fresh < 1000.0  # idle since the pod ended (~600 s) + 120 s
    (waited,) = removals(stale_for_a_while)
    # Held at every tick of the stale window, retried WRITE_RETRY_S later, done once fresh.
    assert 1000.0 <= waited <= 1000.0 + WRITE_RETRY_S
    assert held and {e.action for e in held} == {"RemoveNode"}


def test_an_empty_decision_writes_nothing_but_a_closed_batch_still_moves_the_floor():
    import anyio

    from scaler.core.actions import Decision

    sim = simulate(
        [pod("nb", memory="4Gi", arrival_s=0, duration_s=600)],
        pools=[pool("m5.large", max_size=5)],
        until_s=100,
    )
    rec = sim.reconciler
    calls = (len(sim.fleet.calls), len(sim.cluster.calls))

    async def act(decision: Decision) -> None:
        await rec.act(decision, await sim.cluster.snapshot(), rec.pools_seen)

    floor = rec.memory.batch_floor_s
    anyio.run(act, Decision(now_s=50.0))
    assert rec.memory.batch_floor_s == floor
    # The snapshot above is the one read; acting on nothing calls no port.
    assert (len(sim.fleet.calls), len(sim.cluster.calls) - 1) == calls
    # A decision whose only news is that the batch window closed is not "nothing".
    anyio.run(act, Decision(now_s=60.0, batch_closed=True))
    assert rec.memory.batch_floor_s == 60.0


def test_a_tick_over_ports_that_answer_at_once_takes_no_round_trip_through_the_event_loop():
    """The tick's lock, free, is taken without a checkpoint (the simulator ticks tens of
    thousands of times a run); held, it still makes the other side wait (respond's
    replacements)."""
    import anyio

    sim = simulate(
        [pod("nb", memory="4Gi", arrival_s=0, duration_s=600)],
        pools=[pool("m5.large", max_size=5)],
        until_s=100,
    )
    rec = sim.reconciler
    order: list[str] = []

    async def main() -> None:
        async def other() -> None:
            order.append("other task")

        async with anyio.create_task_group() as tg:
            tg.start_soon(other)
            await rec.tick()
            order.append("tick done")

    anyio.run(main)
    assert order == ["tick done", "other task"]

    async def contended() -> None:
        async with rec._lock:
            with anyio.move_on_after(0.05) as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(rec.tick)
            assert scope.cancelled_caught  # the tick waited for the lock

    anyio.run(contended)
