"""``scaler place`` end to end: a hand-written workload and catalog, answers worked out by hand,
the JSON contract, and errors that name the file, the pod and the field.

The catalog (written to tmp_path, passed with ``--catalog``) has four invented types.
EKS allocatable (see tests/core/test_placement.py for the formula):

    type       vCPU  MiB    pods  GPU  $/h    Spot          allocatable cpu / MiB
    c1.small   2     4096   10    -    0.05   -             1930 / 3631
    m1.large   4     16384  20    -    0.20   70%, >20%     3920 / 15809
    r1.xlarge  4     32768  20    -    0.30   -             3920 / 32193
    g2.xlarge  4     16384  20    T4   0.04   -             3920 / 15809

m1-spot: 0.20 x 0.30 = $0.06/h + risk 0.25/730 x 24 x 0.06 = $0.0005/h -> $0.0605/h < m1-od's $0.20.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scaler.cli import main
from scaler.core.catalog import Catalog

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "pods.json"


def _type(name: str, vcpus: int, mib: int, usd: float, **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "vcpus": vcpus,
        "memory_mib": mib,
        "gpu_count": 1 if kw.get("gpu") else 0,
        "gpu_model": kw.get("gpu"),
        "gpu_memory_mib": 16384 if kw.get("gpu") else 0,
        "arch": "amd64",
        "bare_metal": False,
        "max_pods": 10 if vcpus == 2 else 20,
        "on_demand_usd_per_hour": usd,
        "spot_savings_pct": kw.get("spot", (None, None))[0],
        "spot_interruption_bucket": kw.get("spot", (None, None))[1],
        "zones": ["us-east-1a", "us-east-1b"],
    }


CATALOG = {
    "format": "scaler-catalog",
    "version": 1,
    "region": "us-east-1",
    "built_at": "2026-07-24",
    "sources": [{"name": "by hand", "license": "Apache-2.0", "data_date": "2026", "file": "-"}],
    "instance_types": [
        _type("c1.small", 2, 4096, 0.05),
        _type("m1.large", 4, 16384, 0.20, spot=(70, 4)),
        _type("r1.xlarge", 4, 32768, 0.30),
        _type("g2.xlarge", 4, 16384, 0.04, gpu="T4"),
    ],
}

POOLS = [
    {"name": "c1-a", "instance_type": "c1.small", "zones": ["us-east-1a"]},
    {"name": "m1-od", "instance_type": "m1.large", "zones": ["us-east-1a", "us-east-1b"]},
    {"name": "m1-spot", "instance_type": "m1.large", "capacity_type": "spot"},
    {"name": "r1-b", "instance_type": "r1.xlarge", "zones": ["us-east-1b"], "max_size": 10},
    {
        "name": "gpu",
        "instance_type": "g2.xlarge",
        "taints": ["nvidia.com/gpu=true:NoSchedule"],
        "labels": {"team": "ds"},
    },
]

PODS = [
    {"name": "empty"},
    {"name": "nb-8g", "namespace": "ds", "requests": {"cpu": "1", "memory": "8Gi"}},
    {"name": "nb-8g-od", "requests": {"memory": "8Gi"}, "capacity_types": ["on-demand"]},
    {"name": "big-20g", "requests": {"memory": "20Gi"}},
    {
        "name": "gpu-limits-only",
        "containers": [
            {"name": "c", "resources": {"requests": {"cpu": "2"}, "limits": {"nvidia.com/gpu": 1}}}
        ],
    },
    {"name": "too-big", "requests": {"memory": "64Gi"}},
    {"name": "team-ml", "node_selector": {"team": "ml"}},
]

# Worked out by hand from the table above.
EXPECTED_PLACEMENTS = {
    # No requests: c1 ($0.05) is the cheapest CPU node; g2 ($0.04) is a GPU node.
    "empty": ("c1-a", "c1.small", "on-demand", "us-east-1a", 0.05),
    # 8Gi: c1 too small (3631 MiB); m1-spot scores 0.11 < m1-od 0.20 < r1 0.30.
    "ds/nb-8g": ("m1-spot", "m1.large", "spot", None, 0.06),
    "nb-8g-od": ("m1-od", "m1.large", "on-demand", None, 0.20),
    # 20Gi > m1's 15809 MiB: only r1 (single zone, so the zone is known).
    "big-20g": ("r1-b", "r1.xlarge", "on-demand", "us-east-1b", 0.30),
    # The GPU is in limits only: requested at the limit, tolerates the GPU taint.
    "gpu-limits-only": ("gpu", "g2.xlarge", "on-demand", None, 0.04),
}
EXPECTED_UNPLACEABLE = {
    "too-big": "needs memory 64Gi; the largest pool it may use, r1-b, has 31.44Gi allocatable",
    "team-ml": "node selector team=ml matches no pool (pools have team in {ds})",
}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(CATALOG))
    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps({"version": 1, "pools": POOLS, "pods": PODS}, indent=2))
    return pods, catalog


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def check_contract(doc: dict[str, Any]) -> None:
    assert set(doc) == {"decision_ms", "placements", "unplaceable"}
    assert isinstance(doc["decision_ms"], float)
    for p in doc["placements"]:
        assert set(p) == {
            "pod",
            "pool",
            "instance_type",
            "capacity_type",
            "zone",
            "price_usd_per_hour",
            "reason",
        }
    for u in doc["unplaceable"]:
        assert set(u) == {"pod", "reason"}


def check_answers(doc: dict[str, Any]) -> None:
    check_contract(doc)
    got = {
        p["pod"]: (p["pool"], p["instance_type"], p["capacity_type"], p["zone"])
        for p in doc["placements"]
    }
    assert got == {k: v[:4] for k, v in EXPECTED_PLACEMENTS.items()}
    for p in doc["placements"]:
        assert p["price_usd_per_hour"] == pytest.approx(EXPECTED_PLACEMENTS[p["pod"]][4])
        assert p["reason"].startswith("cheapest of ")
    assert {u["pod"]: u["reason"] for u in doc["unplaceable"]} == EXPECTED_UNPLACEABLE


def test_place_json_gives_the_answers_worked_out_by_hand(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pods, catalog = files
    code, out, err = run(["place", str(pods), "--catalog", str(catalog), "--json"], capsys)
    assert (code, err) == (0, "")
    doc = json.loads(out)
    check_answers(doc)
    # Pods are listed in file order.
    assert [p["pod"] for p in doc["placements"]] == list(EXPECTED_PLACEMENTS)
    spot = next(p for p in doc["placements"] if p["pool"] == "m1-spot")
    assert "$0.0600/h + $0.0005/h Spot risk" in spot["reason"]
    assert "next m1-od $0.2000/h" in spot["reason"]


def test_place_through_python_dash_m(files: tuple[Path, Path]) -> None:
    pods, catalog = files
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "scaler", "place", str(pods), "--catalog", str(catalog), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    check_answers(json.loads(proc.stdout))


def test_place_prints_a_table_for_people(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pods, catalog = files
    code, out, _ = run(["place", str(pods), "--catalog", str(catalog)], capsys)
    assert code == 0
    assert "5 pods placed over 5 pools" in out
    for name in ("empty", "nb-8g", "gpu-limits-only", "m1-spot", "cannot be placed", "too-big"):
        assert name in out
    # 0.05 + 0.06 + 0.20 + 0.30 + 0.04 = $0.65/h for 5 nodes.
    assert "new nodes: 5, $0.6500/h" in out


def test_the_same_pods_without_pools_use_the_catalogs_default_pools(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, catalog = files
    pods = tmp_path / "nopools.json"
    pods.write_text(
        json.dumps({"version": 1, "pods": [{"name": "x", "requests": {"memory": "8Gi"}}]})
    )
    code, out, _ = run(
        ["place", str(pods), "--catalog", str(catalog), "--json", "--capacity-types", "on-demand"],
        capsys,
    )
    assert code == 0
    (p,) = json.loads(out)["placements"]
    assert p["pool"] == "m1.large-on-demand"


# ------------------------------------------------------------------ errors


def write(tmp_path: Path, data: Any, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_a_bad_quantity_exits_2_naming_the_file_pod_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        {"version": 1, "pods": [{"name": "a"}, {"name": "nb", "requests": {"memory": "4 GB"}}]},
    )
    code, out, err = run(["place", str(path), "--json"], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"scaler place: {path}: pods[1] (nb).requests.memory: '4 GB' is not a Kubernetes "
        "quantity (e.g. 500m, 2, 1.5, 4Gi, 4G)\n"
    )


def test_a_misspelt_field_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, {"version": 1, "pods": [{"name": "nb", "node_selectr": {}}]})
    code, out, err = run(["place", str(path)], capsys)
    assert (code, out) == (2, "")
    assert f"{path}: pods[0] (nb): unknown field" in err and "node_selectr" in err


def test_invalid_json_exits_2_with_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '{"version": 1,\n "pods": [}\n')
    code, _, err = run(["place", str(path)], capsys)
    assert code == 2
    assert f"scaler place: {path}: not valid JSON" in err
    assert "line 2 column" in err


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["place", str(tmp_path / "nope.json")], capsys)
    assert code == 2
    assert "nope.json: no such file" in err


def test_a_pool_of_an_unknown_type_exits_2_naming_the_pool(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, catalog = files
    path = write(
        tmp_path,
        {"version": 1, "pools": [{"name": "huge", "instance_type": "z9.huge"}], "pods": []},
    )
    code, out, err = run(["place", str(path), "--catalog", str(catalog)], capsys)
    assert (code, out) == (2, "")
    assert "scaler place: pool huge: instance type z9.huge is not in the catalog" in err


def test_a_bad_catalog_exits_2_naming_it(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pods, _ = files
    catalog = write(tmp_path, {"format": "scaler-catalog", "version": 9}, "cat.json")
    code, _, err = run(["place", str(pods), "--catalog", str(catalog)], capsys)
    assert code == 2
    assert f"{catalog}: version" in err


def test_bad_capacity_types_exit_2(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pods, _ = files
    code, _, err = run(["place", str(pods), "--capacity-types", "reserved"], capsys)
    assert code == 2
    assert "--capacity-types" in err


# ------------------------------------------------------------------ the bundled example


def test_the_bundled_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["place", str(EXAMPLE), "--json"], capsys)
    assert (code, err) == (0, "")
    doc = json.loads(out)
    check_contract(doc)
    placed = {p["pod"]: p for p in doc["placements"]}
    assert set(placed) == {
        "ds/notebook-empty",
        "ds/notebook-4g",
        "ds/notebook-16g",
        "ds/notebook-128g",
        "ds/notebook-512g",
        "ds/gpu-notebook",
        "ds/dask-worker-0",
        "ds/etl-pinned",
    }
    assert [u["pod"] for u in doc["unplaceable"]] == ["ds/too-big"]
    assert doc["unplaceable"][0]["reason"].startswith("needs memory 40Ti")
    catalog = Catalog.load()
    gpu = catalog[placed["ds/gpu-notebook"]["instance_type"]]
    assert gpu.gpu_model in ("A10G", "L4")
    for name in ("ds/notebook-512g", "ds/dask-worker-0", "ds/etl-pinned"):
        assert placed[name]["capacity_type"] == "on-demand"
    assert placed["ds/etl-pinned"]["zone"] == "us-east-1b"
    empty = catalog[placed["ds/notebook-empty"]["instance_type"]]
    # The cheapest node with room for the requestless floor (250m, 1Gi), not a big one.
    assert empty.gpu_count == 0 and empty.memory_mib <= 4096 and not empty.burstable


def test_a_bad_listen_address_is_refused_naming_the_flag(capsys):
    assert main(["run", "--cluster-name", "x", "--listen", "nonsense"]) == 2
    assert "--listen nonsense: expected HOST:PORT" in capsys.readouterr().err
    assert main(["run", "--cluster-name", "x", "--webhook-listen", "127.0.0.1:99999"]) == 2
    assert "--webhook-listen 127.0.0.1:99999" in capsys.readouterr().err


def test_place_spreads_zone_spread_replicas_and_leaves_expendable_pods_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pools = [{"name": f"cpu-{z}", "instance_types": ["m5.large"], "zones": [f"us-east-1{z}"]}
             for z in "abc"]
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
               "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]
    pods = [{"name": f"web-{i}", "labels": {"app": "web"}, "requests": {"cpu": "1"},
             "topologySpreadConstraints": spread} for i in range(3)]
    pods.append({"name": "filler", "priority": -100, "requests": {"cpu": "1"}})
    path = tmp_path / "pods.json"
    path.write_text(json.dumps({"version": 1, "pools": pools, "pods": pods}))
    code, out, err = run(["place", str(path), "--json"], capsys)
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert sorted(p["zone"] for p in doc["placements"]) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    (filler,) = doc["unplaceable"]
    assert filler["pod"] == "filler" and filler["reason"].startswith("expendable: priority below")


def test_burstable_types_join_the_default_pools_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], catalog: Catalog
) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(
        {"version": 1, "pods": [{"name": "tiny", "requests": {"cpu": "100m", "memory": "256Mi"}}]}
    ))

    def chosen(*flags: str) -> str:
        code, out, _ = run(["place", str(path), "--json", *flags], capsys)
        assert code == 0
        (placement,) = json.loads(out)["placements"]
        return str(placement["instance_type"])

    assert not catalog[chosen()].burstable  # CPU credits are not a default
    assert catalog[chosen("--burstable")].burstable  # the cheapest fit once they are offered
