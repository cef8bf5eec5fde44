"""One workload pod per node, enforced by the real kube-scheduler; packing where a group asks.

A control plane of this module's own (kube-apiserver + kube-scheduler v1.20.2: the webhook
configuration is cluster-scoped and must not reach the session's other tests), moto for the
ASGs (tagged as real groups are), scaler's controller and its webhook over TLS. The test plays
the kubelet: it registers the Node each launched instance would become, with its providerID.

- ``solo`` (m5.xlarge: 4 vCPU, 16 GiB, room for both pods) does not pack: scaler buys a node
  per pod, and with one node registered kube-scheduler binds one pod there and keeps the
  other pending (the anti-affinity the webhook added) until the second node registers.
- ``dask`` carries ``scaler.io/pack: "true"``: scaler buys one node and both pods bind to it.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from kubernetes import client

from scaler.adapters.aws.fleet import AwsFleet
from scaler.app import Controller, RunOptions, build
from scaler.core.actions import ScaleUp
from scaler.core.catalog import Catalog
from scaler.loop.admission import make_chooser
from tests.adapters.test_webhook import Pki, webhook
from tests.fixtures.aws import Group, tagged_groups
from tests.fixtures.kube import KubeEnv, KubeScope, control_plane, require_kube_parts

pytestmark = [pytest.mark.kube, pytest.mark.anyio]

blocking = anyio.to_thread.run_sync
CLUSTER = "onepod"
M5_XLARGE = {"cpu": 4, "memory": "16Gi", "pods": 58}


@pytest.fixture(scope="module")
def own_kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeEnv]:
    require_kube_parts()
    try:
        with control_plane(tmp_path_factory.mktemp("kube-onepod"), scheduler=True) as env:
            yield env
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pytest.importorskip("cryptography")
    return Pki(tmp_path)


@contextlib.asynccontextmanager
async def scaler_with_webhook(
    kube: KubeEnv, catalog: Catalog, pki: Pki
) -> AsyncIterator[tuple[Controller, KubeScope]]:
    """scaler's controller and webhook; a namespace opted into pinning; the webhook
    registered as manifests/components/webhook registers it (failurePolicy Ignore)."""
    suffix = secrets.token_hex(3)
    namespace, config_name = f"onepod-{suffix}", f"scaler-onepod-{suffix}"
    api = kube.api_client()
    scope = KubeScope(namespace, api)
    admission = client.AdmissionregistrationV1Api(api)
    await blocking(
        lambda: scope.core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(name=namespace, labels={"scaler.io/pin": "enabled"})
            )
        )
    )
    opts = RunOptions(cluster_name=CLUSTER, kubeconfig=str(kube.kubeconfig), leader_elect=False)
    try:
        async with AwsFleet.open(CLUSTER, catalog) as fleet:
            await fleet.discover()
            ctl = build(opts, fleet, catalog)
            async with anyio.create_task_group() as tg:
                await tg.start(ctl.cluster.run)
                await ctl.reconciler.offerings_now()
                async with webhook(pki, make_chooser(ctl.reconciler)) as (port, _, _):
                    hook = client.V1MutatingWebhook(
                        name="pin.scaler.io",
                        admission_review_versions=["v1"],
                        side_effects="None",
                        failure_policy="Ignore",
                        timeout_seconds=2,
                        client_config=client.AdmissionregistrationV1WebhookClientConfig(
                            url=f"https://127.0.0.1:{port}/mutate",
                            ca_bundle=base64.b64encode(pki.ca_pem).decode(),
                        ),
                        namespace_selector=client.V1LabelSelector(
                            match_labels={"scaler.io/pin": "enabled"}
                        ),
                        rules=[
                            client.V1RuleWithOperations(
                                api_groups=[""],
                                api_versions=["v1"],
                                operations=["CREATE"],
                                resources=["pods"],
                                scope="Namespaced",
                            )
                        ],
                    )
                    await blocking(
                        lambda: admission.create_mutating_webhook_configuration(
                            client.V1MutatingWebhookConfiguration(
                                metadata=client.V1ObjectMeta(name=config_name), webhooks=[hook]
                            )
                        )
                    )
                    await until_the_webhook_answers(scope)
                    yield ctl, scope
                tg.cancel_scope.cancel()
    finally:
        with contextlib.suppress(Exception):
            admission.delete_mutating_webhook_configuration(config_name)
        api.close()


def pod(name: str) -> client.V1Pod:
    container = client.V1Container(
        name="main",
        image="registry.k8s.io/pause:3.2",
        resources=client.V1ResourceRequirements(requests={"cpu": "1", "memory": "2Gi"}),
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "worker"}),
        spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=0),
    )


async def until_the_webhook_answers(scope: KubeScope) -> None:
    """The API server loads webhook configurations asynchronously: dry-run creates until
    one comes back pinned."""
    with anyio.fail_after(20):
        while True:
            made = await blocking(
                lambda: scope.core.create_namespaced_pod(
                    scope.namespace, pod(f"probe-{secrets.token_hex(3)}"), dry_run="All"
                )
            )
            if (made.metadata.annotations or {}).get("scaler.io/pinned-pools"):
                return
            await anyio.sleep(0.2)


async def scale_up(ctl: Controller, pending: int) -> list[ScaleUp]:
    with anyio.fail_after(20):
        while len((await ctl.cluster.snapshot()).pending) < pending:
            await anyio.sleep(0.05)
        while True:
            decision = await ctl.reconciler.tick()
            ups = [a for a in decision.actions if isinstance(a, ScaleUp)]
            if ups:
                return ups
            await anyio.sleep(0.1)


def instances(pool: str) -> list[tuple[str, str]]:
    import boto3

    groups = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[pool]
    )["AutoScalingGroups"]
    return sorted((i["InstanceId"], i["AvailabilityZone"]) for i in groups[0]["Instances"])


def register(scope: KubeScope, pool: str, index: int) -> str:
    """The Node the pool's ``index``-th instance becomes, as its kubelet registers it."""
    instance_id, zone = instances(pool)[index]
    name = f"{pool}-{index}-{instance_id}"
    scope.make_node(
        name,
        capacity=M5_XLARGE,
        labels={
            "scaler.io/pool": pool,
            "node.kubernetes.io/instance-type": "m5.xlarge",
            "topology.kubernetes.io/zone": zone,
        },
        provider_id=f"aws:///{zone}/{instance_id}",
    )
    return name


def node_of(scope: KubeScope, name: str) -> str | None:
    return scope.core.read_namespaced_pod(name, scope.namespace).spec.node_name


async def bound(scope: KubeScope, names: list[str], timeout_s: float = 30.0) -> dict[str, str]:
    with anyio.fail_after(timeout_s):
        while True:
            where = {n: await blocking(node_of, scope, n) for n in names}
            if all(where.values()):
                return where  # type: ignore[return-value]
            await anyio.sleep(0.2)


async def refused_for_anti_affinity(scope: KubeScope, name: str, node: str) -> str:
    """kube-scheduler tried ``name`` against the registered node and refused it: the
    Unschedulable condition's message once it mentions the anti-affinity."""
    with anyio.fail_after(30):
        while True:
            cond = await blocking(scope.pod_condition, name, "PodScheduled")
            if cond is not None and cond.status == "False" and "anti-affinity" in (cond.message or ""):
                assert await blocking(node_of, scope, name) is None
                return str(cond.message)
            await anyio.sleep(0.2)


async def test_two_pinned_pods_and_a_node_with_room_for_both_bind_one_there(
    own_kube: KubeEnv, aws: str, catalog: Catalog, pki: Pki
):
    tagged_groups(aws, CLUSTER, [Group("solo", "m5.xlarge")])
    async with scaler_with_webhook(own_kube, catalog, pki) as (ctl, scope):
        for name in ("worker-a", "worker-b"):
            made = await blocking(scope.core.create_namespaced_pod, scope.namespace, pod(name))
            assert made.metadata.labels["scaler.io/exclusive"] == "true"
            anti = made.spec.affinity.pod_anti_affinity
            assert anti.required_during_scheduling_ignored_during_execution[0].topology_key == (
                "kubernetes.io/hostname"
            )
        ups = await scale_up(ctl, 2)
        assert [(u.pool, u.count) for u in ups] == [("solo", 2)]
        first = await blocking(register, scope, "solo", 0)
        with anyio.fail_after(30):
            while True:
                where = {n: await blocking(node_of, scope, n) for n in ("worker-a", "worker-b")}
                if any(where.values()):
                    break
                await anyio.sleep(0.2)
        (placed,) = [n for n, node in where.items() if node]
        assert where[placed] == first
        (waiting,) = [n for n in where if n != placed]
        message = await refused_for_anti_affinity(scope, waiting, first)
        assert "1 node(s)" in message
        second = await blocking(register, scope, "solo", 1)
        final = await bound(scope, ["worker-a", "worker-b"])
        assert final[placed] == first and final[waiting] == second


async def test_on_a_pack_tagged_group_both_pods_bind_to_one_node(
    own_kube: KubeEnv, aws: str, catalog: Catalog, pki: Pki
):
    tagged_groups(aws, CLUSTER, [Group("dask", "m5.xlarge", tags={"scaler.io/pack": "true"})])
    async with scaler_with_webhook(own_kube, catalog, pki) as (ctl, scope):
        for name in ("worker-a", "worker-b"):
            made = await blocking(scope.core.create_namespaced_pod, scope.namespace, pod(name))
            assert "scaler.io/exclusive" not in (made.metadata.labels or {})
            assert made.spec.affinity.pod_anti_affinity is None
        ups = await scale_up(ctl, 2)
        assert [(u.pool, u.count) for u in ups] == [("dask", 1)]
        node = await blocking(register, scope, "dask", 0)
        assert await bound(scope, ["worker-a", "worker-b"]) == {
            "worker-a": node,
            "worker-b": node,
        }
