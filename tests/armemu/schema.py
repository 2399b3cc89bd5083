"""Request bodies against the model the installed Azure SDK defines for their type, as the resource
provider deserializes them: a property the model does not define is dropped (or refused, where the
provider refuses it), a read-only one is ignored, a wrong type or an unknown enum value is refused
with the provider's error body.

Nothing here is written by hand but the type -> model table: fields, types, enums, read-only flags
and discriminators come from the SDK classes, both styles of them: the `_attribute_map`/`_validation`
of msrest models (azure-mgmt-applicationinsights) and the rest fields of TypeSpec models
(azure-mgmt-network 30+, azure-mgmt-privatedns 2, azure-ai-ml's ARM client, storage, key vault and
registry). Each SDK models one api-version; the emulator applies it to every version the provider
serves (docs/emulator.md says where that is an approximation).
"""

from __future__ import annotations

import datetime
import enum
import functools
import importlib
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from armemu.arm import ArmError
from armemu.state import Json

NETWORK = "azure.mgmt.network.models"
PRIVATE_DNS = "azure.mgmt.privatedns.models"
ML = "azure.ai.ml._restclient.arm_ml_service.models"
STORAGE = "azure.mgmt.storage.models"
KEY_VAULT = "azure.mgmt.keyvault.models"
REGISTRY = "azure.mgmt.containerregistry.models"
INSIGHTS = "azure.mgmt.applicationinsights.v2020_02_02.models"  # msrest, one module per api-version

# ARM type -> (SDK models module, the PUT body's model, the PATCH body's model). The classes are the
# body parameters of each type's create_or_update and update operations in the SDK.
MODELS: dict[str, tuple[str, str, str]] = {
    "microsoft.network/virtualnetworks": (NETWORK, "VirtualNetwork", "TagsObject"),
    "microsoft.network/virtualnetworks/subnets": (NETWORK, "Subnet", "Subnet"),
    "microsoft.network/virtualnetworks/virtualnetworkpeerings": (
        NETWORK,
        "VirtualNetworkPeering",
        "VirtualNetworkPeering",
    ),
    "microsoft.network/networksecuritygroups": (NETWORK, "NetworkSecurityGroup", "TagsObject"),
    "microsoft.network/networksecuritygroups/securityrules": (NETWORK, "SecurityRule", "SecurityRule"),
    "microsoft.network/routetables": (NETWORK, "RouteTable", "TagsObject"),
    "microsoft.network/routetables/routes": (NETWORK, "Route", "Route"),
    "microsoft.network/natgateways": (NETWORK, "NatGateway", "TagsObject"),
    "microsoft.network/publicipaddresses": (NETWORK, "PublicIPAddress", "TagsObject"),
    "microsoft.network/privatelinkservices": (NETWORK, "PrivateLinkService", "TagsObject"),
    "microsoft.network/privateendpoints": (NETWORK, "PrivateEndpoint", "TagsObject"),
    "microsoft.network/privateendpoints/privatednszonegroups": (
        NETWORK,
        "PrivateDnsZoneGroup",
        "PrivateDnsZoneGroup",
    ),
    "microsoft.network/serviceendpointpolicies": (NETWORK, "ServiceEndpointPolicy", "TagsObject"),
    "microsoft.network/serviceendpointpolicies/serviceendpointpolicydefinitions": (
        NETWORK,
        "ServiceEndpointPolicyDefinition",
        "ServiceEndpointPolicyDefinition",
    ),
    "microsoft.network/azurefirewalls": (NETWORK, "AzureFirewall", "TagsObject"),
    "microsoft.network/firewallpolicies": (NETWORK, "FirewallPolicy", "TagsObject"),
    "microsoft.network/firewallpolicies/rulecollectiongroups": (
        NETWORK,
        "FirewallPolicyRuleCollectionGroup",
        "FirewallPolicyRuleCollectionGroup",
    ),
    "microsoft.network/privatednszones": (PRIVATE_DNS, "PrivateZone", "PrivateZone"),
    "microsoft.network/privatednszones/virtualnetworklinks": (
        PRIVATE_DNS,
        "VirtualNetworkLink",
        "VirtualNetworkLink",
    ),
    "microsoft.network/privatednszones/a": (PRIVATE_DNS, "RecordSet", "RecordSet"),
    "microsoft.machinelearningservices/workspaces": (ML, "Workspace", "WorkspaceUpdateParameters"),
    "microsoft.machinelearningservices/workspaces/outboundrules": (
        ML,
        "OutboundRuleBasicResource",
        "OutboundRuleBasicResource",
    ),
    "microsoft.machinelearningservices/workspaces/privateendpointconnections": (
        ML,
        "PrivateEndpointConnection",
        "PrivateEndpointConnection",
    ),
    "microsoft.storage/storageaccounts": (STORAGE, "StorageAccountCreateParameters", "StorageAccountUpdateParameters"),
    "microsoft.storage/storageaccounts/privateendpointconnections": (
        STORAGE,
        "PrivateEndpointConnection",
        "PrivateEndpointConnection",
    ),
    "microsoft.keyvault/vaults": (KEY_VAULT, "VaultCreateOrUpdateParameters", "VaultPatchParameters"),
    "microsoft.keyvault/vaults/privateendpointconnections": (
        KEY_VAULT,
        "PrivateEndpointConnection",
        "PrivateEndpointConnection",
    ),
    "microsoft.containerregistry/registries": (REGISTRY, "Registry", "RegistryUpdateParameters"),
    "microsoft.containerregistry/registries/privateendpointconnections": (
        REGISTRY,
        "PrivateEndpointConnection",
        "PrivateEndpointConnection",
    ),
    "microsoft.insights/components": (INSIGHTS, "ApplicationInsightsComponent", "TagsResource"),
}
# Properties an SDK still sends although its model for the api-version no longer declares them:
# azure-ai-ml writes these workspace properties straight onto the wire (`set_removed_workspace_property`
# in azure/ai/ml/_utils/_workspace_utils.py: "@removed at api-version 2025-12-01 in the TypeSpec"),
# typed by models its ARM client still ships. Whether the service honours them is not verified.
WIRE_EXTRAS: dict[tuple[str, str], dict[str, str]] = {
    (ML, "WorkspaceProperties"): {"networkAcls": "NetworkAcls", "allowRoleAssignmentOnRG": "bool"},
    (ML, "WorkspacePropertiesUpdateParameters"): {"networkAcls": "NetworkAcls", "allowRoleAssignmentOnRG": "bool"},
}


# shapes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scalar:
    label: str  # the .NET type a provider names when it cannot convert a value
    accepts: Callable[[Any], bool]


@dataclass(frozen=True)
class Choice:
    """An enum (or a discriminator's literal): one of the values, in any casing."""

    label: str
    values: frozenset[str]


@dataclass(frozen=True)
class ListOf:
    item: Shape


@dataclass(frozen=True)
class MapOf:
    value: Shape


class Obj:
    """An object with fields by REST name. Loaded lazily: SDK models refer to each other in cycles."""

    def __init__(
        self,
        name: str,
        load: Callable[[], dict[str, Prop]],
        variants: Callable[[], dict[str, Obj]] | None = None,
        discriminator: str | None = None,
    ) -> None:
        self.name = name
        self._load = load
        self._variants = variants
        self.discriminator = discriminator

    @functools.cached_property
    def fields(self) -> dict[str, Prop]:
        return self._load()

    @functools.cached_property
    def by_lower_name(self) -> dict[str, tuple[str, Prop]]:
        """Providers match property names case-insensitively (Json.NET's default)."""
        return {name.lower(): (name, prop) for name, prop in self.fields.items()}

    def variant(self, value: Json) -> Obj | None:
        """The subtype a discriminated body names (itself when not discriminated), None if unknown."""
        if self._variants is None or self.discriminator is None:
            return self
        named = str(value.get(self.discriminator, "")).casefold()
        return next((obj for key, obj in self._variants().items() if key.casefold() == named), None)


@dataclass(frozen=True)
class Prop:
    shape: Shape
    read_only: bool


Shape = Scalar | Choice | ListOf | MapOf | Obj
STRING = Scalar("System.String", lambda value: isinstance(value, str))
INTEGER = Scalar("System.Int32", lambda value: isinstance(value, int) and not isinstance(value, bool))
NUMBER = Scalar("System.Double", lambda value: isinstance(value, int | float) and not isinstance(value, bool))
BOOLEAN = Scalar("System.Boolean", lambda value: isinstance(value, bool))
ANY = Scalar("System.Object", lambda value: True)
SCALARS: dict[Any, Scalar] = {
    str: STRING,
    bool: BOOLEAN,
    int: INTEGER,
    float: NUMBER,
    bytes: STRING,
    datetime.datetime: STRING,
    datetime.date: STRING,
    datetime.time: STRING,
    datetime.timedelta: STRING,
    typing.Any: ANY,
    object: ANY,
}
MSREST_SCALARS = {
    "str": STRING,
    "iso-8601": STRING,
    "rfc-1123": STRING,
    "duration": STRING,
    "date": STRING,
    "time": STRING,
    "base64": STRING,
    "bytearray": STRING,
    "int": INTEGER,
    "long": INTEGER,
    "unix-time": INTEGER,
    "float": NUMBER,
    "bool": BOOLEAN,
    "object": ANY,
}


# models -----------------------------------------------------------------------------------------


@functools.cache
def model_of(cls: type) -> Obj:
    """The object shape of an SDK model class (msrest or TypeSpec)."""
    if isinstance(getattr(cls, "_attribute_map", None), dict):
        return Obj(cls.__name__, lambda: _msrest_fields(cls))
    discriminators = [  # by REST name: `ruleCollectionType`, not the attribute `rule_collection_type`
        field._rest_name_input or name
        for name, field in _rest_fields(cls)
        if getattr(field, "_is_discriminator", False)
    ]
    mapping = vars(cls).get("__mapping__")
    variants = (lambda: {key: model_of(sub) for key, sub in mapping.items()}) if mapping else None
    return Obj(cls.__name__, lambda: _typespec_fields(cls), variants, discriminators[0] if mapping else None)


def _rest_fields(cls: type) -> list[tuple[str, Any]]:
    """(attribute, rest field) of a TypeSpec model and its bases, base first."""
    return [
        (attr, value)
        for klass in reversed(cls.__mro__)
        for attr, value in vars(klass).items()
        if hasattr(value, "_rest_name_input") and hasattr(value, "_visibility")
    ]


def _models_module(cls: type) -> types.ModuleType:
    """`azure.mgmt.network.models` for a class defined in `azure.mgmt.network.models._models`."""
    return importlib.import_module(cls.__module__.rsplit(".", 1)[0])


def _typespec_fields(cls: type) -> dict[str, Prop]:
    module = _models_module(cls)
    hints = typing.get_type_hints(cls, localns={"_models": module})
    fields = {
        field._rest_name_input or attr: Prop(_hint_shape(hints.get(attr, Any), module), field._visibility == ["read"])
        for attr, field in _rest_fields(cls)
    }
    for name, type_name in WIRE_EXTRAS.get((module.__name__, cls.__name__), {}).items():
        fields[name] = Prop(_msrest_shape(type_name, module), False)
    return fields


def _hint_shape(hint: Any, module: types.ModuleType) -> Shape:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        enums = [arg for arg in options if isinstance(arg, type) and issubclass(arg, enum.Enum)]
        if enums:
            return Choice(enums[0].__name__, frozenset(str(member.value).casefold() for e in enums for member in e))
        return _hint_shape(options[0], module) if len(options) == 1 else ANY
    if origin is typing.Literal:
        return Choice(str(args[0]), frozenset(str(getattr(arg, "value", arg)).casefold() for arg in args))
    if origin in (list, Sequence):
        return ListOf(_hint_shape(args[0], module))
    if origin in (dict, Mapping):
        return MapOf(_hint_shape(args[1], module))
    if hint in SCALARS:
        return SCALARS[hint]
    return model_of(hint) if isinstance(hint, type) else ANY


def _msrest_fields(cls: type) -> dict[str, Prop]:
    """msrest flattens nested JSON into one class (`properties.addressPrefix`): nest it back."""
    module = _models_module(cls)
    validation: dict[str, dict[str, Any]] = getattr(cls, "_validation", {})
    root: dict[str, Prop] = {}
    for attr, spec in cls._attribute_map.items():  # type: ignore[attr-defined]
        *parents, leaf = [part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", spec["key"])]
        level = root
        for parent in parents:
            if parent not in level:
                nested: dict[str, Prop] = {}
                level[parent] = Prop(Obj(f"{cls.__name__}.{parent}", nested.copy), False)  # read once filled
            level = level[parent].shape.fields  # type: ignore[union-attr]
        level[leaf] = Prop(_msrest_shape(spec["type"], module), bool(validation.get(attr, {}).get("readonly")))
    return root


def _msrest_shape(type_name: str, module: types.ModuleType) -> Shape:
    if type_name.startswith("[") and type_name.endswith("]"):
        return ListOf(_msrest_shape(type_name[1:-1], module))
    if type_name.startswith("{") and type_name.endswith("}"):
        return MapOf(_msrest_shape(type_name[1:-1], module))
    if type_name in MSREST_SCALARS:
        return MSREST_SCALARS[type_name]
    return model_of(getattr(module, type_name))


def model(kind: str, patch: bool = False) -> Obj | None:
    """The shape of a PUT (or PATCH) body of an ARM type; None for a type without an SDK model."""
    entry = MODELS.get(kind)
    if entry is None:
        return None
    module, put, update = entry
    return model_of(getattr(importlib.import_module(module), update if patch else put))


# checking ---------------------------------------------------------------------------------------


class ParseError(ArmError):
    """A body the provider cannot deserialize: ARM's error with one detail per problem."""

    def __init__(self, code: str, message: str, details: list[Json]) -> None:
        super().__init__(400, code, message)
        self.details = details

    def body(self) -> Json:
        body = super().body()
        body["error"]["details"] = self.details
        return body


def refuses_unknown(kind: str) -> bool:
    """The network resource provider refuses a property its api-version lacks (Json.NET's missing
    member error: "Could not find member ..."); the others are taken to drop it (not verified)."""
    return kind.startswith("microsoft.network/") and not kind.startswith("microsoft.network/privatednszones")


def conform(kind: str, body: Json, patch: bool = False) -> Json:
    """The body as the provider reads it (unknown and read-only properties gone), or the provider's
    400 when it cannot deserialize it. Keys starting with `_` are the emulator's own bookkeeping."""
    shape = model(kind, patch)
    if shape is None:
        return body
    problems: list[str] = []
    conformed = _conform(shape, body, "", refuses_unknown(kind), problems)
    if not problems:
        return dict(conformed)
    if refuses_unknown(kind):
        details = [{"code": "InvalidJson", "message": problem} for problem in problems]
        raise ParseError("InvalidRequestFormat", "Cannot parse the request.", details)
    message = f"The request content was invalid and could not be deserialized: '{problems[0]}'"
    raise ParseError("InvalidRequestContent", message, [])


def _conform(shape: Shape, value: Any, path: str, refuse_unknown: bool, problems: list[str]) -> Any:
    if value is None:
        return None
    if isinstance(shape, Obj):
        return _conform_object(shape, value, path, refuse_unknown, problems)
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            problems.append(_unconvertible(value, "List", path))
            return value
        items = enumerate(value)
        return [_conform(shape.item, item, f"{path}[{index}]", refuse_unknown, problems) for index, item in items]
    if isinstance(shape, MapOf):
        if not isinstance(value, dict):
            problems.append(_unconvertible(value, "Dictionary", path))
            return value
        entries = value.items()
        return {key: _conform(shape.value, item, _join(path, key), refuse_unknown, problems) for key, item in entries}
    if isinstance(shape, Choice):
        if not isinstance(value, str) or value.casefold() not in shape.values:
            problems.append(_unconvertible(value, shape.label, path))
        return value
    if not shape.accepts(value):
        problems.append(_unconvertible(value, shape.label, path))
    return value


def _conform_object(shape: Obj, value: Any, path: str, refuse_unknown: bool, problems: list[str]) -> Any:
    if not isinstance(value, dict):
        problems.append(_unconvertible(value, shape.name, path))
        return value
    obj = shape.variant(value)
    if obj is None:
        discriminator = str(shape.discriminator)
        problems.append(_unconvertible(value.get(discriminator), shape.name, _join(path, discriminator)))
        return value
    conformed: Json = {}
    for key, item in value.items():
        if key.startswith("_"):
            conformed[key] = item
            continue
        name, prop = obj.by_lower_name.get(key.lower(), (key, None))
        if prop is None:
            if refuse_unknown:
                where = _join(path, key)
                problems.append(f"Could not find member '{key}' on object of type '{obj.name}'. Path '{where}'.")
            continue
        if not prop.read_only:
            conformed[key] = _conform(prop.shape, item, _join(path, name), refuse_unknown, problems)
    return conformed


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unconvertible(value: Any, label: str, path: str) -> str:
    return f"Error converting value {json.dumps(value)} to type '{label}'. Path '{path}'."
