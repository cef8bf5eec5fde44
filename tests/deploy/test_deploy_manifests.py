"""The kustomize base and its optional components: they build, and what they build is what
docs/deploy.md promises (security settings, least-privilege RBAC, settings that exist)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaler.core.settings import Settings, field_names
from tests.deploy.support import (
    COMPONENTS,
    DEPLOY,
    MANIFESTS,
    NAMESPACE,
    build,
    kinds,
    kustomize,
    only,
    permissions,
)

CONFIG_MOUNT = "/etc/scaler/config"
WEBHOOK_SECRET = "scaler-webhook-tls"
NAMED = {"configmaps": ("scaler-status", "scaler-learned-nodes")}
"""The objects of a kind the Role names, where they are not called scaler."""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return kustomize(tmp_path_factory.mktemp("overlay-base"))


@pytest.fixture(scope="module")
def with_webhook(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return kustomize(tmp_path_factory.mktemp("overlay-webhook"), ["webhook"])


@pytest.fixture(scope="module")
def with_prometheus(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return kustomize(tmp_path_factory.mktemp("overlay-prom"), ["prometheus-operator"])


def _expand(arg: str, env: dict[str, str]) -> str:
    """``$(VAR)`` in a container arg, as the kubelet expands it."""
    return re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg)


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = only(docs, "Deployment", "scaler")["spec"]["template"]["spec"]["containers"]
    return container


# --- every file parses; the base and each component build --------------------------------


@pytest.mark.parametrize(
    "path",
    sorted(MANIFESTS.rglob("*.yaml")),
    ids=lambda p: str(p.relative_to(MANIFESTS)),
)
def test_every_manifest_file_is_yaml_with_kinds(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs
    for doc in docs:
        if path.parent.name == "alerts":  # a plain Prometheus rule file
            assert doc["groups"]
        elif isinstance(doc, list):  # a JSON 6902 patch
            assert all(op["op"] in ("add", "replace", "remove") and op["path"] for op in doc)
        else:
            assert doc.get("apiVersion") and doc.get("kind"), path


def test_base_builds_the_controller_and_no_optional_kind(base: list[dict[str, Any]]) -> None:
    assert kinds(base) == {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "NetworkPolicy",
    }
    for doc in base:
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


def test_components_add_only_their_own_kinds(
    base: list[dict[str, Any]],
    with_webhook: list[dict[str, Any]],
    with_prometheus: list[dict[str, Any]],
) -> None:
    assert kinds(with_webhook) - kinds(base) == {
        "MutatingWebhookConfiguration",
        "Certificate",
        "Issuer",
    }
    assert kinds(with_prometheus) - kinds(base) == {"ServiceMonitor", "PrometheusRule"}
    for doc in with_webhook + with_prometheus:
        if (
            doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")
            and doc["kind"] != "MutatingWebhookConfiguration"
        ):
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


def test_both_components_build_together(tmp_path: Path) -> None:
    docs = kustomize(tmp_path, ["webhook", "prometheus-operator"])
    assert {"MutatingWebhookConfiguration", "ServiceMonitor"} <= kinds(docs)


def test_components_are_kustomize_components() -> None:
    for directory in sorted(p for p in COMPONENTS.iterdir() if p.is_dir()):
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        assert kustomization["kind"] == "Component", directory.name


# --- the Deployment -------------------------------------------------------------------------


def test_deployment_runs_two_replicas_with_leader_election(base: list[dict[str, Any]]) -> None:
    deployment = only(base, "Deployment", "scaler")
    assert deployment["spec"]["replicas"] == 2
    args = _container(base)["args"]
    assert "--cluster-name=$(CLUSTER_NAME)" in args
    # `scaler run` elects a leader unless told not to; the Lease is in scaler's namespace,
    # where the Role lets it read and write.
    assert "--no-leader-elect" not in args
    assert "--lease-namespace=$(POD_NAMESPACE)" in args
    assert "--lease-name=scaler" in args


def test_deployment_is_locked_down(base: list[dict[str, Any]]) -> None:
    pod = only(base, "Deployment", "scaler")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532  # the image's USER
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(base)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in security["capabilities"]
    assert not pod.get("hostNetwork") and not pod.get("hostPID")
    # The read-only root needs a writable /tmp (HOME, MPLCONFIGDIR in the image).
    tmp_mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    volume = next(v for v in pod["volumes"] if v["name"] == tmp_mount["name"])
    assert "emptyDir" in volume


def test_deployment_probes_resources_and_placement(base: list[dict[str, Any]]) -> None:
    container = _container(base)
    port = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port["http"] == 8080
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert container["resources"]["limits"]["memory"] == "512Mi"

    template = only(base, "Deployment", "scaler")["spec"]["template"]
    pod = template["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["serviceAccountName"] == "scaler"
    assert (
        template["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"]
        == "false"
    )
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert {
        "key": "eks.amazonaws.com/capacityType",
        "operator": "In",
        "values": ["ON_DEMAND"],
    } in term["matchExpressions"]
    anti = pod["affinity"]["podAntiAffinity"]
    assert (
        anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"]
        == "kubernetes.io/hostname"
    )


def test_deployment_env_comes_from_the_configmap(base: list[dict[str, Any]]) -> None:
    container = _container(base)
    configmap = only(base, "ConfigMap", "scaler")
    defined = {e["name"] for e in container["env"]}
    for env in container["env"]:
        ref = env.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            assert ref["name"] == "scaler"
            assert ref["key"] in configmap["data"], ref["key"]
    # Every $(VAR) in args is defined (kubelet leaves an undefined one as literal text).
    for arg in container["args"]:
        for var in re.findall(r"\$\((\w+)\)", arg):
            assert var in defined, arg


def test_configmap_settings_are_scaler_settings_with_their_defaults(
    base: list[dict[str, Any]], tmp_path: Path
) -> None:
    """config.yaml is read by the same loader `scaler run --config` uses; every key is a
    setting and is shown at its default."""
    from scaler.commands.configuration import file_overrides

    data = only(base, "ConfigMap", "scaler")["data"]
    path = tmp_path / "config.yaml"
    path.write_text(data["config.yaml"])
    overrides = file_overrides(str(path))
    assert len(overrides) >= 6
    paths = field_names(Settings())
    defaults = Settings()
    for name, value in overrides.items():
        assert paths.get(name), f"{name} is not a field of scaler/core/settings.py"
        section, leaf = paths[name].split(".")
        assert float(value) == float(getattr(getattr(defaults, section), leaf)), name
    assert Settings().with_overrides(overrides) == defaults
    # No setting is left as a loose key: those would reach nothing.
    assert {k for k in data if k.islower() and k != "config.yaml"} == set()
    assert {"CLUSTER_NAME", "AWS_REGION", "QUEUE_URL", "QUARANTINE_QUEUE_URL"} <= set(data)


def test_deployment_mounts_the_settings_file_and_passes_it(base: list[dict[str, Any]]) -> None:
    spec = only(base, "Deployment", "scaler")["spec"]["template"]["spec"]
    container = _container(base)
    (volume,) = [v for v in spec["volumes"] if v.get("configMap")]
    assert volume["configMap"] == {
        "name": "scaler", "items": [{"key": "config.yaml", "path": "config.yaml"}]
    }
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == CONFIG_MOUNT and mount["readOnly"] is True
    assert f"--config={CONFIG_MOUNT}/config.yaml" in container["args"]
    assert not [a for a in container["args"] if a.startswith("--set")]
    # Kubernetes would inject SCALER_SERVICE_HOST etc. for the Service `scaler`.
    assert spec["enableServiceLinks"] is False


def test_deployment_args_are_accepted_by_scaler_run(
    base: list[dict[str, Any]], with_webhook: list[dict[str, Any]]
) -> None:
    """The manifests and `scaler run` agree on flag names (ENTRYPOINT is `scaler run`)."""
    from scaler.cli import build_parser

    parser = build_parser()
    choices = next(
        a.choices for a in parser._actions if a.dest == "command" and a.choices is not None
    )
    if "run" not in choices:
        pytest.skip("`scaler run` is not built yet")
    run_flags = {flag for action in choices["run"]._actions for flag in action.option_strings}
    overlays = [("base", base)]
    if any(flag.startswith("--webhook") for flag in run_flags):
        overlays.append(("webhook", with_webhook))
    for _, docs in overlays:
        container = _container(docs)
        env = {e["name"]: f"value-of-{e['name']}" for e in container["env"]}
        env.update(
            {
                "CLUSTER_NAME": "my-cluster",
                "AWS_REGION": "us-east-1",
                "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111122223333/scaler-my-cluster",
            }
        )
        args = [_expand(a, env) for a in container["args"]]
        parser.parse_args(["run", *args])
    if len(overlays) == 1:
        pytest.skip("base checked; `scaler run` has no --webhook-* flags yet for the component")


def test_example_overlay_sets_image_role_cluster_and_queues(base: list[dict[str, Any]]) -> None:
    docs = build(DEPLOY / "example-overlay")
    assert kinds(docs) == kinds(base)
    image = _container(docs)["image"]
    assert image.endswith("/scaler:0.1.0") and image != _container(base)["image"]
    arn = only(docs, "ServiceAccount", "scaler")["metadata"]["annotations"][
        "eks.amazonaws.com/role-arn"
    ]
    assert arn.endswith(":role/scaler-my-cluster")
    data = only(docs, "ConfigMap", "scaler")["data"]
    assert data["QUEUE_URL"].endswith("/scaler-my-cluster")
    assert data["QUARANTINE_QUEUE_URL"].endswith("/scaler-my-cluster-quarantine")
    # The overlay names no settings: the base's settings file stands.
    assert data["config.yaml"] == only(base, "ConfigMap", "scaler")["data"]["config.yaml"]


# --- PDB, Service, ServiceAccount ---------------------------------------------------------


def test_pdb_keeps_one_replica(base: list[dict[str, Any]]) -> None:
    pdb = only(base, "PodDisruptionBudget", "scaler")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    template_labels = only(base, "Deployment", "scaler")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= template_labels.items()


def test_service_exposes_metrics_and_webhook(base: list[dict[str, Any]]) -> None:
    service = only(base, "Service", "scaler")
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"metrics": (8080, "http"), "webhook": (443, 8443)}
    template_labels = only(base, "Deployment", "scaler")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= template_labels.items()


def test_service_account_carries_a_placeholder_irsa_role(base: list[dict[str, Any]]) -> None:
    account = only(base, "ServiceAccount", "scaler")
    arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", arn)


# --- RBAC ---------------------------------------------------------------------------------


def _merged(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    merged: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                merged.setdefault((group, resource), set()).update(rule["verbs"])
    return merged


def _expected(scope: str) -> dict[tuple[str, str], set[str]]:
    expected: dict[tuple[str, str], set[str]] = {}
    for entry in permissions()["kubernetes"]:
        if entry["scope"] == scope:
            key = (entry["apiGroup"], entry["resource"])
            assert key not in expected, f"{key} twice in permissions.json"
            expected[key] = set(entry["verbs"])
    return expected


def test_cluster_role_grants_exactly_permissions_json(base: list[dict[str, Any]]) -> None:
    rules = only(base, "ClusterRole", "scaler")["rules"]
    assert _merged(rules) == _expected("cluster")
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert not rule.get("nonResourceURLs")


def test_role_grants_exactly_permissions_json_on_named_objects(base: list[dict[str, Any]]) -> None:
    role = only(base, "Role", "scaler")
    assert _merged(role["rules"]) == _expected("namespace")
    for rule in role["rules"]:
        # Only create may go without resourceNames (RBAC cannot name what does not exist).
        if rule["verbs"] != ["create"]:
            (resource,) = rule["resources"]
            (name,) = rule.get("resourceNames", [None])
            assert name in NAMED.get(resource, ("scaler",)), rule


def test_no_rbac_rule_reaches_secrets_or_deletes(base: list[dict[str, Any]]) -> None:
    rules = [r for d in base if d["kind"] in ("ClusterRole", "Role") for r in d["rules"]]
    for rule in rules:
        assert "secrets" not in rule["resources"]
        assert not {"delete", "deletecollection", "update", "escalate", "bind", "impersonate"} & (
            set(rule["verbs"]) - ({"update"} if rule.get("resourceNames") else set())
        ), rule


def test_bindings_name_the_service_account(base: list[dict[str, Any]]) -> None:
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = only(base, kind, "scaler")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_kind,
            "name": "scaler",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "scaler", "namespace": NAMESPACE}
        ]


def test_every_rbac_rule_has_a_comment_naming_its_verbs() -> None:
    """rbac.yaml justifies each verb by the call that needs it, in the comment above the rule."""
    lines = (MANIFESTS / "rbac.yaml").read_text().splitlines()
    docs = [d for d in yaml.safe_load_all("\n".join(lines)) if d]
    rules = [r for d in docs if d["kind"] in ("ClusterRole", "Role") for r in d["rules"]]
    starts = [i for i, line in enumerate(lines) if line.strip().startswith("- apiGroups:")]
    assert len(starts) == len(rules)
    for start, rule in zip(starts, rules, strict=True):
        comment = []
        i = start - 1
        while i >= 0 and lines[i].strip().startswith("#"):
            comment.append(lines[i])
            i -= 1
        text = " ".join(comment)
        for resource in rule["resources"]:
            assert resource in text, f"no comment names {resource} above its rule"
        for verb in rule["verbs"]:
            assert re.search(rf"\b{verb}\b", text), f"no comment justifies {verb} on {rule}"


# --- the webhook and Prometheus components --------------------------------------------------


def test_webhook_is_safe_and_opt_in(with_webhook: list[dict[str, Any]]) -> None:
    config = only(with_webhook, "MutatingWebhookConfiguration", "scaler")
    certificate = only(with_webhook, "Certificate")
    inject = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert inject == f"{certificate['metadata']['namespace']}/{certificate['metadata']['name']}"
    (hook,) = config["webhooks"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["timeoutSeconds"] == 2
    assert hook["namespaceSelector"] == {"matchLabels": {"scaler.io/pin": "enabled"}}
    assert hook["rules"][0]["operations"] == ["CREATE"]
    assert hook["rules"][0]["resources"] == ["pods"]
    service = only(with_webhook, "Service", "scaler")
    assert hook["clientConfig"]["service"]["name"] == service["metadata"]["name"]
    assert hook["clientConfig"]["service"]["namespace"] == NAMESPACE
    assert hook["clientConfig"]["service"]["port"] == 443
    # The certificate covers the Service's DNS name and lands in the Secret scaler may read.
    assert f"scaler.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["secretName"] == WEBHOOK_SECRET


def test_webhook_component_serves_on_8443(with_webhook: list[dict[str, Any]]) -> None:
    container = _container(with_webhook)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "webhook": 8443}
    args = dict(a.split("=", 1) for a in container["args"] if a.startswith("--webhook-"))
    assert args["--webhook-listen"].endswith(":8443")
    # The certificate and key are files of the mounted cert-manager Secret.
    pod = only(with_webhook, "Deployment", "scaler")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v.get("secret"))
    assert volume["secret"]["secretName"] == WEBHOOK_SECRET
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert mount["readOnly"] is True
    assert args["--webhook-cert"] == f"{mount['mountPath']}/tls.crt"
    assert args["--webhook-key"] == f"{mount['mountPath']}/tls.key"


def test_prometheus_component_scrapes_the_metrics_port(
    with_prometheus: list[dict[str, Any]],
) -> None:
    monitor = only(with_prometheus, "ServiceMonitor", "scaler")
    service = only(with_prometheus, "Service", "scaler")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # The alerts select job="scaler": the job label is the Service's jobLabel value.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "scaler"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    rule = only(with_prometheus, "PrometheusRule", "scaler")
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert alerts and all(a["expr"] and a["labels"]["severity"] for a in alerts)


def test_prometheus_rule_carries_the_alert_file_and_promtool_accepts_it(
    with_prometheus: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The PrometheusRule is manifests/alerts/scaler-rules.yaml (the alerts' source of truth,
    unit-tested with promtool in tests/adapters/promtool/) wrapped for the operator."""
    rule = only(with_prometheus, "PrometheusRule", "scaler")
    source = yaml.safe_load((MANIFESTS / "alerts" / "scaler-rules.yaml").read_text())
    assert rule["spec"]["groups"] == source["groups"]
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run(
        [promtool, "check", "rules", "rules.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
