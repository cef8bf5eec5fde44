"""Live controller latency: pod turns Unschedulable -> the controller's SetDesiredCapacity.

Real parts, all on 127.0.0.1 and stopped at the end: kube-apiserver + kube-scheduler v1.20.2
(tools/kube/start-kube.sh), moto's ThreadedMotoServer in its own process, and the controller
as ``scaler run`` runs it (``scaler.app.run``: leader election, watches, HTTP, price refresh,
review) with DEFAULT settings (batching 1 s idle / 10 s max). The cluster has no nodes, so
the real scheduler marks every pod ``PodScheduled=False, reason=Unschedulable``.

N pods are created one at a time, ``--spacing-s`` apart. For each pod:

- ``t_unschedulable``: the wall clock when the benchmark's own watch delivered the pod with
  that condition (also recorded: the condition's lastTransitionTime, 1 s resolution);
- ``t_set_desired``: the wall clock when the controller issued ``AwsFleet.set_desired`` for a
  decision that scaled up for this pod (the fleet method is wrapped to stamp the call; the
  pods come from the decision being acted on).

Latency = t_set_desired - t_unschedulable; median, p90, max. Target: median <= 2 s
(cluster-autoscaler scans every 10 s; Karpenter waits 1 s idle).

    python benchmarks/controller_latency.py [--pods 30] [--spacing-s 3] [--json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _live

CLUSTER = "bench"
NAMESPACE = "bench"
GPU_TAGS = (
    (_live.CA + "node-template/resources/nvidia.com/gpu", "1"),
    (_live.CA + "node-template/taint/nvidia.com/gpu", "true:NoSchedule"),
    (_live.CA + "node-template/label/nvidia.com/gpu", "true"),
)
GROUPS = [
    _live.Group("cpu-small", "m5.large"),
    _live.Group("cpu-big", "m5.4xlarge"),
    _live.Group("cpu-small-spot", "m5.large", spot=True),
    _live.Group("gpu-t4", "g4dn.xlarge", tags=GPU_TAGS),
]


def _parse_time(text: str | None) -> float | None:
    from scaler.adapters.kube.convert import parse_time

    return parse_time(text)


async def measure(args: argparse.Namespace, kube: _live.Kube, workdir: Path) -> dict[str, Any]:
    import anyio

    from scaler.app import RunOptions
    from scaler.core.actions import ScaleUp
    from scaler.core.settings import Settings

    api = kube.api_client()
    kubelet = _live.Kubelet(api)
    kubelet.namespace("scaler-system")
    kubelet.namespace(NAMESPACE)
    asg = _live.make_account(CLUSTER, GROUPS)

    lock = threading.Lock()
    created: dict[str, float] = {}
    unschedulable: dict[str, tuple[float, float | None]] = {}
    calls: list[dict[str, Any]] = []

    def on_pod(t: float, kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        for c in (obj.get("status") or {}).get("conditions") or ():
            if (
                c.get("type") == "PodScheduled"
                and c.get("status") == "False"
                and c.get("reason") == "Unschedulable"
            ):
                with lock:
                    unschedulable.setdefault(name, (t, _parse_time(c.get("lastTransitionTime"))))

    opts = RunOptions(
        cluster_name=CLUSTER,
        kubeconfig=str(kube.kubeconfig),
        settings=Settings(),
        leader_elect=True,
        listen_host="127.0.0.1",
        listen_port=0,
    )
    logs = _live.configure_controller_logs(workdir / "controller.log")
    from scaler.adapters.observe import LogObserver
    from scaler.telemetry import by_name

    events: list[tuple[float, str, dict[str, Any]]] = []
    observer = LogObserver(by_name(lambda e, f: events.append((time.time(), e, f))))
    with _live.Watch(kubelet.core.list_namespaced_pod, on_pod, namespace=NAMESPACE):
        async with _live.running_controller(opts, observer) as ctl:
            real_set_desired = ctl.fleet.set_desired

            async def set_desired(pool: str, desired: int) -> None:
                t = time.time()
                decision = ctl.reconciler.last_decision
                pods = [
                    key.split("/", 1)[1]
                    for a in (decision.actions if decision else ())
                    if isinstance(a, ScaleUp) and a.pool == pool
                    for key in a.pods
                ]
                calls.append({"t": t, "pool": pool, "desired": desired, "pods": pods})
                await real_set_desired(pool, desired)

            ctl.fleet.set_desired = set_desired
            _live.log(f"controller leading; creating {args.pods} pods {args.spacing_s}s apart")
            for i in range(args.pods):
                name = f"nb-{i:03d}"
                body = {
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {
                        "terminationGracePeriodSeconds": 0,
                        "containers": [
                            {
                                "name": "main",
                                "image": "registry.k8s.io/pause:3.2",
                                "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
                            }
                        ],
                    },
                }
                await anyio.to_thread.run_sync(
                    lambda b=body: kubelet.core.create_namespaced_pod(
                        NAMESPACE, b, _preload_content=False
                    )
                )
                created[name] = time.time()
                await anyio.sleep(args.spacing_s)
            with anyio.move_on_after(30):
                while {p for c in calls for p in c["pods"]} < set(created):
                    await anyio.sleep(0.1)
            await anyio.sleep(1.0)
    logs.close()
    api.close()

    first_call: dict[str, dict[str, Any]] = {}
    for call in calls:
        for pod in call["pods"]:
            first_call.setdefault(pod, call)
    rows = []
    for name in sorted(created):
        seen = unschedulable.get(name)
        call = first_call.get(name)
        rows.append(
            {
                "pod": name,
                "created": created[name],
                "unschedulable_seen": seen[0] if seen else None,
                "last_transition_time": seen[1] if seen else None,
                "set_desired": call["t"] if call else None,
                "pool": call["pool"] if call else None,
                "latency_s": round(call["t"] - seen[0], 3) if call and seen else None,
                "latency_from_ltt_s": round(call["t"] - seen[1], 3)
                if call and seen and seen[1]
                else None,
                "unschedulable_after_create_s": round(seen[0] - created[name], 3) if seen else None,
            }
        )
    measured = [r["latency_s"] for r in rows if r["latency_s"] is not None]
    return {
        "benchmark": "controller_latency",
        "what": "real kube-apiserver + kube-scheduler v1.20.2, moto server (own process), "
        "scaler.app.run with default settings; latency = controller's set_desired call "
        "- the benchmark watch seeing PodScheduled=False/Unschedulable",
        "machine": _live.machine(),
        "pods": args.pods,
        "spacing_s": args.spacing_s,
        "scaled": len(measured),
        "missed": [r["pod"] for r in rows if r["latency_s"] is None],
        "set_desired_calls": len(calls),
        "pods_per_call": sorted({len(c["pods"]) for c in calls}),
        "latency_s": _live.stats(measured),
        "latency_from_last_transition_time_s": _live.stats(
            [r["latency_from_ltt_s"] for r in rows if r["latency_from_ltt_s"] is not None]
        ),
        "create_to_unschedulable_s": _live.stats(
            [
                r["unschedulable_after_create_s"]
                for r in rows
                if r["unschedulable_after_create_s"] is not None
            ]
        ),
        "target_median_s": 2.0,
        "met": bool(measured)
        and _live.stats(measured)["median"] <= 2.0
        and len(measured) == args.pods,
        "desired_after": _live.desired(asg),
        "controller_log": str(workdir / "controller.log"),
        "rows": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(
        f"controller latency, {result['pods']} pods {result['spacing_s']} s apart "
        f"({m['nproc']} x {m['cpu_model']}, Python {m['python']}, load {m['load_avg_1m']})"
    )
    print(f"{'pod':8} {'pool':15} {'latency s':>10} {'from LTT s':>11} {'create->unsched s':>18}")
    for r in result["rows"]:

        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        print(
            f"{r['pod']:8} {r['pool'] or '-':15} {f(r['latency_s']):>10} "
            f"{f(r['latency_from_ltt_s']):>11} {f(r['unschedulable_after_create_s']):>18}"
        )
    s = result["latency_s"]
    print(
        f"\nunschedulable -> set_desired: median {s.get('median')} s, p90 {s.get('p90')} s, "
        f"max {s.get('max')} s over {s['n']} pods (target median <= 2 s: "
        f"{'met' if result['met'] else 'NOT met'})"
    )
    lt = result["latency_from_last_transition_time_s"]
    print(
        f"from lastTransitionTime (1 s resolution): median {lt.get('median')} s, "
        f"p90 {lt.get('p90')} s, max {lt.get('max')} s"
    )
    if result["missed"]:
        print(f"no scale-up seen for: {', '.join(result['missed'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--spacing-s", type=float, default=3.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    import anyio

    workdir = Path(tempfile.mkdtemp(prefix="scaler-bench-latency-"))
    with _live.moto(), _live.kube(workdir=workdir) as kube:
        result = anyio.run(measure, args, kube, workdir, backend="asyncio")
    return _live.finish(result, as_json=args.json, table=print_table)


if __name__ == "__main__":
    sys.exit(main())
