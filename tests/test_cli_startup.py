"""What every command pays before it does anything: the parser, and the modules it loads.

A library that only some paths need loads on those paths: structlog for the live commands,
jsonschema for an input that fails its schema, rich for a printed table or progress bar,
importlib.metadata for ``--version``. Each costs every other command tens of milliseconds.
Run in a fresh interpreter, as a user runs ``scaler``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFERRED = ("structlog", "jsonschema", "rich", "importlib.metadata", "scaler.adapters")


def loaded_after(code: str, modules: tuple[str, ...] = DEFERRED) -> list[str]:
    """Which of ``modules`` are imported once ``code`` has run (stdout goes to stderr)."""
    probe = (
        "import contextlib, json, sys\n"
        "with contextlib.redirect_stdout(sys.stderr):\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + f"print(json.dumps([m for m in {modules!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_building_the_parser_loads_none_of_the_libraries_only_some_commands_use() -> None:
    assert loaded_after("from scaler.cli import build_parser\nbuild_parser()") == []


def test_a_simulation_printed_as_json_loads_no_table_logging_or_schema_library() -> None:
    code = (
        "from scaler.cli import main\n"
        "main(['simulate', 'traces/spot-batch.json', '--policy', 'karpenter-like', '--json',"
        " '--until', '600'])"
    )
    assert loaded_after(code) == []


def test_a_command_loads_no_other_commands_modules() -> None:
    from scaler.cli import COMMANDS

    others = tuple(f"scaler.commands.{c}" for c in COMMANDS if c not in ("simulate", "place"))
    code = (
        "from scaler.cli import main\n"
        "main(['simulate', 'traces/spot-batch.json', '--policy', 'karpenter-like', '--json',"
        " '--until', '600'])"
    )
    # simulate prints its tables with place's console; no other command is its business.
    assert loaded_after(code, (*others, "scaler.bench", "scaler.importers")) == []
    code = "from scaler.cli import main\ntry:\n    main(['settings', '--help'])\nexcept SystemExit:\n    pass"
    assert loaded_after(code, ("scaler.commands.simulate", "simulations.engine")) == []


def test_version_is_still_the_installed_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scaler", "--version"], capture_output=True, text=True,
        timeout=120, cwd=ROOT, check=True,
    )
    from scaler.cli import version

    assert done.stdout == f"scaler {version()}\n"


def test_a_simulation_leaves_the_garbage_collector_as_it_found_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The runs freeze what was loaded before them (scaler.commands.simulate); a caller in
    # the same process (a test, a notebook) gets it back collectable.
    import gc

    from scaler.cli import main

    before = gc.get_freeze_count()
    args = ["simulate", str(ROOT / "traces/spot-batch.json"), "--policy", "karpenter-like",
            "--json", "--until", "600"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["results"]
    assert gc.get_freeze_count() == before


def test_the_process_skips_its_last_collection_after_a_simulation_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # scaler.cli.entry freezes what is alive after a simulation (it is about to exit); the
    # live commands end with the interpreter's collection, so finalizers run.
    import gc

    from scaler.cli import entry

    monkeypatch.setattr(sys, "argv", ["scaler", "simulate", str(ROOT / "traces/spot-batch.json"),
                                      "--policy", "karpenter-like", "--json", "--until", "600"])
    before = gc.get_freeze_count()
    try:
        assert entry() == 0
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
    monkeypatch.setattr(sys, "argv", ["scaler", "settings"])
    assert entry() == 0
    assert gc.get_freeze_count() == 0
    capsys.readouterr()
