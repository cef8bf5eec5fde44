"""The few Kubernetes REST calls scaler makes, sent through the official client's transport.

``kubernetes.client.CoreV1Api`` would do the job, but importing it builds pydantic validators
for each of its hundreds of methods: 23 MiB resident for the six scaler calls, an eighth of
the controller's whole budget (benchmarks/controller_memory.py). These classes send the same
requests through the same ``ApiClient``, using its generic ``param_serialize`` and
``call_api``. TLS, authentication with token refresh and exec plugins, and proxies all stay
the library's.

Each method returns the raw urllib3 response, as the generated methods do with
``_preload_content=False``; the caller reads it and releases it. A non-2xx answer raises the
client's own ``ApiException``, body included. Method names and argument order are the
generated client's (``patch_node(name, body)``, ``create_namespaced_event(namespace,
body)``), so call sites read the same, and so does the RBAC check in
tests/deploy/test_permissions_match_code.py, which derives the verbs from these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

MERGE_PATCH: Final = "application/merge-patch+json"

_QUERY: Final = {
    "limit": "limit",
    "_continue": "continue",
    "watch": "watch",
    "resource_version": "resourceVersion",
    "allow_watch_bookmarks": "allowWatchBookmarks",
    "timeout_seconds": "timeoutSeconds",
    "field_selector": "fieldSelector",
    "label_selector": "labelSelector",
}
"""List and watch options: the generated client's argument name -> the query parameter."""

_CORE: Final = "/api/v1"
_COORDINATION: Final = "/apis/coordination.k8s.io/v1"
_STORAGE: Final = "/apis/storage.k8s.io/v1"

Timeout = float | tuple[float, float] | None


class Rest:
    """Requests on one ``ApiClient``: what the generated API classes do, minus their models."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def request(
        self,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: Timeout = None,
    ) -> Any:
        """Send one request and return the unread urllib3 response of a 2xx answer.

        ``path`` may hold ``{name}`` placeholders, filled from ``path_params`` and
        URL-quoted; ``query`` keys are the generated client's argument names
        (``resource_version``), None values left out."""
        params = []
        for key, value in (query or {}).items():
            if key not in _QUERY:
                raise TypeError(f"unknown query option {key!r}")
            if value is not None:
                params.append((_QUERY[key], value))
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        method, url, headers, body, post = self.api.param_serialize(
            method,
            path,
            path_params=dict(path_params or {}),
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, headers, body, post, _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response


class CoreV1(Rest):
    """core/v1: nodes, pods, events, evictions."""

    def list_node(self, *, _request_timeout: Timeout = None, **query: Any) -> Any:
        return self.request("GET", f"{_CORE}/nodes", query=query, timeout=_request_timeout)

    def list_pod_for_all_namespaces(self, *, _request_timeout: Timeout = None, **query: Any) -> Any:
        return self.request("GET", f"{_CORE}/pods", query=query, timeout=_request_timeout)

    def list_persistent_volume_claim_for_all_namespaces(
        self, *, _request_timeout: Timeout = None, **query: Any
    ) -> Any:
        return self.request(
            "GET", f"{_CORE}/persistentvolumeclaims", query=query, timeout=_request_timeout
        )

    def list_persistent_volume(self, *, _request_timeout: Timeout = None, **query: Any) -> Any:
        return self.request(
            "GET", f"{_CORE}/persistentvolumes", query=query, timeout=_request_timeout
        )

    def read_node(self, name: str, *, _request_timeout: Timeout = None) -> Any:
        return self.request(
            "GET", f"{_CORE}/nodes/{{name}}", path_params={"name": name}, timeout=_request_timeout
        )

    def patch_node(
        self,
        name: str,
        body: Any,
        *,
        _content_type: str = MERGE_PATCH,
        _request_timeout: Timeout = None,
    ) -> Any:
        return self.request(
            "PATCH",
            f"{_CORE}/nodes/{{name}}",
            path_params={"name": name},
            body=body,
            content_type=_content_type,
            timeout=_request_timeout,
        )

    def create_namespaced_event(
        self, namespace: str, body: Any, *, _request_timeout: Timeout = None
    ) -> Any:
        return self.request(
            "POST",
            f"{_CORE}/namespaces/{{namespace}}/events",
            path_params={"namespace": namespace},
            body=body,
            timeout=_request_timeout,
        )

    def create_namespaced_pod_eviction(
        self, name: str, namespace: str, body: Any, *, _request_timeout: Timeout = None
    ) -> Any:
        return self.request(
            "POST",
            f"{_CORE}/namespaces/{{namespace}}/pods/{{name}}/eviction",
            path_params={"namespace": namespace, "name": name},
            body=body,
            timeout=_request_timeout,
        )


class StorageV1(Rest):
    """storage.k8s.io/v1: StorageClasses (where an unbound claim may be provisioned)."""

    def list_storage_class(self, *, _request_timeout: Timeout = None, **query: Any) -> Any:
        return self.request(
            "GET", f"{_STORAGE}/storageclasses", query=query, timeout=_request_timeout
        )


class CoordinationV1(Rest):
    """coordination.k8s.io/v1: the leader election's Lease."""

    _ONE: Final = f"{_COORDINATION}/namespaces/{{namespace}}/leases/{{name}}"

    def read_namespaced_lease(
        self, name: str, namespace: str, *, _request_timeout: Timeout = None
    ) -> Any:
        return self.request(
            "GET",
            self._ONE,
            path_params={"namespace": namespace, "name": name},
            timeout=_request_timeout,
        )

    def create_namespaced_lease(
        self, namespace: str, body: Any, *, _request_timeout: Timeout = None
    ) -> Any:
        return self.request(
            "POST",
            f"{_COORDINATION}/namespaces/{{namespace}}/leases",
            path_params={"namespace": namespace},
            body=body,
            timeout=_request_timeout,
        )

    def replace_namespaced_lease(
        self, name: str, namespace: str, body: Any, *, _request_timeout: Timeout = None
    ) -> Any:
        return self.request(
            "PUT",
            self._ONE,
            path_params={"namespace": namespace, "name": name},
            body=body,
            timeout=_request_timeout,
        )


class CoreV1ConfigMaps(CoreV1):
    """core/v1 ConfigMaps: the status ConfigMap (scaler/adapters/kube/status.py)."""

    _ONE: Final = f"{_CORE}/namespaces/{{namespace}}/configmaps/{{name}}"

    def read_namespaced_config_map(
        self, name: str, namespace: str, *, _request_timeout: Timeout = None
    ) -> Any:
        return self.request(
            "GET",
            self._ONE,
            path_params={"namespace": namespace, "name": name},
            timeout=_request_timeout,
        )

    def create_namespaced_config_map(
        self, namespace: str, body: Any, *, _request_timeout: Timeout = None
    ) -> Any:
        return self.request(
            "POST",
            f"{_CORE}/namespaces/{{namespace}}/configmaps",
            path_params={"namespace": namespace},
            body=body,
            timeout=_request_timeout,
        )

    def patch_namespaced_config_map(
        self, name: str, namespace: str, body: Any, *, _request_timeout: Timeout = None
    ) -> Any:
        return self.request(
            "PATCH",
            self._ONE,
            path_params={"namespace": namespace, "name": name},
            body=body,
            content_type=MERGE_PATCH,
            timeout=_request_timeout,
        )
