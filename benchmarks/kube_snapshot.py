"""What one tick of the live controller costs in its cluster source: ``KubeCluster.snapshot()``
and the indexes every tick asks for (``node_index``, ``bound_index``), with ``--nodes`` nodes
and ``--pods`` bound pods in the caches and 0, 1 or 10 changes between two snapshots.

No API server: the caches are filled and changed through the reflector's callbacks
(``_replace_nodes``, ``_replace_pods``, ``_node_event``, ``_pod_event``) with converted
values, as the watches would hand them over. The nodes are on EC2 instances, a tenth of
them in a group their ``scaler.io/pool`` label does not name (their value with the
instance's pool differs from the converted one); the instance -> pool map is a new, equal
dict every tick (the worse case: ``AwsFleet.discover`` hands back its last map when the
instances are the same). A change is, in turn, a node's idle mark
set or cleared, a pod bound, a bound pod deleted.

Run it against two trees to compare them (the callbacks are the same in both)::

    PYTHONPATH=../old-tree python benchmarks/kube_snapshot.py   # before (another checkout)
    PYTHONPATH=$PWD python benchmarks/kube_snapshot.py           # after
    python benchmarks/kube_snapshot.py --nodes 500 --pods 5000 --ticks 300 --json

Per tick: the median wall time of the timed section, the Python function calls in it
(cProfile, a separate pass: deterministic), and how many ticks walked a tuple instead of
being told what changed (``walks``: ``NodeIndex.next`` and ``BoundIndex.next`` calls, two a
tick when both tuples are walked).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import statistics
import time
from typing import Any

import anyio
from kubernetes.client import ApiClient

from scaler.adapters.kube.cluster import KubeCluster
from scaler.adapters.kube.convert import Converted
from scaler.core.model import PodSpec, Resources
from scaler.core.state import ANNOTATION_IDLE_SINCE, BoundPod, Node
from scaler.core.viewindex import BoundIndex, NodeIndex, bound_index, node_index

POOLS = ("ng-m5-2xlarge", "ng-m5-4xlarge", "ng-r5-2xlarge", "ng-c5-4xlarge")


class Rig:
    """One KubeCluster with full caches, and the changes made to them between ticks."""

    def __init__(self, nodes: int, pods: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.instances: dict[str, str] = {}
        self.cluster = KubeCluster(ApiClient(), instance_pools=lambda: self.instances)
        self.nodes: dict[str, Node] = {}
        for i in range(nodes):
            label = POOLS[i % len(POOLS)]
            name = f"ip-10-0-{i // 250}-{i % 250}.ec2.internal"
            instance = f"i-{i:017x}"
            # A tenth are in another group than their label says.
            self.instances[instance] = POOLS[(i + 1) % len(POOLS)] if i % 10 == 0 else label
            self.nodes[name] = Node(
                name, label, "m5.2xlarge", "on-demand", zone="us-east-1a",
                instance_id=instance, allocatable=Resources(8000, 30000, 0, 58),
                created_s=float(i), labels=(("scaler.io/pool", label),),
            )
        self.cluster._replace_nodes({k: Converted(v) for k, v in self.nodes.items()})
        self.names = list(self.nodes)
        self.serial = 0
        self.bound: list[str] = []
        self.cluster._replace_pods({
            key: ("", Converted(BoundPod(PodSpec(key), self.rng.choice(self.names))))
            for key in (self._new_key() for _ in range(pods))
        })

    def _new_key(self) -> str:
        self.serial += 1
        key = f"ns/pod-{self.serial}"
        self.bound.append(key)
        return key

    def change(self, k: int) -> None:
        for _ in range(k):
            what = self.serial % 3
            if what == 0:
                name = self.rng.choice(self.names)
                node = self.nodes[name]
                marked = () if node.annotations else ((ANNOTATION_IDLE_SINCE, "100"),)
                self.nodes[name] = node = Node(**{**_fields(node), "annotations": marked})
                self.cluster._node_event(name, Converted(node))
                self.serial += 1
            elif what == 1:
                key = self._new_key()
                pod = BoundPod(PodSpec(key), self.rng.choice(self.names))
                self.cluster._pod_event(key, ("", Converted(pod)))
            else:
                key = self.bound.pop(self.rng.randrange(len(self.bound)))
                self.cluster._pod_event(key, None)
                self.serial += 1
        self.instances = dict(self.instances)  # a new discovery: a new, equal map

    async def tick(self) -> None:
        view = await self.cluster.snapshot()
        node_index(view)
        bound_index(view)


def _fields(node: Node) -> dict[str, Any]:
    return {f: getattr(node, f) for f in Node.__dataclass_fields__}


def measure(nodes: int, pods: int, changes: int, ticks: int, seed: int) -> dict[str, float]:
    rig = Rig(nodes, pods, seed)
    walks = 0
    real_next = (NodeIndex.next, BoundIndex.next)

    def counted(real: Any) -> Any:
        def next_(self: Any, t: Any) -> Any:
            nonlocal walks
            walks += 1
            return real(self, t)
        return next_

    NodeIndex.next, BoundIndex.next = counted(real_next[0]), counted(real_next[1])  # type: ignore[method-assign]
    try:
        async def run() -> dict[str, float]:
            nonlocal walks
            for _ in range(3):  # the first build, and a tick or two after it
                rig.change(changes)
                await rig.tick()
            walks = 0
            times = []
            for _ in range(ticks):
                rig.change(changes)
                start = time.perf_counter()
                await rig.tick()
                times.append(time.perf_counter() - start)
            walked = walks
            profile = cProfile.Profile()
            calls = []
            for _ in range(20):
                rig.change(changes)
                profile.enable()
                await rig.tick()
                profile.disable()
                stats = pstats.Stats(profile)
                calls.append(stats.total_calls)  # type: ignore[attr-defined]
                profile = cProfile.Profile()
            return {
                "median_us": statistics.median(times) * 1e6,
                "calls_per_tick": statistics.median(calls),
                "walks": walked,
                "ticks": ticks,
            }

        return anyio.run(run)
    finally:
        NodeIndex.next, BoundIndex.next = real_next  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = {
        str(k): measure(args.nodes, args.pods, k, args.ticks, args.seed) for k in (0, 1, 10)
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{args.nodes} nodes, {args.pods} bound pods; per tick: snapshot + node_index + "
          f"bound_index")
    print(f"{'changes':>8} {'median us':>10} {'calls':>8} {'walks':>6} {'ticks':>6}")
    for k, r in out.items():
        print(f"{k:>8} {r['median_us']:>10.1f} {r['calls_per_tick']:>8.0f} "
              f"{r['walks']:>6} {r['ticks']:>6}")


if __name__ == "__main__":
    main()
