"""The examples' world for plan and engine unit tests: specs from examples/ (optionally changed), and
the resources the examples reference, seeded into an ArmFake from the emulator's own seed data so
both doubles of Azure start from the same platform team's resources."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from armfake import ArmFake

from armemu.seed import CONNECTIVITY_RESOURCES, LITWARE_RESOURCES, PROVIDERS
from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.ids import ArmId

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Change = Callable[[dict[str, Any]], None]


def example_file(prefix: str) -> Path:
    """The example whose file name starts with `prefix` (`03`)."""
    (path,) = EXAMPLES.glob(f"{prefix}-*.yaml")
    return path


def spec(prefix: str, change: Change | None = None) -> SecureMLWorkspaceSpec:
    """An example's spec, after `change` edits its camelCase dict (and the models validate it)."""
    body: dict[str, Any] = copy.deepcopy(yaml.safe_load(example_file(prefix).read_text())["spec"])
    if change is not None:
        change(body)
    return SecureMLWorkspaceSpec.model_validate(body)


def litware(path: str) -> ArmId:
    """A resource in rg-litware, by `Provider/type/name` (`Microsoft.Storage/storageAccounts/st`)."""
    return ArmId.parse(f"{PROVIDERS}/{path}")


def workspace_of(workspace: SecureMLWorkspaceSpec) -> ArmId:
    """The workspace's ARM id, from the spec alone."""
    azure = workspace.azure
    group = f"/subscriptions/{azure.subscription_id}/resourceGroups/{azure.resource_group}/providers"
    return ArmId.parse(f"{group}/Microsoft.MachineLearningServices/workspaces/{workspace.workspace.name}")


def seeded_fake() -> ArmFake:
    """An ARM with what exists before the operator: the workspace's dependencies, a client VNet, and
    the hub VNet with its firewall in the connectivity subscription."""
    fake = ArmFake()
    for resource_id, body in [*LITWARE_RESOURCES, *CONNECTIVITY_RESOURCES]:
        fake.seed(ArmId.parse(resource_id), body)
    return fake
