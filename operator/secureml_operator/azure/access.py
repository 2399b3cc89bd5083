"""ARM clients per credential, built once and shared by every custom resource.

One `ArmClient` serves every subscription a credential reaches: it routes each call by the
subscription in the resource's id and draws on that subscription's budget (one `BudgetRegistry`
for the operator, so two credentials in one subscription share its budget too).

The credential is the operator's own identity unless the spec names a Secret; Secrets come from a
cache kept current by a watch of each one (kube.SecretCache), not from a read per sweep.
"""

from __future__ import annotations

import kubernetes
from azure.core.credentials_async import AsyncTokenCredential

from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.budget import BudgetRegistry
from secureml_operator.azure.credentials import ServicePrincipal, build_credential
from secureml_operator.failures import PermanentFailure
from secureml_operator.kube import SecretCache
from secureml_operator.settings import OperatorSettings


class AzureAccess:
    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.budgets = BudgetRegistry(settings.budget)
        self._credentials: dict[str, AsyncTokenCredential] = {}
        self._clients: dict[str, ArmClient] = {}
        self.secrets = SecretCache()

    async def service_principal(self, namespace: str, secret_name: str) -> tuple[ServicePrincipal, str]:
        """The Secret's service principal and its resourceVersion (a new version means a new credential)."""
        where = f"Secret {namespace}/{secret_name} named by spec.azure.credentialRef"
        try:
            secret = await self.secrets.get(namespace, secret_name)
        except kubernetes.client.ApiException as error:
            if error.status != 403:
                raise
            raise PermanentFailure("CredentialSecretNotFound", f"{where} cannot be read (403 Forbidden)") from error
        if secret.data is None:
            raise PermanentFailure("CredentialSecretNotFound", f"{where} does not exist")
        return ServicePrincipal.from_secret_data(f"{namespace}/{secret_name}", secret.data), secret.version

    async def client(self, namespace: str, secret_name: str | None) -> ArmClient:
        """The client of the credential the spec names (None: the operator's own identity); it
        routes every call by the subscription in the resource's id."""
        if secret_name is None:
            credential_key, principal = "operator-identity", None
        else:
            principal, version = await self.service_principal(namespace, secret_name)
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
        self.secrets.close()
        for client in self._clients.values():
            await client.close()
        for credential in self._credentials.values():
            await credential.close()
        self._clients.clear()
        self._credentials.clear()
