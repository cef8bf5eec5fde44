"""What the simulated world answers the ports, kept between calls and rebuilt only where
something changed: each answer must still be the world's current state."""

from __future__ import annotations

from simulations.testing import pool
from tests.simulations.test_kubesched import world


def test_the_fleet_hands_back_the_same_pool_values_until_a_size_changes() -> None:
    # The offerings cache finds changed pools by identity; every size must still be current.
    w = world([], [pool("m5.large", current_size=1), pool("c5.large")])
    first = w.pool_views()
    assert w.pool_views() is first
    assert [(p.name, p.current_size) for p in first] == [("m5.large", 1), ("c5.large", 0)]

    w.set_desired("c5.large", 2, 1.0)
    second = w.pool_views()
    assert [p.current_size for p in second] == [1, 2]
    assert second[0] is first[0]
    w.set_desired("c5.large", 2, 2.0)  # the size it has: nothing changes
    assert w.pool_views() is second

    c5 = next(n for n in w.nodes.values() if n.pool == "c5.large")
    w.terminate(c5.name, 3.0)
    assert [p.current_size for p in w.pool_views()] == [1, 1]
    w.set_desired("c5.large", 2, 4.0)
    assert [p.current_size for p in w.pool_views()] == [1, 2]
    w.set_desired("m5.large", 0, 5.0)
    assert [p.current_size for p in w.pool_views()] == [0, 2]
    assert w.pool_views()[1] is second[1]
