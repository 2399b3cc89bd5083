"""The api-versions each resource provider serves, and ARM's answer to one it does not.

A provider serves every stable version it ever released, not only the one the installed SDK
defaults to: a client pinned to an older version keeps working, one asking for a version that does
not exist (or a preview this table leaves out) is refused before the provider sees the request.
Sources, per provider, are in docs/emulator.md ("Served api-versions"); the installed SDKs' own
default versions are always served (`tests/contract/test_schema_contract.py` checks it).
"""

from __future__ import annotations

import functools

from armemu.arm import ArmError, type_of
from armemu.state import State


def _versions(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Microsoft.Network: ARM's own NoRegisteredProviderFound answer (which lists the versions it serves)
# up to 2023-09-01, then the stable folders of azure-rest-api-specs up to the installed SDK's.
NETWORK = _versions(
    "2015-06-15 2016-03-30 2016-06-01 2016-07-01 2016-08-01 2016-09-01 2016-10-01 2016-11-01 2016-12-01 "
    "2017-03-01 2017-04-01 2017-06-01 2017-08-01 2017-09-01 2017-10-01 2017-11-01 2018-01-01 2018-02-01 "
    "2018-03-01 2018-04-01 2018-05-01 2018-06-01 2018-07-01 2018-08-01 2018-10-01 2018-11-01 2018-12-01 "
    "2019-02-01 2019-04-01 2019-06-01 2019-07-01 2019-08-01 2019-09-01 2019-11-01 2019-12-01 2020-01-01 "
    "2020-03-01 2020-04-01 2020-05-01 2020-06-01 2020-07-01 2020-08-01 2020-11-01 2021-01-01 2021-02-01 "
    "2021-03-01 2021-04-01 2021-05-01 2021-06-01 2021-08-01 2021-12-01 2022-01-01 2022-05-01 2022-07-01 "
    "2022-09-01 2022-11-01 2023-02-01 2023-04-01 2023-05-01 2023-06-01 2023-09-01 2023-11-01 2024-01-01 "
    "2024-03-01 2024-05-01 2024-07-01 2024-10-01 2025-01-01 2025-03-01 2025-05-01 2025-07-01 2025-09-01 "
    "2026-01-01 2026-03-01"
)
PRIVATE_DNS = ("2018-09-01", "2020-01-01", "2020-06-01", "2024-06-01")
MACHINE_LEARNING = _versions(
    "2018-11-19 2019-05-01 2019-06-01 2019-11-01 2020-01-01 2020-03-01 2020-04-01 2020-06-01 2020-08-01 "
    "2021-01-01 2021-04-01 2021-07-01 2022-05-01 2022-10-01 2023-04-01 2023-10-01 2024-04-01 2024-10-01 "
    "2025-04-01 2025-06-01 2025-09-01 2025-12-01"
)
STORAGE = _versions(
    "2015-06-15 2016-01-01 2016-05-01 2016-07-01 2016-12-01 2017-06-01 2017-10-01 2018-02-01 2018-07-01 "
    "2018-11-01 2019-04-01 2019-06-01 2021-01-01 2021-02-01 2021-04-01 2021-06-01 2021-08-01 2021-09-01 "
    "2022-05-01 2022-09-01 2023-01-01 2023-04-01 2023-05-01 2024-01-01 2025-01-01 2025-06-01 2026-09-01"
)
KEY_VAULT = _versions(
    "2015-06-01 2016-10-01 2018-02-14 2019-09-01 2021-10-01 2022-07-01 2023-02-01 2023-07-01 2024-11-01 "
    "2025-05-01 2026-05-15"
)
CONTAINER_REGISTRY = _versions(
    "2017-03-01 2017-10-01 2019-05-01 2021-09-01 2022-12-01 2023-07-01 2025-04-01 2025-11-01"
)
INSIGHTS = ("2014-04-01", "2014-08-01", "2015-05-01", "2020-02-02")
# Microsoft.Resources (resource groups): the stable versions of ARM's own InvalidApiVersionParameter
# answer, plus the installed azure-mgmt-resource's default.
RESOURCES = _versions(
    "2013-03-01 2014-01-01 2014-02-26 2014-04-01 2015-01-01 2015-11-01 2016-02-01 2016-06-01 2016-07-01 "
    "2016-09-01 2017-03-01 2017-05-01 2017-05-10 2017-06-01 2017-08-01 2017-12-01 2018-01-01 2018-02-01 "
    "2018-05-01 2018-06-01 2018-07-01 2018-08-01 2018-09-01 2018-11-01 2019-03-01 2019-05-01 2019-05-10 "
    "2019-06-01 2019-07-01 2019-08-01 2019-09-01 2019-10-01 2019-11-01 2020-01-01 2020-05-01 2020-06-01 "
    "2020-07-01 2020-08-01 2020-09-01 2020-10-01 2021-01-01 2021-04-01 2022-01-01 2022-05-01 2022-06-01 "
    "2022-09-01 2022-12-01 2023-07-01 2024-03-01 2024-08-01 2025-04-01"
)

PROVIDERS: dict[str, tuple[str, ...]] = {
    "microsoft.network": NETWORK,
    "microsoft.machinelearningservices": MACHINE_LEARNING,
    "microsoft.storage": STORAGE,
    "microsoft.keyvault": KEY_VAULT,
    "microsoft.containerregistry": CONTAINER_REGISTRY,
    "microsoft.insights": INSIGHTS,
}
# Types a provider added after its first version: the first stable version that defines them.
SINCE = {
    "microsoft.network/natgateways": "2019-02-01",
    "microsoft.network/privateendpoints": "2019-04-01",
    "microsoft.network/privateendpoints/privatednszonegroups": "2019-04-01",
    "microsoft.network/privatelinkservices": "2019-04-01",
    "microsoft.network/serviceendpointpolicies": "2018-07-01",
    "microsoft.network/serviceendpointpolicies/serviceendpointpolicydefinitions": "2018-07-01",
    "microsoft.network/firewallpolicies": "2019-06-01",
    "microsoft.network/firewallpolicies/rulecollectiongroups": "2020-04-01",  # ruleGroups before
    "microsoft.machinelearningservices/workspaces/outboundrules": "2023-10-01",
}


def served(kind: str) -> tuple[str, ...]:
    """The api-versions ARM accepts for an ARM type (lower-cased, as `type_of` gives it): the
    provider's stable versions since the type exists, and the previews its installed SDK calls."""
    if kind.startswith("microsoft.network/privatednszones"):
        return PRIVATE_DNS
    namespace = kind.split("/", 1)[0]
    since = max((SINCE[prefix] for prefix in SINCE if kind == prefix or kind.startswith(prefix + "/")), default="")
    previews = ml_client_versions() if namespace == "microsoft.machinelearningservices" else ()
    return tuple(sorted(version for version in {*PROVIDERS.get(namespace, ()), *previews} if version >= since))


@functools.cache
def ml_client_versions() -> tuple[str, ...]:
    """The api-versions azure-ai-ml's MLClient calls, previews included (its ARM client bound to each)."""
    from azure.ai.ml import _ml_client

    return tuple(
        sorted(
            value.keywords["api_version"]
            for value in vars(_ml_client).values()
            if isinstance(value, functools.partial) and "api_version" in value.keywords
        )
    )


def check(state: State, path: str, version: str) -> None:
    """Refuse an api-version the addressed provider does not serve, as ARM does: resource groups
    (Microsoft.Resources) answer InvalidApiVersionParameter, provider types NoRegisteredProviderFound."""
    parts = path.strip("/").split("/")
    if parts[0].lower() != "subscriptions" or len(parts) < 3:
        return
    if len(parts) in (3, 4) and parts[2].lower() == "resourcegroups":
        if version not in RESOURCES:
            supported = ",".join(reversed(RESOURCES))
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{supported}'.",
            )
        return
    if len(parts) < 6 or parts[2].lower() == "providers":
        return  # subscription-level routes: operation status URLs the emulator made itself
    kind = _addressed_type(parts)
    versions = served(kind)
    if versions and version not in versions:
        group = state.get("/".join(path.split("/")[:5]))
        location = (group.body.get("location") if group else None) or "global"
        raise ArmError(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location '{location}' and API version '{version}' for "
            f"type '{kind.split('/', 1)[1]}'. The supported api-versions are '{', '.join(versions)}'. The "
            f"supported locations are '{location}'.",
        )


def latest(path: str) -> str:
    """The newest version served for what `path` addresses: the default of an ad-hoc call."""
    parts = path.strip("/").split("/")
    if len(parts) < 6:
        return RESOURCES[-1]
    return [version for version in served(_addressed_type(parts)) if not version.endswith("-preview")][-1]


def _addressed_type(parts: list[str]) -> str:
    """The ARM type a path addresses: a resource, or a collection of one or an action on one."""
    path = "/" + "/".join(parts)
    return type_of(path if len(parts) % 2 == 0 else path + "/x")
