"""The mutating admission webhook: each new pod is pinned to the pools the core picks for it.

kube-scheduler scores nodes by free fraction, so a 4 GiB notebook lands on the idle 512 GiB
node bought for someone else, and keeps it alive for weeks. A pod's nodeSelector and affinity
are immutable once it exists, so the one moment to constrain it is admission: the API server
sends each new pod here (``POST /mutate``, an ``admission.k8s.io/v1`` AdmissionReview), the
core's :func:`~scaler.core.pinning.pin_tier` names the pools it may run on, and the answer is
a JSONPatch that ANDs ``scaler.io/pool In [tier]`` into the pod's required node affinity;
when the tier's pools do not pack, the patch also labels the pod ``scaler.io/exclusive`` and
adds a required pod anti-affinity against that label on the hostname (one pod per node).

It never blocks admission. Every answer is ``allowed: true``; a pod that is skipped, cannot be
read, or meets an error or a slow answer (past ``choose_timeout_s``) is admitted unchanged.
The MutatingWebhookConfiguration says the same (``failurePolicy: Ignore``) for when this
server is down. See docs/webhook.md.

TLS: the serving certificate and key are files (a mounted Secret that cert-manager renews).
They are checked on each new TLS handshake and reloaded when they change; a bad pair (half
written, mismatched) is logged and the last good one keeps serving.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Protocol

import anyio
import numpy as np
import structlog
from aiohttp import web
from anyio.abc import TaskStatus

from scaler.adapters.kube.convert import is_daemonset_pod, is_mirror_pod, pod_key, pod_spec
from scaler.core.memory import Memory
from scaler.core.model import LABEL_POOL, PodSpec, PoolSpec
from scaler.core.offerings import Offerings
from scaler.core.pinning import LABEL_EXCLUSIVE, Pin, exclusive_term, pin_for
from scaler.core.runtime import RuntimeHistory, lost_work_h
from scaler.core.settings import Settings
from scaler.ports import Clock

log = structlog.get_logger("scaler.kube.webhook")

ANNOTATION_PIN: Final = "scaler.io/pin"
"""On a pod, ``"false"`` opts it out. (As a namespace label, ``enabled`` opts the namespace
in; the webhook configuration's namespaceSelector enforces that, not this code.)"""
ANNOTATION_PINNED_POOLS: Final = "scaler.io/pinned-pools"
"""Set on each pinned pod, ``"pool-a,pool-b"``: for people; scaler never reads it back."""

CHOOSE_TIMEOUT_S: Final = 1.5
"""Answer unchanged rather than late: the webhook configuration's timeoutSeconds is 2."""
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
"""etcd's object limit is 1.5 MiB; an AdmissionReview carries one pod (CREATE: no old one)."""
MAX_JSON_DEPTH: Final = 64
"""A pod is about 15 levels deep (managedFields' fieldsV1 adds a few per path segment); a body
nested deeper is refused before parsing, so no recursion limit is ever reached."""
PATHS: Final = ("/mutate",)
"""What manifests/components/webhook points the API server at."""
REQUIRED: Final = "requiredDuringSchedulingIgnoredDuringExecution"

Chooser = Callable[[PodSpec], Awaitable[tuple[str, ...]]]
"""A pod -> the pools it may run on, cheapest first; empty leaves it unpinned. A
:class:`~scaler.core.pinning.Pin` (what :func:`make_chooser` returns) also says whether the
pod gets a node to itself; a plain tuple never does."""
Patch = list[dict[str, Any]]


# ------------------------------------------------------------------------- the decision


def skip_reason(pod: Mapping[str, Any]) -> str | None:
    """Why this pod must not be pinned, or None.

    Bound pods (``spec.nodeName``, the mirror pods of static pods among them) bypass the
    scheduler, and a kubelet refuses a pod whose required affinity its node fails. DaemonSet
    pods run on every node by design. A pod that already selects a pool was pinned by its
    owner (in any one of its ORed terms: ANDing another pool set in could empty that term).
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    annotations = meta.get("annotations") or {}
    if str(annotations.get(ANNOTATION_PIN, "")).strip().lower() == "false":
        return "opted out"
    if is_mirror_pod(pod):
        return "mirror pod"
    if is_daemonset_pod(pod):
        return "DaemonSet pod"
    if spec.get("nodeName"):
        return "already bound"
    if selects_pool(spec):
        return "already selects a pool"
    return None


def selects_pool(spec: Mapping[str, Any]) -> bool:
    """The pod's nodeSelector or required node affinity names ``scaler.io/pool``."""
    if LABEL_POOL in (spec.get("nodeSelector") or {}):
        return True
    return any(
        expr.get("key") == LABEL_POOL
        for term in _terms(spec)
        for expr in (term.get("matchExpressions") or ())
        if isinstance(expr, Mapping)
    )


def pin_patch(pod: Mapping[str, Any], tier: Sequence[str], *, exclusive: bool = False) -> Patch:
    """JSONPatch (RFC 6902) ops that pin ``pod`` to the pools ``tier``, or [] if it cannot be.

    ``exclusive`` (:class:`~scaler.core.pinning.Pin`: the tier's pools do not pack) also adds
    :func:`exclusive_ops`, so kube-scheduler gives the pod a node to itself.

    Required nodeSelectorTerms are ORed, so the requirement is added to every one of them
    (``(t1 or t2) and pool`` is ``(t1 and pool) or (t2 and pool)``); with no terms, one term
    holding just the requirement is created. Missing objects on the way are added whole
    (``add`` on a missing path's parent fails). Empty terms match no node in Kubernetes and
    are left so; a pod with nothing but empty terms cannot run anywhere and is not pinned.
    """
    if not tier:
        return []
    requirement = {"key": LABEL_POOL, "operator": "In", "values": list(tier)}
    spec = pod.get("spec") or {}
    affinity = spec.get("affinity")
    node_affinity = (affinity or {}).get("nodeAffinity")
    required = (node_affinity or {}).get(REQUIRED)
    terms = (required or {}).get("nodeSelectorTerms")
    new_terms = [{"matchExpressions": [requirement]}]
    ops: Patch = []
    if not affinity:
        ops.append(
            _add("/spec/affinity", {"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": new_terms}}})
        )
    elif not node_affinity:
        ops.append(
            _add("/spec/affinity/nodeAffinity", {REQUIRED: {"nodeSelectorTerms": new_terms}})
        )
    elif not required:
        ops.append(
            _add(f"/spec/affinity/nodeAffinity/{REQUIRED}", {"nodeSelectorTerms": new_terms})
        )
    elif not terms:
        ops.append(_add(f"/spec/affinity/nodeAffinity/{REQUIRED}/nodeSelectorTerms", new_terms))
    else:
        base = f"/spec/affinity/nodeAffinity/{REQUIRED}/nodeSelectorTerms"
        for i, term in enumerate(terms):
            if not term or not (term.get("matchExpressions") or term.get("matchFields")):
                continue
            if term.get("matchExpressions"):
                ops.append(_add(f"{base}/{i}/matchExpressions/-", requirement))
            else:
                ops.append(_add(f"{base}/{i}/matchExpressions", [requirement]))
        if not ops:
            return []
    if exclusive:
        ops.extend(exclusive_ops(pod))
    value = ",".join(tier)
    annotations = (pod.get("metadata") or {}).get("annotations")
    if annotations:
        ops.append(_add(f"/metadata/annotations/{escape(ANNOTATION_PINNED_POOLS)}", value))
    else:
        ops.append(_add("/metadata/annotations", {ANNOTATION_PINNED_POOLS: value}))
    return ops


def exclusive_ops(pod: Mapping[str, Any]) -> Patch:
    """Label the pod :data:`~scaler.core.pinning.LABEL_EXCLUSIVE` and append
    :func:`~scaler.core.pinning.exclusive_term` to its required pod anti-affinity, after any
    terms the pod already has (they all must hold; none is dropped). Run after the node
    affinity ops of :func:`pin_patch`, which may have created ``spec.affinity``."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    ops: Patch = []
    if meta.get("labels"):
        ops.append(_add(f"/metadata/labels/{escape(LABEL_EXCLUSIVE)}", "true"))
    else:
        ops.append(_add("/metadata/labels", {LABEL_EXCLUSIVE: "true"}))
    # pin_patch always leaves spec.affinity in place (it adds node affinity there).
    anti = (spec.get("affinity") or {}).get("podAntiAffinity")
    required = (anti or {}).get(REQUIRED)
    term = exclusive_term()
    if not anti:
        ops.append(_add("/spec/affinity/podAntiAffinity", {REQUIRED: [term]}))
    elif not required:
        ops.append(_add(f"/spec/affinity/podAntiAffinity/{REQUIRED}", [term]))
    else:
        ops.append(_add(f"/spec/affinity/podAntiAffinity/{REQUIRED}/-", term))
    return ops


def escape(key: str) -> str:
    """A map key as a JSON Pointer token (RFC 6901): ``~`` -> ``~0``, ``/`` -> ``~1``."""
    return key.replace("~", "~0").replace("/", "~1")


def _add(path: str, value: Any) -> dict[str, Any]:
    return {"op": "add", "path": path, "value": value}


def _terms(spec: Mapping[str, Any]) -> list[Any]:
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    terms = (node_affinity.get(REQUIRED) or {}).get("nodeSelectorTerms") or []
    return [t for t in terms if isinstance(t, Mapping)]


# ---------------------------------------------------------------------- AdmissionReview


class BadReview(ValueError):
    """A request body that is not an AdmissionReview scaler can read: one line, answered 400."""


def read_review(body: bytes) -> Any:
    """The JSON document in ``body``; :class:`BadReview` if it is not UTF-8 JSON, nests deeper
    than :data:`MAX_JSON_DEPTH`, or uses NaN/Infinity (which JSON does not have)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadReview("body is not UTF-8") from None
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise BadReview(f"body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as e:  # JSONDecodeError, or a NaN/Infinity constant
        raise BadReview(f"body is not JSON: {e}") from None


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (brackets inside strings skipped).
    Checked before ``json.loads``, which recurses once per level."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(text):
        ch = m[0]
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


# A JSON string (escapes included) or one bracket: strings are matched whole, so their
# brackets never count.
_BRACKETS: Final = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def admit(
    review: Any, choose: Chooser, *, choose_timeout_s: float = CHOOSE_TIMEOUT_S
) -> dict[str, Any]:
    """The AdmissionReview answering ``review``: always allowed, with a patch for a pinned pod.

    Never raises (but does let cancellation through): any error is logged and the pod is
    admitted unchanged.
    """
    request = review.get("request") if isinstance(review, Mapping) else None
    request = request if isinstance(request, Mapping) else {}
    api_version = review.get("apiVersion") if isinstance(review, Mapping) else None
    uid = request.get("uid")
    response: dict[str, Any] = {"uid": uid if isinstance(uid, str) else "", "allowed": True}
    answer = {
        "apiVersion": api_version if isinstance(api_version, str) else "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }
    try:
        patch = await _patch_for(request, choose, choose_timeout_s)
    except Exception as e:  # admission must never fail because of scaler
        log.warning("webhook_error", uid=response["uid"], error=f"{type(e).__name__}: {e}")
        return answer
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return answer


async def _patch_for(request: Mapping[str, Any], choose: Chooser, timeout_s: float) -> Patch:
    kind = request.get("kind") or {}
    resource = request.get("resource") or {}
    if (
        request.get("operation") != "CREATE"
        or kind.get("kind") != "Pod"
        or resource.get("resource") != "pods"
        or request.get("subResource")
    ):
        return []
    pod = request.get("object")
    if not isinstance(pod, Mapping):
        return []
    meta = dict(pod.get("metadata") or {})
    # On CREATE the object often has no namespace yet (the URL names it) and, for a
    # controller's pod, no name yet (generateName).
    meta["namespace"] = meta.get("namespace") or request.get("namespace")
    meta["name"] = meta.get("name") or request.get("name") or meta.get("generateName") or ""
    pod = {**pod, "metadata": meta}
    key = pod_key(pod)
    why = skip_reason(pod)
    if why is not None:
        log.debug("webhook_skip", pod=key, why=why)
        return []
    converted = pod_spec(pod, strict=True)
    if converted.value is None:
        log.info("webhook_unreadable_pod", pod=key, problem=str(converted.problem))
        return []
    tier: tuple[str, ...] = ()
    with anyio.move_on_after(timeout_s) as scope:
        tier = await choose(converted.value)
    if scope.cancelled_caught:
        log.warning("webhook_slow", pod=key, timeout_s=timeout_s)
        return []
    patch = pin_patch(pod, tuple(tier), exclusive=isinstance(tier, Pin) and tier.exclusive)
    log.debug("webhook_pin", pod=key, pools=",".join(tier) if patch else "")
    return patch


# ------------------------------------------------------------------------------ choosing


class PinSource(Protocol):
    """What the chooser reads from the reconciler (structurally: adapters do not import
    the loop)."""

    settings: Settings
    memory: Memory
    clock: Clock
    pools_seen: Sequence[PoolSpec]

    async def offerings_now(self) -> Offerings: ...


def make_chooser(
    source: PinSource, runtimes: Callable[[], RuntimeHistory] | None = None
) -> Chooser:
    """Pin with what the reconciler last saw: its cached offerings, pools backing off after a
    failed launch or an interruption left out, pools at their max size left out. No AWS call
    once the first tick has run. Returns () (no pin) when pinning is disabled in settings;
    otherwise the core's :func:`~scaler.core.pinning.pin_for` (a tier, and exclusivity).
    ``runtimes``: the cluster's history of finished runs (``KubeCluster.runtime_history``),
    which prices the pod's Spot risk by its expected lost work as decide() does."""

    async def choose(pod: PodSpec) -> tuple[str, ...]:
        settings = source.settings
        if not settings.pinning.enabled:
            return ()
        offerings = await source.offerings_now()
        now = source.clock.now()
        available = np.array(
            [not source.memory.backing_off(p.name, now) for p in offerings.pools], dtype=bool
        )
        # Pools out only for a Spot reclaim stay in the tier, after it (pin_for).
        readmit = np.array(
            [source.memory.reclaim_only(p.name, now) for p in offerings.pools], dtype=bool
        )
        live = {p.name: p for p in source.pools_seen}
        headroom = np.array(
            [_headroom(live.get(p.name, p)) for p in offerings.pools], dtype=np.float64
        )
        history = runtimes() if runtimes is not None else RuntimeHistory()
        lost = lost_work_h([pod], history, settings.placement)
        return pin_for(pod, offerings, settings, available=available, headroom=headroom,
                       readmit=readmit, lost_work_h=None if lost is None else float(lost[0]))

    return choose


def _headroom(pool: PoolSpec) -> float:
    # Same rule as decide(): max size minus desired size (launches in flight count).
    return np.inf if pool.max_size is None else float(max(pool.max_size - pool.current_size, 0))


# ------------------------------------------------------------------------------------ TLS


class CertFiles:
    """A serving certificate and key on disk, reloaded when either file changes.

    A Secret volume is updated by swapping a symlink, so both files change at once; a
    cert-manager rotation or a hand edit may not be atomic, so a pair that fails to load is
    logged once and the last good context keeps serving until the files change again.
    """

    def __init__(self, cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]):
        self.cert_file, self.key_file = os.fspath(cert_file), os.fspath(key_file)
        self._stamp = self._files_stamp()
        self._tried = self._stamp
        self.context = self._load()  # at start, a bad pair is an error: fail the deploy
        self.reloads = 0

    def current(self) -> ssl.SSLContext:
        """The context to serve this handshake with (reloading first if the files changed)."""
        try:
            stamp = self._files_stamp()
        except OSError:
            return self.context  # mid-rotation or unmounted: keep serving the last good pair
        if stamp == self._stamp or stamp == self._tried:
            return self.context
        self._tried = stamp
        try:
            context = self._load()
        except (OSError, ssl.SSLError) as e:
            log.warning("webhook_cert_reload_failed", cert=self.cert_file, error=str(e))
            return self.context
        self.context, self._stamp = context, stamp
        self.reloads += 1
        log.info("webhook_cert_reloaded", cert=self.cert_file)
        return context

    def _files_stamp(self) -> tuple[tuple[int, int, int], ...]:
        stats = (os.stat(self.cert_file), os.stat(self.key_file))
        return tuple((s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def server_context(self) -> ssl.SSLContext:
        """The listening socket's context. Its SNI callback runs on every ClientHello (with
        no server name too, as when the API server dials an IP) and hands the handshake the
        current context, so a renewed certificate is served without a restart."""
        listener = self._load()

        def pick(conn: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _ctx: Any) -> None:
            context = self.current()
            if conn.context is not context:
                conn.context = context

        listener.sni_callback = pick
        return listener


# --------------------------------------------------------------------------------- server


async def serve_webhook(
    host: str,
    port: int,
    *,
    cert_file: str | os.PathLike[str],
    key_file: str | os.PathLike[str],
    choose: Chooser,
    choose_timeout_s: float = CHOOSE_TIMEOUT_S,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``POST /mutate`` over TLS 1.2+ until cancelled; ``task_status.started(port)``
    with the bound port (``port=0`` picks a free one). Raises at start if the certificate
    or key cannot be loaded."""
    certs = CertFiles(cert_file, key_file)

    async def mutate(request: web.Request) -> web.Response:
        # Refused with a one-line 400 (no traceback): the API server then applies the
        # webhook's failurePolicy (Ignore), so the pod is admitted unchanged.
        try:
            review = read_review(await request.read())
        except BadReview as e:
            log.warning("webhook_bad_request", error=str(e))
            return web.Response(status=400, text=f"bad AdmissionReview: {e}\n")
        answer = await admit(review, choose, choose_timeout_s=choose_timeout_s)
        return web.json_response(answer)

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.add_routes([web.post(path, mutate) for path in PATHS])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=certs.server_context())
    await site.start()
    try:
        bound = int(runner.addresses[0][1])
        log.info("webhook_listening", host=host, port=bound)
        task_status.started(bound)
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()


__all__ = [
    "ANNOTATION_PIN",
    "ANNOTATION_PINNED_POOLS",
    "MAX_JSON_DEPTH",
    "BadReview",
    "CertFiles",
    "Chooser",
    "PinSource",
    "admit",
    "exclusive_ops",
    "make_chooser",
    "pin_patch",
    "read_review",
    "selects_pool",
    "serve_webhook",
    "skip_reason",
]
