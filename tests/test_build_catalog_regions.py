"""tools/build_catalog.py --region: another region's catalog from public data, crediting
where its prices come from (Karpenter's Apache-2.0 table covers us-east-1 only; elsewhere the
CC BY-SA 4.0 Spare Cores file). Needs ../shared/data; skipped without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaler.core.catalog import Catalog
from tests.test_build_catalog import SHARED, load_tool

pytestmark = pytest.mark.skipif(
    not (SHARED / "aws" / "prices" / "ondemand_all_regions_sparecores_2024-02.csv").is_file(),
    reason=f"public source data not found at {SHARED}",
)
PERMISSIVE = {"Apache-2.0", "MIT-0"}


@pytest.fixture(scope="module")
def eu_west_1() -> tuple[dict, dict[str, int]]:
    doc, dropped = load_tool().build(SHARED, "eu-west-1")
    return doc, dropped


def test_an_eu_west_1_catalog_is_priced_at_eu_west_1_rates(eu_west_1, tmp_path: Path):
    doc, _ = eu_west_1
    tool = load_tool()
    path = tmp_path / "catalog-eu-west-1.json"
    path.write_text(tool.render(doc, "2026-12-06"), encoding="utf-8")
    catalog = Catalog.load(path)
    assert catalog.region == "eu-west-1"
    assert catalog["m5.large"].on_demand_usd_per_hour == 0.107  # us-east-1: 0.096
    assert catalog["m5.large"].zones == ("eu-west-1a", "eu-west-1b", "eu-west-1c")
    assert len(catalog) > 600


def test_a_catalog_priced_from_the_cc_by_sa_file_credits_it_and_its_licence(eu_west_1):
    doc, _ = eu_west_1
    by_file = {s["file"]: s for s in doc["sources"]}
    prices = by_file["aws/prices/ondemand_all_regions_sparecores_2024-02.csv"]
    assert prices["license"] == "CC-BY-SA-4.0"
    assert "sparecores" in prices["name"] and prices["data_date"] == "2024-02-21"
    assert not any("karpenter" in s["name"] for s in doc["sources"])
    offerings = [s for s in doc["sources"] if "offerings" in s["name"]]
    assert len(offerings) == 2
    assert all("eu-west-1" in s["name"] and s["license"] == "Apache-2.0" for s in offerings)


def test_the_us_east_1_catalog_stays_on_permissive_sources_only():
    doc, _ = load_tool().build(SHARED, "us-east-1")
    assert {s["license"] for s in doc["sources"]} <= PERMISSIVE
    assert any("karpenter" in s["name"] for s in doc["sources"])
    assert not any("sparecores" in s["file"] for s in doc["sources"])


def test_types_the_price_list_sells_but_the_catalog_lacks_are_reported_by_name(eu_west_1):
    doc, dropped = eu_west_1
    names = {t["name"] for t in doc["instance_types"]}
    report = next(k for k in dropped if k.startswith("priced but not in moto's instance data"))
    assert "u-9tb1.112xlarge" in report and "u-9tb1.112xlarge" not in names
    sold = set()
    with (SHARED / "aws/prices/ondemand_all_regions_sparecores_2024-02.csv").open() as f:
        header = f.readline().strip().split(",")
        for line in f:
            row = dict(zip(header, line.strip().split(","), strict=False))
            if row["region"] == "eu-west-1":
                sold.add(row["instance_type"])
    # Every type sold is either in the catalog or counted under some reason.
    assert len(sold - names) <= sum(dropped.values())
    assert json.dumps(dropped)  # plain counts, printable
