"""The reconciler's lock: exclusive, handed to waiters in order, and never lost or doubled
by a waiter cancelled before or after it was handed the lock."""

from __future__ import annotations

import anyio

from scaler.loop.ticklock import TickLock


def test_waiters_get_the_lock_one_at_a_time_in_arrival_order() -> None:
    lock = TickLock()
    inside: list[str] = []
    order: list[str] = []

    async def worker(name: str) -> None:
        async with lock:
            inside.append(name)
            assert len(inside) == 1, inside
            order.append(name)
            await anyio.sleep(0.001)
            inside.remove(name)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for name in "abcd":
                tg.start_soon(worker, name)
                await anyio.sleep(0)  # each reaches the lock before the next starts

    anyio.run(main)
    assert order == list("abcd")
    assert not lock.locked


def test_a_free_lock_is_taken_without_a_checkpoint() -> None:
    lock = TickLock()
    order: list[str] = []

    async def main() -> None:
        async def other() -> None:
            order.append("other")

        async with anyio.create_task_group() as tg:
            tg.start_soon(other)
            async with lock:
                order.append("held")
            order.append("released")

    anyio.run(main)
    assert order == ["held", "released", "other"]


def test_a_waiter_cancelled_while_waiting_leaves_the_queue() -> None:
    lock = TickLock()
    got: list[str] = []

    async def main() -> None:
        async with lock:
            with anyio.move_on_after(0.01) as scope:
                async with lock:
                    got.append("never")  # pragma: no cover - the lock is held throughout
            assert scope.cancelled_caught
        async with lock:  # released with no waiter left: free again
            got.append("after")

    anyio.run(main)
    assert got == ["after"]
    assert not lock.locked


def test_a_waiter_cancelled_after_being_handed_the_lock_hands_it_on() -> None:
    lock = TickLock()
    got: list[str] = []

    async def main() -> None:
        with anyio.fail_after(5):  # a lock lost with ``first`` would leave ``second`` waiting
            await handed_on()

    async def handed_on() -> None:
        async with anyio.create_task_group() as tg:
            await lock.__aenter__()
            scope = anyio.CancelScope()

            async def first() -> None:
                with scope:
                    async with lock:
                        got.append("first")  # pragma: no cover - cancelled before it runs

            async def second() -> None:
                async with lock:
                    got.append("second")

            tg.start_soon(first)
            await anyio.sleep(0)
            tg.start_soon(second)
            await anyio.sleep(0)
            scope.cancel()  # ``first`` is cancelled, but has not run since...
            await lock.__aexit__(None, None, None)  # ...it is handed the lock
        assert not lock.locked

    anyio.run(main)
    assert got == ["second"]


def test_many_tasks_never_hold_it_at_once() -> None:
    lock = TickLock()
    held = 0
    peak = 0

    async def worker() -> None:
        nonlocal held, peak
        for _ in range(20):
            async with lock:
                held += 1
                peak = max(peak, held)
                await anyio.sleep(0)
                held -= 1

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(worker)

    anyio.run(main)
    assert peak == 1
    assert not lock.locked


def test_take_now_takes_a_free_lock_and_leaves_a_held_one_to_take() -> None:
    lock = TickLock()
    got: list[str] = []

    async def waiter() -> None:
        await lock.take()  # held: waits to be handed it
        got.append("waiter")
        lock.release()

    async def main() -> None:
        assert lock.take_now()
        assert lock.locked and not lock.take_now()  # held: not taken twice
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0)
            got.append("holder")
            lock.release()  # handed to the waiter, never free in between
            assert lock.locked and not lock.take_now()

    anyio.run(main)
    assert got == ["holder", "waiter"]
    assert not lock.locked and lock.take_now()
