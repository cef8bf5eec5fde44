"""What acting taught, absorbed into memory: the rules, without any port."""

from __future__ import annotations

import typing

import pytest

from scaler.core.actions import ScaleUp
from scaler.core.memory import (
    BatchClosed,
    Evicted,
    Forgotten,
    GaveUp,
    IdleMarked,
    Interrupted,
    Launch,
    Launched,
    LaunchFailureSeen,
    Memory,
    Outcome,
    RebalanceCordoned,
    Removed,
    SpotWarned,
    Uncordoned,
    WriteFailed,
    absorb,
)
from scaler.core.settings import Settings
from scaler.core.state import LaunchFailure

SETTINGS = Settings()
UP = SETTINGS.scale_up


def up(pool: str = "cpu", count: int = 2, pods: tuple[str, ...] = ("ns/a", "ns/b")) -> ScaleUp:
    return ScaleUp(pool, count, pods, "m5.large", 0.096, "cheapest fit")


def test_a_launch_is_remembered_with_its_provision_timeout_and_clears_failed_writes():
    memory = Memory(write_failures={"cpu": 2})
    backed_off = absorb(memory, Launched(up()), SETTINGS, now=100.0)
    assert not backed_off
    assert memory.launches == [
        Launch("cpu", 2, frozenset({"ns/a", "ns/b"}), 100.0, 100.0 + UP.provision_timeout_s)
    ]
    assert memory.last_scale_up_s == 100.0
    assert memory.write_failures == {}


def test_a_refused_write_backs_the_pool_off_at_once_with_its_reason():
    memory = Memory()
    assert absorb(memory, WriteFailed("cpu", "scale-up refused: denied", True), SETTINGS, now=10.0)
    assert memory.backoff_until_s == {"cpu": 10.0 + UP.launch_failure_ttl_s}
    assert memory.backoff_reason == {"cpu": "scale-up refused: denied"}


def test_transient_write_failures_back_off_only_after_enough_in_a_row():
    memory = Memory()
    failed = WriteFailed("cpu", "throttled", False)
    results = [
        absorb(memory, failed, SETTINGS, now=float(t))
        for t in range(UP.write_failures_before_backoff)
    ]
    assert results == [False] * (UP.write_failures_before_backoff - 1) + [True]
    assert memory.backing_off("cpu", float(UP.write_failures_before_backoff))
    assert memory.write_failures == {}


def test_a_launch_given_up_backs_off_and_forgets_the_pools_launches_so_far():
    memory = Memory()
    absorb(memory, Launched(up("cpu")), SETTINGS, now=0.0)
    absorb(memory, Launched(up("gpu", pods=("ns/g",))), SETTINGS, now=0.0)
    assert absorb(memory, GaveUp("cpu", "never registered"), SETTINGS, now=700.0)
    assert [launch.pool for launch in memory.launches] == ["gpu"]
    assert memory.backoff_until_s["cpu"] == 700.0 + UP.launch_failure_ttl_s
    assert memory.backoff_reason["cpu"] == "never registered"


def test_a_closed_batch_moves_the_floor_to_now():
    memory = Memory()
    absorb(memory, BatchClosed(), SETTINGS, now=42.0)
    assert memory.batch_floor_s == 42.0


def test_idle_marks_set_and_clear_the_nodes_timer():
    memory = Memory()
    absorb(memory, IdleMarked("n1", 5.0), SETTINGS, now=9.0)
    assert memory.idle_since_s == {"n1": 5.0}
    absorb(memory, IdleMarked("n1", None), SETTINGS, now=10.0)
    assert memory.idle_since_s == {}


def test_an_uncordon_ends_the_rebalance_watch_and_a_forget_drops_the_node():
    memory = Memory(idle_since_s={"n1": 1.0, "n2": 2.0}, rebalance_until_s={"n1": 9.0, "n2": 9.0})
    absorb(memory, Uncordoned("n1"), SETTINGS, now=3.0)
    assert memory.rebalance_until_s == {"n2": 9.0} and memory.idle_since_s == {"n1": 1.0, "n2": 2.0}
    absorb(memory, Forgotten("n2"), SETTINGS, now=3.0)
    assert memory.rebalance_until_s == {} and memory.idle_since_s == {"n1": 1.0}


def test_a_terminating_drain_marks_the_node_interrupted_until_its_deadline():
    memory = Memory()
    absorb(memory, Interrupted("n1", 120.0), SETTINGS, now=0.0)
    assert memory.interrupted == {"n1": 120.0}


def test_an_eviction_counts_against_the_budget_and_remembers_the_pool_left():
    memory = Memory()
    absorb(memory, Evicted("ns/web", "big"), SETTINGS, now=50.0)
    absorb(memory, Evicted("ns/job", None), SETTINGS, now=51.0)
    assert list(memory.migrations_s) == [50.0, 51.0]
    assert memory.migrated == {"ns/web": (50.0, "big")}


def test_a_terminated_node_counts_as_a_removal_one_already_going_only_drops_its_timer():
    memory = Memory(idle_since_s={"n1": 0.0, "n2": 0.0})
    absorb(memory, Removed("n1", terminated=True), SETTINGS, now=600.0)
    absorb(memory, Removed("n2", terminated=False), SETTINGS, now=601.0)
    assert memory.idle_since_s == {}
    assert list(memory.removals_s) == [600.0]


@pytest.mark.parametrize("kind", typing.get_args(Outcome))
def test_which_outcomes_back_a_pool_off_and_which_say_so(kind):
    examples: dict[type, Outcome] = {
        BatchClosed: BatchClosed(), Launched: Launched(up()),
        WriteFailed: WriteFailed("cpu", "refused", True), GaveUp: GaveUp("cpu", "late"),
        IdleMarked: IdleMarked("n", 1.0), Uncordoned: Uncordoned("n"),
        Forgotten: Forgotten("n"), Interrupted: Interrupted("n", 1.0),
        Evicted: Evicted("ns/w", "cpu"), Removed: Removed("n", True),
        LaunchFailureSeen: LaunchFailureSeen(LaunchFailure("cpu", 1.0, "no capacity")),
        SpotWarned: SpotWarned("n", "cpu", 120.0, {}),
        RebalanceCordoned: RebalanceCordoned("n"),
    }
    memory = Memory()
    backed_off = absorb(memory, examples[kind], SETTINGS, now=1.0)
    assert backed_off == (kind in (WriteFailed, GaveUp))
    # A failed launch and a Spot warning back the pool off too, but decide nothing now:
    # they come from the cloud, not from a write this decision made.
    assert memory.backing_off("cpu", 1.0) == (
        kind in (WriteFailed, GaveUp, LaunchFailureSeen, SpotWarned)
    )


def test_a_listed_launch_failure_backs_off_from_when_it_failed_and_drops_earlier_launches():
    memory = Memory()
    absorb(memory, Launched(up("cpu")), SETTINGS, now=10.0)
    absorb(memory, Launched(up("cpu", pods=("ns/z",))), SETTINGS, now=30.0)
    absorb(memory, LaunchFailureSeen(LaunchFailure("cpu", 20.0, "no capacity")), SETTINGS,
           now=40.0)
    assert memory.backoff_until_s == {"cpu": 20.0 + UP.launch_failure_ttl_s}
    assert [launch.at_s for launch in memory.launches] == [30.0]
    assert memory.failures_seen_s == 20.0


def test_a_spot_warning_marks_the_node_and_backs_its_pool_off_as_reclaimed():
    lc = SETTINGS.lifecycle
    memory = Memory(rebalance_until_s={"n1": 99.0})
    absorb(memory, SpotWarned("n1", "spot", 220.0, {"ns/train": 3600.0}), SETTINGS, now=100.0)
    assert memory.interrupted == {"n1": 220.0}
    assert memory.rebalance_until_s == {}
    assert memory.reclaim_only("spot", 100.0)
    assert memory.backoff_until_s["spot"] == 100.0 + lc.interrupted_pool_ttl_s
    assert memory.expected_life_s == {"ns/train": (100.0, 3600.0)}
    absorb(memory, SpotWarned("n2", None, 220.0, {}), SETTINGS, now=100.0)
    assert memory.interrupted == {"n1": 220.0, "n2": 220.0}


def test_a_rebalance_cordon_is_watched_for_the_rebalance_window():
    memory = Memory()
    absorb(memory, RebalanceCordoned("n1"), SETTINGS, now=5.0)
    assert memory.rebalance_until_s == {"n1": 5.0 + SETTINGS.lifecycle.rebalance_window_s}
