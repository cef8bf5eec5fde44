"""`scaler plan` as a person runs it, against the real API server and moto: read-only, and a
table that says what the next tick would do and why."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.test_controller import account, desired, pod_body  # noqa: F401

pytestmark = pytest.mark.kube


def test_scaler_plan_prints_the_next_ticks_actions_and_writes_nothing(kube_env, kube_ns, account):  # noqa: F811
    kube_ns.core.create_namespaced_pod(kube_ns.namespace, pod_body("notebook", {"memory": "2Gi"}))
    kube_ns.core.create_namespaced_pod(
        kube_ns.namespace, pod_body("train", {"cpu": "2", "nvidia.com/gpu": "1"})
    )
    kube_ns.core.create_namespaced_pod(kube_ns.namespace, pod_body("huge", {"memory": "4000Gi"}))

    def pending() -> bool:
        return all(
            (c := kube_ns.pod_condition(n, "PodScheduled")) is not None and c.reason == "Unschedulable"
            for n in ("notebook", "train", "huge")
        )

    from tests.fixtures.kube import wait_for

    wait_for(pending, what="three Unschedulable pods")
    out = subprocess.run(
        [sys.executable, "-m", "scaler", "plan", "--cluster-name", "e2e",
         "--kubeconfig", str(kube_env.kubeconfig)],
        capture_output=True, text=True, timeout=120, check=False,
        # A wide terminal: this test reads the content (test_plan_output.py the fit at 80).
        env={**os.environ, "COLUMNS": "160"},
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "scaler plan" in text
    assert "scale up" in text and "cpu-small (m5.large)" in text and "gpu-t4 (g4dn.xlarge)" in text
    assert "cannot place" in text and "needs memory" in text
    assert set(desired(account).values()) == {0}, "plan must not write"
