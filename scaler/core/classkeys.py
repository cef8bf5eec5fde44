"""A pending pod's class keys, worked out once per pod object.

Placement groups pods into classes by a key (:func:`class_key`) and keeps cost rows per
another (:func:`row_key`, :class:`~scaler.core.offerings.OpenRows`). The same pending
``PodSpec`` objects are asked about tick after tick (covering, placement, the pools a batch
keeps), and a key is a tuple of frozen dataclasses, built again and hashed field by field
at every dict lookup (three per pod in ``open_rows``). So the two keys of a pod are kept by the
pod's identity, each with its hash worked out once (:class:`Key`), and equal keys are one
object (interned), so grouping compares keys by identity, not field by field.

A ``PodSpec`` is frozen, so its keys never change; the entry holds the pod itself, so its
id cannot be reused by another object while the entry stands, and an entry whose pod is
not the one asked about is computed afresh.
"""

from __future__ import annotations

from typing import Final

from scaler.core.model import PodSpec

KEPT: Final = 4096
"""Pods whose keys are kept; past this the table starts afresh. An entry holds its pod, so
this bounds what the table keeps alive (pods come and go; the pending ones, asked about
tick after tick, are few)."""
KEPT_KEYS: Final = 4096
"""Interned keys kept; past this that table starts afresh too. Kept apart from the pods'
(a cluster has a few hundred classes, not thousands): the kept cost rows are looked up by
these very key objects, so a key interned again after a clear would find its row only
through a field-by-field comparison, at every lookup, until the rows were cleared."""


class Key(tuple[object, ...]):
    """A key tuple that hashes once: equal to (and hashing as) the plain tuple."""

    _hash: int

    def __new__(cls, items: tuple[object, ...]) -> Key:
        key = super().__new__(cls, items)
        key._hash = tuple.__hash__(key)
        return key

    def __hash__(self) -> int:
        return self._hash


_by_pod: dict[int, tuple[PodSpec, Key, Key]] = {}
_interned: dict[tuple[object, ...], Key] = {}


def keys(pod: PodSpec) -> tuple[PodSpec, Key, Key]:
    """``(pod, class key, row key)``, from the table when this very pod was asked before."""
    kept = _by_pod.get(id(pod))
    if kept is not None and kept[0] is pod:
        return kept
    constraints = pod.constraints()
    cls = class_items(pod, constraints)
    if len(_by_pod) >= KEPT:
        _by_pod.clear()
    if len(_interned) >= KEPT_KEYS:
        _interned.clear()
    entry = (pod, _intern(cls), _intern((constraints, pod.one_per_node)))
    _by_pod[id(pod)] = entry
    return entry


def class_items(pod: PodSpec, constraints: tuple[object, ...]) -> tuple[object, ...]:
    """The class key's items, worked out afresh and kept nowhere (``constraints`` is
    ``pod.constraints()``): for pods asked about once, as the review's running pods, which
    would only churn the pending pods' table."""
    extra = pod.topology()
    # A class has one priority, so capped pools can serve the higher one first.
    return (*constraints, pod.priority, *extra) if pod.priority or extra else constraints


def _intern(items: tuple[object, ...]) -> Key:
    """The one :class:`Key` equal to ``items``: looked up by the plain tuple, so a class
    seen before costs one hash and no new object."""
    key = _interned.get(items)
    if key is None:
        key = _interned[items] = Key(items)
    return key


def class_key(pod: PodSpec) -> Key:
    """What makes two pods one class: their constraints, priority and topology terms."""
    return keys(pod)[1]


def row_key(pod: PodSpec) -> Key:
    """All :func:`~scaler.core.placement.cost_matrix` reads of a pod: its constraints and
    whether it wants a node to itself."""
    return keys(pod)[2]
