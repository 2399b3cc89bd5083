"""ARM clients per credential, built once and shared by every custom resource.

One `ArmClient` serves every subscription a credential reaches: it routes each call by the
subscription in the resource's id and draws on that subscription's budget (one `BudgetRegistry`
for the operator, so two credentials in one subscription share its budget too). One per identity,
not per Secret: Secrets holding the same service principal share it. Every client sends over one
HTTP session, so connections to ARM are reused whichever credential calls.

The credential is the operator's own identity unless the spec names a Secret; Secrets come from a
cache kept current by a watch of each one (kube.SecretCache), not from a read per sweep.
"""

from __future__ import annotations

import aiohttp
import kubernetes

from secureml_operator.azure.arm import ArmClient, arm_session
from secureml_operator.azure.budget import BudgetRegistry
from secureml_operator.azure.credentials import ServicePrincipal, build_credential
from secureml_operator.failures import PermanentFailure
from secureml_operator.kube import SecretCache
from secureml_operator.settings import OperatorSettings

OPERATOR_IDENTITY = "operator-identity"  # the key of the operator's own credential's client


class AzureAccess:
    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.budgets = BudgetRegistry(settings.budget)
        self._clients: dict[str, ArmClient] = {}  # identity -> its client (and credential)
        self._session: aiohttp.ClientSession | None = None  # made on first use: it needs the event loop
        self.secrets = SecretCache()

    async def service_principal(self, namespace: str, secret_name: str) -> ServicePrincipal:
        """The service principal in the Secret, as the watch of it last saw it."""
        where = f"Secret {namespace}/{secret_name} named by spec.azure.credentialRef"
        try:
            secret = await self.secrets.get(namespace, secret_name)
        except kubernetes.client.ApiException as error:
            if error.status != 403:
                raise
            raise PermanentFailure("CredentialSecretNotFound", f"{where} cannot be read (403 Forbidden)") from error
        if secret.data is None:
            raise PermanentFailure("CredentialSecretNotFound", f"{where} does not exist")
        return ServicePrincipal.from_secret_data(f"{namespace}/{secret_name}", secret.data)

    async def client(self, namespace: str, secret_name: str | None) -> ArmClient:
        """The client of the credential the spec names (None: the operator's own identity); it
        routes every call by the subscription in the resource's id. A Secret changed to another
        principal (or secret) gets that one's client."""
        principal = None if secret_name is None else await self.service_principal(namespace, secret_name)
        identity = OPERATOR_IDENTITY if principal is None else principal.identity
        client = self._clients.get(identity)
        if client is None:
            if self._session is None:
                self._session = arm_session(self.settings.cloud)
            client = self._clients[identity] = ArmClient(
                build_credential(self.settings.cloud, principal),
                self.settings.cloud,
                self.budgets,
                polling_interval=self.settings.polling_interval_seconds,
                session=self._session,
            )
        return client

    async def close(self) -> None:
        """Every client and its credential, then the session they all send over."""
        self.secrets.close()
        for client in self._clients.values():
            await client.close()
            await client.credential.close()
        self._clients.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
