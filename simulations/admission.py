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
import operator

from scaler.core.model import LABEL_POOL, PodSpec, Requirement, SelectorTerm
from scaler.core.state import ANNOTATION_PINNED_POOLS


def pinned(pod: PodSpec, tier: tuple[str, ...]) -> PodSpec:
    """``pod`` with ``scaler.io/pool In tier`` added to its required node affinity and the
    tier in its ``scaler.io/pinned-pools`` annotation; the pod unchanged if the tier is
    empty or the pod has only empty terms (they match nothing)."""
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
    # As pin_patch: people read which pools, and review() finds the pinned namespaces by it.
    annotations = (*(a for a in pod.annotations if a[0] != ANNOTATION_PINNED_POOLS),
                   (ANNOTATION_PINNED_POOLS, ",".join(tier)))
    # dataclasses.replace, at half its cost (every arriving pod passes here).
    values = list(_FIELDS(pod))
    values[_AFFINITY], values[_ANNOTATIONS] = terms, annotations
    return PodSpec(*values)


_NAMES = tuple(f.name for f in dataclasses.fields(PodSpec))
_FIELDS = operator.attrgetter(*_NAMES)
"""A pod's field values, in the order PodSpec takes them."""
_AFFINITY, _ANNOTATIONS = _NAMES.index("affinity"), _NAMES.index("annotations")
