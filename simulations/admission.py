"""The admission webhook's pin, applied to the model's pod (docs/webhook.md).

The decision is the live one: the engine asks :func:`scaler.loop.admission.make_chooser`'s
chooser, which the kube webhook adapter also runs. Only the patch differs: live,
:func:`~scaler.adapters.kube.webhook.pin_patch` edits the pod's JSON; here :func:`pinned`
makes the same change to the :class:`~scaler.core.model.PodSpec` (``scaler.io/pool In
[tier]`` ANDed into every non-empty required node-affinity term, or one new term, and the
``scaler.io/pinned-pools`` annotation). The simulated kube-scheduler enforces the pin's
exclusivity as the real one enforces the anti-affinity it becomes live.
"""

from __future__ import annotations

import dataclasses
import functools
import operator

from scaler.core.model import LABEL_POOL, PodSpec, Requirement, SelectorTerm
from scaler.core.state import ANNOTATION_PINNED_POOLS


def pinned(pod: PodSpec, tier: tuple[str, ...]) -> PodSpec:
    """``pod`` with ``scaler.io/pool In tier`` added to its required node affinity and the
    tier in its ``scaler.io/pinned-pools`` annotation; the pod unchanged if the tier is
    empty or the pod has only empty terms (they match nothing)."""
    if not tier:
        return pod
    if not pod.affinity:
        terms = _only_term(tier)
    else:
        if not any(t.requirements for t in pod.affinity):
            return pod
        requirement = Requirement(LABEL_POOL, "In", tier)
        terms = tuple(
            SelectorTerm((*t.requirements, requirement)) if t.requirements else t
            for t in pod.affinity
        )
    # dataclasses.replace, at half its cost (every arriving pod passes here).
    values = list(_FIELDS(pod))
    values[_AFFINITY], values[_ANNOTATIONS] = terms, _annotated(pod.annotations, tier)
    return PodSpec(*values)


# The pods of a trace come pinned to a few tiers and carry a few sets of annotations: each
# pinned affinity and annotation set is made once and shared (values are frozen), which
# also lets equal pods' class keys compare by identity.


@functools.lru_cache(maxsize=1024)
def _only_term(tier: tuple[str, ...]) -> tuple[SelectorTerm, ...]:
    """The affinity of a pod that had none, pinned to ``tier``."""
    return (SelectorTerm((Requirement(LABEL_POOL, "In", tier),)),)


@functools.lru_cache(maxsize=4096)
def _annotated(
    annotations: tuple[tuple[str, str], ...], tier: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """As pin_patch: people read which pools, and review() finds the pinned namespaces by
    it."""
    return (*(a for a in annotations if a[0] != ANNOTATION_PINNED_POOLS),
            (ANNOTATION_PINNED_POOLS, ",".join(tier)))


_NAMES = tuple(f.name for f in dataclasses.fields(PodSpec))
_FIELDS = operator.attrgetter(*_NAMES)
"""A pod's field values, in the order PodSpec takes them."""
_AFFINITY, _ANNOTATIONS = _NAMES.index("affinity"), _NAMES.index("annotations")
