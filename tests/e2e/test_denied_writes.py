"""A group whose writes are always denied: the live controller against the real kube-apiserver
+ kube-scheduler and moto behind a small fault proxy on 127.0.0.1.

moto enforces IAM only in some setups, so the proxy plays IAM: it answers
``SetDesiredCapacity`` on one group with AWS's own 403 AccessDenied body and passes every
other request to moto unchanged. (h4-faults builds the general fault proxy; this one is the
minimum this failure needs and is to be unified with it.)

Groups (us-east-1 catalog prices): ``denied`` m5a.large $0.086/h, ``allowed`` m5.large
$0.096/h: the denied one is the cheapest, so it is chosen first.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest
from kubernetes import client

from scaler.adapters.aws.fleet import AwsFleet
from scaler.adapters.metrics import Metrics
from scaler.app import Controller, RunOptions, build
from scaler.core.actions import ScaleUp
from scaler.core.catalog import Catalog
from scaler.ports import Rejected
from tests.fixtures.aws import Group, tagged_groups
from tests.fixtures.kube import wait_for

CLUSTER = "denied"
DENIED_BODY = (
    '<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error>'
    "<Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:sts::123456789012:"
    "assumed-role/scaler/x is not authorized to perform: autoscaling:SetDesiredCapacity on "
    "resource: {group} because no identity-based policy allows the action</Message></Error>"
    "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class DenyingProxy(ThreadingHTTPServer):
    """Forwards to ``upstream``; refuses SetDesiredCapacity on ``group``; counts refusals."""

    daemon_threads = True

    def __init__(self, upstream: str, group: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = urllib.parse.urlsplit(upstream)
        self.group = group
        self.denied = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: DenyingProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if form.get("Action") == ["SetDesiredCapacity"] and form.get(
            "AutoScalingGroupName"
        ) == [self.server.group]:
            self.server.denied += 1
            self._answer(403, [("Content-Type", "text/xml")],
                         DENIED_BODY.format(group=self.server.group).encode())
            return
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            self._answer(answer.status, [(k, v) for k, v in answer.getheaders()
                                         if k.lower() not in _HOP], answer.read())
        finally:
            conn.close()

    def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@contextlib.contextmanager
def denying_proxy(upstream: str, group: str) -> Iterator[DenyingProxy]:
    proxy = DenyingProxy(upstream, group)
    thread = threading.Thread(target=proxy.serve_forever, name="denying-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(5)


@pytest.fixture
def proxy(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[DenyingProxy]:
    with denying_proxy(aws, "denied") as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)  # scaler's clients go through it
        yield p


@pytest.fixture
def account(aws: str) -> Any:
    return tagged_groups(aws, CLUSTER, [Group("denied", "m5a.large"), Group("allowed", "m5.large")])


def desired(asg: Any) -> dict[str, int]:
    groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["AutoScalingGroupName"]: g["DesiredCapacity"] for g in groups}


@pytest.mark.anyio
async def test_the_fleet_reports_an_access_denied_write_as_rejected(account, proxy, catalog):
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        with pytest.raises(Rejected, match="AccessDenied"):
            await fleet.set_desired("denied", 1)
        await fleet.set_desired("allowed", 1)
    assert proxy.denied == 1
    assert desired(account) == {"denied": 0, "allowed": 1}


@contextlib.asynccontextmanager
async def controller(
    kube_env: Any, catalog: Catalog, observe: Any
) -> AsyncIterator[Controller]:
    opts = RunOptions(cluster_name=CLUSTER, kubeconfig=str(kube_env.kubeconfig), leader_elect=False)
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        await fleet.discover()
        ctl = build(opts, fleet, catalog, observer=observe)
        async with anyio.create_task_group() as tg:
            await tg.start(ctl.cluster.run)
            yield ctl
            tg.cancel_scope.cancel()


@pytest.mark.kube
@pytest.mark.anyio
async def test_a_denied_group_backs_off_and_its_pod_goes_to_the_next_cheapest_group(
    kube_env, kube_ns, account, proxy, catalog
):
    kube_ns.make_pod("nb", requests={"cpu": "500m", "memory": "2Gi"})
    metrics = Metrics()
    events: list[tuple[str, dict[str, Any]]] = []

    def observe(event: str, fields: dict[str, Any]) -> None:
        events.append((event, fields))
        metrics(event, fields)

    ups: list[ScaleUp] = []
    async with controller(kube_env, catalog, observe) as ctl:
        with anyio.fail_after(20):
            while not (await ctl.cluster.snapshot()).pending:
                await anyio.sleep(0.05)
            # Tick as the loop would until a write succeeds (nothing scales on an empty
            # cluster otherwise).
            while desired(account)["allowed"] == 0:
                decision = await ctl.reconciler.tick()
                ups += [a for a in decision.actions if isinstance(a, ScaleUp)]
                await anyio.sleep(0.3)
        # Ticks after that: the denied group is not asked again while it backs off.
        for _ in range(3):
            await ctl.reconciler.tick()
        memory = ctl.reconciler.memory
        assert memory.backing_off("denied", ctl.reconciler.clock.now())
        assert "AccessDenied" in memory.backoff_reason["denied"]

    assert [u.pool for u in ups] == ["denied", "allowed"]
    assert proxy.denied == 1, "one refusal backs the group off: it is not retried forever"
    assert desired(account) == {"denied": 0, "allowed": 1}
    (backoff,) = [f for e, f in events if e == "pool_backoff"]
    assert backoff["pool"] == "denied" and backoff["cause"] == "write_rejected"
    assert metrics.registry.get_sample_value(
        "scaler_pool_backoffs_total", {"pool": "denied", "cause": "write_rejected"}
    ) == 1.0

    def failed_event() -> Any:
        evs = kube_ns.core.list_namespaced_event(kube_ns.namespace).items
        return [e for e in evs if e.reason == "FailedScaleUp"]

    (ev,) = wait_for(failed_event, what="FailedScaleUp event")
    assert ev.type == "Warning" and ev.involved_object.name == "nb"
    assert "pool denied skipped for 180s" in ev.message and "AccessDenied" in ev.message
    assert isinstance(ev, client.CoreV1Event)
