"""The status ConfigMap and node Events, as ``scaler run`` writes them: ``scaler.app.run``
against the real kube-apiserver, moto over HTTP (ASGs, EC2, SQS), a Spot warning delivered
through a real SQS queue.

The scenario: a Spot node with one running pod gets an interruption warning. The leader
cordons it, launches a replacement on the next-cheapest group, drains and terminates it. The
node must carry Events saying so, and the status ConfigMap must show the interrupted group
backing off, the replacement's scale-up and the removal; ``scaler status`` must print it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import anyio
import pytest

from scaler import app
from tests.e2e.test_lifecycle_live import (  # noqa: F401  (fixtures)
    CLUSTER,
    account,
    nodes_for,
    queues,
    running_pod,
    spot_warning,
    until,
)
from tests.fixtures.aws import free_port

pytestmark = [pytest.mark.kube, pytest.mark.anyio, pytest.mark.timeout(120)]


def node_events(kube_ns: Any, node: str) -> dict[str, Any]:
    events = kube_ns.core.list_namespaced_event(
        "default", field_selector=f"involvedObject.kind=Node,involvedObject.name={node}"
    ).items
    return {e.reason: e for e in events if e.source.component == "scaler"}


def status(kube_ns: Any) -> dict[str, Any] | None:
    cms = kube_ns.core.list_namespaced_config_map(kube_ns.namespace).items
    cm = next((c for c in cms if c.metadata.name == "scaler-status"), None)
    return json.loads(cm.data["status.json"]) if cm is not None else None


async def test_a_spot_interruption_shows_in_node_events_and_the_status_configmap(
    kube_env, kube_ns, account, queues  # noqa: F811
):
    (node, _instance), _ = nodes_for(kube_ns, account, "spot-m5")
    running_pod(kube_ns, "work", node)
    sqs, main, quarantine = queues
    opts = app.RunOptions(
        cluster_name=CLUSTER,
        kubeconfig=str(kube_env.kubeconfig),
        leader_elect=False,
        lease_namespace=kube_ns.namespace,
        identity="status-test",
        listen_host="127.0.0.1",
        listen_port=free_port(),
        queue_url=main,
        quarantine_queue_url=quarantine,
        status_interval_s=0.2,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(app.run, opts)
        first = await until(lambda: status(kube_ns), what="the first status write")
        sqs.send_message(QueueUrl=main, MessageBody=spot_warning(_instance))

        def done() -> dict[str, Any] | None:
            doc = status(kube_ns)
            pools = {p["name"]: p for p in (doc or {}).get("pools", ())}
            spot = pools.get("spot-m5", {})
            ok = (
                spot.get("last_scale_down_at")
                and spot.get("health") == "backoff"
                and pools.get("od-m5", {}).get("last_scale_up_at")
                and {"Cordoned", "SpotInterruption", "Drained", "ScaleDown"}
                <= set(node_events(kube_ns, node))
            )
            return doc if ok else None

        doc = await until(done, timeout_s=60, what="the interruption handled and reported")
        tg.cancel_scope.cancel()

    assert first["leader"] == "status-test" and first["cluster_name"] == CLUSTER
    assert first["nodes"] == 2 and first["pending_pods"] == 0 and first["warnings"] == []
    pools = {p["name"]: p for p in doc["pools"]}
    assert set(pools) == {"spot-m5", "od-m5", "od-m5x"}
    assert pools["spot-m5"]["backoff_reason"] == "Spot interruption"
    assert pools["spot-m5"]["instance_types"] == ["m5.large"]
    assert pools["od-m5"]["health"] == "ok" and pools["od-m5x"]["last_scale_up_at"] is None
    assert doc["last_tick_at"] is not None

    events = node_events(kube_ns, node)
    assert events["SpotInterruption"].type == "Warning"
    assert events["Cordoned"].involved_object.kind == "Node"
    assert "evicted 1 of 1 pods" in events["Drained"].message
    assert "pool spot-m5" in events["ScaleDown"].message
    assert events["ScaleDown"].reporting_instance == "status-test"

    # scaler status reads the same document back, as a person runs it.
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-m", "scaler", "status", "--kubeconfig", str(kube_env.kubeconfig),
         "--namespace", kube_ns.namespace, "--json"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["pools"] == status(kube_ns)["pools"]
    table = subprocess.run(
        [sys.executable, "-m", "scaler", "status", "--kubeconfig", str(kube_env.kubeconfig),
         "--namespace", kube_ns.namespace],
        capture_output=True, text=True, timeout=60, env={**env, "COLUMNS": "100"}, check=False,
    )
    assert table.returncode == 0, table.stderr
    assert "leader status-test" in table.stdout
    assert "Spot interruption" in table.stdout and "backoff" in table.stdout
    assert all(len(line) <= 100 for line in table.stdout.splitlines())


def test_scaler_status_without_a_status_configmap_is_one_line(kube_env, kube_ns):
    out = subprocess.run(
        [sys.executable, "-m", "scaler", "status", "--kubeconfig", str(kube_env.kubeconfig),
         "--namespace", kube_ns.namespace],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"scaler status: read configmap {kube_ns.namespace}/scaler-status: 404 "
        'configmaps "scaler-status" not found'
    )
