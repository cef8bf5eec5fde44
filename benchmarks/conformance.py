"""Conformance figure: pods bound by the real kube-scheduler onto the node scaler chose, out of
the pods kube-scheduler could place at all, over the whole conformance set.

Runs tests/conformance and tests/e2e/test_conformance_templates.py with pytest (real
kube-apiserver + kube-scheduler, moto), each binding check appending its outcome to a results
file (``SCALER_CONFORMANCE_RESULTS``, written by ``tests.conformance.support.expect_bound``
and ``expect_unplaceable_everywhere``), and prints the figure computed from those records::

    python benchmarks/conformance.py

A pod counts as placeable when its test checked a binding for it (the test built a group that
can run it); it counts as bound to scaler's node when kube-scheduler bound it to the node (or
one of the interchangeable nodes) scaler bought for it. A pod scaler called unplaceable is
listed with scaler's reason and whether kube-scheduler, given a node of every group, refused
it too. Tests that failed before any check are listed: their pods are in neither count.
Exit status 1 unless every check held and pytest passed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = ("tests/conformance", "tests/e2e/test_conformance_templates.py")
RESULTS_ENV = "SCALER_CONFORMANCE_RESULTS"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.jsonl"
        junit = Path(tmp) / "junit.xml"
        env = {**os.environ, RESULTS_ENV: str(results)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        run = subprocess.run(
            [sys.executable, "-m", "pytest", *SUITE, "-q", "-p", "no:cacheprovider",
             f"--junitxml={junit}"],
            cwd=REPO, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
        tests = _outcomes(junit)
    checked = [r for r in records if "bound" in r]
    unplaceable = [r for r in records if "unplaceable" in r]
    ok = [r for r in checked if r["ok"]]
    print(f"{len(ok)}/{len(checked)} pods bound to the node scaler chose; "
          f"{len(unplaceable)} pods scaler called unplaceable, each one no group could run: "
          f"{'yes' if all(r['no_group_runs_it'] for r in unplaceable) else 'NO'}")  # fmt: skip
    for r in unplaceable:
        verdict = "kube-scheduler refused it on a node of every group" if r["no_group_runs_it"] else (
            "kube-scheduler PLACED it")
        print(f"  unplaceable {r['pod']}: {r['unplaceable']} ({verdict})")
    for r in checked:
        if not r["ok"]:
            print(f"  MISPLACED {r['pod']} ({r['test']}): bound to {r['bound']}, scaler chose {r['chosen']}")
    with_checks = {r["test"] for r in records}
    failed = [t for t, passed in tests.items() if not passed]
    for t in failed:
        if t not in with_checks:
            print(f"  FAILED before any binding check: {t}")
    print(f"{len(tests)} tests, {len(failed)} failed; pytest exit status {run.returncode}")
    if run.returncode:
        print(run.stdout[-3000:])
    good = run.returncode == 0 and len(ok) == len(checked) and all(
        r["no_group_runs_it"] for r in unplaceable)  # fmt: skip
    return 0 if good else 1


def _outcomes(junit: Path) -> dict[str, bool]:
    """pytest node id -> passed, from the JUnit XML report."""
    import xml.etree.ElementTree as ET

    if not junit.exists():
        return {}
    out = {}
    for case in ET.parse(junit).iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        failed = any(c.tag in ("failure", "error") for c in case)
        out[f"{path}::{case.get('name')}"] = not failed
    return out


if __name__ == "__main__":
    sys.exit(main())
