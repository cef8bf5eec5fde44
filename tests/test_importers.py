"""``scaler trace import``: Alibaba openb and DLRM CSVs -> workload files.

Small CSV slices are written by each test (hand-checked mappings); the shared data is only
read by the last tests, which skip without ../shared/data next to the repository.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scaler.cli import main
from scaler.importers import TraceFormatError, import_dlrm, import_openb
from scaler.inputs import load_workload

REPO = Path(__file__).resolve().parents[1]
SHARED_TRACES = REPO.parent / "shared" / "data" / "traces"

OPENB_HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time"
)
DLRM_HEADER = (
    "instance_sn,role,app_name,cpu_request,cpu_limit,gpu_request,gpu_limit,rdma_request,"
    "rdma_limit,memory_request,memory_limit,disk_request,disk_limit,max_instance_per_node,"
    "creation_time,scheduled_time,deletion_time"
)


def write_csv(tmp_path: Path, header: str, *rows: str, name: str = "slice.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def openb_row(
    name: str = "openb-pod-0001",
    *,
    cpu: str = "6000",
    mem: str = "12288",
    num_gpu: str = "1",
    gpu_milli: str = "1000",
    spec: str = "",
    qos: str = "LS",
    created: str = "100",
    deleted: str = "400",
) -> str:
    return f"{name},{cpu},{mem},{num_gpu},{gpu_milli},{spec},{qos},Running,{created},{deleted},{created}"


def dlrm_row(
    sn: str = "instance_7",
    *,
    role: str = "HN",
    app: str = "app_3",
    cpu: str = "12",
    gpu: str = "1",
    mem: str = "120.0",
    created: str = "610.0",
    deleted: str = "910.5",
) -> str:
    return (
        f"{sn},{role},{app},{cpu},{cpu},{gpu},{gpu},25,25,{mem},{mem},640.0,800.0,8,"
        f"{created},{created},{deleted}"
    )


def only_pod(result: Any) -> dict[str, Any]:
    (pod,) = result.document["pods"]
    pod_dict: dict[str, Any] = pod
    return pod_dict


# ----------------------------------------------------------------------------- openb


def test_openb_row_maps_to_requests_times_and_qos(tmp_path: Path) -> None:
    csv = write_csv(tmp_path, OPENB_HEADER, openb_row(gpu_milli="460", qos="BE"))
    result = import_openb(csv)
    assert only_pod(result) == {
        "name": "openb-pod-0001",
        "namespace": "openb",
        "requests": {"cpu": "6000m", "memory": "12288Mi", "nvidia.com/gpu": 1},
        "annotations": {"alibaba.com/qos": "BE"},
        "arrival_s": 100,
        "duration_s": 300,
    }
    doc = result.document
    assert (doc["version"], doc["region"]) == (1, "us-east-1")
    assert "slice.csv" in doc["description"] and "Weng et al." in doc["description"]
    assert "research/study use" in doc["description"]


@pytest.mark.parametrize(
    ("gpu_spec", "models"),
    [
        ("", None),
        ("V100M16", ["V100"]),
        ("V100M16|V100M32", ["V100"]),
        ("V100M16|V100M32|V100M32", ["V100"]),
        ("P100", ["V100"]),
        ("P100|V100M16", ["V100"]),
        ("T4", ["T4"]),
        ("A10|T4", ["A10G", "T4"]),
        ("P100|T4|V100M16|V100M32", ["T4", "V100"]),
        ("A100", ["A100"]),
        ("G2", None),  # undisclosed model: any GPU
        ("G3", None),
        ("G2|P100|T4|V100M16|V100M32", None),  # one unknown model in the list means any
        ("A10|G2|T4|V100M16|V100M32", None),
        ("H800", None),
    ],
)
def test_openb_gpu_spec_maps_to_aws_gpu_models(
    tmp_path: Path, gpu_spec: str, models: list[str] | None
) -> None:
    pod = only_pod(import_openb(write_csv(tmp_path, OPENB_HEADER, openb_row(spec=gpu_spec))))
    assert pod.get("gpu_models") == models


@pytest.mark.parametrize(
    ("num_gpu", "gpu_milli", "gpus"),
    [
        ("1", "1000", 1),
        ("1", "230", 1),  # a GPU share still needs a whole GPU
        ("0", "500", 1),
        ("2", "1000", 2),
        ("8", "1000", 8),
        ("0", "0", None),
    ],
)
def test_openb_gpus_are_whole_and_shares_round_up(
    tmp_path: Path, num_gpu: str, gpu_milli: str, gpus: int | None
) -> None:
    row = openb_row(num_gpu=num_gpu, gpu_milli=gpu_milli, spec="T4")
    pod = only_pod(import_openb(write_csv(tmp_path, OPENB_HEADER, row)))
    assert pod["requests"].get("nvidia.com/gpu") == gpus
    # gpu_spec only concerns pods that take a GPU: a CPU-only pod stays off GPU nodes.
    assert pod.get("gpu_models") == (["T4"] if gpus else None)


def test_rows_without_usable_times_are_skipped_and_counted(tmp_path: Path) -> None:
    csv = write_csv(
        tmp_path,
        OPENB_HEADER,
        openb_row("no-creation", created=""),
        openb_row("no-deletion", deleted=""),
        openb_row("garbage-creation", created="soon"),
        openb_row("negative-creation", created="-5"),
        openb_row("garbage-deletion", deleted="later"),
        openb_row("backwards", created="500", deleted="400"),
        openb_row("instant", created="500", deleted="500"),
        openb_row("fine", created="7", deleted="8.25"),
    )
    result = import_openb(csv)
    assert [p["name"] for p in result.document["pods"]] == ["fine"]
    assert result.document["pods"][0]["duration_s"] == 1.25
    assert result.rows == 8 and result.imported == 1
    assert result.skipped == {
        "no creation_time": 1,
        "no deletion_time": 1,
        "creation_time not a number >= 0": 2,
        "deletion_time not a number": 1,
        "deleted before created": 1,
        "deleted when created": 1,
    }
    assert result.summary() == (
        "1 pod imported from 8 rows; skipped 7: 1 no creation_time, 1 no deletion_time, "
        "2 creation_time not a number >= 0, 1 deletion_time not a number, "
        "1 deleted before created, 1 deleted when created"
    )


def test_limit_takes_the_first_n_usable_rows_and_namespace_applies_to_all(
    tmp_path: Path,
) -> None:
    csv = write_csv(
        tmp_path,
        OPENB_HEADER,
        openb_row("a", created=""),
        openb_row("b", created="30", deleted="40"),
        openb_row("c", created="10", deleted="40"),
        openb_row("d", created="20", deleted="40"),
    )
    result = import_openb(csv, limit=2, namespace="team-x")
    # The first two usable rows, then ordered by arrival.
    assert [(p["namespace"], p["name"]) for p in result.document["pods"]] == [
        ("team-x", "c"),
        ("team-x", "b"),
    ]
    assert result.rows == 3 and result.skipped == {"no creation_time": 1}


# ------------------------------------------------------------------------------ DLRM


def test_dlrm_row_maps_to_requests_in_vcpu_and_gib(tmp_path: Path) -> None:
    pod = only_pod(import_dlrm(write_csv(tmp_path, DLRM_HEADER, dlrm_row())))
    assert pod == {
        "name": "instance-7",
        "namespace": "app-3",
        "requests": {"cpu": "12", "memory": "120Gi", "nvidia.com/gpu": 1},
        "annotations": {"alibaba.com/app": "app_3", "alibaba.com/role": "HN"},
        "arrival_s": 610,
        "duration_s": 300.5,
    }
    # disk and RDMA are not node-shape constraints for scaler: nothing of them survives.
    assert "ephemeral-storage" not in pod["requests"]


@pytest.mark.parametrize(
    ("cpu", "mem", "gpu", "requests"),
    [
        ("0.5", "0.5", "0", {"cpu": "500m", "memory": "512Mi"}),
        ("2", "40.0", "0", {"cpu": "2", "memory": "40Gi"}),
        ("0.0015", "1.0000001", "0.25", {"cpu": "2m", "memory": "1025Mi", "nvidia.com/gpu": 1}),
        ("96", "960", "2", {"cpu": "96", "memory": "960Gi", "nvidia.com/gpu": 2}),
    ],
)
def test_dlrm_fractions_round_up(
    tmp_path: Path, cpu: str, mem: str, gpu: str, requests: dict[str, Any]
) -> None:
    row = dlrm_row(role="CN", cpu=cpu, mem=mem, gpu=gpu)
    assert only_pod(import_dlrm(write_csv(tmp_path, DLRM_HEADER, row)))["requests"] == requests


def test_dlrm_rows_missing_a_time_are_skipped_and_pods_sorted_by_arrival(tmp_path: Path) -> None:
    csv = write_csv(
        tmp_path,
        DLRM_HEADER,
        dlrm_row("instance_1", created="", deleted=""),
        dlrm_row("instance_2", created="", deleted="99"),
        dlrm_row("instance_3", created="50", deleted=""),
        dlrm_row("instance_4", created="475.00000000000006", deleted="500"),
        dlrm_row("instance_5", created="300", deleted="300"),
        dlrm_row("instance_6", app="app_9", created="200", deleted="1000"),
    )
    result = import_dlrm(csv, namespace="dlrm")
    assert [(p["name"], p["arrival_s"], p["duration_s"]) for p in result.document["pods"]] == [
        ("instance-6", 200, 800),
        ("instance-4", 475, 25),
    ]
    assert {p["namespace"] for p in result.document["pods"]} == {"dlrm"}
    assert result.skipped == {
        "no creation_time": 2,
        "no deletion_time": 1,
        "deleted when created": 1,
    }


def test_a_pod_name_seen_twice_in_a_namespace_is_an_error(tmp_path: Path) -> None:
    csv = write_csv(tmp_path, DLRM_HEADER, dlrm_row("instance_1"), dlrm_row("Instance-1"))
    with pytest.raises(TraceFormatError, match=r"line 3, column instance_sn: .*from line 2"):
        import_dlrm(csv)


# ------------------------------------------------------------------------ the command


def test_import_command_writes_a_valid_workload_and_reports_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_csv(tmp_path, OPENB_HEADER, openb_row("a"), openb_row("b", created=""))
    out = tmp_path / "out.json"
    assert main(["trace", "import", "alibaba-openb", str(csv), "-o", str(out)]) == 0
    workload = load_workload(out)
    assert [p.name for p in workload.pods] == ["a"]
    assert workload.pods[0].requests.gpu == 1 and workload.pods[0].duration_s == 300
    err = capsys.readouterr().err
    assert "1 pod imported from 2 rows; skipped 1: 1 no creation_time" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "slice.csv"]  # no temp


MALFORMED = [
    pytest.param(
        OPENB_HEADER.replace(",gpu_spec", ""),
        [openb_row().replace(",,", ",")],
        "line 1, column gpu_spec: missing column(s) gpu_spec",
        id="missing-column",
    ),
    pytest.param(
        OPENB_HEADER,
        [openb_row("a"), openb_row("b", cpu="12x")],
        "line 3, column cpu_milli: expected a number, got '12x'",
        id="garbage-number",
    ),
    pytest.param(
        OPENB_HEADER,
        [openb_row(mem="-1")],
        "line 2, column memory_mib: expected zero or more, got '-1'",
        id="negative-request",
    ),
    pytest.param(
        OPENB_HEADER,
        [openb_row(num_gpu="nan")],
        "line 2, column num_gpu: expected a number, got 'nan'",
        id="not-finite",
    ),
    pytest.param(
        OPENB_HEADER,
        ["openb-pod-1,6000,12288"],
        "line 2, column num_gpu: expected 11 fields, got 3",
        id="short-row",
    ),
    pytest.param(
        OPENB_HEADER,
        [openb_row() + ",extra"],
        "line 2, column 12 (past the header): expected 11 fields, got 12",
        id="long-row",
    ),
    pytest.param(
        OPENB_HEADER,
        [openb_row(name="")],
        "line 2, column name: expected a name, got ''",
        id="empty-name",
    ),
]


@pytest.mark.parametrize(("header", "rows", "message"), MALFORMED)
def test_malformed_csv_fails_naming_file_line_and_column_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    header: str,
    rows: list[str],
    message: str,
) -> None:
    csv = write_csv(tmp_path, header, *rows)
    out = tmp_path / "out.json"
    assert main(["trace", "import", "alibaba-openb", str(csv), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{csv}: {message}" in err
    assert not out.exists()


def test_a_failed_import_leaves_the_previous_output_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    out.write_text("previous", encoding="utf-8")
    csv = write_csv(tmp_path, OPENB_HEADER, openb_row(cpu="lots"))
    assert main(["trace", "import", "alibaba-openb", str(csv), "-o", str(out)]) == 2
    assert out.read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "slice.csv"]


def test_non_utf8_and_empty_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(OPENB_HEADER.encode() + b"\n" + openb_row().encode() + b"\n\xff\xfe\n")
    with pytest.raises(TraceFormatError, match=r"bad\.csv: line 3: not UTF-8"):
        import_openb(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"empty\.csv: line 1: empty file"):
        import_openb(empty)
    with pytest.raises(TraceFormatError, match="no such file"):
        import_openb(tmp_path / "absent.csv")


# ------------------------------------------------------------- the real shared traces


def shared(relative: str) -> Path:
    path = SHARED_TRACES / relative
    if not path.is_file():
        pytest.skip(f"Alibaba trace not found at {path} (../shared/data next to the repo)")
    return path


@pytest.mark.slow  # the JSON Schema check of 8,151 pods takes a few seconds
def test_real_openb_default_imports_all_but_the_pod_deleted_when_created(tmp_path: Path) -> None:
    csv = shared("alibaba_gpu_v2023/openb_pod_list_default.csv")
    out = tmp_path / "openb.json"
    assert main(["trace", "import", "alibaba-openb", str(csv), "-o", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert len(doc["pods"]) == 8151
    assert sum(1 for p in doc["pods"] if "nvidia.com/gpu" in p["requests"]) == 7063
    assert not any("gpu_models" in p for p in doc["pods"])  # default: no gpu_spec at all
    assert len(load_workload(out).pods) == 8151
    result = import_openb(csv)
    assert (result.rows, result.skipped) == (8152, {"deleted when created": 1})


def test_real_openb_gpuspec33_maps_gpu_models() -> None:
    result = import_openb(shared("alibaba_gpu_v2023/openb_pod_list_gpuspec33.csv"))
    models: dict[tuple[str, ...], int] = {}
    for p in result.document["pods"]:
        key = tuple(p.get("gpu_models", ()))
        models[key] = models.get(key, 0) + 1
    assert models[("T4",)] == 1291
    assert models[("V100",)] == 572  # V100M16/V100M32/P100 combinations
    assert models[("A10G", "T4")] == 6


def test_real_dlrm_imports_the_instances_created_and_deleted_inside_the_window() -> None:
    result = import_dlrm(shared("alibaba_gpu_v2025/disaggregated_DLRM_trace.csv"))
    assert result.rows == 23871
    assert result.imported == 12375
    assert result.skipped == {
        "no creation_time": 7280,
        "no deletion_time": 4201,
        "deleted when created": 15,
    }
    pods = result.document["pods"]
    assert sum(1 for p in pods if "nvidia.com/gpu" in p["requests"]) == sum(
        1 for p in pods if p["annotations"]["alibaba.com/role"] == "HN"
    )
