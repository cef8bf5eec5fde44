"""Admission reviews (scaler.adapters.kube.webhook): any body is read or refused with
BadReview in one line; any review is answered allowed, as JSON the API server can read."""

from __future__ import annotations

import json

import anyio
from hypothesis import example, given
from hypothesis import strategies as st

from scaler.adapters.kube.webhook import MAX_JSON_DEPTH, BadReview, admit, read_review
from scaler.core.model import PodSpec
from tests.fuzz.strategies import json_values, near_names, one_line, quantities

TIER = ("m5a-large", "m5-large")


async def choose(pod: PodSpec) -> tuple[str, ...]:
    return TIER


def nested(depth: int) -> bytes:
    return b'{"request": ' * depth + b"{}" + b"}" * depth


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@example(nested(MAX_JSON_DEPTH + 1))
@example(b"[" * 100_000)  # json.loads raised RecursionError here: a 500 with a traceback
@example(b'"\\\\" [[[[')
@example(b'{"a": NaN}')
def test_any_body_is_a_document_or_a_one_line_bad_review(body):
    try:
        read_review(body)
    except BadReview as e:
        assert one_line(e)


def test_nesting_up_to_the_bound_is_read():
    assert read_review(nested(MAX_JSON_DEPTH - 1))["request"]


pod_like = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.fixed_dictionaries({}, optional={
            "name": near_names, "namespace": near_names, "generateName": near_names,
            "annotations": st.dictionaries(near_names, near_names, max_size=2) | json_values,
            "ownerReferences": st.lists(st.fixed_dictionaries({"kind": st.sampled_from(
                ["DaemonSet", "ReplicaSet"]), "name": near_names}), max_size=1) | json_values,
        }) | json_values,
        "spec": st.fixed_dictionaries({}, optional={
            "containers": st.lists(st.fixed_dictionaries({"name": near_names, "resources":
                st.fixed_dictionaries({}, optional={"requests": st.dictionaries(st.sampled_from(
                    ["cpu", "memory", "nvidia.com/gpu", "x"]), quantities, max_size=3)})}),
                max_size=2) | json_values,
            "nodeSelector": st.dictionaries(near_names, near_names, max_size=2) | json_values,
            "affinity": json_values,
            "tolerations": json_values,
            "nodeName": near_names,
        }) | json_values,
    },
)  # fmt: skip
reviews = st.fixed_dictionaries(
    {
        "apiVersion": st.just("admission.k8s.io/v1") | json_values,
        "request": st.fixed_dictionaries(
            {
                "uid": st.text(max_size=8) | json_values,
                "operation": st.sampled_from(["CREATE", "UPDATE"]),
                "kind": st.just({"kind": "Pod"}) | json_values,
                "resource": st.just({"resource": "pods"}) | json_values,
                "object": pod_like | json_values,
            },
            optional={"namespace": near_names, "subResource": json_values},
        )
        | json_values,
    }
)


@given(reviews | json_values)
def test_any_review_is_answered_allowed_with_json_the_api_server_can_read(review):
    answer = anyio.run(admit, review, choose)
    response = answer["response"]
    assert response["allowed"] is True and isinstance(response["uid"], str)
    assert isinstance(answer["apiVersion"], str)
    json.dumps(answer, allow_nan=False)  # no NaN or Infinity reaches the API server
