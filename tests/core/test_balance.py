"""Equivalent pools in different zones are balanced (cluster-autoscaler's
balance-similar-node-groups); anything that makes pools differ keeps the cheapest rule."""

from __future__ import annotations

import dataclasses

import numpy as np

from scaler.core.model import PodSpec, PoolSpec, Resources, Taint
from scaler.core.offerings import build_offerings
from scaler.core.placement import _water_fill, place

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def zonal(prefix: str = "cpu", itype: str = "m5.large", **kw) -> list[PoolSpec]:
    return [PoolSpec(f"{prefix}-{z[-2:]}", (itype,), zones=(z,), max_size=50, **kw) for z in ZONES]


def pods(n: int, **kw) -> list[PodSpec]:
    return [PodSpec(f"w{i}", Resources(cpu_milli=500, memory_mib=1024, pods=1), **kw)
            for i in range(n)]


def nodes_by_pool(ps: list[PoolSpec], pending: list[PodSpec], catalog, **kw) -> dict[str, int]:
    offerings, problems = build_offerings(ps, catalog)
    assert not problems
    return place(pending, offerings, **kw).nodes_by_pool()


def test_pods_without_constraints_are_spread_over_identical_per_zone_pools(catalog):
    assert nodes_by_pool(zonal(), pods(7), catalog) == {"cpu-1a": 3, "cpu-1b": 2, "cpu-1c": 2}


def test_a_single_pod_goes_to_the_smallest_of_the_identical_pools(catalog):
    ps = [PoolSpec("cpu-1a", ("m5.large",), zones=("us-east-1a",), max_size=50, current_size=2),
          PoolSpec("cpu-1b", ("m5.large",), zones=("us-east-1b",), max_size=50, current_size=1),
          PoolSpec("cpu-1c", ("m5.large",), zones=("us-east-1c",), max_size=50, current_size=2)]
    assert nodes_by_pool(ps, pods(1), catalog) == {"cpu-1b": 1}
    # The caller's sizes (the live pool table, in offerings order) win over stale specs.
    offerings, _ = build_offerings(ps, catalog)
    sizes = np.array([{"cpu-1a": 0, "cpu-1b": 5, "cpu-1c": 5}[p.name] for p in offerings.pools],
                     dtype=float)
    assert place(pods(1), offerings, sizes=sizes).nodes_by_pool() == {"cpu-1a": 1}
    # Four new nodes raise 1b to the others' level first, then one each.
    assert nodes_by_pool(ps, pods(4), catalog) == {"cpu-1a": 1, "cpu-1b": 2, "cpu-1c": 1}


def test_a_pod_pinned_to_a_zone_is_not_balanced_away_from_it(catalog):
    assert nodes_by_pool(zonal(), pods(3, zone="us-east-1c"), catalog) == {"cpu-1c": 3}


def test_pools_that_differ_by_more_than_the_zone_are_not_balanced(catalog):
    tainted = [PoolSpec("cpu-1b", ("m5.large",), zones=("us-east-1b",),
                        taints=(Taint("dedicated", "x"),), max_size=50)]
    plain = [PoolSpec("cpu-1a", ("m5.large",), zones=("us-east-1a",), max_size=50)]
    other_type = [PoolSpec("cpu-1c", ("m6i.large",), zones=("us-east-1c",), max_size=50)]
    got = nodes_by_pool(plain + tainted + other_type, pods(4), catalog)
    assert len(got) == 1  # all to one pool: the cheapest, not spread


def test_balanced_pools_still_respect_their_max_size(catalog):
    ps = [PoolSpec(f"cpu-{z[-2:]}", ("m5.large",), zones=(z,), max_size=1) for z in ZONES]
    placement = place(pods(5), build_offerings(ps, catalog)[0])
    assert placement.nodes_by_pool() == {"cpu-1a": 1, "cpu-1b": 1, "cpu-1c": 1}
    assert sum(len(u.pods) for u in placement.unplaceable) == 2


def test_water_fill_raises_the_smallest_first_and_breaks_ties_in_order():
    assert _water_fill(0, np.array([1.0, 0.0])).tolist() == [0, 0]
    assert _water_fill(1, np.array([1.0, 0.0, 1.0])).tolist() == [0, 1, 0]
    assert _water_fill(2, np.array([0.0, 0.0, 0.0])).tolist() == [1, 1, 0]
    assert _water_fill(10, np.array([3.0, 0.0, 1.0])).tolist() == [2, 5, 3]


def test_per_zone_managed_node_groups_are_balanced_although_their_names_differ(catalog):
    # One EKS managed node group per zone: each group's nodes carry its own name as a label,
    # which cluster-autoscaler's AWS balancing ignores too.
    ps = [PoolSpec(f"ng-{z[-2:]}", ("m5.large",), zones=(z,), max_size=50,
                   labels=(("eks.amazonaws.com/nodegroup", f"ng-{z[-2:]}"),))
          for z in ZONES]
    assert nodes_by_pool(ps, pods(3), catalog) == {"ng-1a": 1, "ng-1b": 1, "ng-1c": 1}


def test_a_group_whose_node_registered_is_still_balanced_against_its_siblings(catalog):
    # A registered node's labels replace the template's guess: the cloud provider's beta
    # twins (instance type, region) come in, and a self-managed group's nodes carry no
    # eks.amazonaws.com/capacityType. The group is still the same node in another zone.
    real = (
        ("beta.kubernetes.io/arch", "amd64"), ("beta.kubernetes.io/instance-type", "m5.large"),
        ("beta.kubernetes.io/os", "linux"), ("failure-domain.beta.kubernetes.io/region", "us-east-1"),
        ("failure-domain.beta.kubernetes.io/zone", "us-east-1a"), ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/os", "linux"), ("node.kubernetes.io/instance-type", "m5.large"),
        ("topology.ebs.csi.aws.com/zone", "us-east-1a"), ("topology.kubernetes.io/region", "us-east-1"),
        ("topology.kubernetes.io/zone", "us-east-1a"),
    )  # fmt: skip
    learned, *others = zonal()
    ps = [dataclasses.replace(learned, current_size=1, observed_labels=real), *others]
    assert nodes_by_pool(ps, pods(1), catalog) == {"cpu-1b": 1}
    # A label that really differs still keeps the groups apart.
    odd = dataclasses.replace(learned, observed_labels=(*real, ("gpu-driver", "535")))
    assert len(nodes_by_pool([odd, *others], pods(4), catalog)) == 1
