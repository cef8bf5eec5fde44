"""Kubernetes identifiers are checked as the API server checks them: anchored at both ends."""

from __future__ import annotations

import pytest

from scaler.adapters.aws.tags import TagError, parse_node_template, valid_label_key
from scaler.core.model import SpecError
from scaler.core.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
)
from scaler.core.spec import parse_pod, parse_pool
from scaler.importers import is_dns_label

LABEL = "k8s.io/cluster-autoscaler/node-template/label/"


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (is_label_value, ["", "gpu", "a.b_c-d", "x" * 63], ["gpu\n", "-a", "a-", "x" * 64, "a b"]),
        (
            is_qualified_name,
            ["nvidia.com/gpu", "a", "A_b.C", "example.com/" + "x" * 63],
            ["a\n", "nvidia.com/gpu\n", "/a", "a/", "a/b/c", "Example.com/a", "x" * 64],
        ),
        (is_dns1123_label, ["default", "a-1", "x" * 63], ["default\n", "A", "a.b", "x" * 64, ""]),
        (
            is_dns1123_subdomain,
            ["pod-1", "a.b.c", "x" * 253],
            ["pod-1\n", "a..b", "a.-b", "-a", "x" * 254, ""],
        ),
    ],
)
def test_checks_take_what_the_api_server_takes_and_nothing_more(check, good, bad):
    assert all(check(text) for text in good), [t for t in good if not check(t)]
    assert not any(check(text) for text in bad), [t for t in bad if check(t)]


def test_a_trailing_newline_is_refused_where_python_dollar_once_let_it_through():
    assert not valid_label_key("team\n")
    assert not is_dns_label("default\n")
    with pytest.raises(TagError, match="not a valid label value"):
        parse_node_template({LABEL + "team": "ml\n"})
    with pytest.raises(TagError, match="not a valid taint value"):
        parse_node_template({"k8s.io/cluster-autoscaler/node-template/taint/gpu": "true\n:NoSchedule"})


@pytest.mark.parametrize(
    ("pod", "field"),
    [
        ({"name": "nb\n"}, "name"),
        ({"name": "nb", "namespace": "Team"}, "namespace"),
        ({"name": "nb", "node_selector": {"team": "ml\n"}}, "node_selector.team"),
        ({"name": "nb", "node_selector": {"bad key": "ml"}}, "node_selector.bad key"),
        ({"name": "nb", "tolerations": [{"key": "a\n", "operator": "Exists"}]}, "tolerations[0].key"),
        ({"name": "nb", "annotations": {"a b": "x"}}, "annotations.a b"),
        ({"name": "nb", "zone": "us-east-1a\n"}, "zone"),
        (
            {
                "name": "nb",
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "t", "operator": "In", "values": ["a\n"]}]}
                            ]
                        }
                    }
                },
            },
            "matchExpressions[0].values[0]",
        ),
    ],
)
def test_workload_identifiers_are_checked_naming_the_field(pod, field):
    with pytest.raises(SpecError) as e:
        parse_pod(pod)
    assert field in e.value.where and "\n" not in str(e.value).replace("\\n", "")


def test_a_pool_name_must_be_a_label_value_since_scaler_writes_it_as_one():
    with pytest.raises(SpecError, match="name: 'big\\\\n' is not a valid label value"):
        parse_pool({"name": "big\n", "instance_type": "m5.large"})
    with pytest.raises(SpecError, match=r"labels\.team"):
        parse_pool({"name": "big", "instance_type": "m5.large", "labels": {"team": "a b"}})
    assert parse_pool({"name": "m5.large-spot", "instance_type": "m5.large"}).name == "m5.large-spot"
