"""How the operator's ARM clients reach ARM, against the emulator (a custom cloud with its own CA):
one client per identity, and one HTTP session per cloud whose connections every SDK client of every
subscription and credential reuses, with no request waiting for a connection."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from armemu import Emulator
from armemu.seed import HUB_FIREWALL, HUB_VNET, PROVIDERS
from secureml_operator.azure.access import OPERATOR_IDENTITY, AzureAccess
from secureml_operator.azure.arm import arm_session
from secureml_operator.azure.budget import IN_FLIGHT
from secureml_operator.azure.cloud import CloudSettings
from secureml_operator.azure.credentials import ServicePrincipal
from secureml_operator.azure.ids import ArmId
from secureml_operator.kube import SecretCache, SecretVersion
from secureml_operator.settings import OperatorSettings

OTHER_TENANT = "22222222-2222-2222-2222-222222222222"  # the emulator's token endpoint takes any tenant


class Secrets(SecretCache):
    """The Secrets custom resources name, as their watches last saw them: no API server here."""

    def __init__(self, principals: dict[tuple[str, str], dict[str, str]]) -> None:
        super().__init__()
        self.principals = principals

    async def get(self, namespace: str, name: str) -> SecretVersion:
        values = self.principals[(namespace, name)]
        return SecretVersion({key: base64.b64encode(value.encode()).decode() for key, value in values.items()}, "1")


@pytest.fixture
async def access(arm_emulator: Emulator) -> AsyncIterator[AzureAccess]:
    env = arm_emulator.env
    principal = {"tenantId": env["AZURE_TENANT_ID"], "clientId": env["AZURE_CLIENT_ID"]}
    principal["clientSecret"] = env["AZURE_CLIENT_SECRET"]
    cloud = CloudSettings("Custom", arm_emulator.endpoint, arm_emulator.endpoint, str(arm_emulator.ca_path))
    access = AzureAccess(OperatorSettings(cloud, polling_interval_seconds=0))
    access.secrets = Secrets(
        {
            ("team-a", "azure"): principal,
            ("team-b", "azure-copy"): {**principal, "tenantId": principal["tenantId"].upper()},
            ("team-c", "azure"): {**principal, "tenantId": OTHER_TENANT},
        }
    )
    yield access
    await access.close()


def _connections(session: aiohttp.ClientSession) -> Counter[str]:
    """Counts of connections made, reused, and requests that waited for one (aiohttp's tracing)."""
    seen: Counter[str] = Counter()

    def count(what: str) -> Callable[..., Awaitable[None]]:
        async def counted(*_: object) -> None:
            seen[what] += 1

        return counted

    tracing = aiohttp.TraceConfig()
    tracing.on_connection_create_end.append(count("made"))
    tracing.on_connection_reuseconn.append(count("reused"))
    tracing.on_connection_queued_start.append(count("waited"))
    tracing.freeze()
    session.trace_configs.append(tracing)
    return seen


async def test_secrets_holding_one_principal_share_one_client_keyed_without_the_secret(
    access: AzureAccess, arm_emulator: Emulator
) -> None:
    team_a = await access.client("team-a", "azure")
    assert await access.client("team-b", "azure-copy") is team_a, "the same principal in two Secrets"
    team_c = await access.client("team-c", "azure")
    assert team_c is not team_a, "another tenant is another identity"
    own = await access.client("team-a", None)
    assert own is not team_a and await access.client("team-c", None) is own
    secret = arm_emulator.env["AZURE_CLIENT_SECRET"]
    assert OPERATOR_IDENTITY in access._clients and not any(secret in key for key in access._clients)

    secrets = access.secrets
    assert isinstance(secrets, Secrets)
    rotated = secrets.principals[("team-a", "azure")] = {
        **secrets.principals[("team-a", "azure")],
        "clientSecret": "new",
    }
    assert await access.client("team-a", "azure") is not team_a, "a changed Secret gets its principal's client"
    principal = ServicePrincipal(rotated["tenantId"], rotated["clientId"], rotated["clientSecret"])
    assert principal.identity in access._clients


async def test_every_sdk_client_of_every_credential_and_subscription_reuses_one_connection(
    access: AzureAccess,
) -> None:
    team_a, team_c = await access.client("team-a", "azure"), await access.client("team-c", "azure")
    session = access._session
    assert session is not None
    seen = _connections(session)
    reads = [
        HUB_VNET,  # network, the connectivity subscription
        HUB_FIREWALL,
        f"{PROVIDERS}/Microsoft.Storage/storageAccounts/stlitware",  # resources (by id), the workload one
        f"{PROVIDERS}/Microsoft.Network/privateDnsZones/privatelink.api.azureml.ms",  # private DNS
        f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-absent",  # machine learning: a 404
    ]
    for client in (team_a, team_c):
        for arm_id in reads:
            await client.get(ArmId.parse(arm_id))
    assert seen == {"made": 1, "reused": 2 * len(reads) - 1}, "one TLS handshake, then the same connection"

    await team_c.close()
    assert not session.closed, "closing a client leaves the session its siblings share"
    assert await team_a.get(ArmId.parse(HUB_VNET)) is not None
    await access.close()
    assert session.closed and access._session is None


async def test_requests_at_once_never_wait_for_a_connection(access: AzureAccess, arm_emulator: Emulator) -> None:
    arm_emulator.fault(method="GET", path="vnet-hub", status=200, latencyMs=200, count=None)  # slow, not failed
    client = await access.client("team-a", "azure")
    assert access._session is not None
    seen = _connections(access._session)
    answers = await asyncio.gather(*(client.get(ArmId.parse(HUB_VNET)) for _ in range(IN_FLIGHT + 16)))
    assert all(answer is not None for answer in answers)
    assert seen["waited"] == 0, "a request holding its token never queues for a connection"
    assert 1 < seen["made"] <= IN_FLIGHT, "at most one connection per place in flight"


async def test_the_session_reads_the_environment_only_when_a_proxy_is_set(
    arm_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trusting the environment costs a parse of the proxy variables and ~/.netrc per request."""
    cloud = CloudSettings("Custom", arm_emulator.endpoint, arm_emulator.endpoint, str(arm_emulator.ca_path))
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
    direct = arm_session(cloud)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    proxied = arm_session(cloud)
    try:
        assert (direct.trust_env, proxied.trust_env) == (False, True)
    finally:
        await direct.close()
        await proxied.close()
