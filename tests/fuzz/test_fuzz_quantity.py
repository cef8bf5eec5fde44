"""Kubernetes quantities (scaler.core.quantity): any string or number is an amount or a
QuantityError. quantity.py's grammar belongs to the API-server-exact rewrite (h7-templates),
so what this finds there is reported, not fixed here; scaler.core.spec already turns the
OverflowError below into an error naming the field."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from scaler.core.quantity import QuantityError, cpu_milli, memory_mib, whole_count
from tests.fuzz.strategies import quantities


def _amount_or_error(text: object) -> None:
    for parse in (cpu_milli, memory_mib, whole_count):
        try:
            amount = parse(text)  # type: ignore[arg-type]
        except QuantityError as e:
            assert "\n" not in str(e)
            continue
        assert amount >= 0 and (not isinstance(amount, float) or math.isfinite(amount))


@given(quantities | st.text(alphabet="0123456789.eE+-kKMGTPimnu ", max_size=12))
def test_a_quantity_is_a_finite_amount_or_a_quantity_error(text):
    _amount_or_error(text)


def test_a_quantity_of_400_digits_is_an_amount_or_a_quantity_error():
    _amount_or_error("9" * 400)
