"""The admission chooser's headroom cache: kept across ticks, looked at again only where a
pool changed, always equal to :func:`headroom_of` over the pools just read."""

from __future__ import annotations

import dataclasses

import anyio
import numpy as np

from scaler.core.catalog import Catalog
from scaler.core.memory import Memory
from scaler.core.model import SPOT, PodSpec, PoolSpec, Resources
from scaler.core.offerings import Offerings, PoolTable, build_offerings, pool_table
from scaler.core.runtime import RuntimeRecorder
from scaler.core.settings import preset
from scaler.loop.admission import HeadroomCache, choose_pin, headroom_of, make_chooser


def pools() -> tuple[PoolSpec, ...]:
    return (
        PoolSpec("small", ("m5.large",), max_size=10, current_size=2),
        PoolSpec("big", ("m5.4xlarge",), max_size=4, current_size=1),
        PoolSpec("free", ("c5.large",), max_size=None, current_size=3),
    )


def offerings(of: tuple[PoolSpec, ...]) -> Offerings:
    built, problems = build_offerings(of, Catalog.load())
    assert not problems
    return built


def resized(of: tuple[PoolSpec, ...], k: int, **sizes: int | None) -> tuple[PoolSpec, ...]:
    return (*of[:k], dataclasses.replace(of[k], **sizes), *of[k + 1:])  # type: ignore[arg-type]


def test_a_resized_pool_changes_its_headroom_and_only_its_own() -> None:
    first = pools()
    built = offerings(first)
    cache = HeadroomCache()
    before = cache.headroom_for(first, built)
    np.testing.assert_array_equal(before, headroom_of(first, built))
    second = resized(first, 1, current_size=4)  # big at its max: no headroom left
    got = cache.headroom_for(list(second), built)
    np.testing.assert_array_equal(got, headroom_of(second, built))
    assert got[built.index("big")] == 0.0
    # The answer handed out for the first pools is not written over.
    np.testing.assert_array_equal(before, headroom_of(first, built))
    # A max size dropped: no limit any more.
    third = resized(second, 0, max_size=None)
    np.testing.assert_array_equal(cache.headroom_for(third, built), headroom_of(third, built))
    assert cache.headroom_for(third, built)[built.index("small")] == np.inf


def test_a_pool_replaced_by_another_name_or_gone_is_read_again_in_full() -> None:
    first = pools()
    built = offerings(first)
    cache = HeadroomCache()
    cache.headroom_for(resized(first, 1, current_size=4), built)
    # "big" gone and another pool in its place: the offerings' own copy of "big" counts
    # (its size as when they were built), not its size as last read.
    other = (first[0], PoolSpec("other", ("m5.xlarge",), max_size=1, current_size=0), first[2])
    np.testing.assert_array_equal(cache.headroom_for(other, built), headroom_of(other, built))
    assert cache.headroom_for(other, built)[built.index("big")] == 3.0
    shorter = (dataclasses.replace(first[0], current_size=9), first[2])
    np.testing.assert_array_equal(cache.headroom_for(shorter, built), headroom_of(shorter, built))


def test_pools_read_twice_under_one_name_give_headroom_of_s_answer() -> None:
    first = pools()
    built = offerings(first)
    twice = (first[0], dataclasses.replace(first[0], current_size=5), first[1])
    cache = HeadroomCache()
    cache.headroom_for(twice, built)
    # The first of the two changes; the second, unchanged, still decides (last one read).
    again = (dataclasses.replace(first[0], current_size=0), twice[1], twice[2])
    np.testing.assert_array_equal(cache.headroom_for(again, built), headroom_of(again, built))
    assert cache.headroom_for(again, built)[built.index("small")] == 5.0


def test_other_offerings_start_over() -> None:
    first = pools()
    cache = HeadroomCache()
    cache.headroom_for(first, offerings(first))
    fewer = first[:2]
    rebuilt = offerings(fewer)
    second = resized(first, 0, current_size=7)
    np.testing.assert_array_equal(cache.headroom_for(second, rebuilt),
                                  headroom_of(second, rebuilt))


class Source:
    """What choose_pin reads from the reconciler; ``table_seen`` as the reconciler has it."""

    def __init__(self, built: Offerings, seen: tuple[PoolSpec, ...],
                 table: PoolTable | None) -> None:
        self.settings = preset("scaler")
        self.memory = Memory()
        self.clock = Clock()
        self.offerings, self.pools_seen, self.table_seen = built, seen, table

    async def offerings_now(self) -> Offerings:
        return self.offerings


class Clock:
    def now(self) -> float:
        return 0.0


def pin(source: Source, cache: HeadroomCache) -> tuple[str, ...]:
    pod = PodSpec("nb", requests=Resources(cpu_milli=500, memory_mib=1024, pods=1))
    return tuple(anyio.run(lambda: choose_pin(source, pod, cache=cache)))


def test_the_chooser_takes_the_ticks_table_of_the_pools_seen_and_no_other() -> None:
    first = pools()
    built = offerings(first)
    full = tuple(dataclasses.replace(p, current_size=p.max_size) if p.name == "small" else p
                 for p in first)  # small at its max size: not in any tier
    assert "small" in pin(Source(built, first, pool_table(first, built)), HeadroomCache())
    # The tick's table of the pools seen is what the chooser reads (its cache is not).
    cache = HeadroomCache()
    assert "small" not in pin(Source(built, full, pool_table(full, built)), cache)
    assert cache.pools is None
    # A table of other pools (a respond() that read them again) is not used.
    cache = HeadroomCache()
    assert "small" not in pin(Source(built, full, pool_table(first, built)), cache)
    assert cache.pools is full


def test_one_chooser_answers_again_once_the_pods_workload_has_a_finished_run() -> None:
    # flaky (c7i.large Spot, 0.25 interruptions a month) at $0.100/h, steady (c5.large Spot,
    # 0.025) at $0.120/h: with nothing known of the Job, flaky is cheaper; once a run of it
    # lasted 2,000 h, 1,000 h are at stake and steady is.
    spot = (PoolSpec("flaky", ("c7i.large",), SPOT, price_usd_per_hour=0.100),
            PoolSpec("steady", ("c5.large",), SPOT, price_usd_per_hour=0.120))
    built = offerings(spot)
    recorder = RuntimeRecorder()
    choose = make_chooser(Source(built, spot, None), recorder.history)
    train = PodSpec("train-x7b2k", requests=Resources(cpu_milli=500, memory_mib=1024, pods=1))
    assert anyio.run(choose, train) == ("flaky", "steady")
    recorder.record(PodSpec("train-bbbbb"), 2000 * 3600.0)
    assert anyio.run(choose, train) == ("steady", "flaky")
