"""Bad input to ``scaler simulate`` and ``scaler trace import`` is one line naming the flag,
the file, the entry and the field, found before any simulation runs (issues 10 and 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaler.cli import main
from simulations import sweep

POOLS = [{"name": "small", "instance_type": "m5.large"}]


def write_trace(path: Path, pod_json: str = '{"name": "a", "requests": {"cpu": "1"}, '
                '"duration_s": 600}') -> Path:  # fmt: skip
    path.write_text('{"version": 1, "pools": ' + json.dumps(POOLS) + ', "pods": [' + pod_json + "]}")
    return path


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any simulation started fails the test: the error must come first."""

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a simulation ran before the bad input was reported")

    monkeypatch.setattr(sweep, "run_serial", refuse)
    monkeypatch.setattr(sweep, "run_dask", refuse)


def one_line_error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("flag", "target", "why"),
    [
        ("--plot", "no/such/dir/x.png", "no such directory"),
        ("--report", "no/such/dir/x.html", "no such directory"),
        ("--metrics-out", ".", "is a directory"),
        ("--plot", "trace.json/x.png", "is not a directory"),
    ],
)
def test_an_unwritable_output_path_is_reported_before_any_simulation(
    tmp_path, capsys, no_simulation, flag, target, why
):
    trace = write_trace(tmp_path / "trace.json")
    out = tmp_path / target
    code = main(["simulate", str(trace), "--policy", "scaler", flag, str(out)])
    line = one_line_error(capsys, code)
    assert line.startswith(f"scaler simulate: {flag} {out}: ") and why in line, line


def test_trace_import_checks_its_output_before_reading_the_csv(tmp_path, capsys):
    out = tmp_path / "missing" / "out.json"
    code = main(["trace", "import", "alibaba-openb", str(tmp_path / "absent.csv"), "-o", str(out)])
    line = one_line_error(capsys, code)
    assert line == f"scaler trace: -o {out}: no such directory {out.parent}"


@pytest.mark.parametrize(
    ("pod", "field", "why"),
    [
        ('{"name": "a", "arrival_s": 1e18, "duration_s": 1}', "arrival_s", "must be from 0 to"),
        ('{"name": "a", "arrival_s": Infinity, "duration_s": 1}', "", "Infinity is not a JSON"),
        ('{"name": "a", "arrival_s": NaN, "duration_s": 1}', "", "NaN is not a JSON number"),
        ('{"name": "a", "duration_s": 1e400}', "duration_s", "expected a finite number"),
        ('{"name": "a", "duration_s": -1}', "duration_s", "must be from 0 to"),
        ('{"name": "a", "requests": {"cpu": 1e308}, "duration_s": 1}', "requests.cpu", "too large"),
        ('{"name": "a", "requests": {"memory": 1e300}, "duration_s": 1}', "requests.memory",
         "too large"),
        ('{"name": "a", "requests": {"memory": "' + "9" * 400 + '"}, "duration_s": 1}',
         "requests.memory", "too large"),
    ],
)  # fmt: skip
def test_times_and_amounts_out_of_range_are_one_line_naming_file_pod_and_field(
    tmp_path, capsys, no_simulation, pod, field, why
):
    """Times like 1e18 or Infinity hung the simulator (t + 1 == t); a NaN arrival was
    accepted and came out as invalid JSON; a 1e308 cpu request was an OverflowError."""
    trace = write_trace(tmp_path / "trace.json", pod)
    line = one_line_error(capsys, main(["simulate", str(trace), "--policy", "scaler"]))
    where = f"{trace}: pods[0] (a).{field}: " if field else f"{trace}: not valid JSON: "
    assert line.startswith(f"scaler simulate: {where}") and why in line, line


@pytest.mark.parametrize(
    ("setting", "why"),
    [
        ("launch_failure_rate=2", "expected a number from 0 to 1, got 2"),
        ("launch_failure_rate_by_pool=small-on-demand:-0.5", "from 0 to 1, got -0.5"),
        ("idle_timeout_s=-60", "expected a number from 0 to"),
        ("provision_timeout_s=inf", "got inf"),
        ("boot_s_cpu=nan", "got nan"),
        ("misplaced_factor=0.5", "expected a finite number >= 1"),
    ],
)
def test_set_values_are_range_checked_naming_the_key(tmp_path, capsys, no_simulation, setting, why):
    trace = write_trace(tmp_path / "trace.json")
    line = one_line_error(
        capsys, main(["simulate", str(trace), "--policy", "scaler", "--set", setting])
    )
    assert line.startswith(f"scaler simulate: --set {setting}: ") and why in line, line


@pytest.mark.parametrize("until", ["inf", "nan", "1e18", "-5"])
def test_until_is_a_bounded_time(tmp_path, capsys, until):
    trace = write_trace(tmp_path / "trace.json")
    with pytest.raises(SystemExit) as e:
        main(["simulate", str(trace), "--until", until])
    assert e.value.code == 2
    assert "--until: must be more than 0 and at most" in capsys.readouterr().err
