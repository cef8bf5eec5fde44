"""Tables fit the terminal they are printed to: 80 to 120 columns (``$COLUMNS``, as a shell
exports it), detail columns wrapped or left out, the dollars always there in full."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaler.cli import main
from tests.simulations.test_report import write_trace

ROOT = Path(__file__).resolve().parents[1]


def scaler(*args: str, columns: int | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    done = subprocess.run([sys.executable, "-m", "scaler", *args], capture_output=True,
                          text=True, timeout=120, env=env, check=True, cwd=ROOT)
    return done.stdout


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_place_table_fits_the_terminal_and_keeps_every_price(columns: int) -> None:
    placed = json.loads(scaler("place", "examples/pods.json", "--json"))["placements"]
    text = scaler("place", "examples/pods.json", columns=columns)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= columns, text
    for p in placed:
        assert f"{p['price_usd_per_hour']:.4f}" in text, p  # never cut, never wrapped
    assert "$" in lines[-1] or any("new nodes:" in line for line in lines)


def test_place_table_keeps_the_detail_columns_on_a_wide_terminal() -> None:
    text = scaler("place", "examples/pods.json", columns=160)
    assert "runner-up" in text and "zone" in text


@pytest.mark.parametrize("columns", [80, 120])
def test_simulate_table_fits_by_leaving_out_detail_columns_never_the_dollars(
    capsys, tmp_path: Path, monkeypatch, columns: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    trace = write_trace(tmp_path / "tiny.json")
    assert main(["simulate", str(trace), "--json"]) == 0
    totals = [r["total_cost_usd"] for r in json.loads(capsys.readouterr().out)["results"]]
    assert main(["simulate", str(trace)]) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= columns, text
    assert "total $" in text and "vs oracle" in text and "pending" in text
    for total in totals:
        assert f"{total:,.1f}" in text or f"{total:.2f}" in text, (total, text)
    if columns == 80:
        assert "left out" in text and "booting $" in text.split("left out")[1]
