"""Azure credentials: the operator's own identity by default, or a Secret a custom resource names.

In a cluster the default is workload identity (DefaultAzureCredential reads the projected token);
`spec.azure.credentialRef` names a Secret with `tenantId`, `clientId` and `clientSecret` for a
service principal, whose token comes from the cloud's authority host.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential

from secureml_operator.azure.cloud import CloudSettings
from secureml_operator.failures import PermanentFailure

SECRET_KEYS = ("tenantId", "clientId", "clientSecret")


@dataclass(frozen=True)
class ServicePrincipal:
    tenant_id: str
    client_id: str
    client_secret: str

    def __repr__(self) -> str:  # never let the secret reach a log line
        return f"ServicePrincipal(tenant_id={self.tenant_id!r}, client_id={self.client_id!r})"

    @property
    def identity(self) -> str:
        """Who signs in, as a key: Secrets holding the same principal share one client. The secret
        counts (a rotated one is a new credential), only as its sha256, never in clear."""
        digest = hashlib.sha256(self.client_secret.encode()).hexdigest()
        return f"{self.tenant_id.lower()}/{self.client_id.lower()}/{digest}"

    @classmethod
    def from_secret_data(cls, secret_name: str, data: dict[str, str] | None) -> ServicePrincipal:
        try:
            values = {key: base64.b64decode(value).decode() for key, value in (data or {}).items()}
        except (ValueError, UnicodeDecodeError) as error:  # binascii.Error is a ValueError
            raise PermanentFailure(
                "CredentialSecretInvalid", f"Secret {secret_name} holds a value that is not base64 UTF-8 text"
            ) from error
        missing = [key for key in SECRET_KEYS if not values.get(key)]
        if missing:
            raise PermanentFailure(
                "CredentialSecretInvalid", f"Secret {secret_name} lacks the keys {', '.join(missing)}"
            )
        return cls(values["tenantId"], values["clientId"], values["clientSecret"])


def build_credential(cloud: CloudSettings, principal: ServicePrincipal | None) -> AsyncTokenCredential:
    options: dict[str, object] = {"authority": cloud.authority_host}
    if cloud.ca_bundle:
        options["connection_verify"] = cloud.ca_bundle
    if cloud.is_custom:
        options["disable_instance_discovery"] = True  # a custom authority is not in Entra's instance list
    if principal is None:
        return DefaultAzureCredential(**options)
    return ClientSecretCredential(principal.tenant_id, principal.client_id, principal.client_secret, **options)
