"""The manifests against a real kube-apiserver (v1.20.2, tests/fixtures/kube.py).

- ``kubectl apply --dry-run=server`` of the rendered base: the server validates and admits
  every object (schema, defaulting, RBAC rule syntax, the pod template) without storing it.
- The RBAC objects applied for real, then SubjectAccessReviews as scaler's ServiceAccount:
  every permission in deploy/permissions.json is granted, and a sample of what scaler must
  not do is refused. RBAC is the server's authorizer here, so this is the real check.

What the 1.20 server cannot take, handled in the open:
- PodDisruptionBudget ``policy/v1`` exists from Kubernetes 1.21; 1.20 serves only
  ``policy/v1beta1``, whose spec (minAvailable, selector) is the same. The PDB is sent as
  v1beta1 for the dry run only; the manifest stays v1 for the clusters people run (>= 1.21).
- cert-manager's Issuer/Certificate and the Prometheus Operator's ServiceMonitor and
  PrometheusRule are CRDs this server does not have; installing stand-in CRDs would only
  check that our YAML has a kind and a name, so they are checked offline
  (test_deploy_manifests.py) and left out here. The component's MutatingWebhookConfiguration
  and patched Deployment are built-in kinds and are dry-run.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import DEPLOY, NAMESPACE, build, kubectl, kustomize, permissions
from tests.fixtures.kube import KubeEnv

pytestmark = pytest.mark.kube

CRD_KINDS = {"Certificate", "Issuer", "ServiceMonitor", "PrometheusRule"}
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:scaler"
RESOURCE_NAMES: dict[str, dict[str, str]] = {
    "leases": {"get": "scaler", "update": "scaler"},
    # The status ConfigMap is patched, the learned-nodes one replaced.
    "configmaps": {"get": "scaler-status", "patch": "scaler-status", "update": "scaler-learned-nodes"},
}


def _for_120(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a 1.20 server can take: PDB as policy/v1beta1 (see the module docstring), no
    CRD-based kinds."""
    out = []
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        if doc["kind"] == "PodDisruptionBudget" and doc["apiVersion"] == "policy/v1":
            doc = {**doc, "apiVersion": "policy/v1beta1"}
        out.append(doc)
    return out


def _kubectl(env: KubeEnv, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [kubectl(), f"--kubeconfig={env.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def _yaml(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


@pytest.fixture(scope="module")
def scaler_namespace(kube_env: KubeEnv) -> Iterator[str]:
    """scaler-system, created for real (a dry run of namespaced objects needs their
    namespace to exist), and removed at the end together with the cluster-wide RBAC objects
    the tests apply (the test server has no namespace controller: finalize by hand)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = kube_env.api_client()
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    with contextlib.suppress(ApiException):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    try:
        yield NAMESPACE
    finally:
        with contextlib.suppress(ApiException):
            rbac.delete_cluster_role_binding("scaler")
        with contextlib.suppress(ApiException):
            rbac.delete_cluster_role("scaler")
        for delete in (
            lambda: rbac.delete_namespaced_role_binding("scaler", NAMESPACE),
            lambda: rbac.delete_namespaced_role("scaler", NAMESPACE),
            lambda: core.delete_namespaced_service_account("scaler", NAMESPACE),
            lambda: core.delete_namespace(NAMESPACE),
            lambda: core.replace_namespace_finalize(
                NAMESPACE, {"metadata": {"name": NAMESPACE}, "spec": {"finalizers": []}}
            ),
        ):
            with contextlib.suppress(ApiException):
                delete()
        api.close()


@pytest.mark.kube
@pytest.mark.parametrize("what", ["base", "example-overlay"])
def test_manifests_pass_a_server_side_dry_run(
    kube_env: KubeEnv, scaler_namespace: str, tmp_path: Path, what: str
) -> None:
    rendered = build(DEPLOY / what) if what != "base" else kustomize(tmp_path / "overlay")
    docs = _for_120(rendered)
    out = _kubectl(kube_env, "apply", "--dry-run=server", "-f", "-", stdin=_yaml(docs))
    for doc in docs:
        # kubectl prints "<kind>/<name> created (server dry run)" per object.
        assert f"/{doc['metadata']['name']} " in out, f"{doc['kind']} missing from:\n{out}"
    assert out.count("(server dry run)") == len(docs), out


@pytest.mark.kube
def test_webhook_component_passes_a_server_side_dry_run(
    kube_env: KubeEnv, scaler_namespace: str, tmp_path: Path
) -> None:
    docs = [
        d
        for d in _for_120(kustomize(tmp_path / "overlay", ["webhook"]))
        if d["kind"] in ("MutatingWebhookConfiguration", "Deployment")
    ]
    assert len(docs) == 2
    out = _kubectl(kube_env, "apply", "--dry-run=server", "-f", "-", stdin=_yaml(docs))
    assert out.count("(server dry run)") == 2, out


def _allowed(
    api: Any, *, verb: str, group: str, resource: str, namespace: str = "", name: str = ""
) -> bool:
    from kubernetes import client

    resource, _, subresource = resource.partition("/")
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=SERVICE_ACCOUNT,
            groups=["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}"],
            resource_attributes=client.V1ResourceAttributes(
                verb=verb,
                group=group,
                resource=resource,
                subresource=subresource or None,
                namespace=namespace or None,
                name=name or None,
            ),
        )
    )
    answer = client.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(answer.status.allowed)


@pytest.mark.kube
def test_service_account_may_do_exactly_what_permissions_json_says(
    kube_env: KubeEnv, scaler_namespace: str, tmp_path: Path
) -> None:
    rbac_docs = [d for d in kustomize(tmp_path / "overlay") if d["kind"] in RBAC_KINDS]
    _kubectl(kube_env, "apply", "-f", "-", stdin=_yaml(rbac_docs))

    with kube_env.api_client() as api:
        for entry in permissions()["kubernetes"]:
            group, resource = entry["apiGroup"], entry["resource"]
            cluster = entry["scope"] == "cluster"
            for verb in entry["verbs"]:
                name = (
                    "" if verb in ("create", "list", "watch")
                    else RESOURCE_NAMES.get(resource, {}).get(verb, "")
                )
                namespaces = ["", "default"] if cluster else [NAMESPACE]
                if resource in ("nodes", "namespaces", "persistentvolumes"):
                    namespaces = [""]
                for namespace in namespaces:
                    assert _allowed(
                        api,
                        verb=verb,
                        group=group,
                        resource=resource,
                        namespace=namespace,
                        name=name,
                    ), f"{verb} {group}/{resource} in {namespace or 'the cluster'} refused"

        refused = [
            dict(verb="delete", group="", resource="nodes"),
            dict(verb="update", group="", resource="nodes"),
            dict(verb="delete", group="", resource="pods", namespace="default"),
            dict(verb="create", group="", resource="pods", namespace="default"),
            dict(verb="patch", group="", resource="pods", namespace="default"),
            dict(verb="list", group="", resource="secrets", namespace=NAMESPACE),
            dict(
                verb="get",
                group="",
                resource="secrets",
                namespace=NAMESPACE,
                name="scaler-webhook-tls",
            ),
            dict(verb="get", group="", resource="pods", namespace="default", name="x"),
            dict(verb="patch", group="", resource="events", namespace="default"),
            dict(verb="list", group="policy", resource="poddisruptionbudgets"),
            dict(
                verb="get",
                group="",
                resource="secrets",
                namespace="kube-system",
                name="scaler-webhook-tls",
            ),
            dict(verb="get", group="", resource="configmaps", namespace="kube-system"),
            dict(
                verb="update",
                group="coordination.k8s.io",
                resource="leases",
                namespace=NAMESPACE,
                name="other",
            ),
            dict(
                verb="get",
                group="coordination.k8s.io",
                resource="leases",
                namespace="kube-system",
                name="scaler",
            ),
            dict(
                verb="delete",
                group="coordination.k8s.io",
                resource="leases",
                namespace=NAMESPACE,
                name="scaler",
            ),
            dict(verb="update", group="apps", resource="deployments", namespace=NAMESPACE),
            dict(verb="create", group="rbac.authorization.k8s.io", resource="clusterrolebindings"),
        ]
        for attributes in refused:
            assert not _allowed(api, **attributes), f"scaler may {attributes}"
