"""Reading input files: JSON, the JSON Schema, then the core's semantic parser.

The core parser runs first: it gives the precise messages (a garbage quantity, a pod that
asks for an unknown resource). The schema then catches what the parser would ignore, such as
a misspelt field (checked fast by the compiled schema; only a failing document is walked
again by jsonschema), and its errors are rewritten to name the pod and the field the same way:
``traces/week.json: pods[12] (notebook-7).node_selectr: unknown field``.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fastjsonschema

from scaler.core.model import SpecError
from scaler.core.names import shown
from scaler.core.spec import Workload, parse_workload_entries


class InputError(SpecError):
    """A file that cannot be used, with the file, entry and field named."""


@functools.cache
def workload_schema() -> dict[str, Any]:
    text = (importlib.resources.files("scaler") / "schemas" / "workload.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _fast_validator() -> Any:
    """The schema compiled to Python (fastjsonschema): a trace of 8,000 pods validates in
    ~70 ms instead of ~1 s. Only a document that fails is walked again by jsonschema, whose
    errors locate the pod and the field, so this one only has to say pass or fail: compiled
    without detailed exceptions, whose every raise spells out its part of the schema (183 kB
    of Python instead of 52 kB, 20 ms more to compile at each start)."""
    return fastjsonschema.compile(_consts_as_enums(workload_schema()), detailed_exceptions=False)


def _consts_as_enums(schema: Any) -> Any:
    """``schema`` with each ``"const": v`` as ``"enum": [v]``, which admits exactly the same
    values: fastjsonschema (2.22) cannot compile ``const`` without detailed exceptions (its
    message names a field that is then missing)."""
    if isinstance(schema, list):
        return [_consts_as_enums(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "const":
            out["enum"] = [value]
        elif key in _VALUES:
            out[key] = value
        elif key in _NAMED_SCHEMAS:
            out[key] = {name: _consts_as_enums(s) for name, s in value.items()}
        else:
            out[key] = _consts_as_enums(value)
    return out


_VALUES = frozenset({"enum", "default", "examples"})
"""Keywords whose values are data, not schemas."""
_NAMED_SCHEMAS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
"""Keywords whose values map names (not keywords) to schemas."""


def read_json(path: str | Path) -> Any:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(p), "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(p), f"cannot read: {e}") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise InputError(
            str(p), f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except _NotJSON as e:
        raise InputError(str(p), f"not valid JSON: {e}") from None
    except RecursionError:
        raise InputError(str(p), "not valid JSON: nested too deeply") from None


class _NotJSON(ValueError):
    pass


def _no_constant(name: str) -> Any:
    # Python's json reads NaN, Infinity and -Infinity, which JSON does not have; a NaN
    # arrival compares false with everything and then prints as invalid JSON.
    raise _NotJSON(f"{name} is not a JSON number")


def load_workload(path: str | Path) -> Workload:
    """A workload file, checked completely; nothing half-read is returned."""
    data = read_json(path)
    return parse_workload_document(data, source=str(path))


def parse_workload_document(data: Any, *, source: str) -> Workload:
    try:
        workload, distinct = parse_workload_entries(data)
    except SpecError as e:
        raise InputError(*_split(e.within(source, ": "))) from None
    try:
        # The pods that repeat another but for their own fields pass when it does: only
        # the others are checked (124 of openb's 8,151).
        _fast_validator()({**data, "pods": distinct})
    except fastjsonschema.JsonSchemaValueException:
        pass  # invalid: jsonschema below says where, in words
    else:
        return workload
    import jsonschema  # loads only for a document that fails: most never do

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(workload_schema()).iter_errors(data)
    )
    if error is not None:
        where = _path(data, list(error.absolute_path))
        what = error.message
        if error.validator == "additionalProperties":
            what = f"unknown field ({error.message})"
        raise InputError(f"{source}: {where}" if where else source, what)
    return workload


def _split(e: SpecError) -> tuple[str, str]:
    return e.where, e.what


def _path(data: Any, parts: Sequence[Any]) -> str:
    """``["pods", 3, "requests"]`` -> ``pods[3] (name).requests``."""
    out = ""
    node = data
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            name = node.get("name") if isinstance(node, dict) else None
            if isinstance(name, str) and name:
                out += f" ({shown(name)})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out
