"""SDK clients wired to the emulator exactly as a user would wire them to a custom cloud."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.identity import ClientSecretCredential

from armemu import Emulator

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def client_options(emulator: Emulator) -> dict[str, Any]:
    return {
        "base_url": emulator.endpoint,
        "credential_scopes": [f"{emulator.endpoint}/.default"],
        "connection_verify": str(emulator.ca_path),
        "polling_interval": 0,
    }


@pytest.fixture
def credential(arm_emulator: Emulator) -> Iterator[ClientSecretCredential]:
    env = arm_emulator.env
    credential = ClientSecretCredential(
        env["AZURE_TENANT_ID"],
        env["AZURE_CLIENT_ID"],
        env["AZURE_CLIENT_SECRET"],
        authority=arm_emulator.endpoint,
        disable_instance_discovery=True,
        connection_verify=str(arm_emulator.ca_path),
    )
    yield credential
    credential.close()
