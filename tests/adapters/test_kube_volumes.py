"""Claims, volumes and storage classes -> the zones a pending pod may run in (pure)."""

from __future__ import annotations

import pytest

from scaler.adapters.kube.cluster import KubeCluster
from scaler.adapters.kube.volumes import (
    claim_zones,
    convert_claim,
    convert_class,
    convert_volume,
    pod_claims,
)


def pv(*, affinity_key: str | None = None, zones: tuple[str, ...] = (), labels=None) -> dict:
    spec: dict = {}
    if affinity_key:
        spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [
                        {"key": affinity_key, "operator": "In", "values": list(zones)}
                    ]}
                ]
            }
        }
    return {"metadata": {"name": "vol", "labels": labels or {}}, "spec": spec}


def test_a_volumes_zone_is_read_under_each_zone_key_in_use():
    for key in (
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.ebs.csi.aws.com/zone",
    ):
        assert convert_volume(pv(affinity_key=key, zones=("us-east-1b",))).zones == {"us-east-1b"}
    labelled = pv(labels={"failure-domain.beta.kubernetes.io/zone": "us-east-1c"})
    assert convert_volume(labelled).zones == {"us-east-1c"}
    assert convert_volume(pv()).zones is None
    assert convert_volume(pv(affinity_key="kubernetes.io/hostname", zones=("n1",))).zones is None


def test_pod_claims_names_claim_volumes_and_generic_ephemeral_claims():
    pod = {
        "metadata": {"name": "jupyter-alice", "namespace": "hub"},
        "spec": {
            "volumes": [
                {"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                {"name": "token", "projected": {"sources": []}},
            ]
        },
    }
    assert pod_claims(pod) == ("hub/claim-alice", "hub/jupyter-alice-scratch")


def test_a_bound_claim_takes_its_volumes_zone_and_claims_intersect():
    pvcs = {
        "ns/a": convert_claim({"spec": {"volumeName": "pv-a", "storageClassName": "gp3"}}),
        "ns/b": convert_claim({"spec": {"volumeName": "pv-b"}}),
    }
    pvs = {
        "pv-a": convert_volume(
            pv(affinity_key="topology.ebs.csi.aws.com/zone", zones=("us-east-1a", "us-east-1b"))
        ),
        "pv-b": convert_volume(pv(affinity_key="topology.kubernetes.io/zone", zones=("us-east-1b",))),
    }
    assert claim_zones(["ns/a"], pvcs, pvs, {}) == {"us-east-1a", "us-east-1b"}
    assert claim_zones(["ns/a", "ns/b"], pvcs, pvs, {}) == {"us-east-1b"}
    # Not in the caches yet: no restriction (kube-scheduler waits for it as well).
    assert claim_zones(["ns/unknown"], pvcs, pvs, {}) is None


def test_an_unbound_wait_for_first_consumer_claim_takes_its_classes_allowed_topologies():
    wffc = convert_class(
        {
            "metadata": {"name": "gp3"},
            "volumeBindingMode": "WaitForFirstConsumer",
            "allowedTopologies": [
                {"matchLabelExpressions": [
                    {"key": "topology.ebs.csi.aws.com/zone", "values": ["us-east-1c"]}
                ]}
            ],
        }
    )
    immediate = convert_class({"metadata": {"name": "io2"}, "allowedTopologies": [
        {"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["x"]}]}
    ]})
    default = convert_class({
        "metadata": {"name": "d", "annotations": {
            "storageclass.kubernetes.io/is-default-class": "true"}},
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowedTopologies": [{"matchLabelExpressions": [
            {"key": "topology.kubernetes.io/zone", "values": ["us-east-1d"]}]}],
    })
    classes = {"gp3": wffc, "io2": immediate, "d": default}
    pvcs = {
        "ns/a": convert_claim({"spec": {"storageClassName": "gp3"}}),
        "ns/b": convert_claim({"spec": {"storageClassName": "io2"}}),
        "ns/c": convert_claim({"spec": {}}),
        "ns/d": convert_claim({"spec": {"storageClassName": ""}}),
    }
    assert claim_zones(["ns/a"], pvcs, {}, classes) == {"us-east-1c"}
    # Immediate binding: the volume is made before scheduling; the class says nothing here.
    assert claim_zones(["ns/b"], pvcs, {}, classes) is None
    assert claim_zones(["ns/c"], pvcs, {}, classes) == {"us-east-1d"}
    assert claim_zones(["ns/d"], pvcs, {}, classes) is None
    # Two claims in different zones: no zone serves both.
    assert claim_zones(["ns/a", "ns/c"], pvcs, {}, classes) == frozenset()


# --- against the real API server: the caches follow claims, volumes and classes -------------


@pytest.mark.kube
@pytest.mark.anyio
async def test_a_pending_pods_zone_follows_its_claim_from_class_to_bound_volume(kube_ns):
    from tests.adapters.test_kube_cluster import running, until
    from tests.fixtures.kube import kube_request

    ns = kube_ns.namespace
    cls = f"wffc-{ns}"
    kube_request(kube_ns.api, "POST", "/apis/storage.k8s.io/v1/storageclasses", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": cls},
        "provisioner": "ebs.csi.aws.com", "volumeBindingMode": "WaitForFirstConsumer",
        "allowedTopologies": [{"matchLabelExpressions": [
            {"key": "topology.ebs.csi.aws.com/zone", "values": ["us-east-1c"]}]}],
    })  # fmt: skip
    try:
        kube_ns.core.create_namespaced_persistent_volume_claim(ns, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                     "resources": {"requests": {"storage": "1Gi"}}},
        })  # fmt: skip
        kube_ns.core.create_namespaced_pod(ns, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db-0"},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "db", "image": "postgres"}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]},
        })  # fmt: skip
        key = f"{ns}/db-0"
        api = kube_ns.api
        async with running(KubeCluster(api)) as cluster:

            def zone_of(view):
                pod = next((p.pod for p in view.pending if p.pod.key == key), None)
                return pod.zone if pod is not None else None

            assert await until(cluster, lambda v: zone_of(v) == "us-east-1c" and "ok")
            # The volume is provisioned in 1c... then say it is bound to one in 1a (a
            # restore): the cached pod follows the volume, not the class.
            kube_ns.core.create_persistent_volume({
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"pv-{ns}"},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                         "storageClassName": cls,
                         "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1"},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "topology.ebs.csi.aws.com/zone", "operator": "In",
                              "values": ["us-east-1a"]}]}]}}},
            })  # fmt: skip
            kube_ns.core.patch_namespaced_persistent_volume_claim(
                "data", ns, {"spec": {"volumeName": f"pv-{ns}"}}
            )
            assert await until(cluster, lambda v: zone_of(v) == "us-east-1a" and "ok")
    finally:
        kube_request(kube_ns.api, "DELETE", f"/apis/storage.k8s.io/v1/storageclasses/{cls}")
        kube_ns.core.delete_persistent_volume(f"pv-{ns}")


@pytest.mark.anyio
async def test_the_webhook_chooser_sees_the_pod_limited_by_its_claims():
    # Pinned at admission to the cheapest pools of other zones, a pod whose volume lives in
    # one zone could never run: the chooser must see the volume's zone.
    from kubernetes.client import ApiClient

    from scaler.adapters.kube.convert import pod_spec

    cluster = KubeCluster(ApiClient())
    cluster._volume_event(cluster._pvcs, "hub/claim-alice", convert_claim({"spec": {"volumeName": "pv-1"}}))
    cluster._volume_event(cluster._pvs, "pv-1", convert_volume(
        pv(affinity_key="topology.ebs.csi.aws.com/zone", zones=("us-east-1f",))))
    raw = {"metadata": {"name": "jupyter-alice", "namespace": "hub"}, "spec": {
        "containers": [{"name": "nb"}],
        "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}]}}
    seen = []

    async def chooser(pod):
        seen.append(pod)
        return ("user-1f",)

    spec = pod_spec(raw).value
    assert spec.claims == ("hub/claim-alice",) and spec.zone is None
    assert await cluster.claim_aware(chooser)(spec) == ("user-1f",)
    assert seen[0].zone == "us-east-1f"
