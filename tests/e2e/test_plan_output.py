"""``scaler plan`` output a person and a script read: rows that group and name their pods,
disabled pools with their reasons, ``--json``, tables that fit an 80-column terminal; and a
cluster name that matches no ASG stops ``plan`` and ``run --once`` instead of planning
nothing. Real API server and moto, ``scaler`` run as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.e2e.test_controller import CLUSTER, GPU_TEMPLATE, desired, pod_body
from tests.fixtures.aws import Group, tagged_groups
from tests.fixtures.kube import wait_for


@pytest.fixture
def account(aws: str) -> Any:
    return tagged_groups(aws, CLUSTER, [
        Group("cpu-small", "m5.large"),
        Group("gpu-t4", "g4dn.xlarge", tags=GPU_TEMPLATE),
        Group("mystery", "zz9.plural"),  # a type neither the catalog nor EC2 knows
    ])


def scaler(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "scaler", *args], capture_output=True,
                          text=True, timeout=120, env=env, check=False)


@pytest.mark.kube
def test_plan_groups_pods_by_pool_names_them_lists_disabled_pools_and_fits_80_columns(
    kube_env, kube_ns, account
):
    names = [f"notebook-{i}" for i in range(3)]
    for name in names:
        kube_ns.core.create_namespaced_pod(kube_ns.namespace, pod_body(name, {"memory": "2Gi"}))
    kube_ns.core.create_namespaced_pod(kube_ns.namespace, pod_body("huge", {"memory": "4000Gi"}))

    def pending() -> bool:
        return all(
            (c := kube_ns.pod_condition(n, "PodScheduled")) is not None
            and c.reason == "Unschedulable"
            for n in [*names, "huge"]
        )

    wait_for(pending, what="four Unschedulable pods")
    flags = ["--cluster-name", CLUSTER, "--kubeconfig", str(kube_env.kubeconfig)]
    out = scaler("plan", *flags, "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    ups = [a for a in plan["actions"] if a["action"] == "scale_up"]
    (up,) = ups  # one row for the three pods, not three
    assert up["pool"] == "cpu-small" and up["count"] == 3
    assert sorted(up["pods"]) == [f"{kube_ns.namespace}/{n}" for n in names]
    assert up["price_usd_per_hour"] == pytest.approx(0.096)
    (bad,) = [a for a in plan["actions"] if a["action"] == "cannot_place"]
    assert bad["pods"] == [f"{kube_ns.namespace}/huge"]
    (disabled,) = plan["disabled_pools"]
    assert disabled["pool"] == "mystery" and "zz9.plural" in disabled["reason"]

    table = scaler("plan", *flags, columns=80)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    text = table.stdout
    assert "0.0960" in text  # the dollars are never cut
    assert sum("scale up" in line for line in lines) == 1
    assert "notebook-0" in text and "notebook-2" in text
    assert "disabled pools" in text and "mystery" in text
    assert set(desired(account).values()) == {0}, "plan must not write"


@pytest.mark.parametrize("command", [["plan"], ["run", "--once", "--listen", "127.0.0.1:0"]])
def test_a_cluster_name_no_asg_carries_stops_plan_and_run_once(aws, command, tmp_path):
    tagged_groups(aws, CLUSTER, [Group("cpu-small", "m5.large")])
    # A kubeconfig that loads; nothing listens there, and nothing is asked of it.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    done = scaler(*command, "--cluster-name", "prod-typo", "--kubeconfig", str(kubeconfig))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"scaler {command[0]}: --cluster-name prod-typo: no Auto Scaling group in us-east-1 "
        "carries the tags k8s.io/cluster-autoscaler/enabled and "
        "k8s.io/cluster-autoscaler/prod-typo; check --cluster-name and --region"
    ]


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    done = scaler("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"scaler {version('scaler')}"
