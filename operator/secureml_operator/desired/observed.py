"""Facts plan() needs that the spec alone cannot give: read from Azure before the walk (preflight)
or remembered in status from the last walk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Observed:
    firewall_private_ip: str | None = None  # egress.firewall: given in the spec, or read from the firewall
    firewall_egress_ips: tuple[str, ...] = ()  # the firewall's public IPs, when it is referenced by id
    allowlisted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # target id -> IPs in our ledger
    removable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # of those: ours alone to take off

    def removable_on(self, target: str) -> tuple[str, ...]:
        return next((ips for key, ips in self.removable.items() if key.lower() == target.lower()), ())
