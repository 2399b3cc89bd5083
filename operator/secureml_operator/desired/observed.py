"""Facts plan() needs that the spec alone cannot give: read from Azure before the walk or remembered
in status from the last walk.

What must be read is declared by the kind that needs it, as an `Observation` (plan.OBSERVATIONS
lists them); preflight.observe is the one place that runs them. An observation adds its facts to
`Observed`, or refuses the spec with a PermanentFailure (the resource stalls, nothing is written).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId, same_id
from secureml_operator.desired.fields import Json
from secureml_operator.failures import PermanentFailure

if TYPE_CHECKING:
    from secureml_operator.azure.arm import ArmClient


@dataclass(frozen=True)
class Observed:
    firewall_private_ip: str | None = None  # egress.firewall: given in the spec, or read from the firewall
    firewall_egress_ips: tuple[str, ...] = ()  # the firewall's public IPs, when it is referenced by id
    allowlisted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # target id -> IPs in our ledger
    removable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # of those: ours alone to take off

    def removable_on(self, target: str) -> tuple[str, ...]:
        return next((ips for key, ips in self.removable.items() if same_id(key, target)), ())


Observation = Callable[["ArmClient", SecureMLWorkspaceSpec, Observed], Awaitable[Observed]]
"""What one kind reads before planning: (ARM, spec, what earlier observations found) -> that plus its
own facts; raises PermanentFailure when Azure says the spec cannot work."""


async def existing(arm: ArmClient, resource_id: str, what: str) -> Json:
    """The live body of a resource the spec references, which must exist (someone else's: in a
    sweep, the window's shared read)."""
    live = await arm.get_shared(ArmId.parse(resource_id))
    if live is None:
        raise PermanentFailure("DependencyNotFound", f"{what} {resource_id} does not exist")
    return live
