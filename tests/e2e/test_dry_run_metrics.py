"""``scaler run --dry-run`` counts nothing it did not do: a real dry-run process (the CLI, in a
subprocess) against the session's kube-apiserver + kube-scheduler and moto, scraped over HTTP
on 127.0.0.1. And the Metrics adapter's rule, unit-sized."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scaler.adapters.metrics import DRY_RUN_EVENTS, Metrics
from scaler.core.actions import RemovalCause, ScaleUp
from scaler.telemetry import LaunchFailed, NodeRemoved, ScaledUp
from tests.fixtures.aws import Group, free_port, tagged_groups

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "dry"
_local = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_dry_run_metrics_count_only_what_would_have_been_written():
    live, dry = Metrics(), Metrics(dry_run=True)
    for m in (live, dry):
        m(ScaledUp(ScaleUp("small", 3, ("ns/a",), "m5.large", 0.096, "x")))
        m(NodeRemoved("n1", "small", RemovalCause.IDLE, "idle 130s"))
        m(LaunchFailed("small", "InsufficientInstanceCapacity"))
    got = {name: samples(_text(m)) for name, m in (("live", live), ("dry", dry))}
    small = frozenset({("pool", "small")})
    assert got["live"][("scaler_nodes_added_total", small)] == 3
    assert ("scaler_nodes_added_total", small) not in got["dry"]
    assert ("scaler_scale_ups_total", small) not in got["dry"]
    assert got["dry"][("scaler_dry_run_actions_total", frozenset({("action", "scale_up")}))] == 1
    assert got["dry"][("scaler_dry_run_actions_total", frozenset({("action", "remove_node")}))] == 1
    # What it saw is still a fact.
    assert got["dry"][("scaler_launch_failures_total", small)] == 1
    assert got["dry"][("scaler_dry_run", frozenset())] == 1
    assert got["live"][("scaler_dry_run", frozenset())] == 0
    assert not [k for k in got["live"] if k[0] == "scaler_dry_run_actions_total"]
    assert {e.name for e in DRY_RUN_EVENTS} == {"scale_up", "remove_node", "migrate", "drained"}


def _text(m: Metrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(m.registry).decode()


@pytest.mark.kube
def test_a_dry_run_process_serves_zero_scale_ups_and_counts_what_it_would_do(
    kube_env, kube_ns, aws
):
    account = tagged_groups(aws, CLUSTER, [Group("cpu-small", "m5.large")])
    kube_ns.make_pod("nb", requests={"cpu": "500m", "memory": "2Gi"})
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scaler", "run", "--cluster-name", CLUSTER,
         "--kubeconfig", str(kube_env.kubeconfig), "--dry-run", "--no-leader-elect",
         "--listen", f"127.0.0.1:{port}"],
        cwd=REPO, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 45
        got: dict[tuple[str, frozenset], float] = {}
        would = ("scaler_dry_run_actions_total", frozenset({("action", "scale_up")}))
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                with _local.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                    got = samples(answer.read().decode())
            except OSError:
                got = {}
            if got.get(would, 0) >= 1:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"no dry-run scale-up in /metrics after 45 s: {sorted(got)[:20]}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    small = frozenset({("pool", "cpu-small")})
    assert got[("scaler_dry_run", frozenset())] == 1
    assert got.get(("scaler_scale_ups_total", small), 0) == 0
    assert got.get(("scaler_nodes_added_total", small), 0) == 0
    assert not got.get(("scaler_scale_up_latency_seconds_count", frozenset()), 0)
    groups = account.describe_auto_scaling_groups()["AutoScalingGroups"]
    assert [g["DesiredCapacity"] for g in groups] == [0], "a dry run writes nothing"
