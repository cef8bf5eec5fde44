"""How long a pod will run, and how much work a Spot interruption would throw away.

Placement charges a Spot pool, per pod, the expected cost of the work an interruption
would make it redo: ``interruptions per hour x lost work (h) x the pool's $/h``
(:func:`scaler.core.placement.cost_matrix`). A 10-minute batch pod loses minutes; a pod
that runs for weeks without a checkpoint loses, on average, half its run. This module
estimates the lost work from what the cluster knows about the pod, first rule that applies:

1. ``scaler.io/expected-runtime`` on the pod (``90m``, ``6h``, ``3d``, or seconds): the
   owner says how long it runs. Interrupted at a uniform moment of the rest of its run, it
   loses what it has done so far plus half of what is left.
2. Notebook-like pods (label ``component=singleuser-server``, as Zero to JupyterHub sets it;
   a ``notebook-name`` label, as Kubeflow's notebook controller sets it; or
   ``app.kubernetes.io/component`` ``notebook`` / ``singleuser-server``): unsaved work,
   ``spot_lost_work_h`` (the documented day of an unsaved notebook).
3. Pods of a ReplicaSet, StatefulSet, DaemonSet or ReplicationController (services): they
   restart and carry on; an interruption costs a restart, ``service_lost_work_h``.
4. Everything else runs to completion (Jobs, CronJobs, bare pods): from the history of
   completed runs of the same workload (:func:`workload_key`: the name without the suffix a
   controller generates; a CronJob's Jobs share one), else of its
   namespace (at least ``runtime_min_samples`` runs), else ``spot_lost_work_h``.

From a history of runtimes ``t_i`` and a pod of age ``a`` (0 when pending): the runs still
going at ``a`` are those with ``t_i > a``; the rest of a run is ``r_i = t_i - a``. An
interruption comes at a uniform moment of the rest, and a run is hit in proportion to its
length, so the expected lost work is ``a + sum(r_i^2) / (2 sum(r_i))`` (the length-biased
mean of half the rest). A heavy tail therefore counts: a namespace whose median pod runs 9
minutes but whose 1% run for months expects hundreds of hours lost per interruption, because
that is where interruptions land. A pod older than every run in its history is expected to
run as long again (``r = a``). A namespace keeps only count, sum and sum of squares, which
cannot be conditioned on age: a pod judged by its namespace at age ``a > 0`` expects
``a + max(sum(t^2) / (2 sum(t)), a / 2)``, the larger of the namespace's figure and "as
long again". Placement only judges pods at age 0 (pending, or about to be re-created).
The charge is first order in the rate: a run as long as the time between interruptions
(months on the worst Spot bucket) is lost more than once on average, which it leaves out.

The history comes from the cluster (``ClusterView.runtimes``): the live source records a
pod that reaches Succeeded/Failed or is deleted after it started; the simulator records a
run that finishes or is lost. :class:`RuntimeRecorder` bounds it: at most
:data:`SAMPLES_PER_WORKLOAD` recent runtimes per workload, :data:`MAX_WORKLOADS` workloads
(least recently finished dropped first), three numbers per namespace.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from scaler.core.frozen import slot_init
from scaler.core.model import FloatArray, PodSpec
from scaler.core.settings import PlacementSettings

ANNOTATION_EXPECTED_RUNTIME: Final = "scaler.io/expected-runtime"
"""On a pod: how long it runs in all (``45m``, ``6h``, ``2d``, or seconds)."""
SAMPLES_PER_WORKLOAD: Final = 32
"""Recent runtimes kept per workload: enough for a median and a tail, a few hundred bytes."""
MAX_WORKLOADS: Final = 1024
"""Workloads remembered; the one whose last run ended longest ago is forgotten first. A
cluster of bare pods (each its own workload) is judged by its namespaces instead."""

SERVICE_KINDS: Final = frozenset({"ReplicaSet", "StatefulSet", "DaemonSet", "ReplicationController"})
NOTEBOOK_LABELS: Final = (("component", "singleuser-server"),)
NOTEBOOK_LABEL_KEYS: Final = ("notebook-name",)
NOTEBOOK_COMPONENTS: Final = frozenset({"notebook", "singleuser-server"})

_GENERATED = re.compile(r"-[bcdfghjklmnpqrstvwxz2456789]{5}$")
_CRON_SUFFIX = re.compile(r"-\d{8,}$")
"""A CronJob names its Jobs ``<cronjob>-<scheduled time in minutes>``."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S: Final = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def workload_key(pod: PodSpec) -> str:
    """``namespace/name`` without the generated suffix (as
    :func:`scaler.core.lifecycle.workload_of`), and for a Job's pod without the CronJob's
    schedule suffix too, so the runs of one CronJob are one history."""
    name = _GENERATED.sub("", pod.name)
    if pod.owner_kind == "Job":
        name = _CRON_SUFFIX.sub("", name)
    return f"{pod.namespace}/{name}"


def parse_duration_s(text: str) -> float | None:
    """``90``, ``90s``, ``45m``, ``6h``, ``2d`` -> seconds; None if it is not one."""
    m = _DURATION.match(text)
    if m is None:
        return None
    value = float(m.group(1)) * _UNIT_S[m.group(2)]
    return value if math.isfinite(value) else None


@slot_init
@dataclass(frozen=True, slots=True)
class Moments:
    """Count, sum and sum of squares of runtimes (s): a namespace's history."""

    count: int = 0
    sum_s: float = 0.0
    sum_sq_s2: float = 0.0

    def add(self, runtime_s: float) -> Moments:
        return Moments(self.count + 1, self.sum_s + runtime_s, self.sum_sq_s2 + runtime_s**2)


_NO_RUNS: Final = Moments()


@slot_init
@dataclass(frozen=True, slots=True, weakref_slot=True)
class RuntimeHistory:
    """Runtimes (s) of finished runs: per workload (:func:`workload_key`) the most recent
    ones, oldest first; per namespace their moments. Frozen: a snapshot."""

    workloads: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    namespaces: Mapping[str, Moments] = field(default_factory=dict)


class RuntimeRecorder:
    """What a cluster source keeps: runs are recorded as they end, :meth:`history` is a
    frozen snapshot, rebuilt only after something was recorded.

    A snapshot shares the recorder's own maps rather than copying them: a cluster source
    asks for one per view, and a replay's views are gone by the time the next run ends, so
    copying up to :data:`MAX_WORKLOADS` workloads per run recorded bought nothing. The
    recorder holds its last snapshot weakly; a run that ends while that snapshot is still
    held somewhere goes into copies, which leaves the snapshot as it was."""

    def __init__(
        self, *, samples_per_workload: int = SAMPLES_PER_WORKLOAD, max_workloads: int = MAX_WORKLOADS
    ) -> None:
        self._samples = max(1, samples_per_workload)
        self._max = max(1, max_workloads)
        self._workloads: dict[str, tuple[float, ...]] = {}
        self._namespaces: dict[str, Moments] = {}
        self._snapshot: RuntimeHistory | None = None
        """The last snapshot, while nothing was recorded after it."""
        self._shared: weakref.ref[RuntimeHistory] | None = None
        """The last snapshot handed out, which shares the maps above."""
        self._recorded = 0
        """Runs recorded since ``_workloads`` was last rebuilt (:meth:`record`)."""

    def record(self, pod: PodSpec, runtime_s: float) -> None:
        """A run of ``pod`` ended after ``runtime_s`` seconds (negative or not finite: a
        clock's glitch, ignored)."""
        if not math.isfinite(runtime_s) or runtime_s < 0:
            return
        self._snapshot = None  # held here, it would always look alive below
        if self._shared is not None:
            if self._shared() is not None:
                # Each run recorded leaves up to two holes in the dict (a workload moved to
                # the end, the oldest dropped), and a dict with many holes copies entry by
                # entry: rebuilt without them now and then, copy() clones it whole, ~5x
                # faster.
                if self._recorded > len(self._workloads) // 4:
                    self._workloads = dict(self._workloads)
                    self._recorded = 0
                else:
                    self._workloads = self._workloads.copy()
                self._namespaces = dict(self._namespaces)
            self._shared = None
        _add(self._workloads, self._namespaces, pod, runtime_s, self._samples, self._max)
        self._recorded += 1

    def history(self) -> RuntimeHistory:
        snapshot = self._snapshot
        if snapshot is None:
            snapshot = self._snapshot = RuntimeHistory(self._workloads, self._namespaces)
            self._shared = weakref.ref(snapshot)
        return snapshot


def with_runs(history: RuntimeHistory, runs: Sequence[tuple[PodSpec, float]]) -> RuntimeHistory:
    """``history`` as it will be once these runs (pod, runtime s) have ended: a Spot
    interruption's replacements are judged as they will be when their pods are re-created."""
    if not runs:
        return history
    workloads, namespaces = dict(history.workloads), dict(history.namespaces)
    for pod, runtime_s in runs:
        _add(workloads, namespaces, pod, runtime_s, SAMPLES_PER_WORKLOAD, MAX_WORKLOADS)
    return RuntimeHistory(workloads, namespaces)


def _add(
    workloads: dict[str, tuple[float, ...]],
    namespaces: dict[str, Moments],
    pod: PodSpec,
    runtime_s: float,
    samples: int,
    most: int,
) -> bool:
    if not math.isfinite(runtime_s) or runtime_s < 0:
        return False
    key = workload_key(pod)
    runs = workloads.pop(key, ())
    workloads[key] = (*runs[len(runs) - samples + 1:], runtime_s) if samples > 1 else (runtime_s,)
    if len(workloads) > most:
        del workloads[next(iter(workloads))]
    namespaces[pod.namespace] = namespaces.get(pod.namespace, _NO_RUNS).add(runtime_s)
    return True


@dataclass(frozen=True, slots=True)
class RuntimeEstimate:
    """``remaining_s``: the typical rest of the pod's run (median; inf for a service);
    ``lost_work_s``: the work an interruption is expected to throw away; ``basis``: which
    rule gave them (annotation, notebook, service, workload, namespace, default)."""

    remaining_s: float
    lost_work_s: float
    basis: str


def estimate(
    pod: PodSpec,
    history: RuntimeHistory,
    settings: PlacementSettings,
    *,
    age_s: float = 0.0,
) -> RuntimeEstimate:
    """The pod's expected rest of run and lost work at ``age_s`` (see the module docstring)."""
    age = max(age_s, 0.0)
    raw = pod.annotation(ANNOTATION_EXPECTED_RUNTIME)
    total = parse_duration_s(raw) if raw is not None else None
    if total is not None:
        rest = max(total - age, 0.0)
        return RuntimeEstimate(rest, age + rest / 2.0, "annotation")
    if is_notebook(pod):
        return RuntimeEstimate(math.inf, settings.spot_lost_work_h * 3600.0, "notebook")
    if pod.owner_kind in SERVICE_KINDS:
        return RuntimeEstimate(math.inf, settings.service_lost_work_h * 3600.0, "service")
    runs = history.workloads.get(workload_key(pod))
    if runs:
        return _from_runs(runs, age, "workload")
    m = history.namespaces.get(pod.namespace)
    if m is not None and m.count >= max(settings.runtime_min_samples, 1) and m.sum_s > 0:
        biased = m.sum_sq_s2 / (2.0 * m.sum_s)
        mean = m.sum_s / m.count
        if age <= 0:
            return RuntimeEstimate(mean, biased, "namespace")
        return RuntimeEstimate(max(mean - age, age), age + max(biased, age / 2.0), "namespace")
    fallback = settings.spot_lost_work_h * 3600.0
    return RuntimeEstimate(math.nan, max(fallback, 1.5 * age), "default")


def _from_runs(runs: Sequence[float], age: float, basis: str) -> RuntimeEstimate:
    rest = np.asarray(runs, dtype=np.float64) - age
    rest = rest[rest > 0]
    if not len(rest) or rest.sum() <= 0:
        # Older than every run seen: a pod that has run long tends to run as long again.
        return RuntimeEstimate(age, age + age / 2.0, basis)
    return RuntimeEstimate(
        float(np.median(rest)), age + float((rest**2).sum() / (2.0 * rest.sum())), basis
    )


def is_notebook(pod: PodSpec) -> bool:
    """Labelled as an interactive notebook server (module docstring, rule 2)."""
    for key, value in pod.labels:
        if (key, value) in NOTEBOOK_LABELS or key in NOTEBOOK_LABEL_KEYS:
            return True
        if key == "app.kubernetes.io/component" and value in NOTEBOOK_COMPONENTS:
            return True
    return False


def lost_work_h(
    pods: Sequence[PodSpec],
    history: RuntimeHistory,
    settings: PlacementSettings,
    *,
    ages_s: Sequence[float] | None = None,
) -> FloatArray | None:
    """(N,) hours of work an interruption would throw away, per pod; None when Spot risk is
    not by runtime (``spot_risk_by_runtime`` off): placement then charges every pod
    ``spot_lost_work_h``. ``ages_s``: how long each pod has run (pending: 0)."""
    if not settings.spot_risk_by_runtime:
        return None
    out = np.empty(len(pods), dtype=np.float64)
    for k, pod in enumerate(pods):
        age = ages_s[k] if ages_s is not None else 0.0
        out[k] = estimate(pod, history, settings, age_s=age).lost_work_s / 3600.0
    return out
