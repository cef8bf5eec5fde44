"""The simulated pods and nodes: mutable records the world keeps, one per pod and node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scaler.core.model import FloatArray, PodSpec, Taint
from scaler.core.state import BoundPod

if TYPE_CHECKING:
    from simulations.ledger import Run

FUTURE, PENDING, RUNNING, DONE = "future", "pending", "running", "done"


@dataclass(eq=False)
class SimPod:
    spec: PodSpec
    """As in the trace."""
    live: PodSpec
    """As created in the cluster, what the reconciler and kube-scheduler see: the trace's
    spec, plus the admission webhook's pin to a tier of pools if it pinned the pod."""
    req: FloatArray
    fit_usd_per_hour: float
    class_key: tuple[object, ...]
    """kube-scheduler's equivalence class: the live constraints (the webhook's pin included)."""
    exclusive: bool = False
    """The admission webhook made the pod exclusive (:class:`scaler.core.pinning.Pin`):
    kube-scheduler binds it only to a node holding no other exclusive pod."""
    state: str = FUTURE
    since_s: float = 0.0
    queued: int = 0
    """Position in kube-scheduler's queue (first come, first served)."""
    run: Run | None = None
    runs: int = 0
    lost_runs: int = 0
    finished_s: float | None = None
    pools: list[str] = field(default_factory=list)
    """The pool of each run, in order (tests and reports read it)."""
    unplaceable: bool = False
    bound_view: BoundPod | None = None
    key: str = field(init=False)
    """``namespace/name``, as ``spec.key`` (and ``live.key``: a pin changes neither): kept,
    where the property would format it again at each of a run's few hundred thousand uses."""

    def __post_init__(self) -> None:
        self.key = self.spec.key


@dataclass(eq=False)
class SimNode:
    name: str
    pool: str
    pool_index: int
    instance_type: str
    capacity_type: str
    zone: str | None
    instance_id: str
    price_usd_per_hour: float
    gpus: int
    created_s: float
    settled_s: float
    labels: tuple[tuple[str, str], ...]
    slot: int = -1
    ready: bool = False
    gpu_ready: bool = True
    cordoned: bool = False
    registered: bool = True
    """False: the instance never becomes a node (``never_register_rate``); no view."""
    alive: bool = True
    annotations: dict[str, str] = field(default_factory=dict)
    added_taints: list[Taint] = field(default_factory=list)
    """Taints put on the node after launch (an interruption taint), beside its pool's."""
    runs: list[Run] = field(default_factory=list)
