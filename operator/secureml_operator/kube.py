"""The few Kubernetes API calls the operator makes itself, outside kopf's own patches."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, cast

import kubernetes

from secureml_operator.api.models import GROUP, PLURAL, VERSION


def load_config() -> None:
    """In a pod, the ServiceAccount; elsewhere `$KUBECONFIG` (read when called, not at import)."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]


async def served(group: str, version: str, plural: str) -> bool:
    """Whether the API server serves a resource (API discovery: no permission needed beyond login)."""

    def discover() -> bool:
        load_config()
        try:
            found = kubernetes.client.CustomObjectsApi().get_api_resources(group, version)
        except kubernetes.client.ApiException as error:
            if error.status == 404:  # the group/version is not served at all
                return False
            raise
        return any(resource.name == plural for resource in found.resources or [])

    return await asyncio.to_thread(discover)


async def patch_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    """A merge patch of a SecureMLWorkspace's status, now rather than when its handler returns."""

    def patch() -> None:
        load_config()
        kubernetes.client.CustomObjectsApi().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type="application/merge-patch+json"
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
        load_config()
        namespace = kubernetes.client.CoreV1Api().read_namespace(name)
        return dict((namespace.metadata.labels if namespace.metadata else None) or {})

    labels = await asyncio.to_thread(read)
    _namespace_labels[name] = (time.monotonic(), labels)
    return labels


async def workspace_statuses(namespace: str) -> list[dict[str, Any]]:
    """The uid and status of every live SecureMLWorkspace the operator may read (cluster-wide, or
    only the given namespace where it may not list across namespaces). One being deleted is not live:
    what it holds is about to go."""

    def read() -> list[dict[str, Any]]:
        load_config()
        api = kubernetes.client.CustomObjectsApi()
        try:
            found = cast(dict[str, Any], api.list_cluster_custom_object(GROUP, VERSION, PLURAL))
        except kubernetes.client.ApiException as error:
            if error.status != 403:
                raise
            found = cast(dict[str, Any], api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL))
        return [
            {"uid": item["metadata"]["uid"], "status": item.get("status") or {}}
            for item in found.get("items") or []
            if not item["metadata"].get("deletionTimestamp")
        ]

    return await asyncio.to_thread(read)
