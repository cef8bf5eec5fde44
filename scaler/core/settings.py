"""scaler's settings: one frozen tree, units in the names, a reason for every default.

``Settings`` is what ``--set name=value`` and the ConfigMap override. Each field's docstring
(the string under it) says what it does and why the default is what it is.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PlacementSettings:
    spot_risk_fraction_by_bucket: tuple[float, ...] = (0.025, 0.075, 0.125, 0.175, 0.25)
    """Interruption-risk penalty of a Spot pool, as a fraction of the type's on-demand price,
    by Spot Advisor bucket (<5%, 5-10%, 10-15%, 15-20%, >20% interrupted per month). The
    default is each bucket's midpoint: the expected share of a month's work redone. Without
    it the cheapest Spot pool wins every time and that is the most reclaimed pool (DOMAIN.md)."""

    spot_risk_fraction_unknown: float = 0.25
    """Penalty for a Spot type the Advisor has no bucket for: assume the worst bucket."""

    chunk_classes: int = 512
    """Pod classes scored per NumPy chunk: bounds the (classes x pools x resources) temporary
    to a few tens of MB with the full catalog."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole settings tree."""

    placement: PlacementSettings = field(default_factory=PlacementSettings)

    def with_overrides(self, overrides: dict[str, str]) -> Settings:
        """A copy with ``name=value`` overrides; ``name`` is a field of any section
        (``idle_timeout_s``) or ``section.field`` when the name is ambiguous."""
        result: Any = self
        for name, raw in overrides.items():
            result = _override(result, name, raw)
        return typing.cast(Settings, result)


def field_names(settings: object) -> dict[str, str]:
    """Every leaf field as ``{name: "section.name"}`` (ambiguous names map to "")."""
    out: dict[str, str] = {}
    for sec in dataclasses.fields(settings):  # type: ignore[arg-type]
        value = getattr(settings, sec.name)
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                out[f.name] = "" if f.name in out else f"{sec.name}.{f.name}"
    return out


def _override(settings: Any, name: str, raw: str) -> Any:
    names = field_names(settings)
    path = name if "." in name else names.get(name)
    if not path:
        known = ", ".join(sorted(n for n, p in names.items() if p))
        what = (
            "is ambiguous; say section.name" if path == "" else f"is not a setting; known: {known}"
        )
        raise ValueError(f"--set {name}: {what}")
    section_name, _, leaf = path.partition(".")
    section = getattr(settings, section_name, None)
    if section is None or leaf not in {f.name for f in dataclasses.fields(section)}:
        raise ValueError(f"--set {name}: no such setting")
    hint = typing.get_type_hints(type(section))[leaf]
    value = _coerce(raw, hint, name)
    return dataclasses.replace(
        settings, **{section_name: dataclasses.replace(section, **{leaf: value})}
    )


def _coerce(raw: str, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    try:
        if origin in (typing.Union, types.UnionType):
            if raw.lower() in ("none", "null", "") and type(None) in args:
                return None
            (inner,) = [a for a in args if a is not type(None)]
            return _coerce(raw, inner, name)
        if origin is tuple:
            return tuple(_coerce(x.strip(), args[0], name) for x in raw.split(",") if x.strip())
        if hint is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if hint in (int, float, str):
            return hint(raw)
    except ValueError:
        pass
    raise ValueError(f"--set {name}={raw}: expected {getattr(hint, '__name__', hint)}")
