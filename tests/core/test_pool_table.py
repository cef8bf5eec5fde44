"""PoolTable.updated: a chain of updates answers what a table built afresh from the same pools
answers, and a table whose name tables and arrays moved on to a later one still answers for
its own pools."""

from __future__ import annotations

import dataclasses
import random

from scaler.core.catalog import Catalog
from scaler.core.model import PoolSpec
from scaler.core.offerings import PoolTable, build_offerings, pool_table

TYPES = ("m5.large", "m5.xlarge", "m5.2xlarge", "m5.4xlarge", "c5.large", "r5.large")


def _answers(table: PoolTable) -> tuple[object, ...]:
    return (
        table.by_name,
        table.sized_by_name,
        sorted(p.name for p in table.sized),
        table.headroom.tolist(),
        None if table.sizes is None else table.sizes.tolist(),
        table.room[0].tolist(),
        table.room[1],
    )


def _assert_same(table: PoolTable, pools: list[PoolSpec]) -> None:
    fresh = pool_table(pools, table.offerings)
    assert table.pools is pools
    # Dicts compare by content (not order): a chain of updates appends newly sized pools.
    assert _answers(table) == _answers(fresh)


def test_a_chain_of_updates_answers_as_a_fresh_table_and_old_tables_still_answer() -> None:
    rng = random.Random(12)
    pools = [
        PoolSpec(f"p{i}", (TYPES[i % len(TYPES)],), max_size=rng.choice([None, 5, 20]),
                 current_size=rng.randint(0, 3))
        for i in range(40)
    ]
    offerings = build_offerings(pools, Catalog.load())[0]
    table = pool_table(pools, offerings)
    history: list[tuple[PoolTable, list[PoolSpec]]] = [(table, pools)]
    for step in range(300):
        now = list(pools)
        for i in rng.sample(range(len(now)), rng.randint(0, 4)):
            top = now[i].max_size if now[i].max_size is not None else 30
            now[i] = dataclasses.replace(now[i], current_size=rng.randint(0, top))
        # Sometimes the caller knows the changed places, sometimes the table finds them.
        changed = [i for i in range(len(now)) if now[i] is not pools[i]]
        table = table.updated(now, changed if step % 2 else None)
        pools = now
        _assert_same(table, pools)
        history.append((table, pools))
        if rng.random() < 0.1:
            # An earlier table asked again (its tables moved on): its own pools' answers.
            old, old_pools = rng.choice(history)
            _assert_same(old, old_pools)


def test_an_old_table_asked_after_moving_on_answers_its_own_sizes() -> None:
    pools = [PoolSpec("small", ("m5.large",), max_size=10, current_size=2),
             PoolSpec("big", ("m5.4xlarge",), max_size=10, current_size=0)]
    offerings = build_offerings(pools, Catalog.load())[0]
    first = pool_table(pools, offerings)
    raised = [pools[0], dataclasses.replace(pools[1], current_size=4)]
    second = first.updated(raised)
    assert second.by_name["big"].current_size == 4
    assert set(second.sized_by_name) == {"small", "big"}
    big = offerings.get("big")
    assert big is not None
    assert second.sizes[big] == 4 and second.headroom[big] == 6
    assert first.by_name["big"].current_size == 0
    assert set(first.sized_by_name) == {"small"}
    # Its arrays moved on too (updated in place there): rebuilt from its own pools.
    assert first.sizes[big] == 0 and first.headroom[big] == 10
    # And the later table was not disturbed by the earlier one rebuilding its own.
    assert second.by_name["big"].current_size == 4
    assert second.sizes[big] == 4 and second.headroom[big] == 6
