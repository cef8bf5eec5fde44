"""Node lifecycle against real parts: interruption notices through SQS, drains, idle removal.

Real, all on 127.0.0.1 and stopped at the end: kube-apiserver + kube-scheduler v1.20.2
(tools/kube/start-kube.sh); moto's ThreadedMotoServer in its own process (ASGs, EC2
instances, SQS queues); the controller as ``scaler run --queue-url ...`` runs it
(``scaler.app.run``: leader election, watches, the control loop, and the ``notices`` task:
SqsInterruptionFeed.receive -> Reconciler.respond(spawn=...) -> ack). Played by the benchmark,
since the test control plane has none: the kubelet (Nodes and their status, pods bound with
spec.nodeName and reported Running) and the disruption controller (PDB status).

(a) SQS -> cordon: a real EventBridge-shaped Spot interruption warning for an instance of a
    tagged ASG whose Node exists (providerID aws:///us-east-1a/<instance id>); measured from
    just before SendMessage to the benchmark's node watch seeing spec.unschedulable=true and
    the scaler.io/interrupted taint. Repeated ``--repeats`` times, one at a time. Target:
    median <= 1 s.
(b) ``--storm-nodes`` (100) nodes interrupted at once: each node runs one workload pod; some
    pods are covered by policy/v1beta1 PodDisruptionBudgets (maxUnavailable 1, 5 pods each);
    all warnings are sent at once (SendMessageBatch). Every pod's eviction (the watch seeing
    it deleted or deletionTimestamp set) is checked against its deadline: the event's time +
    120 s - 15 s margin. The benchmark plays the disruption controller: ``--pdb-ready-s``
    after a covered pod is gone (its replacement would be Ready elsewhere) the PDB allows one
    disruption again.
(c) idle node removed: with idle_timeout_s=``--idle-timeout-s`` (20), nodes of a tagged ASG
    whose last workload pod is deleted; measured from the watch seeing that pod deleted to
    the controller's TerminateInstanceInAutoScalingGroup call (the real aiobotocore client's
    method, wrapped to stamp the call). Target: <= idle timeout + 15 s.

    python benchmarks/lifecycle_live.py [--repeats 10] [--storm-nodes 100] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import _live

CLUSTER = "bench"
SPOT_WARNING_S = 120.0
DRAIN_MARGIN_S = 15.0
TAINT = "scaler.io/interrupted"
REPLACEMENTS = [
    _live.Group("od-m5-large", "m5.large", max_size=400),
    _live.Group("spot-c5-large", "c5.large", spot=True, max_size=400),
    _live.Group("od-m5-xlarge", "m5.xlarge", max_size=400),
]


def spot_warning(instance_id: str, at: float) -> tuple[str, float]:
    """An EventBridge Spot interruption warning as EC2 sends it; and the event time the
    controller will read from it (the ``time`` field has 1 s resolution)."""
    stamp = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": stamp,
        "region": "us-east-1",
        "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "instance-action": "terminate"},
    }
    return json.dumps(body), dt.datetime.fromisoformat(stamp).timestamp()


def reset_moto(url: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10):
        pass


def fresh_cluster(kubelet: _live.Kubelet, namespace: str) -> None:
    """No Nodes left from an earlier part; a new namespace for this one."""
    for node in kubelet.core.list_node().items:
        kubelet.core.delete_node(node.metadata.name, grace_period_seconds=0)
    kubelet.namespace("scaler-system")  # the leader election's Lease
    kubelet.namespace(namespace)


def interrupted(obj: dict[str, Any]) -> bool:
    spec = obj.get("spec") or {}
    return bool(spec.get("unschedulable")) and any(
        t.get("key") == TAINT for t in spec.get("taints") or ()
    )


def nodes_for(kubelet: _live.Kubelet, asg: Any, group: str, prefix: str) -> list[tuple[str, str]]:
    """A Ready Node for every instance of ``group``: [(node name, instance id)]."""
    out = []
    for i, (instance_id, zone) in enumerate(_live.instances(asg, group)):
        name = f"{prefix}-{i:03d}"
        kubelet.node(name, instance_id=instance_id, zone=zone, instance_type="m5.large", spot=True)
        out.append((name, instance_id))
    return out


def options(
    kube: _live.Kube,
    queue: str | None,
    quarantine: str | None,
    overrides: dict[str, str] | None = None,
) -> Any:
    from scaler.app import RunOptions
    from scaler.core.settings import Settings

    return RunOptions(
        cluster_name=CLUSTER,
        kubeconfig=str(kube.kubeconfig),
        settings=Settings().with_overrides(overrides or {}),
        leader_elect=True,
        listen_host="127.0.0.1",
        listen_port=0,
        queue_url=queue,
        quarantine_queue_url=quarantine,
    )


class Events:
    """The controller's observations, stamped, for the report (and the log, as usual)."""

    def __init__(self) -> None:
        from scaler.adapters.observe import LogObserver
        from scaler.telemetry import by_name

        self.items: list[tuple[float, str, dict[str, Any]]] = []
        self.observer = LogObserver(by_name(lambda e, f: self.items.append((time.time(), e, f))))

    def of(self, name: str) -> list[dict[str, Any]]:
        return [f for _, e, f in self.items if e == name]


# ----------------------------------------------------------------------------------- (a)


async def part_a(args: argparse.Namespace, kube: _live.Kube, url: str) -> dict[str, Any]:
    import anyio
    import boto3

    reset_moto(url)
    api = kube.api_client()
    kubelet = _live.Kubelet(api)
    fresh_cluster(kubelet, "part-a")
    asg = _live.make_account(
        CLUSTER,
        [
            _live.Group("spot-a", "m5.large", spot=True, desired=args.repeats, max_size=200),
            *REPLACEMENTS,
        ],
    )
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="scaler-interruptions")["QueueUrl"]
    quarantine = sqs.create_queue(QueueName="scaler-quarantine")["QueueUrl"]
    nodes = nodes_for(kubelet, asg, "spot-a", "a")
    for name, _ in nodes:
        kubelet.running_pod("part-a", f"w-{name}", name)

    seen: dict[str, float] = {}
    arrived = threading.Condition()

    def on_node(t: float, kind: str, obj: dict[str, Any]) -> None:
        if kind != "DELETED" and interrupted(obj):
            with arrived:
                seen.setdefault(obj["metadata"]["name"], t)
                arrived.notify_all()

    events = Events()
    rows = []
    with _live.Watch(kubelet.core.list_node, on_node):
        async with _live.running_controller(options(kube, queue, quarantine), events.observer):
            _live.log(f"(a) controller leading; {args.repeats} warnings one at a time")
            for name, instance_id in nodes:
                body, _ = spot_warning(instance_id, time.time())
                sent = time.time()
                await anyio.to_thread.run_sync(
                    lambda b=body: sqs.send_message(QueueUrl=queue, MessageBody=b)
                )
                with anyio.move_on_after(30):
                    while name not in seen:
                        await anyio.sleep(0.01)
                rows.append(
                    {
                        "node": name,
                        "instance_id": instance_id,
                        "sent": sent,
                        "cordoned_tainted_seen": seen.get(name),
                        "latency_s": round(seen[name] - sent, 3) if name in seen else None,
                    }
                )
                # Let the drain (one pod) and the instance's termination finish before the next.
                await anyio.sleep(args.gap_s)
            with anyio.move_on_after(10):
                while len(events.of("drained")) < len(nodes):
                    await anyio.sleep(0.1)
    left = int(
        sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]["ApproximateNumberOfMessages"]
    )
    api.close()
    latencies = [r["latency_s"] for r in rows if r["latency_s"] is not None]
    s = _live.stats(latencies)
    return {
        "repeats": args.repeats,
        "latency_s": s,
        "missed": [r["node"] for r in rows if r["latency_s"] is None],
        "drained": len(events.of("drained")),
        "drained_in_time": sum(1 for f in events.of("drained") if f["in_time"]),
        "messages_left_in_queue": left,
        "target_median_s": 1.0,
        "met": bool(latencies) and len(latencies) == len(rows) and s["median"] <= 1.0,
        "rows": rows,
    }


# ----------------------------------------------------------------------------------- (b)


class DisruptionController:
    """What kube-controller-manager's disruption controller would do for the benchmark's
    PDBs (maxUnavailable 1): ``ready_s`` after a covered pod is gone, its replacement counts
    as healthy again and the budget allows one disruption."""

    def __init__(
        self, kubelet: _live.Kubelet, namespace: str, ready_s: float, sizes: dict[str, int]
    ) -> None:
        self.kubelet = kubelet
        self.namespace = namespace
        self.ready_s = ready_s
        self.sizes = sizes
        self.timers: list[threading.Timer] = []
        self.restores = 0

    def pod_gone(self, pdb: str) -> None:
        timer = threading.Timer(self.ready_s, self._restore, args=(pdb,))
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    def _restore(self, pdb: str) -> None:
        path = f"/apis/policy/v1beta1/namespaces/{self.namespace}/poddisruptionbudgets/{pdb}"
        with contextlib.suppress(Exception):
            current = _live.kube_request(self.kubelet.api, "GET", path)
            self.kubelet.pdb_status(
                self.namespace,
                pdb,
                generation=current["metadata"]["generation"],
                healthy=self.sizes[pdb],
                expected=self.sizes[pdb],
                allowed=1,
            )
            self.restores += 1

    def stop(self) -> None:
        for timer in self.timers:
            timer.cancel()


async def part_b(args: argparse.Namespace, kube: _live.Kube, url: str) -> dict[str, Any]:
    import anyio
    import boto3

    ns = "part-b"
    reset_moto(url)
    api = kube.api_client(pool_size=16)
    kubelet = _live.Kubelet(api)
    fresh_cluster(kubelet, ns)
    n = args.storm_nodes
    asg = _live.make_account(
        CLUSTER,
        [
            _live.Group("spot-b", "m5.large", spot=True, desired=n, max_size=max(200, 2 * n)),
            *REPLACEMENTS,
        ],
    )
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="scaler-interruptions")["QueueUrl"]
    quarantine = sqs.create_queue(QueueName="scaler-quarantine")["QueueUrl"]
    t0 = time.monotonic()
    nodes = nodes_for(kubelet, asg, "spot-b", "b")
    pdb_of: dict[str, str] = {}
    sizes: dict[str, int] = {}
    covered = n * args.pdb_share // 100
    for i, (name, _) in enumerate(nodes):
        labels = {"app": f"w{i}"}
        if i < covered:
            pdb = f"pdb-{i // 5}"
            labels["budget"] = pdb
            pdb_of[f"w-{name}"] = pdb
            sizes[pdb] = sizes.get(pdb, 0) + 1
        kubelet.running_pod(ns, f"w-{name}", name, labels=labels)
    for pdb, size in sizes.items():
        kubelet.pdb(ns, pdb, {"budget": pdb}, max_unavailable=1, expected=size)
    _live.log(
        f"(b) {n} nodes, {n} pods, {len(sizes)} PDBs ({covered} pods covered) made in "
        f"{time.monotonic() - t0:.1f}s"
    )

    disruption = DisruptionController(kubelet, ns, args.pdb_ready_s, sizes)
    cordoned: dict[str, float] = {}
    evicted: dict[str, float] = {}
    lock = threading.Lock()

    def on_node(t: float, kind: str, obj: dict[str, Any]) -> None:
        if kind != "DELETED" and interrupted(obj):
            with lock:
                cordoned.setdefault(obj["metadata"]["name"], t)

    def on_pod(t: float, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            with lock:
                first = meta["name"] not in evicted
                evicted.setdefault(meta["name"], t)
            if first and meta["name"] in pdb_of:
                disruption.pod_gone(pdb_of[meta["name"]])
            if kind != "DELETED":  # the kubelet confirms the container stopped
                with contextlib.suppress(Exception):
                    kubelet.core.delete_namespaced_pod(meta["name"], ns, grace_period_seconds=0)

    events = Events()
    deadline_of: dict[str, float] = {}
    with (
        _live.Watch(kubelet.core.list_node, on_node),
        _live.Watch(kubelet.core.list_namespaced_pod, on_pod, namespace=ns),
    ):
        async with _live.running_controller(options(kube, queue, quarantine), events.observer):
            _live.log(f"(b) controller leading; sending {n} warnings at once")
            now = time.time()
            entries = []
            for name, instance_id in nodes:
                body, at = spot_warning(instance_id, now)
                deadline_of[f"w-{name}"] = at + SPOT_WARNING_S - DRAIN_MARGIN_S
                entries.append({"Id": name, "MessageBody": body})
            sent = time.time()
            for i in range(0, len(entries), 10):
                batch = entries[i : i + 10]
                await anyio.to_thread.run_sync(
                    lambda b=batch: sqs.send_message_batch(QueueUrl=queue, Entries=b)
                )
            sent_done = time.time()
            with anyio.move_on_after(SPOT_WARNING_S + 30):
                while len(events.of("drained")) < n:
                    await anyio.sleep(0.2)
            drained_at = time.time()
            await anyio.sleep(1.0)
    disruption.stop()
    left = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    api.close()

    pods = sorted(deadline_of)
    slack = {p: deadline_of[p] - evicted[p] for p in pods if p in evicted}
    in_time = [p for p, s in slack.items() if s >= 0]
    late = [p for p, s in slack.items() if s < 0]
    drained = events.of("drained")
    last_eviction = max(evicted.values()) if evicted else None
    covered_slack = [slack[p] for p in pods if p in pdb_of and p in slack]
    free_slack = [slack[p] for p in pods if p not in pdb_of and p in slack]
    return {
        "nodes": n,
        "pods": len(pods),
        "pdbs": len(sizes),
        "pods_under_pdb": covered,
        "pdb_ready_s": args.pdb_ready_s,
        "send_s": round(sent_done - sent, 3),
        "cordoned": len(cordoned),
        "send_to_all_cordoned_s": round(max(cordoned.values()) - sent, 3) if cordoned else None,
        "send_to_cordon_s": _live.stats([t - sent for t in cordoned.values()]),
        "evicted": len(evicted),
        "evicted_in_time": len(in_time),
        "evicted_late": len(late),
        "not_evicted": [p for p in pods if p not in evicted],
        "whole_drain_s": round(last_eviction - sent, 3) if last_eviction else None,
        "send_to_eviction_s": _live.stats([evicted[p] - sent for p in pods if p in evicted]),
        "slack_before_deadline_s": _live.stats(list(slack.values())),
        "slack_pdb_pods_s": _live.stats(covered_slack),
        "slack_free_pods_s": _live.stats(free_slack),
        "pdb_restores": disruption.restores,
        "controller_drained_events": len(drained),
        "controller_drained_in_time": sum(1 for f in drained if f["in_time"]),
        "controller_took_s": _live.stats([float(f["took_s"]) for f in drained]),
        "evict_gave_up": len(events.of("evict_gave_up")),
        "replacement_nodes_by_pool": dict(
            Counter(f["pool"] for f in events.of("scale_up") for _ in range(int(f["count"])))
        ),
        "terminated": len(events.of("remove_node")),
        "queue_after": {k: int(v) for k, v in left.items()},
        "all_drained_after_s": round(drained_at - sent, 3),
        "met": not late and len(in_time) == len(pods),
    }


# ----------------------------------------------------------------------------------- (c)


async def part_c(args: argparse.Namespace, kube: _live.Kube, url: str) -> dict[str, Any]:
    import anyio

    ns = "part-c"
    reset_moto(url)
    api = kube.api_client()
    kubelet = _live.Kubelet(api)
    fresh_cluster(kubelet, ns)
    asg = _live.make_account(
        CLUSTER,
        [_live.Group("idle-c", "m5.large", desired=args.idle_nodes, max_size=50), *REPLACEMENTS],
    )
    nodes = nodes_for(kubelet, asg, "idle-c", "c")
    for name, _ in nodes:
        kubelet.running_pod(ns, f"w-{name}", name)

    gone: dict[str, float] = {}

    def on_pod(t: float, kind: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            gone.setdefault(obj["metadata"]["name"], t)

    terminated: dict[str, float] = {}
    events = Events()
    opts = options(kube, None, None, {"idle_timeout_s": str(args.idle_timeout_s)})
    with _live.Watch(kubelet.core.list_namespaced_pod, on_pod, namespace=ns):
        async with _live.running_controller(opts, events.observer) as ctl:
            client = ctl.fleet.autoscaling
            real = client.terminate_instance_in_auto_scaling_group

            async def terminate(**kwargs: Any) -> Any:
                terminated.setdefault(kwargs["InstanceId"], time.time())
                return await real(**kwargs)

            client.terminate_instance_in_auto_scaling_group = terminate
            _live.log(
                f"(c) controller leading; idle_timeout_s={args.idle_timeout_s}; "
                f"deleting the last pod of {len(nodes)} nodes, {args.idle_gap_s}s apart"
            )
            for name, _ in nodes:
                await anyio.to_thread.run_sync(
                    lambda n=name: kubelet.core.delete_namespaced_pod(
                        f"w-{n}", ns, grace_period_seconds=0
                    )
                )
                await anyio.sleep(args.idle_gap_s)
            with anyio.move_on_after(args.idle_timeout_s + 60):
                # remove_node is observed once TerminateInstanceInAutoScalingGroup returned.
                while len(events.of("remove_node")) < len(nodes):
                    await anyio.sleep(0.1)
    after = _live.desired(asg)["idle-c"]
    api.close()
    rows = []
    for name, instance_id in nodes:
        idle = gone.get(f"w-{name}")
        t = terminated.get(instance_id)
        rows.append(
            {
                "node": name,
                "instance_id": instance_id,
                "idle_from": idle,
                "terminate_call": t,
                "latency_s": round(t - idle, 3) if t and idle else None,
            }
        )
    latencies = [r["latency_s"] for r in rows if r["latency_s"] is not None]
    budget = args.idle_timeout_s + 15.0
    return {
        "idle_timeout_s": args.idle_timeout_s,
        "nodes": len(nodes),
        "idle_to_terminate_s": _live.stats(latencies),
        "removed": len(latencies),
        "desired_before": args.idle_nodes,
        "desired_after": after,
        "target_s": budget,
        "met": len(latencies) == len(nodes) and max(latencies) <= budget,
        "rows": rows,
    }


# ----------------------------------------------------------------------------------- main


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(
        f"node lifecycle (live), {m['nproc']} x {m['cpu_model']}, Python {m['python']}, "
        f"load {m['load_avg_1m']}"
    )
    if "a" in result:
        a = result["a"]
        s = a["latency_s"]
        print(
            f"(a) SQS send -> cordoned+tainted (watch), {a['repeats']} warnings: median "
            f"{s.get('median')} s, p90 {s.get('p90')} s, max {s.get('max')} s "
            f"(target median <= 1 s: {'met' if a['met'] else 'NOT met'}); drained in time "
            f"{a['drained_in_time']}/{a['drained']}, queue left {a['messages_left_in_queue']}"
        )
    if "b" in result:
        b = result["b"]
        print(
            f"(b) {b['nodes']} nodes interrupted at once ({b['pods_under_pdb']} pods under "
            f"{b['pdbs']} PDBs): evicted in time {b['evicted_in_time']}/{b['pods']}, late "
            f"{b['evicted_late']}, not evicted {len(b['not_evicted'])}; all cordoned "
            f"{b['send_to_all_cordoned_s']} s after sending; whole drain "
            f"{b['whole_drain_s']} s; least slack before a deadline "
            f"{b['slack_before_deadline_s'].get('min')} s "
            f"({'met' if b['met'] else 'NOT met'})"
        )
    if "c" in result:
        c = result["c"]
        s = c["idle_to_terminate_s"]
        print(
            f"(c) idle -> TerminateInstanceInAutoScalingGroup, timeout {c['idle_timeout_s']} s,"
            f" {c['nodes']} nodes: median {s.get('median')} s, max {s.get('max')} s (target "
            f"<= {c['target_s']} s: {'met' if c['met'] else 'NOT met'}); desired "
            f"{c['desired_before']} -> {c['desired_after']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="abc", help="which parts to run (default abc)")
    parser.add_argument("--repeats", type=int, default=10, help="(a) warnings, one at a time")
    parser.add_argument("--gap-s", type=float, default=2.0, help="(a) pause between warnings")
    parser.add_argument("--storm-nodes", type=int, default=100, help="(b) nodes interrupted")
    parser.add_argument(
        "--pdb-share",
        type=int,
        default=50,
        help="(b) percent of the pods covered by PDBs (5 pods per PDB)",
    )
    parser.add_argument(
        "--pdb-ready-s",
        type=float,
        default=2.0,
        help="(b) after a covered pod is gone, seconds until its PDB allows another disruption",
    )
    parser.add_argument("--idle-timeout-s", type=float, default=20.0)
    parser.add_argument("--idle-nodes", type=int, default=5)
    parser.add_argument("--idle-gap-s", type=float, default=3.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    import anyio

    workdir = Path(tempfile.mkdtemp(prefix="scaler-bench-lifecycle-"))
    result: dict[str, Any] = {
        "benchmark": "lifecycle_live",
        "what": "real kube-apiserver + kube-scheduler v1.20.2, moto server (own process) for "
        "ASG/EC2/SQS, scaler.app.run with a queue; the kubelet and the disruption "
        "controller are played by the benchmark",
    }
    with _live.moto() as url, _live.kube(workdir=workdir) as kube:
        logs = _live.configure_controller_logs(workdir / "controller.log")
        for part, fn in (("a", part_a), ("b", part_b), ("c", part_c)):
            if part in args.parts:
                started = time.monotonic()
                result[part] = anyio.run(fn, args, kube, url, backend="asyncio")
                result[part]["ran_s"] = round(time.monotonic() - started, 1)
        logs.close()
    result["machine"] = _live.machine()
    result["controller_log"] = str(workdir / "controller.log")
    result["met"] = all(result[p]["met"] for p in "abc" if p in result)
    return _live.finish(result, as_json=args.json, table=print_report)


if __name__ == "__main__":
    sys.exit(main())
