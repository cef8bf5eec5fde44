"""Workload and trace files (scaler.core.spec, scaler.inputs, scaler.importers): a document
either loads, or raises InputError / TraceFormatError in one line naming the field."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from scaler.core.settings import MAX_TIME_S
from scaler.importers import (
    DLRM_COLUMNS,
    OPENB_COLUMNS,
    TraceFormatError,
    import_dlrm,
    import_openb,
)
from scaler.inputs import InputError, load_workload, parse_workload_document, read_json
from tests.fuzz.strategies import (
    finite_numbers,
    json_values,
    near_names,
    one_line,
    quantities,
    times,
)

resources = st.dictionaries(
    st.sampled_from(["cpu", "memory", "nvidia.com/gpu", "ephemeral-storage", "pods", "hugepages-2Mi"]),
    quantities,
    max_size=3,
)
tolerations = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "key": near_names,
            "operator": st.sampled_from(["Equal", "Exists", "In", ""]),
            "value": near_names,
            "effect": st.sampled_from(["NoSchedule", "NoExecute", "Bogus", ""]),
        },
    ),
    max_size=2,
)
affinity = st.fixed_dictionaries(
    {
        "nodeAffinity": st.fixed_dictionaries(
            {
                "requiredDuringSchedulingIgnoredDuringExecution": st.fixed_dictionaries(
                    {
                        "nodeSelectorTerms": st.lists(
                            st.fixed_dictionaries(
                                {
                                    "matchExpressions": st.lists(
                                        st.fixed_dictionaries(
                                            {
                                                "key": near_names,
                                                "operator": st.sampled_from(
                                                    ["In", "NotIn", "Exists", "Gt", "Lt", "Eq"]
                                                ),
                                                "values": st.lists(near_names, max_size=2),
                                            }
                                        ),
                                        max_size=2,
                                    )
                                }
                            ),
                            max_size=2,
                        )
                    }
                )
            }
        )
    }
)
pods = st.fixed_dictionaries(
    {"name": near_names},
    optional={
        "namespace": near_names,
        "requests": resources,
        "containers": st.lists(
            st.fixed_dictionaries({}, optional={"resources": st.fixed_dictionaries(
                {}, optional={"requests": resources, "limits": resources})}),
            max_size=2,
        ),
        "overhead": resources,
        "arrival_s": times,
        "duration_s": times | st.none(),
        "node_selector": st.dictionaries(near_names, near_names, max_size=2),
        "tolerations": tolerations,
        "affinity": affinity,
        "zone": near_names,
        "arch": st.sampled_from(["amd64", "arm64", "x86"]),
        "gpu_models": st.lists(near_names, max_size=2),
        "capacity_types": st.lists(st.sampled_from(["spot", "on-demand", "reserved"]), max_size=2),
        "annotations": st.dictionaries(near_names, near_names, max_size=2),
    },
)  # fmt: skip
pools = st.fixed_dictionaries(
    {"name": near_names, "instance_type": st.sampled_from(["m5.large", "p3.2xlarge", "nope"])},
    optional={
        "capacity_type": st.sampled_from(["spot", "on-demand", "x"]),
        "min_size": st.integers(-2, 5),
        "max_size": st.integers(-2, 5) | st.none(),
        "labels": st.dictionaries(near_names, near_names, max_size=2),
        "taints": st.lists(st.text(max_size=12) | st.just("gpu=true:NoSchedule"), max_size=2),
        "price_usd_per_hour": times,
        "ephemeral_storage_gib": times,
        "idle_timeout_s": times,
        "allocatable": resources,
    },
)  # fmt: skip
documents = st.fixed_dictionaries(
    {"version": st.sampled_from([1, 1, 1, 2]), "pods": st.lists(pods, max_size=3)},
    optional={"pools": st.lists(pools, max_size=2), "region": near_names},
)


def _check(doc: object) -> None:
    try:
        workload = parse_workload_document(doc, source="fuzz.json")
    except InputError as e:
        assert one_line(e) and str(e).startswith("fuzz.json"), str(e)
        return
    assert finite_numbers(workload.pods) and finite_numbers(workload.pools)
    for pod in workload.pods:
        assert 0 <= pod.arrival_s <= MAX_TIME_S
        assert pod.duration_s is None or 0 <= pod.duration_s <= MAX_TIME_S


@given(documents)
# Found by this test: the pod's name, quoted in every error about the pod, split the line.
@example({"version": 1, "pods": [{"name": "ml\n", "requests": {"cpu": "x"}}]})
def test_near_valid_workloads_load_or_fail_in_one_line_naming_the_field(doc):
    _check(doc)


@given(json_values)
def test_any_json_value_as_a_workload_loads_or_fails_in_one_line(doc):
    _check(doc)


@given(st.text(max_size=60) | st.sampled_from(['{"version": 1, "pods": [NaN]}', "[" * 5000, "1e999"]))
def test_any_text_as_a_file_is_json_or_one_line_input_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "w.json"
        path.write_text(text, encoding="utf-8")
        try:
            read_json(path)
        except InputError as e:
            assert one_line(e) and str(e).startswith(str(path))
        try:
            load_workload(path)
        except InputError as e:
            assert one_line(e)


cells = st.sampled_from(["", "0", "1", "1000", "-5", "1e400", "nan", "inf", "abc", "3.5", "1e18",
                         "V100M16", "P100,T4", "LS", "A__b..c", "-.-", "12345678901234567890"])  # fmt: skip


@given(st.sampled_from([(import_openb, OPENB_COLUMNS), (import_dlrm, DLRM_COLUMNS)]),
       st.lists(st.lists(cells | st.text(max_size=6), min_size=8, max_size=9), max_size=4))  # fmt: skip
# Found by this test: a lifetime of 1e400 s raised decimal.InvalidOperation (now skipped as
# past the format's time bound), and a resource of 1e400 made a pod no parser could read.
@example((import_dlrm, DLRM_COLUMNS), [["a", "w", "app", "1", "0", "1", "0", "1e400"]])
@example((import_openb, OPENB_COLUMNS), [["a", "1e400", "1", "0", "0", "", "LS", "0", "5"]])
def test_importers_make_valid_workloads_or_fail_naming_line_and_column(importer, rows):
    function, columns = importer
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(columns)
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "trace.csv"
        path.write_text(text.getvalue(), encoding="utf-8")
        try:
            result = function(path)
        except TraceFormatError as e:
            assert one_line(e) and str(path) in str(e), str(e)
            return
    # Whatever an importer writes must load again (and so be valid for the simulator).
    document = json.loads(json.dumps(result.document))
    parse_workload_document(document, source="imported.json")
