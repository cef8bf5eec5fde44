"""One pod per node: the pinning patch also makes a pod exclusive when its pools do not pack.

Patches are applied with test_webhook's strict RFC 6902 applier and read back; tiers and
exclusivity come from the real core (``make_chooser`` -> ``pin_for``) over the bundled
catalog.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from scaler.core.catalog import Catalog
from scaler.core.offerings import Offerings, build_offerings
from scaler.core.pinning import LABEL_EXCLUSIVE, exclusive_term
from scaler.core.settings import preset
from scaler.loop.admission import make_chooser
from tests.adapters.test_webhook import (
    REQUIRED,
    Recording,
    Source,
    make_pod,
    mutated,
    pools,
    terms_of,
)

pytestmark = pytest.mark.anyio

USER_TERM = {
    "labelSelector": {"matchLabels": {"app": "spark-driver"}},
    "topologyKey": "topology.kubernetes.io/zone",
}


def offerings_of(pack: bool) -> Offerings:
    built, problems = build_offerings(
        [dataclasses.replace(p, pack=pack) for p in pools()], Catalog.load()
    )
    assert not problems
    return built


def anti_terms(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod["spec"]["affinity"]["podAntiAffinity"][REQUIRED]


async def test_a_pod_pinned_to_pools_that_do_not_pack_gets_a_node_to_itself():
    out, _ = await mutated(make_pod(memory="4Gi"), make_chooser(Source(offerings_of(False))))
    assert out["metadata"]["labels"] == {LABEL_EXCLUSIVE: "true"}
    assert anti_terms(out) == [exclusive_term()]
    assert exclusive_term() == {
        "labelSelector": {"matchExpressions": [{"key": LABEL_EXCLUSIVE, "operator": "Exists"}]},
        "namespaceSelector": {},
        "topologyKey": "kubernetes.io/hostname",
    }
    assert terms_of(out)[0]["matchExpressions"][0]["values"] == ["m5a-large", "m5-large"]


async def test_a_pod_pinned_to_packing_pools_is_not_exclusive():
    out, _ = await mutated(make_pod(memory="4Gi"), make_chooser(Source(offerings_of(True))))
    assert terms_of(out)  # pinned all the same
    assert "labels" not in out["metadata"]
    assert "podAntiAffinity" not in out["spec"]["affinity"]


async def test_the_users_labels_and_anti_affinity_are_kept_and_ours_added():
    pod = make_pod(
        memory="4Gi",
        affinity={
            "podAntiAffinity": {REQUIRED: [USER_TERM]},
            "podAffinity": {REQUIRED: [USER_TERM]},
        },
    )
    pod["metadata"]["labels"] = {"app": "notebook", "hub.jupyter.org/username": "ada"}
    out, _ = await mutated(pod, make_chooser(Source(offerings_of(False))))
    assert out["metadata"]["labels"] == {
        "app": "notebook",
        "hub.jupyter.org/username": "ada",
        LABEL_EXCLUSIVE: "true",
    }
    assert anti_terms(out) == [USER_TERM, exclusive_term()]
    assert out["spec"]["affinity"]["podAffinity"] == {REQUIRED: [USER_TERM]}
    assert terms_of(out)  # node affinity added beside them


@pytest.mark.parametrize(
    "anti",
    [{}, {"preferredDuringSchedulingIgnoredDuringExecution": []}, {REQUIRED: []}],
    ids=["empty", "preferred-only", "required-empty"],
)
async def test_partial_anti_affinity_objects_are_completed(anti: dict[str, Any]):
    out, _ = await mutated(
        make_pod(memory="4Gi", affinity={"podAntiAffinity": anti}),
        make_chooser(Source(offerings_of(False))),
    )
    assert anti_terms(out) == [exclusive_term()]
    for key, value in anti.items():
        if key != REQUIRED:
            assert out["spec"]["affinity"]["podAntiAffinity"][key] == value


async def test_no_exclusivity_without_a_pin_or_when_switched_off():
    settings = preset("scaler")
    off = dataclasses.replace(
        settings, pinning=dataclasses.replace(settings.pinning, exclusive=False)
    )
    out, _ = await mutated(
        make_pod(memory="4Gi"), make_chooser(Source(offerings_of(False), settings=off))
    )
    assert terms_of(out) and "podAntiAffinity" not in out["spec"]["affinity"]
    # A chooser answering a plain tuple (no Pin) never makes a pod exclusive.
    out, _ = await mutated(make_pod(memory="4Gi"), Recording())
    assert "podAntiAffinity" not in out["spec"]["affinity"]
    # No pool fits: no pin, no label.
    out, response = await mutated(
        make_pod(memory="600Gi"), make_chooser(Source(offerings_of(False)))
    )
    assert "patch" not in response and "labels" not in out["metadata"]


async def test_daemonset_pods_are_never_made_exclusive():
    pod = make_pod(memory="4Gi", owner="DaemonSet")
    out, response = await mutated(pod, make_chooser(Source(offerings_of(False))))
    assert "patch" not in response and out == pod
