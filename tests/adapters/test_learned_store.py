"""What nodes taught about their pools outlives a restart and the pool's scale to zero.

Against the real API server: a live KubeCluster learns a pool's labels, taints and
allocatable from a registered node and writes them to the ``scaler-learned-nodes``
ConfigMap; the node goes (the pool scales to zero), the process restarts, and the new
process plans with what the node reported, not with the guess.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from scaler.adapters.kube.cluster import KubeCluster
from scaler.adapters.kube.learned import CONFIGMAP, KEY, LearnedStore, decode, encode
from scaler.core.model import NO_SCHEDULE, Resources, Taint
from scaler.core.state import NodeTemplateReport
from tests.fixtures.kube import KubeScope, wait_for

KEY_ = ("workers", "m5.large")
REPORT = Resources(cpu_milli=1930, memory_mib=7400, pods=29, ephemeral_mib=90 * 1024)
TEMPLATE = NodeTemplateReport(
    labels=(("kubernetes.io/os", "linux"), ("team", "ml")),
    taints=(Taint("dedicated", "ml", NO_SCHEDULE),),
)


def test_the_document_round_trips_and_writes_the_same_bytes_for_the_same_state() -> None:
    text = encode({KEY_: REPORT}, {KEY_: TEMPLATE})
    assert decode(text) == ({KEY_: REPORT}, {KEY_: TEMPLATE})
    assert encode(dict([(KEY_, REPORT)]), {KEY_: TEMPLATE}) == text


@pytest.mark.parametrize(
    "text",
    ["", "nonsense", "[]", '{"format": 2, "pools": []}', '{"format": 1, "pools": 3}'],
)
def test_a_document_scaler_cannot_read_is_ignored_not_fatal(text: str) -> None:
    assert decode(text) == ({}, {})


def test_one_bad_entry_is_left_out_and_the_others_kept() -> None:
    good = encode({KEY_: REPORT}, {KEY_: TEMPLATE})
    doc = good.replace('"pools":[', '"pools":[{"pool":"x","instance_type":"y","allocatable":{}},')
    assert decode(doc) == ({KEY_: REPORT}, {KEY_: TEMPLATE})


@pytest.mark.kube
@pytest.mark.anyio
async def test_a_store_writes_once_per_change_and_a_new_store_reads_it(kube_ns: KubeScope):
    store = LearnedStore(kube_ns.api, kube_ns.namespace)
    assert await store.load() == ({}, {})
    assert await store.save({KEY_: REPORT}, {KEY_: TEMPLATE})
    cm = kube_ns.core.read_namespaced_config_map(CONFIGMAP, kube_ns.namespace)
    version = cm.metadata.resource_version
    assert not await store.save({KEY_: REPORT}, {KEY_: TEMPLATE})  # unchanged: no write
    assert kube_ns.core.read_namespaced_config_map(
        CONFIGMAP, kube_ns.namespace
    ).metadata.resource_version == version
    again = LearnedStore(kube_ns.api, kube_ns.namespace)
    assert await again.load() == ({KEY_: REPORT}, {KEY_: TEMPLATE})
    # Someone else wrote in between: the update still lands (read, then guarded write).
    kube_ns.core.patch_namespaced_config_map(CONFIGMAP, kube_ns.namespace, {"data": {"x": "1"}})
    bigger = Resources(cpu_milli=1930, memory_mib=7400, pods=29, ephemeral_mib=190 * 1024)
    assert await again.save({KEY_: bigger}, {KEY_: TEMPLATE})
    data = kube_ns.core.read_namespaced_config_map(CONFIGMAP, kube_ns.namespace).data
    assert data["x"] == "1" and decode(data[KEY])[0] == {KEY_: bigger}
    # A read-only store (scaler plan, dry runs) reads and never writes.
    quiet = LearnedStore(kube_ns.api, kube_ns.namespace, read_only=True)
    await quiet.load()
    assert not await quiet.save({}, {})


async def _snapshot_until(cluster: KubeCluster, ok: Any, what: str) -> Any:
    with anyio.fail_after(20):
        while True:
            view = await cluster.snapshot()
            if ok(view):
                return view
            await anyio.sleep(0.05)


@pytest.mark.kube
@pytest.mark.anyio
async def test_learned_labels_taints_and_allocatable_survive_scale_to_zero_and_restart(
    kube_ns: KubeScope,
):
    store = LearnedStore(kube_ns.api, kube_ns.namespace)
    cluster = KubeCluster(kube_ns.api, learned=store)
    async with anyio.create_task_group() as tg:
        await tg.start(cluster.run)
        await anyio.to_thread.run_sync(lambda: kube_ns.make_node(
            "ip-10-0-1-5.ec2.internal",
            capacity={"cpu": 2, "memory": "7934Mi", "pods": 29, "ephemeral-storage": "100Gi"},
            allocatable={"cpu": "1930m", "memory": "7260Mi", "pods": 29,
                         "ephemeral-storage": "89Gi"},
            labels={"scaler.io/pool": "workers", "node.kubernetes.io/instance-type": "m5.large",
                    "team": "ml"},
            taints=[{"key": "dedicated", "value": "ml", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}],
        ))
        await _snapshot_until(cluster, lambda v: KEY_ in v.reported_templates, "the node")

        def written() -> dict[str, str] | None:
            try:
                data = kube_ns.core.read_namespaced_config_map(CONFIGMAP, kube_ns.namespace).data
            except Exception:  # not there yet
                return None
            return data if KEY_ in decode(data[KEY])[1] else None

        await anyio.to_thread.run_sync(lambda: wait_for(written, what="the ConfigMap"))
        tg.cancel_scope.cancel()
    # The pool scales to zero, and scaler restarts.
    kube_ns.core.delete_node("ip-10-0-1-5.ec2.internal")
    restarted = KubeCluster(kube_ns.api, learned=LearnedStore(kube_ns.api, kube_ns.namespace))
    async with anyio.create_task_group() as tg:
        await tg.start(restarted.run)
        view = await _snapshot_until(restarted, lambda v: not v.nodes, "the node to go")
        tg.cancel_scope.cancel()
    learned = view.reported_templates[KEY_]
    assert ("team", "ml") in learned.labels
    assert ("kubernetes.io/hostname", "ip-10-0-1-5.ec2.internal") not in learned.labels
    assert learned.taints == (Taint("dedicated", "ml", NO_SCHEDULE),)
    assert view.reported_allocatable[KEY_].ephemeral_mib == 89 * 1024
