"""Node lifecycle end to end: real kube-apiserver + kube-scheduler, moto over HTTP (ASGs, EC2,
SQS), the controller's notice consumer and control loop as ``scaler run`` wires them.

The notices go through a real SQS queue as EventBridge delivers them; the consumer is
``scaler.app._notices`` itself (SqsInterruptionFeed.receive -> Reconciler.respond -> ack).
The tests play the kubelet: Nodes tied to moto instances by providerID, pods bound with
spec.nodeName and reported Running. Evictions go through the real Eviction API (policy/v1beta1
on this 1.20 server).

ASGs (us-east-1 catalog prices): spot-m5 (m5.large Spot, where the nodes run), od-m5
(m5.large on-demand $0.096/h, the next-best) and od-m5x (m5.xlarge on-demand $0.192/h).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import boto3
import pytest

from scaler.adapters.aws.fleet import AwsFleet
from scaler.adapters.aws.queue import ATTR_ERROR, SqsInterruptionFeed
from scaler.app import Controller, RunOptions, _notices, build
from scaler.core.catalog import Catalog
from scaler.core.settings import Settings
from scaler.core.state import ANNOTATION_IDLE_SINCE
from scaler.loop.runner import control_loop
from scaler.telemetry import by_name
from tests.fixtures.aws import Group, tagged_groups

pytestmark = [pytest.mark.kube, pytest.mark.anyio, pytest.mark.timeout(120)]

CLUSTER = "e2e-lifecycle"
CA = "k8s.io/cluster-autoscaler/"
EVENTS = Path(__file__).resolve().parent.parent / "fixtures" / "eventbridge"
INTERRUPTED = "scaler.io/interrupted"
REBALANCE = "scaler.io/rebalance"
HOOK = "scaler-drain"


@pytest.fixture
def account(aws: str) -> Any:
    """The ASGs; spot-m5 runs two instances (MinSize 0)."""
    return tagged_groups(aws, CLUSTER, [
        Group("spot-m5", "m5.large", spot=True, max_size=20, desired=2),
        Group("od-m5", "m5.large", max_size=20),
        Group("od-m5x", "m5.xlarge", max_size=20),
    ])


@pytest.fixture
def queues(aws: str) -> tuple[Any, str, str]:
    sqs = boto3.client("sqs", endpoint_url=aws)
    main = sqs.create_queue(QueueName="scaler-interruptions")["QueueUrl"]
    quarantine = sqs.create_queue(QueueName="scaler-interruptions-quarantine")["QueueUrl"]
    return sqs, main, quarantine


def group(asg: Any, name: str) -> dict[str, Any]:
    (g,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return g


def instances(asg: Any, name: str) -> list[tuple[str, str]]:
    return sorted((i["InstanceId"], i["AvailabilityZone"]) for i in group(asg, name)["Instances"])


def nodes_for(kube_ns: Any, asg: Any, pool: str) -> list[tuple[str, str]]:
    """A Ready Node for every instance of ``pool`` (playing the kubelet): [(node, instance)]."""
    out = []
    for i, (instance_id, zone) in enumerate(instances(asg, pool)):
        name = f"{pool}-{i}"
        kube_ns.make_node(
            name,
            capacity={"cpu": 2, "memory": "8Gi", "pods": 29},
            labels={
                "node.kubernetes.io/instance-type": "m5.large",
                "topology.kubernetes.io/zone": zone,
                "eks.amazonaws.com/capacityType": "SPOT",
            },
            provider_id=f"aws:///{zone}/{instance_id}",
        )
        out.append((name, instance_id))
    return out


def running_pod(kube_ns: Any, name: str, node: str, **kw: Any) -> None:
    kube_ns.make_pod(name, requests={"cpu": "500m", "memory": "1Gi"}, node_name=node, **kw)
    kube_ns.set_pod_phase(name, "Running")


def event(detail_type: str, source: str, detail: dict[str, Any], resources: list[str]) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1",
            "resources": resources,
            "detail": detail,
        }
    )


def spot_warning(instance_id: str) -> str:
    arn = f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"
    detail = {"instance-id": instance_id, "instance-action": "terminate"}
    return event("EC2 Spot Instance Interruption Warning", "aws.ec2", detail, [arn])


def rebalance(instance_id: str) -> str:
    arn = f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"
    return event(
        "EC2 Instance Rebalance Recommendation", "aws.ec2", {"instance-id": instance_id}, [arn]
    )


def lifecycle_action(instance_id: str, asg: str, token: str) -> str:
    detail = {
        "LifecycleActionToken": token,
        "AutoScalingGroupName": asg,
        "LifecycleHookName": HOOK,
        "EC2InstanceId": instance_id,
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        "Origin": "AutoScalingGroup",
        "Destination": "EC2",
    }
    arn = (
        f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:1:autoScalingGroupName/{asg}"
    )
    return event("EC2 Instance-terminate Lifecycle Action", "aws.autoscaling", detail, [arn])


def depth(sqs: Any, queue: str) -> tuple[int, int]:
    """(visible, in flight) messages."""
    a = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


class Trail:
    """What the controller did, in order: calls through its real clients, wrapped."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, Any]] = []

    def add(self, what: str, detail: Any = None) -> None:
        self.calls.append((time.monotonic(), what, detail))

    def first(self, what: str) -> int:
        return next(i for i, (_, w, _) in enumerate(self.calls) if w == what)

    def names(self) -> list[str]:
        return [w for _, w, _ in self.calls]


def traced(ctl: Controller, trail: Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record cordon, taint, eviction, SetDesiredCapacity, CompleteLifecycleAction,
    TerminateInstanceInAutoScalingGroup and the SQS ack, each still doing the real call."""
    cluster, client = ctl.cluster, ctl.fleet.autoscaling

    def wrap(obj: Any, name: str, label: str, detail: Any = None) -> None:
        real = getattr(obj, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = await real(*args, **kwargs)
            trail.add(label, detail(*args, **kwargs) if detail else args[:1])
            return result

        setattr(obj, name, call)

    wrap(cluster, "cordon", "cordon")
    wrap(cluster, "taint", "taint", lambda node, taint: (node, taint.key))
    wrap(cluster, "evict", "evict", lambda pod, **_: pod.key)
    wrap(
        client,
        "set_desired_capacity",
        "set_desired",
        lambda **kw: (kw["AutoScalingGroupName"], kw["DesiredCapacity"]),
    )
    wrap(
        client,
        "terminate_instance_in_auto_scaling_group",
        "terminate",
        lambda **kw: kw["InstanceId"],
    )

    async def complete(**kwargs: Any) -> dict[str, Any]:
        # moto records lifecycle hooks but does not implement CompleteLifecycleAction; the
        # request the real client would send is recorded and answered as AWS does (empty).
        trail.add("complete_lifecycle", kwargs)
        return {}

    client.complete_lifecycle_action = complete

    real_ack = SqsInterruptionFeed.ack

    async def ack(self: SqsInterruptionFeed, received: Any) -> None:
        await real_ack(self, received)
        trail.add("ack", received.message_id)

    monkeypatch.setattr(SqsInterruptionFeed, "ack", ack)


@contextlib.asynccontextmanager
async def controller(
    kube_env: Any,
    catalog: Catalog,
    *,
    queues: tuple[Any, str, str] | None = None,
    loop: bool = False,
    settings: Settings | None = None,
    trail: Trail | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> AsyncIterator[tuple[Controller, list[tuple[str, dict[str, Any]]]]]:
    """The controller's watches, plus the notice consumer (with ``queues``) and the control
    loop (with ``loop``), in one task group as scaler.app runs them."""
    opts = RunOptions(
        cluster_name=CLUSTER,
        kubeconfig=str(kube_env.kubeconfig),
        leader_elect=False,
        settings=settings or Settings(),
        queue_url=queues[1] if queues else None,
        quarantine_queue_url=queues[2] if queues else None,
    )
    events: list[tuple[str, dict[str, Any]]] = []
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        await fleet.discover()
        ctl = build(opts, fleet, catalog, observer=by_name(lambda e, f: events.append((e, f))))
        if trail is not None and monkeypatch is not None:
            traced(ctl, trail, monkeypatch)
        async with anyio.create_task_group() as tg:
            await tg.start(ctl.cluster.run)
            if loop:
                tg.start_soon(control_loop, ctl.reconciler, ctl.cluster)
            if queues:
                tg.start_soon(_notices, opts, ctl.reconciler, tg)
            yield ctl, events
            tg.cancel_scope.cancel()


def read_node(kube_ns: Any, name: str) -> Any:
    return kube_ns.core.read_node(name)


def taint_keys(node: Any) -> set[str]:
    return {t.key for t in node.spec.taints or ()}


def pod_gone(kube_ns: Any, name: str) -> bool:
    pods = kube_ns.core.list_namespaced_pod(kube_ns.namespace).items
    pod = next((p for p in pods if p.metadata.name == name), None)
    return pod is None or pod.metadata.deletion_timestamp is not None


async def until(probe: Any, timeout_s: float = 20.0, what: str = "") -> Any:
    """Poll ``probe`` (blocking calls to the real servers) off the event loop."""
    with anyio.fail_after(timeout_s):
        while True:
            value = await anyio.to_thread.run_sync(probe)
            if value:
                return value
            await anyio.sleep(0.1)


# --------------------------------------------------------------------------------- tests


async def test_a_spot_warning_cordons_taints_evicts_and_replaces_before_the_message_is_deleted(
    kube_env, kube_ns, account, queues, catalog, monkeypatch
):
    (node, instance), (other, _) = nodes_for(kube_ns, account, "spot-m5")
    running_pod(kube_ns, "work", node)
    running_pod(kube_ns, "bystander", other)
    sqs, main, _ = queues
    trail = Trail()
    async with controller(
        kube_env, catalog, queues=queues, trail=trail, monkeypatch=monkeypatch
    ) as (ctl, events):
        sqs.send_message(QueueUrl=main, MessageBody=spot_warning(instance))
        await until(lambda: "ack" in trail.names() and pod_gone(kube_ns, "work"), what="drain")
        # After the drain the instance is terminated (the trail records the call once AWS
        # answered); "drained" alone comes just before that call.
        await until(lambda: "terminate" in trail.names(), what="drained and terminated")
        eviction_version = ctl.cluster.eviction_version

    cordoned = read_node(kube_ns, node)
    assert cordoned.spec.unschedulable is True
    assert INTERRUPTED in taint_keys(cordoned)
    # The deadline is on the node, for a process that would take the drain over.
    deadline = float(cordoned.metadata.annotations["scaler.io/drain-deadline"])
    assert deadline == pytest.approx(time.time() + 120 - 15, abs=60)
    # The workload pod went through the Eviction API; the other node was left alone.
    assert ("evict", f"{kube_ns.namespace}/work") in [(w, d) for _, w, d in trail.calls]
    assert eviction_version == "policy/v1beta1"
    assert not pod_gone(kube_ns, "bystander") and not read_node(kube_ns, other).spec.unschedulable
    # A replacement on the next-best group, never the interrupted one.
    assert group(account, "od-m5")["DesiredCapacity"] == 1
    assert group(account, "od-m5x")["DesiredCapacity"] == 0
    # The message is deleted only after the cordon, the taint and the replacement launch.
    names = trail.names()
    assert names.count("ack") == 1
    assert max(trail.first("cordon"), trail.first("taint"), trail.first("set_desired")) < (
        trail.first("ack")
    )
    assert depth(sqs, main) == (0, 0)
    ((_, drained),) = [(e, f) for e, f in events if e == "drained"]
    assert drained["node"] == node and drained["evicted"] == 1 and drained["in_time"] is True
    # Drained before the reclaim: the instance is terminated and the group shrinks.
    assert instance not in {i for i, _ in instances(account, "spot-m5")}
    assert group(account, "spot-m5")["DesiredCapacity"] == 1


async def test_a_malformed_message_ends_in_the_quarantine_queue_and_changes_nothing(
    kube_env, kube_ns, account, queues, catalog
):
    (node, _), _ = nodes_for(kube_ns, account, "spot-m5")
    running_pod(kube_ns, "work", node)
    sqs, main, quarantine = queues
    body = (EVENTS / "malformed-spot-instance-id.json").read_text()
    sqs.send_message(QueueUrl=main, MessageBody=body)
    async with controller(kube_env, catalog, queues=queues) as (_ctl, events):

        def moved() -> list[dict[str, Any]]:
            answer = sqs.receive_message(QueueUrl=quarantine, MessageAttributeNames=["All"])
            return answer.get("Messages", [])

        (copy,) = await until(moved, what="quarantined copy")
    assert copy["Body"] == body
    assert copy["MessageAttributes"][ATTR_ERROR]["StringValue"] == "malformed"
    assert depth(sqs, main) == (0, 0)
    assert not read_node(kube_ns, node).spec.unschedulable
    assert not pod_gone(kube_ns, "work")
    assert not [e for e, _ in events if e in ("notice", "cordon", "scale_up")]


async def test_a_rebalance_recommendation_cordons_and_pre_provisions_but_does_not_evict(
    kube_env, kube_ns, account, queues, catalog, monkeypatch
):
    (node, instance), _ = nodes_for(kube_ns, account, "spot-m5")
    running_pod(kube_ns, "work", node)
    sqs, main, _ = queues
    trail = Trail()
    async with controller(
        kube_env, catalog, queues=queues, trail=trail, monkeypatch=monkeypatch
    ) as (_ctl, events):
        sqs.send_message(QueueUrl=main, MessageBody=rebalance(instance))
        await until(lambda: "ack" in trail.names(), what="ack")
        await anyio.sleep(2.0)  # room for a wrong eviction to show
    rebalanced = read_node(kube_ns, node)
    assert rebalanced.spec.unschedulable is True
    assert REBALANCE in taint_keys(rebalanced) and INTERRUPTED not in taint_keys(rebalanced)
    assert group(account, "od-m5")["DesiredCapacity"] == 1
    assert "evict" not in trail.names() and not pod_gone(kube_ns, "work")
    assert not [e for e, _ in events if e == "drained"]
    assert instance in {i for i, _ in instances(account, "spot-m5")}
    assert depth(sqs, main) == (0, 0)


async def test_a_terminate_lifecycle_action_drains_then_completes_the_action(
    kube_env, kube_ns, account, queues, catalog, monkeypatch
):
    account.put_lifecycle_hook(
        LifecycleHookName=HOOK,
        AutoScalingGroupName="spot-m5",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=300,
        DefaultResult="CONTINUE",
    )
    (hook,) = account.describe_lifecycle_hooks(AutoScalingGroupName="spot-m5")["LifecycleHooks"]
    assert hook["LifecycleHookName"] == HOOK  # moto keeps the hook the event names
    (node, instance), _ = nodes_for(kube_ns, account, "spot-m5")
    running_pod(kube_ns, "work", node)
    sqs, main, _ = queues
    token = str(uuid.uuid4())
    trail = Trail()
    async with controller(
        kube_env, catalog, queues=queues, trail=trail, monkeypatch=monkeypatch
    ) as (_ctl, _events):
        sqs.send_message(QueueUrl=main, MessageBody=lifecycle_action(instance, "spot-m5", token))
        await until(lambda: "complete_lifecycle" in trail.names(), what="CompleteLifecycleAction")
    assert read_node(kube_ns, node).spec.unschedulable is True
    assert pod_gone(kube_ns, "work")
    assert trail.first("evict") < trail.first("complete_lifecycle")
    ((_, _, request),) = [c for c in trail.calls if c[1] == "complete_lifecycle"]
    assert request == {
        "AutoScalingGroupName": "spot-m5",
        "LifecycleHookName": HOOK,
        "LifecycleActionToken": token,
        "LifecycleActionResult": "CONTINUE",
        "InstanceId": instance,
    }
    # The ASG terminates the instance itself once the action completes: scaler does not.
    assert "terminate" not in trail.names()
    assert depth(sqs, main) == (0, 0)


async def test_an_idle_node_is_removed_after_the_timeout_but_one_that_gets_a_pod_is_not(
    kube_env, kube_ns, account, catalog, monkeypatch
):
    (idle, idle_instance), (busy, busy_instance) = nodes_for(kube_ns, account, "spot-m5")
    trail = Trail()
    settings = Settings().with_overrides({"idle_timeout_s": "4"})
    async with controller(
        kube_env, catalog, loop=True, settings=settings, trail=trail, monkeypatch=monkeypatch
    ) as (_ctl, events):
        # Both nodes are marked idle; then the real scheduler puts a pod on one of them.
        def marked(name: str) -> bool:
            annotations = read_node(kube_ns, name).metadata.annotations or {}
            return ANNOTATION_IDLE_SINCE in annotations

        await until(lambda: marked(idle) and marked(busy), what="idle-since annotations")
        marked_at = time.monotonic()
        kube_ns.make_pod(
            "late", requests={"cpu": "500m"}, node_selector={"kubernetes.io/hostname": busy}
        )
        await until(
            lambda: kube_ns.core.read_namespaced_pod("late", kube_ns.namespace).spec.node_name,
            what="the scheduler binding the pod",
        )
        await until(lambda: "terminate" in trail.names(), timeout_s=30, what="removal")
        removed_after = time.monotonic() - marked_at
        await anyio.sleep(6.0)  # past the busy node's own timeout
    assert [d for _, w, d in trail.calls if w == "terminate"] == [idle_instance]
    assert removed_after >= 3.0  # not before the (4 s) timeout, give or take the marking tick
    left = {i for i, _ in instances(account, "spot-m5")}
    assert idle_instance not in left and busy_instance in left
    assert group(account, "spot-m5")["DesiredCapacity"] == 1  # decremented with the removal
    assert ANNOTATION_IDLE_SINCE not in (read_node(kube_ns, busy).metadata.annotations or {})
    assert [f["node"] for e, f in events if e == "remove_node"] == [idle]
