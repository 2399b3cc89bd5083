"""ARM clients per credential, built once and shared by every custom resource.

One `ArmClient` serves every subscription a credential reaches: it routes each call by the
subscription in the resource's id and draws on that subscription's budget (one `BudgetRegistry`
for the operator, so two credentials in one subscription share its budget too).

The credential is the operator's own identity unless the spec names a Secret; reading that Secret is
with the ledger's status patch (kube.py), the only Kubernetes API calls the operator makes itself.
"""

from __future__ import annotations

import asyncio

import kubernetes
from azure.core.credentials_async import AsyncTokenCredential

from secureml_operator import kube
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.budget import BudgetRegistry
from secureml_operator.azure.credentials import ServicePrincipal, build_credential
from secureml_operator.engine.errors import PermanentFailure
from secureml_operator.settings import OperatorSettings


async def read_service_principal(namespace: str, secret_name: str) -> tuple[ServicePrincipal, str]:
    """The Secret's service principal and its resourceVersion (a new version means a new credential)."""

    def read() -> tuple[dict[str, str] | None, str]:
        kube.load_config()
        api = kubernetes.client.CoreV1Api()
        try:
            secret = api.read_namespaced_secret(secret_name, namespace)
        except kubernetes.client.ApiException as error:
            if error.status in (403, 404):
                raise PermanentFailure(
                    "CredentialSecretNotFound",
                    f"Secret {namespace}/{secret_name} named by spec.azure.credentialRef "
                    f"cannot be read ({error.status} {error.reason})",
                ) from error
            raise
        data = {key: str(value) for key, value in (secret.data or {}).items()}
        return data, str(secret.metadata.resource_version if secret.metadata else "")

    data, version = await asyncio.to_thread(read)
    return ServicePrincipal.from_secret_data(f"{namespace}/{secret_name}", data), version


class AzureAccess:
    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.budgets = BudgetRegistry(settings.budget)
        self._credentials: dict[str, AsyncTokenCredential] = {}
        self._clients: dict[str, ArmClient] = {}

    async def client(self, namespace: str, secret_name: str | None) -> ArmClient:
        """The client of the credential the spec names (None: the operator's own identity); it
        routes every call by the subscription in the resource's id."""
        if secret_name is None:
            credential_key, principal = "operator-identity", None
        else:
            principal, version = await read_service_principal(namespace, secret_name)
            credential_key = f"{namespace}/{secret_name}@{version}"
        if credential_key not in self._credentials:
            self._credentials[credential_key] = build_credential(self.settings.cloud, principal)
        if credential_key not in self._clients:
            self._clients[credential_key] = ArmClient(
                self._credentials[credential_key],
                self.settings.cloud,
                self.budgets,
                polling_interval=self.settings.polling_interval_seconds,
            )
        return self._clients[credential_key]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        for credential in self._credentials.values():
            await credential.close()
        self._clients.clear()
        self._credentials.clear()
