"""Controller memory with 5,000 nodes and 20,000 pods in its caches, for real.

Real, all on 127.0.0.1 and stopped at the end: kube-apiserver v1.20.2 over etcd
(tools/kube/start-kube.sh; the scheduler is not started: every pod is created already bound
with spec.nodeName, as after scheduling) and moto's ThreadedMotoServer in its own process
(4 ASGs tagged for the cluster, ``--nodes`` EC2 instances among them, one per Node).

1. The objects are created through the API server, as the kubelet and the controllers would
   leave them (timed): Nodes with EKS's labels, capacity/allocatable, four conditions,
   addresses, nodeInfo and a 40-image list; Deployment pods (ownerReferences to a
   ReplicaSet, a ~3 KB kubectl last-applied annotation, a main container with 15 env vars and
   a log-shipping sidecar, probes, volumes, default tolerations) reported Running with full
   container statuses.
2. The controller then runs in a fresh child process exactly as ``scaler run`` runs it
   (``scaler.app.run``: leader election, both watches listing page by page, /metrics, Spot
   price refresh, the control loop, the cost review; kubernetes, aiobotocore,
   prometheus_client and numpy all loaded). The child reports VmRSS and VmHWM
   (/proc/self/status) after its imports, once its caches hold every object, and after
   ``--settle-s`` of steady running; and ``KubeCluster.snapshot()`` time.
3. The same child is run first against the empty cluster (same ASGs and instances), so the
   per-object cost is (RSS full - RSS empty) / objects.
4. A last child builds the same parts one at a time (catalog, AWS clients, ASG discovery,
   Kubernetes client and reconciler, listed caches, a tick, a review), VmRSS after each:
   where the memory goes.

Target: <= 150 MB resident with 5,000 nodes and 20,000 pods.

    python benchmarks/controller_memory.py [--nodes 5000] [--pods 20000] [--json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _live

CLUSTER = "bench"
NAMESPACES = ("data-science", "ml-training", "notebooks", "batch")
GROUPS = ("ng-m5-2xlarge", "ng-m5-4xlarge", "ng-r5-2xlarge", "ng-c5-4xlarge")
TYPES = {
    "ng-m5-2xlarge": "m5.2xlarge",
    "ng-m5-4xlarge": "m5.4xlarge",
    "ng-r5-2xlarge": "r5.2xlarge",
    "ng-c5-4xlarge": "c5.4xlarge",
}


# ------------------------------------------------------------------------ the objects


def node_body(i: int, instance_id: str, zone: str, group: str) -> dict[str, Any]:
    name = f"ip-10-{i // 250}-{i % 250}-{(i * 7) % 250}.ec2.internal"
    itype = TYPES[group]
    return {
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/instance-type": itype,
                "beta.kubernetes.io/os": "linux",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
                "eks.amazonaws.com/nodegroup": group,
                "eks.amazonaws.com/nodegroup-image": "ami-0c2b0d3fb02824d92",
                "eks.amazonaws.com/sourceLaunchTemplateId": "lt-0a1b2c3d4e5f67890",
                "eks.amazonaws.com/sourceLaunchTemplateVersion": "3",
                "failure-domain.beta.kubernetes.io/region": "us-east-1",
                "failure-domain.beta.kubernetes.io/zone": zone,
                "k8s.io/cloud-provider-aws": "8d3e5a0b1c2f4e6a9b7c8d0e1f2a3b4c",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": itype,
                "topology.ebs.csi.aws.com/zone": zone,
                "topology.kubernetes.io/region": "us-east-1",
                "topology.kubernetes.io/zone": zone,
                "team": ("ds", "ml", "platform")[i % 3],
            },
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": f"10.{i // 250}.{i % 250}.7",
                "csi.volume.kubernetes.io/nodeid": json.dumps({"ebs.csi.aws.com": instance_id}),
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"providerID": f"aws:///{zone}/{instance_id}"},
    }


def node_status(i: int, instance_id: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    amounts = {
        "cpu": "8",
        "ephemeral-storage": "83873772Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "32386544Ki",
        "pods": "58",
        "attachable-volumes-aws-ebs": "25",
    }
    alloc = {**amounts, "cpu": "7910m", "ephemeral-storage": "76224326324", "memory": "31369712Ki"}
    conditions = [
        {
            "type": t,
            "status": "False",
            "reason": f"KubeletHasSufficient{t[:-8] or t}",
            "message": f"kubelet has sufficient {t.lower()} available",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
    ] + [
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
    ]
    images = [
        {
            "names": [
                f"602401143452.dkr.ecr.us-east-1.amazonaws.com/image-{k}@sha256:"
                f"{(i * 40 + k) * 7919 % (16**12):012x}{'0' * 52}",
                f"602401143452.dkr.ecr.us-east-1.amazonaws.com/image-{k}:v1.{k}.0",
            ],
            "sizeBytes": 50_000_000 + k * 1_234_567,
        }
        for k in range(40)
    ]
    return {
        "capacity": amounts,
        "allocatable": alloc,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": f"10.{i // 250}.{i % 250}.7"},
            {"type": "Hostname", "address": f"ip-10-{i}.ec2.internal"},
            {"type": "InternalDNS", "address": f"ip-10-{i}.ec2.internal"},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": f"{i:032x}",
            "systemUUID": f"ec2{i:05x}-0000-0000-0000-{i:012x}",
            "bootID": f"{i:08x}-1111-2222-3333-{i:012x}",
            "kernelVersion": "5.10.205-195.807.amzn2.x86_64",
            "osImage": "Amazon Linux 2",
            "containerRuntimeVersion": "containerd://1.7.11",
            "kubeletVersion": "v1.20.2-eks-8c49e2",
            "kubeProxyVersion": "v1.20.2-eks-8c49e2",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
        "images": images,
    }


def _env(i: int) -> list[dict[str, Any]]:
    plain = [{"name": f"SETTING_{k}", "value": f"value-{k}-{i % 97}"} for k in range(12)]
    return [
        *plain,
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    ]


def _last_applied(app: str, ns: str) -> str:
    spec = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": app, "namespace": ns, "labels": {"app": app}},
        "spec": {
            "containers": [
                {"name": "main", "image": f"registry/{app}:1.0", "env": _env(0), "resources": {}}
            ]
        },
    }
    text = json.dumps(spec, separators=(",", ":"))
    return text + " " * max(0, 3000 - len(text))


def pod_body(i: int, node: str) -> dict[str, Any]:
    ns = NAMESPACES[i % len(NAMESPACES)]
    app = f"svc-{i % 400}"
    rs = f"{app}-7d9f8b6c5"
    name = f"{rs}-{i:06d}"
    probe = {
        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
        "initialDelaySeconds": 10,
        "periodSeconds": 10,
        "timeoutSeconds": 1,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "generateName": f"{rs}-",
            "labels": {
                "app": app,
                "pod-template-hash": "7d9f8b6c5",
                "team": ns,
                "app.kubernetes.io/part-of": "platform",
            },
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": _last_applied(app, ns),
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": rs,
                    "uid": f"6b1c2d3e-4f50-6172-8394-{i % 400:012x}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "main",
                    "image": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{app}:1.4.2",
                    "imagePullPolicy": "IfNotPresent",
                    "env": _env(i),
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                    ],
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "1Gi"},
                        "limits": {"memory": "2Gi"},
                    },
                    "readinessProbe": probe,
                    "livenessProbe": probe,
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/app"},
                        {"name": "data", "mountPath": "/data"},
                    ],
                },
                {
                    "name": "log-shipper",
                    "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.31.12",
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "AWS_REGION", "value": "us-east-1"},
                    ],
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"memory": "128Mi"},
                    },
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                },
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": f"{app}-config"}},
                {"name": "data", "emptyDir": {}},
            ],
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "terminationGracePeriodSeconds": 30,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
        },
    }


def pod_status(i: int) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ip = f"10.{100 + i // 65000}.{(i // 250) % 250}.{i % 250}"

    def running(name: str, image: str) -> dict[str, Any]:
        return {
            "name": name,
            "ready": True,
            "restartCount": 0,
            "started": True,
            "state": {"running": {"startedAt": now}},
            "lastState": {},
            "image": image,
            "imageID": f"{image.split(':')[0]}@sha256:{i:064x}",
            "containerID": f"containerd://{i:064x}",
        }

    return {
        "phase": "Running",
        "startTime": now,
        "hostIP": "10.0.0.7",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "qosClass": "Burstable",
        "conditions": [
            {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
            for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
        ],
        "containerStatuses": [
            running("main", "registry/app:1.4.2"),
            running("log-shipper", "aws-for-fluent-bit:2.31.12"),
        ],
    }


# ----------------------------------------------------------------------- populating


class Raw:
    """A thread-safe raw JSON client (urllib3) for creating objects fast, many at a time."""

    def __init__(self, kube: _live.Kube, workers: int) -> None:
        import urllib3

        self.server = kube.server
        self.http = urllib3.PoolManager(
            maxsize=workers, ca_certs=str(kube.ca_file), cert_reqs="CERT_REQUIRED"
        )
        self.headers = {"Authorization": f"Bearer {kube.token}", "Accept": "application/json"}

    def send(self, method: str, path: str, body: dict[str, Any]) -> None:
        ctype = "application/merge-patch+json" if method == "PATCH" else "application/json"
        for attempt in range(5):
            r = self.http.request(
                method,
                self.server + path,
                body=json.dumps(body).encode(),
                headers={**self.headers, "Content-Type": ctype},
                timeout=60,
            )
            if r.status < 300 or (r.status == 409 and method == "POST"):
                return
            if r.status in (429, 500, 503, 504) and attempt < 4:
                time.sleep(0.5 * (attempt + 1))
                continue
            raise RuntimeError(f"{method} {path}: {r.status} {r.data[:300]!r}")


def populate(
    kube: _live.Kube,
    nodes: list[tuple[str, str, str]],
    pods: int,
    workers: int,
) -> dict[str, Any]:
    """Create the Nodes and pods (and report their status). ``nodes``: (instance id, zone,
    group). Returns timings."""
    raw = Raw(kube, workers)
    for ns in NAMESPACES:
        raw.send("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    names = [
        node_body(i, iid, zone, g)["metadata"]["name"] for i, (iid, zone, g) in enumerate(nodes)
    ]
    done = [0]
    lock = threading.Lock()

    def make_node(i: int) -> None:
        iid, zone, group = nodes[i]
        raw.send("POST", "/api/v1/nodes", node_body(i, iid, zone, group))
        raw.send("PATCH", f"/api/v1/nodes/{names[i]}/status", {"status": node_status(i, iid)})

    def make_pod(i: int) -> None:
        body = pod_body(i, names[i % len(names)])
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        raw.send("POST", f"/api/v1/namespaces/{ns}/pods", body)
        raw.send("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", {"status": pod_status(i)})
        with lock:
            done[0] += 1
            if done[0] % 2000 == 0:
                _live.log(f"  {done[0]} pods")

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(make_node, range(len(nodes))))
        t_nodes = time.monotonic() - t0
        _live.log(f"{len(nodes)} nodes created in {t_nodes:.1f}s")
        list(pool.map(make_pod, range(pods)))
    t_all = time.monotonic() - t0
    _live.log(f"{pods} pods created in {t_all - t_nodes:.1f}s")
    return {
        "nodes_s": round(t_nodes, 1),
        "pods_s": round(t_all - t_nodes, 1),
        "total_s": round(t_all, 1),
        "workers": workers,
        "requests": 2 * (len(nodes) + pods),
    }


# --------------------------------------------------------------------------- the child


def proc_status() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)  # kB -> MiB
    return out


async def child_main(args: argparse.Namespace) -> dict[str, Any]:
    import anyio

    from scaler.adapters.observe import LogObserver
    from scaler.app import RunOptions

    report: dict[str, Any] = {"after_imports": proc_status()}
    logs = _live.configure_controller_logs(Path(args.log))
    opts = RunOptions(
        cluster_name=CLUSTER,
        kubeconfig=args.kubeconfig,
        leader_elect=True,
        listen_host="127.0.0.1",
        listen_port=0,
    )
    t0 = time.monotonic()
    async with _live.running_controller(opts, LogObserver()) as ctl:
        with anyio.fail_after(600):
            while ctl.cluster.pod_count < args.expect_pods:
                await anyio.sleep(0.05)
        report["listed_s"] = round(time.monotonic() - t0, 2)
        report["ready"] = proc_status()
        await anyio.sleep(args.settle_s)
        report["settled"] = proc_status()
        times = []
        view = None
        for _ in range(10):
            s = time.perf_counter()
            view = await ctl.cluster.snapshot()
            times.append((time.perf_counter() - s) * 1e3)
        assert view is not None
        times.sort()
        report["snapshot_ms"] = {
            "median": round(times[len(times) // 2], 1),
            "min": round(times[0], 1),
            "max": round(times[-1], 1),
        }
        s = time.perf_counter()
        await ctl.reconciler.tick()
        report["tick_ms"] = round((time.perf_counter() - s) * 1e3, 1)
        report["view"] = {
            "nodes": len(view.nodes),
            "bound": len(view.bound),
            "pending": len(view.pending),
            "nodes_in_a_pool": sum(1 for n in view.nodes if n.pool),
        }
        report["problems"] = len(ctl.cluster.problems())
        report["end"] = proc_status()
        report["modules"] = sorted(
            m
            for m in (
                "kubernetes",
                "aiobotocore",
                "prometheus_client",
                "numpy",
                "structlog",
                "anyio",
            )
            if m in sys.modules
        )
    logs.close()
    return report


async def stages_main(args: argparse.Namespace) -> dict[str, Any]:
    """Where the resident memory comes from: the same parts ``scaler.app.run`` wires, built
    one at a time, VmRSS (MiB) after each."""
    import anyio

    from scaler.adapters.aws.fleet import AwsFleet
    from scaler.app import RunOptions, build
    from scaler.core.catalog import Catalog
    from scaler.telemetry import ignore

    def rss() -> float:
        return proc_status()["VmRSS"]

    out = {"imports": rss()}
    logs = _live.configure_controller_logs(Path(args.log))
    catalog = Catalog.load()
    out["catalog"] = rss()
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        out["aws_clients"] = rss()
        await fleet.discover()
        out["asg_discovery"] = rss()
        await fleet.prices()
        out["spot_prices"] = rss()
        opts = RunOptions(cluster_name=CLUSTER, kubeconfig=args.kubeconfig, leader_elect=False)
        ctl = build(opts, fleet, catalog, observer=ignore)
        out["kube_client_and_reconciler"] = rss()
        async with anyio.create_task_group() as tg:
            await tg.start(ctl.cluster.run)
            out["caches_listed"] = rss()
            await ctl.reconciler.tick()
            out["first_tick"] = rss()
            await ctl.reconciler.review()
            out["first_review"] = rss()
            tg.cancel_scope.cancel()
    logs.close()
    return out


def run_child(
    kube: _live.Kube, expect_pods: int, settle_s: float, log: Path, *, stages: bool = False
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--stages" if stages else "--child",
        "--kubeconfig",
        str(kube.kubeconfig),
        "--expect-pods",
        str(expect_pods),
        "--settle-s",
        str(settle_s),
        "--log",
        str(log),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=os.environ)
    if result.returncode != 0:
        raise RuntimeError(f"controller child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------- main


def measure(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="scaler-bench-memory-"))
    result: dict[str, Any] = {
        "benchmark": "controller_memory",
        "measured": "REAL: objects created in a real kube-apiserver, listed and watched by "
        "the controller's own reflectors in a separate process",
        "nodes": args.nodes,
        "pods": args.pods,
    }
    with _live.moto(), _live.kube(scheduler=False, workdir=workdir) as kube:
        asg = _live.make_account(
            CLUSTER, [_live.Group(g, TYPES[g], max_size=args.nodes) for g in GROUPS]
        )
        t0 = time.monotonic()
        per = -(-args.nodes // len(GROUPS))
        instances: list[tuple[str, str, str]] = []
        for g in GROUPS:
            want = min(per, args.nodes - len(instances))
            asg.set_desired_capacity(AutoScalingGroupName=g, DesiredCapacity=want)
            instances += [(iid, zone, g) for iid, zone in _live.instances(asg, g)]
        result["moto_instances_s"] = round(time.monotonic() - t0, 1)
        _live.log(f"{len(instances)} moto instances in {result['moto_instances_s']}s")
        api = kube.api_client()
        _live.Kubelet(api).namespace("scaler-system")  # the leader election's Lease
        api.close()
        _live.log("controller against the empty cluster (baseline)")
        result["empty"] = run_child(kube, 0, args.settle_s, workdir / "controller-empty.log")
        _live.log(f"populating {args.nodes} nodes and {args.pods} pods through the API server")
        result["populate"] = populate(kube, instances, args.pods, args.workers)
        _live.log("controller against the full cluster")
        result["full"] = run_child(kube, args.pods, args.settle_s, workdir / "controller.log")
        _live.log("the same parts built one at a time (where the memory goes)")
        result["stages_mib"] = run_child(
            kube, args.pods, args.settle_s, workdir / "controller-stages.log", stages=True
        )
    objects = args.nodes + args.pods
    full, empty = result["full"], result["empty"]
    rss = max(full["settled"]["VmRSS"], full["end"]["VmRSS"])
    result["rss_mib"] = rss
    result["rss_mb"] = round(rss * 1.048576, 1)
    result["peak_mib"] = full["end"]["VmHWM"]
    result["peak_mb"] = round(full["end"]["VmHWM"] * 1.048576, 1)
    result["per_object_kib"] = round(
        (full["settled"]["VmRSS"] - empty["settled"]["VmRSS"]) * 1024 / objects, 2
    )
    result["target_mb"] = 150
    result["met"] = result["rss_mb"] <= 150
    result["machine"] = _live.machine()
    result["controller_log"] = str(workdir / "controller.log")
    return result


def print_report(r: dict[str, Any]) -> None:
    m = r["machine"]
    f, e = r["full"], r["empty"]
    print(f"controller memory ({r['measured']})")
    print(
        f"machine: {m['nproc']} x {m['cpu_model']}, Python {m['python']}, load {m['load_avg_1m']}"
    )
    p = r["populate"]
    print(
        f"created {r['nodes']} nodes + {r['pods']} pods through the API server in "
        f"{p['total_s']} s ({p['requests']} requests, {p['workers']} threads); "
        f"{r['moto_instances_s']} s for the moto instances"
    )
    print(f"{'':28} {'VmRSS MiB':>10} {'VmHWM MiB':>10}")
    for label, d in (
        ("empty: after imports", e["after_imports"]),
        ("empty: settled", e["settled"]),
        ("full: after imports", f["after_imports"]),
        ("full: caches ready", f["ready"]),
        ("full: settled", f["settled"]),
        ("full: end", f["end"]),
    ):
        print(f"{label:28} {d['VmRSS']:>10} {d['VmHWM']:>10}")
    print(
        f"listed in {f['listed_s']} s; view {f['view']}; snapshot() median "
        f"{f['snapshot_ms']['median']} ms (min {f['snapshot_ms']['min']}, max "
        f"{f['snapshot_ms']['max']}); one tick {f['tick_ms']} ms"
    )
    print(
        f"per object: {r['per_object_kib']} KiB ((full - empty settled RSS) / "
        f"{r['nodes'] + r['pods']})"
    )
    print(
        f"resident {r['rss_mb']} MB ({r['rss_mib']} MiB), peak {r['peak_mb']} MB; target "
        f"<= 150 MB resident: {'met' if r['met'] else 'NOT met'}"
    )
    stages = r.get("stages_mib") or {}
    if stages:
        steps, before = [], 0.0
        for name, value in stages.items():
            steps.append(f"{name} {value}" + (f" (+{value - before:.1f})" if before else ""))
            before = value
        print("built one part at a time, VmRSS MiB: " + "; ".join(steps))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=16, help="threads creating objects")
    parser.add_argument(
        "--settle-s",
        type=float,
        default=15.0,
        help="steady running after the caches are full, before measuring",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stages", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--expect-pods", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child or args.stages:
        # What `scaler run` loads, before anything is measured.
        import anyio

        import scaler.app
        import scaler.cli  # noqa: F401

        report = anyio.run(stages_main if args.stages else child_main, args, backend="asyncio")
        json.dump(report, sys.stdout)
        return 0

    result = measure(args)
    return _live.finish(result, as_json=args.json, table=print_report)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
