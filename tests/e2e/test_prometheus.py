"""A real Prometheus scrapes the real controller, and every dashboard query has data.

The controller is ``scaler.app.run`` (leader election on, in the test's namespace) against the
session's kube-apiserver and moto, serving /metrics on 127.0.0.1. Prometheus (Debian's
``prometheus`` package) scrapes it every second and loads the alert rules. The scenario makes
every panel's data real, not zero-filled:

- ASG cpu-small (m5.large, $0.096/h, min 1): node ``small-idle`` is Ready with no pod: idle.
- ASG cpu-big (m5.4xlarge, $0.768/h): ``big-busy`` runs two small pods (misplaced: $0.384/h
  each where an m5.large would do), ``big-booting`` is not Ready (booting), ``big-doomed``
  gets an EC2 Spot interruption warning through SQS: drained in time, then terminated.
- A pod nothing can schedule (its affinity excludes every node by hostname): scaler scales
  cpu-small up for it. Every node is tainted, and the pods tolerate it: scaler learns a
  group's taints from its nodes.

The controller exports the misplaced pods' top 1 (``misplaced_top_pods=1``), so the second
lands in the per-namespace rest. Grafana's variables are given fixed values here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from anyio.from_thread import start_blocking_portal

from scaler import app
from scaler.core.settings import ScaleDownSettings, Settings
from tests.fixtures.aws import Group, free_port, tagged_groups
from tests.fixtures.kube import KubeScope, wait_for

pytestmark = [pytest.mark.kube, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "manifests/dashboards/scaler-dashboard.json"
RULES = REPO / "manifests/alerts/scaler-rules.yaml"
SPOT_WARNING = REPO / "tests/fixtures/eventbridge/spot-interruption-warning.json"
CLUSTER = "e2e-prom"
CA = "k8s.io/cluster-autoscaler/"
TAINT = {"key": "e2e.scaler.io/no-pods", "value": "true", "effect": "NoSchedule"}
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__range_s": "600",
    "$__range": "10m",
    "$pool": ".*",
}
SHAPES = {
    "m5.large": {"cpu": 2, "memory": "7680Mi", "pods": 29},
    "m5.4xlarge": {"cpu": 16, "memory": "63Gi", "pods": 234},
}

# Nothing here may go through a proxy the machine defines: everything is on 127.0.0.1.
_local = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_json(url: str) -> Any:
    with _local.open(url, timeout=10) as answer:
        return json.load(answer)


def get_text(url: str) -> str:
    with _local.open(url, timeout=10) as answer:
        return answer.read().decode()


# --------------------------------------------------------------------------- the world


def make_account(endpoint: str) -> dict[str, list[tuple[str, str]]]:
    """Two tagged ASGs; returns each group's (instance id, zone), oldest first."""
    asg = tagged_groups(endpoint, CLUSTER, [
        Group("cpu-small", "m5.large", min_size=1, max_size=10, desired=1),
        Group("cpu-big", "m5.4xlarge", max_size=10, desired=3),
    ], zones=("us-east-1a",))
    groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    return {
        g["AutoScalingGroupName"]: sorted(
            (i["InstanceId"], i["AvailabilityZone"]) for i in g["Instances"]
        )
        for g in groups
    }


def make_node(
    kube: KubeScope, name: str, itype: str, instance: tuple[str, str], *, ready: bool = True
) -> None:
    instance_id, zone = instance
    kube.make_node(
        name,
        capacity=SHAPES[itype],
        ready=ready,
        taints=[TAINT],
        labels={"node.kubernetes.io/instance-type": itype, "topology.kubernetes.io/zone": zone},
        provider_id=f"aws:///{zone}/{instance_id}",
    )


def spot_warning(instance_id: str) -> str:
    event = json.loads(SPOT_WARNING.read_text())
    event["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event["resources"] = [f"arn:aws:ec2:us-east-1a:instance/{instance_id}"]
    event["detail"]["instance-id"] = instance_id
    return json.dumps(event)


@contextlib.contextmanager
def prometheus(tmp_path: Path, target_port: int) -> Iterator[str]:
    """A Prometheus on 127.0.0.1 scraping ``target_port`` every second, with scaler's rules;
    yields its URL and stops it (by PID) at the end."""
    binary = shutil.which("prometheus")
    if binary is None:
        message = "prometheus not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must install it: {message}", pytrace=False)
        pytest.skip(message)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(
            {  # JSON is YAML
                "global": {
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "evaluation_interval": "1s",
                },
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "scaler",
                        "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                    }
                ],
            }
        )
    )
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            with contextlib.suppress(OSError):
                return get_text(f"{url}/-/ready").startswith("Prometheus Server is Ready")
            return False

        wait_for(ready, timeout_s=30, what="Prometheus to be ready")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    answer = get_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def scalar(prom: str, expr: str) -> float | None:
    result = query(prom, expr)
    return float(result[0]["value"][1]) if result else None


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of the dashboard and its pool variable, with
    Grafana's variables replaced by fixed values."""
    board = json.loads(DASHBOARD.read_text())
    out = [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        found = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable.get("definition", ""))
        if found:
            out.append((f"variable {variable['name']}", f"count by ({found[2]}) ({found[1]})"))
    queries = []
    for title, expr in out:
        for name, val in GRAFANA_VARIABLES.items():  # longest names first: $__range_s
            expr = expr.replace(name, val)
        assert "$" not in expr, f"{title}: unknown variable in {expr}"
        queries.append((title, expr))
    return queries


# ------------------------------------------------------------------------------- test


def test_prometheus_scrapes_the_controller_and_every_dashboard_query_has_data(
    kube_env: Any, kube_ns: KubeScope, aws: str, tmp_path: Path
) -> None:
    instances = make_account(aws)
    make_node(kube_ns, "small-idle", "m5.large", instances["cpu-small"][0])
    busy, booting, doomed = instances["cpu-big"]
    make_node(kube_ns, "big-busy", "m5.4xlarge", busy)
    make_node(kube_ns, "big-booting", "m5.4xlarge", booting, ready=False)
    make_node(kube_ns, "big-doomed", "m5.4xlarge", doomed)
    # scaler learns a group's taints from its nodes, so the taint on every node is the
    # groups' too: the pods tolerate it (a pod that did not could use no group at all). The
    # waiting pod is kept off the existing nodes by their hostnames instead: a hostname is
    # the node's own, not its group's, so a new cpu-small node still fits it.
    for name in ("train-a", "train-b"):
        kube_ns.make_pod(name, requests={"cpu": "500m", "memory": "1Gi"}, node_name="big-busy",
                         tolerations=[TAINT])
        kube_ns.set_pod_phase(name, "Running")
    from kubernetes import client

    off_these = client.V1NodeSelectorRequirement(
        key="kubernetes.io/hostname",
        operator="NotIn",
        values=["small-idle", "big-busy", "big-booting", "big-doomed"],
    )
    kube_ns.core.create_namespaced_pod(kube_ns.namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="waiting"),
        spec=client.V1PodSpec(
            containers=[client.V1Container(
                name="main", image="pause",
                resources=client.V1ResourceRequirements(
                    requests={"cpu": "500m", "memory": "1Gi"}
                ),
            )],
            tolerations=[client.V1Toleration(**TAINT)],
            affinity=client.V1Affinity(node_affinity=client.V1NodeAffinity(
                required_during_scheduling_ignored_during_execution=client.V1NodeSelector(
                    node_selector_terms=[client.V1NodeSelectorTerm(match_expressions=[off_these])]
                )
            )),
            termination_grace_period_seconds=0,
        ),
    ))
    wait_for(
        lambda: (c := kube_ns.pod_condition("waiting", "PodScheduled")) and c.status == "False",
        timeout_s=20,
        what="the scheduler to find no node for the waiting pod",
    )
    sqs = boto3.client("sqs", endpoint_url=aws)
    queue_url = sqs.create_queue(QueueName="scaler-e2e-prom")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=spot_warning(doomed[0]))

    port = free_port()
    opts = app.RunOptions(
        cluster_name=CLUSTER,
        kubeconfig=str(kube_env.kubeconfig),
        leader_elect=True,
        lease_namespace=kube_ns.namespace,
        identity="e2e-replica",
        listen_host="127.0.0.1",
        listen_port=port,
        queue_url=queue_url,
        review_interval_s=1.0,
        misplaced_top_pods=1,
        # Idle nodes stay, so the idle waste the dashboard shows stays too.
        settings=Settings(scale_down=ScaleDownSettings(idle_timeout_s=3600.0)),
    )
    ns = kube_ns.namespace
    with prometheus(tmp_path, port) as prom, start_blocking_portal() as portal:
        controller = portal.start_task_soon(app.run, opts)
        try:
            # What the scenario must have made happen, as the controller exports it.
            def exported() -> str | None:
                assert not controller.done(), controller.exception()
                with contextlib.suppress(OSError):
                    text = get_text(f"http://127.0.0.1:{port}/metrics")
                    wanted = (
                        "scaler_leader 1.0",
                        'scaler_scale_ups_total{pool="cpu-small"} 1.0',
                        'scaler_interruptions_total{kind="spot_interruption",outcome="drained_in_time"} 1.0',
                        'scaler_node_removals_total{pool="cpu-big",reason="interrupted"} 1.0',
                        f'scaler_misplaced_waste_dollars_per_hour{{namespace="{ns}"}}',
                        'scaler_waste_dollars_per_hour{pool="cpu-big",reason="booting"} 0.768',
                    )
                    return text if all(w in text for w in wanted) else None
                return None

            wait_for(exported, timeout_s=60, what="the controller to scale up, drain and review")
            # ...and as Prometheus has scraped it.
            wait_for(
                lambda: (
                    scalar(prom, 'sum(scaler_interruptions_total{outcome="drained_in_time"})') == 1
                ),
                timeout_s=30,
                what="Prometheus to scrape the controller",
            )

            # Every expression of the dashboard returns data. A rate needs two scrapes of the
            # new value, so each query gets a bounded while to have some.
            empty = []
            deadline = time.monotonic() + 30
            for title, expr in dashboard_queries():
                while not query(prom, expr) and time.monotonic() < deadline:
                    time.sleep(0.5)
                if not query(prom, expr):
                    empty.append(f"{title}: {expr}")
            assert not empty, "dashboard queries without data:\n" + "\n".join(empty)

            # The values are the scenario's.
            waste = 'scaler_waste_dollars_per_hour{{reason="{}",pool="{}"}}'
            assert scalar(prom, waste.format("idle", "cpu-small")) == pytest.approx(0.096)
            assert scalar(prom, waste.format("booting", "cpu-big")) == pytest.approx(0.768)
            assert scalar(prom, waste.format("misplaced", "cpu-big")) == pytest.approx(
                2 * (0.384 - 0.096)
            )
            assert scalar(prom, waste.format("oversized", "cpu-big")) == pytest.approx(0.0)
            (top,) = query(prom, "scaler_misplaced_pod_waste_dollars_per_hour")
            assert top["metric"]["namespace"] == ns and top["metric"]["pod"] in {
                "train-a",
                "train-b",
            }
            rest = f'scaler_misplaced_waste_dollars_per_hour{{namespace="{ns}"}}'
            assert scalar(prom, rest) == pytest.approx(0.384 - 0.096)
            assert scalar(prom, 'scaler_nodes_added_total{pool="cpu-small"}') == 1
            assert scalar(prom, "scaler_scale_up_latency_seconds_count") == 1
            assert 0 <= scalar(prom, "scaler_scale_up_latency_seconds_sum") < 30
            assert scalar(prom, "scaler_decision_duration_seconds_count") >= 1
            assert scalar(prom, "scaler_pending_pods") == 1
            assert scalar(prom, 'scaler_messages_total{kind="spot_interruption"}') == 1
            assert scalar(prom, 'scaler_price_catalog_age_seconds{source="spot"}') is not None
            assert scalar(prom, "scaler_pools_disabled") == 0
            # Prometheus loaded every alert rule (promtool tests what they do).
            groups = get_json(f"{prom}/api/v1/rules")["data"]["groups"]
            loaded = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
            assert {
                "ScalerWasteHigh",
                "ScalerNotLeading",
                "ScalerPodsPendingTooLong",
                "ScalerInterruptionDrainedLate",
            } <= loaded
        finally:
            controller.cancel()
            with contextlib.suppress(BaseException):
                controller.result(timeout=30)
    assert controller.cancelled()
