"""Price-override tags read from ASGs in moto (server mode, real HTTP) through AwsFleet."""

from __future__ import annotations

import pytest

from scaler.adapters.aws import AwsFleet
from scaler.adapters.aws.tags import TagError, parse_price_override
from scaler.core.catalog import Catalog
from tests.fixtures.aws import Group, tagged_groups

CLUSTER = "priced"


@pytest.mark.anyio
async def test_price_tags_reach_the_pool_and_broken_ones_disable_it_by_name(
    aws: str, catalog: Catalog
):
    tagged_groups(
        None,
        CLUSTER,
        [
            Group("savings-plan", "m5.large", tags={"scaler.io/price-discount": "28%"}),
            Group("reserved", "m5.xlarge", tags={"scaler.io/price-usd-per-hour": "0"}),
            Group("list", "m5.large"),
            Group("bad-discount", "m5.large", tags={"scaler.io/price-discount": "1.5"}),
            Group("bad-price", "m5.large", tags={"scaler.io/price-usd-per-hour": "cheap"}),
        ],
    )
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        discovery = await fleet.discover()
    pools = {p.name: p for p in discovery.pools}
    assert sorted(pools) == ["list", "reserved", "savings-plan"]
    assert pools["savings-plan"].price_multiplier == pytest.approx(0.72)
    assert pools["savings-plan"].price_usd_per_hour is None
    assert pools["reserved"].price_usd_per_hour == 0.0
    assert (pools["list"].price_usd_per_hour, pools["list"].price_multiplier) == (None, 1.0)
    problems = {p.pool: p.reason for p in discovery.problems}
    assert problems["bad-discount"] == (
        "ASG bad-discount: tag scaler.io/price-discount='1.5': a discount must be at least 0 "
        "and below 100%; pool disabled"
    )
    assert problems["bad-price"] == (
        "ASG bad-price: tag scaler.io/price-usd-per-hour='cheap': expected a price in USD per "
        "hour such as 0.0625; pool disabled"
    )


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"scaler.io/price-usd-per-hour": "-1"}, "a negative price"),
        ({"scaler.io/price-usd-per-hour": "nan"}, "expected a price"),
        ({"scaler.io/price-discount": "inf%"}, "expected a share"),
        ({"scaler.io/price-discount": "-0.1"}, "at least 0"),
        (
            {"scaler.io/price-discount": "0.1", "scaler.io/price-usd-per-hour": "0.05"},
            "not both",
        ),
    ],
)
def test_unreadable_price_tags_name_the_tag(tags: dict[str, str], message: str):
    with pytest.raises(TagError, match=message) as e:
        parse_price_override(tags)
    assert "scaler.io/price-" in str(e.value)


def test_a_discount_reads_as_a_share_or_a_percentage():
    assert parse_price_override({"scaler.io/price-discount": "0.3"}).multiplier == pytest.approx(0.7)
    assert parse_price_override({"scaler.io/price-discount": "30%"}).multiplier == pytest.approx(0.7)
