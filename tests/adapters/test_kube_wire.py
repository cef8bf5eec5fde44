"""The field-picking decoders give the converters everything they read.

For every object, decoding with ``wire.PODS`` / ``wire.NODES`` and then converting must
give what converting the whole JSON gives. That holds for the hand-built objects of
test_kube_convert.py and for what a real kube-apiserver serves, managedFields included.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from scaler.adapters.kube.convert import convert_node, convert_pod
from scaler.adapters.kube.rest import CoreV1
from scaler.adapters.kube.volumes import pod_claims
from scaler.adapters.kube.wire import NODES, PODS, WHOLE, Pod, Wire
from tests.adapters.test_kube_convert import _typical_bound_pod, node, pod, unschedulable
from tests.fixtures.kube import KubeScope


def _pod_samples() -> list[dict[str, Any]]:
    sidecar_and_init = pod(
        "trainer",
        conditions=[unschedulable()],
        requests={"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
        initContainers=[
            {"name": "fetch", "image": "x", "resources": {"requests": {"memory": "16Gi"}}},
            {
                "name": "proxy",
                "image": "x",
                "restartPolicy": "Always",
                "resources": {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}},
            },
        ],
        overhead={"cpu": "250m", "memory": "120Mi"},
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "node.kubernetes.io/instance-type", "operator": "In",
                                 "values": ["g5.xlarge", "g5.2xlarge"]}
                            ]
                        }
                    ]
                }
            }
        },
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        nodeSelector={"topology.kubernetes.io/zone": "us-east-1b", "team": "ml"},
        annotations={"scaler.io/pool": "gpu", "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
    )  # fmt: skip
    daemonset = pod(
        "fluent-bit-x2",
        node="n-1",
        phase="Running",
        requests={"cpu": "100m", "memory": "200Mi"},
        ownerReferences=[{"kind": "DaemonSet", "name": "fluent-bit", "uid": "d"}],
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n-1"]}]}
                    ]
                }
            }
        },
        startTime="2026-03-01T09:00:09Z",
    )  # fmt: skip
    mirror = pod(
        "kube-proxy-n-1",
        node="n-1",
        phase="Running",
        annotations={"kubernetes.io/config.mirror": "abc"},
    )
    samples = [
        sidecar_and_init,
        daemonset,
        mirror,
        _typical_bound_pod(7),
        pod("bad-quantity", conditions=[unschedulable()], requests={"memory": "lots"}),
        pod("bound-bad", node="n-2", phase="Running", requests={"cpu": "x", "memory": "1Gi"}),
        pod("unknown-resource", conditions=[unschedulable()], requests={"example.com/fpga": "1"}),
        pod("nominated", conditions=[unschedulable()], nominatedNodeName="n-3"),
        pod("deleting", conditions=[unschedulable()], deletionTimestamp="2026-03-01T09:01:00Z"),
        pod("done", node="n-1", phase="Succeeded"),
        pod("fresh", conditions=[]),
    ]
    # Fields a production server adds, which the decoders must skip without harm.
    for raw in samples:
        raw["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
        raw["metadata"]["resourceVersion"] = "42"
        raw["spec"]["volumes"] = [
            {"name": "token", "projected": {"sources": []}},
            {"name": "home", "persistentVolumeClaim": {"claimName": "home-1"}},
        ]
        raw["status"]["containerStatuses"] = [{"name": "main", "ready": True, "restartCount": 0}]
    return samples


def _node_samples() -> list[dict[str, Any]]:
    gpu = node(
        "gpu-1",
        labels={"node.kubernetes.io/instance-type": "g5.xlarge", "nvidia.com/gpu": "true",
                "eks.amazonaws.com/capacityType": "SPOT", "topology.kubernetes.io/zone": "us-east-1a"},
        allocatable={"cpu": "3920m", "memory": "15Gi", "pods": "58", "nvidia.com/gpu": "0"},
        providerID="aws:///us-east-1a/i-0123456789abcdef0",
        taints=[{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
        unschedulable=True,
    )  # fmt: skip
    samples = [
        gpu,
        node("plain"),
        node("not-ready", ready="False"),
        node("bad-alloc", allocatable={"cpu": "many", "memory": "1Gi", "pods": "29"}),
        node("bad-taint", taints=[{"effect": "Sometimes"}]),
    ]
    for raw in samples:
        raw["metadata"]["managedFields"] = [{"manager": "kubelet"}]
        raw["status"]["images"] = [{"names": ["repo/app:1"], "sizeBytes": 1}]
        raw["status"]["nodeInfo"] = {"kubeletVersion": "v1.20.2"}
    return samples


def _page(items: list[dict[str, Any]], **meta: str) -> bytes:
    return json.dumps({"kind": "List", "metadata": meta, "items": items}).encode()


def test_pods_convert_the_same_from_the_picked_fields():
    samples = _pod_samples()
    page = PODS.page(_page(samples, resourceVersion="77", **{"continue": "next"}))
    assert page["metadata"] == {"resourceVersion": "77", "continue": "next"}
    assert len(page["items"]) == len(samples)
    for full, picked in zip(samples, page["items"], strict=True):
        assert "managedFields" not in picked["metadata"]
        # Of the volumes, only what names a claim is kept (scaler/adapters/kube/volumes.py).
        assert [set(v) for v in picked["spec"]["volumes"]] == [{"name"}, {"name", "persistentVolumeClaim"}]
        assert convert_pod(picked) == convert_pod(full), full["metadata"]["name"]
        assert pod_claims(picked) == pod_claims(full)
    assert PODS.fallbacks == 0


def test_nodes_convert_the_same_from_the_picked_fields():
    samples = _node_samples()
    page = NODES.page(_page(samples))
    for full, picked in zip(samples, page["items"], strict=True):
        assert "images" not in picked["status"]
        got = convert_node(picked, is_gpu_type=lambda t: t[:2] == "g5")
        want = convert_node(full, is_gpu_type=lambda t: t[:2] == "g5")
        assert got == want, full["metadata"]["name"]


def test_watch_events_keep_what_each_type_needs():
    wire = PODS
    added = wire.event(json.dumps({"type": "ADDED", "object": _pod_samples()[0]}))
    assert added["type"] == "ADDED"
    assert convert_pod(added["object"]) == convert_pod(_pod_samples()[0])
    error = wire.event(
        json.dumps(
            {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
        )
    )
    assert error == {
        "type": "ERROR",
        "object": {"kind": "Status", "code": 410, "message": "too old"},
    }
    bookmark = wire.event(
        b'{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12"}}}'
    )
    assert bookmark == {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}}


def test_an_unexpected_structure_is_decoded_in_full_and_still_reported_by_the_converter():
    wire = Wire(Pod)  # a fresh fallback counter
    odd = _pod_samples()[0]
    odd["spec"]["containers"] = {"main": {"resources": {}}}  # a map where a list belongs
    page = wire.page(_page([odd]))
    assert wire.fallbacks == 1
    assert page["items"][0]["spec"]["volumes"]  # the whole object: nothing was dropped
    converted = convert_pod(page["items"][0])
    assert converted.value is None and converted.problem is not None
    assert "containers" in converted.problem.field


def test_not_json_raises_the_json_error_the_reflector_retries_on():
    with pytest.raises(json.JSONDecodeError):
        PODS.page(b"<html>502 Bad Gateway</html>")
    with pytest.raises(json.JSONDecodeError):
        NODES.event("not json")


def test_whole_keeps_everything():
    sample = _pod_samples()[0]
    assert WHOLE.page(_page([sample]))["items"] == [sample]


@pytest.mark.kube
@pytest.mark.anyio
async def test_what_a_real_api_server_serves_converts_the_same(kube_ns: KubeScope):
    await anyio.to_thread.run_sync(
        lambda: kube_ns.make_node(
            "wire-node",
            capacity={"cpu": 4, "memory": "16Gi", "pods": 58},
            labels={"node.kubernetes.io/instance-type": "m5.xlarge"},
            taints=[{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}],
            provider_id="aws:///us-east-1a/i-0123456789abcdef0",
        )
    )
    await anyio.to_thread.run_sync(
        lambda: kube_ns.make_pod(
            "wire-pod",
            requests={"cpu": "1", "memory": "2Gi"},
            node_selector={"team": "ml"},
            tolerations=[{"key": "dedicated", "operator": "Equal", "value": "ml"}],
        )
    )
    core = CoreV1(kube_ns.api)

    def raw(list_fn: Any) -> bytes:
        response = list_fn()
        try:
            return bytes(response.data)
        finally:
            response.release_conn()

    pods = await anyio.to_thread.run_sync(raw, core.list_pod_for_all_namespaces)
    nodes = await anyio.to_thread.run_sync(raw, core.list_node)
    full_pods = json.loads(pods)["items"]
    assert any("managedFields" in p["metadata"] for p in full_pods)  # what we skip is there
    assert any(p["metadata"]["name"] == "wire-pod" for p in full_pods)
    for full, picked in zip(full_pods, PODS.page(pods)["items"], strict=True):
        assert convert_pod(picked) == convert_pod(full)
    full_nodes = json.loads(nodes)["items"]
    assert any(n["metadata"]["name"] == "wire-node" for n in full_nodes)
    for full, picked in zip(full_nodes, NODES.page(nodes)["items"], strict=True):
        assert convert_node(picked) == convert_node(full)
