"""``scaler.io/pack`` on an ASG: a group-level opt-in to packing several pods per node."""

from __future__ import annotations

import pytest

from scaler.adapters.aws.tags import TAG_PACK, TagError, parse_pack
from scaler.core.catalog import Catalog
from tests.adapters.test_aws_asg import group, pool_of, problem_of


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.mark.parametrize(
    ("value", "packs"), [("true", True), ("True", True), (" TRUE ", True), ("false", False)]
)
def test_the_tag_opts_a_group_into_packing(catalog: Catalog, value: str, packs: bool):
    assert parse_pack({TAG_PACK: value}) is packs
    assert pool_of(group(tags={TAG_PACK: value}), catalog).pack is packs


def test_a_group_without_the_tag_does_not_pack(catalog: Catalog):
    assert pool_of(group(), catalog).pack is False


@pytest.mark.parametrize("value", ["yes", "1", "", "on", "ture"])
def test_a_broken_value_disables_the_pool_naming_the_group_and_the_tag(
    catalog: Catalog, value: str
):
    with pytest.raises(TagError):
        parse_pack({TAG_PACK: value})
    reason = problem_of(group("dask-workers", tags={TAG_PACK: value}), catalog)
    assert reason == (
        f"ASG dask-workers: tag scaler.io/pack={value!r}: expected \"true\" or \"false\"; "
        "pool disabled"
    )
