"""KubeCluster against a real kube-apiserver + kube-scheduler (v1.20.2), and the policy/v1
eviction path on recorded responses (the 1.20 server serves policy/v1beta1 only)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from scaler.adapters.kube import load_api_client
from scaler.adapters.kube.actuator import KubeActuator
from scaler.adapters.kube.cluster import KubeCluster
from scaler.adapters.kube.dryrun import DryRunActuator
from scaler.adapters.kube.watch import Reflector
from scaler.core.model import NO_SCHEDULE, PodSpec, Taint
from scaler.core.state import ClusterView
from scaler.ports import NotFound, Throttled
from tests.fixtures.kube import KubeScope

T = TypeVar("T")
blocking = anyio.to_thread.run_sync
NODE_CAPACITY = {"cpu": 2, "memory": "8Gi", "pods": 29}


@asynccontextmanager
async def running(cluster: KubeCluster) -> AsyncIterator[KubeCluster]:
    async with anyio.create_task_group() as tg:
        await tg.start(cluster.run)
        yield cluster
        tg.cancel_scope.cancel()


async def until(
    cluster: KubeCluster, probe: Callable[[ClusterView], T | None], *, timeout_s: float = 20
) -> T:
    """Snapshot after every cache change until ``probe`` answers; fail after ``timeout_s``."""
    with anyio.fail_after(timeout_s):
        while True:
            seen = cluster.generation
            found = probe(await cluster.snapshot())
            if found:
                return found
            await cluster.wait_changed(seen)


def ours(kube_ns: KubeScope, name: str) -> str:
    return f"{kube_ns.namespace}/{name}"


# --- watching -----------------------------------------------------------------------------


@pytest.mark.kube
@pytest.mark.anyio
async def test_too_big_pod_is_pending_then_bound_once_a_fitting_node_appears(kube_ns: KubeScope):
    arrivals: list[str] = []
    cluster = KubeCluster(
        kube_ns.api,
        on_pending=lambda key, now: arrivals.append(key),
        instance_pools=lambda: {"i-0big": "r5-4xlarge"},
        watch_timeout_s=2,  # watches end and resume from their resourceVersion meanwhile
    )
    key = ours(kube_ns, "too-big")
    async with running(cluster):
        await blocking(lambda: kube_ns.make_pod("too-big", requests={"memory": "64Gi"}))

        pending = await until(
            cluster, lambda v: next((p for p in v.pending if p.pod.key == key), None)
        )
        condition = await blocking(lambda: kube_ns.pod_condition("too-big", "PodScheduled"))
        # Pending since the watch saw it: never before the scheduler's (1 s resolution)
        # transition time, and not more than a moment after it.
        transition = condition.last_transition_time.timestamp()
        assert transition <= pending.since_s < transition + 5.0
        assert pending.pod.requests.memory_mib == 64 * 1024
        assert arrivals == [key]
        assert cluster.uid_of(key)

        await blocking(
            lambda: kube_ns.make_node(
                "big-node",
                capacity={"cpu": 16, "memory": "128Gi", "pods": 234},
                provider_id="aws:///us-east-1a/i-0big",
                labels={"node.kubernetes.io/instance-type": "r5.4xlarge"},
            )
        )

        bound = await until(cluster, lambda v: next((b for b in v.bound if b.pod.key == key), None))
        view = await cluster.snapshot()
        assert bound.node == "big-node"
        assert key not in {p.pod.key for p in view.pending}
        assert cluster.uid_of(key) is None  # UIDs are kept for pending pods only
        big = next(n for n in view.nodes if n.name == "big-node")
        assert (big.pool, big.instance_type, big.zone) == ("r5-4xlarge", "r5.4xlarge", "us-east-1a")
        assert big.allocatable.memory_mib == 128 * 1024
        assert cluster.reflectors[1].relists == 1  # resumed watches, never re-listed


@pytest.mark.kube
@pytest.mark.anyio
async def test_deleted_node_and_finished_pod_leave_the_snapshot(kube_ns: KubeScope):
    async with running(KubeCluster(kube_ns.api)) as cluster:
        await blocking(lambda: kube_ns.make_node("gone-node", capacity=NODE_CAPACITY))
        await blocking(lambda: kube_ns.make_pod("job", node_name="gone-node"))
        key = ours(kube_ns, "job")
        await until(cluster, lambda v: any(b.pod.key == key for b in v.bound))

        await blocking(lambda: kube_ns.set_pod_phase("job", "Succeeded"))
        await until(cluster, lambda v: all(b.pod.key != key for b in v.bound))
        await blocking(lambda: kube_ns.core.delete_node("gone-node"))
        await until(cluster, lambda v: all(n.name != "gone-node" for n in v.nodes))


@pytest.mark.kube
@pytest.mark.anyio
async def test_a_pod_that_finishes_or_is_deleted_after_running_is_a_run_in_the_history(
    kube_ns: KubeScope,
):
    """The history a pod's Spot risk is judged by (scaler/core/runtime.py) comes from the
    cluster: a pod's phase patched to Succeeded through the status subresource, as the
    kubelet reports it, is one run of its workload, as long as it ran; so is a pod deleted
    while it runs. A pod deleted before it was bound ran nothing."""
    started = time.time() - 7200.0
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
    async with running(KubeCluster(kube_ns.api)) as cluster:
        await blocking(lambda: kube_ns.make_node("worker", capacity=NODE_CAPACITY))
        for name in ("train-x7b2k", "notebook", "never-bound"):
            await blocking(lambda name=name: kube_ns.make_pod(
                name, requests={"memory": "64Gi"} if name == "never-bound" else None,
                node_name=None if name == "never-bound" else "worker"))
        for name in ("train-x7b2k", "notebook"):
            await blocking(lambda name=name: kube_ns.core.patch_namespaced_pod_status(
                name, kube_ns.namespace, {"status": {"phase": "Running", "startTime": start}}))
        await until(cluster, lambda v: sum(b.pod.namespace == kube_ns.namespace
                                           for b in v.bound) == 2)
        assert not (await cluster.snapshot()).runtimes.workloads

        await blocking(lambda: kube_ns.set_pod_phase("train-x7b2k", "Succeeded"))
        await blocking(lambda: kube_ns.core.delete_namespaced_pod("notebook", kube_ns.namespace))
        await blocking(lambda: kube_ns.core.delete_namespaced_pod("never-bound", kube_ns.namespace))
        view = await until(cluster, lambda v: v if len(v.runtimes.workloads) >= 2 else None)
        await until(cluster, lambda v: not any(p.pod.namespace == kube_ns.namespace
                                               for p in v.pending))

    runs = (await cluster.snapshot()).runtimes
    # The generated suffix is dropped: the Job's next pod is the same workload.
    (trained,) = view.runtimes.workloads[ours(kube_ns, "train")]
    (notebook,) = view.runtimes.workloads[ours(kube_ns, "notebook")]
    assert 7200.0 <= trained < 7200.0 + 60.0  # startTime has one-second resolution
    assert 7200.0 <= notebook < 7200.0 + 60.0
    assert set(runs.workloads) == {ours(kube_ns, "train"), ours(kube_ns, "notebook")}
    assert runs.namespaces[kube_ns.namespace].count == 2


# --- writing ------------------------------------------------------------------------------


@pytest.mark.kube
@pytest.mark.anyio
async def test_annotate_node_sets_and_removes_an_annotation(kube_ns: KubeScope):
    await blocking(lambda: kube_ns.make_node("anno-node", capacity=NODE_CAPACITY))
    async with running(KubeCluster(kube_ns.api)) as cluster:
        await cluster.annotate_node("anno-node", "scaler.io/idle-since", "1700000000")
        node = await blocking(lambda: kube_ns.core.read_node("anno-node"))
        assert node.metadata.annotations["scaler.io/idle-since"] == "1700000000"
        await until(
            cluster,
            lambda v: any(n.annotation("scaler.io/idle-since") == "1700000000" for n in v.nodes),
        )

        await cluster.annotate_node("anno-node", "scaler.io/idle-since", None)
        node = await blocking(lambda: kube_ns.core.read_node("anno-node"))
        assert "scaler.io/idle-since" not in (node.metadata.annotations or {})
        with pytest.raises(NotFound):
            await cluster.annotate_node("no-such-node", "scaler.io/idle-since", "1")


@pytest.mark.kube
@pytest.mark.anyio
async def test_record_event_creates_an_event_on_the_pod_once(kube_ns: KubeScope):
    async with running(KubeCluster(kube_ns.api, identity="scaler-0")) as cluster:
        await blocking(lambda: kube_ns.make_pod("waiting", requests={"memory": "1Ti"}))
        key = ours(kube_ns, "waiting")
        pending = await until(
            cluster, lambda v: next((p for p in v.pending if p.pod.key == key), None)
        )
        message = "pod needs 1Ti memory; the largest pool offers 768Gi"
        await cluster.record_event(pending.pod, "NotTriggerScaleUp", message, warning=True)
        await cluster.record_event(pending.pod, "NotTriggerScaleUp", message, warning=True)

        events = await blocking(
            lambda: (
                kube_ns.core.list_namespaced_event(
                    kube_ns.namespace, field_selector="involvedObject.name=waiting"
                ).items
            )
        )
        ours_ = [e for e in events if e.source and e.source.component == "scaler"]
        assert len(ours_) == 1  # the repeat within the dedup window was not sent
        event = ours_[0]
        assert (event.reason, event.type, event.message) == (
            "NotTriggerScaleUp",
            "Warning",
            message,
        )
        assert event.involved_object.kind == "Pod"
        assert event.involved_object.uid == cluster.uid_of(key)  # kubectl describe finds it
        assert event.reporting_instance == "scaler-0"


@pytest.mark.kube
@pytest.mark.anyio
async def test_cordon_uncordon_taint_and_untaint_a_node(kube_ns: KubeScope):
    other = {"key": "dedicated", "value": "ds", "effect": "NoSchedule"}
    await blocking(lambda: kube_ns.make_node("c-node", capacity=NODE_CAPACITY, taints=[other]))
    async with running(KubeCluster(kube_ns.api)) as cluster:
        await cluster.cordon("c-node")
        await until(cluster, lambda v: any(n.name == "c-node" and n.unschedulable for n in v.nodes))

        await cluster.uncordon("c-node")
        node = await blocking(lambda: kube_ns.core.read_node("c-node"))
        assert not node.spec.unschedulable

        draining = Taint("scaler.io/draining", "true", NO_SCHEDULE)
        await cluster.taint("c-node", draining)
        await cluster.taint("c-node", draining)  # idempotent
        view = await until(
            cluster,
            lambda v: next((n for n in v.nodes if n.name == "c-node" and len(n.taints) == 2), None),
        )
        assert set(view.taints) == {Taint("dedicated", "ds", NO_SCHEDULE), draining}

        await cluster.untaint("c-node", "scaler.io/draining")
        node = await blocking(lambda: kube_ns.core.read_node("c-node"))
        assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
            ("dedicated", "ds", "NoSchedule")
        ]


@pytest.mark.kube
@pytest.mark.anyio
async def test_evict_falls_back_to_policy_v1beta1_on_a_1_20_server(kube_ns: KubeScope):
    await blocking(lambda: kube_ns.make_node("e-node", capacity=NODE_CAPACITY))
    await blocking(lambda: kube_ns.make_pod("victim", node_name="e-node"))
    await blocking(lambda: kube_ns.set_pod_phase("victim", "Running"))
    cluster = KubeCluster(kube_ns.api)
    victim = PodSpec(name="victim", namespace=kube_ns.namespace)

    await cluster.evict(victim, grace_period_s=0)

    assert cluster.eviction_version == "policy/v1beta1"

    def gone() -> bool:
        try:
            kube_ns.core.read_namespaced_pod("victim", kube_ns.namespace)
        except ApiException as e:
            return e.status == 404
        return False

    with anyio.fail_after(10):
        while not await blocking(gone):
            await anyio.sleep(0.05)
    with pytest.raises(NotFound):
        await cluster.evict(victim)


# --- policy/v1 eviction, recorded responses ------------------------------------------------

# What a server that serves policy/v1 answers to POST .../pods/<name>/eviction (1.22+).
V1_CREATED = (201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "code": 201})  # fmt: skip
POD_MISSING = (404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                     "message": 'pods "victim" not found', "reason": "NotFound",
                     "details": {"name": "victim", "kind": "pods"}, "code": 404})  # fmt: skip
PDB_BLOCKS = (429, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                    "reason": "TooManyRequests", "code": 429})  # fmt: skip
ROUTE_MISSING = (404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": "the server could not find the requested resource",
                       "reason": "NotFound", "code": 404})  # fmt: skip


class _Recorded:
    """Stands in for ``create_namespaced_pod_eviction``: answers from a script, keeps bodies."""

    def __init__(self, *answers: tuple[int, dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> Any:
        self.bodies.append(body)
        status, payload = self.answers.pop(0)
        if status >= 300:
            error = ApiException(status=status, reason=payload.get("reason"))
            error.body = json.dumps(payload)
            raise error
        return _Response(status, payload)


class _Response:
    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        self.status = status
        self.data = json.dumps(payload).encode()

    def release_conn(self) -> None:
        pass


def _actuator(recorded: _Recorded) -> KubeActuator:
    actuator = KubeActuator(client.ApiClient(client.Configuration()))  # never reaches a server
    actuator._core.create_namespaced_pod_eviction = recorded  # type: ignore[method-assign]
    return actuator


@pytest.mark.anyio
async def test_evict_uses_policy_v1_where_served_and_keeps_using_it():
    recorded = _Recorded(V1_CREATED, V1_CREATED)
    actuator = _actuator(recorded)
    pod = PodSpec(name="victim", namespace="ds")

    await actuator.evict(pod, grace_period_s=30)
    await actuator.evict(pod)

    assert [b["apiVersion"] for b in recorded.bodies] == ["policy/v1", "policy/v1"]
    assert recorded.bodies[0]["deleteOptions"] == {"gracePeriodSeconds": 30}
    assert actuator.eviction_version == "policy/v1"


@pytest.mark.anyio
async def test_evict_does_not_fall_back_when_the_pod_itself_is_missing():
    recorded = _Recorded(POD_MISSING)
    with pytest.raises(NotFound, match="victim"):
        await _actuator(recorded).evict(PodSpec(name="victim", namespace="ds"))
    assert [b["apiVersion"] for b in recorded.bodies] == ["policy/v1"]


@pytest.mark.anyio
async def test_evict_falls_back_on_a_404_for_the_version_and_reports_a_blocking_budget():
    recorded = _Recorded(ROUTE_MISSING, PDB_BLOCKS)
    actuator = _actuator(recorded)
    with pytest.raises(Throttled, match="disruption budget"):
        await actuator.evict(PodSpec(name="victim", namespace="ds"))
    assert [b["apiVersion"] for b in recorded.bodies] == ["policy/v1", "policy/v1beta1"]
    assert actuator.eviction_version is None  # nothing succeeded yet: nothing learned


@pytest.mark.anyio
async def test_dry_run_actuator_records_writes_and_makes_none():
    dry = DryRunActuator()
    pod = PodSpec(name="p", namespace="ds")
    await dry.annotate_node("n", "scaler.io/idle-since", None)
    await dry.record_event(pod, "TriggeredScaleUp", "m5.large for 1 pod", warning=False)
    await dry.evict(pod)
    assert [c.method for c in dry.calls] == ["annotate_node", "record_event", "evict"]
    assert dict(dry.calls[0].args) == {"node": "n", "key": "scaler.io/idle-since", "value": None}


# --- the watch loop on scripted responses ---------------------------------------------------


class _Stream:
    """A watch response: yields scripted lines, then blocks until shut down."""

    def __init__(self, lines: list[dict[str, Any]], *, then_block: bool) -> None:
        self.lines = [json.dumps(x).encode() + b"\n" for x in lines]
        self.then_block = then_block
        self.shut = threading.Event()

    def stream(self, amt: Any = None, decode_content: Any = None) -> Any:
        yield from self.lines
        if self.then_block:
            self.shut.wait(30)
            raise ConnectionResetError("shut down")

    def shutdown(self) -> None:
        self.shut.set()

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def _obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}}


@pytest.mark.anyio
async def test_reflector_relists_on_410_skips_unconvertible_objects_and_stops_on_cancel():
    lists = [
        {"metadata": {"resourceVersion": "10"}, "items": [_obj("a", "5"), _obj("bad", "6")]},
        {"metadata": {"resourceVersion": "20"}, "items": [_obj("a", "5"), _obj("b", "15")]},
    ]
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
    watches = [
        _Stream([gone], then_block=False),
        _Stream([{"type": "ADDED", "object": _obj("c", "21")}], then_block=True),
    ]
    calls: list[dict[str, Any]] = []

    def list_fn(**kwargs: Any) -> Any:
        calls.append(kwargs)
        if kwargs.get("watch"):
            return watches.pop(0)
        return _Response(200, lists.pop(0))

    cache: dict[str, str] = {}
    added = anyio.Event()

    def on_event(key: str, value: str | None) -> None:
        cache[key] = value
        added.set()

    def convert(obj: dict[str, Any]) -> str:
        if obj["metadata"]["name"] == "bad":
            raise TypeError("a converter bug")  # logged and skipped, the watch goes on
        return obj["metadata"]["resourceVersion"]

    reflector = Reflector(
        "things",
        list_fn,
        key=lambda o: o["metadata"]["name"],
        convert=convert,
        on_replace=lambda items: (cache.clear(), cache.update(items)),
        on_event=on_event,
        limiter=anyio.CapacityLimiter(1),
    )
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(reflector.run)
            await added.wait()
            tg.cancel_scope.cancel()

    assert cache == {"a": "5", "b": "15", "c": "21"}
    assert reflector.relists == 2
    watch_rvs = [c["resource_version"] for c in calls if c.get("watch")]
    assert watch_rvs == ["10", "20"]
    assert reflector.resource_version == "21"


@pytest.mark.kube
def test_load_api_client_reads_a_kubeconfig(kube_env: Any):
    with load_api_client(str(kube_env.kubeconfig)) as api:
        assert client.VersionApi(api).get_code().git_version.startswith("v1.20")


@pytest.mark.kube
@pytest.mark.anyio
async def test_a_nodes_instance_decides_its_pool_over_its_label(kube_ns: KubeScope):
    # After a scale-down AWS lists the instance as terminating (no group's any more) and the
    # Node lingers; its scaler.io/pool label must not keep it in the pool, or it would be
    # counted and removed again.
    instances: dict[str, str] | None = None
    cluster = KubeCluster(kube_ns.api, instance_pools=lambda: instances)
    await blocking(
        lambda: kube_ns.make_node(
            "labelled",
            capacity=NODE_CAPACITY,
            labels={"scaler.io/pool": "ng-a"},
            provider_id="aws:///us-east-1a/i-0labelled",
        )
    )
    async with running(cluster):
        await until(cluster, lambda v: any(n.name == "labelled" for n in v.nodes))

        async def pool() -> tuple[str | None, bool]:
            view = await cluster.snapshot()
            return next((n.pool, n.pool_labelled) for n in view.nodes if n.name == "labelled")

        assert await pool() == ("ng-a", True)  # no discovery yet: the label
        instances = {"i-0labelled": "ng-a"}
        assert await pool() == ("ng-a", True)
        instances = {}  # terminating: in no group
        assert (await pool())[0] is None
        instances = {"i-0labelled": "ng-b"}  # the instance is another group's
        assert await pool() == ("ng-b", False)  # and its label is due to be rewritten


@pytest.mark.kube
@pytest.mark.anyio
async def test_reports_are_learned_again_when_only_the_instances_pool_changes(kube_ns: KubeScope):
    # Learning what nodes report is skipped while no node changed; a new discovery that moves
    # an instance to another group changes what its node reports for, with no node event.
    instances: dict[str, str] | None = None
    cluster = KubeCluster(kube_ns.api, instance_pools=lambda: instances)
    await blocking(
        lambda: kube_ns.make_node(
            "reporting",
            capacity=NODE_CAPACITY,
            labels={"scaler.io/pool": "ng-a", "node.kubernetes.io/instance-type": "m5.large"},
            provider_id="aws:///us-east-1a/i-0reporting",
        )
    )
    async with running(cluster):
        await until(cluster, lambda v: any(n.name == "reporting" for n in v.nodes))
        first = await cluster.snapshot()
        assert set(first.reported_allocatable) == {("ng-a", "m5.large")}
        again = await cluster.snapshot()  # nothing changed: the same learned view
        assert again.reported_allocatable is first.reported_allocatable
        instances = {"i-0reporting": "ng-b"}
        moved = await cluster.snapshot()
        assert ("ng-b", "m5.large") in moved.reported_allocatable
