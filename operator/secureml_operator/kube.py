"""The few Kubernetes API calls the operator makes itself, outside kopf's own patches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import kubernetes

from secureml_operator.api.models import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)
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


async def served(group: str, version: str, plural: str) -> bool:
    """Whether the API server serves a resource (API discovery: no permission needed beyond login)."""

    def discover() -> bool:
        try:
            found = kubernetes.client.CustomObjectsApi(api_client()).get_api_resources(group, version)
        except kubernetes.client.ApiException as error:
            if error.status == 404:  # the group/version is not served at all
                return False
            raise
        return any(resource.name == plural for resource in found.resources or [])

    return await asyncio.to_thread(discover)


async def patch_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    """A merge patch of a SecureMLWorkspace's status, now rather than when its handler returns."""

    def patch() -> None:
        kubernetes.client.CustomObjectsApi(api_client()).patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type="application/merge-patch+json"
        )

    await asyncio.to_thread(patch)


async def read_workspace(namespace: str, name: str) -> dict[str, Any] | None:
    """A SecureMLWorkspace as the API server has it now; None when it is gone."""

    def read() -> dict[str, Any] | None:
        api = kubernetes.client.CustomObjectsApi(api_client())
        try:
            return cast(dict[str, Any], api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise

    return await asyncio.to_thread(read)


async def read_status(namespace: str, name: str) -> dict[str, Any]:
    """A SecureMLWorkspace's status as the API server has it now (empty once it is gone)."""
    return dict(((await read_workspace(namespace, name)) or {}).get("status") or {})


async def json_patch_status(namespace: str, name: str, operations: Sequence[Mapping[str, Any]]) -> None:
    """A JSON patch of a SecureMLWorkspace's status: only the leaves that changed."""

    def patch() -> None:
        kubernetes.client.CustomObjectsApi(api_client()).patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            [dict(op) for op in operations],
            _content_type="application/json-patch+json",
        )

    await asyncio.to_thread(patch)


NAMESPACE_LABELS_TTL_SECONDS = 30.0
_namespace_labels: dict[str, tuple[float, dict[str, str]]] = {}


async def namespace_labels(name: str) -> dict[str, str]:
    """A namespace's labels (tenants may select namespaces by them), read again after 30 s.

    Read on demand rather than through a kopf index: kopf holds a worker per object while an index
    fills, so an index over more namespaces than the worker limit would never finish."""
    cached = _namespace_labels.get(name)
    if cached is not None and time.monotonic() - cached[0] < NAMESPACE_LABELS_TTL_SECONDS:
        return cached[1]

    def read() -> dict[str, str]:
        namespace = kubernetes.client.CoreV1Api(api_client()).read_namespace(name)
        return dict((namespace.metadata.labels if namespace.metadata else None) or {})

    labels = await asyncio.to_thread(read)
    _namespace_labels[name] = (time.monotonic(), labels)
    return labels


# SecureMLWorkspaces per page when listing them all: a thousand whole bodies in one answer are tens
# of MiB decoded at once, and the heap keeps much of that after it is freed.
LIST_PAGE = 100
# What a listing keeps of each status: the ledger (and the resources it was made from before it existed).
CLAIM_FIELDS = ("ledger", "resources")


async def workspace_statuses(namespace: str) -> tuple[list[dict[str, Any]], bool]:
    """The uid and status ledger of every live SecureMLWorkspace the operator may read
    (cluster-wide, or only the given namespace where it may not list across namespaces), and
    whether the list was cluster-wide. One being deleted is not live: what it holds is about to go."""

    def page(api: kubernetes.client.CustomObjectsApi, cluster_wide: bool, token: str | None) -> dict[str, Any]:
        paging: dict[str, Any] = {"limit": LIST_PAGE, "_continue": token}
        if cluster_wide:
            return cast(dict[str, Any], api.list_cluster_custom_object(GROUP, VERSION, PLURAL, **paging))
        return cast(dict[str, Any], api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, **paging))

    def read() -> tuple[list[dict[str, Any]], bool]:
        api = kubernetes.client.CustomObjectsApi(api_client())
        try:
            found, cluster_wide = page(api, True, None), True
        except kubernetes.client.ApiException as error:
            if error.status != 403:
                raise
            found, cluster_wide = page(api, False, None), False
        items: list[dict[str, Any]] = []
        while True:
            for item in found.get("items") or []:
                if not item["metadata"].get("deletionTimestamp"):
                    status = item.get("status") or {}
                    kept = {key: status[key] for key in CLAIM_FIELDS if key in status}
                    items.append({"uid": item["metadata"]["uid"], "status": kept})
            token = (found.get("metadata") or {}).get("continue")
            if not token:
                return items, cluster_wide
            found = page(api, cluster_wide, token)

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
            secret = kubernetes.client.CoreV1Api(api_client()).read_namespaced_secret(name, namespace)
        except kubernetes.client.ApiException as error:
            if error.status != 404:
                raise
            return SecretVersion(None, "", used=time.monotonic())
        version = str(secret.metadata.resource_version if secret.metadata else "")
        return SecretVersion(
            {key: str(value) for key, value in (secret.data or {}).items()}, version, used=time.monotonic()
        )

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
        api = kubernetes.client.CoreV1Api(api_client())
        stream = kubernetes.watch.Watch().stream(  # type: ignore[no-untyped-call]
            api.list_namespaced_secret,
            namespace,
            field_selector=f"metadata.name={name}",
            resource_version=version or None,
            timeout_seconds=self.WATCH_SECONDS,
        )
        for event in stream:
            secret = event["object"]
            meta = secret.metadata
            gone = event["type"] == "DELETED"
            with self._lock:
                used = self._secrets[(namespace, name)].used if (namespace, name) in self._secrets else 0.0
                data = None if gone else {key: str(value) for key, value in (secret.data or {}).items()}
                self._secrets[(namespace, name)] = SecretVersion(data, str(meta.resource_version), True, used)
            if self._closed.is_set():
                return
