"""Kubernetes resource quantities, parsed exactly as ``resource.ParseQuantity`` does.

Grammar (k8s.io/apimachinery/pkg/api/resource/quantity.go)::

    <quantity>        ::= <signedNumber><suffix>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>

The documented grammar lists ``m`` as the smallest decimal suffix, but the parser's suffix
table (``suffix.go``) also holds ``n`` (1e-9) and ``u`` (1e-6), and the API server admits
``500000u``; so does scaler. As ``ParseQuantity`` does, a non-zero value is rounded away from
zero to a whole nano-unit and its magnitude capped at 2**63 - 1. The API server keeps pod
requests in whole milli-units (``1.5n`` is stored as ``1m``); scaler's CPU millicores and
whole bytes, both rounded up, come out the same from what was sent and from what the server
stored (tests/adapters/test_quantity_apiserver.py round-trips through a real API server).

Values are exact (:class:`fractions.Fraction`). Requests are rounded *up* the way the
scheduler sees them: CPU to whole millicores, memory to whole bytes.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Final

_BINARY: Final = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: Final = {
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
# Exponent is tried before the bare "E" (exa) suffix, as Kubernetes does: "1E3" is 1000,
# "1E" is 10**18.
_QUANTITY: Final = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<exp>[eE][+-]?[0-9]+)|(?P<bin>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<dec>[numkMGTPE]?))"
)
# ParseQuantity's bounds: magnitudes above int64's maximum are capped to it, and non-zero
# magnitudes below one nano-unit are rounded up to it (apimachinery quantity.go).
_MAX_MAGNITUDE: Final = Fraction(2**63 - 1)
_NANO: Final = Fraction(1, 10**9)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity (or not a usable request)."""


def parse_quantity(text: str | int | float) -> Fraction:
    """The exact value of a Kubernetes quantity string.

    JSON numbers are accepted as the quantity they print as (``2`` is ``"2"``), which is how
    kubectl treats them. Negative values parse (the grammar allows them); callers that need a
    request use :func:`parse_request`.
    """
    if isinstance(text, bool):
        raise QuantityError(f"{text!r} is not a quantity")
    if isinstance(text, float) and not math.isfinite(text):
        raise QuantityError(f"{text!r} is not a finite quantity")
    if isinstance(text, int | float):
        value = Fraction(text) if isinstance(text, int) else Fraction(repr(text))
        stored = _as_the_server_stores(abs(value))
        return -stored if value < 0 else stored
    if not isinstance(text, str):
        raise QuantityError(f"expected a quantity string, got {type(text).__name__}")
    m = _QUANTITY.fullmatch(text)
    if m is None:
        shown = repr(text) if text else "an empty string"
        raise QuantityError(f"{shown} is not a Kubernetes quantity (e.g. 500m, 2, 1.5, 4Gi, 4G)")
    number = m["number"] if not m["number"].endswith(".") else m["number"][:-1]
    try:
        value = Fraction(number)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise QuantityError(f"{text[:40]!r}...: too many digits") from None
    if m["exp"] is not None:
        if len(m["exp"].lstrip("eE+-")) > 18:
            raise QuantityError(f"{text!r}: exponent out of range")  # strconv.ParseInt's int64
        exponent = int(m["exp"][1:])
        if value and exponent > len(number) + 19:
            value = _MAX_MAGNITUDE  # at least 10**19 > 2**63 - 1, whatever the digits: capped
        elif value and exponent < -(len(number) + 10):
            value = _NANO  # below 1e-9 whatever the digits: rounded up to one nano-unit
        elif value:
            value *= Fraction(10) ** exponent
    elif m["bin"] is not None:
        value *= _BINARY[m["bin"]]
    else:
        value *= _DECIMAL[m["dec"] or ""]
    value = _as_the_server_stores(value)
    return -value if m["sign"] == "-" else value


def _as_the_server_stores(magnitude: Fraction) -> Fraction:
    """Round a non-zero magnitude up to whole nano-units; cap it at 2**63 - 1."""
    if magnitude.denominator != 1 and (magnitude / _NANO).denominator != 1:
        magnitude = Fraction(math.ceil(magnitude / _NANO)) * _NANO
    return min(magnitude, _MAX_MAGNITUDE)


def parse_request(text: str | int | float) -> Fraction:
    """A quantity that must be >= 0 (a request, a capacity)."""
    value = parse_quantity(text)
    if value < 0:
        raise QuantityError(f"{text!r} is negative; a request must be zero or more")
    return value


def cpu_milli(text: str | int | float) -> int:
    """CPU in whole millicores, rounded up (``0.0001`` is 1m, as the scheduler counts it)."""
    return math.ceil(parse_request(text) * 1000)


def memory_mib(text: str | int | float) -> float:
    """Memory (or storage) in MiB, from whole bytes rounded up."""
    return math.ceil(parse_request(text)) / 2**20


def whole_count(text: str | int | float) -> int:
    """An extended resource such as ``nvidia.com/gpu``: Kubernetes allows whole numbers only."""
    value = parse_request(text)
    if value.denominator != 1:
        raise QuantityError(f"{text!r} is not a whole number; extended resources are counted whole")
    return int(value)
