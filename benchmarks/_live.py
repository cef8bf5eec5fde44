"""Real parts for the live benchmarks, started and stopped by each benchmark on 127.0.0.1.

- :func:`kube`: etcd + kube-apiserver + kube-scheduler v1.20.2 (``tools/kube/start-kube.sh``,
  free ports, stopped by PID with ``stop-kube.sh``).
- :func:`moto`: ``moto.server.ThreadedMotoServer`` in a process of its own (AWS is another
  machine in production: it must not share the controller's GIL), ended with the benchmark.
- :func:`make_account`: one VPC, two zones, launch templates and ASGs tagged for
  cluster-autoscaler discovery, made with boto3 as a user would.
- :class:`Kubelet`: the kubelet and the controllers the test control plane lacks (Nodes and
  their status, pods bound to nodes and Running, PodDisruptionBudget status).
- :class:`Watch`: a watch of the benchmark's own, stamping each event with the wall clock
  when it arrived.
- :func:`running_controller`: ``scaler.app.run`` as production runs it (leader election,
  HTTP server, price refresh, review, notices when a queue is given), with the wired parts
  handed back so a benchmark can time calls.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fixtures.aws import Group, tagged_groups  # noqa: E402
from tests.fixtures.kube import KubeEnv, control_plane, kube_request  # noqa: E402

KUBE_TOOLS = REPO / "tools" / "kube"
CA = "k8s.io/cluster-autoscaler/"
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_ZONE = "topology.kubernetes.io/zone"
LABEL_CAPACITY = "eks.amazonaws.com/capacityType"


# ------------------------------------------------------------------------------ machine


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def stats(values: list[float]) -> dict[str, float | int]:
    """n, median, p90 (nearest rank), max, min, mean; seconds rounded to ms."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p90 = ordered[max(0, -(-len(ordered) * 9 // 10) - 1)]
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 3),
        "p90": round(p90, 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
        "mean": round(statistics.fmean(ordered), 3),
    }


def finish(result: dict[str, Any], *, as_json: bool, table: Callable[[dict[str, Any]], None]) -> int:
    """Print the result (JSON, or ``table``'s rendering) and give the exit status: 0 when
    every target was met, 1 otherwise."""
    if as_json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        table(result)
    return 0 if result["met"] else 1


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------- kube


Kube = KubeEnv  # the control plane the tests use, started by the same scripts


@contextlib.contextmanager
def kube(*, scheduler: bool = True, workdir: Path | None = None) -> Iterator[Kube]:
    """Start the control plane in a fresh directory; stop it on exit (also on error)."""
    directory = Path(tempfile.mkdtemp(prefix="scaler-bench-kube-", dir=workdir))
    started = time.monotonic()
    with control_plane(directory, scheduler=scheduler) as env:
        log(f"kube control plane up in {time.monotonic() - started:.1f}s ({directory})")
        yield env


def _stamp(t: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if t is None else t, dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


@dataclass
class Kubelet:
    """What the kubelet and the controller-manager would do, done by hand."""

    api: Any
    core: Any = field(init=False)

    def __post_init__(self) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(self.api)

    def namespace(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.create_namespace({"metadata": {"name": name}})
        except ApiException as e:
            if e.status != 409:
                raise

    def node(
        self,
        name: str,
        *,
        instance_id: str,
        zone: str,
        instance_type: str,
        spot: bool = False,
        cpu: str = "2",
        memory: str = "7Gi",
        pods: int = 29,
    ) -> None:
        """A Ready node for the moto instance ``instance_id``, with EKS's labels."""
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            LABEL_INSTANCE_TYPE: instance_type,
            LABEL_ZONE: zone,
            LABEL_CAPACITY: "SPOT" if spot else "ON_DEMAND",
        }
        self.core.create_node(
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {"providerID": f"aws:///{zone}/{instance_id}"},
            },
            _preload_content=False,
        )
        now = _stamp()
        amounts = {"cpu": cpu, "memory": memory, "pods": str(pods)}
        status = {
            "capacity": amounts,
            "allocatable": amounts,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "the benchmark plays the kubelet",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
        }
        self.core.patch_node_status(name, {"status": status}, _preload_content=False)

    def running_pod(
        self,
        namespace: str,
        name: str,
        node: str,
        *,
        labels: dict[str, str] | None = None,
        cpu: str = "500m",
        memory: str = "1Gi",
    ) -> None:
        """A pod bound to ``node`` (spec.nodeName, as after binding) reported Running."""
        body = {
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {
                "nodeName": node,
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {
                        "name": "main",
                        "image": "registry.k8s.io/pause:3.2",
                        "resources": {"requests": {"cpu": cpu, "memory": memory}},
                    }
                ],
            },
        }
        self.core.create_namespaced_pod(namespace, body, _preload_content=False)
        now = _stamp()
        status = {
            "phase": "Running",
            "startTime": now,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
        }
        self.core.patch_namespaced_pod_status(
            name, namespace, {"status": status}, _preload_content=False
        )

    def pdb(
        self,
        namespace: str,
        name: str,
        selector: dict[str, str],
        *,
        max_unavailable: int,
        expected: int,
    ) -> None:
        """A policy/v1beta1 PodDisruptionBudget, with the status the disruption controller
        would give it (there is none here): ``max_unavailable`` disruptions allowed."""
        base = f"/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets"
        made = kube_request(
            self.api,
            "POST",
            base,
            {
                "apiVersion": "policy/v1beta1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": name},
                "spec": {"maxUnavailable": max_unavailable, "selector": {"matchLabels": selector}},
            },
        )
        self.pdb_status(
            namespace,
            name,
            generation=made["metadata"]["generation"],
            healthy=expected,
            expected=expected,
            allowed=max_unavailable,
        )

    def pdb_status(
        self,
        namespace: str,
        name: str,
        *,
        generation: int,
        healthy: int,
        expected: int,
        allowed: int,
    ) -> None:
        path = f"/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets/{name}/status"
        kube_request(
            self.api,
            "PATCH",
            path,
            {
                "status": {
                    "observedGeneration": generation,
                    "currentHealthy": healthy,
                    "desiredHealthy": max(expected - allowed, 0),
                    "expectedPods": expected,
                    "disruptionsAllowed": allowed,
                    "disruptedPods": None,
                }
            },
        )


class Watch:
    """One watch of the benchmark's own (a thread), each event stamped with ``time.time()``
    the moment its line arrived. ``on_event(t, type, object)`` runs in the watch thread."""

    def __init__(
        self,
        list_fn: Callable[..., Any],
        on_event: Callable[[float, str, dict], None],
        **list_kwargs: Any,
    ) -> None:
        self._list_fn = list_fn
        self._on_event = on_event
        self._kwargs = list_kwargs
        self._response: Any = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-watch", daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the benchmark's watch did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()
                response.close()
        self._thread.join(10)

    def _run(self) -> None:
        from kubernetes.watch.watch import iter_resp_lines

        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listed = json.loads(self._list_fn(**self._kwargs, _preload_content=False).data)
                    now = time.time()
                    for obj in listed.get("items") or ():
                        self._on_event(now, "LISTED", obj)
                    version = listed["metadata"]["resourceVersion"]
                    self._ready.set()
                self._response = self._list_fn(
                    **self._kwargs,
                    watch=True,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=600,
                    _preload_content=False,
                )
                for line in iter_resp_lines(self._response):
                    if not line:
                        continue
                    arrived = time.time()
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        version = ""
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event.get("type") != "BOOKMARK":
                        self._on_event(arrived, event["type"], obj)
            except Exception:
                if self._stop.is_set():
                    return
                time.sleep(0.2)


# --------------------------------------------------------------------------------- moto

_MOTO_MAIN = """
import logging, socket, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.WARNING)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print(port, flush=True)
sys.stdin.read()  # until the benchmark closes the pipe, or dies
server.stop()
"""


@contextlib.contextmanager
def moto() -> Iterator[str]:
    """moto's ThreadedMotoServer in a child process on 127.0.0.1; the AWS SDKs in this process
    pointed at it through the environment (as the ``aws`` test fixture does). Yields the URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _MOTO_MAIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN"):
            os.environ.pop(name, None)
        os.environ.update(
            {
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_ENDPOINT_URL": url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        for name in ("NO_PROXY", "no_proxy"):
            os.environ[name] = ",".join(filter(None, [os.environ.get(name), "127.0.0.1"]))
        log(f"moto server up at {url} (pid {proc.pid})")
        yield url
    finally:
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(10)


def make_account(cluster: str, groups: list[Group]) -> Any:
    """VPC, two zones, the ASGs tagged for discovery (the tests' fixture, against the moto
    server AWS_ENDPOINT_URL points at). Returns the boto3 autoscaling client."""
    return tagged_groups(None, cluster, groups)


def instances(asg: Any, group: str) -> list[tuple[str, str]]:
    """(instance id, zone) of the group's instances, in a stable order."""
    (g,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return sorted((i["InstanceId"], i["AvailabilityZone"]) for i in g["Instances"])


def desired(asg: Any) -> dict[str, int]:
    groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["AutoScalingGroupName"]: g["DesiredCapacity"] for g in groups}


# --------------------------------------------------------------------------- controller


def configure_controller_logs(path: Path) -> Any:
    """The controller's structlog lines, as ``scaler run --log-format json`` writes them, go
    to ``path`` instead of stderr (so the benchmark's own output stays readable)."""
    import structlog

    from scaler.adapters.observe import configure_logging

    configure_logging(json=True)
    handle = path.open("a", buffering=1)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=handle))
    return handle


@contextlib.asynccontextmanager
async def running_controller(opts: Any, observer: Any) -> AsyncIterator[Any]:
    """``scaler.app.run(opts, observer=observer)`` in a task; yields the wired
    :class:`~scaler.app.Controller` once its caches are listed and it has ticked as leader.
    ``app.build`` is wrapped only to hand the parts back; nothing else is changed."""
    import anyio

    from scaler import app

    built: list[Any] = []
    original = app.build

    def build(*args: Any, **kwargs: Any) -> Any:
        ctl = original(*args, **kwargs)
        built.append(ctl)
        return ctl

    app.build = build
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(app.run, opts, observer=observer), name="scaler-run")
            with anyio.fail_after(120):
                while not (
                    built
                    and built[0].cluster.ready
                    and built[0].reconciler.last_decision is not None
                ):
                    await anyio.sleep(0.05)
            yield built[0]
            tg.cancel_scope.cancel()
    finally:
        app.build = original
