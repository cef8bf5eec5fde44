"""Kubernetes quantities: exact values, the scheduler's rounding, and everything else refused.

Expected values follow k8s.io/apimachinery's ``resource.ParseQuantity`` grammar.
"""

from __future__ import annotations

import decimal
import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaler.core.quantity import (
    QuantityError,
    cpu_milli,
    memory_mib,
    parse_quantity,
    parse_request,
    whole_count,
)

BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
SUFFIXES = {**{k: Fraction(v) for k, v in BINARY.items()}, **DECIMAL}


def stored(value: Fraction) -> Fraction:
    """What ParseQuantity keeps: |value| rounded up to whole nano-units, capped at 2**63 - 1."""
    magnitude = min(Fraction(math.ceil(abs(value) * 10**9), 10**9), Fraction(2**63 - 1))
    return -magnitude if value < 0 else magnitude


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("1.5", Fraction(3, 2)),
        ("2", Fraction(2)),
        ("4Gi", Fraction(4 * 2**30)),
        ("4G", Fraction(4 * 10**9)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),  # an exponent, tried before the exa suffix
        ("1E", Fraction(10**18)),  # exa
        ("1Ei", Fraction(2**60)),
        ("128974848", Fraction(128974848)),
        ("129e6", Fraction(129 * 10**6)),
        ("123Mi", Fraction(123 * 2**20)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("+1", Fraction(1)),
        ("0.0001", Fraction(1, 10_000)),
        ("1e-3", Fraction(1, 1000)),
        ("0.5e1", Fraction(5)),
        ("1.5Ki", Fraction(1536)),
        ("0", Fraction(0)),
        ("-1", Fraction(-1)),  # the grammar allows a sign; requests refuse it
        # Suffixes the parser's table holds beyond the documented grammar (suffix.go).
        ("500000u", Fraction(1, 2)),
        ("250000000n", Fraction(1, 4)),
        ("1e+3", Fraction(1000)),
        ("1E-3", Fraction(1, 1000)),
        # ParseQuantity's bounds: magnitudes capped at 2**63 - 1, rounded up to 1n.
        ("1e41", Fraction(2**63 - 1)),
        ("1e100", Fraction(2**63 - 1)),
        ("16Ei", Fraction(2**63 - 1)),
        ("-1e100", Fraction(-(2**63 - 1))),
        ("1e-20", Fraction(1, 10**9)),
        ("0.5n", Fraction(1, 10**9)),
        ("1.5n", Fraction(2, 10**9)),
        ("0e-99", Fraction(0)),
    ],
)
def test_kubernetes_quantities_parse_to_exact_values(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    ("raw", "value"),
    [(2, Fraction(2)), (0.5, Fraction(1, 2)), (0.1, Fraction(1, 10)), (1e-07, Fraction(1, 10**7))],
)
def test_json_numbers_are_the_quantity_they_print_as(raw: int | float, value: Fraction) -> None:
    assert parse_quantity(raw) == value


def test_large_json_number_is_capped_as_the_api_server_caps_it() -> None:
    # Fraction(1e23) is 99999999999999991611392; the server stores 2**63 - 1 for either.
    assert parse_quantity(1e23) == 2**63 - 1
    assert parse_quantity(10**23) == 2**63 - 1


@pytest.mark.parametrize(
    ("text", "milli"),
    [
        ("500m", 500),
        ("1.5", 1500),
        ("2", 2000),
        ("0.0001", 1),  # 0.1m rounds up to 1m, as the scheduler counts it
        ("1.0001", 1001),  # 1000.1m -> 1001m
        ("0", 0),
        ("1e-3", 1),
        (4, 4000),
    ],
)
def test_cpu_is_whole_millicores_rounded_up(text: str | int, milli: int) -> None:
    assert cpu_milli(text) == milli


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("4Gi", 4096.0),
        ("4G", 4e9 / 2**20),
        ("128974848", 123.0),  # 123 * 2**20 bytes
        ("1Mi", 1.0),
        ("0.5", 1 / 2**20),  # half a byte is one whole byte
        ("1", 1 / 2**20),
    ],
)
def test_memory_is_whole_bytes_in_mib(text: str, mib: float) -> None:
    assert memory_mib(text) == mib


@pytest.mark.parametrize(
    "garbage",
    [
        "4 GB",
        "1.2.3",
        "",
        "Gi",
        "1 Gi",
        "1e",
        "abc",
        " 1",
        "1 ",
        "0x10",
        "1_0",
        "inf",
        "nan",
        "1GB",
        "1gi",
        "１",
        "1e" + "9" * 19,
        "1e+",
        "1u5",
        "1Ki1",
        "1nn",
        "1K",
        None,
        True,
        False,
        [],
        {},
        float("nan"),
        float("inf"),
    ],
)
def test_garbage_is_not_a_quantity(garbage: Any) -> None:
    with pytest.raises(QuantityError):
        parse_request(garbage)


@pytest.mark.parametrize("negative", ["-1", "-500m", -1, -0.5])
def test_a_negative_request_is_refused(negative: str | float) -> None:
    with pytest.raises(QuantityError, match="negative"):
        parse_request(negative)
    with pytest.raises(QuantityError):
        cpu_milli(negative)
    with pytest.raises(QuantityError):
        memory_mib(negative)


def test_error_messages_show_the_bad_text_and_an_example() -> None:
    with pytest.raises(QuantityError, match=r"'4 GB' is not a Kubernetes quantity \(e\.g\. 500m"):
        parse_quantity("4 GB")
    with pytest.raises(QuantityError, match="empty string"):
        parse_quantity("")


@pytest.mark.parametrize(("text", "count"), [("1", 1), (2, 2), ("1000m", 1), ("0", 0), ("1e1", 10)])
def test_gpus_are_whole_counts(text: str | int, count: int) -> None:
    assert whole_count(text) == count


@pytest.mark.parametrize("fraction", ["0.5", "500m", 1.5])
def test_a_fractional_gpu_is_refused(fraction: str | float) -> None:
    with pytest.raises(QuantityError, match="whole"):
        whole_count(fraction)


# --------------------------------------------------------------------- properties

_exact = decimal.Context(prec=200)


def _plain(value: Fraction) -> str:
    """A terminating fraction as a plain decimal string (no exponent)."""
    d = _exact.divide(decimal.Decimal(value.numerator), decimal.Decimal(value.denominator))
    return format(d, "f")


@given(
    n_bytes=st.integers(min_value=0, max_value=2**63 - 1), suffix=st.sampled_from(sorted(SUFFIXES))
)
def test_any_whole_number_of_bytes_written_with_any_suffix_round_trips(
    n_bytes: int, suffix: str
) -> None:
    # n / 2**k and n / 10**k both have a finite decimal expansion: write it out in full.
    text = _plain(Fraction(n_bytes) / SUFFIXES[suffix]) + suffix
    assert parse_quantity(text) == n_bytes
    assert memory_mib(text) == n_bytes / 2**20


@given(
    sign=st.sampled_from(["", "+", "-"]),
    whole=st.text("0123456789", min_size=0, max_size=8),
    frac=st.text("0123456789", min_size=0, max_size=8),
    dot=st.booleans(),
    tail=st.one_of(
        st.sampled_from(sorted(SUFFIXES)).map(lambda s: (s, SUFFIXES[s])),
        st.tuples(st.sampled_from("eE"), st.integers(-12, 12)).map(
            lambda t: (f"{t[0]}{t[1]}", Fraction(10) ** t[1])
        ),
    ),
)
def test_parse_is_exact_fraction_arithmetic(
    sign: str, whole: str, frac: str, dot: bool, tail: tuple[str, Fraction]
) -> None:
    number = f"{whole}.{frac}" if dot else whole + frac
    if not any(c.isdigit() for c in number):
        return  # no digits: not a number (covered by the garbage table)
    suffix, factor = tail
    digits = number.replace(".", "")
    scale = len(frac) if dot else 0
    expected = Fraction(int(digits), 10**scale) * factor
    assert parse_quantity(f"{sign}{number}{suffix}") == stored(
        -expected if sign == "-" else expected
    )


@given(units=st.integers(0, 10**12), places=st.integers(0, 9), suffix=st.sampled_from(["", "m"]))
def test_cpu_milli_is_the_ceiling_of_a_thousand_times_the_value(
    units: int, places: int, suffix: str
) -> None:
    value = Fraction(units, 10**places) * DECIMAL[suffix]
    text = _plain(Fraction(units, 10**places)) + suffix
    assert cpu_milli(text) == math.ceil(value * 1000)


@given(milli=st.integers(0, 10**7), extra=st.integers(1, 999))
def test_a_fraction_of_a_millicore_rounds_up(milli: int, extra: int) -> None:
    value = Fraction(milli, 1000) + Fraction(extra, 10**6)
    assert cpu_milli(_plain(value)) == milli + 1


@given(a=st.integers(0, 2**64), b=st.integers(0, 2**64), sa=st.sampled_from(sorted(SUFFIXES)))
def test_memory_mib_is_monotone(a: int, b: int, sa: str) -> None:
    lo, hi = sorted((a, b))
    # The same amounts, one written with a suffix and one in plain bytes.
    lo_text = _plain(Fraction(lo) / SUFFIXES[sa]) + sa
    assert memory_mib(lo_text) <= memory_mib(str(hi))
    assert memory_mib(str(lo)) <= memory_mib(str(hi))
