"""The permissions scaler is granted are exactly the calls its code makes.

The AWS actions and Kubernetes verbs are read out of scaler/ itself (its source, parsed), not
out of a list someone keeps by hand, and compared with deploy/permissions.json, which the
other tests in this folder hold equal to deploy/iam-policy.json and manifests/rbac.yaml. A new
call without its permission fails here; so does a permission no code uses any more.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AWS_SERVICES = {"autoscaling": "autoscaling", "ec2": "ec2", "sqs": "sqs", "pricing": "pricing"}
NOT_API = {"get_paginator", "close", "paginate", "can_paginate"}
K8S_API_OBJECTS = {"_core": "", "_leases": "coordination.k8s.io", "_storage": "storage.k8s.io"}
K8S_METHOD = re.compile(
    r"^(?P<verb>list|read|create|patch|replace|delete)_(?:namespaced_)?(?P<kind>[a-z_]+?)"
    r"(?:_for_all_namespaces)?$"
)
VERBS = {"read": "get", "replace": "update"}
SUBRESOURCES = {
    "pod_eviction": "pods/eviction",
    "node_status": "nodes/status",
    "config_map": "configmaps",
    "persistent_volume_claim": "persistentvolumeclaims",
    "persistent_volume": "persistentvolumes",
    "storage_class": "storageclasses",
}


def _sources(folder: str) -> list[ast.Module]:
    return [ast.parse(p.read_text(), str(p)) for p in sorted((ROOT / folder).rglob("*.py"))]


def _receiver(node: ast.expr) -> str | None:
    """``self.autoscaling`` -> "autoscaling"; ``ec2`` -> "ec2"."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _camel(op: str) -> str:
    return "".join(part.capitalize() for part in op.split("_"))


def aws_actions_in_code() -> set[str]:
    actions = set()
    for module in _sources("scaler"):
        for node in ast.walk(module):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            service = AWS_SERVICES.get(_receiver(node.func.value) or "")
            if service is None:
                continue
            op = node.func.attr
            if op == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                actions.add(f"{service}:{_camel(str(node.args[0].value))}")
            elif op not in NOT_API and re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", op):
                actions.add(f"{service}:{_camel(op)}")
    return actions


def kubernetes_verbs_in_code() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) for every client method the Kubernetes adapter calls or
    hands to a watch (a list function given to a Reflector is listed and watched)."""
    grants = set()
    for module in _sources("scaler/adapters/kube"):
        for node in ast.walk(module):
            if not isinstance(node, ast.Attribute):
                continue
            group = K8S_API_OBJECTS.get(_receiver(node.value) or "")
            m = K8S_METHOD.match(node.attr)
            if group is None or m is None:
                continue
            kind = m["kind"]
            resource = SUBRESOURCES.get(kind, f"{kind}s")
            verb = VERBS.get(m["verb"], m["verb"])
            grants.add((group, resource, verb))
            if verb == "list":
                grants.add((group, resource, "watch"))
    return grants


def granted() -> tuple[set[str], set[tuple[str, str, str]]]:
    perms = json.loads((ROOT / "deploy" / "permissions.json").read_text())
    k8s = {(r["apiGroup"], r["resource"], v) for r in perms["kubernetes"] for v in r["verbs"]}
    return set(perms["aws"]), k8s


def test_every_aws_call_in_the_code_is_granted_and_nothing_more():
    code = aws_actions_in_code()
    aws, _ = granted()
    assert code, "the scan found no AWS calls: it is broken"
    assert code - aws == set(), "calls the IAM policy does not allow"
    assert aws - code == set(), "permissions no code uses"


def test_every_kubernetes_call_in_the_code_is_granted_and_nothing_more():
    code = kubernetes_verbs_in_code()
    _, k8s = granted()
    assert code, "the scan found no Kubernetes calls: it is broken"
    assert code - k8s == set(), "calls the ClusterRole/Role do not allow"
    assert k8s - code == set(), "RBAC verbs no code uses"


def test_the_scan_sees_the_calls_it_should():
    # Guard the scanner itself with calls we know are there.
    aws = aws_actions_in_code()
    assert {"autoscaling:SetDesiredCapacity", "ec2:DescribeSubnets", "sqs:ReceiveMessage"} <= aws
    k8s = kubernetes_verbs_in_code()
    assert ("", "pods/eviction", "create") in k8s and ("coordination.k8s.io", "leases", "update") in k8s
    assert ("storage.k8s.io", "storageclasses", "watch") in k8s
    assert ("", "persistentvolumeclaims", "list") in k8s
