"""On-demand prices from the Price List API, through aiobotocore, against a local endpoint
that speaks the API's wire format (tests/fixtures/pricing.py; moto has no Pricing service)."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from scaler.adapters.aws import AwsFleet
from scaler.adapters.aws.pricing import (
    CatalogRegionError,
    OnDemandPriceList,
    on_demand_for,
    prices_from_price_list,
    pricing_endpoint_region,
)
from scaler.adapters.metrics import Metrics
from scaler.core.catalog import Catalog
from scaler.core.model import ON_DEMAND
from tests.adapters.test_metrics import value
from tests.fixtures.pricing import PriceListServer, price_list, product  # noqa: F401

EU_WEST_1 = {"m5.large": 0.107, "m5.xlarge": 0.214, "g5.xlarge": 1.123}


@pytest.mark.anyio
async def test_a_refresh_reads_the_regions_linux_shared_prices_over_every_page(
    aws: str, price_list: PriceListServer  # noqa: F811
):
    many = {f"z9.n{i}": 0.01 * (i + 1) for i in range(230)}
    price_list.prices = {"eu-west-1": {**EU_WEST_1, **many}, "us-east-1": {"m5.large": 0.096}}
    async with OnDemandPriceList.open("eu-west-1") as prices:
        assert await prices.refresh()
    assert prices.usd_per_hour["m5.large"] == 0.107  # not Windows, Dedicated or Unused lines
    assert prices.usd_per_hour["g5.xlarge"] == 1.123
    assert len(prices.usd_per_hour) == 233
    calls = price_list.requests
    assert len(calls) == 3  # 233 products, 100 a page
    assert [c["body"].get("NextToken") for c in calls] == [None, "page-100", "page-200"]
    first = calls[0]
    assert first["target"] == "AWSPriceListService.GetProducts"
    assert first["content_type"] == "application/x-amz-json-1.1"
    # The API lives in three regions only: eu-west-1's prices are asked of Frankfurt.
    assert (first["signed_region"], first["signed_service"]) == ("eu-central-1", "pricing")
    filters = {f["Field"]: f["Value"] for f in first["body"]["Filters"]}
    assert filters["regionCode"] == "eu-west-1"
    assert (filters["operatingSystem"], filters["tenancy"], filters["capacitystatus"]) == (
        "Linux", "Shared", "Used")


@pytest.mark.anyio
@pytest.mark.parametrize("code", ["ThrottlingException", "AccessDeniedException"])
async def test_a_throttled_or_denied_refresh_keeps_the_last_good_prices_and_says_so(
    aws: str, price_list: PriceListServer, code: str  # noqa: F811
):
    price_list.prices = {"eu-west-1": dict(EU_WEST_1)}
    async with OnDemandPriceList.open("eu-west-1", max_attempts=1) as prices:
        with capture_logs() as logs:
            price_list.fail_with = code
            assert not await prices.refresh()
        assert prices.usd_per_hour == {}
        failed = [e for e in logs if e["event"] == "aws.on_demand_prices_failed"]
        assert failed and failed[0]["using"] == "catalog" and code in failed[0]["error"]

        price_list.fail_with = None
        assert await prices.refresh()
        price_list.prices["eu-west-1"]["m5.large"] = 9.0
        price_list.fail_with = code
        with capture_logs() as logs:
            assert not await prices.refresh()
        assert prices.usd_per_hour["m5.large"] == 0.107
        assert [e["using"] for e in logs if e["event"] == "aws.on_demand_prices_failed"] == [
            "last live prices"
        ]


def test_price_list_items_of_another_region_or_without_an_hourly_price_are_rejected():
    good = product("eu-west-1", "m5.large", 0.107)
    other = product("us-east-1", "m5.large", 0.096)
    free = product("eu-west-1", "t9.free", 0.0)
    fresh, rejected = prices_from_price_list([good, other, free, "not json"], "eu-west-1")
    assert fresh == {"m5.large": 0.107}
    assert len(rejected) == 3
    assert any("us-east-1" in r for r in rejected) and any("t9.free" in r for r in rejected)
    assert any("unreadable" in r for r in rejected)
    assert json.loads(good)["terms"]["OnDemand"]  # the fixture lists terms the way AWS does


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [("eu-west-1", "eu-central-1"), ("ap-northeast-1", "ap-south-1"), ("us-west-2", "us-east-1"),
     ("sa-east-1", "us-east-1"), ("me-south-1", "eu-central-1")],
)
def test_the_price_list_endpoint_is_one_of_its_three_regions(region: str, endpoint: str):
    assert pricing_endpoint_region(region) == endpoint


@pytest.mark.anyio
async def test_the_fleet_prices_on_demand_pools_at_the_live_rate(
    aws: str, price_list: PriceListServer, catalog: Catalog  # noqa: F811
):
    price_list.prices = {"us-east-1": {"m5.large": 0.25}}
    async with (
        on_demand_for("us-east-1", catalog.region, live=True) as on_demand,
        AwsFleet.open("none", catalog) as fleet,
    ):
        assert on_demand is not None
        fleet.on_demand = on_demand
        prices = await fleet.prices()
    assert prices.get(catalog["m5.large"], ON_DEMAND) == 0.25
    assert prices.get(catalog["m5.xlarge"], ON_DEMAND) == 0.192  # not listed: the catalog's


@pytest.mark.anyio
async def test_a_catalog_of_the_clusters_region_needs_no_live_prices(catalog: Catalog):
    async with on_demand_for("us-east-1", catalog.region, live=False) as on_demand:
        assert on_demand is None
    with pytest.raises(CatalogRegionError, match="catalog is for us-east-1 but the cluster is in"):
        async with on_demand_for("eu-west-1", catalog.region, live=False):
            pass


@pytest.mark.anyio
async def test_in_the_catalogs_region_a_failed_first_read_falls_back_to_the_catalog(
    aws: str, price_list: PriceListServer, catalog: Catalog  # noqa: F811
):
    price_list.fail_with = "AccessDeniedException"
    async with on_demand_for("us-east-1", catalog.region, live=True) as on_demand:
        assert on_demand is not None and on_demand.usd_per_hour == {}
        assert "AccessDeniedException" in str(on_demand.last_error)


def test_the_on_demand_price_age_follows_the_live_prices_when_there_are_some():
    m = Metrics(clock=lambda: 1_800_000_000.0, catalog_built_at="2027-01-14")
    read_at: list[float | None] = [None]
    m.on_demand_at = lambda: read_at[0]
    catalog_age = 1_800_000_000.0 - 1_799_884_800.0
    assert value(m, "scaler_price_catalog_age_seconds", source="on_demand") == catalog_age
    read_at[0] = 1_799_999_000.0
    assert value(m, "scaler_price_catalog_age_seconds", source="on_demand") == 1000.0
