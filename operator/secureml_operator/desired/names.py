"""Deterministic ARM names for what the operator creates: the same spec always yields the same names,
so a crashed or repeated reconcile finds (and never duplicates) what an earlier one created."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from secureml_operator.api.presets import PRESET_FQDNS
from secureml_operator.azure.ids import ArmId, resource_id

if TYPE_CHECKING:  # api.models reads this module's names through api.rules
    from secureml_operator.api.models import SecureMLWorkspaceSpec

RULE_NAME_MAX = 33
PRESET_PREFIX_MAX = 12
NETWORK = "Microsoft.Network"


def network_resource(spec: SecureMLWorkspaceSpec, resource_type: str, name: str) -> ArmId:
    """A Microsoft.Network resource of ours, in the workspace's resource group."""
    return resource_id(spec.azure.subscription_id, spec.azure.resource_group, NETWORK, resource_type, name)


def rule_name(prefix: str, destination: str) -> str:
    """An outbound-rule name (`^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$`) for a preset's FQDN."""
    slug = re.sub(r"[^a-z0-9]+", "-", destination.lower().replace("*.", "any-")).strip("-")
    name = f"{prefix}-{slug}"
    if len(name) <= RULE_NAME_MAX:
        return name
    digest = hashlib.sha256(destination.encode()).hexdigest()[:6]
    return f"{name[: RULE_NAME_MAX - 7]}-{digest}"


def preset_rule_name(preset: str, fqdn: str) -> str:
    """The outbound-rule name of one FQDN of a preset."""
    return rule_name(preset.lower()[:PRESET_PREFIX_MAX], fqdn)


def preset_rule_names() -> list[str]:
    """Every outbound-rule name a preset can yield: a user rule with one of these names would fight it."""
    return [preset_rule_name(preset, fqdn) for preset, fqdns in PRESET_FQDNS.items() for fqdn in fqdns]
