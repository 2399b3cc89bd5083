"""The few Kubernetes API calls the operator makes itself, outside kopf's own patches."""

from __future__ import annotations

import asyncio
import os
from typing import Any

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
