"""Shared hypothesis strategies: JSON of any shape, and near-miss Kubernetes values."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

# Leaves a JSON parser can produce (and Python's json, which also reads NaN and Infinity).
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)

# Strings close to the real ones: valid names, and names one character off.
near_names = st.sampled_from(
    ["gpu", "team", "nvidia.com/gpu", "a.b-c_d", "ml", "", "x" * 63, "x" * 64, "ml\n", "-a",
     "a/b/c", "Ünï", " ", "kubernetes.io/arch", "topology.kubernetes.io/zone", "a\x00"]
) | st.text(max_size=10)  # fmt: skip
quantities = st.sampled_from(
    ["1", "500m", "4Gi", "0.5", "1e3", "1E18", "1e308", "9" * 40, "-1", "nan", "inf", "1Ki",
     "2Pi", "1.5Gi", "", " 1", "1 ", "0x10", "1e-9", "12e", "1.", ".5", "+1"]
) | st.integers(min_value=-10, max_value=10**20) | st.floats() | st.text(max_size=8)  # fmt: skip
times = st.sampled_from([0, 1, 1e18, -1, 3.2e8, 3.3e8]) | st.floats() | st.integers()


def finite_numbers(value: Any) -> bool:
    """Every float inside ``value`` (dataclasses, tuples, dicts) is finite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(finite_numbers(v) for v in value)
    if isinstance(value, dict):
        return all(finite_numbers(v) for v in value.values())
    fields = getattr(value, "__dataclass_fields__", None)
    if fields:
        return all(finite_numbers(getattr(value, name)) for name in fields)
    return True


def one_line(error: BaseException) -> bool:
    text = str(error)
    return bool(text) and "\n" not in text
