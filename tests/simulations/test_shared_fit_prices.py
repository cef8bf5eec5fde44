"""Fit prices worked out once for the runs of one trace (simulations.scorecard)."""

from __future__ import annotations

import pytest

from scaler.core.catalog import Catalog
from simulations import scorecard
from simulations.scorecard import fit_prices, shared_fit_prices
from simulations.testing import pod, pool


def test_the_same_pods_pools_and_catalog_are_priced_once_and_anything_else_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def counting(*args: object) -> object:
        calls.append(1)
        return fit_prices(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(scorecard, "fit_prices", counting)
    monkeypatch.setattr(scorecard, "_kept_fit", None)
    catalog = Catalog.load()
    pools = (pool("m5.large"), pool("r5.2xlarge"))
    small = (pod("a", cpu="1"), pod("b", cpu="1"))
    fits, offerings = shared_fit_prices(small, pools, catalog)
    fits["default/a"] = -1.0  # a caller's dict is its own
    again, same = shared_fit_prices(small, pools, catalog)
    assert len(calls) == 1 and same is offerings
    assert again == {"default/a": pytest.approx(0.096), "default/b": pytest.approx(0.096)}

    # Other pods (equal names, another tuple), other pools, another catalog: priced afresh.
    big = (pod("a", cpu="4", memory="40Gi"), pod("b", cpu="1"))
    assert shared_fit_prices(big, pools, catalog)[0]["default/a"] == pytest.approx(0.504)
    assert shared_fit_prices(big, pools[1:], catalog)[0]["default/b"] == pytest.approx(0.504)
    assert len(calls) == 3
    shared_fit_prices(big, pools[1:], Catalog.load())
    assert len(calls) == 4
    # A list can change after the call: never kept.
    listed = list(small)
    shared_fit_prices(listed, pools, catalog)
    shared_fit_prices(listed, pools, catalog)
    assert len(calls) == 6
