"""The reconciler's offerings cache: offerings kept across a size change, rebuilt when a
shape or a price changes; the pool table always that of the pools just read."""

from __future__ import annotations

import dataclasses

import anyio
import numpy as np

from scaler.core.catalog import Catalog
from scaler.core.model import ON_DEMAND, PodSpec, PoolSpec, Resources
from scaler.core.offerings import Prices
from scaler.core.settings import preset
from scaler.loop.offerings_cache import OfferingsCache


class Clock:
    def now(self) -> float:
        return 0.0


class PriceBook:
    def __init__(self) -> None:
        self.current = Prices()

    async def prices(self) -> Prices:
        return self.current


def pools(small: int = 0, big: int = 0) -> tuple[PoolSpec, ...]:
    return (
        PoolSpec("small", ("m5.large",), max_size=10, current_size=small),
        PoolSpec("big", ("m5.4xlarge",), max_size=10, current_size=big),
    )


def cache(book: PriceBook | None = None) -> OfferingsCache:
    return OfferingsCache(Catalog.load(), preset("scaler"), Clock(), book,
                          lambda event, fields: None)


def test_a_size_change_keeps_the_offerings_and_updates_the_table() -> None:
    async def main() -> None:
        c = cache()
        first = pools(small=1)
        t1 = await c.table_for(first)
        assert await c.table_for(first) is t1
        second = (dataclasses.replace(first[0], current_size=4), first[1])
        t2 = await c.table_for(second)
        assert t2.offerings is t1.offerings
        assert t2.by_name["small"].current_size == 4
        i = t2.offerings.index("small")
        assert t2.headroom[i] == 6.0 and t1.headroom[i] == 9.0

    anyio.run(main)


def test_a_shape_change_rebuilds_the_offerings() -> None:
    async def main() -> None:
        c = cache()
        first = pools()
        t1 = await c.table_for(first)
        retyped = (dataclasses.replace(first[0], instance_types=("m5.xlarge",)), first[1])
        t2 = await c.table_for(retyped)
        assert t2.offerings is not t1.offerings
        assert t2.offerings.instance_type[t2.offerings.index("small")] == "m5.xlarge"

    anyio.run(main)


def test_new_prices_rebuild_the_offerings() -> None:
    async def main() -> None:
        book = PriceBook()
        c = cache(book)
        ps = pools()
        t1 = await c.table_for(ps)
        book.current = Prices({("m5.large", ON_DEMAND): 0.01})
        t2 = await c.table_for(ps)
        assert t2.offerings is not t1.offerings
        assert t2.offerings.price[t2.offerings.index("small")] == 0.01

    anyio.run(main)


def test_the_table_is_of_the_pools_just_read_after_another_set_was_tabled() -> None:
    # respond() tables the pools it read itself; the next tick's diff must not be taken
    # against the pools the cache read before that.
    async def main() -> None:
        c = cache()
        first = pools(small=1)
        t1 = await c.table_for(first)
        other = (first[0], dataclasses.replace(first[1], current_size=2))
        c.table(other, t1.offerings)
        third = (dataclasses.replace(first[0], current_size=5), first[1])
        t3 = await c.table_for(third)
        assert t3.by_name["small"].current_size == 5
        assert t3.by_name["big"].current_size == 0
        assert list(t3.sized_by_name) == ["small"]
        assert np.array_equal(t3.headroom[[t3.offerings.index("small"), t3.offerings.index("big")]],
                              [5.0, 10.0])

    anyio.run(main)


def test_pools_resized_here_are_looked_for_where_they_now_are() -> None:
    """After a write the cache guesses where the pool changed by its name; the names'
    places follow the pools as read (a fleet may list them in another order), and the
    table is that of the pools read, whatever was guessed."""

    async def main() -> None:
        c = cache()
        first = pools(small=1, big=1)
        await c.table_for(first)
        c.resized(["big"])
        assert c._likely(first) == [1]
        swapped = (first[1], first[0])
        assert c._likely(swapped) == [0]  # the places are looked up again
        c.resized(["small", "gone"])
        grown = (dataclasses.replace(swapped[0], current_size=3), swapped[1])
        table = await c.table_for(grown)
        assert table.by_name["big"].current_size == 3
        assert table.headroom[table.offerings.index("big")] == 7.0
        assert c._likely(grown) == []  # a read uses the guesses up

    anyio.run(main)


def test_the_same_pools_read_again_keep_their_table_until_the_daemonsets_change() -> None:
    async def main() -> None:
        c = cache(PriceBook())  # the same prices object read after read
        ps = pools(small=1)
        t1 = await c.table_for(ps)
        assert await c.table_for(ps) is t1
        agent = (PodSpec("agent", requests=Resources(cpu_milli=1000, memory_mib=512, pods=1)),)
        t2 = await c.table_for(ps, agent)
        assert t2.offerings is not t1.offerings
        i = t1.offerings.index("small")
        assert t2.offerings.allocatable[i, 0] == t1.offerings.allocatable[i, 0] - 1000
        assert await c.table_for(ps, agent) is t2

    anyio.run(main)


def test_the_same_pools_read_again_after_another_set_was_tabled_get_their_own_table() -> None:
    async def main() -> None:
        c = cache(PriceBook())
        first = pools(small=1)
        t1 = await c.table_for(first)
        other = (first[0], dataclasses.replace(first[1], current_size=2))
        c.table(other, t1.offerings)
        again = await c.table_for(first)
        assert again.pools is first
        assert again.by_name["big"].current_size == 0
        assert list(again.sized_by_name) == ["small"]

    anyio.run(main)



def test_each_read_is_compared_with_the_pools_read_just_before_it() -> None:
    """The cache keeps a list of the pools it compared last, to compare the next read with
    (no copy of them per read). A read it did not compare (another number of pools) leaves
    that list behind: the next read must be compared with the pools read just before it,
    or a pool going back to its value of two reads ago would look unchanged."""

    async def main() -> None:
        c = cache()
        first = pools(small=3, big=1)
        second = (first[0], dataclasses.replace(first[1], current_size=2))
        extra = PoolSpec("extra", ("m5.xlarge",), max_size=10)
        later = (dataclasses.replace(first[0], current_size=5), second[1])
        back = (first[0], second[1])  # "small" as in the first two reads
        for read in [first, second, (*second, extra), later, back, later, back]:
            table = await c.table_for(read)
            assert table.by_name == {p.name: p for p in read}
            assert {name: p.current_size for name, p in table.sized_by_name.items()} == {
                p.name: p.current_size for p in read if p.current_size > 0
            }
            for p in read:
                assert table.headroom[table.offerings.index(p.name)] == 10 - p.current_size

    anyio.run(main)


def test_callers_that_find_the_offerings_old_at_once_share_one_refresh() -> None:
    async def main() -> None:
        c = cache()
        reads = 0
        gate = anyio.Event()

        async def read() -> tuple[PoolSpec, ...]:
            nonlocal reads
            reads += 1
            await gate.wait()  # the first refresh is still reading the pools
            return pools(small=1)

        got: list[object] = []

        async def ask() -> None:
            got.append(await c.now(read, max_age_s=60.0))

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            gate.set()
        assert reads == 1
        assert len(got) == 3 and got[0] is got[1] is got[2] is c.offerings

    anyio.run(main)


def test_a_pool_going_back_and_forth_between_two_shapes_rebuilds_the_offerings_each_time() -> None:
    # The shapes taken are kept per pool value: each value is judged by its own.
    async def main() -> None:
        c = cache()
        first = pools(small=1)
        retyped = (dataclasses.replace(first[0], instance_types=("m5.xlarge",)), first[1])
        resized = (dataclasses.replace(retyped[0], current_size=2), first[1])
        for read, kind in [(first, "m5.large"), (retyped, "m5.xlarge"), (first, "m5.large"),
                           (resized, "m5.xlarge"), (first, "m5.large")]:
            before = c.offerings
            table = await c.table_for(read)
            assert table.offerings is not before
            assert table.offerings.instance_type[table.offerings.index("small")] == kind
        # A size change alone keeps them.
        again = (dataclasses.replace(first[0], current_size=3), first[1])
        assert (await c.table_for(again)).offerings is c.offerings is table.offerings

    anyio.run(main)


def test_the_fleets_account_of_what_changed_is_taken_and_none_means_compare() -> None:
    """With the fleet's own account of the places that changed between two reads
    (``Fleet.changed``), the table is updated there without comparing the pools; where it
    has none, the pools are compared as without one."""
    asked: list[tuple[object, object]] = []
    answer: list[int] | None = None

    def changes(before: object, now: object) -> list[int] | None:
        asked.append((before, now))
        return answer

    async def main() -> None:
        nonlocal answer
        c = OfferingsCache(Catalog.load(), preset("scaler"), Clock(), None,
                           lambda event, fields: None, changes=changes)
        first = pools(small=1)
        await c.table_for(first)
        second = (first[0], dataclasses.replace(first[1], current_size=3))
        answer = [1]
        t2 = await c.table_for(second)
        assert asked == [(first, second)]
        assert t2.by_name["big"].current_size == 3 and list(t2.sized_by_name) == ["small", "big"]
        third = (dataclasses.replace(first[0], current_size=2), second[1])
        answer = None  # no account: compared, and the change found
        t3 = await c.table_for(third)
        assert asked[-1] == (second, third)
        assert t3.by_name["small"].current_size == 2
        assert t3.headroom[t3.offerings.index("small")] == 8.0

    anyio.run(main)
