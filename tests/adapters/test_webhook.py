"""The pinning admission webhook: AdmissionReview in, JSONPatch out; TLS with certificate
reload; and the real kube-apiserver (v1.20.2) calling it on 127.0.0.1.

Patches are checked by applying them (a tiny RFC 6902 ``add`` applier below, strict about
missing parents like the API server's) and reading the resulting pod. Tiers come from the
real core over the bundled catalog: a 4 GiB pod may run on m5a.large ($0.086/h) or m5.large
($0.096/h, within the 25 % tolerance), never on the r5.16xlarge (512 GiB, $4.032/h).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import datetime
import ipaddress
import json
import os
import secrets
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
import urllib3
from anyio.streams.tls import TLSAttribute

from scaler.adapters.kube.webhook import (
    ANNOTATION_PINNED_POOLS,
    CertFiles,
    admit,
    escape,
    pin_patch,
    serve_webhook,
)
from scaler.core.catalog import Catalog
from scaler.core.memory import Memory
from scaler.core.model import LABEL_POOL, PodSpec, PoolSpec
from scaler.core.offerings import Offerings, PoolTable, build_offerings
from scaler.core.settings import Settings, preset
from scaler.core.state import ClusterView
from scaler.loop.admission import make_chooser
from tests.fixtures.kube import KubeEnv, control_plane, require_kube_parts

blocking = anyio.to_thread.run_sync
CHEAP_TIER = ["m5a-large", "m5-large"]
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


# --- a tiny RFC 6902 applier (``add`` only: all the webhook emits) ------------------------


def apply_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for op in ops:
        assert op["op"] == "add", op
        *parents, last = [
            t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]
        ]
        target: Any = out
        for token in parents:  # a missing parent is an error, as in the API server
            target = target[int(token)] if isinstance(target, list) else target[token]
        if isinstance(target, list):
            target.insert(len(target) if last == "-" else int(last), op["value"])
        else:
            assert isinstance(target, dict), (op, target)
            target[last] = op["value"]
    return out


# --- builders -----------------------------------------------------------------------------


def make_pod(
    *,
    memory: str = "4Gi",
    annotations: dict[str, str] | None = None,
    owner: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"generateName": "notebook-"}
    if annotations is not None:
        meta["annotations"] = annotations
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "apiVersion": "apps/v1"}]
    container = {"name": "main", "image": "jupyter", "resources": {"requests": {"memory": memory}}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [container], **spec},
    }


def review(
    pod: Any,
    *,
    operation: str = "CREATE",
    kind: str = "Pod",
    resource: str = "pods",
    sub_resource: str | None = None,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": kind},
        "resource": {"group": "", "version": "v1", "resource": resource},
        "namespace": "data-science",
        "operation": operation,
        "object": pod,
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def pools() -> list[PoolSpec]:
    return [
        PoolSpec("m5-large", ("m5.large",), max_size=10),
        PoolSpec("m5a-large", ("m5a.large",), max_size=10),
        PoolSpec("m5-xlarge", ("m5.xlarge",), max_size=10),
        PoolSpec("r5-16xlarge", ("r5.16xlarge",), max_size=10),
    ]


@pytest.fixture(scope="module")
def offerings() -> Offerings:
    built, problems = build_offerings(pools(), Catalog.load())
    assert not problems
    return built


class FixedClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    async def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)


@dataclass
class Source:
    """What make_chooser reads from the Reconciler, with the real core behind it."""

    offerings: Offerings
    settings: Settings = field(default_factory=lambda: preset("scaler"))
    memory: Memory = field(default_factory=Memory)
    clock: FixedClock = field(default_factory=FixedClock)
    pools_seen: list[PoolSpec] = field(default_factory=list)
    table_seen: PoolTable | None = None
    lookups: int = 0

    async def offerings_now(self) -> Offerings:
        self.lookups += 1
        return self.offerings


class Recording:
    """A chooser that records the pods it was asked about and answers ``tier``."""

    def __init__(self, tier: tuple[str, ...] = ("m5a-large", "m5-large")) -> None:
        self.tier = tier
        self.pods: list[PodSpec] = []

    async def __call__(self, pod: PodSpec) -> tuple[str, ...]:
        self.pods.append(pod)
        return self.tier


async def mutated(pod: dict[str, Any], choose: Any, **kw: Any) -> tuple[dict[str, Any], Any]:
    """(the pod after the webhook's patch, the response)."""
    answer = await admit(review(pod), choose, **kw)
    response = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert response["allowed"] is True
    if "patch" not in response:
        return pod, response
    assert response["patchType"] == "JSONPatch"
    return apply_patch(pod, json.loads(base64.b64decode(response["patch"]))), response


def pool_requirement(values: list[str]) -> dict[str, Any]:
    return {"key": LABEL_POOL, "operator": "In", "values": values}


def terms_of(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod["spec"]["affinity"]["nodeAffinity"][REQUIRED]["nodeSelectorTerms"]


# --- AdmissionReview -> patch -------------------------------------------------------------


@pytest.mark.anyio
async def test_pod_without_affinity_gets_one_term_with_the_real_cores_tier(offerings: Offerings):
    out, _ = await mutated(make_pod(memory="4Gi"), make_chooser(Source(offerings)))
    assert terms_of(out) == [{"matchExpressions": [pool_requirement(CHEAP_TIER)]}]
    assert out["metadata"]["annotations"] == {ANNOTATION_PINNED_POOLS: "m5a-large,m5-large"}


@pytest.mark.anyio
async def test_pod_with_a_node_selector_keeps_it_and_gains_the_requirement(offerings: Offerings):
    pod = make_pod(
        memory="12Gi", nodeSelector={"kubernetes.io/arch": "amd64"}, annotations={"team": "ds"}
    )
    out, _ = await mutated(pod, make_chooser(Source(offerings)))
    assert out["spec"]["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
    assert terms_of(out) == [{"matchExpressions": [pool_requirement(["m5-xlarge"])]}]
    # Existing annotations are kept; the key's "/" is escaped in the patch path.
    assert out["metadata"]["annotations"] == {"team": "ds", ANNOTATION_PINNED_POOLS: "m5-xlarge"}


@pytest.mark.anyio
async def test_requirement_is_anded_into_every_existing_term():
    zone = "topology.kubernetes.io/zone"
    terms = [
        {"matchExpressions": [{"key": zone, "operator": "In", "values": ["us-east-1a"]}]},
        {"matchExpressions": [{"key": zone, "operator": "In", "values": ["us-east-1b"]}]},
    ]
    preferred = [
        {
            "weight": 1,
            "preference": {
                "matchExpressions": [{"key": "team", "operator": "In", "values": ["ds"]}]
            },
        }
    ]
    pod = make_pod(
        affinity={
            "nodeAffinity": {
                REQUIRED: {"nodeSelectorTerms": terms},
                "preferredDuringSchedulingIgnoredDuringExecution": preferred,
            }
        }
    )
    choose = Recording()
    out, _ = await mutated(pod, choose)
    for i, term in enumerate(terms_of(out)):
        assert term["matchExpressions"] == [
            *terms[i]["matchExpressions"],
            pool_requirement(CHEAP_TIER),
        ]
    assert (
        out["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        == preferred
    )
    # The core was asked with the pod's own terms: the tier honours them.
    (asked,) = choose.pods
    assert len(asked.affinity) == 2
    assert asked.namespace == "data-science"


@pytest.mark.parametrize(
    "affinity",
    [
        {},
        {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        {"nodeAffinity": {}},
        {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 1,
                        "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
                    }
                ]
            }
        },
        {"nodeAffinity": {REQUIRED: None}},
    ],
    ids=[
        "empty",
        "pod-anti-affinity-only",
        "empty-node-affinity",
        "preferred-only",
        "null-required",
    ],
)
@pytest.mark.anyio
async def test_missing_parts_of_the_affinity_are_added_whole(affinity: dict[str, Any]):
    pod = make_pod(affinity=affinity)
    out, _ = await mutated(pod, Recording())
    assert terms_of(out) == [{"matchExpressions": [pool_requirement(CHEAP_TIER)]}]
    for key, value in affinity.items():  # whatever was there stays
        if key != "nodeAffinity":
            assert out["spec"]["affinity"][key] == value


def test_empty_terms_match_no_node_and_stay_empty():
    pod = make_pod(
        affinity={
            "nodeAffinity": {
                REQUIRED: {
                    "nodeSelectorTerms": [
                        {},
                        {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
                    ]
                }
            }
        }
    )
    out = apply_patch(pod, pin_patch(pod, ["p"]))
    assert terms_of(out)[0] == {}
    assert terms_of(out)[1]["matchExpressions"][-1] == pool_requirement(["p"])
    only_empty = make_pod(affinity={"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": [{}]}}})
    assert pin_patch(only_empty, ["p"]) == []


@pytest.mark.parametrize(
    "pod",
    [
        make_pod(nodeSelector={LABEL_POOL: "r5-16xlarge"}),
        make_pod(
            affinity={
                "nodeAffinity": {
                    REQUIRED: {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
                            {"matchExpressions": [pool_requirement(["r5-16xlarge"])]},
                        ]
                    }
                }
            }
        ),
        make_pod(owner="DaemonSet"),
        make_pod(annotations={"kubernetes.io/config.mirror": "abc"}, nodeName="node-1"),
        make_pod(nodeName="node-1"),
        make_pod(annotations={"scaler.io/pin": "false"}),
    ],
    ids=["pool-in-node-selector", "pool-in-one-term", "daemonset", "mirror", "bound", "opted-out"],
)
@pytest.mark.anyio
async def test_pods_that_must_not_be_pinned_are_admitted_unchanged_without_asking(
    pod: dict[str, Any],
):
    choose = Recording()
    out, response = await mutated(pod, choose)
    assert "patch" not in response and out is pod
    assert choose.pods == []


@pytest.mark.anyio
async def test_a_pod_scaler_cannot_read_is_admitted_unchanged():
    choose = Recording()
    _, response = await mutated(make_pod(memory="4 GiB"), choose)
    assert "patch" not in response and choose.pods == []


@pytest.mark.parametrize(
    "request_",
    [
        review(make_pod(), operation="UPDATE"),
        review(make_pod(), operation="DELETE"),
        review(
            {"kind": "ConfigMap", "metadata": {"name": "x"}},
            kind="ConfigMap",
            resource="configmaps",
        ),
        review({"kind": "Binding"}, kind="Binding", sub_resource="binding"),
        review("not an object"),
    ],
    ids=["update", "delete", "configmap", "binding-subresource", "garbage-object"],
)
@pytest.mark.anyio
async def test_anything_but_a_pod_create_is_allowed_without_a_patch(request_: dict[str, Any]):
    choose = Recording()
    answer = await admit(request_, choose)
    assert answer["response"] == {"uid": request_["request"]["uid"], "allowed": True}
    assert choose.pods == []


@pytest.mark.parametrize(
    "review_", [None, [], {}, {"request": "x"}, {"request": {"uid": 7}}, {"apiVersion": [1]}]
)
@pytest.mark.anyio
async def test_a_malformed_review_is_still_answered_allowed(review_: Any):
    answer = await admit(review_, Recording())
    assert answer["response"]["allowed"] is True
    assert "patch" not in answer["response"]
    assert isinstance(answer["response"]["uid"], str) and isinstance(answer["apiVersion"], str)


@pytest.mark.anyio
async def test_a_failing_chooser_or_an_empty_tier_admits_unchanged():
    async def broken(pod: PodSpec) -> tuple[str, ...]:
        raise RuntimeError("AWS is down")

    _, response = await mutated(make_pod(), broken)
    assert "patch" not in response
    _, response = await mutated(make_pod(), Recording(tier=()))
    assert "patch" not in response


@pytest.mark.anyio
async def test_a_slow_chooser_is_abandoned_before_the_api_server_gives_up():
    async def slow(pod: PodSpec) -> tuple[str, ...]:
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.fail_after(5):
        started = anyio.current_time()
        _, response = await mutated(make_pod(), slow, choose_timeout_s=0.1)
        assert anyio.current_time() - started < 1.0
    assert "patch" not in response


def test_json_pointer_escaping():
    assert escape("scaler.io/pinned-pools") == "scaler.io~1pinned-pools"
    assert escape("a~b/c") == "a~0b~1c"


# --- make_chooser: the reconciler's view ---------------------------------------------------


def spec(memory_mib: float) -> PodSpec:
    from scaler.core.model import Resources

    return PodSpec("nb", requests=Resources(cpu_milli=500, memory_mib=memory_mib, pods=1))


@pytest.mark.anyio
async def test_chooser_leaves_out_pools_backing_off_and_pools_at_max_size(offerings: Offerings):
    source = Source(offerings)
    choose = make_chooser(source)
    assert await choose(spec(4096)) == tuple(CHEAP_TIER)
    source.memory.mark_unavailable("m5a-large", until_s=1060.0, reason="Spot interruption")
    # m5-large alone is within the tolerance; m5-xlarge, at exactly 2x, is its fallback.
    assert await choose(spec(4096)) == ("m5-large", "m5-xlarge")
    source.clock.t = 1100.0  # the backoff ended
    source.pools_seen = [PoolSpec("m5-large", ("m5.large",), max_size=3, current_size=3)]
    assert await choose(spec(4096)) == ("m5a-large",)
    assert source.lookups == 3


@pytest.mark.anyio
async def test_chooser_pins_nothing_when_pinning_is_disabled(offerings: Offerings):
    source = Source(offerings, settings=preset("scaler").with_overrides({"enabled": "false"}))
    assert await make_chooser(source)(spec(4096)) == ()


@pytest.mark.anyio
async def test_a_pod_no_pool_fits_is_left_unpinned(offerings: Offerings):
    _, response = await mutated(make_pod(memory="600Gi"), make_chooser(Source(offerings)))
    assert "patch" not in response


class NoNodes:
    """The Cluster call offerings_now makes, on a cluster with no nodes yet."""

    async def snapshot(self) -> ClusterView:
        return ClusterView(0.0)


class CountingFleet:
    """Just the Fleet calls offerings_now makes."""

    def __init__(self, pools: list[PoolSpec]) -> None:
        self.pools_now = pools
        self.lookups = 0

    async def pools(self) -> list[PoolSpec]:
        self.lookups += 1
        return self.pools_now

    def changed(self, before: object, now: object) -> None:
        return None  # no account kept, as AwsFleet: the cache compares the pools


@pytest.mark.anyio
async def test_the_real_reconciler_feeds_the_chooser_from_its_cache():
    import numpy as np

    from scaler.loop.reconciler import Reconciler

    fleet = CountingFleet(pools())
    clock = FixedClock()
    reconciler = Reconciler(
        cluster=NoNodes(),  # type: ignore[arg-type]
        fleet=fleet,  # type: ignore[arg-type]
        actuator=None,  # type: ignore[arg-type]
        catalog=Catalog.load(),
        settings=preset("scaler"),
        clock=clock,
        rng=np.random.default_rng(0),
    )
    choose = make_chooser(reconciler)
    assert await choose(spec(4096)) == tuple(CHEAP_TIER)
    assert await choose(spec(4096)) == tuple(CHEAP_TIER)
    assert fleet.lookups == 1  # cached: no AWS call per admission
    # A minute later (a follower, which never ticks), the pools are looked up again, and
    # their live sizes count: m5a-large has reached its max size.
    fleet.pools_now = [
        dataclasses.replace(p, current_size=10) if p.name == "m5a-large" else p for p in pools()
    ]
    clock.t += 61
    assert await choose(spec(4096)) == ("m5-large", "m5-xlarge")
    assert fleet.lookups == 2


# --- TLS ----------------------------------------------------------------------------------


@dataclass
class Pki:
    """A throwaway CA and serving certificates for 127.0.0.1 (IP SAN), from ``cryptography``."""

    directory: Path
    ca_key: Any = None
    ca_cert: Any = None

    def __post_init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scaler-test-ca")])
        now = datetime.datetime.now(datetime.UTC)
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file.write_bytes(self._pem(self.ca_cert))

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_pem(self) -> bytes:
        return self.ca_file.read_bytes()

    def issue(self, stem: str) -> tuple[Path, Path, bytes]:
        """(cert file, key file, DER of the certificate) for 127.0.0.1."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        cert_file, key_file = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        cert_file.write_bytes(self._pem(cert))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_file, key_file, cert.public_bytes(serialization.Encoding.DER)

    @staticmethod
    def _pem(cert: Any) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return bytes(cert.public_bytes(serialization.Encoding.PEM))

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pytest.importorskip("cryptography")
    return Pki(tmp_path)


@asynccontextmanager
async def webhook(
    pki: Pki, choose: Any, cert: tuple[Path, Path] | None = None
) -> AsyncIterator[tuple[int, anyio.CancelScope, tuple[Path, Path]]]:
    """The webhook on 127.0.0.1:<free port>, in this test's event loop."""
    cert_file, key_file = cert or pki.issue("serving")[:2]
    async with anyio.create_task_group() as tg:
        scope = anyio.CancelScope()

        async def run(*, task_status: Any) -> None:
            with scope:
                await serve_webhook(
                    "127.0.0.1",
                    0,
                    cert_file=cert_file,
                    key_file=key_file,
                    choose=choose,
                    task_status=task_status,
                )

        port = await tg.start(run)
        yield port, scope, (cert_file, key_file)
        scope.cancel()


async def served_cert(pki: Pki, port: int) -> bytes:
    stream = await anyio.connect_tcp(
        "127.0.0.1", port, ssl_context=pki.client_context(), tls_standard_compatible=False
    )
    async with stream:
        return bytes(stream.extra(TLSAttribute.peer_certificate_binary))


@pytest.mark.anyio
async def test_webhook_answers_over_tls_with_the_same_uid(pki: Pki):
    with anyio.fail_after(10):
        async with webhook(pki, Recording()) as (port, _, _), aiohttp.ClientSession() as http:
            for path in ("/mutate",):
                async with http.post(
                    f"https://127.0.0.1:{port}{path}",
                    json=review(make_pod()),
                    ssl=pki.client_context(),
                ) as reply:
                    assert reply.status == 200
                    answer = await reply.json()
                assert answer["response"]["uid"] == review(make_pod())["request"]["uid"]
                assert answer["response"]["patchType"] == "JSONPatch"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{not json", "body is not JSON"),
        (b'{"request": ' * 10_000 + b"{}" + b"}" * 10_000, "nests deeper than 64 levels"),
        (b"[" * 100_000, "nests deeper than 64 levels"),
        (b'{"request": {"uid": NaN}}', "NaN is not a JSON number"),
        (b"\xff\xfe", "not UTF-8"),
    ],
    ids=["not-json", "deep-object", "deep-array", "nan", "not-utf8"],
)
@pytest.mark.anyio
async def test_an_unreadable_body_is_a_one_line_400_and_the_server_keeps_serving(
    pki: Pki, body: bytes, why: str
):
    """Deep nesting once made json.loads raise RecursionError: a 500 with a traceback. The API
    server treats a 400 by the failurePolicy (Ignore): the pod is admitted unchanged."""
    with anyio.fail_after(10):
        async with webhook(pki, Recording()) as (port, _, _), aiohttp.ClientSession() as http:
            url = f"https://127.0.0.1:{port}/mutate"
            async with http.post(url, data=body, ssl=pki.client_context()) as reply:
                assert reply.status == 400
                text = await reply.text()
            assert why in text and text.count("\n") == 1 and "Traceback" not in text
            async with http.post(url, json=review(make_pod()), ssl=pki.client_context()) as ok:
                assert ok.status == 200


@pytest.mark.anyio
async def test_webhook_speaks_tls_1_2_or_newer_only(pki: Pki):
    cert_file, key_file, _ = pki.issue("serving")
    assert CertFiles(cert_file, key_file).server_context().minimum_version == (
        ssl.TLSVersion.TLSv1_2
    )
    with anyio.fail_after(10):
        async with webhook(pki, Recording()) as (port, _, _):
            stream = await anyio.connect_tcp(
                "127.0.0.1", port, ssl_context=pki.client_context(), tls_standard_compatible=False
            )
            async with stream:
                assert stream.extra(TLSAttribute.tls_version) in ("TLSv1.2", "TLSv1.3")


@pytest.mark.anyio
async def test_a_renewed_certificate_is_served_without_a_restart_and_a_bad_one_is_not(pki: Pki):
    first_cert, first_key, first_der = pki.issue("first")
    with anyio.fail_after(10):
        async with webhook(pki, Recording(), (first_cert, first_key)) as (port, _, _):
            assert await served_cert(pki, port) == first_der
            # cert-manager renews: both files replaced (as a Secret volume's symlink swap).
            new_cert, new_key, new_der = pki.issue("second")
            new_cert.replace(first_cert)
            new_key.replace(first_key)
            assert await served_cert(pki, port) == new_der
            # Half a rotation (a certificate whose key is not there yet) keeps the last pair.
            pki.issue("third")[0].replace(first_cert)
            assert await served_cert(pki, port) == new_der


def test_a_bad_certificate_at_start_is_an_error(tmp_path: Path):
    (tmp_path / "tls.crt").write_text("not a certificate")
    (tmp_path / "tls.key").write_text("not a key")

    async def main() -> None:
        await serve_webhook(
            "127.0.0.1",
            0,
            cert_file=tmp_path / "tls.crt",
            key_file=tmp_path / "tls.key",
            choose=Recording(),
        )

    with pytest.raises(ssl.SSLError):
        anyio.run(main)


# --- the real kube-apiserver calls it ---------------------------------------------------------

APISERVER_CRASH = (
    "this kube-apiserver crashes on any mutating webhook's patch (SIGSEGV in json-iterator's "
    "map encoder): v1.20 vendors modern-go/reflect2 v1.0.1, which is broken under Go >= 1.18. "
    "Rebuild it with reflect2 v1.0.2 (tools/kube/build-kube-bins.sh; see docs/webhook.md)."
)


@pytest.fixture(scope="module")
def own_kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeEnv]:
    """A control plane of this module's own (no scheduler, same binaries as ``kube_env``):
    if the API server dies on our patch, the session's shared one must not die with it."""
    require_kube_parts()
    try:
        with control_plane(tmp_path_factory.mktemp("kube-webhook"), scheduler=False) as env:
            yield env
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


def _crashed(kube: KubeEnv) -> bool:
    log = kube.workdir / "apiserver.log"
    return log.exists() and "fatal error" in log.read_text(errors="replace")


@pytest.mark.kube
@pytest.mark.anyio
async def test_the_api_server_pins_pods_in_opted_in_namespaces_and_ignores_us_when_down(
    own_kube: KubeEnv, pki: Pki, offerings: Offerings
):
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    suffix = secrets.token_hex(3)
    config_name, pinned_ns, plain_ns = (f"scaler-test-{suffix}", f"pin-{suffix}", f"plain-{suffix}")
    api = own_kube.api_client()
    core = client.CoreV1Api(api)
    admission = client.AdmissionregistrationV1Api(api)

    def body(name: str) -> Any:
        container = client.V1Container(
            name="main",
            image="registry.k8s.io/pause:3.2",
            resources=client.V1ResourceRequirements(requests={"memory": "4Gi"}),
        )
        return client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=0),
        )

    def create(namespace: str, name: str, dry_run: bool = False) -> dict[str, Any]:
        made = core.create_namespaced_pod(namespace, body(name), dry_run="All" if dry_run else None)
        return dict(api.sanitize_for_serialization(made))

    def probe(i: int) -> dict[str, Any] | None:
        try:
            return create(pinned_ns, f"probe-{i}", True)
        except Exception:
            if _crashed(own_kube):
                return None
            raise

    def register(port: int) -> None:
        hook = client.V1MutatingWebhook(
            name="pin.scaler.io",
            admission_review_versions=["v1"],
            side_effects="None",
            failure_policy="Ignore",
            timeout_seconds=2,
            client_config=client.AdmissionregistrationV1WebhookClientConfig(
                url=f"https://127.0.0.1:{port}/mutate",
                ca_bundle=base64.b64encode(pki.ca_pem).decode(),
            ),
            namespace_selector=client.V1LabelSelector(match_labels={"scaler.io/pin": "enabled"}),
            rules=[
                client.V1RuleWithOperations(
                    api_groups=[""],
                    api_versions=["v1"],
                    operations=["CREATE"],
                    resources=["pods"],
                    scope="Namespaced",
                )
            ],
        )
        admission.create_mutating_webhook_configuration(
            client.V1MutatingWebhookConfiguration(
                metadata=client.V1ObjectMeta(name=config_name), webhooks=[hook]
            )
        )

    def namespaces() -> None:
        # Labelled at creation: the API server's namespace matcher never sees it unlabelled.
        for name, labels in ((pinned_ns, {"scaler.io/pin": "enabled"}), (plain_ns, None)):
            core.create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
            )

    def cleanup() -> None:
        # Cluster-scoped: it would send every later pod in a labelled namespace to a dead port.
        # (Nothing to delete from an API server that died.)
        with contextlib.suppress(ApiException, OSError, urllib3.exceptions.HTTPError):
            admission.delete_mutating_webhook_configuration(config_name)
        api.close()

    def is_pinned(pod: dict[str, Any]) -> bool:
        return ANNOTATION_PINNED_POOLS in (pod["metadata"].get("annotations") or {})

    async def until_pinned() -> bool:
        """False if the API server died of our patch."""
        with anyio.fail_after(15):
            i = 0
            while True:
                probed = await blocking(probe, i)
                if probed is None or is_pinned(probed):
                    return probed is not None
                i += 1
                await anyio.sleep(0.1)

    await blocking(namespaces)
    try:
        with anyio.fail_after(60):
            async with webhook(pki, make_chooser(Source(offerings))) as (port, scope, _):
                await blocking(register, port)
                # The API server loads webhook configurations asynchronously: probe with
                # dry-run creates (sideEffects None: the webhook is called for those too).
                alive = await until_pinned()
                if alive:
                    pinned = await blocking(create, pinned_ns, "notebook")
                    elsewhere = await blocking(create, plain_ns, "notebook")
                scope.cancel()  # the webhook is down; the configuration still names it
            if not alive:
                if os.environ.get("CI"):
                    pytest.fail(APISERVER_CRASH, pytrace=False)
                pytest.skip(APISERVER_CRASH)
            assert terms_of(pinned) == [{"matchExpressions": [pool_requirement(CHEAP_TIER)]}]
            assert pinned["metadata"]["annotations"][ANNOTATION_PINNED_POOLS] == (
                "m5a-large,m5-large"
            )
            assert "affinity" not in elsewhere["spec"] and not is_pinned(elsewhere)

            started = anyio.current_time()
            down = await blocking(create, pinned_ns, "notebook-while-down")
            assert "affinity" not in down["spec"] and not is_pinned(down)
            assert anyio.current_time() - started < 5
    finally:
        await blocking(cleanup)


@pytest.mark.anyio
async def test_chooser_prices_spot_risk_by_the_clusters_history_of_the_pods_workload():
    # flaky (c7i.large Spot, 0.25 interruptions a month) at $0.100/h, steady (c5.large, 0.025)
    # at $0.120/h. Charged 24 h of lost work, flaky is cheaper: 0.100 x (1 + 0.25/730 x 24)
    # = 0.1008 < 0.1201. The Job's last pod ran 2,000 h: 1,000 h at stake, 0.1342 > 0.1241.
    from scaler.core.catalog import Catalog
    from scaler.core.model import SPOT, Resources
    from scaler.core.offerings import build_offerings
    from scaler.core.runtime import RuntimeRecorder

    pools = [PoolSpec("flaky", ("c7i.large",), SPOT, price_usd_per_hour=0.100),
             PoolSpec("steady", ("c5.large",), SPOT, price_usd_per_hour=0.120)]
    offerings, _ = build_offerings(pools, Catalog.load())
    train = PodSpec("train-x7b2k", requests=Resources(cpu_milli=500, memory_mib=1024, pods=1))
    recorder = RuntimeRecorder()
    assert await make_chooser(Source(offerings), recorder.history)(train) == ("flaky", "steady")
    recorder.record(PodSpec("train-bbbbb"), 2000 * 3600.0)
    assert await make_chooser(Source(offerings), recorder.history)(train) == ("steady", "flaky")
