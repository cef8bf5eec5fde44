"""The pinning admission webhook, as the live one pins (docs/webhook.md).

When a pod is created — on arrival, or re-created after an eviction — and the policy pins
(``pinning.enabled``), the core's :func:`~scaler.core.pinning.pin_tier` names the tier of
near-equal pools it may run on, from what the reconciler last saw: its cached offerings,
pools backing off left out, pools at their max size left out. The pod's required node
affinity gets ``scaler.io/pool In [tier]`` in every non-empty term (or one new term), so
kube-scheduler never binds it outside the tier and the reconciler places it within it.
Whether the pod is also exclusive (a node to itself) is the core's
:func:`~scaler.core.pinning.pin_for`, the call the live chooser makes; the simulated
kube-scheduler enforces that flag as the real one enforces the anti-affinity it becomes.

This mirrors ``scaler.adapters.kube.webhook.make_chooser`` and ``pin_patch`` on the model's
values instead of JSON; it does not import them because that module pulls in the HTTP server
and the Kubernetes client. The decision itself is the core's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from scaler.core.model import LABEL_POOL, PodSpec, Requirement, SelectorTerm
from scaler.core.pinning import Pin, TierCache


class Webhook:
    """The webhook's chooser over one reconciler (``settings``, ``memory``, ``clock``,
    ``pools_seen``, ``offerings_now()``: what the live chooser reads)."""

    def __init__(self, reconciler: Any) -> None:
        self.reconciler = reconciler
        self.tiers = TierCache()

    async def tier(self, pod: PodSpec) -> tuple[str, ...]:
        """The tier for ``pod``; () when the webhook would not pin it."""
        return (await self.pin(pod)).pools

    async def pin(self, pod: PodSpec) -> Pin:
        """The tier for ``pod`` and whether it is exclusive; empty when the webhook would
        not pin it."""
        rec = self.reconciler
        settings = rec.settings
        if not settings.pinning.enabled or selects_pool(pod):
            return Pin()
        offerings = await rec.offerings_now()
        now = rec.clock.now()
        # Only pools in the backoff table can be unavailable; the live chooser asks every
        # pool, with the same answer. A pool backing off only for a Spot reclaim is
        # readmitted (pin_for), so the pod may go back there when the backoff ends.
        available = np.ones(len(offerings), dtype=bool)
        readmit = np.zeros(len(offerings), dtype=bool)
        for name in rec.memory.backoff_until_s:
            i = offerings.get(name)
            if i is not None and rec.memory.backing_off(name, now):
                available[i] = False
                readmit[i] = rec.memory.reclaim_only(name, now)
        # Max size minus desired size, as decide() counts it: only pools with a max size
        # can have less than unlimited headroom.
        headroom = np.full(len(offerings), np.inf)
        for live in rec.pools_seen:
            if live.max_size is not None:
                i = offerings.get(live.name)
                if i is not None:
                    headroom[i] = float(max(live.max_size - live.current_size, 0))
        return self.tiers.pin(pod, offerings, settings, available=available, headroom=headroom,
                              readmit=readmit)


def selects_pool(pod: PodSpec) -> bool:
    """The owner already chose a pool: the webhook leaves such a pod alone."""
    return any(key == LABEL_POOL for key, _ in pod.node_selector) or any(
        r.key == LABEL_POOL for t in pod.affinity for r in t.requirements
    )


def pinned(pod: PodSpec, tier: tuple[str, ...]) -> PodSpec:
    """``pod`` with ``scaler.io/pool In tier`` added to its required node affinity; the pod
    unchanged if the tier is empty or the pod has only empty terms (they match nothing)."""
    if not tier:
        return pod
    requirement = Requirement(LABEL_POOL, "In", tier)
    if not pod.affinity:
        terms: tuple[SelectorTerm, ...] = (SelectorTerm((requirement,)),)
    else:
        if not any(t.requirements for t in pod.affinity):
            return pod
        terms = tuple(
            SelectorTerm((*t.requirements, requirement)) if t.requirements else t
            for t in pod.affinity
        )
    return dataclasses.replace(pod, affinity=terms)
