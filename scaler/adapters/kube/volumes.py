"""Volumes -> zones: which zones a pending pod's PersistentVolumeClaims allow.

An EBS volume lives in one zone, and kube-scheduler's VolumeBinding plugin puts a pod whose
claim is bound to it only on a node of that zone (the PersistentVolume's required node
affinity, or the zone labels older in-tree volumes carry). A claim not bound yet, of a
StorageClass with ``volumeBindingMode: WaitForFirstConsumer``, is provisioned where the pod
lands, but only in the zones the class's ``allowedTopologies`` name. Scaler must buy the
node there, or kube-scheduler will never bind the pod to it.

The caches keep a few strings per object, never the API object: a claim is (volume name,
class name), a volume its zones, a class its binding mode and allowed zones. The zone of a
pending pod is worked out when a snapshot is taken (:func:`claim_zones`), so a volume that
binds after its pod went pending moves the pod's zone with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

ZONE_KEYS: Final = (
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.ebs.csi.aws.com/zone",
)
"""The labels a volume's zone is written under: the GA key, the deprecated beta key (in-tree
EBS volumes), and the EBS CSI driver's own topology key."""
ANNOTATION_DEFAULT_CLASS: Final = "storageclass.kubernetes.io/is-default-class"
WAIT_FOR_FIRST_CONSUMER: Final = "WaitForFirstConsumer"


@dataclass(frozen=True, slots=True)
class Claim:
    volume: str | None
    """The PersistentVolume it is bound to (``spec.volumeName``), None while unbound."""
    storage_class: str | None
    """``spec.storageClassName``; None when the field is absent (the default class applies),
    "" when it is set empty (no class: static binding only)."""


@dataclass(frozen=True, slots=True)
class Volume:
    zones: frozenset[str] | None
    """The zones its node affinity or zone labels allow; None: any zone."""


@dataclass(frozen=True, slots=True)
class StorageClass:
    wait_for_first_consumer: bool
    zones: frozenset[str] | None
    """The zones ``allowedTopologies`` allows; None: any zone."""
    default: bool = False


def pod_claims(pod: Mapping[str, Any]) -> tuple[str, ...]:
    """``namespace/name`` of each claim a pod mounts: ``persistentVolumeClaim`` volumes, and
    generic ephemeral volumes, whose claim the ephemeral controller names ``<pod>-<volume>``."""
    meta = pod.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    out = []
    for volume in (pod.get("spec") or {}).get("volumes") or ():
        if not isinstance(volume, Mapping):
            continue
        pvc = volume.get("persistentVolumeClaim")
        if isinstance(pvc, Mapping) and pvc.get("claimName"):
            out.append(f"{namespace}/{pvc['claimName']}")
        elif volume.get("ephemeral") is not None and volume.get("name"):
            out.append(f"{namespace}/{meta.get('name', '')}-{volume['name']}")
    return tuple(out)


def convert_claim(pvc: Mapping[str, Any]) -> Claim:
    spec = pvc.get("spec") or {}
    volume = spec.get("volumeName") or None
    cls = spec.get("storageClassName")
    return Claim(
        volume=str(volume) if volume else None,
        storage_class=str(cls) if isinstance(cls, str) else None,
    )


def convert_volume(pv: Mapping[str, Any]) -> Volume:
    """Zones from ``spec.nodeAffinity.required`` (a term that names no zone key allows any
    zone; several terms are alternatives), else from the volume's zone labels."""
    spec = pv.get("spec") or {}
    terms = (((spec.get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms"))
    if isinstance(terms, list) and terms:
        allowed: set[str] = set()
        for term in terms:
            zones = _term_zones(term)
            if zones is None:
                return Volume(_label_zones(pv))
            allowed |= zones
        label = _label_zones(pv)
        return Volume(frozenset(allowed) & label if label is not None else frozenset(allowed))
    return Volume(_label_zones(pv))


def convert_class(sc: Mapping[str, Any]) -> StorageClass:
    meta = sc.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    zones: set[str] | None = None
    for term in sc.get("allowedTopologies") or ():
        for expr in (term or {}).get("matchLabelExpressions") or ():
            if expr.get("key") in ZONE_KEYS:
                values = {str(v) for v in expr.get("values") or ()}
                zones = values if zones is None else zones | values
    return StorageClass(
        wait_for_first_consumer=sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER,
        zones=frozenset(zones) if zones is not None else None,
        default=str(annotations.get(ANNOTATION_DEFAULT_CLASS, "")).lower() == "true",
    )


def claim_zones(
    claims: Iterable[str],
    pvcs: Mapping[str, Claim],
    pvs: Mapping[str, Volume],
    classes: Mapping[str, StorageClass],
) -> frozenset[str] | None:
    """The zones every one of ``claims`` allows (an empty set: no zone can serve them all);
    None when they do not restrict the zone. A claim or volume not in the caches yet
    restricts nothing: kube-scheduler waits for it too, and the next snapshot sees it."""
    allowed: frozenset[str] | None = None
    for key in claims:
        claim = pvcs.get(key)
        if claim is None:
            continue
        zones: frozenset[str] | None = None
        if claim.volume is not None:
            volume = pvs.get(claim.volume)
            zones = volume.zones if volume is not None else None
        else:
            cls = _class_of(claim, classes)
            if cls is not None and cls.wait_for_first_consumer:
                zones = cls.zones
        if zones is not None:
            allowed = zones if allowed is None else allowed & zones
    return allowed


def _class_of(claim: Claim, classes: Mapping[str, StorageClass]) -> StorageClass | None:
    if claim.storage_class is not None:
        return classes.get(claim.storage_class) if claim.storage_class else None
    # The DefaultStorageClass admission plugin fills the field on create; an old claim
    # created before a default existed still has none, and the controller then uses it.
    return next((c for c in classes.values() if c.default), None)


def _term_zones(term: Any) -> set[str] | None:
    zones: set[str] | None = None
    for expr in (term or {}).get("matchExpressions") or ():
        if expr.get("key") in ZONE_KEYS and expr.get("operator") == "In":
            values = {str(v) for v in expr.get("values") or ()}
            zones = values if zones is None else zones & values
    return zones


def _label_zones(pv: Mapping[str, Any]) -> frozenset[str] | None:
    labels = (pv.get("metadata") or {}).get("labels") or {}
    for key in ZONE_KEYS:
        value = labels.get(key)
        if value:
            # In-tree volumes of a regional disk list zones joined by "__".
            return frozenset(str(value).split("__"))
    return None
