"""The few Kubernetes API calls the operator makes itself, outside kopf's own patches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import quote

import kubernetes
from kubernetes.watch.watch import iter_resp_lines

from secureml_operator.api.models import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)
# Seconds to connect and to wait for an answer: a call to an API server that went silent fails
# (and is retried by its caller) instead of holding a thread for good.
REQUEST_TIMEOUT_SECONDS = 30.0
_clients: dict[tuple[str, float], kubernetes.client.ApiClient] = {}


def load_config() -> None:
    """In a pod, the ServiceAccount; elsewhere `$KUBECONFIG` (read when called, not at import)."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]


def api_client() -> kubernetes.client.ApiClient:
    """One API client (one connection pool) per kubeconfig: loaded once, not on every call. In a
    pod (no $KUBECONFIG) the ServiceAccount's, whose token the client re-reads as it rotates."""
    path = os.environ.get("KUBECONFIG") or ""
    key = (path, os.stat(path).st_mtime if path and os.path.exists(path) else 0.0)
    client = _clients.get(key)
    if client is None:
        load_config()
        client = _clients[key] = kubernetes.client.ApiClient()
    return client


def request(
    method: str,
    path: str,
    query: Mapping[str, str | int | None] | None = None,
    body: Any = None,
    content_type: str | None = None,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> Any:
    """One call to the API server through the Kubernetes client's ApiClient (its configuration,
    credentials, TLS and connection pool), answered as plain JSON; raises ApiException for an answer
    outside 2xx. Not through the client's generated API classes: CoreV1Api and CustomObjectsApi load
    about 16 MiB of modules and validate every call's arguments with pydantic, for the few paths
    the operator calls. Blocks: call it in a thread."""
    data = _send(method, path, query, body, content_type, timeout).read()  # type: ignore[no-untyped-call]
    return json.loads(data) if data else None


def _send(
    method: str,
    path: str,
    query: Mapping[str, str | int | None] | None,
    body: Any,
    content_type: str | None,
    timeout: float | tuple[float, float],
) -> kubernetes.client.rest.RESTResponse:
    """The response, its body not yet read (a watch streams it); ApiException for an answer outside 2xx."""
    client = api_client()
    headers = {"Accept": "application/json", **({"Content-Type": content_type} if content_type else {})}
    method, url, headers, body, _ = client.param_serialize(
        method,
        path,
        query_params=[(key, value) for key, value in (query or {}).items() if value is not None],
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = client.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
    if not 200 <= response.status <= 299:
        data = response.read()  # type: ignore[no-untyped-call]
        raise kubernetes.client.ApiException.from_response(
            http_resp=response, body=data.decode("utf-8", "replace"), data=None
        )
    return response


def _workspace_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace)}/{PLURAL}/{quote(name)}"


async def served(group: str, version: str, plural: str) -> bool:
    """Whether the API server serves a resource (API discovery: no permission needed beyond login)."""

    def discover() -> bool:
        try:
            found = request("GET", f"/apis/{group}/{version}")
        except kubernetes.client.ApiException as error:
            if error.status == 404:  # the group/version is not served at all
                return False
            raise
        return any(resource.get("name") == plural for resource in found.get("resources") or [])

    return await asyncio.to_thread(discover)


async def patch_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    """A merge patch of a SecureMLWorkspace's status, now rather than when its handler returns."""
    path = f"{_workspace_path(namespace, name)}/status"
    await asyncio.to_thread(
        request, "PATCH", path, body={"status": status}, content_type="application/merge-patch+json"
    )


async def read_workspace(namespace: str, name: str) -> dict[str, Any] | None:
    """A SecureMLWorkspace as the API server has it now; None when it is gone."""

    def read() -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], request("GET", _workspace_path(namespace, name)))
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise

    return await asyncio.to_thread(read)


async def read_status(namespace: str, name: str) -> dict[str, Any]:
    """A SecureMLWorkspace's status as the API server has it now (empty once it is gone)."""
    return dict(((await read_workspace(namespace, name)) or {}).get("status") or {})


async def json_patch_status(namespace: str, name: str, operations: Sequence[Mapping[str, Any]]) -> None:
    """A JSON patch of a SecureMLWorkspace's status (what `reconciler.status_operations` found changed)."""
    path, patch = f"{_workspace_path(namespace, name)}/status", [dict(op) for op in operations]
    await asyncio.to_thread(request, "PATCH", path, body=patch, content_type="application/json-patch+json")


NAMESPACE_LABELS_TTL_SECONDS = 30.0
_namespace_labels: dict[str, tuple[float, dict[str, str]]] = {}


async def namespace_labels(name: str) -> dict[str, str]:
    """A namespace's labels (tenants may select namespaces by them), read again after 30 s.

    Read on demand rather than through a kopf index, which would watch and hold every namespace's
    labels where only those of namespaces with SecureMLWorkspaces are asked for. (Chosen while kopf's
    workers were capped: an index over more namespaces than the cap could never fill.)"""
    cached = _namespace_labels.get(name)
    if cached is not None and time.monotonic() - cached[0] < NAMESPACE_LABELS_TTL_SECONDS:
        return cached[1]

    namespace = await asyncio.to_thread(request, "GET", f"/api/v1/namespaces/{quote(name)}")
    labels = {str(key): str(value) for key, value in ((namespace.get("metadata") or {}).get("labels") or {}).items()}
    _namespace_labels[name] = (time.monotonic(), labels)
    return labels


# SecureMLWorkspaces per page when listing them all: a page is decoded whole (25 Ready bodies, about
# 0.7 MB of JSON), and the heap keeps much of what was decoded at once after it is freed.
LIST_PAGE = 25
Kept = TypeVar("Kept")


async def workspace_statuses(namespace: str, keep: Callable[[dict[str, Any]], Kept]) -> tuple[dict[str, Kept], bool]:
    """What `keep` makes of the status of every live SecureMLWorkspace the operator may read
    (cluster-wide, or only the given namespace where it may not list across namespaces), by uid, and
    whether the list was cluster-wide. `keep` runs on each page as it arrives, so a listing holds one
    page of bodies at a time: a thousand ledgers kept whole until the end were a step of 116 MiB in
    the RSS. One being deleted is not live: what it holds is about to go."""

    def page(cluster_wide: bool, token: str | None) -> dict[str, Any]:
        scope = "" if cluster_wide else f"/namespaces/{quote(namespace)}"
        paging = {"limit": LIST_PAGE, "continue": token}
        return cast(dict[str, Any], request("GET", f"/apis/{GROUP}/{VERSION}{scope}/{PLURAL}", paging))

    def read() -> tuple[dict[str, Kept], bool]:
        try:
            found, cluster_wide = page(True, None), True
        except kubernetes.client.ApiException as error:
            if error.status != 403:
                raise
            found, cluster_wide = page(False, None), False
        kept: dict[str, Kept] = {}
        while True:
            for item in found.get("items") or []:
                if not item["metadata"].get("deletionTimestamp"):
                    kept[item["metadata"]["uid"]] = keep(item.get("status") or {})
            token = (found.get("metadata") or {}).get("continue")
            if not token:
                return kept, cluster_wide
            found = page(cluster_wide, token)

    return await asyncio.to_thread(read)


@dataclass
class SecretVersion:
    data: dict[str, str] | None  # base64 values as the API holds them; None: the Secret does not exist
    version: str  # its resourceVersion: a new one means new credentials
    current: bool = True  # its watch is running, so this is what the API server holds now
    used: float = 0.0  # time.monotonic() of the last read from the cache


class SecretCache:
    """The Secrets custom resources name, read once and kept current by a watch of each one.

    A watch per Secret, by name (RBAC verbs get and watch, never list: the operator sees no other
    Secret), in a thread of its own because the Kubernetes client blocks. While a watch is down the
    Secret is read again on its next use; a Secret nobody asked for in IDLE_SECONDS is dropped."""

    IDLE_SECONDS = 600.0
    WATCH_SECONDS = 30  # a watch is renewed this often: how soon close() and idleness take effect

    def __init__(self) -> None:
        self._secrets: dict[tuple[str, str], SecretVersion] = {}
        self._watching: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    async def get(self, namespace: str, name: str) -> SecretVersion:
        key = (namespace, name)
        with self._lock:
            cached = self._secrets.get(key)
            if cached is not None and cached.current:
                cached.used = time.monotonic()
                return cached
        fresh = await asyncio.to_thread(self._read, namespace, name)
        with self._lock:
            self._secrets[key] = fresh
            if key not in self._watching and not self._closed.is_set():
                self._watching.add(key)
                threading.Thread(
                    target=self._watch, args=key, name=f"secret-watch-{namespace}/{name}", daemon=True
                ).start()
        return fresh

    def close(self) -> None:
        self._closed.set()

    @staticmethod
    def _read(namespace: str, name: str) -> SecretVersion:
        try:
            secret = request("GET", f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}")
        except kubernetes.client.ApiException as error:
            if error.status != 404:
                raise
            return SecretVersion(None, "", used=time.monotonic())
        return _secret_version(secret, used=time.monotonic())

    def _watch(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        while not self._closed.is_set():
            with self._lock:
                known = self._secrets.get(key)
                if known is None or time.monotonic() - known.used > self.IDLE_SECONDS:
                    self._secrets.pop(key, None)
                    self._watching.discard(key)
                    return
            try:
                self._follow(namespace, name, known.version)
            except Exception as error:  # the watch is down: the next use reads the Secret again
                with self._lock:
                    if key in self._secrets:
                        self._secrets[key].current = False
                log.info("secret watch interrupted", extra={"secret": f"{namespace}/{name}", "error": str(error)})
                self._closed.wait(1.0)
                with contextlib.suppress(Exception):
                    fresh = self._read(namespace, name)
                    with self._lock:
                        fresh.used = self._secrets[key].used if key in self._secrets else fresh.used
                        self._secrets[key] = fresh

    def _follow(self, namespace: str, name: str, version: str) -> None:
        """One watch of the Secret, until the API server ends it (WATCH_SECONDS) or it fails."""
        query = {
            "watch": "true",
            "fieldSelector": f"metadata.name={name}",
            "resourceVersion": version or None,
            "timeoutSeconds": self.WATCH_SECONDS,
        }
        # Read timeout: the server's end of the watch and then some, so a connection gone silent ends too.
        timeout = (REQUEST_TIMEOUT_SECONDS, self.WATCH_SECONDS + REQUEST_TIMEOUT_SECONDS)
        response = _send("GET", f"/api/v1/namespaces/{quote(namespace)}/secrets", query, None, None, timeout)
        try:
            for line in iter_resp_lines(response.response):  # type: ignore[no-untyped-call]
                event = json.loads(line)
                if event.get("type") == "ERROR":  # 410 Gone and the like: read the Secret again
                    raise WatchEnded(str((event.get("object") or {}).get("message") or event))
                gone = event["type"] == "DELETED"
                with self._lock:
                    used = self._secrets[(namespace, name)].used if (namespace, name) in self._secrets else 0.0
                    self._secrets[(namespace, name)] = _secret_version(event["object"], used=used, gone=gone)
                if self._closed.is_set():
                    return
        finally:  # a watch cut short leaves its body unread: its connection is closed, not reused
            response.response.close()
            response.response.release_conn()


class WatchEnded(Exception):
    """The API server ended a watch with an error event."""


def _secret_version(secret: dict[str, Any], used: float, gone: bool = False) -> SecretVersion:
    data = None if gone else {str(key): str(value) for key, value in (secret.get("data") or {}).items()}
    return SecretVersion(data, str((secret.get("metadata") or {}).get("resourceVersion") or ""), True, used)
