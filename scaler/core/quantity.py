"""Kubernetes resource quantities, parsed exactly as ``resource.ParseQuantity`` does.

Grammar (k8s.io/apimachinery/pkg/api/resource/quantity.go)::

    <quantity>        ::= <signedNumber><suffix>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>

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
    r"(?:(?P<exp>[eE][+-]?[0-9]+)|(?P<bin>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<dec>[mkMGTPE]?))"
)
# Kubernetes refuses absurd exponents; so do we, rather than build a huge Fraction.
_MAX_EXPONENT: Final = 40


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
    if isinstance(text, int):
        return Fraction(text)
    if isinstance(text, float):
        if not math.isfinite(text):
            raise QuantityError(f"{text!r} is not a finite quantity")
        return Fraction(repr(text))
    if not isinstance(text, str):
        raise QuantityError(f"expected a quantity string, got {type(text).__name__}")
    m = _QUANTITY.fullmatch(text)
    if m is None:
        shown = repr(text) if text else "an empty string"
        raise QuantityError(f"{shown} is not a Kubernetes quantity (e.g. 500m, 2, 1.5, 4Gi, 4G)")
    value = Fraction(m["number"] if not m["number"].endswith(".") else m["number"][:-1])
    if m["exp"] is not None:
        exponent = int(m["exp"][1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(f"{text!r}: exponent out of range")
        value *= Fraction(10) ** exponent
    elif m["bin"] is not None:
        value *= _BINARY[m["bin"]]
    else:
        value *= _DECIMAL[m["dec"] or ""]
    return -value if m["sign"] == "-" else value


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
