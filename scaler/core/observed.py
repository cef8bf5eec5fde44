"""What registered nodes say a pool's nodes can hold, where the model says more.

The EKS model (:func:`scaler.core.catalog.node_allocatable`) starts from the catalog's memory,
but a node has less: the kernel and firmware keep a few percent, more on some families than
others. A pod sized into that gap gets placed on a pool whose nodes cannot take it. The node
launches, the pod stays pending, the node goes idle and is removed, and the next tick
launches it again. cluster-autoscaler avoids this by building its templates from a live node
of the group. scaler does the same, more narrowly. Once a node of a pool is Ready, its
allocatable (the kubelet's own figure) caps that pool's CPU, memory and pods for its
instance type, and replaces its ephemeral storage (the root volume is whatever the launch
template or AMI gave, larger or smaller than the model's guess). GPUs (advertised minutes
late) keep the model.

- A pool no node of which has registered yet keeps the model.
- So does a type of a mixed-instances pool that has no registered node yet.
- A report outlives the pool's nodes: scaling a GPU pool to zero and back from zero still
  uses it.
- For each (pool, type) the largest current report counts. Nodes of one type and one launch
  template report the same, so one node that reports less (a kubelet mid-restart, a bad
  reservation) must not shrink the pool for every pod.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, MutableMapping, Sequence

from scaler.core.model import PoolSpec, Resources
from scaler.core.state import Node

Reports = Mapping[tuple[str, str], Resources]


def reported_allocatable(nodes: Iterable[Node]) -> dict[tuple[str, str], Resources]:
    """(pool, instance type) -> the largest allocatable its Ready nodes report."""
    seen: dict[tuple[str, str], Resources] = {}
    for node in nodes:
        if node.pool is None or not node.instance_type or not node.ready:
            continue
        a = node.allocatable
        if a.cpu_milli <= 0 or a.memory_mib <= 0 or a.pods <= 0:
            continue  # not reported (yet)
        key = (node.pool, node.instance_type)
        before = seen.get(key)
        seen[key] = a if before is None else before.maximum(a)
    return seen


def remember_reports(
    kept: MutableMapping[tuple[str, str], Resources], nodes: Iterable[Node]
) -> bool:
    """Update ``kept`` with the current reports (a (pool, type) with no Ready node keeps its
    last one); True if anything changed."""
    changed = False
    for key, value in reported_allocatable(nodes).items():
        if kept.get(key) != value:
            kept[key] = value
            changed = True
    return changed


class ObservedPools:
    """Sets :attr:`PoolSpec.observed_allocatable` from the reports. The same pool and the same
    reports give back the very same object, so the offerings built from them are not rebuilt
    (scaler/loop/offerings_cache.py compares pools by identity first)."""

    def __init__(self) -> None:
        self._memo: dict[str, tuple[PoolSpec, tuple[tuple[str, Resources], ...], PoolSpec]] = {}

    def __call__(self, pools: Sequence[PoolSpec], reports: Reports) -> Sequence[PoolSpec]:
        if not reports:
            return pools
        out = []
        for pool in pools:
            observed = tuple(
                (t, reports[(pool.name, t)])
                for t in pool.instance_types
                if (pool.name, t) in reports
            )
            if observed == pool.observed_allocatable:
                out.append(pool)
                continue
            memo = self._memo.get(pool.name)
            if memo is not None and memo[1] == observed and (memo[0] is pool or memo[0] == pool):
                out.append(memo[2])
                continue
            capped = dataclasses.replace(pool, observed_allocatable=observed)
            self._memo[pool.name] = (pool, observed, capped)
            out.append(capped)
        return out
