"""Where the per-type semantics used to live: each type's behaviour is now its class in armemu/kinds/,
ARM's shared basics are in armemu/arm.py. Kept for the names tests outside the emulator import."""

from armemu.arm import merge_patch, type_of
from armemu.kinds import BEHAVIOURS as TYPES
from armemu.kinds import resource_guid_types
from armemu.kinds.base import _sdk_model_name
from armemu.kinds.ml import MANAGED_SUBSCRIPTION

__all__ = ["MANAGED_SUBSCRIPTION", "TYPES", "_sdk_model_name", "merge_patch", "resource_guid_types", "type_of"]
