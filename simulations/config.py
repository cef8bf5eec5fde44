"""The simulator's own settings: how the simulated cloud and cluster behave.

A frozen tree like :class:`scaler.core.settings.Settings`, with units in the names and a
reason for every default. ``scaler simulate --set name=value`` routes names that are not
core settings here (``--set boot_s_cpu=120``); :func:`split_overrides` does the routing.
Numbers are range-checked by the same override path as the core's: a probability is declared
with ``ranged(..., PROBABILITY)``, everything else is a non-negative quantity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from scaler.core.settings import (
    MAX_TIME_S,
    PROBABILITY,
    Range,
    Settings,
    apply_overrides,
    field_names,
    ranged,
)


@dataclass(frozen=True, slots=True)
class BootSettings:
    boot_s_cpu: float = 90.0
    """Launch to kubelet Ready for a CPU node. DOMAIN.md: "EC2 node to Ready: typically 1-3
    minutes"; 90 s is the low-middle of that range for a current EKS AMI."""

    boot_s_gpu: float = 180.0
    """Launch to Ready for a GPU node: "GPU nodes longer (driver, device plugin)" (DOMAIN.md);
    the NVIDIA driver load puts it at the top of the 1-3 minute range."""

    gpu_advertise_s: float = 120.0
    """Ready to the device plugin advertising ``nvidia.com/gpu`` (DOMAIN.md: "only minutes
    after boot"). Until then a GPU node is upcoming capacity, not a place for GPU pods."""

    boot_s_by_family: tuple[tuple[str, float], ...] = ranged((), Range(0.0, MAX_TIME_S))
    """Launch to Ready per instance family, overriding the two figures above
    (``--set boot_s_by_family=p4d:420,g5:200``)."""


@dataclass(frozen=True, slots=True)
class CloudSettings:
    launch_failure_rate: float = ranged(0.0, PROBABILITY)
    """Probability that one node launch fails with InsufficientInstanceCapacity, every pool.
    0 by default: the bundled traces measure placement, not luck."""

    launch_failure_rate_by_pool: tuple[tuple[str, float], ...] = ranged((), PROBABILITY)
    """Per-pool failure probability (``--set launch_failure_rate_by_pool=p3.2xlarge-spot:1``);
    overrides ``launch_failure_rate`` for the pools it names."""

    never_register_rate: float = 0.0
    """Probability that a launched instance never becomes a node (bad AMI, bootstrap script,
    no route to the API server): it runs and is billed, but never registers, until scaler
    gives it up after ``provision_timeout_s``. 0 by default, as launch failures."""

    never_register_rate_by_pool: tuple[tuple[str, float], ...] = ()
    """Per-pool probability that an instance never registers
    (``--set never_register_rate_by_pool=m5.large:1``); overrides ``never_register_rate``."""

    launch_failure_delay_s: float = 30.0
    """How long after SetDesiredCapacity a failed launch shows up in the scaling activities
    (DOMAIN.md: ASG launches are asynchronous, the failure surfaces later); the pool's
    desired capacity reverts then."""


@dataclass(frozen=True, slots=True)
class SpotSettings:
    interruptions: bool = True
    """Draw Spot interruptions at all (``--set interruptions=false`` to price Spot without
    its risk)."""

    monthly_rate_by_bucket: tuple[float, ...] = ranged(
        (0.025, 0.075, 0.125, 0.175, 0.25), PROBABILITY
    )
    """Probability that a Spot node is interrupted within a month (730 h), by Spot Advisor
    bucket (<5%, 5-10%, 10-15%, 15-20%, >20%): each bucket's midpoint, 25% for the open one.
    Turned into a constant hourly hazard: ``-ln(1 - rate) / 730``."""

    monthly_rate_unknown: float = ranged(0.25, PROBABILITY)
    """For a type the Advisor has no bucket for: the worst bucket."""

    reclaim_by_pool: bool = True
    """Reclaims hit a Spot capacity pool (instance type x zone): EC2 takes back capacity it
    needs in that pool, so several of its nodes get their warning at the same instant. A
    reclaim event comes to each pool with running Spot nodes at the rate that keeps each
    node's expected interruptions per hour what its Advisor bucket says (rate / fraction).
    ``false``: each node draws its own time, independently (the model before 2026-12-06)."""

    reclaim_fraction: float = ranged(0.5, Range(0.01, 1.0))
    """Each running node of the pool is reclaimed by an event with this probability. AWS
    publishes no figure; half is a middle between one node at a time (the independent
    model) and the whole pool, which the Advisor's per-type buckets cannot tell apart."""

    hazard_scale: float = 1.0
    """Multiplies every hazard: stress tests (``--set hazard_scale=50``)."""

    notice_s: float = 120.0
    """The interruption warning comes 2 minutes before the instance is reclaimed (DOMAIN.md)."""

    notice_handler: Literal["reconciler", "nth", "none"] = "reconciler"
    """Who acts on the notice: ``reconciler`` (it is handed to ``Reconciler.respond``:
    cordon, drain before the deadline, replacements launched at once — scaler's own
    handling), ``nth`` (aws-node-termination-handler: cordon and drain on the notice; the
    autoscaler only sees the pods pending again) or ``none`` (pods die at the reclaim).
    The ca-least-waste policy defaults to ``nth``: cluster-autoscaler reads no
    interruption queue, so users run NTH beside it."""


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    admission_webhook: bool = True
    """Run scaler's pinning webhook when the policy pins (``pinning.enabled``): each pod is
    pinned to its tier of near-equal pools as it is created, before kube-scheduler sees it,
    as the live product does (docs/webhook.md). False: nothing pins pods, and kube-scheduler
    binds them anywhere they fit."""


@dataclass(frozen=True, slots=True)
class RunSettings:
    drain_cap_s: float = 86400.0
    """Without ``--until``, a run goes on past the moment the last pod would have finished
    (had it started on arrival) until every pod has run its full duration, so a policy
    that delays pods still pays for all their work; but no longer than this. Pods still
    pending then are counted lost."""


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything about the simulated world that is not a decision setting."""

    boot: BootSettings = field(default_factory=BootSettings)
    cloud: CloudSettings = field(default_factory=CloudSettings)
    spot: SpotSettings = field(default_factory=SpotSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    run: RunSettings = field(default_factory=RunSettings)

    def boot_s(self, family: str, gpu: bool) -> float:
        for fam, seconds in self.boot.boot_s_by_family:
            if fam == family:
                return seconds
        return self.boot.boot_s_gpu if gpu else self.boot.boot_s_cpu

    def failure_rate(self, pool: str) -> float:
        for name, rate in self.cloud.launch_failure_rate_by_pool:
            if name == pool:
                return rate
        return self.cloud.launch_failure_rate

    def never_register_rate(self, pool: str) -> float:
        for name, rate in self.cloud.never_register_rate_by_pool:
            if name == pool:
                return rate
        return self.cloud.never_register_rate

    def with_overrides(self, overrides: Mapping[str, str]) -> SimConfig:
        """A copy with ``name=value`` overrides (field name, or ``section.name``), read
        by the same rules as the core settings' (:func:`scaler.core.settings.apply_overrides`)."""
        return apply_overrides(self, overrides, what="simulator setting")


def split_overrides(
    overrides: Mapping[str, str],
) -> tuple[dict[str, str], dict[str, str]]:
    """``--set`` pairs -> (core settings overrides, simulator overrides).

    A name that is neither is an error listing both sets of names.
    """
    core_names = field_names(Settings())
    sim_names = field_names(SimConfig())
    core: dict[str, str] = {}
    sim: dict[str, str] = {}
    for name, value in overrides.items():
        leaf = name.rpartition(".")[2]
        section = name.partition(".")[0] if "." in name else None
        in_core = leaf in core_names and (section is None or core_names[leaf].startswith(section))
        in_sim = leaf in sim_names and (section is None or sim_names[leaf].startswith(section))
        if in_core:
            core[name] = value
        elif in_sim:
            sim[name] = value
        else:
            known = sorted(set(core_names) | set(sim_names))
            raise ValueError(f"--set {name}: not a setting; known: {', '.join(known)}")
    return core, sim
