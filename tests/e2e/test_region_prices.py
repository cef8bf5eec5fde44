"""A cluster outside us-east-1: `scaler plan` prices it at its own region's rates, read from
the Price List API (the local endpoint of tests/fixtures/pricing.py), with its ASGs in moto's
eu-west-1, or refuses in one line when only the bundled us-east-1 catalog could price it.

eu-west-1 on-demand prices below are AWS's of 2024-02 (m5.large $0.107/h against us-east-1's
$0.096/h in the bundled catalog)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.e2e.test_controller import desired, pod_body
from tests.fixtures.aws import Group, tagged_groups
from tests.fixtures.kube import wait_for
from tests.fixtures.pricing import PriceListServer, price_list  # noqa: F401

CLUSTER = "dublin"
EU_WEST_1 = {"m5.large": 0.107, "m5.xlarge": 0.214, "m6a.large": 0.0963}


@pytest.fixture
def eu_account(aws: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return tagged_groups(aws, CLUSTER, [Group("cpu-m5", "m5.large")],
                         zones=("eu-west-1a", "eu-west-1b"))


def _plan(*flags: str, kubeconfig: str = "/nonexistent") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scaler", "plan", "--cluster-name", CLUSTER,
         "--region", "eu-west-1", "--kubeconfig", kubeconfig, *flags],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_plan_refuses_a_catalog_of_another_region_in_one_line(eu_account: Any):
    out = _plan()
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines == [
        "scaler plan: the catalog is for us-east-1 but the cluster is in eu-west-1: every node "
        "would be priced at us-east-1's rates; pass --catalog with a eu-west-1 catalog "
        "(tools/build_catalog.py --region eu-west-1), --live-prices (AWS Price List API), or "
        "--region if eu-west-1 is wrong"
    ]


def test_plan_refuses_when_live_prices_are_denied_in_another_region(
    eu_account: Any, price_list: PriceListServer  # noqa: F811
):
    price_list.fail_with = "AccessDeniedException"
    out = _plan("--live-prices")
    assert out.returncode == 2, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("scaler plan: the catalog is for us-east-1 but the cluster is in "
                           "eu-west-1, and --live-prices could not read eu-west-1's prices")
    assert "AccessDeniedException" in last and "--catalog" in last
    assert {r["signed_region"] for r in price_list.requests} == {"eu-central-1"}


@pytest.mark.kube
def test_plan_prices_an_eu_west_1_cluster_at_eu_west_1_rates(
    kube_env: Any, kube_ns: Any, eu_account: Any, price_list: PriceListServer  # noqa: F811
):
    price_list.prices = {"eu-west-1": dict(EU_WEST_1), "us-east-1": {"m5.large": 0.096}}
    kube_ns.core.create_namespaced_pod(kube_ns.namespace, pod_body("web", {"memory": "2Gi"}))

    def pending() -> bool:
        c = kube_ns.pod_condition("web", "PodScheduled")
        return c is not None and c.reason == "Unschedulable"

    wait_for(pending, what="an Unschedulable pod")
    out = _plan("--live-prices", "--json", kubeconfig=str(kube_env.kubeconfig))
    assert out.returncode == 0, out.stderr
    (up,) = [a for a in json.loads(out.stdout)["actions"] if a["action"] == "scale_up"]
    assert (up["pool"], up["instance_type"]) == ("cpu-m5", "m5.large")
    assert up["price_usd_per_hour"] == pytest.approx(0.107)  # eu-west-1's, not us-east-1's 0.096
    assert price_list.requests, "the Price List API was not asked"
    filters = {f["Field"]: f["Value"] for f in price_list.requests[0]["body"]["Filters"]}
    assert filters["regionCode"] == "eu-west-1"


@pytest.mark.kube
def test_run_once_scales_an_eu_west_1_cluster_at_eu_west_1_rates(
    kube_env: Any, kube_ns: Any, aws: str, monkeypatch: pytest.MonkeyPatch,
    price_list: PriceListServer,  # noqa: F811
):
    """The controller, not only plan: one tick of `scaler run` buys the node at the price the
    Price List API gives for eu-west-1 and writes the desired size in moto's eu-west-1."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    account = tagged_groups(aws, CLUSTER, [Group("cpu-m5", "m5.large"),
                                           Group("cpu-m6a", "m6a.large")],
                            zones=("eu-west-1a", "eu-west-1b"))
    price_list.prices = {"eu-west-1": dict(EU_WEST_1)}
    kube_ns.core.create_namespaced_pod(kube_ns.namespace, pod_body("web", {"memory": "2Gi"}))

    def pending() -> bool:
        c = kube_ns.pod_condition("web", "PodScheduled")
        return c is not None and c.reason == "Unschedulable"

    wait_for(pending, what="an Unschedulable pod")
    out = subprocess.run(
        [sys.executable, "-m", "scaler", "run", "--once", "--no-leader-elect",
         "--listen", "127.0.0.1:0", "--cluster-name", CLUSTER, "--region", "eu-west-1",
         "--kubeconfig", str(kube_env.kubeconfig), "--live-prices", "--log-format", "json",
         # One tick decides at once: no batch window to wait out.
         "--set", "batch_idle_s=0", "--set", "batch_max_s=0"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in (out.stdout + out.stderr).splitlines()
              if line.startswith("{")]
    (up,) = [e for e in events if e.get("event") == "scale_up"]
    # m6a.large is eu-west-1's cheapest fit at $0.0963/h (us-east-1's catalog says $0.0864).
    assert up["pool"] == "cpu-m6a"
    assert up["price_usd_per_hour"] == pytest.approx(EU_WEST_1["m6a.large"])
    assert desired(account) == {"cpu-m5": 0, "cpu-m6a": 1}
    assert {r["signed_region"] for r in price_list.requests} == {"eu-central-1"}
