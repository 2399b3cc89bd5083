"""Checks and facts only Azure can give, read before any write: a failed check stalls the resource
(Stalled=True with a reason) and nothing in Azure is changed.

Each kind of resource declares what it needs read (desired/plan.py OBSERVATIONS: the registry's
SKU, an adopted VNet's room, the firewall's IPs); this is the one place that runs them, in order.
"""

from __future__ import annotations

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.arm import ArmClient
from secureml_operator.desired.observed import Observed
from secureml_operator.desired.plan import OBSERVATIONS


async def observe(arm: ArmClient, spec: SecureMLWorkspaceSpec) -> Observed:
    """Run the checks, and gather what plan() needs beyond the spec."""
    observed = Observed()
    for observation in OBSERVATIONS:
        observed = await observation(arm, spec, observed)
    return observed
