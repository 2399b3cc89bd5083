"""Which Azure cloud the operator talks to: public, a sovereign cloud, or any ARM-compatible endpoint.

The emulator used in tests and `make demo` is just another cloud here, so tests exercise the same
code path as production.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

KNOWN_CLOUDS = {
    "AzurePublicCloud": ("https://management.azure.com", "https://login.microsoftonline.com"),
    "AzureUSGovernment": ("https://management.usgovcloudapi.net", "https://login.microsoftonline.us"),
    "AzureChinaCloud": ("https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
}


@dataclass(frozen=True)
class CloudSettings:
    name: str
    arm_endpoint: str
    authority_host: str
    ca_bundle: str | None = None

    @property
    def credential_scope(self) -> str:
        return self.arm_endpoint.rstrip("/") + "/.default"

    @property
    def is_custom(self) -> bool:
        return self.name not in KNOWN_CLOUDS

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> CloudSettings:
        """`AZURE_CLOUD` picks a known cloud; `SMLW_ARM_ENDPOINT` (+ `AZURE_AUTHORITY_HOST`) any other."""
        values = os.environ if env is None else env
        name = values.get("AZURE_CLOUD", "AzurePublicCloud")
        endpoint = values.get("SMLW_ARM_ENDPOINT")
        ca_bundle = values.get("SMLW_CA_BUNDLE") or None
        if endpoint:
            authority = values.get("AZURE_AUTHORITY_HOST", endpoint)
            return cls(name if name not in KNOWN_CLOUDS else "Custom", endpoint.rstrip("/"), authority, ca_bundle)
        if name not in KNOWN_CLOUDS:
            raise ValueError(
                f"AZURE_CLOUD={name!r} is not one of {sorted(KNOWN_CLOUDS)}; set SMLW_ARM_ENDPOINT for another cloud"
            )
        arm, authority = KNOWN_CLOUDS[name]
        return cls(name, arm, values.get("AZURE_AUTHORITY_HOST", authority), ca_bundle)
