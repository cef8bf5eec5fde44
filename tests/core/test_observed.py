"""Registered nodes cap what the model says a pool's nodes hold (scaler/core/observed.py)."""

from __future__ import annotations

import numpy as np

from scaler.core.catalog import Catalog, node_allocatable
from scaler.core.model import CPU, GPU, MEM, PODS, PodSpec, PoolSpec, Resources
from scaler.core.observed import ObservedPools, remember_reports, reported_allocatable
from scaler.core.offerings import build_offerings
from scaler.core.placement import place
from scaler.core.state import Node

# What a real m5.large reports (kubelet allocatable): less memory than the model's 7518 MiB.
M5_LARGE_REAL = Resources(cpu_milli=1930, memory_mib=6967, pods=29)


def node(name: str, pool: str | None, itype: str, alloc: Resources, *, ready: bool = True) -> Node:
    return Node(name, pool, itype, "on-demand", allocatable=alloc, ready=ready)


def test_the_largest_report_of_ready_nodes_counts_per_pool_and_type():
    nodes = [
        node("a", "small", "m5.large", M5_LARGE_REAL),
        node("b", "small", "m5.large", Resources(cpu_milli=1930, memory_mib=6000, pods=29)),
        node(
            "c",
            "small",
            "m5.large",
            Resources(cpu_milli=1930, memory_mib=9000, pods=29),
            ready=False,
        ),
        node("d", None, "m5.large", Resources(cpu_milli=1, memory_mib=1, pods=1)),  # not scaler's
        node("e", "small", "m5.large", Resources()),  # allocatable not reported yet
        node("f", "other", "m5.large", Resources(cpu_milli=1930, memory_mib=5000, pods=29)),
    ]
    seen = reported_allocatable(nodes)
    assert seen == {
        ("small", "m5.large"): M5_LARGE_REAL,
        ("other", "m5.large"): nodes[5].allocatable,
    }


def test_pools_without_reports_are_returned_unchanged_and_capped_ones_stay_the_same_object():
    pools = [PoolSpec("small", ("m5.large",)), PoolSpec("big", ("m5.xlarge",))]
    observe = ObservedPools()
    assert observe(pools, {}) is pools
    reports = reported_allocatable([node("a", "small", "m5.large", M5_LARGE_REAL)])
    out = observe(pools, reports)
    assert out[1] is pools[1]
    assert out[0].observed_allocatable == (("m5.large", M5_LARGE_REAL),)
    # The next tick's pools are new but equal objects (a fresh discovery): same capped pool.
    again = observe([PoolSpec("small", ("m5.large",)), pools[1]], dict(reports))
    assert again[0] is out[0]


def test_a_report_outlives_the_nodes_and_follows_the_current_ones():
    kept: dict = {}
    assert remember_reports(kept, [node("a", "gpu", "g5.xlarge", M5_LARGE_REAL)])
    assert not remember_reports(kept, [])  # scaled to zero: the report stays
    assert kept == {("gpu", "g5.xlarge"): M5_LARGE_REAL}
    newer = Resources(cpu_milli=1930, memory_mib=7000, pods=29)
    assert remember_reports(kept, [node("b", "gpu", "g5.xlarge", newer)])
    assert kept[("gpu", "g5.xlarge")] == newer


def test_a_smaller_report_lowers_cpu_memory_and_pods_only(catalog: Catalog):
    model = node_allocatable(catalog["g5.xlarge"], ephemeral_storage_mib=20 * 1024).as_array()
    real = Resources(cpu_milli=3900, memory_mib=14000, gpu=0, pods=20)  # GPUs not advertised yet
    pool = PoolSpec("gpu", ("g5.xlarge",), observed_allocatable=(("g5.xlarge", real),))
    offerings, problems = build_offerings([pool], catalog)
    assert not problems
    got = offerings.allocatable[0]
    assert got[MEM] == 14000 and got[CPU] == min(3900, model[CPU]) and got[PODS] == 20
    assert got[GPU] == model[GPU] == 1, "the device plugin's late report must not erase GPUs"
    assert got[4] == model[4], "ephemeral storage keeps the model"


def test_a_larger_report_keeps_the_model(catalog: Catalog):
    big = Resources(cpu_milli=10_000, memory_mib=10_000, pods=110)
    pool = PoolSpec("small", ("m5.large",), observed_allocatable=(("m5.large", big),))
    (plain, _), (seen, _) = (
        build_offerings([PoolSpec("small", ("m5.large",))], catalog),
        build_offerings([pool], catalog),
    )
    np.testing.assert_array_equal(seen.allocatable, plain.allocatable)


def test_a_mixed_pool_keeps_the_model_for_its_unregistered_types(catalog: Catalog):
    mixed = PoolSpec(
        "mixed",
        ("m5.xlarge", "m5a.xlarge"),
        observed_allocatable=(("m5.xlarge", Resources(cpu_milli=3920, memory_mib=14500, pods=58)),),
    )
    (offerings, _) = build_offerings([mixed], catalog)
    m5a = node_allocatable(catalog["m5a.xlarge"], ephemeral_storage_mib=20 * 1024).memory_mib
    assert offerings.allocatable[0, MEM] == min(14500, m5a)


def test_an_explicit_allocatable_still_wins(catalog: Catalog):
    pool = PoolSpec(
        "small",
        ("m5.large",),
        allocatable=Resources(memory_mib=7000),
        observed_allocatable=(("m5.large", M5_LARGE_REAL),),
    )
    (offerings, _) = build_offerings([pool], catalog)
    assert offerings.allocatable[0, MEM] == 7000


def test_a_pod_in_the_gap_goes_up_a_size_once_a_node_has_reported(catalog: Catalog):
    pools = [PoolSpec("small", ("m5.large",)), PoolSpec("big", ("m5.xlarge",))]
    edge = PodSpec("edge", requests=Resources(cpu_milli=1000, memory_mib=7200, pods=1))

    def chosen(pools: list[PoolSpec]) -> str:
        offerings, _ = build_offerings(pools, catalog)
        (group,) = place([edge], offerings).groups
        return group.pool.name

    assert chosen(pools) == "small"  # the model alone: 7518 MiB
    reports = reported_allocatable([node("s0", "small", "m5.large", M5_LARGE_REAL)])
    assert chosen(list(ObservedPools()(pools, reports))) == "big"
