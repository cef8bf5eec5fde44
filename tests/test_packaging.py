"""Packaging: the controller installs without the simulator's chart and cluster libraries
(the ``sim`` extra); a simulator flag that needs one says so in one line, before any work."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from scaler.cli import main
from tests.simulations.test_report import write_trace

ROOT = Path(__file__).resolve().parents[1]
SIM_ONLY = ("matplotlib", "dask")


def _names(requirements: list[str]) -> set[str]:
    return {r.split("[")[0].split(">")[0].split("=")[0].strip().lower() for r in requirements}


def test_the_sim_extra_carries_matplotlib_and_dask_and_the_base_does_not():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not _names(project["dependencies"]) & set(SIM_ONLY)
    extras = project["optional-dependencies"]
    assert _names(extras["sim"]) == {"matplotlib", "dask"}
    assert "scaler[sim]" in extras["test"]  # CI installs what the simulator tests use


def test_the_controller_never_imports_the_sim_libraries():
    code = (
        "import sys; import scaler.app, scaler.cli; scaler.cli.build_parser();"
        "import scaler.commands.run, scaler.commands.plan, scaler.commands.status;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'dask', "
        "'distributed'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("flag", "missing"),
    [(["--dask", "local"], "dask"), (["--plot", "PLOT"], "matplotlib"),
     (["--report", "PLOT"], "matplotlib")],
)
def test_a_sim_flag_without_the_extra_is_one_line_naming_the_extra(
    flag, missing, tmp_path, capsys, monkeypatch
):
    for name in (missing, f"{missing}.distributed"):
        monkeypatch.setitem(sys.modules, name, None)  # what an install without it looks like
    flag = [f.replace("PLOT", str(tmp_path / "out.png")) for f in flag]
    t0 = time.perf_counter()
    code = main(["simulate", str(write_trace(tmp_path / "t.json")), *flag])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        f"scaler simulate: {flag[0]} needs {missing}, which scaler's sim extra installs: "
        "pip install 'scaler[sim]' (from a checkout: pip install -e '.[sim]')"
    )
    assert not (tmp_path / "out.png").exists()
    assert elapsed < 2.0  # before any simulation
