"""``scaler plan`` and ``scaler run --once`` fail fast, in one line naming the API server, when
it cannot be reached or refuses the credentials; ``scaler run`` keeps trying and says why on
``/readyz``. Run as a user runs them: ``scaler`` in a fresh process, AWS on moto, the API
server real (or a port nothing listens on)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.aws import Group, free_port, tagged_groups
from tests.fixtures.kube import KubeEnv, wait_for

pytestmark = pytest.mark.timeout(120)
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def scaler(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scaler", *args],
        capture_output=True, text=True, timeout=timeout_s, env=dict(os.environ),
    )


def closed_port_kubeconfig(kube_env: KubeEnv, directory: Path) -> tuple[Path, str]:
    server = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    path = directory / "kubeconfig-closed"
    path.write_text(kube_env.kubeconfig.read_text().replace(kube_env.server, server))
    return path, server


def bad_token_kubeconfig(kube_env: KubeEnv, directory: Path) -> Path:
    path = directory / "kubeconfig-bad-token"
    path.write_text(kube_env.kubeconfig.read_text().replace(kube_env.token, "not-a-token"))
    return path


def one_group(aws: str) -> None:
    """A tagged group, so the only thing wrong is the API server (no groups stops the
    command before it asks the API server anything)."""
    tagged_groups(aws, "c", [Group("cpu-small", "m5.large")])


def one_line(done: subprocess.CompletedProcess[str], command: str) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith(f"scaler {command}:")]
    return line


@pytest.mark.kube
@pytest.mark.parametrize("command", [["plan"], ["run", "--once", "--listen", "127.0.0.1:0"]])
def test_an_unreachable_api_server_is_one_line_naming_it_and_exit_1(
    aws: str, kube_env: KubeEnv, tmp_path: Path, command: list[str]
):
    kubeconfig, server = closed_port_kubeconfig(kube_env, tmp_path)
    started = time.monotonic()
    # Before: the first list was retried forever and the command never returned.
    one_group(aws)
    done = scaler(*command, "--cluster-name", "c", "--kubeconfig", str(kubeconfig))
    line = one_line(done, command[0])
    assert line.startswith(f"scaler {command[0]}: Kubernetes API server {server}: ")
    assert "Connection refused" in line
    assert time.monotonic() - started < 30


@pytest.mark.kube
def test_an_api_server_refusing_the_token_is_one_line_naming_it_and_exit_1(
    aws: str, kube_env: KubeEnv, tmp_path: Path
):
    # run --once goes through the same check (app.run); one command is enough here.
    kubeconfig = bad_token_kubeconfig(kube_env, tmp_path)
    one_group(aws)
    done = scaler("plan", "--cluster-name", "c", "--kubeconfig", str(kubeconfig))
    assert one_line(done, "plan") == (
        f"scaler plan: Kubernetes API server {kube_env.server}: list nodes: 401 Unauthorized"
    )


def readyz(port: int) -> tuple[int, str]:
    try:
        with _direct.open(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except urllib.error.URLError:
        return 0, ""


@pytest.mark.kube
def test_run_keeps_retrying_an_unreachable_api_server_with_readyz_saying_why(
    aws: str, kube_env: KubeEnv, tmp_path: Path
):
    kubeconfig, server = closed_port_kubeconfig(kube_env, tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "scaler", "run", "--cluster-name", "c", "--kubeconfig",
         str(kubeconfig), "--listen", f"127.0.0.1:{port}", "--no-leader-elect"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    try:
        # Before: /readyz was served only once the caches were listed: nothing answered.
        status, text = wait_for(lambda: (r := readyz(port))[0] and r, timeout_s=60,
                                what="/readyz answering")
        assert status == 503
        assert text.strip() == f"caches not listed yet from the API server {server}"
        time.sleep(3)
        assert process.poll() is None  # still running, still retrying
        assert readyz(port)[0] == 503
    finally:
        process.terminate()
        process.wait(timeout=30)
