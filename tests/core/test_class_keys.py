"""Keys and fitting pools kept between decisions: they answer as if worked out afresh."""

from __future__ import annotations

import numpy as np
import pytest

from scaler.core import classkeys
from scaler.core.model import PodSpec
from scaler.core.offerings import Offerings
from scaler.core.placement import cost_matrix, fitting_pools, group_pods
from scaler.core.settings import PlacementSettings
from tests.core.test_placement import GIB, offer, on_demand_pools, pod, pool


def test_equal_pods_share_one_interned_key_and_unequal_ones_do_not() -> None:
    a, b, c = pod("a", cpu=500), pod("b", cpu=500), pod("c", cpu=900)
    assert classkeys.class_key(a) is classkeys.class_key(b)
    assert classkeys.row_key(a) is classkeys.row_key(b)
    assert classkeys.class_key(a) != classkeys.class_key(c)
    # A key is the plain tuple to every dict: equal, and hashing the same.
    assert classkeys.class_key(a) == a.constraints()
    assert hash(classkeys.class_key(a)) == hash(a.constraints())
    assert hash(classkeys.row_key(a)) == hash((a.constraints(), a.one_per_node))


def test_an_entry_kept_for_another_object_under_the_same_id_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An id can be reused once its object is gone: the entry must be for this very pod."""
    small, big = pod("small", cpu=500), pod("big", cpu=3000, mem=8 * GIB)
    classkeys.keys(small)
    # What a reused id would look like: big's id leading to small's entry.
    monkeypatch.setitem(classkeys._by_pod, id(big), classkeys._by_pod[id(small)])
    assert classkeys.class_key(big) == big.constraints()
    assert [len(c) for c in group_pods([small, big])] == [1, 1]


def test_priority_and_topology_set_a_class_apart_but_not_a_row() -> None:
    plain, urgent = pod("a", cpu=500), pod("b", cpu=500, priority=10)
    assert classkeys.class_key(plain) != classkeys.class_key(urgent)
    assert classkeys.row_key(plain) is classkeys.row_key(urgent)
    solo = pod("c", cpu=500, one_per_node=True)
    assert classkeys.row_key(solo) != classkeys.row_key(plain)


def _fitting_afresh(pods: list[PodSpec], offerings: Offerings,
                    settings: PlacementSettings) -> set[str]:
    reps = [c[0] for c in group_pods(pods)]
    req = np.array([p.requests.as_array() for p in reps]).reshape(len(reps), -1)
    matrix, _ = cost_matrix(reps, req, offerings, np.ones(len(offerings), bool), settings)
    return {offerings.pools[i].name for i in np.flatnonzero(np.isfinite(matrix).any(axis=0))}


def test_fitting_pools_are_those_some_pod_fits_on_each_offerings_asked() -> None:
    settings = PlacementSettings()
    small, big, gpu = pod("s", cpu=500), pod("b", cpu=3000, mem=20 * GIB), pod("g", gpu=1)
    first = offer(on_demand_pools(), settings)
    for pods in ([small], [big], [small, big], [gpu, small], [big, big]):
        assert set(fitting_pools(pods, first, settings)) == _fitting_afresh(pods, first, settings)
    # Other offerings, other names, the same pods: the names asked before are not reused.
    renamed = offer([pool(p.instance_types[0], name=f"{p.name}-new") for p in first.pools],
                    settings)
    for pods in ([small], [big], [small, big]):
        got = set(fitting_pools(pods, renamed, settings))
        assert got == _fitting_afresh(pods, renamed, settings)
        assert all(name.endswith("-new") for name in got)


def test_a_class_keeps_its_key_object_when_the_pods_table_starts_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kept cost rows are found by the key object itself (identity, then a field-by-field
    comparison): a pod seen after the pods' table was cleared must get the same object."""
    monkeypatch.setattr(classkeys, "KEPT", 2)
    first = classkeys.row_key(pod("a", cpu=700))
    for i in range(5):  # past KEPT pods: the pods' table starts afresh
        classkeys.keys(pod(f"x{i}", cpu=100 + i))
    assert classkeys.row_key(pod("b", cpu=700)) is first
    assert classkeys.class_key(pod("c", cpu=700)) is classkeys.class_key(pod("d", cpu=700))
