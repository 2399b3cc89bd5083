"""What every part of the emulator shares about ARM: its error answer, the type and resource group an
id names, dotted paths into a body, and JSON merge-patch."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the state indexes resources by type_of: it imports this module
    from armemu.state import Json


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> Json:
        return {"error": {"code": self.code, "message": self.message, "target": None, "details": []}}


def type_of(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    if len(parts) <= 4:
        return "microsoft.resources/resourcegroups"
    tail = parts[6:]
    return "/".join([parts[5], *tail[0::2]]).lower()


def resource_group_id(resource_id: str) -> str:
    return "/".join(resource_id.split("/")[:5])


def get_path(body: Json, path: str) -> Any:
    current: Any = body
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def merge_patch(target: Json, patch: Json) -> Json:
    merged = copy.deepcopy(target)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
