"""The packaged instance catalog, the EKS allocatable model and the default pools.

Facts below were looked up by hand in the source files under ../shared/data (moto
DescribeInstanceTypes records, EKS instance-info.jsonl, Karpenter's us-east-1 price table, the
Spot Advisor feed); these tests need only the packaged catalog.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scaler.core.catalog import (
    EVICTION_HARD_MIB,
    GPU_TAINT,
    Catalog,
    eks_reserved,
    node_allocatable,
    node_labels,
)
from scaler.core.model import (
    LABEL_ACCELERATOR,
    LABEL_ARCH,
    LABEL_CAPACITY_TYPE,
    LABEL_GPU,
    LABEL_INSTANCE_TYPE,
    LABEL_POOL,
    ON_DEMAND,
    SPOT,
    Resources,
    SpecError,
)

REPO = Path(__file__).resolve().parents[2]
PACKAGED = REPO / "scaler" / "data" / "catalog-us-east-1.json"
SCHEMA = REPO / "scaler" / "schemas" / "catalog.schema.json"
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def small_doc() -> dict[str, Any]:
    """A valid two-type catalog document to break in the malformed-input tests."""
    return {
        "format": "scaler-catalog",
        "version": 1,
        "region": "us-east-1",
        "built_at": "2026-07-24",
        "sources": [{"name": "hand", "license": "Apache-2.0", "data_date": "2026", "file": "x"}],
        "instance_types": [
            {
                "name": "g5.xlarge",
                "vcpus": 4,
                "memory_mib": 16384,
                "gpu_count": 1,
                "gpu_model": "A10G",
                "gpu_memory_mib": 22888,
                "arch": "amd64",
                "bare_metal": False,
                "max_pods": 58,
                "on_demand_usd_per_hour": 1.006,
                "spot_savings_pct": 59,
                "spot_interruption_bucket": 4,
                "zones": ["us-east-1a", "us-east-1b"],
            },
            {
                "name": "m5.large",
                "vcpus": 2,
                "memory_mib": 8192,
                "gpu_count": 0,
                "gpu_model": None,
                "gpu_memory_mib": 0,
                "arch": "amd64",
                "bare_metal": False,
                "max_pods": 29,
                "on_demand_usd_per_hour": 0.096,
                "spot_savings_pct": None,
                "spot_interruption_bucket": None,
                "zones": ["us-east-1a"],
            },
        ],
    }


# --- the packaged file ---------------------------------------------------------------------


def test_packaged_catalog_loads_and_is_cached(catalog: Catalog) -> None:
    assert catalog.region == "us-east-1"
    assert len(catalog) > 1000
    assert Catalog.load() is catalog
    assert Catalog.load(PACKAGED) == catalog


def test_m5_large_matches_the_sources(catalog: Catalog) -> None:
    m5 = catalog["m5.large"]
    assert (m5.vcpus, m5.memory_mib, m5.arch, m5.bare_metal) == (2, 8192, "amd64", False)
    assert m5.max_pods == 29  # instance-info.jsonl: 3 ENIs x (10 IPv4 - 1) + 2
    assert m5.on_demand_usd_per_hour == pytest.approx(0.096)
    assert (m5.spot_savings_pct, m5.spot_interruption_bucket) == (66.0, 3)  # advisor 15-20%
    assert m5.gpu_count == 0 and m5.gpu_model is None and m5.gpu_memory_mib == 0
    assert "us-east-1a" in m5.zones and list(m5.zones) == sorted(m5.zones)


def test_gpu_types_name_the_nvidia_model_and_count(catalog: Catalog) -> None:
    g5 = catalog["g5.xlarge"]
    assert (g5.gpu_count, g5.gpu_model, g5.gpu_memory_mib) == (1, "A10G", 22888)
    assert (g5.max_pods, g5.on_demand_usd_per_hour) == (58, pytest.approx(1.006))
    p4d = catalog["p4d.24xlarge"]
    assert (p4d.gpu_count, p4d.gpu_model, p4d.gpu_memory_mib) == (8, "A100", 40960)
    assert (p4d.vcpus, p4d.memory_mib, p4d.max_pods) == (96, 1179648, 737)
    assert p4d.on_demand_usd_per_hour == pytest.approx(21.957642)
    assert (catalog["g4dn.xlarge"].gpu_model, catalog["p5.48xlarge"].gpu_model) == ("T4", "H100")


def test_graviton_types_are_arm64(catalog: Catalog) -> None:
    assert catalog["t4g.medium"].arch == "arm64"
    assert catalog["m7g.large"].arch == "arm64"
    assert catalog["m7g.large"].on_demand_usd_per_hour == pytest.approx(0.0816)


def test_selection_keeps_nitro_types_and_drops_xen_mac_and_other_accelerators(
    catalog: Catalog,
) -> None:
    # moto flags these CurrentGeneration: false, but they run on Nitro and stay.
    for kept in ("m5.large", "c5.xlarge", "r5.large", "g5.xlarge", "m6i.large", "m5.metal"):
        assert kept in catalog, kept
    assert catalog["m5.metal"].bare_metal
    dropped = ("m4.large", "c4.large", "mac2.metal", "inf2.xlarge", "trn1.2xlarge", "f2.6xlarge")
    for gone in (*dropped, "vt1.3xlarge", "dl2q.24xlarge"):
        assert gone not in catalog, gone
    assert all(t.gpu_count == 0 or t.gpu_model for t in catalog)


def test_unknown_type_is_a_clear_key_error(catalog: Catalog) -> None:
    with pytest.raises(KeyError, match=r"m5\.larg"):
        catalog["m5.larg"]
    assert catalog.get("m5.larg") is None
    assert [] not in catalog


def test_iteration_yields_types_in_name_order(catalog: Catalog) -> None:
    names = [t.name for t in catalog]
    assert names == sorted(names) and len(names) == len(set(names)) == len(catalog)


def test_packaged_file_validates_against_the_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(json.loads(PACKAGED.read_text(encoding="utf-8")))
    bad = small_doc()
    bad["instance_types"][0]["spot_interruption_bucket"] = 7
    assert not validator.is_valid(bad)


# --- EKS capacity model ----------------------------------------------------------------------


def test_eks_reserved_follows_the_ami_ranges() -> None:
    assert eks_reserved(1, 10).cpu_milli == 60
    assert eks_reserved(2, 29).cpu_milli == 60 + 10
    assert eks_reserved(4, 58).cpu_milli == 60 + 10 + 10
    # 96 vCPU: 60 + 10 + 10 + 92 cores x 2.5m = 310m
    assert eks_reserved(96, 737).cpu_milli == 310
    assert eks_reserved(2, 29).memory_mib == 255 + 11 * 29
    assert eks_reserved(2, 29).ephemeral_mib == 1024


def test_node_allocatable_of_m5_large_worked_by_hand(catalog: Catalog) -> None:
    # m5.large: 2 vCPU, 8192 MiB, max pods 29, 20 GiB root volume.
    #   cpu     2000m - (60m + 10m)                           = 1930m
    #   memory  8192 - (255 + 11 x 29 = 574) - 100 eviction   = 7518 MiB
    #   pods    29; gpu 0
    #   disk    20480 - 1024 kube-reserved - 2048 (10% eviction) = 17408 MiB
    alloc = node_allocatable(catalog["m5.large"], ephemeral_storage_mib=20480)
    assert alloc == Resources(cpu_milli=1930, memory_mib=7518, gpu=0, pods=29, ephemeral_mib=17408)
    assert EVICTION_HARD_MIB == 100


def test_node_allocatable_subtracts_daemonsets_and_honours_max_pods(catalog: Catalog) -> None:
    ds = Resources(cpu_milli=100, memory_mib=200, pods=2)
    alloc = node_allocatable(
        catalog["m5.large"], ephemeral_storage_mib=20480, daemonset_overhead=ds, max_pods=110
    )
    # kube-reserved memory follows the max pods the kubelet runs with: 255 + 11 x 110 = 1465
    assert alloc.memory_mib == 8192 - 1465 - 100 - 200
    assert (alloc.cpu_milli, alloc.pods) == (1830, 108)


def test_node_allocatable_is_never_negative(catalog: Catalog) -> None:
    huge = Resources(cpu_milli=1e6, memory_mib=1e7, gpu=9, pods=1e3, ephemeral_mib=1e9)
    alloc = node_allocatable(catalog["g5.xlarge"], ephemeral_storage_mib=0, daemonset_overhead=huge)
    assert alloc == Resources()


def test_gpu_node_allocatable_counts_whole_gpus(catalog: Catalog) -> None:
    assert node_allocatable(catalog["p4d.24xlarge"], ephemeral_storage_mib=20480).gpu == 8


def test_offerings_built_again_give_each_pool_its_own_allocatable(catalog: Catalog) -> None:
    # The catalog keeps what it worked out per type and pool setting: a pool with other
    # settings, or one whose nodes reported less, must not get (or leave) another's figure.
    from scaler.core.model import PoolSpec
    from scaler.core.offerings import build_offerings

    real = Resources(cpu_milli=1900, memory_mib=7000, pods=29)
    pools = [
        PoolSpec("seen", ("m5.large",), observed_allocatable=(("m5.large", real),)),
        PoolSpec("plain", ("m5.large",)),
        PoolSpec("disk", ("m5.large",), ephemeral_storage_mib=40960),
        PoolSpec("ds", ("m5.large",), daemonset_overhead=Resources(cpu_milli=100, pods=2)),
    ]
    for _ in range(2):  # the second build reads what the first worked out
        offerings, _ = build_offerings(pools, catalog)
        for pool in pools[1:]:
            i = offerings.get(pool.name)
            assert i is not None
            expected = node_allocatable(
                catalog["m5.large"],
                ephemeral_storage_mib=pool.ephemeral_storage_mib,
                daemonset_overhead=pool.daemonset_overhead,
            )
            assert Resources.from_array(offerings.allocatable[i]) == expected
        seen = offerings.get("seen")
        assert seen is not None
        assert offerings.allocatable[seen].tolist()[:2] == [1900, 7000]


# --- labels and default pools ----------------------------------------------------------------


def test_node_labels_of_a_gpu_spot_node(catalog: Catalog) -> None:
    assert node_labels(catalog["g5.xlarge"], SPOT) == {
        LABEL_INSTANCE_TYPE: "g5.xlarge",
        LABEL_ARCH: "amd64",
        "beta.kubernetes.io/arch": "amd64",
        LABEL_CAPACITY_TYPE: "SPOT",
        LABEL_GPU: "true",
        LABEL_ACCELERATOR: "a10g",
    }
    plain = node_labels(catalog["m7g.large"], ON_DEMAND)
    assert plain[LABEL_CAPACITY_TYPE] == "ON_DEMAND" and plain[LABEL_ARCH] == "arm64"
    assert LABEL_GPU not in plain and LABEL_ACCELERATOR not in plain


def test_node_labels_are_valid_label_values_for_every_type(catalog: Catalog) -> None:
    for itype in catalog:
        for value in node_labels(itype, ON_DEMAND).values():
            assert LABEL_VALUE.match(value) and len(value) <= 63, (itype.name, value)


def test_node_labels_reject_an_unknown_capacity_type(catalog: Catalog) -> None:
    with pytest.raises(SpecError, match="capacity_type"):
        node_labels(catalog["m5.large"], "reserved")


def test_default_pools_taint_exactly_the_gpu_pools(catalog: Catalog) -> None:
    pools = catalog.default_pools()
    gpu = [p for p in pools if catalog[p.instance_types[0]].gpu_count]
    plain = [p for p in pools if not catalog[p.instance_types[0]].gpu_count]
    assert gpu and plain
    assert all(p.taints == (GPU_TAINT,) for p in gpu)
    assert all(p.taints == () for p in plain)
    assert str(GPU_TAINT) == "nvidia.com/gpu=true:NoSchedule"


def test_default_pools_are_virtualized_not_burstable_uniquely_named_and_sorted(
    catalog: Catalog,
) -> None:
    pools = catalog.default_pools()
    names = [p.name for p in pools]
    assert names == sorted(names) and len(names) == len(set(names))
    for p in pools:
        itype = catalog[p.instance_types[0]]
        assert not itype.bare_metal and not itype.burstable
        assert p.name == f"{itype.name}-{p.capacity_type}"
        assert LABEL_VALUE.match(p.name) and len(p.name) <= 63
        assert p.label_map[LABEL_POOL] == p.name
        assert p.label_map[LABEL_INSTANCE_TYPE] == itype.name
        assert p.zones == itype.zones and p.choose_zone and p.max_size is None
    assert "m5.large-on-demand" in names and "m5.large-spot" in names
    # arm64 is offered (a pod reaches it only by admitting arm64); burstable and metal not.
    assert "m7g.large-on-demand" in names
    assert not any(n.startswith(("m5.metal", "t3.", "t4g.", "t2.", "t3a.")) for n in names)


def test_burstable_types_are_marked_and_join_default_pools_only_when_asked(
    catalog: Catalog,
) -> None:
    burstable = {t.name for t in catalog if t.burstable}
    assert {"t3.nano", "t3a.large", "t4g.medium", "t2.micro"} <= burstable
    assert {t.split(".")[0] for t in burstable} <= {"t2", "t3", "t3a", "t4g"}
    opted = {p.instance_types[0] for p in catalog.default_pools(burstable=True)}
    assert burstable <= opted


def test_p3_types_moto_lacks_are_in_the_catalog_with_their_v100s(catalog: Catalog) -> None:
    p3 = catalog["p3.2xlarge"]
    assert (p3.vcpus, p3.memory_mib, p3.gpu_count, p3.gpu_model) == (8, 62464, 1, "V100")
    assert (p3.gpu_memory_mib, p3.max_pods, p3.arch) == (16384, 58, "amd64")
    assert p3.on_demand_usd_per_hour == 3.06 and p3.spot_savings_pct is not None
    big = catalog["p3.8xlarge"]
    assert (big.vcpus, big.gpu_count, big.max_pods, big.on_demand_usd_per_hour) == (
        32, 4, 234, 12.24
    )


def test_default_pools_offer_spot_only_where_the_catalog_has_spot(catalog: Catalog) -> None:
    pools = catalog.default_pools()
    on_demand = {p.instance_types[0] for p in pools if p.capacity_type == ON_DEMAND}
    spot = {p.instance_types[0] for p in pools if p.capacity_type == SPOT}
    assert spot < on_demand
    assert all(catalog[t].spot_savings_pct is not None for t in spot)
    assert all(catalog[t].spot_savings_pct is None for t in on_demand - spot)
    assert all(p.capacity_type == ON_DEMAND for p in catalog.default_pools((ON_DEMAND,)))


# --- malformed catalogs ----------------------------------------------------------------------


def test_small_document_loads() -> None:
    cat = Catalog.from_dict(small_doc(), source="catalog.json")
    assert len(cat) == 2 and cat["m5.large"].spot_usd_per_hour is None
    assert cat["g5.xlarge"].spot_savings_pct == 59.0


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            lambda d: d["instance_types"][1].pop("memory_mib"),
            "catalog.json: instance_types[1] (m5.large).memory_mib: missing",
        ),
        (
            lambda d: d["instance_types"][1].update(memory_mib="8G"),
            "catalog.json: instance_types[1] (m5.large).memory_mib: "
            'expected a positive integer, got "8G"',
        ),
        (
            lambda d: d["instance_types"][0].update(spot_interruption_bucket=7),
            "catalog.json: instance_types[0] (g5.xlarge).spot_interruption_bucket: "
            "expected an integer from 0 to 4, got 7",
        ),
        (
            lambda d: d["instance_types"][0].update(vcpus=True),
            "instance_types[0] (g5.xlarge).vcpus: expected a positive integer, got true",
        ),
        (
            lambda d: d["instance_types"][1].update(name="not a type"),
            "catalog.json: instance_types[1].name: expected an instance type like",
        ),
        (
            lambda d: d["instance_types"][0].update(gpu_model=None),
            "instance_types[0] (g5.xlarge).gpu_model: expected the GPU's name, got null",
        ),
        (
            lambda d: d["instance_types"][1].update(arch="x86_64"),
            "instance_types[1] (m5.large).arch: expected 'amd64' or 'arm64'",
        ),
        (
            lambda d: d["instance_types"][1].update(on_demand_usd_per_hour=-1),
            "instance_types[1] (m5.large).on_demand_usd_per_hour: expected a positive price",
        ),
        (
            lambda d: d["instance_types"][1].update(spot_savings_pct=50),
            "instance_types[1] (m5.large).spot_interruption_bucket: ",
        ),
        (
            lambda d: d["instance_types"][1].update(zones=["us-west-2a"]),
            "instance_types[1] (m5.large).zones[0]: expected a zone of us-east-1",
        ),
        (
            lambda d: d["instance_types"][1].update(gpu_modle="T4"),
            "instance_types[1] (m5.large).gpu_modle: unknown field",
        ),
        (
            lambda d: d["instance_types"].append(copy.deepcopy(d["instance_types"][0])),
            "instance_types[2] (g5.xlarge): duplicate instance type",
        ),
        (
            lambda d: d.update(format="karpenter-pricing"),
            "catalog.json: format: expected 'scaler-catalog'",
        ),
        (
            lambda d: d.update(version=2),
            "catalog.json: version: unsupported catalog version 2; this scaler reads version 1",
        ),
        (
            lambda d: d.update(built_at="yesterday"),
            'catalog.json: built_at: expected a date YYYY-MM-DD, got "yesterday"',
        ),
        (
            lambda d: d.update(instance_types=[]),
            "catalog.json: instance_types: expected a non-empty list",
        ),
    ],
)
def test_malformed_catalog_names_the_type_and_field(breakage: Any, message: str) -> None:
    doc = small_doc()
    breakage(doc)
    with pytest.raises(SpecError) as err:
        Catalog.from_dict(doc, source="catalog.json")
    assert message in str(err.value)


def test_a_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text('{"format": "scaler-catalog",', encoding="utf-8")
    with pytest.raises(SpecError, match=r"catalog\.json: not valid JSON"):
        Catalog.load(path)
    with pytest.raises(SpecError, match="cannot read catalog"):
        Catalog.load(tmp_path / "absent.json")


def test_a_supplied_catalog_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "catalog-eu-west-1.json"
    doc = small_doc()
    doc["region"] = "eu-west-1"
    for t in doc["instance_types"]:
        t["zones"] = ["eu-west-1a"]
    path.write_text(json.dumps(doc), encoding="utf-8")
    cat = Catalog.load(path)
    assert cat.region == "eu-west-1" and cat["m5.large"].zones == ("eu-west-1a",)
    assert [p.name for p in cat.default_pools()] == [
        "g5.xlarge-on-demand",
        "g5.xlarge-spot",
        "m5.large-on-demand",
    ]
