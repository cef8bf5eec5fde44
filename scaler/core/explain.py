"""Why a pod cannot be placed, in words a person acts on.

Constraints are applied one after another in a fixed order (capacity type, architecture,
node selector, node affinity, taints, zone, GPU model, then resources); the first that
leaves no pool is the reason, told with the closest pool that passed everything before it:
"needs memory 600Gi; the largest pool it may use, x2idn.32xlarge-on-demand, has 1.9Ti".
Off the hot path: only pods that found no pool come here.
"""

from __future__ import annotations

import numpy as np

from scaler.core.model import (
    CPU,
    EPH,
    GPU,
    MEM,
    PODS,
    BoolArray,
    FloatArray,
    PodSpec,
    format_cpu,
    format_mib,
)
from scaler.core.offerings import Offerings

_EPS = 1e-9


def unplaceable_reason(
    pod: PodSpec,
    offerings: Offerings,
    *,
    available: BoolArray | None = None,
    headroom: FloatArray | None = None,
) -> str:
    n = len(offerings)
    if n == 0:
        return "there are no pools to choose from"
    remaining = np.ones(n, dtype=bool)
    for name, mask in offerings.constraint_masks(pod):
        narrowed = remaining & mask
        if not narrowed.any():
            return _constraint_reason(name, pod, offerings, remaining)
        remaining = narrowed
    req = pod.requests.as_array()
    if req[GPU] == 0:
        cpu_only = remaining & ~offerings.has_gpu
        if not cpu_only.any():
            return (
                "requests no GPU, and only GPU pools match its constraints; scaler never "
                "buys a GPU node for a pod that does not use it"
            )
        remaining = cpu_only
    alloc = offerings.allocatable
    for axis, label, fmt in (
        (MEM, "memory", format_mib),
        (CPU, "cpu", format_cpu),
        (GPU, "nvidia.com/gpu", lambda v: f"{v:g}"),
        (EPH, "ephemeral-storage", format_mib),
        (PODS, "pods", lambda v: f"{v:g}"),
    ):
        # Each axis against every pool the constraints allow (not narrowed by the axes
        # before it), so the largest pool named really is the largest.
        fits = remaining & (req[axis] <= alloc[:, axis] + _EPS)
        if not fits.any():
            idx = np.flatnonzero(remaining)
            top = int(idx[np.argmax(alloc[idx, axis])])
            return (
                f"needs {label} {fmt(req[axis])}; the largest pool it may use, "
                f"{offerings.pools[top].name}, has {fmt(alloc[top, axis])} allocatable"
            )
    # Every resource fits somewhere, but not all in one pool.
    fit_all = remaining & np.all(req[None, :] <= alloc + _EPS, axis=1)
    if not fit_all.any():
        return f"needs {pod.requests.describe()} together; no pool it may use has all of it"
    if available is not None and not (fit_all & available).any():
        names = ", ".join(offerings.pools[i].name for i in np.flatnonzero(fit_all)[:5])
        return f"every pool that fits is backing off after failed launches: {names}"
    if headroom is not None and not (fit_all & (headroom >= 1)).any():
        names = ", ".join(
            f"{offerings.pools[i].name} (max {offerings.pools[i].max_size})"
            for i in np.flatnonzero(fit_all)[:5]
        )
        return f"every pool that fits is at its max size: {names}"
    return "no pool fits (reason unknown; please report this)"


def _constraint_reason(name: str, pod: PodSpec, offerings: Offerings, remaining: BoolArray) -> str:
    idx = np.flatnonzero(remaining)
    if name == "capacity type":
        return f"allows only {'/'.join(pod.capacity_types)} capacity, and no pool offers it"
    if name == "architecture":
        have = sorted({offerings.arch[i] for i in idx})
        return (
            f"runs on {pod.arch} only (pods are amd64 unless they select kubernetes.io/arch "
            f"or set arch); the pools offer {', '.join(have)}"
        )
    if name == "node selector":
        for key, value in pod.node_selector:
            vals = sorted({offerings.labels[i].get(key, "") for i in idx} - {""})
            if value not in vals:
                seen = (
                    f"pools have {key} in {{{', '.join(vals[:6])}}}"
                    if vals
                    else (f"no pool has the label {key}")
                )
                return f"node selector {key}={value} matches no pool ({seen})"
        return "node selector matches no pool"
    if name == "node affinity":
        terms = " or ".join(
            "(" + ", ".join(str(r) for r in t.requirements) + ")" for t in pod.affinity
        )
        return f"required node affinity {terms} matches no pool"
    if name == "taints":
        untolerated = sorted(
            {str(t) for i in idx for t in offerings.taints[i] if t.effect != "PreferNoSchedule"}
        )
        return f"tolerates no pool's taints ({', '.join(untolerated[:4])})"
    if name == "zone":
        return (
            f"is pinned to zone {pod.zone} (by its volume, zone selector, zone spread or "
            "pod affinity), and no pool can launch a node there (a pool must be in that one "
            "zone)"
        )
    if name == "GPU model":
        have = sorted({m for i in idx if (m := offerings.gpu_model[i])})
        return (
            f"allows GPU models {', '.join(pod.gpu_models)}; the pools it may use have "
            f"{', '.join(have) or 'no GPUs'}"
        )
    return f"{name} matches no pool"
