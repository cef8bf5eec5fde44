"""DaemonSet overhead: what every new node of a pool will run besides the pod it was bought for."""

from __future__ import annotations

import pytest

from scaler.core.catalog import Catalog
from scaler.core.model import NO_SCHEDULE, PodSpec, PoolSpec, Resources, Taint, Toleration
from scaler.core.offerings import build_offerings
from scaler.core.state import BoundPod, ClusterView

GPU_TAINT = Taint("nvidia.com/gpu", "true", NO_SCHEDULE)


def ds(name: str, cpu: float, mem: float, **kw: object) -> PodSpec:
    return PodSpec(name, requests=Resources(cpu_milli=cpu, memory_mib=mem, pods=1), **kw)  # type: ignore[arg-type]


def test_daemonsets_are_charged_to_the_pools_whose_nodes_they_run_on():
    catalog = Catalog.load()
    pools = [PoolSpec("cpu", ("m5.large",)), PoolSpec("gpu", ("g5.xlarge",), taints=(GPU_TAINT,))]
    logging = ds("fluent-bit", 100, 200)  # everywhere untainted
    dcgm = ds("dcgm", 50, 100, node_selector=(("nvidia.com/gpu", "true"),),
              tolerations=(Toleration("nvidia.com/gpu", "Exists"),))
    bare, _ = build_offerings(pools, catalog)
    charged, _ = build_offerings(pools, catalog, daemonsets=(logging, dcgm))
    cpu, gpu = charged.index("cpu"), charged.index("gpu")
    base_cpu, base_gpu = bare.index("cpu"), bare.index("gpu")
    # fluent-bit tolerates no taint: it runs on the CPU pool only; dcgm selects GPU nodes.
    assert charged.allocatable[cpu, 0] == pytest.approx(bare.allocatable[base_cpu, 0] - 100)
    assert charged.allocatable[cpu, 1] == pytest.approx(bare.allocatable[base_cpu, 1] - 200)
    assert charged.allocatable[cpu, 3] == pytest.approx(bare.allocatable[base_cpu, 3] - 1)
    assert charged.allocatable[gpu, 1] == pytest.approx(bare.allocatable[base_gpu, 1] - 100)
    assert charged.allocatable[gpu, 2] == bare.allocatable[base_gpu, 2], "GPUs are not taken"


def test_one_spec_per_daemonset_from_the_pods_it_runs():
    view = ClusterView(0.0, bound=(
        BoundPod(ds("fluent-bit-a", 100, 200), "n1", daemonset=True, owner="kube-system/fluent-bit"),
        BoundPod(ds("fluent-bit-b", 100, 250), "n2", daemonset=True, owner="kube-system/fluent-bit"),
        BoundPod(ds("nb", 1000, 4096), "n1"),
    ))
    (spec,) = view.daemonsets()
    assert spec.requests.memory_mib == 250
