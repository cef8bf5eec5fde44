"""Settings from a config file, ``SCALER_*`` environment variables and ``--set`` flags.

Precedence, lowest first: the preset's defaults < the config file (``--config``) < the
environment < ``--set``. Every source goes through the one override mechanism,
:meth:`scaler.core.settings.Settings.with_overrides`, so a value means the same wherever it
is written; an error names the source and the key.

- The file is YAML (JSON is YAML too): a mapping of setting names to values, flat
  (``idle_timeout_s: 300``), by section (``scale_down: {idle_timeout_s: 300}``) or dotted
  (``scale_down.idle_timeout_s: 300``). Lists are written as lists or comma-separated.
- ``SCALER_IDLE_TIMEOUT_S=300`` sets ``idle_timeout_s``; a double underscore separates a
  section (``SCALER_SCALE_DOWN__IDLE_TIMEOUT_S``). Any other ``SCALER_*`` variable is an error,
  except the ``SCALER_SERVICE_*`` and ``SCALER_PORT*`` ones Kubernetes injects for a Service
  named ``scaler``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scaler.core.settings import Settings

ENV_PREFIX = "SCALER_"
_SERVICE_LINKS = re.compile(r"^SCALER_(SERVICE_|PORT($|_))")
"""Docker-link style variables the kubelet sets for the Service ``scaler``."""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value)
    return str(value)


def file_overrides(path: str) -> dict[str, str]:
    """``name -> value`` from a YAML or JSON file; a file that is not a mapping of settings
    is an error naming the file (and the key)."""
    import yaml

    where = f"--config {path}"
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ValueError(f"{where}: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ValueError(f"{where}: not YAML or JSON{line}: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping of setting names to values")
    sections = {f.name for f in dataclasses.fields(Settings)}
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in sections:
                raise ValueError(
                    f"{where}: {key}: a mapping, but {key!r} is not a section "
                    f"({', '.join(sorted(sections))})"
                )
            for leaf, v in value.items():
                if isinstance(v, dict):
                    raise ValueError(f"{where}: {key}.{leaf}: expected a value, got a mapping")
                out[f"{key}.{leaf}"] = _text(v)
        else:
            out[str(key)] = _text(value)
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """``name -> value`` from ``SCALER_*`` variables (see the module docstring)."""
    out: dict[str, str] = {}
    for var, value in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or _SERVICE_LINKS.match(var):
            continue
        name = var[len(ENV_PREFIX):].lower().replace("__", ".")
        out[name] = value
    return out


def _apply(settings: Settings, overrides: Mapping[str, str], source: str,
           label: Any = None) -> Settings:
    for name, value in overrides.items():
        try:
            settings = settings.with_overrides({name: value})
        except ValueError as e:
            what = label(name) if label else source
            raise ValueError(f"{what}: {str(e).removeprefix('--set ')}") from None
    return settings


def resolve(
    base: Settings,
    *,
    config: str | None,
    environ: Mapping[str, str],
    sets: Iterable[str],
) -> Settings:
    """``base`` with the file's, the environment's and the flags' overrides, in that order."""
    settings = base
    if config:
        settings = _apply(settings, file_overrides(config), f"--config {config}")
    env = env_overrides(environ)
    by_name = {var[len(ENV_PREFIX):].lower().replace("__", "."): var for var in environ}
    settings = _apply(settings, env, "environment", label=lambda n: by_name.get(n, n))
    flags: dict[str, str] = {}
    for item in sets:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item}: expected NAME=VALUE")
        flags[name.strip()] = value.strip()
    return settings.with_overrides(flags)
