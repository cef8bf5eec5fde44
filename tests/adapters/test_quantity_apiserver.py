"""scaler reads every quantity the real API server admits, to the value the server stores.

A pod is created with an odd quantity as its request; the server stores its canonical form
(``500000u`` comes back as ``500m``). scaler's parser must never refuse a value the server
admitted, must read what came back as the server's value, and must size the request the
same from either. Pod requests are kept in whole milli-units (``1.5n`` comes back as ``1m``,
``0.000001Ki`` as ``2m``): the server rounds up, as scaler's CPU and byte counts do.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from scaler.core.quantity import cpu_milli, memory_mib, parse_request
from tests.fixtures.kube import KubeScope

ODD = [
    "500000u",
    "250000000n",
    "1e3",
    "1E3",
    "1e+3",
    "1E-3",
    "1.5Gi",
    ".5",
    "5.",
    "+1",
    "0.5e1",
    "1e-20",
    "1.5n",
    "1e100",
    "16Ei",
    "12E",
    "3k",
    "0.000001Ki",
]

_count = 0


def _round_trip(kube_ns: KubeScope, quantity: str) -> str | None:
    """Create a pod asking ``quantity`` of cpu and memory; the memory request the server
    stored, or None when the server refuses the quantity."""
    global _count
    _count += 1
    try:
        pod = kube_ns.make_pod(f"q-{_count}", requests={"cpu": quantity, "memory": quantity})
    except ApiException as e:
        assert e.status in (400, 422), e
        return None
    stored: dict[str, Any] = pod.spec.containers[0].resources.requests
    assert stored["cpu"] == stored["memory"]
    return str(stored["memory"])


def _same(sent: str, stored: str) -> None:
    in_milli = Fraction(math.ceil(parse_request(sent) * 1000), 1000)
    assert parse_request(stored) == in_milli, (sent, stored)
    assert cpu_milli(sent) == cpu_milli(stored)
    assert memory_mib(sent) == memory_mib(stored)


@pytest.mark.kube
@pytest.mark.parametrize("quantity", ODD)
def test_odd_quantities_parse_to_what_the_api_server_stores(kube_ns: KubeScope, quantity: str):
    stored = _round_trip(kube_ns, quantity)
    assert stored is not None, f"the API server refused {quantity}"
    _same(quantity, stored)


_number = st.one_of(
    st.from_regex(r"[0-9]{1,6}", fullmatch=True),
    st.from_regex(r"[0-9]{0,4}\.[0-9]{1,4}", fullmatch=True),
    st.from_regex(r"[0-9]{1,4}\.", fullmatch=True),
)
_suffix = st.one_of(
    st.sampled_from(["", "n", "u", "m", "k", "M", "G", "T", "P", "E"]),
    st.sampled_from(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]),
    st.tuples(st.sampled_from("eE"), st.sampled_from(["", "+", "-"]), st.integers(0, 30)).map(
        lambda t: f"{t[0]}{t[1]}{t[2]}"
    ),
)


@pytest.mark.kube
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sign=st.sampled_from(["", "+"]), number=_number, suffix=_suffix)
def test_any_quantity_of_the_grammar_the_server_admits_parses_to_its_stored_value(
    kube_ns: KubeScope, sign: str, number: str, suffix: str
):
    quantity = f"{sign}{number}{suffix}"
    stored = _round_trip(kube_ns, quantity)
    if stored is not None:  # admitted: scaler must read it, to the same number
        _same(quantity, stored)
