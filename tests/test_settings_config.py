"""Settings in one place: a config file < SCALER_* environment variables < --set, each
checked at start with a one-line error naming where the bad key came from; and the
generated reference docs/settings.md is what the code says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from scaler.cli import main
from scaler.commands.configuration import env_overrides, resolve
from scaler.commands.settings import markdown
from scaler.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def scaler(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SCALER_")}
    return subprocess.run([sys.executable, "-m", "scaler", *args], capture_output=True,
                          text=True, timeout=120, env={**base, **(env or {})}, check=False)


def test_docs_settings_md_is_generated_from_the_code():
    committed = (ROOT / "docs" / "settings.md").read_text()
    assert committed == markdown(), (
        "docs/settings.md is stale: run `scaler settings --markdown > docs/settings.md`"
    )


def test_the_reference_names_every_setting_with_its_default_and_why():
    text = markdown()
    assert "| `idle_timeout_s` | float | `120.0` | Remove a node this long after" in text
    assert "| `expander` | Literal['cost', 'least-waste'] | `cost` |" in text
    for line in text.splitlines():
        if line.startswith("| `"):
            assert not line.endswith("|  |"), f"a setting without a docstring: {line}"


def test_file_then_environment_then_set_each_overriding_the_last(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "idle_timeout_s: 300\nbatch_max_s: 20\nscale_up:\n  batch_idle_s: 2\n"
        "pinning.enabled: false\nspot_interruptions_per_month_by_bucket: [0.1, 0.2]\n"
    )
    done = scaler("settings", "--json", "--config", str(config), "--set", "batch_max_s=30",
                  env={"SCALER_IDLE_TIMEOUT_S": "400", "SCALER_BATCH_MAX_S": "25",
                       "SCALER_SCALE_DOWN__MAX_REMOVALS_PER_MINUTE": "5",
                       # What the kubelet injects for a Service named scaler: not settings.
                       "SCALER_SERVICE_HOST": "10.0.0.1", "SCALER_PORT": "tcp://10.0.0.1:8080",
                       "SCALER_PORT_8080_TCP_ADDR": "10.0.0.1"})
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["scale_down"]["idle_timeout_s"] == 400.0  # env over file
    assert got["scale_up"]["batch_max_s"] == 30.0  # --set over env over file
    assert got["scale_up"]["batch_idle_s"] == 2.0  # file, by section
    assert got["pinning"]["enabled"] is False  # file, dotted
    assert got["placement"]["spot_interruptions_per_month_by_bucket"] == [0.1, 0.2]
    assert got["scale_down"]["max_removals_per_minute"] == 5  # env, by section


def test_json_config_works_too(tmp_path: Path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"scale_down": {"idle_timeout_s": 42}, "expander": "least-waste"}))
    got = resolve(Settings(), config=str(config), environ={}, sets=[])
    assert got.scale_down.idle_timeout_s == 42.0 and got.placement.expander == "least-waste"


@pytest.mark.parametrize(
    ("text", "env", "error"),
    [
        ("idle_timeout_s: soon\n", {},
         "--config {path}: idle_timeout_s=soon: expected float"),
        ("idle_timeout: 3\n", {}, "--config {path}: idle_timeout: is not a setting; known: "),
        ("scale_dwn:\n  idle_timeout_s: 3\n", {},
         "--config {path}: scale_dwn: a mapping, but 'scale_dwn' is not a section"),
        ("- idle_timeout_s\n", {}, "--config {path}: expected a mapping of setting names"),
        ("idle_timeout_s: [1\n", {}, "--config {path}: not YAML or JSON (line 2)"),
        ("", {"SCALER_IDLE_TIMOUT_S": "3"},
         "SCALER_IDLE_TIMOUT_S: idle_timout_s: is not a setting; known: "),
        ("", {"SCALER_EXPANDER": "cheapest"},
         "SCALER_EXPANDER: expander=cheapest: expected one of cost, least-waste"),
    ],
)
def test_a_bad_key_or_value_stops_run_at_start_with_one_line_naming_it(
    tmp_path: Path, text: str, env: dict[str, str], error: str, capsys, monkeypatch
):
    """In-process: the settings are resolved before any connection is made."""
    for name in [n for n in os.environ if n.startswith("SCALER_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    try:
        code = main(["run", "--cluster-name", "c", "--once", "--listen", "127.0.0.1:0",
                     "--config", str(config)])
    finally:
        structlog.reset_defaults()  # `run` configured logging for the process
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("scaler run: " + error.format(path=config)), line


def test_a_missing_config_file_is_one_line_naming_it(tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    done = scaler("plan", "--cluster-name", "c", "--config", str(missing))
    assert done.returncode == 2
    assert done.stderr.strip() == f"scaler plan: --config {missing}: No such file or directory"


def test_service_link_variables_are_not_settings():
    assert env_overrides({"SCALER_SERVICE_PORT_METRICS": "8080", "SCALER_PORT": "tcp://x",
                          "SCALER_PORTS_X": "1", "HOME": "/tmp"}) == {"ports_x": "1"}
