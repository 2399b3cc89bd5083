"""SDK clients wired to the emulator exactly as a user would wire them to a custom cloud."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential

from armemu import Emulator
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.budget import BudgetRegistry, BudgetSettings
from secureml_operator.azure.cloud import CloudSettings

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def client_options(emulator: Emulator) -> dict[str, Any]:
    return {
        "base_url": emulator.endpoint,
        "credential_scopes": [f"{emulator.endpoint}/.default"],
        "connection_verify": str(emulator.ca_path),
        "polling_interval": 0,
    }


def credential_args(emulator: Emulator) -> tuple[tuple[str, str, str], dict[str, Any]]:
    """ClientSecretCredential arguments for the emulator's token endpoint (sync and aio alike)."""
    env = emulator.env
    principal = (env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"])
    options = {
        "authority": emulator.endpoint,
        "disable_instance_discovery": True,
        "connection_verify": str(emulator.ca_path),
    }
    return principal, options


@pytest.fixture
def credential(arm_emulator: Emulator) -> Iterator[ClientSecretCredential]:
    principal, options = credential_args(arm_emulator)
    credential = ClientSecretCredential(*principal, **options)
    yield credential
    credential.close()


def raw_call(emulator: Emulator, method: str, path_and_query: str, body: Any = None) -> tuple[int, Any, Any]:
    """One ARM request without an SDK in between: status, headers and JSON body, errors included."""
    request = urllib.request.Request(
        f"{emulator.endpoint}{path_and_query}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer contract-test", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(emulator.ca_path))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"null")


@pytest.fixture
async def arm(arm_emulator: Emulator) -> AsyncIterator[ArmClient]:
    """The operator's client for the emulator's service principal, as AzureAccess builds it."""
    principal, options = credential_args(arm_emulator)
    cloud = CloudSettings("Custom", arm_emulator.endpoint, arm_emulator.endpoint, str(arm_emulator.ca_path))
    async with AsyncClientSecretCredential(*principal, **options) as credential:
        slow = BudgetSettings(reads_per_second=0.01, writes_per_second=0.01)  # spent tokens stay spent
        client = ArmClient(credential, cloud, BudgetRegistry(slow), polling_interval=0)
        yield client
        await client.close()
