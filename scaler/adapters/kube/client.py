"""The edge to the official ``kubernetes`` client: loading it, calling it, translating errors.

The client is blocking. Every call runs in a worker thread (``anyio.to_thread``) under a
:class:`anyio.CapacityLimiter`, so a slow API server cannot take more threads than that.
Requests go through :mod:`scaler.adapters.kube.rest` and come back raw; :func:`call` decodes
them as JSON and the reflectors with :mod:`scaler.adapters.kube.wire`: the converters take
the API's own camelCase dicts, and the client's model objects would cost ten times the
memory for nothing.

Errors are translated here, once, into the port's domain errors: 404 -> ``NotFound``,
429 -> ``Throttled``, anything else (including transport errors) -> ``PortError``. 409
conflicts become :class:`Conflict`, which writers retry a bounded number of times.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
from collections.abc import Callable
from typing import Any, Final

import anyio
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from scaler.ports import NotFound, PortError, Throttled

REQUEST_TIMEOUT_S: Final = 30.0
"""Per request (connect, read): a hung API server costs a worker thread this long at most."""
KEEPALIVE_IDLE_S: Final = 30
"""TCP keep-alive probes start after this long idle (client-go dials with a 30 s keep-alive)."""
KEEPALIVE_INTERVAL_S: Final = 10
KEEPALIVE_PROBES: Final = 3
"""Unanswered probes, ``KEEPALIVE_INTERVAL_S`` apart, before the kernel drops the connection:
a peer gone without a FIN (a node rebooted, a NAT entry expired) is noticed within a minute,
not at the kernel's default of two hours."""
CONFLICT_RETRIES: Final = 5
"""409 retries of a read-modify-write before giving up; client-go's RetryOnConflict uses 5."""


class Conflict(PortError):
    """409: the object changed since it was read (optimistic concurrency lost)."""


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An ``ApiClient`` from ``kubeconfig``; with None, the pod's service account when running
    in a pod (``KUBERNETES_SERVICE_HOST`` is set), else ``$KUBECONFIG`` / ``~/.kube/config``.
    A configuration that cannot be loaded raises ``PortError`` naming where it was read."""
    from_file: Callable[..., client.ApiClient] = config.new_client_from_config
    in_pod = not kubeconfig and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    where = (
        f"kubeconfig {kubeconfig}"
        if kubeconfig
        else "in-cluster service account"
        if in_pod
        else f"kubeconfig {os.environ.get('KUBECONFIG') or '~/.kube/config'}"
    )
    try:
        if kubeconfig:
            return keep_alive(from_file(config_file=kubeconfig, persist_config=False))
        if in_pod:
            configuration = client.Configuration()
            in_cluster: Callable[..., None] = config.load_incluster_config
            in_cluster(client_configuration=configuration)
            return keep_alive(client.ApiClient(configuration))
        return keep_alive(from_file(persist_config=False))
    except (ConfigException, OSError) as e:
        raise PortError(f"Kubernetes configuration ({where}): {e}") from e


def keepalive_socket_options() -> list[tuple[int, int, int]]:
    """urllib3 socket options: its defaults (no Nagle) plus TCP keep-alive, where the
    platform names the options."""
    options = list(urllib3.connection.HTTPConnection.default_socket_options)
    options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
    ):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return options


def keep_alive(api: client.ApiClient) -> client.ApiClient:
    """``api`` with TCP keep-alive on every connection it opens from now on (the client's
    own default is off). Idempotent; open idle connections are dropped so none lacks it."""
    options = keepalive_socket_options()
    api.configuration.socket_options = options
    manager = api.rest_client.pool_manager
    if manager.connection_pool_kw.get("socket_options") != options:
        manager.connection_pool_kw["socket_options"] = options
        manager.clear()
    return api


def status_of(e: ApiException) -> dict[str, Any]:
    """The ``Status`` object an error response carries, or {} if the body is not one."""
    try:
        body = json.loads(e.body) if e.body else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def translate(e: BaseException, what: str) -> PortError:
    """One domain error for a failed call; ``what`` says which call (``patch node n-1``)."""
    if isinstance(e, PortError):
        return e
    if isinstance(e, ApiException):
        message = status_of(e).get("message") or e.reason or ""
        text = f"{what}: {e.status} {message}".rstrip()
        if e.status == 404:
            return NotFound(text)
        if e.status == 429:
            return Throttled(text)
        if e.status == 409:
            return Conflict(text)
        return PortError(text)
    return PortError(f"{what}: {type(e).__name__}: {e}")


TRANSPORT_ERRORS: Final = (
    ApiException,
    urllib3.exceptions.HTTPError,
    OSError,
    json.JSONDecodeError,
)
"""What a call may raise that is the server's or the network's fault, not a bug here."""


async def call(
    limiter: anyio.CapacityLimiter, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """``fn(*args, **kwargs)`` in a worker thread, raw, decoded as JSON (None if empty).

    Not abandoned on cancellation: the request timeout bounds how long that can take, and
    no thread outlives the task that started it.
    """
    kwargs.setdefault("_request_timeout", (REQUEST_TIMEOUT_S, REQUEST_TIMEOUT_S))

    def blocking() -> Any:
        response = fn(*args, **kwargs)
        data = response.data
        response.release_conn()
        return json.loads(data) if data else None

    try:
        return await anyio.to_thread.run_sync(blocking, limiter=limiter)
    except TRANSPORT_ERRORS as e:
        raise translate(e, what) from e


async def retry_conflicts(what: str, attempt: Callable[[], Any]) -> Any:
    """Run ``attempt`` (an async read-modify-write) until it does not raise Conflict, at most
    :data:`CONFLICT_RETRIES` times, with a short jittered pause between tries."""
    for i in range(CONFLICT_RETRIES):
        try:
            return await attempt()
        except Conflict:
            if i == CONFLICT_RETRIES - 1:
                raise
            await anyio.sleep(random.uniform(0.0, 0.05 * (i + 1)))
    raise AssertionError("unreachable")  # pragma: no cover


class Backoff:
    """Exponential backoff with jitter and a cap (STYLE: no backoff without a cap)."""

    def __init__(self, *, base_s: float = 0.5, cap_s: float = 30.0) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0

    def next_delay(self) -> float:
        """Delay before the next try: base x 2^failures, capped, times a jitter in [0.5, 1]."""
        delay = min(self.cap_s, self.base_s * 2.0**self.failures)
        self.failures = min(self.failures + 1, 32)
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0


class Interruptible:
    """A long blocking request (a watch, a big list) that the event loop can stop.

    The worker thread registers each response it opens with :meth:`hold`; :meth:`interrupt`
    (from the loop, on cancellation) shuts the socket down, so the thread's blocked read
    returns at once and the thread ends instead of outliving its task.
    """

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.done = threading.Event()
        self._response: Any = None
        self._lock = threading.Lock()

    def hold(self, response: Any) -> None:
        """Called by the worker thread; raises if an interrupt already came."""
        with self._lock:
            self._response = response
            stopped = self.stopped.is_set()
        if stopped:
            _shutdown(response)
            raise _Interrupted

    def interrupt(self) -> None:
        with self._lock:
            self.stopped.set()
            response = self._response
        if response is not None:
            _shutdown(response)

    async def run(self, limiter: anyio.CapacityLimiter, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(self, *args)`` in a worker thread; on cancellation, interrupt it and wait (at
        most a few seconds, shielded) for the thread to end."""

        def work() -> Any:
            try:
                return fn(self, *args)
            finally:
                self.done.set()

        try:
            return await anyio.to_thread.run_sync(work, limiter=limiter, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            self.interrupt()
            with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
                while not self.done.is_set():
                    await anyio.sleep(0.01)
            raise


class _Interrupted(Exception):
    """The loop asked the worker thread to stop."""


def _shutdown(response: Any) -> None:
    # urllib3 >= 2.3 can interrupt a read blocked in another thread; older ones can only close,
    # which leaves the thread until its read timeout.
    shutdown = getattr(response, "shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
        else:
            sock = getattr(getattr(getattr(response, "_fp", None), "fp", None), "raw", None)
            sock = getattr(sock, "_sock", None)
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)
        response.close()
    except Exception:  # the thread may be closing it at the same moment
        pass
