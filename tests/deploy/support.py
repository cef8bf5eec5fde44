"""Helpers for the deployment tests: build the kustomize base (with components), read the
CloudFormation template, find objects by kind.

kubectl (1.32, kustomize built in) renders the manifests exactly as users will; a test that
needs it skips when it is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
COMPONENTS = MANIFESTS / "components"
DEPLOY = REPO / "deploy"
NAMESPACE = "scaler-system"


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl not installed (it carries kustomize)")
    return path


def kustomize(overlay_dir: Path, components: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Render the base as a user's overlay would: ``resources: [base]`` plus ``components``
    (names under manifests/components/). kustomize wants relative paths, so the overlay in
    ``overlay_dir`` points back at the repository with ``..``s."""
    overlay_dir.mkdir(parents=True, exist_ok=True)

    def rel(path: Path) -> str:
        return os.path.relpath(path, overlay_dir)

    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [rel(MANIFESTS)],
        "components": [rel(COMPONENTS / name) for name in components],
    }
    (overlay_dir / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    return build(overlay_dir)


def build(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIR``, parsed."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def only(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(docs: Iterable[dict[str, Any]]) -> set[str]:
    return {d["kind"] for d in docs}


class CloudFormationLoader(yaml.SafeLoader):
    """PyYAML loader that reads CloudFormation's short tags (``!Ref X`` as ``{"Ref": "X"}``,
    ``!GetAtt A.B`` as ``{"Fn::GetAtt": ["A", "B"]}``, ``!Sub``...)."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _cfn_tag)


def load_cloudformation(path: Path = DEPLOY / "cloudformation.yaml") -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=CloudFormationLoader)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def permissions() -> dict[str, Any]:
    return load_json(DEPLOY / "permissions.json")
