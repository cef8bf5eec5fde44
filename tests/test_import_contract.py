"""The decision core's import contract, as an allow-list: a module under ``scaler/core`` may
import the standard library, NumPy and ``scaler.core`` itself, and nothing else.

import-linter's contracts (pyproject.toml) forbid a list of names; a new dependency missing
from that list would pass them. Here every import statement of every core module is read
with :mod:`ast` — also those inside functions and ``if TYPE_CHECKING:`` blocks, which a
runtime check would not see — and checked against the allow-list. A dynamic import
(``importlib.import_module``, ``__import__``) cannot be checked, so it is refused too.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CORE = "scaler.core"
CORE_DIR = Path(__file__).resolve().parents[1] / "scaler" / "core"
THIRD_PARTY_ALLOWED = frozenset({"numpy"})
DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    statement: str
    imported: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: `{self.statement}` imports {self.imported}, which is "
            f"not the standard library, numpy or {CORE}"
        )


def allowed(module: str) -> bool:
    top = module.split(".", 1)[0]
    return (
        top in sys.stdlib_module_names
        or top in THIRD_PARTY_ALLOWED
        or module == CORE
        or module.startswith(CORE + ".")
    )


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module ``from ... import`` reads, relative dots resolved against ``module``."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    # In a package's __init__, one dot is the package itself; in a module, its parent.
    base = parts if is_package else parts[:-1]
    if node.level - 1 > len(base):
        return "." * node.level + (node.module or "")  # beyond the top: never allowed
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        source = _absolute(node, module, is_package)
        if source and (CORE.startswith(source + ".") or source == CORE.split(".")[0]):
            # `from scaler import core` / `from .. import loop`: each name may be a module.
            yield from (f"{source}.{alias.name}" for alias in node.names)
        else:
            yield source
    elif isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in DYNAMIC_IMPORTS:
            # Refused whatever it names: the suffix makes it no module name allowed() knows.
            target = node.args[0] if node.args else None
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                yield f"{target.value} (dynamically)"
            else:
                yield "a module named at run time"


def violations(source: str, module: str, path: str, *, is_package: bool = False) -> list[Violation]:
    """Every import in ``source`` (module ``module``, file ``path``) outside the allow-list."""
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        for imported in _imported(node, module, is_package):
            if not allowed(imported):
                statement = ast.get_source_segment(source, node) or type(node).__name__
                found.append(Violation(path, getattr(node, "lineno", 0), statement, imported))
    return sorted(found, key=lambda v: (v.path, v.line))


def package_violations(root: Path, package: str) -> list[Violation]:
    """:func:`violations` of every module in the package at ``root`` (named ``package``),
    each shown by its path in the repository (``scaler/core/model.py``)."""
    found = []
    for file in sorted(root.rglob("*.py")):
        relative = file.relative_to(root).with_suffix("")
        is_package = relative.name == "__init__"
        parts = relative.parts[:-1] if is_package else relative.parts
        module = ".".join([package, *parts])
        shown = Path(*package.split("."), file.relative_to(root)).as_posix()
        found += violations(file.read_text(), module, shown, is_package=is_package)
    return found


def test_the_core_imports_only_the_standard_library_numpy_and_itself():
    modules = sorted(CORE_DIR.rglob("*.py"))
    assert len(modules) > 10, f"expected the core's modules under {CORE_DIR}"
    found = package_violations(CORE_DIR, CORE)
    assert not found, "scaler.core must stay pure:\n" + "\n".join(map(str, found))


# --- the checker itself: each of these must be caught ----------------------------------------


@pytest.mark.parametrize(
    ("source", "imported"),
    [
        ("import boto3\n", "boto3"),
        ("import numpy, anyio.abc\n", "anyio.abc"),
        ("from structlog import get_logger\n", "structlog"),
        ("def f():\n    import kubernetes\n    return kubernetes\n", "kubernetes"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from scaler.loop.reconciler import Reconciler\n",
            "scaler.loop.reconciler",
        ),
        ("from scaler import adapters\n", "scaler.adapters"),
        ("from .. import ports\n", "scaler.ports"),
        ("from ..loop import runner\n", "scaler.loop"),
        ("import scaler.app\n", "scaler.app"),
        ("import simulations.world\n", "simulations.world"),
        ("import importlib\nm = importlib.import_module('prometheus_client')\n",
         "prometheus_client (dynamically)"),
        ("x = __import__(name)\n", "a module named at run time"),
        ("from importlib import import_module\nm = import_module('json')\n", "json (dynamically)"),
        ("class C:\n    def m(self):\n        from pandas import DataFrame\n", "pandas"),
    ],
)
def test_the_checker_catches_a_forbidden_import_wherever_it_is(source: str, imported: str):
    found = violations(source, "scaler.core.planted", "scaler/core/planted.py")
    assert [v.imported for v in found] == [imported]
    assert str(found[0]).startswith(f"scaler/core/planted.py:{found[0].line}: `")
    assert imported in str(found[0])


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations\n",
        "import numpy as np\nfrom numpy.typing import NDArray\n",
        "import collections.abc, dataclasses, importlib.resources\n",
        "from . import model\nfrom .model import PodSpec\n",
        "from scaler.core.model import PodSpec\nimport scaler.core.settings\n",
        "from scaler import core\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from scaler.core import state\n",
    ],
)
def test_the_checker_lets_the_standard_library_numpy_and_the_core_through(source: str):
    assert violations(source, "scaler.core.planted", "scaler/core/planted.py") == []


def test_a_planted_module_in_a_package_fails_the_scan_with_its_file_and_line(tmp_path: Path):
    core = tmp_path / "core"
    (core / "sub").mkdir(parents=True)
    (core / "__init__.py").write_text("from . import fine\n")
    (core / "fine.py").write_text("import math\nfrom .sub import deep\n")
    (core / "sub" / "__init__.py").write_text("")
    (core / "sub" / "deep.py").write_text(
        "import numpy as np\n\n\ndef later():\n    from ...adapters import metrics\n"
    )
    found = package_violations(core, CORE)
    assert [(v.path, v.line, v.imported) for v in found] == [
        ("scaler/core/sub/deep.py", 5, "scaler.adapters")
    ]
    assert "`from ...adapters import metrics`" in str(found[0])
