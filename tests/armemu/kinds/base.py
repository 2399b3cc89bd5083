"""What every ARM type does, and the registry of each type's own behaviour.

A type's class subclasses `ResourceBehaviour` in its family's module (network, traffic, dns, ml,
targets) and names its `kind`, the lower-cased ARM type as `type_of` gives it; naming it registers
one instance in `BEHAVIOURS`. The class sets the attributes where the type differs from the defaults
below and overrides what its service adds to the generic handling: `check_body` (the provider's rules
on a body that deserialized), `validate` (checks against what exists), `complete` and `stored` (what
the service fills in and assigns on a write), `seeded`, `after_put`, `derive` (the read-only
properties GET reports), `check_delete` and `after_delete`.
"""

from __future__ import annotations

import copy
import functools
import typing
import uuid
from collections.abc import Mapping
from typing import Any

from armemu import schema
from armemu.arm import ArmError, get_path, merge_patch, type_of
from armemu.state import Json, Resource, State, new_etag

BEHAVIOURS: dict[str, ResourceBehaviour] = {}  # lower-cased ARM type -> its behaviour
SERVICE_OWNED = {"_ip", "workspaceId", "discoveryUrl"}  # what the service assigned stays across writes


class ResourceBehaviour:
    """The generic behaviour: a type that only sets attributes behaves like this."""

    kind: str = ""
    lro: str | None = "async"  # async: Azure-AsyncOperation (Network); location: Location (ML); None: sync
    tracked: bool = True  # has location and tags
    inline: Mapping[str, str] = {}  # property listing children -> child type
    defaults: Json = {}  # what ARM fills in on create
    read_only: tuple[str, ...] = ()  # properties the service computes: never taken from a request body
    references: tuple[tuple[str, str], ...] = ()  # property path -> the type the referenced id must have
    reports_provisioning: bool = True  # GET shows a provisioningState

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in vars(cls):
            assert cls.kind not in BEHAVIOURS, f"two behaviours for {cls.kind}"
            BEHAVIOURS[cls.kind] = cls()

    @property
    def created_status(self) -> int:
        """Network and DNS answer 201 Created; Machine Learning and the others answer 200."""
        return 201 if self.lro == "async" else 200

    # writes -------------------------------------------------------------------------------------
    def validate(self, state: State, resource_id: str, body: Json, existing: Resource | None) -> None:
        """Refuse a PUT (or merged PATCH) body the way the provider does. A type's checks against what
        exists come after these: it overrides this and calls it first."""
        if not isinstance(body, dict) or not isinstance(body.get("properties", {}), dict):
            raise ArmError(400, "InvalidRequestFormat", "The request body must be a JSON object with properties.")
        schema.conform(self.kind, body)  # the provider's 400 for a body its SDK model cannot take
        self.check_body(state, resource_id, body)
        for path, target_type in self.references:
            reference = get_path(body, path)
            if reference:
                _require(state, reference, target_type, path)
        for policy in get_path(body, "properties.serviceEndpointPolicies") or []:
            _require(state, policy.get("id"), "serviceendpointpolicies", "properties.serviceEndpointPolicies")
        for ip in get_path(body, "properties.publicIpAddresses") or []:
            _require(state, ip.get("id"), "publicipaddresses", "properties.publicIpAddresses")

    def check_body(self, state: State, resource_id: str, body: Json) -> None:
        """The resource provider's rules on a body that deserialized fine (armemu/rules.py)."""

    def stored(self, state: State, resource_id: str, body: Json, existing: Resource | None) -> Json:
        """The body to store: inline children split off, read-only fields dropped, what the service
        assigned kept. A type that assigns more overrides this and calls it first."""
        body = schema.conform(self.kind, body)  # what the model lacks or makes read-only is gone
        stored = merge_patch(self.defaults, body) if existing is None else copy.deepcopy(body)
        properties = stored.setdefault("properties", {})
        for prop in (*self.inline, "provisioningState", "resourceGuid", *self.read_only):
            properties.pop(prop, None)  # children are stored as their own resources
        self.complete(resource_id, properties, existing)
        if existing is not None:
            kept = {key: value for key, value in existing.body.get("properties", {}).items() if key in SERVICE_OWNED}
            properties.update(kept)
            network_status = get_path(existing.body, "properties.managedNetwork.status")
            if network_status is not None:
                properties.setdefault("managedNetwork", {})["status"] = network_status
        if self.kind in resource_guid_types():
            before = get_path(existing.body, "properties.resourceGuid") if existing else None
            properties["resourceGuid"] = before or str(uuid.uuid4())
        stored["etag"] = new_etag()
        return stored

    def complete(self, resource_id: str, properties: Json, existing: Resource | None) -> None:
        """What the service fills in from the body and the stored resource, before it keeps what it
        assigned."""

    def seeded(self, resource_id: str, body: Json) -> Json:
        """A resource written as already existing gets what Azure assigned when it was created."""
        properties = body.setdefault("properties", {})
        if self.kind in resource_guid_types():
            properties.setdefault("resourceGuid", str(uuid.uuid4()))
        return body

    def after_put(self, state: State, resource: Resource, previous: Resource | None) -> None:
        """Side effects of a write the real service performs."""

    # deletes ------------------------------------------------------------------------------------
    def check_delete(self, state: State, resource: Resource) -> None:
        """Refuse a delete Azure refuses (409 while in use)."""

    def after_delete(self, state: State, resource: Resource) -> None:
        """Side effects of a delete the real service performs."""

    # reads --------------------------------------------------------------------------------------
    def render(self, state: State, resource: Resource, provisioning: str = "Succeeded") -> Json:
        """The resource as GET returns it: stored body plus children and derived read-only fields."""
        body = copy.deepcopy(resource.body)
        name = resource.id.rsplit("/", 1)[-1]
        arm_type = "/".join(resource.id.strip("/").split("/")[5:][0:1] + resource.id.strip("/").split("/")[6::2])
        body = {"id": resource.id, "name": name, "type": arm_type, **body}
        modified_by = body.pop("_modifiedBy", None)
        if modified_by and self.kind.startswith("microsoft.machinelearningservices/"):  # the network RP sends none
            body["systemData"] = {"lastModifiedBy": modified_by[0], "lastModifiedByType": modified_by[1]}
        properties = body.setdefault("properties", {})
        properties.pop("_ip", None)
        if self.reports_provisioning and "provisioningState" not in properties:
            properties["provisioningState"] = provisioning
        for prop, child_type in self.inline.items():
            properties[prop] = [render(state, child) for child in state.children(resource.id, child_type)]
        self.derive(state, resource, body, provisioning)
        return body

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        """Add to a rendered `body` the read-only properties the service derives."""


class Untyped(ResourceBehaviour):
    """A resource of a type the emulator does not serve (written through the admin API's seed)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


def behaviour(kind: str) -> ResourceBehaviour:
    """The behaviour of a lower-cased ARM type; the generic one for a type the emulator does not serve."""
    return BEHAVIOURS.get(kind) or Untyped(kind)


def render(state: State, resource: Resource, provisioning: str = "Succeeded") -> Json:
    return behaviour(type_of(resource.id)).render(state, resource, provisioning)


def _require(state: State, resource_id: str | None, expected_type: str, where: str) -> Resource:
    resource = state.get(resource_id) if resource_id else None
    if resource is None or not type_of(resource.id).endswith(expected_type):
        raise ArmError(400, "InvalidResourceReference", f"Resource {resource_id} referenced by {where} was not found.")
    return resource


def _sdk_model_name(arm_type: str) -> str:
    """`microsoft.network/publicipaddresses` -> `publicipaddress`: the lower-cased model class name, the
    PUT body's model where `schema.MODELS` names it (`firewallpolicyrulecollectiongroup`)."""
    if arm_type in schema.MODELS:
        return schema.MODELS[arm_type][1].lower()
    plural = arm_type.rsplit("/", 1)[-1]
    if plural.endswith("ies"):
        return plural[:-3] + "y"
    if plural.endswith("sses"):
        return plural[:-2]
    return plural.removesuffix("s")


def _defines_resource_guid(model: type) -> bool:
    """Whether an azure-mgmt-network model has `resource_guid` (ARM's `properties.resourceGuid`)."""
    attribute_map = getattr(model, "_attribute_map", None)
    if isinstance(attribute_map, dict):  # msrest-generated SDKs (azure-mgmt-network before 30)
        return "resource_guid" in attribute_map
    # TypeSpec-generated SDKs: the resource model's `properties` model declares the field.
    from azure.mgmt.network import models

    hints = typing.get_type_hints(model, localns={"_models": models})
    candidates = [hints.get("properties"), *typing.get_args(hints.get("properties"))]
    properties = next((c for c in candidates if isinstance(c, type) and c is not type(None)), None)
    return properties is not None and "resource_guid" in {name for klass in properties.__mro__ for name in vars(klass)}


@functools.cache
def resource_guid_types() -> frozenset[str]:
    """The types whose azure-mgmt-network model defines `resource_guid`: Azure assigns these a
    `properties.resourceGuid` on create. Derived from the installed SDK, not written by hand."""
    from azure.mgmt.network import models

    classes = {name.lower(): value for name, value in vars(models).items() if isinstance(value, type)}
    return frozenset(
        kind
        for kind in BEHAVIOURS
        if kind.startswith("microsoft.network/")
        and (model := classes.get(_sdk_model_name(kind))) is not None
        and _defines_resource_guid(model)
    )
