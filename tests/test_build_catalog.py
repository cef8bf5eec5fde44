"""tools/build_catalog.py rebuilds the packaged catalog exactly (only ``built_at`` may differ).

Needs the public data in ``../shared/data`` next to the repository; skipped without it.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
PACKAGED = REPO / "scaler" / "data" / "catalog-us-east-1.json"

pytestmark = pytest.mark.skipif(
    not (SHARED / "aws" / "instance_types" / "moto_instance_types.json.gz").is_file(),
    reason=f"public source data not found at {SHARED} (../shared/data next to the repo)",
)


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_catalog", REPO / "tools" / "build_catalog.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def without_built_at(text: str) -> str:
    return re.sub(r'"built_at": "[0-9-]+"', '"built_at": ""', text)


def test_rebuild_equals_the_packaged_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    out = tmp_path / "catalog.json"
    assert load_tool().main(["--shared", str(SHARED), "--out", str(out)]) == 0
    built, packaged = out.read_text(encoding="utf-8"), PACKAGED.read_text(encoding="utf-8")
    assert json.loads(built)["built_at"] == "1970-01-01"  # SOURCE_DATE_EPOCH honoured
    assert without_built_at(built) == without_built_at(packaged)


def test_missing_source_directory_fails_cleanly(tmp_path: Path) -> None:
    assert load_tool().main(["--shared", str(tmp_path), "--out", str(tmp_path / "x.json")]) == 1
    assert not (tmp_path / "x.json").exists()
