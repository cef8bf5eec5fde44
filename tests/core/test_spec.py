"""The workload format: Kubernetes' effective-request rule, selectors, tolerations, defaults,
and malformed input rejected with the file, the pod and the field named."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scaler.core.model import (
    AMD64,
    ARM64,
    LABEL_ARCH,
    LABEL_ZONE,
    NO_EXECUTE,
    NO_SCHEDULE,
    PREFER_NO_SCHEDULE,
    PodSpec,
    Requirement,
    Resources,
    SelectorTerm,
    SpecError,
    Taint,
    Toleration,
)
from scaler.core.settings import MAX_TIME_S
from scaler.core.spec import (
    _checked_pod_times,
    _pod_times,
    parse_pod,
    parse_workload,
    pod_shape,
)
from scaler.inputs import InputError, load_workload, parse_workload_document


def pod(**fields: Any) -> PodSpec:
    return parse_pod({"name": "p", **fields})


def container(name: str = "c", policy: str | None = None, **requests: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "resources": {"requests": requests}}
    if policy:
        c["restartPolicy"] = policy
    return c


def doc(*pods: dict[str, Any], pools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"version": 1, "pods": list(pods)}
    if pools is not None:
        d["pools"] = pools
    return d


def error_of(data: Any, source: str = "w.json") -> InputError:
    with pytest.raises(InputError) as info:
        parse_workload_document(data, source=source)
    return info.value


# ------------------------------------------------------------------ effective requests


def test_plain_requests_are_taken_as_is_with_one_pod_slot() -> None:
    p = pod(requests={"cpu": "500m", "memory": "4Gi", "nvidia.com/gpu": 1})
    assert p.requests == Resources(cpu_milli=500, memory_mib=4096, gpu=1, pods=1)


def test_a_pod_without_requests_asks_only_for_a_pod_slot() -> None:
    assert pod().requests == Resources(pods=1)


def test_a_quantity_read_before_is_read_again_by_its_type_and_refused_again_when_bad() -> None:
    # Quantities are memoised: 1 and True are equal keys to a dict, and a bad one must fail
    # every time, not only the first.
    assert pod(requests={"nvidia.com/gpu": 1}).requests.gpu == 1
    assert pod(requests={"cpu": 1.0}).requests.cpu_milli == 1000
    for _ in range(2):
        with pytest.raises(SpecError, match="True is not a quantity"):
            pod(requests={"nvidia.com/gpu": True})
        with pytest.raises(SpecError, match="not a Kubernetes quantity"):
            pod(requests={"memory": "lots"})
    assert pod(requests={"cpu": "1"}).requests.cpu_milli == 1000
    assert pod(requests={"cpu": "1m"}).requests.cpu_milli == 1


def test_app_containers_add_up() -> None:
    p = pod(
        containers=[container("a", cpu="1", memory="1Gi"), container("b", cpu="500m", memory="2Gi")]
    )
    assert (p.requests.cpu_milli, p.requests.memory_mib) == (1500, 3072)


def test_an_init_container_larger_than_the_app_sets_the_peak_per_resource() -> None:
    # max(app, init) resource by resource: cpu from the init container, memory from the app.
    p = pod(
        containers=[container(cpu="1", memory="2Gi")],
        initContainers=[container("init", cpu="4", memory="1Gi")],
    )
    assert (p.requests.cpu_milli, p.requests.memory_mib) == (4000, 2048)


@pytest.mark.parametrize(
    ("order", "cpu"),
    [
        # init-a alone 2; sidecar started (1); init-b runs beside it: 2 + 1 = 3; app 1 + 1 = 2.
        (["init-a", "sidecar", "init-b"], 3000),
        # sidecar first: both inits run beside it (3 each).
        (["sidecar", "init-a", "init-b"], 3000),
        # sidecar last: the inits run alone (2), then app + sidecar = 2.
        (["init-a", "init-b", "sidecar"], 2000),
    ],
)
def test_sidecars_count_for_the_init_containers_started_after_them(
    order: list[str], cpu: int
) -> None:
    made = {
        "init-a": container("init-a", cpu="2"),
        "init-b": container("init-b", cpu="2"),
        "sidecar": container("sidecar", policy="Always", cpu="1"),
    }
    p = pod(containers=[container(cpu="1")], initContainers=[made[n] for n in order])
    assert p.requests.cpu_milli == cpu


def test_sidecars_run_beside_the_app_containers() -> None:
    p = pod(
        containers=[container(cpu="1", memory="1Gi")],
        init_containers=[{"name": "s", "restart_policy": "Always", "requests": {"cpu": "250m"}}],
    )
    assert (p.requests.cpu_milli, p.requests.memory_mib) == (1250, 1024)


def test_pod_overhead_is_added() -> None:
    p = pod(requests={"cpu": "1", "memory": "1Gi"}, overhead={"cpu": "250m", "memory": "120Mi"})
    assert (p.requests.cpu_milli, p.requests.memory_mib) == (1250, 1144)


def test_limits_only_default_the_requests() -> None:
    p = pod(containers=[{"name": "c", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}])
    assert (p.requests.cpu_milli, p.requests.memory_mib) == (2000, 1024)


def test_a_resource_with_a_limit_and_no_request_is_requested_at_its_limit() -> None:
    # Kubernetes defaults per resource: the GPU (given in limits only, as usual) is requested.
    p = pod(
        containers=[
            {
                "name": "c",
                "resources": {
                    "requests": {"cpu": "1"},
                    "limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": 1},
                },
            }
        ]
    )
    assert p.requests == Resources(cpu_milli=1000, memory_mib=1024, gpu=1, pods=1)


def test_requests_and_containers_together_are_refused() -> None:
    with pytest.raises(SpecError, match="either requests or containers"):
        pod(requests={"cpu": "1"}, containers=[container(cpu="1")])


# ------------------------------------------------------------------ node affinity


def affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": t} for t in terms]
            }
        }
    }


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


@pytest.mark.parametrize(
    ("requirement", "labels", "matches"),
    [
        (expr("team", "In", "ds", "ml"), {"team": "ml"}, True),
        (expr("team", "In", "ds"), {"team": "ml"}, False),
        (expr("team", "In", "ds"), {}, False),
        (expr("team", "NotIn", "ds"), {"team": "ml"}, True),
        (expr("team", "NotIn", "ds"), {"team": "ds"}, False),
        (expr("team", "NotIn", "ds"), {}, True),  # an absent label is "not in"
        (expr("team", "Exists"), {"team": ""}, True),
        (expr("team", "Exists"), {}, False),
        (expr("team", "DoesNotExist"), {}, True),
        (expr("team", "DoesNotExist"), {"team": "ds"}, False),
        (expr("gen", "Gt", "4"), {"gen": "5"}, True),
        (expr("gen", "Gt", "4"), {"gen": "4"}, False),
        (expr("gen", "Gt", "4"), {"gen": "10"}, True),  # integers, not strings
        (expr("gen", "Gt", "4"), {"gen": "five"}, False),  # not an integer: never matches
        (expr("gen", "Gt", "4"), {"gen": "5.5"}, False),
        (expr("gen", "Gt", "4"), {}, False),
        (expr("gen", "Lt", "4"), {"gen": "3"}, True),
        (expr("gen", "Lt", "4"), {"gen": "-1"}, True),
        (expr("gen", "Lt", "4"), {"gen": "4"}, False),
        (expr("gen", "Lt", "4"), {"gen": "x"}, False),
    ],
)
def test_node_affinity_operators(
    requirement: dict[str, Any], labels: dict[str, str], matches: bool
) -> None:
    p = pod(affinity=affinity([requirement]))
    assert len(p.affinity) == 1
    assert p.affinity[0].matches(labels) is matches


def test_any_one_term_may_match_but_a_term_needs_all_its_requirements() -> None:
    p = pod(
        affinity=affinity(
            [expr("team", "In", "ds"), expr("gen", "Gt", "4")],
            [expr("team", "In", "ml")],
        )
    )
    assert any(t.matches({"team": "ds", "gen": "5"}) for t in p.affinity)
    assert not any(t.matches({"team": "ds", "gen": "3"}) for t in p.affinity)
    assert any(t.matches({"team": "ml"}) for t in p.affinity)


def test_preferred_affinity_does_not_constrain() -> None:
    pref = {"weight": 10, "preference": {"matchExpressions": [expr("team", "In", "ds")]}}
    p = pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [pref]}})
    assert p.affinity == ()
    # ...it only breaks ties among equal-cost pools.
    assert p.preferred == ((10, SelectorTerm((Requirement("team", "In", ("ds",)),))),)


@pytest.mark.parametrize(
    ("requirement", "field", "message"),
    [
        (expr("gen", "Gt", "four"), "values[0]", "Gt needs an integer"),
        (expr("gen", "Lt", "1", "2"), "values", "exactly one integer"),
        (expr("team", "In"), "values", "at least one value"),
        (expr("team", "Exists", "x"), "values", "takes no values"),
        (expr("team", "Like", "x"), "operator", "expected one of In, NotIn"),
    ],
)
def test_malformed_requirements_name_the_field(
    requirement: dict[str, Any], field: str, message: str
) -> None:
    e = error_of(doc({"name": "nb", "affinity": affinity([requirement])}))
    base = (
        "w.json: pods[0] (nb).affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0].matchExpressions[0]"
    )
    assert e.where == f"{base}.{field}"
    assert message in e.what


def test_match_fields_cannot_be_placed_on_a_new_node() -> None:
    aff = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
                ]
            }
        }
    }
    with pytest.raises(SpecError, match="matchFields"):
        pod(affinity=aff)


# ------------------------------------------------------------------ tolerations


GPU = Taint("nvidia.com/gpu", "true", NO_SCHEDULE)
DEDICATED = Taint("dedicated", "ml", NO_EXECUTE)
SOFT = Taint("spot", "", PREFER_NO_SCHEDULE)


@pytest.mark.parametrize(
    ("toleration", "taint", "tolerated"),
    [
        ({"operator": "Exists"}, GPU, True),  # empty key + Exists tolerates everything
        ({"operator": "Exists"}, DEDICATED, True),
        ({"operator": "Exists", "effect": NO_SCHEDULE}, GPU, True),
        ({"operator": "Exists", "effect": NO_SCHEDULE}, DEDICATED, False),  # effect must match
        ({"key": "nvidia.com/gpu", "operator": "Exists"}, GPU, True),  # any value
        ({"key": "nvidia.com/gpu", "value": "true"}, GPU, True),  # Equal is the default
        ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "false"}, GPU, False),
        ({"key": "dedicated", "value": "ml", "effect": NO_EXECUTE}, DEDICATED, True),
        ({"key": "dedicated", "value": "ml", "effect": NO_SCHEDULE}, DEDICATED, False),
        ({"key": "other", "operator": "Exists"}, DEDICATED, False),
        ({"key": "spot", "operator": "Exists", "effect": PREFER_NO_SCHEDULE}, SOFT, True),
    ],
)
def test_tolerations(toleration: dict[str, Any], taint: Taint, tolerated: bool) -> None:
    (t,) = pod(tolerations=[toleration]).tolerations
    assert t.tolerates(taint) is tolerated


def test_toleration_defaults() -> None:
    assert Toleration().operator == "Equal"
    assert not Toleration().tolerates(GPU)  # empty key with Equal tolerates nothing


@pytest.mark.parametrize(
    ("toleration", "field", "message"),
    [
        ({"key": "k", "operator": "Exists", "value": "v"}, "value", "takes no value"),
        ({"value": "v"}, "key", "empty key needs operator Exists"),
        ({"key": "k", "operator": "Like"}, "operator", "Equal or Exists"),
        ({"key": "k", "effect": "NoRun"}, "effect", "expected one of"),
    ],
)
def test_malformed_tolerations_name_the_field(
    toleration: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(SpecError) as info:
        pod(tolerations=[{"key": "ok", "operator": "Exists"}, toleration])
    assert info.value.where == f"tolerations[1].{field}"
    assert message in info.value.what


# ------------------------------------------------------------------ arch and zone


def test_pods_are_amd64_unless_they_say_otherwise() -> None:
    assert pod().arch == AMD64
    assert pod(arch="arm64").arch == ARM64


def test_a_pod_that_selects_an_architecture_leaves_it_to_the_labels() -> None:
    assert pod(node_selector={LABEL_ARCH: "arm64"}).arch is None
    assert pod(affinity=affinity([expr(LABEL_ARCH, "In", "amd64", "arm64")])).arch is None


def test_an_unknown_arch_is_refused() -> None:
    with pytest.raises(SpecError, match="arch"):
        pod(arch="riscv64")


def test_a_zone_in_the_node_selector_becomes_the_pods_zone() -> None:
    p = pod(node_selector={LABEL_ZONE: "us-east-1b", "team": "ds"})
    assert p.zone == "us-east-1b"
    assert p.node_selector == (("team", "ds"),)


def test_a_zone_that_contradicts_the_node_selector_is_refused() -> None:
    with pytest.raises(SpecError, match="contradicts"):
        pod(zone="us-east-1a", node_selector={LABEL_ZONE: "us-east-1b"})


def test_gpu_models_and_capacity_types_are_normalised() -> None:
    p = pod(gpu_models=["a10g", "T4", "A10G"], capacity_types=["spot", "on-demand", "spot"])
    assert p.gpu_models == ("A10G", "T4")
    assert p.capacity_types == ("on-demand", "spot")


def test_pods_with_equal_constraints_are_interchangeable() -> None:
    a = parse_pod({"name": "a", "requests": {"cpu": "1"}, "tolerations": [{"operator": "Exists"}]})
    b = parse_pod(
        {"name": "b", "requests": {"cpu": "1000m"}, "tolerations": [{"operator": "Exists"}]}
    )
    assert a.constraints() == b.constraints()
    assert a.constraints() != pod(requests={"cpu": "1"}).constraints()


def test_selector_terms_built_by_hand_agree_with_parsed_ones() -> None:
    parsed = pod(affinity=affinity([expr("team", "In", "ds")])).affinity
    assert parsed == (SelectorTerm((Requirement("team", "In", ("ds",)),)),)


# ------------------------------------------------------------------ malformed documents


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        (
            doc({"name": "a"}, {"name": "nb", "requests": {"memory": "4 GB"}}),
            "w.json: pods[1] (nb).requests.memory",
            "'4 GB' is not a Kubernetes quantity",
        ),
        (
            doc({"name": "nb", "requests": {"cpu": "-1"}}),
            "w.json: pods[0] (nb).requests.cpu",
            "negative",
        ),
        (
            doc({"name": "nb", "requests": {"hugepages-2Mi": "1Gi"}}),
            "w.json: pods[0] (nb).requests.hugepages-2Mi",
            "unknown resource",
        ),
        (
            doc({"name": "nb", "requests": {"nvidia.com/gpu": "0.5"}}),
            "w.json: pods[0] (nb).requests.nvidia.com/gpu",
            "whole",
        ),
        (
            doc(
                {
                    "name": "nb",
                    "containers": [{"name": "c", "resources": {"limits": {"cpu": "2x"}}}],
                }
            ),
            "w.json: pods[0] (nb).containers[0].resources.limits.cpu",
            "not a Kubernetes quantity",
        ),
        (
            doc({"name": "nb", "initContainers": [{"name": "i", "requests": {"memory": "Gi"}}]}),
            "w.json: pods[0] (nb).initContainers[0].requests.memory",
            "not a Kubernetes quantity",
        ),
        (doc({"name": "a"}, {"requests": {}}), "w.json: pods[1].name", "is required"),
        (doc({"name": "a"}, {"name": "a"}), "w.json: pods[1]", "duplicate pod name 'default/a'"),
        (
            doc({"name": "nb", "capacity_types": ["spots"]}),
            "w.json: pods[0] (nb).capacity_types[0]",
            "expected one of",
        ),
        ({"version": 2, "pods": []}, "w.json: version", "expected 1"),
        ({"version": 1, "pods": {}}, "w.json: pods", "expected a list of pods"),
        ([], "w.json", "expected an object"),
        (
            doc(pools=[{"name": "p", "instance_type": "m5.large", "capacity_type": "spots"}]),
            "w.json: pools[0] (p).capacity_type",
            "expected one of",
        ),
        (
            doc(
                pools=[{"name": "p", "instance_type": "m5.large", "max_size": 1, "current_size": 3}]
            ),
            "w.json: pools[0] (p).current_size",
            "within min_size 0 and max_size 1",
        ),
        (
            doc(pools=[{"name": "p", "instance_type": "m5.large", "taints": ["dedicated"]}]),
            "w.json: pools[0] (p).taints[0]",
            "key=value:Effect",
        ),
        (
            doc(pools=[{"name": "p", "instance_types": []}]),
            "w.json: pools[0] (p).instance_types",
            "at least one instance type",
        ),
        (
            doc(
                pools=[
                    {"name": "p", "instance_type": "m5.large"},
                    {"name": "p", "instance_type": "c5.large"},
                ]
            ),
            "w.json: pools[1]",
            "duplicate pool name 'p'",
        ),
        (
            doc(
                pools=[
                    {"name": "p", "instance_type": "m5.large", "allocatable": {"memory": "lots"}}
                ]
            ),
            "w.json: pools[0] (p).allocatable.memory",
            "not a Kubernetes quantity",
        ),
    ],
)
def test_malformed_input_names_the_file_the_entry_and_the_field(
    data: Any, where: str, message: str
) -> None:
    e = error_of(data)
    assert e.where == where
    assert message in e.what
    assert str(e) == f"{where}: {e.what}"


def test_a_misspelt_pod_field_is_caught_by_the_schema() -> None:
    e = error_of(doc({"name": "a"}, {"name": "nb", "node_selectr": {"team": "ds"}}))
    assert e.where == "w.json: pods[1] (nb)"
    assert "unknown field" in e.what and "node_selectr" in e.what


def test_a_misspelt_pool_field_is_caught_by_the_schema() -> None:
    e = error_of(doc(pools=[{"name": "p", "instance_type": "m5.large", "maxsize": 3}]))
    assert e.where == "w.json: pools[0] (p)"
    assert "unknown field" in e.what and "maxsize" in e.what


def test_a_misspelt_resource_name_is_an_unknown_resource() -> None:
    e = error_of(doc({"name": "nb", "requests": {"memroy": "1Gi"}}))
    assert e.where == "w.json: pods[0] (nb).requests.memroy"
    assert "unknown resource" in e.what


def test_pods_of_the_same_name_in_different_namespaces_are_distinct() -> None:
    w = parse_workload(doc({"name": "a", "namespace": "x"}, {"name": "a", "namespace": "y"}))
    assert [p.key for p in w.pods] == ["x/a", "y/a"]


def test_a_document_without_pools_leaves_them_to_the_catalog() -> None:
    assert parse_workload(doc({"name": "a"})).pools is None
    assert parse_workload(doc({"name": "a"}, pools=[])).pools == ()


# ------------------------------------------------------------------ repeated pod entries
# A trace repeats a few kinds of pod thousands of times; an entry equal to an earlier one
# but for its name, arrival and duration is read from the earlier one's spec.


def test_a_document_of_repeated_pods_reads_as_each_pod_alone() -> None:
    gpu = {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 1}
    raws = [
        {"name": "a", "requests": gpu, "annotations": {"q": "LS"}, "arrival_s": 0},
        {"name": "b", "requests": dict(gpu), "annotations": {"q": "LS"}, "arrival_s": 5.5,
         "duration_s": 60},
        {"name": "c", "requests": {**gpu, "nvidia.com/gpu": 2}, "annotations": {"q": "LS"}},
        {"name": "d", "requests": gpu, "annotations": {"q": "BE"}, "duration_s": None},
        {"name": "e", "requests": gpu, "annotations": {"q": "LS"}, "namespace": "x"},
        {"name": "f", "requests": gpu, "annotations": {"q": "LS"}, "priority": 7},
        {"name": "g", "requests": gpu, "tolerations": [{"key": "k", "operator": "Exists"}]},
        {"name": "h", "requests": gpu, "tolerations": [{"key": "j", "operator": "Exists"}]},
        {"name": "i", "requests": gpu, "annotations": {"q": "LS"}, "arrival_s": 9},
    ]
    assert parse_workload(doc(*raws)).pods == tuple(parse_pod(r) for r in raws)


@pytest.mark.parametrize(
    ("first", "then", "where"),
    [
        # Equal in Python (1 == True), not in the format: a bool is no quantity or priority.
        ({"requests": {"nvidia.com/gpu": 1}}, {"requests": {"nvidia.com/gpu": True}},
         "pods[1] (b).requests.nvidia.com/gpu"),
        ({"priority": 1}, {"priority": True}, "pods[1] (b).priority"),
    ],
)
def test_a_pod_equal_to_an_earlier_one_only_as_python_compares_is_read_for_itself(
    first: dict[str, Any], then: dict[str, Any], where: str
) -> None:
    e = error_of(doc({"name": "a", **first}, {"name": "b", **then}))
    assert e.where == f"w.json: {where}"


@pytest.mark.parametrize(
    "own",
    [
        {"name": "Not_A_Name"},
        {"name": ""},
        {"name": "b", "arrival_s": -1},
        {"name": "b", "arrival_s": "5"},
        {"name": "b", "duration_s": True},
        {"name": "b", "arrival_s": -1, "duration_s": "x"},
        {"name": "b", "arrival_s": None},  # the parser reads it as 0; the schema refuses it
        {"arrival_s": 3},
    ],
)
def test_a_repeated_pod_has_its_own_fields_checked_as_when_it_is_alone(own: dict[str, Any]) -> None:
    rest = {"requests": {"cpu": "1"}, "annotations": {"q": "LS"}}
    alone = error_of(doc({**rest, **own}))
    repeated = error_of(doc({"name": "a", **rest}, {**rest, **own}))
    assert repeated.where == alone.where.replace("pods[0]", "pods[1]")
    assert repeated.what == alone.what


NAMES = ["a", "a.b-c", "", "A", "-a", "a" * 300, 7, True, None, {"n": 1}]
TIMES = [0, 2.5, 86400, 10**9, -1, -0.5, 1e300, 10**400, True, False, "5", None, [1]]


def test_the_parser_accepts_no_own_field_left_out_of_a_shape_that_the_schema_refuses() -> None:
    # What lets the schema check only the pods that are not repeats (scaler.inputs): the
    # own fields a repeat does not share with the pod it repeats, once parsed, pass the
    # schema too. (A null arrival passes the parser and not the schema: it stays in the
    # shape, so the schema sees the first pod with one.)
    from scaler.inputs import _fast_validator

    checked = 0
    for name in NAMES:
        for key in ("arrival_s", "duration_s"):
            for value in TIMES:
                raw = {"name": name, key: value}
                if pod_shape(raw) != pod_shape({}):
                    continue
                try:
                    parse_pod(raw)
                except SpecError:
                    continue
                _fast_validator()(doc(raw))
                checked += 1
    assert checked == 2 * 2 * 3  # the two good names, with the three good times


@pytest.mark.parametrize(
    "document",
    [
        doc({"name": "a"}),
        {"version": 2, "pods": []},
        {"version": "1", "pods": []},
        {"version": 1.0, "pods": []},
        {"version": True, "pods": []},
        doc({"name": "a", "requests": {"cpu": "2", "memory": "4Gi"}, "arch": "arm64"}),
        doc({"name": "a", "arch": "sparc"}),
        doc({"name": "a", "node_selectr": {}}),
        doc({"name": "a"}, pools=[{"name": "p", "instance_types": ["m5.large"]}]),
        doc({"name": "a"}, pools=[{"name": "p", "instance_types": ["m5.large"], "size": 1}]),
    ],
)
def test_the_fast_validator_passes_exactly_what_the_schema_passes(document: Any) -> None:
    # It is compiled from a rewritten schema (const as a one-value enum, no detailed
    # exceptions): its verdict must still be the schema's.
    import fastjsonschema
    import jsonschema

    from scaler.inputs import _fast_validator, workload_schema

    expected = jsonschema.Draft202012Validator(workload_schema()).is_valid(document)
    try:
        _fast_validator()(document)
    except fastjsonschema.JsonSchemaValueException:
        passed = False
    else:
        passed = True
    assert passed == expected


# ------------------------------------------------------------------ files


def test_load_workload_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(doc({"name": "nb", "requests": {"cpu": "2", "memory": "4Gi"}})))
    (p,) = load_workload(path).pods
    assert p.requests == Resources(cpu_milli=2000, memory_mib=4096, pods=1)


def test_invalid_json_names_the_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "pods.json"
    path.write_text('{\n  "version": 1,\n  "pods": [\n    {"name": "a",}\n  ]\n}\n')
    with pytest.raises(InputError) as info:
        load_workload(path)
    assert info.value.where == str(path)
    assert "not valid JSON" in info.value.what
    assert "line 4 column 18" in info.value.what


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(InputError, match="no such file") as info:
        load_workload(path)
    assert info.value.where == str(path)


def test_errors_in_a_file_carry_its_path(tmp_path: Path) -> None:
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(doc({"name": "a"}, {"name": "nb", "requests": {"memory": "4 GB"}})))
    with pytest.raises(InputError) as info:
        load_workload(path)
    assert info.value.where == f"{path}: pods[1] (nb).requests.memory"


def test_labels_priority_spread_and_zone_pod_affinity_are_read_from_a_pod_entry() -> None:
    sel = {"matchLabels": {"app": "web"}}
    p = pod(
        labels={"app": "web"},
        priority=-5,
        topologySpreadConstraints=[
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
             "whenUnsatisfiable": "DoNotSchedule", "labelSelector": sel},
            # Soft, or over hostnames: left to kube-scheduler.
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
             "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": sel},
        ],
        affinity={
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": sel},
                {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": sel},
            ]},
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "failure-domain.beta.kubernetes.io/zone",
                 "labelSelector": {"matchLabels": {"app": "db"}}, "namespaces": ["data"]},
            ]},
        },
    )  # fmt: skip
    web = (Requirement("app", "In", ("web",)),)
    assert p.labels == (("app", "web"),) and p.priority == -5
    assert [(s.max_skew, s.selector) for s in p.zone_spread] == [(1, web)]
    assert p.one_per_node
    assert [t.selector for t in p.zone_anti_affinity] == [web]
    assert [(t.selector, t.namespaces) for t in p.zone_affinity] == [
        ((Requirement("app", "In", ("db",)),), ("data",))
    ]


def test_a_bad_spread_or_priority_names_its_field() -> None:
    with pytest.raises(SpecError, match=r"topologySpreadConstraints\[0\]\.maxSkew"):
        pod(topologySpreadConstraints=[{"maxSkew": 0, "topologyKey": LABEL_ZONE,
                                        "whenUnsatisfiable": "DoNotSchedule"}])
    with pytest.raises(SpecError, match="priority"):
        pod(priority="high")


def test_names_and_keys_seen_valid_before_do_not_let_an_invalid_one_through() -> None:
    # Namespaces and annotation and label keys are checked once per distinct value: a pod
    # that repeats a valid one parses, and a bad one after many good ones still fails.
    good = {"name": "a", "namespace": "team-1", "annotations": {"example.com/k": "v"},
            "labels": {"app": "x"}, "requests": {"cpu": "1"}}
    assert parse_pod(good).namespace == parse_pod({**good, "name": "b"}).namespace == "team-1"
    with pytest.raises(SpecError, match="not a namespace name"):
        parse_pod({**good, "namespace": "Team_1"})
    with pytest.raises(SpecError, match="not a valid annotation key"):
        parse_pod({**good, "annotations": {"example.com/k": "v", "bad key": "v"}})
    with pytest.raises(SpecError, match="not a valid label key"):
        parse_pod({**good, "labels": {"app": "x", "-bad": "x"}})
    assert parse_pod(good).annotations == (("example.com/k", "v"),)


def test_plain_pod_times_read_as_the_worded_checks_read_them() -> None:
    # _pod_times takes plain in-range numbers as they are; whatever it takes must read as
    # the checks that word errors read it, and whatever else must go to those checks.
    times = [*TIMES, -0.0, float("nan"), float("inf"), MAX_TIME_S, MAX_TIME_S + 1,
             int(MAX_TIME_S), int(MAX_TIME_S) + 1]

    def read(
        fn: Callable[[dict[str, Any]], tuple[float, float | None]], raw: dict[str, Any]
    ) -> object:
        try:
            return fn(raw)
        except SpecError as e:
            return e.where, e.what

    for arrival in [*times, "absent"]:
        for duration in [*times, "absent"]:
            raw = {k: v for k, v in (("arrival_s", arrival), ("duration_s", duration))
                   if v != "absent"}
            assert repr(read(_pod_times, raw)) == repr(read(_checked_pod_times, raw)), raw


def test_a_repeated_pods_own_fields_read_exactly_as_when_it_is_alone() -> None:
    # Repeats with plain own fields are read without the checks that word errors: every
    # combination must still give the same spec (or the same error) as the pod alone.
    rest = {"requests": {"cpu": "1"}}
    times = [*TIMES, -0.0, 0.0, float("nan"), float("inf"), MAX_TIME_S, MAX_TIME_S + 1,
             int(MAX_TIME_S), int(MAX_TIME_S) + 1]

    def read(*raws: dict[str, Any]) -> PodSpec | tuple[str, str]:
        try:
            return parse_workload(doc(*raws)).pods[-1]
        except SpecError as e:
            return e.where.replace("pods[1]", "pods[0]"), e.what

    specs = 0
    for name in NAMES:
        for arrival in times:
            for duration in (None, 60, 2.5, -0.0, 10**400, float("nan"), MAX_TIME_S + 1):
                own = {"name": name, "arrival_s": arrival, "duration_s": duration}
                alone = read({**rest, **own})
                repeated = read({"name": "first", **rest}, {**rest, **own})
                assert repr(repeated) == repr(alone), own
                specs += isinstance(alone, PodSpec)
    assert specs > 20
