"""The status document and node Events as pure functions of what the loop observed: which
observation is which Event, when a write is due. (The live writes: tests/e2e/test_status_live.py.)"""

from __future__ import annotations

from scaler.adapters.kube.events import node_events
from scaler.adapters.kube.status import PoolHistory, StatusInputs, due, status_document
from scaler.core.actions import DrainCause, RemovalCause, ScaleUp
from scaler.core.model import PoolSpec
from scaler.core.offerings import PoolProblem
from scaler.telemetry import (
    Drained,
    NodeCordoned,
    NodeRemoved,
    RemoveFailed,
    Reviewed,
    ScaledUp,
)

T0 = 1_800_000_000.0


def inputs(now: float = T0, **kw: object) -> StatusInputs:
    base: dict[str, object] = dict(
        now_s=now, leader="pod-a", cluster_name="c",
        pools=[PoolSpec("cpu", ("m5.large",), current_size=3, max_size=10)],
        disabled=[PoolProblem("p3", "instance type p3.2xlarge unknown")],
        backoff_until_s={"cpu": T0 + 60}, backoff_reason={"cpu": "InsufficientInstanceCapacity"},
        history=PoolHistory(), last_tick_s=now - 1, last_decide_ms=2.0, pending_pods=4, nodes=7,
    )
    base.update(kw)
    return StatusInputs(**base)  # type: ignore[arg-type]


def test_a_pool_backs_off_until_its_deadline_then_is_ok_again():
    (cpu, p3) = status_document(inputs())["pools"]
    assert cpu["health"] == "backoff" and cpu["backoff_reason"] == "InsufficientInstanceCapacity"
    assert cpu["backoff_until"] == "2027-01-15T08:01:00Z" and cpu["size"] == 3
    assert p3 == {"name": "p3", "health": "disabled",
                  "disabled_reason": "instance type p3.2xlarge unknown",
                  "last_scale_up_at": None, "last_scale_down_at": None}
    (cpu, _) = status_document(inputs(now=T0 + 61))["pools"]
    assert cpu["health"] == "ok" and cpu["backoff_reason"] is None


def test_history_records_the_last_scale_up_and_down_per_pool():
    clock = iter([T0, T0 + 5])
    history = PoolHistory(clock=lambda: next(clock))
    history(ScaledUp(ScaleUp("cpu", 2, (), "m5.large", 0.096, "fits")))
    history(NodeRemoved("n1", "cpu", RemovalCause.IDLE, "idle"))
    history(Reviewed(1.0, 0, 0))
    (cpu, _) = status_document(inputs(history=history))["pools"]
    assert cpu["last_scale_up_at"] == "2027-01-15T08:00:00Z"
    assert cpu["last_scale_down_at"] == "2027-01-15T08:00:05Z"


def test_a_write_is_due_on_change_or_heartbeat_not_on_every_tick():
    first = status_document(inputs())
    assert due(None, None, first, now=T0, heartbeat_s=60)
    ticked = status_document(inputs(now=T0 + 10, last_tick_s=T0 + 9))
    assert not due(first, T0, ticked, now=T0 + 10, heartbeat_s=60)  # only timestamps moved
    assert due(first, T0, ticked, now=T0 + 60, heartbeat_s=60)  # heartbeat
    more = status_document(inputs(now=T0 + 10, pending_pods=5))
    assert due(first, T0, more, now=T0 + 10, heartbeat_s=60)


def test_observations_become_node_events():
    never = lambda node: False  # noqa: E731
    assert [e.reason for e in node_events(NodeCordoned("n1", "x"),
                                         interrupted=lambda n: n == "n1")] == [
        "Cordoned", "SpotInterruption"]
    assert [e.reason for e in node_events(NodeCordoned("n2", "rebalance"),
                                         interrupted=never)] == ["Cordoned"]
    (late,) = node_events(Drained("n1", 3, 2, False, 9.0, "r", DrainCause.SPOT_INTERRUPTION),
                          interrupted=never)
    assert late.reason == "DrainIncomplete" and late.warning and "evicted 2 of 3" in late.message
    (gone,) = node_events(NodeRemoved("n1", "cpu", RemovalCause.IDLE, "idle 130s",
                                      price_usd_per_hour=0.096), interrupted=never)
    assert gone.reason == "ScaleDown" and gone.message == (
        "scaler: terminating the instance (pool cpu, $0.0960/h): idle 130s")
    assert node_events(ScaledUp(ScaleUp("cpu", 1, (), "m5.large", 0.096, "fits")),
                       interrupted=never) == []
    assert node_events(RemoveFailed("n1", "boom"), interrupted=never)[0].reason == (
        "ScaleDownFailed")


def test_scaler_status_flags_a_status_no_leader_has_rewritten_for_three_minutes():
    from scaler.commands.status import _age

    assert _age("2027-01-15T08:00:00Z", now=T0 + 42) == " (42 s ago)"
    assert "stale" in _age("2027-01-15T08:00:00Z", now=T0 + 181)
    assert _age(None, now=T0) == ""


def test_plan_lists_pools_backing_off_with_reason_and_time_left():
    from scaler.commands.plan import as_json, backing_off
    from scaler.core.actions import Decision
    from scaler.core.memory import Memory

    memory = Memory(backoff_until_s={"cpu": T0 + 90, "old": T0 - 1},
                    backoff_reason={"cpu": "InsufficientInstanceCapacity", "old": "x"})
    skipped = backing_off(memory, T0)
    assert skipped == [{"pool": "cpu", "reason": "InsufficientInstanceCapacity", "left_s": 90}]
    assert as_json(Decision(now_s=T0), [], skipped)["backing_off_pools"] == skipped
