"""Pods whose volumes decide their zone, shaped as the charts and controllers make them,
against the real kube-apiserver + kube-scheduler and moto (see support.py for the flow).

Groups (us-east-1 catalog prices): one ``user-*`` group per zone for JupyterHub user pods
(m5.large, node-purpose label and the dedicated=user taint, as zero-to-jupyterhub's docs
set up user node pools), and one ``db-*`` group per zone (r5.large) for a database
StatefulSet. The groups of one kind differ only by zone, so without reading the volume a
tie goes by name to ``-1a``, and kube-scheduler never binds the pod there.
"""

from __future__ import annotations

from typing import Any

import pytest

from scaler.core.catalog import Catalog
from tests.conformance.support import (
    ZonalGroup,
    controller,
    ebs_volume,
    expect_bound,
    instances,
    pending_seen,
    register_node,
    wait_unschedulable,
    zonal_groups,
)
from tests.fixtures.controller import tick_until_scale_up
from tests.fixtures.kube import KubeScope, kube_request

pytestmark = [pytest.mark.kube, pytest.mark.anyio]

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
USER = {
    f"user-{z[-2:]}": ZonalGroup(
        f"user-{z[-2:]}",
        "m5.large",
        z,
        labels={"hub.jupyter.org/node-purpose": "user"},
        taints={"hub.jupyter.org/dedicated": "user:NoSchedule"},
    )
    for z in ZONES
}
DB = {f"db-{z[-2:]}": ZonalGroup(f"db-{z[-2:]}", "r5.large", z) for z in ZONES}


@pytest.fixture
def groups(aws: str) -> Any:
    return zonal_groups([*USER.values(), *DB.values()])


@pytest.fixture(autouse=True)
def _delete_volumes(kube_ns: KubeScope) -> Any:
    """PersistentVolumes are cluster-wide: the namespace cleanup does not reach them."""
    yield
    for pv in kube_ns.core.list_persistent_volume().items:
        if kube_ns.namespace in pv.metadata.name:
            kube_ns.core.delete_persistent_volume(pv.metadata.name, grace_period_seconds=0)


def jupyterhub_user_pod(name: str, claim: str) -> dict[str, Any]:
    """A single-user server as zero-to-jupyterhub's KubeSpawner makes it with
    ``scheduling.userPods.nodeAffinity.matchNodePurpose: require`` and a home directory on a
    per-user claim (``singleuser.storage.type: dynamic``): the user-pod tolerations, the
    node-purpose affinity, a memory guarantee of 1G, the home claim at /home/jovyan."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": "jupyterhub", "component": "singleuser-server",
                       "hub.jupyter.org/servername": "", "hub.jupyter.org/username": "alice"},
            "annotations": {"hub.jupyter.org/username": "alice"},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "initContainers": [{"name": "block-cloud-metadata", "image": "jupyterhub/k8s-network-tools:3.0.0",
                                "command": ["iptables", "-A", "OUTPUT", "-d", "169.254.169.254", "-j", "DROP"]}],
            "containers": [{
                "name": "notebook",
                "image": "quay.io/jupyterhub/k8s-singleuser-sample:3.0.0",
                "args": ["jupyterhub-singleuser"],
                "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                "resources": {"requests": {"memory": "1073741824"}},
                "volumeMounts": [{"mountPath": "/home/jovyan", "name": "volume-alice"}],
            }],
            "volumes": [{"name": "volume-alice", "persistentVolumeClaim": {"claimName": claim}}],
            "tolerations": [
                {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"},
                {"key": "hub.jupyter.org_dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"},
            ],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}]}]}}},
        },
    }  # fmt: skip


def statefulset_replica(name: str, claim: str) -> dict[str, Any]:
    """Replica ``db-0`` of a StatefulSet with a ``volumeClaimTemplates`` entry ``data``: the
    StatefulSet controller names the claim ``data-db-0`` and mounts it; the pod carries its
    pod-name label and the controller's owner reference."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": "db", "statefulset.kubernetes.io/pod-name": name,
                       "controller-revision-hash": "db-6d4b9c7f5d"},
        },
        "spec": {
            "hostname": name,
            "subdomain": "db",
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "postgres",
                "image": "postgres:16",
                "resources": {"requests": {"cpu": "1", "memory": "8Gi"}},
                "volumeMounts": [{"mountPath": "/var/lib/postgresql/data", "name": "data"}],
            }],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }  # fmt: skip


async def scale_register_bind(
    kube_env: Any, kube: KubeScope, catalog: Catalog, asg: Any, pod: str, table: dict[str, ZonalGroup]
) -> tuple[str, str]:
    """scaler decides, the instance registers, kube-scheduler binds: (group, node)."""
    wait_unschedulable(kube, pod)
    async with controller(kube_env, catalog) as ctl:
        await pending_seen(ctl, {f"{kube.namespace}/{pod}"})
        (up,) = await tick_until_scale_up(ctl)
    ((instance, zone),) = instances(asg, up.pool)
    node = register_node(kube, catalog, table[up.pool], instance, zone)
    expect_bound(kube, pod, node)
    return up.pool, node


async def test_a_jupyterhub_user_pod_gets_a_node_in_its_home_volumes_zone(
    kube_env, kube_ns, groups, catalog
):
    ebs_volume(kube_ns, f"pvc-{kube_ns.namespace}-home", "us-east-1b", "claim-alice",
               key="topology.ebs.csi.aws.com/zone")
    kube_request(kube_ns.api, "POST", f"/api/v1/namespaces/{kube_ns.namespace}/pods",
                 jupyterhub_user_pod("jupyter-alice", "claim-alice"))
    pool, node = await scale_register_bind(kube_env, kube_ns, catalog, groups, "jupyter-alice", USER)
    assert pool == "user-1b"
    assert kube_ns.core.read_node(node).metadata.labels["topology.kubernetes.io/zone"] == "us-east-1b"


async def test_a_statefulset_replica_follows_its_ebs_volume_to_its_zone(
    kube_env, kube_ns, groups, catalog
):
    # An older in-tree-provisioned volume: node affinity on the GA zone key.
    ebs_volume(kube_ns, f"pvc-{kube_ns.namespace}-db0", "us-east-1c", "data-db-0",
               key="topology.kubernetes.io/zone")
    kube_request(kube_ns.api, "POST", f"/api/v1/namespaces/{kube_ns.namespace}/pods",
                 statefulset_replica("db-0", "data-db-0"))
    pool, _ = await scale_register_bind(kube_env, kube_ns, catalog, groups, "db-0", DB)
    assert pool == "db-1c"
