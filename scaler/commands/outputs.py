"""Output paths are checked before any work: a simulation of hours must not end in
``No such file or directory`` for the plot it was asked for."""

from __future__ import annotations

import os
from pathlib import Path


def check_output_path(flag: str, path: str | os.PathLike[str]) -> Path:
    """``path`` if a file can be written there; else ``ValueError`` naming ``flag`` and the
    path in one line (the CLI prints it without a traceback)."""
    p = Path(path)
    where = f"{flag} {os.fspath(path)}"
    if not os.fspath(path):
        raise ValueError(f"{flag}: expected a file name")
    if p.is_dir():
        raise ValueError(f"{where}: is a directory; give a file name")
    parent = p.parent
    if not parent.exists():
        raise ValueError(f"{where}: no such directory {parent}")
    if not parent.is_dir():
        raise ValueError(f"{where}: {parent} is not a directory")
    if p.exists() and not os.access(p, os.W_OK):
        raise ValueError(f"{where}: not writable")
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{where}: cannot create files in {parent}")
    return p


__all__ = ["check_output_path"]
