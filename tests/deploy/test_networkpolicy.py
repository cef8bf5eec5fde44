"""The NetworkPolicy: scaler's pods admit the monitoring namespace to /metrics (8080) and the
API server's CIDRs to the webhook (8443), nothing else; the example overlay sets both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import DEPLOY, build, kustomize, only


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return kustomize(tmp_path_factory.mktemp("overlay-netpol"))


def _ports(rule: dict[str, Any]) -> set[int]:
    return {p["port"] for p in rule["ports"]}


def test_the_policy_selects_the_controller_pods(base: list[dict[str, Any]]) -> None:
    policy = only(base, "NetworkPolicy", "scaler")["spec"]
    labels = only(base, "Deployment", "scaler")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress"]


def test_only_monitoring_reaches_metrics_and_only_the_api_server_the_webhook(
    base: list[dict[str, Any]],
) -> None:
    rules = only(base, "NetworkPolicy", "scaler")["spec"]["ingress"]
    # A rule without `from` or `ports` would admit everyone, or every port.
    assert all(rule.get("from") and rule.get("ports") for rule in rules)
    by_port = {port: rule for rule in rules for port in _ports(rule)}
    assert set(by_port) == {8080, 8443}
    assert all(len(_ports(rule)) == 1 for rule in rules)
    (metrics,) = by_port[8080]["from"]
    assert metrics == {"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}}
    webhook = by_port[8443]["from"]
    assert webhook and all(set(peer) == {"ipBlock"} for peer in webhook)
    # The ports are the ones the container serves (the Service's target ports).
    service_ports = {p["targetPort"] for p in only(base, "Service", "scaler")["spec"]["ports"]}
    assert service_ports == {"http", 8443}


def test_the_example_overlay_names_its_own_control_plane_subnets(
    base: list[dict[str, Any]], tmp_path: Path
) -> None:
    docs = build(DEPLOY / "example-overlay")
    rules = only(docs, "NetworkPolicy", "scaler")["spec"]["ingress"]
    cidrs = [peer["ipBlock"]["cidr"] for peer in rules[1]["from"]]
    assert cidrs == ["10.0.0.0/28", "10.0.0.16/28"]
    assert "192.0.2.0/24" not in cidrs
