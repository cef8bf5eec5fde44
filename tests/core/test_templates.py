"""What a pool's node looks like: the labels, taints, disk and size placement assumes.

A pool's template must carry every label a real node of the group carries (a pod selecting
``kubernetes.io/os: linux`` matches it), treat startup taints as passing, take its disk from
what registered nodes report, and never offer a requestless pod a node too small to run it.
"""

from __future__ import annotations

import numpy as np

from scaler.core.actions import ScaleUp
from scaler.core.catalog import Catalog, placement_labels, region_of
from scaler.core.decide import decide
from scaler.core.memory import Memory
from scaler.core.model import (
    ARM64,
    LABEL_ARCH,
    LABEL_EBS_ZONE,
    LABEL_OS,
    LABEL_REGION,
    LABEL_ZONE,
    NO_SCHEDULE,
    PodSpec,
    PoolSpec,
    Requirement,
    Resources,
    SelectorTerm,
    Taint,
    Toleration,
)
from scaler.core.offerings import build_offerings, pool_table
from scaler.core.placement import place
from scaler.core.settings import PlacementSettings, Settings, preset
from scaler.core.state import ClusterView, Node, PendingPod

ZONE_A = ("us-east-1a",)


def pod(name: str = "p", **kw: object) -> PodSpec:
    kw.setdefault("requests", Resources(cpu_milli=500, memory_mib=2048, pods=1))
    return PodSpec(name, **kw)  # type: ignore[arg-type]


def chosen(pods: list[PodSpec], pools: list[PoolSpec], catalog: Catalog,
           settings: PlacementSettings | None = None) -> dict[str, str | None]:
    offerings, problems = build_offerings(pools, catalog, settings=settings)
    assert not problems
    placement = place(pods, offerings, settings=settings)
    out: dict[str, str | None] = {p.name: None for p in pods}
    for g in placement.groups:
        for p in g.pods:
            out[p.name] = g.pool.name
    return out


def test_a_pod_selecting_linux_matches_an_asg_pool(catalog: Catalog) -> None:
    pools = [PoolSpec("workers", ("m5.large",), zones=ZONE_A, max_size=5)]
    linux = pod("chart", node_selector=((LABEL_OS, "linux"),))
    beta = pod("old-chart", node_selector=(("beta.kubernetes.io/os", "linux"),))
    assert chosen([linux, beta], pools, catalog) == {"chart": "workers", "old-chart": "workers"}


def test_only_a_managed_node_group_is_assumed_to_label_its_nodes_with_the_capacity_type(
    catalog: Catalog,
) -> None:
    # EKS labels a managed node group's nodes eks.amazonaws.com/capacityType; a self-managed
    # group's kubelet does not, so kube-scheduler would never bind a pod selecting it there.
    self_managed = PoolSpec("self", ("m5.large",), zones=ZONE_A, max_size=5)
    managed = PoolSpec("managed", ("m5.xlarge",), zones=ZONE_A, max_size=5, labels=(
        ("eks.amazonaws.com/capacityType", "ON_DEMAND"), ("eks.amazonaws.com/nodegroup", "ng"),
    ))  # fmt: skip
    picky = pod("picky", node_selector=(("eks.amazonaws.com/capacityType", "ON_DEMAND"),))
    plain = pod("plain")
    assert chosen([picky, plain], [self_managed, managed], catalog) == {
        "picky": "managed", "plain": "self"
    }


def test_a_pool_template_carries_region_zone_and_the_ebs_csi_zone(catalog: Catalog) -> None:
    one = PoolSpec("a", ("m5.large",), zones=ZONE_A)
    two = PoolSpec("ab", ("m5.large",), zones=("us-east-1a", "us-east-1b"))
    offerings, _ = build_offerings([one, two], catalog)
    a, ab = (offerings.labels[offerings.index(n)] for n in ("a", "ab"))
    assert a[LABEL_REGION] == "us-east-1" and a[LABEL_ZONE] == a[LABEL_EBS_ZONE] == "us-east-1a"
    assert a[LABEL_OS] == "linux"
    # A multi-zone group picks the zone per node: no zone label is assumed.
    assert ab[LABEL_REGION] == "us-east-1" and LABEL_ZONE not in ab and LABEL_EBS_ZONE not in ab
    assert region_of("us-west-2-lax-1a") == "us-west-2"
    assert placement_labels(())  == {LABEL_OS: "linux", "beta.kubernetes.io/os": "linux"}


def test_a_windows_group_says_so_by_tag_and_linux_pods_stay_off_it(catalog: Catalog) -> None:
    windows = PoolSpec("win", ("m5.large",), zones=ZONE_A, labels=((LABEL_OS, "windows"),))
    linux = pod("chart", node_selector=((LABEL_OS, "linux"),))
    assert chosen([linux], [windows], catalog) == {"chart": None}


def test_a_daemonset_selecting_linux_is_charged_to_asg_pools(catalog: Catalog) -> None:
    pools = [PoolSpec("workers", ("m5.large",), zones=ZONE_A)]
    aws_node = PodSpec(
        "aws-node", requests=Resources(cpu_milli=25, memory_mib=512, pods=1),
        node_selector=((LABEL_OS, "linux"),),
    )
    bare, _ = build_offerings(pools, catalog)
    charged, _ = build_offerings(pools, catalog, daemonsets=[aws_node])
    assert bare.allocatable[0, 1] - charged.allocatable[0, 1] == 512
    assert bare.allocatable[0, 3] - charged.allocatable[0, 3] == 1


def test_arm64_default_pools_serve_only_pods_that_admit_arm64(catalog: Catalog) -> None:
    pools = [p for p in catalog.default_pools(("on-demand",))
             if p.instance_types[0] in ("m7g.large", "m5.large")]
    default = pod("default")  # amd64 unless it says otherwise
    arm = pod("arm", node_selector=((LABEL_ARCH, ARM64),), arch=None)
    both = pod("both", arch=None, affinity=(
        SelectorTerm((Requirement(LABEL_ARCH, "In", ("amd64", "arm64")),)),
    ))
    got = chosen([default, arm, both], pools, catalog)
    assert got["default"] == "m5.large-on-demand"
    assert got["arm"] == "m7g.large-on-demand"
    # Either architecture: the cheaper node wins (m7g.large $0.0816/h < m5.large $0.096/h).
    assert got["both"] == "m7g.large-on-demand"


def test_a_requestless_pod_is_sized_by_the_floor_not_put_on_a_nano(catalog: Catalog) -> None:
    pools = [PoolSpec(t, (t,), zones=ZONE_A) for t in ("t3.nano", "t3.small", "t3.medium")]
    notebook = pod("notebook", requests=Resources(pods=1))
    # t3.small (2 GiB, ~1.4 GiB allocatable) is the cheapest with room for 1Gi and 250m.
    assert chosen([notebook], pools, catalog) == {"notebook": "t3.small"}
    no_floor = PlacementSettings(requestless_cpu_milli=0, requestless_memory_mib=0)
    assert chosen([notebook], pools, catalog, no_floor) == {"notebook": "t3.nano"}
    # A pod that asks for something keeps its own figure for that resource.
    tiny = pod("tiny", requests=Resources(cpu_milli=10, memory_mib=64, pods=1))
    assert chosen([tiny], pools, catalog) == {"tiny": "t3.nano"}


def test_a_startup_taint_in_a_template_blocks_no_pod(catalog: Catalog) -> None:
    starting = PoolSpec("cilium", ("m5.large",), zones=ZONE_A, taints=(
        Taint("ignore-taint.cluster-autoscaler.kubernetes.io/cilium", "true", NO_SCHEDULE),
        Taint("node.cilium.io/agent-not-ready", "true", NO_SCHEDULE),
    ))
    assert chosen([pod("app")], [starting], catalog) == {"app": "cilium"}
    dedicated = PoolSpec("ded", ("m5.large",), zones=ZONE_A,
                         taints=(Taint("dedicated", "ml", NO_SCHEDULE),))
    assert chosen([pod("app")], [dedicated], catalog) == {"app": None}


def test_a_node_with_only_startup_taints_is_capacity_on_its_way(catalog: Catalog) -> None:
    pools = [PoolSpec("workers", ("m5.large",), zones=ZONE_A, max_size=5, current_size=1)]
    offerings, _ = build_offerings(pools, catalog)
    waiting = (PendingPod(pod("app"), 100.0),)

    def ups(taints: tuple[Taint, ...]) -> list[ScaleUp]:
        node = Node("n1", "workers", "m5.large", "on-demand", ready=True, created_s=0.0,
                    taints=taints)
        view = ClusterView(2000.0, nodes=(node,), pending=waiting)
        d = decide(view, pool_table(pools, offerings), Memory(batch_floor_s=1000.0), preset("scaler"),
                   now=2000.0, rng=np.random.default_rng(0))
        return d.of(ScaleUp)

    startup = Taint("ignore-taint.cluster-autoscaler.kubernetes.io/agent", "", NO_SCHEDULE)
    assert ups((startup,)) == []
    assert ups((Taint("ebs.csi.aws.com/agent-not-ready", "", NO_SCHEDULE),)) == []
    # A Ready node without them the pod did not land on: the pod needs another node.
    assert [u.count for u in ups(())] == [1]
    custom = Settings(placement=PlacementSettings(startup_taint_keys=()))
    node = Node("n1", "workers", "m5.large", "on-demand", ready=True,
                taints=(Taint("ebs.csi.aws.com/agent-not-ready", "", NO_SCHEDULE),))
    d = decide(ClusterView(2000.0, nodes=(node,), pending=waiting), pool_table(pools, offerings),
               Memory(batch_floor_s=1000.0), custom, now=2000.0, rng=np.random.default_rng(0))
    assert d.of(ScaleUp), "without the key configured, the taint is a lasting one"


def test_ephemeral_storage_is_learned_from_registered_nodes(catalog: Catalog) -> None:
    big_disk = pod("scratch", requests=Resources(cpu_milli=500, memory_mib=1024, pods=1,
                                                 ephemeral_mib=80 * 1024))
    model = PoolSpec("workers", ("m5.large",), zones=ZONE_A)
    assert chosen([big_disk], [model], catalog) == {"scratch": None}  # 20 GiB guessed
    reported = Resources(cpu_milli=1930, memory_mib=7400, pods=29, ephemeral_mib=95 * 1024)
    learned = PoolSpec("workers", ("m5.large",), zones=ZONE_A,
                       observed_allocatable=(("m5.large", reported),))
    assert chosen([big_disk], [learned], catalog) == {"scratch": "workers"}


def test_a_launch_template_root_volume_makes_a_big_ephemeral_request_placeable(
    catalog: Catalog,
) -> None:
    big_disk = pod("scratch", requests=Resources(cpu_milli=500, memory_mib=1024, pods=1,
                                                 ephemeral_mib=100 * 1024))
    pool = PoolSpec("workers", ("m5.large",), zones=ZONE_A, ephemeral_storage_mib=200 * 1024)
    assert chosen([big_disk], [pool], catalog) == {"scratch": "workers"}


def _registered(name: str, zone: str, **kw: object) -> Node:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "m5.large",
        LABEL_ZONE: zone,
        LABEL_REGION: "us-east-1",
        "team": "ml",  # the kubelet's --node-labels, which the ASG tags forgot
    }
    return Node(name, "workers", "m5.large", "on-demand", zone=zone, ready=True,
                labels=tuple(sorted(labels.items())), **kw)  # type: ignore[arg-type]


def test_registered_nodes_labels_and_taints_replace_the_templates_guess(
    catalog: Catalog,
) -> None:
    from scaler.core.observed import ObservedPools, reported_templates

    guessed = PoolSpec("workers", ("m5.large",), zones=ZONE_A, max_size=5,
                       labels=(("tier", "big"),))  # a tag the nodes do not carry
    dedicated = Taint("dedicated", "ml", NO_SCHEDULE)
    node = _registered("n1", "us-east-1a", taints=(
        dedicated, Taint("node.kubernetes.io/not-ready", "", NO_SCHEDULE),
        Taint("scaler.io/interrupted", "", NO_SCHEDULE),
    ))
    templates = reported_templates([node])
    (pool,) = ObservedPools()([guessed], {}, templates)
    assert pool.observed_taints == (dedicated,)  # the passing taints are not the group's
    assert ("kubernetes.io/hostname", "n1") not in (pool.observed_labels or ())
    tolerant = (Toleration("dedicated", "Equal", "ml", NO_SCHEDULE),)
    got = chosen([
        pod("team", node_selector=(("team", "ml"),), tolerations=tolerant),
        pod("tier", node_selector=(("tier", "big"),), tolerations=tolerant),
        pod("intolerant", node_selector=(("team", "ml"),)),
        pod("host", node_selector=(("kubernetes.io/hostname", "n1"),), tolerations=tolerant),
    ], [pool], catalog)
    assert got == {"team": "workers", "tier": None, "intolerant": None, "host": None}
    # Before any node registered, the guess stands.
    assert chosen([pod("tier", node_selector=(("tier", "big"),))], [guessed], catalog) == {
        "tier": "workers"
    }


def test_a_multi_zone_pool_learns_no_zone_from_its_first_node(catalog: Catalog) -> None:
    from scaler.core.observed import ObservedPools, reported_templates

    two = PoolSpec("workers", ("m5.large",), zones=("us-east-1a", "us-east-1b"))
    (pool,) = ObservedPools()([two], {}, reported_templates([_registered("n1", "us-east-1a")]))
    offerings, _ = build_offerings([pool], catalog)
    assert LABEL_ZONE not in offerings.labels[0] and offerings.labels[0]["team"] == "ml"
    one = PoolSpec("workers", ("m5.large",), zones=ZONE_A)
    (pool,) = ObservedPools()([one], {}, reported_templates([_registered("n1", "us-east-1a")]))
    offerings, _ = build_offerings([pool], catalog)
    assert offerings.labels[0][LABEL_ZONE] == "us-east-1a"


def test_learned_templates_keep_pool_identity_when_nothing_changed() -> None:
    from scaler.core.observed import ObservedPools, reported_templates

    observe = ObservedPools()
    base = [PoolSpec("workers", ("m5.large",), zones=ZONE_A)]
    templates = reported_templates([_registered("n1", "us-east-1a")])
    first = observe(base, {}, templates)
    assert observe(base, {}, dict(templates))[0] is first[0]
