"""Pods as the operators and charts people run make them, against the real kube-apiserver +
kube-scheduler and moto (see support.py for the flow): Dask workers (dask-kubernetes), a
Spark driver and its executors (spark-on-k8s), a Ray GPU worker (KubeRay), a Kubeflow
notebook (notebook-controller), an Argo workflow step, and a node full of DaemonSets.

Each pod is written from the operator's documented pod shape: its labels, annotations, owner
references, init and sidecar containers, volumes, selectors and tolerations. scaler decides
with the controller ``scaler run`` builds; the test registers the Node the chosen group's
instance would become (:func:`tests.fixtures.nodes.node_for_pool`) and the real
kube-scheduler must bind the pod to it.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import boto3
import pytest

from scaler.core.actions import NotifyUnplaceable, ScaleUp
from scaler.core.catalog import Catalog
from tests.conformance.support import (
    CLUSTER,
    ZonalGroup,
    controller,
    ebs_volume,
    expect_bound,
    expect_unplaceable_everywhere,
    pending_seen,
    wait_unschedulable,
    zonal_groups,
)
from tests.fixtures.controller import tick_until_scale_up
from tests.fixtures.kube import KubeScope, kube_request, wait_for
from tests.fixtures.nodes import EksGroup, eks_groups, node_for_pool

pytestmark = [pytest.mark.kube, pytest.mark.anyio]

CA = "k8s.io/cluster-autoscaler/"
LABEL_TAG = CA + "node-template/label/"
TAINT_TAG = CA + "node-template/taint/"


def create(kube: KubeScope, body: dict[str, Any]) -> dict[str, Any]:
    return kube_request(  # type: ignore[no-any-return]
        kube.api, "POST", f"/api/v1/namespaces/{kube.namespace}/pods", body
    )


def owner(api_version: str, kind: str, name: str, uid: str | None = None) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name,
            "uid": uid or str(uuid.uuid4()), "controller": True, "blockOwnerDeletion": True}  # fmt: skip


async def decide(kube_env: Any, catalog: Catalog, kube: KubeScope, *pods: str) -> list[ScaleUp]:
    """The pods pending (kube-scheduler said so), scaler's controller decides: its scale-ups."""
    wait_unschedulable(kube, *pods)
    async with controller(kube_env, catalog) as ctl:
        await pending_seen(ctl, {f"{kube.namespace}/{p}" for p in pods})
        return await tick_until_scale_up(ctl)


def nodes_for(kube: KubeScope, up: ScaleUp, **kw: Any) -> list[str]:
    """Register the nodes of a scale-up: the group's instances that have no Node yet."""
    (group,) = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[up.pool]
    )["AutoScalingGroups"]
    ids = sorted(i["InstanceId"] for i in group["Instances"])
    known = {n.spec.provider_id.rpartition("/")[2] for n in kube.core.list_node().items}
    fresh = [node_for_pool(kube, up.pool, instance_index=ids.index(i), **kw).metadata.name
             for i in ids if i not in known]  # fmt: skip
    assert len(fresh) == up.count, f"{up.pool}: {len(fresh)} new instances, scaled by {up.count}"
    return fresh


# --- Dask -----------------------------------------------------------------------------------


def dask_worker(name: str, namespace: str) -> dict[str, Any]:
    """A worker of a ``DaskCluster`` named ``analysis`` as the dask-kubernetes operator
    creates it for the default ``DaskWorkerGroup``: the ``dask.org/*`` labels, owned by the
    worker group, container ``worker`` running ``dask-worker`` against the scheduler Service,
    and the worker spec's resources and nodeSelector (here: the Dask node group)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"dask.org/cluster-name": "analysis", "dask.org/component": "worker",
                       "dask.org/workergroup-name": "analysis-default"},
            "ownerReferences": [owner("kubernetes.dask.org/v1", "DaskWorkerGroup", "analysis-default")],
        },
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": {"eks.amazonaws.com/nodegroup": "dask-workers"},
            "containers": [{
                "name": "worker",
                "image": "ghcr.io/dask/dask:2024.1.0",
                "args": ["dask-worker", "--name", "$(DASK_WORKER_NAME)", "--nthreads", "2",
                         "--memory-limit", "6GiB", "--dashboard", "--dashboard-address", "8788"],
                "env": [{"name": "DASK_WORKER_NAME", "value": name},
                        {"name": "DASK_SCHEDULER_ADDRESS",
                         "value": f"tcp://analysis-scheduler.{namespace}.svc.cluster.local:8786"}],
                "ports": [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "2", "memory": "6Gi"},
                              "limits": {"cpu": "2", "memory": "6Gi"}},
            }],
        },
    }  # fmt: skip


async def test_dask_workers_share_one_node_of_the_packing_group(kube_env, kube_ns, aws, catalog):
    # m5.2xlarge: 7910m CPU allocatable on the EKS AMI, room for three 2-CPU workers.
    eks_groups(aws, CLUSTER, [
        EksGroup("dask-workers", "m5.2xlarge", nodegroup="dask-workers",
                 tags={"scaler.io/pack": "true"}),
        EksGroup("general", "m5.large", nodegroup="general"),
    ])  # fmt: skip
    names = [f"analysis-default-worker-{s}" for s in ("4b1c9e2f07", "8d3a6f1b52", "c07e5d9a13")]
    for n in names:
        create(kube_ns, dask_worker(n, kube_ns.namespace))
    (up,) = await decide(kube_env, catalog, kube_ns, *names)
    bought = nodes_for(kube_ns, up)
    for n in names:
        expect_bound(kube_ns, n, bought)
    assert (up.pool, up.count) == ("dask-workers", 1)


# --- Spark ----------------------------------------------------------------------------------


SPARK_APP = "spark-6f2b1c0e9a6d4e1f8b7c5d3a2e1f0a9b"


def spark_driver(name: str) -> dict[str, Any]:
    """The driver pod ``spark-submit --deploy-mode cluster`` creates on Kubernetes (Spark 3.5,
    ``spark.driver.memory=1g``: 1g + 384Mi overhead; ``spark.kubernetes.node.selector.workload
    =spark``, which Spark applies to the driver and the executors)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"spark-app-selector": SPARK_APP, "spark-role": "driver",
                                              "spark-app-name": "pi", "spark-version": "3.5.0"}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "restartPolicy": "Never",
            "nodeSelector": {"workload": "spark"},
            "containers": [{
                "name": "spark-kubernetes-driver",
                "image": "apache/spark:3.5.0",
                "args": ["driver", "--properties-file", "/opt/spark/conf/spark.properties",
                         "--class", "org.apache.spark.examples.SparkPi",
                         "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.0.jar"],
                "ports": [{"name": "driver-rpc-port", "containerPort": 7078},
                          {"name": "blockmanager", "containerPort": 7079},
                          {"name": "spark-ui", "containerPort": 4040}],
                "resources": {"requests": {"cpu": "1", "memory": "1408Mi"},
                              "limits": {"memory": "1408Mi"}},
                "volumeMounts": [{"name": "spark-local-dir-1", "mountPath": "/var/data/spark-1"}],
            }],
            "volumes": [{"name": "spark-local-dir-1", "emptyDir": {}}],
        },
    }  # fmt: skip


def spark_executor(driver: dict[str, Any], exec_id: int, namespace: str) -> dict[str, Any]:
    """An executor as the driver's ExecutorPodsAllocator creates it (``spark.executor.cores
    =3``, ``spark.executor.memory=8g``: 8192Mi + max(384Mi, 10%) = 9011Mi), owned by the
    driver pod, with the executor labels and the node selector Spark copies from the conf."""
    drv = driver["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"pi-exec-{exec_id}",
            "labels": {"spark-app-selector": SPARK_APP, "spark-role": "executor",
                       "spark-exec-id": str(exec_id), "spark-exec-resourceprofile-id": "0",
                       "spark-app-name": "pi", "spark-version": "3.5.0"},
            "ownerReferences": [owner("v1", "Pod", drv, driver["metadata"]["uid"])],
        },
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "restartPolicy": "Never",
            "hostname": f"pi-exec-{exec_id}",
            "nodeSelector": {"workload": "spark"},
            "containers": [{
                "name": "spark-kubernetes-executor",
                "image": "apache/spark:3.5.0",
                "args": ["executor"],
                "env": [
                    {"name": "SPARK_DRIVER_URL",
                     "value": f"spark://CoarseGrainedScheduler@{drv}-svc.{namespace}.svc:7078"},
                    {"name": "SPARK_EXECUTOR_CORES", "value": "3"},
                    {"name": "SPARK_EXECUTOR_MEMORY", "value": "8g"},
                    {"name": "SPARK_APPLICATION_ID", "value": SPARK_APP},
                    {"name": "SPARK_EXECUTOR_ID", "value": str(exec_id)},
                    {"name": "SPARK_RESOURCE_PROFILE_ID", "value": "0"},
                    {"name": "SPARK_EXECUTOR_POD_IP",
                     "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
                ],
                "ports": [{"name": "blockmanager", "containerPort": 7079}],
                "resources": {"requests": {"cpu": "3", "memory": "9011Mi"},
                              "limits": {"memory": "9011Mi"}},
                "volumeMounts": [{"name": "spark-local-dir-1", "mountPath": "/var/data/spark-1"}],
            }],
            "volumes": [{"name": "spark-local-dir-1", "emptyDir": {}}],
        },
    }  # fmt: skip


async def test_a_spark_driver_then_its_executors_get_nodes_of_the_spark_group(
    kube_env, kube_ns, aws, catalog
):
    eks_groups(aws, CLUSTER, [
        EksGroup("spark", "r5.xlarge", tags={LABEL_TAG + "workload": "spark"}),
        EksGroup("general", "m5.xlarge"),  # cheaper, but not the group Spark selects
    ])  # fmt: skip
    driver = create(kube_ns, spark_driver("pi-driver"))
    (up,) = await decide(kube_env, catalog, kube_ns, "pi-driver")
    (driver_node,) = nodes_for(kube_ns, up)
    expect_bound(kube_ns, "pi-driver", driver_node)
    assert (up.pool, up.count) == ("spark", 1)
    # The running driver asks for two executors; 3 CPUs each: neither fits beside the
    # driver (3920m allocatable) nor beside each other.
    for i in (1, 2):
        create(kube_ns, spark_executor(driver, i, kube_ns.namespace))
    ups = await decide(kube_env, catalog, kube_ns, "pi-exec-1", "pi-exec-2")
    assert [(u.pool, u.count) for u in ups] == [("spark", 2)]
    bought = nodes_for(kube_ns, ups[0])
    assert len({expect_bound(kube_ns, f"pi-exec-{i}", bought) for i in (1, 2)}) == 2


# --- Ray ------------------------------------------------------------------------------------


def ray_gpu_worker(name: str, namespace: str, gpus: int = 1) -> dict[str, Any]:
    """A worker of RayCluster ``raycluster-gpu``'s worker group ``gpu-group`` as KubeRay
    creates it: the ``ray.io/*`` labels, owned by the RayCluster, the ``wait-gcs-ready`` init
    container, ``ray start --num-gpus`` in container ``ray-worker`` with limits = requests
    including ``nvidia.com/gpu``, /dev/shm in memory, and the toleration of the
    ``nvidia.com/gpu`` taint KubeRay's GPU docs give GPU worker groups."""
    head = f"raycluster-gpu-head-svc.{namespace}.svc.cluster.local:6379"
    resources = {"cpu": "3", "memory": "12Gi", "nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"ray.io/cluster": "raycluster-gpu", "ray.io/group": "gpu-group",
                       "ray.io/node-type": "worker", "ray.io/identifier": "raycluster-gpu-worker",
                       "ray.io/is-ray-node": "yes", "app.kubernetes.io/name": "kuberay",
                       "app.kubernetes.io/created-by": "kuberay-operator"},
            "ownerReferences": [owner("ray.io/v1", "RayCluster", "raycluster-gpu")],
        },
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "restartPolicy": "Always",
            "initContainers": [{
                "name": "wait-gcs-ready",
                "image": "rayproject/ray-ml:2.9.0-gpu",
                "command": ["/bin/bash", "-lc", "--"],
                "args": [f"until ray health-check --address {head} > /dev/null 2>&1; do sleep 5; done"],
                "resources": {"requests": {"cpu": "200m", "memory": "256Mi"},
                              "limits": {"cpu": "200m", "memory": "256Mi"}},
            }],
            "containers": [{
                "name": "ray-worker",
                "image": "rayproject/ray-ml:2.9.0-gpu",
                "command": ["/bin/bash", "-lc", "--"],
                "args": [f"ulimit -n 65536; ray start --address={head} --metrics-export-port=8080 "
                         f"--block --num-cpus=3 --memory=12884901888 --num-gpus={gpus}"],
                "ports": [{"name": "metrics", "containerPort": 8080}],
                "resources": {"requests": resources, "limits": resources},
                "volumeMounts": [{"name": "shared-mem", "mountPath": "/dev/shm"}],
            }],
            "volumes": [{"name": "shared-mem", "emptyDir": {"medium": "Memory", "sizeLimit": "4Gi"}}],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    }  # fmt: skip


async def tick_until_unplaceable(ctl: Any, key: str, timeout_s: float = 15.0) -> str:
    with anyio.fail_after(timeout_s):
        while True:
            for a in (await ctl.reconciler.tick()).actions:
                if isinstance(a, NotifyUnplaceable) and key in {p.key for p in a.pods}:
                    return a.reason
            await anyio.sleep(0.1)


async def test_a_ray_gpu_worker_gets_the_cheapest_gpu_node_and_a_4_gpu_worker_none(
    kube_env, kube_ns, aws, catalog
):
    gpu_taint = {TAINT_TAG + "nvidia.com/gpu": "true:NoSchedule"}
    eks_groups(aws, CLUSTER, [
        EksGroup("gpu-t4", "g4dn.xlarge", tags=gpu_taint),
        EksGroup("gpu-v100", "p3.2xlarge", tags=gpu_taint, root_volume_gib=100),
        EksGroup("cpu", "m5.xlarge"),
    ])  # fmt: skip
    worker = "raycluster-gpu-worker-gpu-group-x7k2p"
    create(kube_ns, ray_gpu_worker(worker, kube_ns.namespace))
    (up,) = await decide(kube_env, catalog, kube_ns, worker)
    (node,) = nodes_for(kube_ns, up)
    expect_bound(kube_ns, worker, node)
    assert (up.pool, up.count) == ("gpu-t4", 1)

    # A worker group asking 4 GPUs a pod: no group here has a node with 4.
    big = "raycluster-gpu-worker-gpu-group-q9m4z"
    create(kube_ns, ray_gpu_worker(big, kube_ns.namespace, gpus=4))
    wait_unschedulable(kube_ns, big)
    async with controller(kube_env, catalog) as ctl:
        await pending_seen(ctl, {f"{kube_ns.namespace}/{big}"})
        reason = await tick_until_unplaceable(ctl, f"{kube_ns.namespace}/{big}")
    # Proof that no group could run it: a node of every group, and kube-scheduler agrees.
    asg = boto3.client("autoscaling")
    for group in ("gpu-v100", "cpu"):
        asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
        node_for_pool(kube_ns, group)
    expect_unplaceable_everywhere(kube_ns, big, reason, registered=len(kube_ns.core.list_node().items))


# --- Kubeflow -------------------------------------------------------------------------------

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
NOTEBOOK = {f"nb-{z[-2:]}": ZonalGroup(f"nb-{z[-2:]}", "m5.large", z) for z in ZONES}


def kubeflow_notebook_pod(name: str, namespace: str) -> dict[str, Any]:
    """Pod ``<name>-0`` of the StatefulSet Kubeflow's notebook-controller makes for Notebook
    ``name`` as the Jupyter web app spawns it by default: labels ``statefulset``,
    ``notebook-name`` and ``app``, one container named after the notebook with ``NB_PREFIX``,
    0.5 CPU / 1Gi requested (limits 1.2x), the workspace claim ``<name>-workspace`` at
    /home/jovyan, /dev/shm in memory, fsGroup 100."""
    pod = f"{name}-0"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod,
            "labels": {"app": name, "notebook-name": name, "statefulset": name,
                       "statefulset.kubernetes.io/pod-name": pod,
                       "controller-revision-hash": f"{name}-5c7f9d8b6d"},
            "ownerReferences": [owner("apps/v1", "StatefulSet", name)],
        },
        "spec": {
            "hostname": pod,
            "terminationGracePeriodSeconds": 0,
            "securityContext": {"fsGroup": 100},
            "containers": [{
                "name": name,
                "image": "kubeflownotebookswg/jupyter-scipy:v1.8.0",
                "env": [{"name": "NB_PREFIX", "value": f"/notebook/{namespace}/{name}"}],
                "ports": [{"name": "notebook-port", "containerPort": 8888, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                              "limits": {"cpu": "600m", "memory": "1.2Gi"}},
                "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"},
                                 {"name": f"{name}-workspace", "mountPath": "/home/jovyan"}],
            }],
            "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}},
                        {"name": f"{name}-workspace",
                         "persistentVolumeClaim": {"claimName": f"{name}-workspace"}}],
        },
    }  # fmt: skip


@pytest.fixture
def _delete_volumes(kube_ns: KubeScope) -> Any:
    yield
    for pv in kube_ns.core.list_persistent_volume().items:
        if kube_ns.namespace in pv.metadata.name:
            kube_ns.core.delete_persistent_volume(pv.metadata.name, grace_period_seconds=0)


async def test_a_kubeflow_notebook_gets_a_node_in_its_workspace_volumes_zone(
    kube_env, kube_ns, aws, catalog, _delete_volumes
):
    zonal_groups(list(NOTEBOOK.values()))
    ebs_volume(kube_ns, f"pvc-{kube_ns.namespace}-ws", "us-east-1c", "analysis-workspace",
               key="topology.ebs.csi.aws.com/zone")  # fmt: skip
    create(kube_ns, kubeflow_notebook_pod("analysis", kube_ns.namespace))
    (up,) = await decide(kube_env, catalog, kube_ns, "analysis-0")
    (node,) = nodes_for(kube_ns, up)
    expect_bound(kube_ns, "analysis-0", node)
    assert (up.pool, up.count) == ("nb-1c", 1)


# --- Argo -----------------------------------------------------------------------------------


def argo_step(name: str, workflow: str) -> dict[str, Any]:
    """A step pod of Workflow ``workflow`` as Argo's workflow-controller (v3.5, emissary
    executor) creates it: the workflow labels and node annotations, owned by the Workflow,
    the ``init`` container that stages argoexec into ``/var/run/argo``, the ``wait`` sidecar,
    ``main`` running the user's command through ``argoexec emissary``. The init and wait
    containers carry the executor resources of the controller's ConfigMap (here requests
    100m / 64Mi, as a cluster sets them so that ResourceQuotas admit the pods)."""
    executor = {"requests": {"cpu": "100m", "memory": "64Mi"},
                "limits": {"cpu": "500m", "memory": "512Mi"}}  # fmt: skip
    argo = [{"name": "var-run-argo", "mountPath": "/var/run/argo"}]
    env = [{"name": "ARGO_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "ARGO_NODE_ID", "value": name}]  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"workflows.argoproj.io/workflow": workflow,
                       "workflows.argoproj.io/completed": "false"},
            "annotations": {"workflows.argoproj.io/node-id": name,
                            "workflows.argoproj.io/node-name": f"{workflow}[0].transform",
                            "workflows.argoproj.io/template": '{"name":"transform"}'},
            "ownerReferences": [owner("argoproj.io/v1alpha1", "Workflow", workflow)],
        },
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "initContainers": [{
                "name": "init", "image": "quay.io/argoproj/argoexec:v3.5.5",
                "command": ["argoexec", "init", "--loglevel", "info", "--log-format", "text"],
                "env": env, "resources": executor, "volumeMounts": argo,
            }],
            "containers": [
                {"name": "wait", "image": "quay.io/argoproj/argoexec:v3.5.5",
                 "command": ["argoexec", "wait", "--loglevel", "info", "--log-format", "text"],
                 "env": env, "resources": executor, "volumeMounts": argo},
                {"name": "main", "image": "python:3.12",
                 "command": ["/var/run/argo/argoexec", "emissary", "--loglevel", "info",
                             "--log-format", "text", "--", "python", "transform.py"],
                 "env": [*env, {"name": "ARGO_CONTAINER_NAME", "value": "main"}],
                 "resources": {"requests": {"cpu": "1900m", "memory": "4Gi"}},
                 "volumeMounts": argo},
            ],
            "volumes": [{"name": "var-run-argo", "emptyDir": {}}],
        },
    }  # fmt: skip


async def test_an_argo_step_is_sized_with_its_wait_sidecar(kube_env, kube_ns, aws, catalog):
    # m5.large has 1930m allocatable: the 1900m step fits, not with the 100m wait sidecar.
    eks_groups(aws, CLUSTER, [EksGroup("steps-large", "m5.large"),
                              EksGroup("steps-xlarge", "m5.xlarge")])  # fmt: skip
    name = "etl-xk2p9-transform-3419552093"
    create(kube_ns, argo_step(name, "etl-xk2p9"))
    (up,) = await decide(kube_env, catalog, kube_ns, name)
    (node,) = nodes_for(kube_ns, up)
    expect_bound(kube_ns, name, node)
    assert (up.pool, up.count) == ("steps-xlarge", 1)


# --- DaemonSets -----------------------------------------------------------------------------

DAEMONSETS = {
    # name: containers' CPU / memory requests, as the EKS add-ons' manifests set them.
    "aws-node": [("aws-node", "25m", None)],
    "kube-proxy": [("kube-proxy", "100m", None)],
    "ebs-csi-node": [("ebs-plugin", "10m", "40Mi"), ("node-driver-registrar", "10m", "40Mi"),
                     ("liveness-probe", "10m", "40Mi")],
}  # fmt: skip


def create_daemonsets(kube: KubeScope) -> dict[str, str]:
    """The DaemonSets (no controller-manager runs here: the test places their pods); uids."""
    from kubernetes import client

    apps = client.AppsV1Api(kube.api)
    uids = {}
    for ds, containers in DAEMONSETS.items():
        body = {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": ds},
            "spec": {"selector": {"matchLabels": {"k8s-app": ds}}, "template": {
                "metadata": {"labels": {"k8s-app": ds}},
                "spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                         "containers": [{"name": c, "image": f"{ds}:v1"} for c, _, _ in containers]},
            }},
        }  # fmt: skip
        uids[ds] = apps.create_namespaced_daemon_set(kube.namespace, body).metadata.uid
    return uids  # type: ignore[no-any-return]


def place_daemonset_pods(kube: KubeScope, node: str, uids: dict[str, str]) -> None:
    """What the DaemonSet controller does for a new node: a pod of each DaemonSet, its node
    affinity replaced by ``matchFields metadata.name``, tolerating every taint (as these
    add-ons do) and the not-ready/unreachable ones; kube-scheduler binds them."""
    names = []
    for ds, containers in DAEMONSETS.items():
        name = f"{ds}-{node.split('.')[0][-5:]}"
        names.append(name)
        create(kube, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"k8s-app": ds},
                         "ownerReferences": [owner("apps/v1", "DaemonSet", ds, uids[ds])]},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "hostNetwork": True,
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": [node]}]}]}}},
                "tolerations": [{"operator": "Exists"}],
                "containers": [
                    {"name": c, "image": f"{ds}:v1", "resources": {"requests": {
                        "cpu": cpu, **({"memory": mem} if mem else {})}}}
                    for c, cpu, mem in containers
                ],
            },
        })  # fmt: skip
    for name in names:
        wait_for(
            lambda n=name: kube.core.read_namespaced_pod(n, kube.namespace).spec.node_name == node,
            timeout_s=20,
            what=f"{name} bound to {node}",
        )


async def test_a_node_full_of_daemonsets_still_fits_the_workload_pod(
    kube_env, kube_ns, aws, catalog
):
    asg = eks_groups(aws, CLUSTER, [
        EksGroup("system", "m5.large", tags={TAINT_TAG + "CriticalAddonsOnly": "true:NoSchedule"}),
        EksGroup("workers-large", "m5.large"),
        EksGroup("workers-xlarge", "m5.xlarge"),
    ])  # fmt: skip
    # The cluster as it runs: one system node, every DaemonSet's pod on it.
    asg.set_desired_capacity(AutoScalingGroupName="system", DesiredCapacity=1)
    uids = create_daemonsets(kube_ns)
    place_daemonset_pods(kube_ns, node_for_pool(kube_ns, "system").metadata.name, uids)
    # 1800m fits m5.large's 1930m alone, not beside the DaemonSets' 165m.
    create(kube_ns, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api-0"},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [
            {"name": "api", "image": "api:1", "resources": {"requests": {"cpu": "1800m", "memory": "4Gi"}}}]},
    })  # fmt: skip
    (up,) = await decide(kube_env, catalog, kube_ns, "api-0")
    # The kubelet registers not-ready; the DaemonSet pods (tolerating it) land first.
    (node,) = nodes_for(
        kube_ns, up, extra_taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    )
    place_daemonset_pods(kube_ns, node, uids)
    kube_ns.core.patch_node(node, {"spec": {"taints": []}})
    expect_bound(kube_ns, "api-0", node)
    assert (up.pool, up.count) == ("workers-xlarge", 1)
