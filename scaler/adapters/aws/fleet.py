"""The AWS side of the live controller: ASGs as pools, their desired capacity, Spot prices.

:class:`AwsFleet` implements the :class:`~scaler.ports.Fleet` and
:class:`~scaler.ports.PriceSource` ports with aiobotocore, one client per service, opened by
:meth:`AwsFleet.open` and closed with it. Endpoint, region and credentials follow the
standard AWS chain (``AWS_ENDPOINT_URL`` included: botocore reads it natively). The pure
translation lives in :mod:`~scaler.adapters.aws.asg` and :mod:`~scaler.adapters.aws.parse`;
errors are translated in :mod:`~scaler.adapters.aws.errors`. Every AWS call this module makes
is listed in docs/aws.md (the IAM policy is checked against that list).

Safety: scaler only ever writes to groups carrying both discovery tags.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import anyio
import structlog
from aiobotocore.session import AioSession

from scaler.adapters.aws import asg as asg_mod
from scaler.adapters.aws.deadline import CALL_DEADLINE_S, MAX_ATTEMPTS, Deadlined, client_config
from scaler.adapters.aws.errors import AtMinSize, translated
from scaler.adapters.aws.lean import aws_session
from scaler.adapters.aws.lookups import TEMPLATE_TTL_S, LaunchData
from scaler.adapters.aws.parse import (
    SPOT_PRODUCTS,
    launch_failures_from_activities,
    spot_prices_from_history,
)
from scaler.adapters.aws.pricing import OnDemandPriceList
from scaler.adapters.aws.tags import discovery_tag_keys, is_discoverable, is_writable
from scaler.adapters.heap import release_free_memory
from scaler.core.actions import LifecycleHook
from scaler.core.catalog import Catalog
from scaler.core.model import ON_DEMAND, SPOT, InstanceType, PoolSpec
from scaler.core.offerings import PoolProblem, Prices
from scaler.core.state import LaunchFailure, Node
from scaler.ports import NotFound, PortError

log = structlog.get_logger("scaler.adapters.aws")

# botocore's standard mode, bounded per call: scaler/adapters/aws/deadline.py.
DEFAULT_MAX_ATTEMPTS: Final = MAX_ATTEMPTS
# Scaling activities per failing group: the newest page is enough for a recent failure.
ACTIVITY_PAGE: Final = 50
# Instance types per DescribeSpotPriceHistory request.
_TYPE_BATCH: Final = 100
_ACTIVE_STATES: Final = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")
_GOING_STATES: Final = ("Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated")
"""AWS lists a terminating instance in its group for minutes; its node is no pool's any more
(its group's desired capacity no longer counts it) and must not be terminated twice."""


@dataclass(frozen=True)
class Discovery:
    """One pass over the account's discoverable ASGs."""

    pools: tuple[PoolSpec, ...]
    problems: tuple[PoolProblem, ...]
    instances: Mapping[str, str]
    """Instance id -> ASG name, over every discovered group (disabled pools included)."""
    groups: frozenset[str]
    """Names of every discovered group whose enabled tag allows writes (tags.is_writable):
    the only ones scaler writes to."""
    launching: frozenset[str]
    """Groups whose desired capacity exceeds their live instances: launches are due."""
    at_s: float


@dataclass
class AwsFleet:
    """ASGs of one EKS cluster, discovered by cluster-autoscaler's tags.

    Build it with :meth:`open`; the constructor takes ready clients (tests wrap them).
    ``clock`` is unix seconds, the time base of ``launch_failures(since_s)``.
    """

    cluster_name: str
    catalog: Catalog
    autoscaling: Any
    ec2: Any
    clock: Callable[[], float] = time.time
    template_ttl_s: float = TEMPLATE_TTL_S
    on_demand: OnDemandPriceList | None = None
    """Live on-demand prices for the cluster's region (pricing.py); None: the catalog's."""
    data: LaunchData = field(init=False, repr=False)
    """What the groups refer to (templates, subnets, types), cached across discoveries."""
    _discovery: Discovery | None = field(default=None, init=False, repr=False)
    _scaled_up_at: dict[str, float] = field(default_factory=dict, init=False)
    _spot: dict[str, float] = field(default_factory=dict, init=False)
    _prices_read: bool = field(default=False, init=False)
    """A Spot price read was made (it may have failed: then the catalog's estimates)."""
    _price_lock: anyio.Lock = field(default_factory=anyio.Lock, init=False)
    _logged_problems: frozenset[PoolProblem] = field(default=frozenset(), init=False)
    _first_seen: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    """Instance id -> when a discovery first listed it: which unregistered instance is the
    oldest, for :meth:`give_up` (no extra AWS call, no extra IAM action)."""

    def __post_init__(self) -> None:
        self.data = LaunchData(self.catalog, ttl_s=self.template_ttl_s)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        cluster_name: str,
        catalog: Catalog,
        *,
        region: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        session: AioSession | None = None,
        call_deadline_s: float = CALL_DEADLINE_S,
    ) -> AsyncIterator[AwsFleet]:
        """Clients for autoscaling and ec2, closed on exit. ``region``: the argument, else
        the standard chain (``AWS_REGION``, ``AWS_DEFAULT_REGION``, config), else the
        catalog's region. Each call ends within ``call_deadline_s``, retries included, or
        raises ``TimedOut``."""
        session = session or aws_session()
        region = region or session.get_config_variable("region") or catalog.region
        config = client_config(region, max_attempts=max_attempts)
        async with (
            session.create_client("autoscaling", config=config) as autoscaling,
            session.create_client("ec2", config=config) as ec2,
        ):
            yield cls(
                cluster_name,
                catalog,
                autoscaling=Deadlined(autoscaling, call_deadline_s),
                ec2=Deadlined(ec2, call_deadline_s),
            )

    # ------------------------------------------------------------------------- discovery

    @property
    def last_discovery(self) -> Discovery | None:
        return self._discovery

    def _pools(self) -> tuple[PoolSpec, ...]:
        return self._discovery.pools if self._discovery else ()

    async def pools(self) -> list[PoolSpec]:
        """Every usable pool, freshly described. Broken ASGs are left out, logged once per
        change, and kept in :attr:`last_discovery` ``.problems``."""
        return list((await self.discover()).pools)

    def changed(
        self, before: Sequence[PoolSpec], now: Sequence[PoolSpec]
    ) -> Sequence[int] | None:
        """Never kept: each read describes the groups afresh, as new values (the caller
        compares them)."""
        return None

    async def discover(self) -> Discovery:
        """Describe the discoverable ASGs and translate them; raises only if the groups
        themselves cannot be listed (a broken group is a problem, never an error)."""
        enabled, cluster = discovery_tag_keys(self.cluster_name)
        # One filter per key: values of one filter are ORed, filters are ANDed.
        filters = [
            {"Name": "tag-key", "Values": [enabled]},
            {"Name": "tag-key", "Values": [cluster]},
        ]
        groups: list[Mapping[str, Any]] = []
        with translated("DescribeAutoScalingGroups"):
            pages = self.autoscaling.get_paginator("describe_auto_scaling_groups")
            async for page in pages.paginate(Filters=filters):
                groups.extend(page.get("AutoScalingGroups", []))
        groups = [g for g in groups if is_discoverable(g, self.cluster_name)]
        groups.sort(key=lambda g: str(g.get("AutoScalingGroupName", "")))

        now = self.clock()
        refs = {r for g in groups for r in asg_mod.template_refs(g)}
        templates = await self.data.read_templates(self.ec2, refs, now)
        lc_names = {n for g in groups if (n := asg_mod.launch_configuration_name(g))}
        launch_configs = await self.data.read_launch_configurations(self.autoscaling, lc_names)
        subnets = {s for g in groups for s in asg_mod.subnet_ids(g)}
        subnet_zones = await self.data.read_subnet_zones(self.ec2, subnets)
        wanted = {
            t for g in groups for t in asg_mod.instance_types_of(g, templates, launch_configs)
        }
        await self.data.describe_quietly(self.ec2, sorted(wanted), now)

        pools: list[PoolSpec] = []
        problems: list[PoolProblem] = []
        instances: dict[str, str] = {}
        launching: set[str] = set()
        for group in groups:
            name = str(group.get("AutoScalingGroupName", ""))
            result = asg_mod.pool_from_asg(
                group,
                templates=templates,
                launch_configurations=launch_configs,
                subnet_zones=subnet_zones,
                known_types=self.data,
            )
            if isinstance(result, PoolProblem):
                problems.append(result)
            else:
                pools.append(result)
            live = 0
            for instance in group.get("Instances") or ():
                if instance.get("LifecycleState") in _GOING_STATES:
                    continue
                instances[str(instance["InstanceId"])] = name
                live += instance.get("LifecycleState") in _ACTIVE_STATES
            if int(group.get("DesiredCapacity", 0)) > live:
                launching.add(name)
        last = self._discovery
        kept: Mapping[str, str] = instances
        if last is not None and instances == last.instances:
            # Most ticks: the same instances. The last map is kept, so its holders (the
            # cluster source pools nodes by it) see the same object, and this one's 5,000
            # id strings go with the parsed pages instead of outliving them.
            kept = last.instances
        else:
            self._first_seen = {i: self._first_seen.get(i, now) for i in instances}
        discovery = Discovery(
            pools=tuple(pools),
            problems=tuple(problems),
            instances=kept,
            groups=frozenset(
                str(g.get("AutoScalingGroupName", ""))
                for g in groups
                if is_writable(g, self.cluster_name)
            ),
            launching=frozenset(launching),
            at_s=now,
        )
        self._discovery = discovery
        # The groups' descriptions (every instance of every group, parsed from XML each
        # tick) are garbage now, and so is this map when the last one was kept; hand their
        # heap pages back (scaler/adapters/heap.py).
        del groups, instances
        release_free_memory()
        if frozenset(problems) != self._logged_problems:
            for problem in problems:
                log.warning("aws.pool_disabled", pool=problem.pool, reason=problem.reason)
            self._logged_problems = frozenset(problems)
        return discovery

    # ------------------------------------------------------------------------ instance types

    async def describe_types(self, names: Sequence[str]) -> list[InstanceType]:
        """Specs from DescribeInstanceTypes, cached. Priced from the catalog when it has the
        type, else unpriced (``on_demand_usd_per_hour`` = inf; a live Spot price from
        :meth:`prices` still applies). Unknown names are left out."""
        await self.data.describe(self.ec2, names)
        return [self.data.described[n] for n in dict.fromkeys(names) if n in self.data.described]

    # -------------------------------------------------------------------------- actuation

    async def _known_group(self, pool: str) -> None:
        if self._discovery is None or pool not in self._discovery.groups:
            await self.discover()
        assert self._discovery is not None
        if pool not in self._discovery.groups:
            raise NotFound(f"ASG {pool} is not a discoverable group of cluster {self.cluster_name}")

    async def set_desired(self, pool: str, desired: int) -> None:
        """SetDesiredCapacity, not honouring cooldowns (scaler decides when, not the ASG)."""
        await self._known_group(pool)
        with translated(f"SetDesiredCapacity {pool}"):
            await self.autoscaling.set_desired_capacity(
                AutoScalingGroupName=pool, DesiredCapacity=desired, HonorCooldown=False
            )
        before = next((p.current_size for p in self._pools() if p.name == pool), None)
        if before is None or desired > before:
            self._scaled_up_at[pool] = self.clock()
        log.info("aws.set_desired", pool=pool, desired=desired)

    async def _group_now(self, pool: str) -> dict[str, Any]:
        """One managed group as AWS describes it now (not the last discovery's copy)."""
        await self._known_group(pool)
        with translated(f"DescribeAutoScalingGroups {pool}"):
            answer = await self.autoscaling.describe_auto_scaling_groups(
                AutoScalingGroupNames=[pool]
            )
        groups = answer.get("AutoScalingGroups") or []
        if not groups:
            raise NotFound(f"ASG {pool} is gone")
        return dict(groups[0])

    async def cancel_unfulfilled(self, pool: str) -> None:
        """Lower desired capacity to the instances the group has (never below MinSize), as
        cluster-autoscaler's DecreaseTargetSize does after a failed launch: the ASG would
        otherwise keep retrying and bring a node after the pods went elsewhere."""
        group = await self._group_now(pool)
        target = max(int(group.get("MinSize", 0)), len(_live_instances(group)))
        if int(group.get("DesiredCapacity", 0)) > target:
            with translated(f"SetDesiredCapacity {pool}"):
                await self.autoscaling.set_desired_capacity(
                    AutoScalingGroupName=pool, DesiredCapacity=target, HonorCooldown=False
                )
            log.info("aws.cancel_unfulfilled", pool=pool, desired=target)

    async def give_up(self, pool: str, count: int, keep: Collection[str]) -> int:
        """Take back up to ``count`` nodes of ``pool`` that never registered (the provision
        timeout passed). Desired capacity that no instance answers yet is lowered first
        (SetDesiredCapacity); then instances not in ``keep`` are terminated, the longest
        known first (TerminateInstanceInAutoScalingGroup, decrementing while above MinSize;
        at MinSize the ASG replaces the instance, which is what a dud at the floor needs).
        Never a lower desired capacity alone for an instance: the ASG would pick which
        instance goes, and it might be a busy node."""
        group = await self._group_now(pool)
        desired, min_size = int(group.get("DesiredCapacity", 0)), int(group.get("MinSize", 0))
        live = _live_instances(group)
        given = min(count, max(desired - len(live), 0), max(desired - min_size, 0))
        if given:
            desired -= given
            with translated(f"SetDesiredCapacity {pool}"):
                await self.autoscaling.set_desired_capacity(
                    AutoScalingGroupName=pool, DesiredCapacity=desired, HonorCooldown=False
                )
        duds = sorted(
            (i for i in live if i not in keep), key=lambda i: (self._first_seen.get(i, 0.0), i)
        )
        for instance_id in duds[: count - given]:
            decrement = desired > min_size
            with translated(f"TerminateInstanceInAutoScalingGroup {instance_id}"):
                await self.autoscaling.terminate_instance_in_auto_scaling_group(
                    InstanceId=instance_id, ShouldDecrementDesiredCapacity=decrement
                )
            desired -= int(decrement)
            given += 1
        log.info("aws.give_up", pool=pool, asked=count, given=given, desired=desired)
        return given

    async def complete_lifecycle(self, hook: LifecycleHook) -> None:
        """CompleteLifecycleAction CONTINUE: the node is drained, the ASG may terminate it."""
        with translated(f"CompleteLifecycleAction {hook.asg}/{hook.hook}"):
            await self.autoscaling.complete_lifecycle_action(
                AutoScalingGroupName=hook.asg,
                LifecycleHookName=hook.hook,
                LifecycleActionToken=hook.token,
                LifecycleActionResult="CONTINUE",
                InstanceId=hook.instance_id,
            )
        log.info("aws.complete_lifecycle", asg=hook.asg, hook=hook.hook, instance=hook.instance_id)

    async def terminate(self, node: Node) -> None:
        """Terminate the node's instance and decrement its ASG's desired capacity.

        Raises :class:`NotFound` (no instance id, not in a discoverable group) or
        :class:`~scaler.adapters.aws.errors.AtMinSize` (desired already at MinSize: the
        instance stays, AWS would refuse anyway).
        """
        instance_id = node.instance_id
        if not instance_id:
            raise NotFound(f"node {node.name} has no EC2 instance id (providerID)")
        pool = node.pool or await self._group_of_instance(instance_id)
        with translated(f"DescribeAutoScalingGroups {pool}"):
            answer = await self.autoscaling.describe_auto_scaling_groups(
                AutoScalingGroupNames=[pool]
            )
        groups = answer.get("AutoScalingGroups") or []
        if not groups or not is_writable(groups[0], self.cluster_name):
            raise NotFound(
                f"ASG {pool} of node {node.name} is not a discoverable group of cluster {self.cluster_name}"
            )
        group = groups[0]
        state = {i.get("InstanceId"): i.get("LifecycleState") for i in group.get("Instances") or ()}
        if instance_id not in state:
            raise NotFound(f"instance {instance_id} of node {node.name} is not in ASG {pool}")
        if state[instance_id] in _GOING_STATES:
            # As cluster-autoscaler does: a second call would decrement desired capacity again.
            raise NotFound(f"instance {instance_id} of node {node.name} is already {state[instance_id]}")
        desired, min_size = int(group.get("DesiredCapacity", 0)), int(group.get("MinSize", 0))
        if desired <= min_size:
            raise AtMinSize(
                f"ASG {pool} is at its minimum size {min_size}: node {node.name} ({instance_id}) stays"
            )
        with translated(f"TerminateInstanceInAutoScalingGroup {instance_id}"):
            await self.autoscaling.terminate_instance_in_auto_scaling_group(
                InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
            )
        log.info(
            "aws.terminate", pool=pool, node=node.name, instance_id=instance_id, desired=desired - 1
        )

    async def _group_of_instance(self, instance_id: str) -> str:
        with translated(f"DescribeAutoScalingInstances {instance_id}"):
            answer = await self.autoscaling.describe_auto_scaling_instances(
                InstanceIds=[instance_id]
            )
        found = answer.get("AutoScalingInstances") or []
        if not found:
            raise NotFound(f"instance {instance_id} is in no ASG")
        return str(found[0]["AutoScalingGroupName"])

    async def launch_failures(self, since_s: float) -> list[LaunchFailure]:
        """Failed launches at or after ``since_s``. Only groups that can have one are asked
        (one DescribeScalingActivities each): those with launches due at the last discovery
        and those scaled up since ``since_s``."""
        discovery = self._discovery or await self.discover()
        recent = {p for p, at in self._scaled_up_at.items() if at >= since_s}
        out: list[LaunchFailure] = []
        for pool in sorted((discovery.launching | recent) & discovery.groups):
            try:
                with translated(f"DescribeScalingActivities {pool}"):
                    answer = await self.autoscaling.describe_scaling_activities(
                        AutoScalingGroupName=pool, MaxRecords=ACTIVITY_PAGE
                    )
            except NotFound:
                continue  # the group went away since discovery
            out.extend(launch_failures_from_activities(pool, answer.get("Activities", []), since_s))
        return sorted(out, key=lambda f: (f.at_s, f.pool))

    # ------------------------------------------------------------------------------ prices

    async def prices(self) -> Prices:
        """Live Spot prices (mean over each type's zones); on-demand from :attr:`on_demand`
        where it has the type, else the catalog's. The last good ones: this never calls AWS
        once a read was made (the background refresher, app.py's ``_refresh_prices``, calls
        :meth:`refresh_prices`), so a tick never waits on the Spot price API. Before the
        first read (a one-shot run, ``scaler plan``, a tick that beat the refresher's first
        read) it makes that read, or waits for the one in progress, so the first decision
        is priced."""
        if not self._prices_read:
            async with self._price_lock:
                if not self._prices_read:
                    await self._read_prices()
        live = {(t, SPOT): p for t, p in self._spot.items()}
        if self.on_demand is not None:
            live.update({(t, ON_DEMAND): p for t, p in self.on_demand.usd_per_hour.items()})
        return Prices(live)

    async def refresh_prices(self) -> bool:
        """Read Spot prices for the Spot pools' types; for a background task. Never raises:
        a failed or empty refresh keeps the last good prices, logs, and returns False."""
        async with self._price_lock:
            return await self._read_prices()

    async def _read_prices(self) -> bool:
        """:meth:`refresh_prices`, under the price lock."""
        now = self.clock()
        try:
            try:
                discovery = self._discovery or await self.discover()
                zones_by_type: dict[str, set[str]] = {}
                for pool in discovery.pools:
                    if pool.capacity_type == SPOT:
                        for t in pool.instance_types:
                            zones_by_type.setdefault(t, set()).update(pool.zones)
                if not zones_by_type:
                    return True
                history = await self._spot_history(sorted(zones_by_type), now)
            except PortError as e:
                log.warning("aws.spot_prices_failed", error=str(e), kept=len(self._spot))
                return False
            on_demand = {
                t: itype.on_demand_usd_per_hour
                for t in zones_by_type
                if (itype := self.data.instance_type(t)) is not None
            }
            fresh, rejected = spot_prices_from_history(history, zones_by_type, on_demand)
            if rejected:
                log.warning("aws.spot_prices_rejected", count=len(rejected), examples=rejected[:5])
            if not fresh:
                log.warning("aws.spot_prices_empty", kept=len(self._spot))
                return False
            # A type missing from this answer keeps its last price.
            self._spot.update(fresh)
            log.info("aws.spot_prices", instance_types=len(fresh))
            return True
        finally:
            # Read once, well or not: later reads are the refresher's, never a tick's.
            self._prices_read = True

    async def _spot_history(self, types: Sequence[str], now_s: float) -> list[Mapping[str, Any]]:
        # StartTime = now and no end: AWS answers the price in effect now per (type, zone,
        # product), as Karpenter asks for it.
        at = datetime.fromtimestamp(now_s, UTC)
        out: list[Mapping[str, Any]] = []
        for i in range(0, len(types), _TYPE_BATCH):
            kwargs: dict[str, Any] = {
                "InstanceTypes": list(types[i : i + _TYPE_BATCH]),
                "ProductDescriptions": list(SPOT_PRODUCTS),
                "StartTime": at,
            }
            with translated("DescribeSpotPriceHistory"):
                while True:
                    answer = await self.ec2.describe_spot_price_history(**kwargs)
                    out.extend(answer.get("SpotPriceHistory", []))
                    token = answer.get("NextToken")
                    if not token:
                        break
                    kwargs["NextToken"] = token
        return out


def _live_instances(group: Mapping[str, Any]) -> list[str]:
    """The group's instances that are not on their way out."""
    return [
        str(i["InstanceId"])
        for i in group.get("Instances") or ()
        if i.get("LifecycleState") not in _GOING_STATES
    ]
