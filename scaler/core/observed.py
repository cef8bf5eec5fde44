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

Labels and taints are learned the same way (:func:`reported_templates`): what every Ready
node of a (pool, type) carries, less the labels that differ node by node (hostname,
instance id) and the taints that come and go with a node's state (``node.kubernetes.io/*``,
cordons, scaler's and the autoscalers' own). Once known they *replace* the pool's guessed
template (:attr:`PoolSpec.observed_labels`): a label the group's nodes do not carry is no
longer assumed, and one the guess lacked (a kubelet ``--node-labels`` the tags omit) counts.
A pool all of whose types have a report uses the labels they share and the taints any has.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Final, TypeVar

from scaler.core.model import PoolSpec, Resources, Taint
from scaler.core.state import Node, NodeTemplateReport

K = TypeVar("K")
V = TypeVar("V")

Reports = Mapping[tuple[str, str], Resources]
Templates = Mapping[tuple[str, str], NodeTemplateReport]

# Labels whose value is the node's own, never its group's.
PER_NODE_LABELS: Final = frozenset({
    "kubernetes.io/hostname",
    "alpha.eksctl.io/instance-id",
    "node.k8s.amazonaws.com/instance-id",
})
# Taints that follow a node's state, not its group: the node lifecycle controller's and the
# cloud provider's (not-ready, unreachable, unschedulable, shutdown, uninitialized),
# scaler's own (interruptions, removals) and the other autoscalers' deletion marks.
_PASSING_TAINT_PREFIXES: Final = (
    "node.kubernetes.io/",
    "node.cloudprovider.kubernetes.io/",
    "scaler.io/",
    "karpenter.sh/",
)
_PASSING_TAINT_KEYS: Final = frozenset(
    {"ToBeDeletedByClusterAutoscaler", "DeletionCandidateOfClusterAutoscaler"}
)


def lasting(taint: Taint) -> bool:
    """A taint the node's group gives it, not one of its passing state."""
    return taint.key not in _PASSING_TAINT_KEYS and not taint.key.startswith(
        _PASSING_TAINT_PREFIXES
    )


def reported_templates(nodes: Iterable[Node]) -> dict[tuple[str, str], NodeTemplateReport]:
    """(pool, instance type) -> the labels and taints all its Ready nodes carry."""
    labels: dict[tuple[str, str], set[tuple[str, str]]] = {}
    taints: dict[tuple[str, str], set[Taint]] = {}
    for node in nodes:
        if node.pool is None or not node.instance_type or not node.ready or not node.labels:
            continue
        key = (node.pool, node.instance_type)
        mine = {(k, v) for k, v in node.labels if k not in PER_NODE_LABELS}
        marks = {t for t in node.taints if lasting(t)}
        labels[key] = labels[key] & mine if key in labels else mine
        taints[key] = taints[key] & marks if key in taints else marks
    return {
        key: NodeTemplateReport(tuple(sorted(labels[key])), tuple(sorted(taints[key], key=str)))
        for key in labels
    }


def remember_templates(
    kept: MutableMapping[tuple[str, str], NodeTemplateReport], nodes: Iterable[Node]
) -> bool:
    """:func:`remember_reports` for labels and taints; True if anything changed."""
    return _remember(kept, reported_templates(nodes))


def _pool_template(
    pool: PoolSpec, templates: Templates
) -> tuple[tuple[tuple[str, str], ...] | None, tuple[Taint, ...] | None]:
    """The learned labels and taints of ``pool``: None until every type has a report."""
    found = [templates.get((pool.name, t)) for t in pool.instance_types]
    if not found or any(f is None for f in found):
        return None, None
    reports = [f for f in found if f is not None]
    shared = set(reports[0].labels).intersection(*(r.labels for r in reports[1:]))
    taints = set().union(*(r.taints for r in reports))
    return tuple(sorted(shared)), tuple(sorted(taints, key=str))


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
    return _remember(kept, reported_allocatable(nodes))


def _remember(kept: MutableMapping[K, V], now: Mapping[K, V]) -> bool:
    """Update ``kept`` with ``now`` (a key ``now`` lacks keeps its last value); True if
    anything changed."""
    changed = False
    for key, value in now.items():
        if kept.get(key) != value:
            kept[key] = value
            changed = True
    return changed


class ObservedPools:
    """Sets :attr:`PoolSpec.observed_allocatable` from the reports. The same pool and the same
    reports give back the very same object, so the offerings built from them are not rebuilt
    (scaler/loop/offerings_cache.py compares pools by identity first)."""

    def __init__(self) -> None:
        self._memo: dict[str, tuple[PoolSpec, object, PoolSpec]] = {}

    def __call__(
        self, pools: Sequence[PoolSpec], reports: Reports, templates: Templates | None = None
    ) -> Sequence[PoolSpec]:
        if not reports and not templates:
            return pools
        out = []
        for pool in pools:
            observed = tuple(
                (t, reports[(pool.name, t)])
                for t in pool.instance_types
                if (pool.name, t) in reports
            )
            labels, taints = _pool_template(pool, templates or {})
            seen = (observed, labels, taints)
            if seen == (pool.observed_allocatable, pool.observed_labels, pool.observed_taints):
                out.append(pool)
                continue
            memo = self._memo.get(pool.name)
            if memo is not None and memo[1] == seen and (memo[0] is pool or memo[0] == pool):
                out.append(memo[2])
                continue
            capped = dataclasses.replace(
                pool, observed_allocatable=observed, observed_labels=labels, observed_taints=taints
            )
            self._memo[pool.name] = (pool, seen, capped)
            out.append(capped)
        return out
