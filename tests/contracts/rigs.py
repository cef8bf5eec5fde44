"""The two sides of each port, behind one small rig per side, so one test body checks both.

A rig holds the port under test (``fleet``, ``cluster`` + ``actuator``, ``feed``) and the
few things a test must do *to the world* that no port offers: launch a node, create a pod,
make a launch fail, put a message on the queue. Those are done the way the world does them:

- simulated: through :class:`simulations.world.World`'s own events and requests (a node
  boots and turns Ready, a pod arrives and the simulated kube-scheduler binds it);
- real: moto in server mode over real HTTP (ASGs built with boto3 as a user would), the
  real kube-apiserver + kube-scheduler (the test plays the kubelet), SQS on moto.

What a test asserts goes through the port only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import numpy as np
import pytest

from scaler.core.catalog import Catalog
from scaler.core.model import LABEL_POOL, ON_DEMAND, PoolSpec
from scaler.core.spec import parse_pod, parse_pool
from scaler.core.state import ClusterView, Node
from scaler.ports import Actuator, ClusterSource, Fleet, InterruptionFeed
from simulations import events as ev
from simulations.clock import SimClock
from simulations.config import SimConfig
from simulations.events import EventQueue
from simulations.objects import SimPod
from simulations.ports import SimCluster, SimFleet
from simulations.scorecard import fit_prices
from simulations.world import World

CLUSTER = "contract-cluster"
INSTANCE_TYPE = "m5.large"
NODE_CAPACITY: Mapping[str, Any] = {"cpu": 2, "memory": "8Gi", "pods": 29}
"""What an m5.large's kubelet reports (2 vCPU, 8 GiB)."""


@dataclass(frozen=True)
class PoolDef:
    """One pool both sides build: an ASG on moto, a pool of the simulated world."""

    name: str
    min_size: int = 0
    max_size: int = 3
    desired: int = 0


POOLS = (
    PoolDef("web"),
    PoolDef("floor", min_size=1, desired=1),
    PoolDef("doomed"),
)
"""``web`` starts empty; ``floor`` is at its minimum size 1; ``doomed``'s launches fail."""
FAILING_POOL = "doomed"


# --- the simulated world ----------------------------------------------------------------------


class SimWorld:
    """One simulated world and its ports, driven by hand: :meth:`settle` applies the world's
    events up to a time, as the engine does between ticks."""

    def __init__(self, catalog: Catalog, pools: tuple[PoolDef, ...] = POOLS) -> None:
        specs = [
            parse_pool(
                {
                    "name": p.name,
                    "instance_type": INSTANCE_TYPE,
                    "min_size": p.min_size,
                    "max_size": p.max_size,
                    "current_size": p.desired,
                }
            )
            for p in pools
        ]
        config = SimConfig().with_overrides(
            {
                "launch_failure_rate_by_pool": f"{FAILING_POOL}:1",
                "interruptions": "false",
            }
        )
        _, offerings = fit_prices([], specs, catalog)
        self.clock = SimClock()
        self.queue = EventQueue()
        self.world = World(
            pods=[],
            pools=specs,
            offerings=offerings,
            catalog=catalog,
            config=config,
            fit_usd_per_hour={},
            rng=np.random.default_rng(0),
            queue=self.queue,
            clock=self.clock,
            record=True,
        )
        self.cluster = SimCluster(self.world, self.clock)
        self.fleet = SimFleet(self.world, self.clock, catalog)
        self._pods = 0

    def settle(self, until_s: float | None = None) -> None:
        """Apply every world event due by ``until_s`` (default: now), then let the simulated
        kube-scheduler bind what fits."""
        until_s = self.clock.now() if until_s is None else until_s
        while (entry := self.queue.pop_until(until_s)) is not None:
            t, _, kind, payload = entry
            self.clock.advance(max(t, self.clock.now()))
            self.world.handle(kind, payload, t)
        self.clock.advance(max(until_s, self.clock.now()))
        self.world.kube_schedule()

    def settle_all(self, horizon_s: float = 3600.0) -> None:
        self.settle(self.clock.now() + horizon_s)


class SimFleetRig:
    """The Fleet port over the simulated world."""

    name = "simulated"

    def __init__(self, catalog: Catalog) -> None:
        self.sim = SimWorld(catalog)
        self.fleet: Fleet = self.sim.fleet

    def now(self) -> float:
        return self.sim.clock.now()

    async def instances(self, pool: str) -> list[Node]:
        """The pool's instances as the cluster would name them (a Node each)."""
        out = []
        for n in self.sim.world.nodes.values():
            if n.pool == pool and n.alive:
                out.append(Node(name=n.name, pool=pool, instance_type=n.instance_type,
                                capacity_type=n.capacity_type, zone=n.zone,
                                instance_id=n.instance_id))
        return out

    async def a_launch_fails(self, pool: str) -> None:
        """Ask ``pool`` for one more node, whose launch fails; return once the cloud says so."""
        size = next(p.current_size for p in await self.fleet.pools() if p.name == pool)
        await self.fleet.set_desired(pool, size + 1)
        self.sim.settle(self.now() + self.sim.world.config.cloud.launch_failure_delay_s)


class SimClusterRig:
    """The ClusterSource and Actuator ports over the simulated world."""

    name = "simulated"

    def __init__(self, catalog: Catalog) -> None:
        # One empty pool: the cluster holds only the nodes a test adds, as on the API server.
        self.sim = SimWorld(catalog, pools=(PoolDef("web"),))
        self.cluster: ClusterSource = self.sim.cluster
        self.actuator: Actuator = self.sim.cluster
        self.namespace = "default"

    async def add_node(self, pool: str = "web") -> str:
        """A Ready node of ``pool`` (m5.large); returns its name."""
        before = set(self.sim.world.nodes)
        size = self.sim.world.desired[pool]
        await self.sim.fleet.set_desired(pool, size + 1)
        self.sim.settle_all()
        [name] = set(self.sim.world.nodes) - before
        return name

    async def add_pod(self, name: str, *, cpu: str, memory: str) -> str:
        """Create a pod (its controller's work); kube-scheduler binds it if it fits. Returns
        its key."""
        spec = parse_pod(
            {"name": name, "namespace": self.namespace, "arrival_s": self.sim.clock.now(),
             "requests": {"cpu": cpu, "memory": memory}}
        )
        pod = SimPod(spec, spec, spec.requests.as_array(), math.nan, spec.constraints())
        self.sim.world.pods[spec.key] = pod
        self.sim.queue.push(self.sim.clock.now(), ev.ARRIVE, pod)
        self.sim.settle()
        return spec.key

    async def finish_pod(self, key: str) -> None:
        """The pod's containers exit 0 (phase Succeeded)."""
        pod = self.sim.world.pods[key]
        self.sim.world.handle(ev.POD_DONE, (pod, pod.run), self.sim.clock.now())
        self.sim.settle()

    async def until(self, probe: Callable[[ClusterView], Any]) -> Any:
        """``probe(snapshot)`` once the world has settled: nothing to wait for (no watch),
        so a probe that does not answer then never will."""
        self.sim.settle()
        view = await self.cluster.snapshot()
        found = probe(view)
        if not found:
            pytest.fail(f"not so in the simulated snapshot: nodes {list(view.nodes)}, "
                        f"bound {list(view.bound)}, pending {list(view.pending)}", pytrace=False)
        return found


# --- the real parts -----------------------------------------------------------------------


class FailedLaunches:
    """The real aiobotocore Auto Scaling client, with a failed launch added to what moto
    answers to DescribeScalingActivities for the pools in ``failed`` (moto launches every
    instance at once and never fails one: docs/testing.md)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.failed: dict[str, datetime] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def describe_scaling_activities(self, **kwargs: Any) -> Any:
        answer = await self.client.describe_scaling_activities(**kwargs)
        pool = kwargs.get("AutoScalingGroupName")
        at = self.failed.get(str(pool))
        if at is None:
            return answer
        message = (
            f"We currently do not have sufficient {INSTANCE_TYPE} capacity in the "
            "Availability Zone you requested (us-east-1a). Launching EC2 instance failed."
        )
        failed = {
            "ActivityId": f"contract-{pool}",
            "AutoScalingGroupName": pool,
            "Description": f"Launching a new EC2 instance.  Status Reason: {message}",
            "Cause": "an instance was started in response to a difference between desired "
            "and actual capacity",
            "StartTime": at,
            "EndTime": at,
            "StatusCode": "Failed",
            "StatusMessage": message,
            "Progress": 100,
        }
        return {**answer, "Activities": [failed, *answer.get("Activities", [])]}


class AwsFleetRig:
    """AwsFleet over moto in server mode (the ASGs built with boto3, as a user would)."""

    name = "aws"

    def __init__(self, fleet: Any, autoscaling: Any) -> None:
        self.fleet: Fleet = fleet
        self._aws_fleet = fleet
        self.autoscaling = autoscaling  # boto3, for what the test does to the world
        self.launches = FailedLaunches(fleet.autoscaling)
        fleet.autoscaling = self.launches

    def now(self) -> float:
        return time.time()

    async def instances(self, pool: str) -> list[Node]:
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[pool])
        out = []
        for i in groups["AutoScalingGroups"][0].get("Instances", []):
            if i["LifecycleState"] in ("Pending", "InService"):
                out.append(Node(name=f"ip-{i['InstanceId']}", pool=pool,
                                instance_type=i["InstanceType"], capacity_type=ON_DEMAND,
                                zone=i["AvailabilityZone"], instance_id=i["InstanceId"]))
        return out

    async def a_launch_fails(self, pool: str) -> None:
        size = next(p.current_size for p in await self.fleet.pools() if p.name == pool)
        await self.fleet.set_desired(pool, size + 1)
        # AWS reports it later, in the group's scaling activities.
        self.launches.failed[pool] = datetime.now(UTC)


def pool_of(pools: list[PoolSpec], name: str) -> PoolSpec:
    return next(p for p in pools if p.name == name)


def pool_label(pool: str) -> dict[str, str]:
    return {LABEL_POOL: pool, "node.kubernetes.io/instance-type": INSTANCE_TYPE}


class KubeClusterRig:
    """KubeCluster (watch-fed) and KubeActuator against the real kube-apiserver and
    kube-scheduler; the test plays the kubelet (``tests/fixtures/kube.py``)."""

    name = "kube"

    def __init__(self, scope: Any, cluster: Any, actuator: Any) -> None:
        self.scope = scope
        self.cluster: ClusterSource = cluster
        self.actuator: Actuator = actuator
        self._kube_cluster = cluster
        self.namespace = scope.namespace
        self._nodes = 0

    async def add_node(self, pool: str = "web") -> str:
        self._nodes += 1
        name = f"{self.namespace}-n{self._nodes}"
        await anyio.to_thread.run_sync(
            lambda: self.scope.make_node(name, capacity=dict(NODE_CAPACITY), labels=pool_label(pool))
        )
        await self.until(lambda v: any(n.name == name and n.ready for n in v.nodes))
        return name

    async def add_pod(self, name: str, *, cpu: str, memory: str) -> str:
        await anyio.to_thread.run_sync(
            lambda: self.scope.make_pod(name, requests={"cpu": cpu, "memory": memory})
        )
        return f"{self.namespace}/{name}"

    async def finish_pod(self, key: str) -> None:
        name = key.split("/", 1)[1]
        await anyio.to_thread.run_sync(lambda: self.scope.set_pod_phase(name, "Succeeded"))

    async def until(self, probe: Callable[[ClusterView], Any], timeout_s: float = 20.0) -> Any:
        """``probe(snapshot)`` after each change the watches bring, until it answers."""
        cluster = self._kube_cluster
        with anyio.fail_after(timeout_s):
            while True:
                seen = cluster.generation
                found = probe(await cluster.snapshot())
                if found:
                    return found
                await cluster.wait_changed(seen)


# --- the interruption feed ------------------------------------------------------------------


class SimFeedRig:
    """The simulated InterruptionFeed (``simulations.ports.SimInterruptionFeed``): an
    in-memory queue with SQS's delivery rules, on the simulated clock."""

    name = "simulated"

    def __init__(self, feed_class: Any, *, visibility_timeout_s: int, max_receives: int) -> None:
        self.clock = SimClock()
        self.sim_feed = feed_class(
            self.clock, visibility_timeout_s=visibility_timeout_s, max_receives=max_receives
        )
        self.feed: InterruptionFeed = self.sim_feed

    async def put(self, body: str) -> str:
        return str(self.sim_feed.put(body))

    async def queued(self) -> int:
        """Messages still in the queue, visible or not."""
        return len(self.sim_feed.queue)

    async def aside(self) -> list[str]:
        """The bodies of the messages moved aside."""
        return [message.body for message, _ in self.sim_feed.aside]


class SqsFeedRig:
    """SqsInterruptionFeed on moto's SQS, with a quarantine queue for what is moved aside."""

    name = "sqs"

    def __init__(self, feed: Any, sqs: Any, main: str, quarantine: str) -> None:
        self.feed: InterruptionFeed = feed
        self.sqs, self.main, self.quarantine = sqs, main, quarantine

    async def put(self, body: str) -> str:
        return str(self.sqs.send_message(QueueUrl=self.main, MessageBody=body)["MessageId"])

    async def queued(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.main,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    async def aside(self) -> list[str]:
        out: list[str] = []
        while batch := self.sqs.receive_message(
            QueueUrl=self.quarantine, MaxNumberOfMessages=10, VisibilityTimeout=30
        ).get("Messages", []):
            out.extend(m["Body"] for m in batch)
        return out
