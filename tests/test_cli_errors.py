"""The live commands' start-up failures are one line that names what is wrong, no traceback.

Run as a user runs them: ``scaler`` in a fresh process (credentials are resolved once per
process, so an in-process call would reuse the suite's).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def scaler(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scaler", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_no_aws_credentials_is_one_line_naming_the_call(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "KUBECONFIG"}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
    )
    done = scaler("run", "--cluster-name", "c", "--once", "--listen", "127.0.0.1:0", env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "scaler run: DescribeAutoScalingGroups: Unable to locate credentials"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["run", "plan"])
def test_a_bad_kubeconfig_is_one_line_naming_the_file(aws: str, tmp_path: Path, command: str):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    extra = ["--once", "--listen", "127.0.0.1:0"] if command == "run" else []
    done = scaler(
        command,
        "--cluster-name",
        "c",
        "--kubeconfig",
        str(kubeconfig),
        *extra,
        env=dict(os.environ),
    )
    assert done.returncode == 1, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith(f"scaler {command}:")]
    assert line.startswith(f"scaler {command}: Kubernetes configuration (kubeconfig {kubeconfig}):")
    assert "Invalid kube-config" in line
    assert "Traceback" not in done.stderr
