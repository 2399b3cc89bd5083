"""A small in-memory Azure Resource Manager for engine unit tests: a test double of Azure, not of
the operator. It implements the ArmClient calls the engine makes (get, put, patch, delete,
provision_managed_network) and answers them the way ARM does where the engine depends on it:

- a missing resource reads as None; a write under a missing parent, or a PATCH of a missing
  resource, is a 404; deleting what is gone is quietly done (ArmClient swallows the 404);
- `If-None-Match: *` on an existing resource and a stale `If-Match` etag are a 412, raised as the
  SDK raises it: a plain HttpResponseError with status 412 (the SDK's error map has no 412);
- Azure assigns identities on create (resourceGuid on the network types that have one, a
  workspace's workspaceId, a public IP's address) and keeps them across writes, so a resource
  deleted and recreated has a new identity; every write gets a new etag; tags are kept as sent;
- children are listed inline in their parent's GET (subnets and peerings in a VNet, security rules,
  routes, service endpoint policy definitions, private endpoint connections, and a workspace's
  outbound rules as a `{name: properties}` map); inline lists in a request body are ignored, as the
  engine writes children through their own endpoints;
- a private endpoint's DNS zone group registers an A record (named after the endpoint) in each of
  its zones, gone with the group; a private DNS zone counts its links and record sets (+1 for SOA);
- deleting a resource another one still references by id is refused (InUse), as Azure does for
  subnets, NSGs, route tables, NAT gateways and public IPs (a remote peering holds nothing: it
  turns Disconnected).

Every call is logged, so tests can assert "zero writes". Tests change Azure behind the engine's
back with `seed`, `set_field` and `remove` (not logged), inject failures with `fail`, races with
`before`, and an Azure Policy `modify` effect with `modify`.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest

from armemu.semantics import merge_patch
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import Json, get_path, set_path

WORKSPACE = "microsoft.machinelearningservices/workspaces"
PUBLIC_IP = "microsoft.network/publicipaddresses"
DNS_ZONE = "microsoft.network/privatednszones"
DNS_LINK = "virtualnetworklinks"
ZONE_GROUP = "microsoft.network/privateendpoints/privatednszonegroups"
PEERING = "microsoft.network/virtualnetworks/virtualnetworkpeerings"
# The network types whose SDK model has properties.resourceGuid (as tests/armemu derives it).
RESOURCE_GUID_TYPES = frozenset(
    {
        "microsoft.network/natgateways",
        "microsoft.network/networksecuritygroups",
        "microsoft.network/publicipaddresses",
        "microsoft.network/routetables",
        "microsoft.network/serviceendpointpolicies",
        "microsoft.network/virtualnetworks",
        PEERING,
    }
)
CONNECTIONS = ("privateendpointconnections", "properties.privateEndpointConnections", False)
# parent type -> (child type, where the parent's GET lists it, listed as a {name: properties} map)
INLINE: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "microsoft.network/virtualnetworks": (
        ("subnets", "properties.subnets", False),
        ("virtualnetworkpeerings", "properties.virtualNetworkPeerings", False),
    ),
    "microsoft.network/networksecuritygroups": (("securityrules", "properties.securityRules", False),),
    "microsoft.network/routetables": (("routes", "properties.routes", False),),
    "microsoft.network/serviceendpointpolicies": (
        ("serviceendpointpolicydefinitions", "properties.serviceEndpointPolicyDefinitions", False),
    ),
    WORKSPACE: (("outboundrules", "properties.managedNetwork.outboundRules", True), CONNECTIONS),
    "microsoft.storage/storageaccounts": (CONNECTIONS,),
    "microsoft.keyvault/vaults": (CONNECTIONS,),
    "microsoft.containerregistry/registries": (CONNECTIONS,),
}
READ_ONLY = ("provisioningState", "resourceGuid", "workspaceId")
STATUS = "properties.managedNetwork.status"


class _Answer:
    """The parts of an HTTP response azure-core reads to build an HttpResponseError."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status_code = status
        self.reason = code
        self.headers = {"content-type": "application/json"}
        self.request = HttpRequest("PUT", "https://management.azure.com/")
        self._text = json.dumps({"error": {"code": code, "message": message}})

    def text(self, encoding: str | None = None) -> str:
        return self._text


def arm_error(status: int, code: str, message: str = "") -> HttpResponseError:
    """What the SDK raises for an ARM error answer (its error map: 404 and 409 have their own class)."""
    kind = {404: ResourceNotFoundError, 409: ResourceExistsError}.get(status, HttpResponseError)
    return kind(response=_Answer(status, code, message or code))


@dataclass
class _Stored:
    id: ArmId  # in the casing it was first written with
    body: Json


@dataclass
class _Fault:
    error: HttpResponseError
    after_write: bool  # the write is done, its answer lost


@dataclass
class ArmFake:
    """One Azure, all subscriptions: resources by lower-cased id, every call logged."""

    calls: list[tuple[str, str]] = field(default_factory=list)  # (verb, id) of every call, in order
    _store: dict[str, _Stored] = field(default_factory=dict)
    _faults: dict[tuple[str, str], _Fault] = field(default_factory=dict)
    _races: dict[tuple[str, str], Callable[[], object]] = field(default_factory=dict)
    _policies: list[tuple[str, str, Any]] = field(default_factory=list)
    _registered: dict[str, list[ArmId]] = field(default_factory=dict)  # zone group key -> its A records
    _serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [call for call in self.calls if call[0] != "get"]

    # what tests do to Azure behind the engine's back --------------------------------------------
    def seed(self, arm_id: ArmId, body: Json) -> Json:
        """Someone else creates (or replaces) a resource."""
        self._write(arm_id, body)
        return self.live(arm_id) or {}

    def set_field(self, arm_id: ArmId, path: str, value: Any) -> None:
        """Someone else changes one field (a new etag, as any write)."""
        stored = self._store[arm_id.key]
        set_path(stored.body, path, value)
        stored.body["etag"] = self._etag()

    def remove(self, arm_id: ArmId) -> None:
        """Someone else deletes a resource and its children."""
        for key in self._subtree(arm_id):
            for record in self._registered.pop(key, []):
                self._store.pop(record.key, None)
            self._store.pop(key, None)

    def fail(self, verb: str, arm_id: ArmId, status: int, code: str, *, after_write: bool = False) -> None:
        """The next `verb` call on `arm_id` fails; `after_write`: after the write took effect."""
        self._faults[(verb, arm_id.key)] = _Fault(arm_error(status, code), after_write)

    def before(self, verb: str, arm_id: ArmId, race: Callable[[], object]) -> None:
        """Someone else acts just before the next `verb` call on `arm_id` reaches Azure."""
        self._races[(verb, arm_id.key)] = race

    def modify(self, arm_type: str, path: str, value: Any) -> None:
        """An Azure Policy `modify` effect: every write of this type ends with `path` set to `value`."""
        self._policies.append((arm_type.lower(), path, value))

    def ids(self) -> set[str]:
        """The lower-cased ids of every resource there is."""
        return set(self._store)

    def live(self, arm_id: ArmId) -> Json | None:
        """The resource as a GET would answer, without calling (for assertions)."""
        return self._render(arm_id.key) if arm_id.key in self._store else None

    # the ArmClient calls the engine and the reconciler make ------------------------------------
    supports = staticmethod(ArmClient.supports)  # the routes are the real client's

    async def get(self, arm_id: ArmId) -> Json | None:
        await self._arrive("get", arm_id)
        return self.live(arm_id)

    async def get_shared(self, arm_id: ArmId) -> Json | None:
        """No window here: every read is counted (the read cache has its own tests)."""
        return await self.get(arm_id)

    async def put(self, arm_id: ArmId, body: Json, etag: str | None = None, *, create_only: bool = False) -> Json:
        await self._arrive("put", arm_id)
        existing = self._store.get(arm_id.key)
        if create_only and existing is not None:
            raise arm_error(412, "PreconditionFailed", f"{arm_id} already exists (If-None-Match: *)")
        if etag is not None and (existing is None or existing.body.get("etag") != etag):
            raise arm_error(412, "PreconditionFailed", f"{arm_id} changed since it was read (If-Match)")
        parent = arm_id.parent
        if parent is not None and parent.key not in self._store:
            raise arm_error(404, "ParentResourceNotFound", f"{parent} does not exist")
        self._write(arm_id, body)
        return self._answer("put", arm_id)

    async def patch(self, arm_id: ArmId, body: Json) -> Json:
        await self._arrive("patch", arm_id)
        existing = self._existing(arm_id)
        existing.body = self._conform(arm_id, merge_patch(existing.body, body), existing)
        return self._answer("patch", arm_id)

    async def delete(self, arm_id: ArmId) -> None:
        await self._arrive("delete", arm_id)
        if arm_id.key not in self._store:
            return
        doomed = self._subtree(arm_id)
        for key, stored in self._store.items():
            if key in doomed or stored.id.type.lower() == PEERING:
                continue
            held = doomed & {value.lower() for value in _strings(stored.body)}
            if held:
                raise arm_error(400, "InUseCannotBeDeleted", f"{min(held)} is in use by {stored.id}")
        self.remove(arm_id)
        self._answer("delete", arm_id)

    async def provision_managed_network(self, workspace: ArmId, include_spark: bool) -> Json:
        await self._arrive("post", workspace)
        status = {"status": "Active", "sparkReady": include_spark}
        set_path(self._existing(workspace).body, STATUS, status)
        self._answer("post", workspace)
        return status

    # ARM's side --------------------------------------------------------------------------------
    async def _arrive(self, verb: str, arm_id: ArmId) -> None:
        """A call reaches Azure: logged, after any race set up for it; an injected failure that
        strikes before the write is raised here."""
        await asyncio.sleep(0)  # other walks' calls interleave, as over the network
        self.calls.append((verb, str(arm_id)))
        race = self._races.pop((verb, arm_id.key), None)
        if race is not None:
            race()
        fault = self._faults.get((verb, arm_id.key))
        if fault is not None and not fault.after_write:
            raise self._faults.pop((verb, arm_id.key)).error

    def _existing(self, arm_id: ArmId) -> _Stored:
        stored = self._store.get(arm_id.key)
        if stored is None:
            raise arm_error(404, "ResourceNotFound", f"{arm_id} does not exist")
        return stored

    def _answer(self, verb: str, arm_id: ArmId) -> Json:
        """The answer to a write that took effect, unless it is lost on the way back."""
        fault = self._faults.pop((verb, arm_id.key), None)
        if fault is not None:
            raise fault.error
        return self.live(arm_id) or {}

    def _write(self, arm_id: ArmId, body: Json) -> None:
        existing = self._store.get(arm_id.key)
        self._store[arm_id.key] = _Stored(existing.id if existing else arm_id, self._conform(arm_id, body, existing))
        if arm_id.type.lower() == ZONE_GROUP:
            self._register(arm_id)

    def _register(self, group: ArmId) -> None:
        """Azure keeps an A record for the endpoint in each zone of its zone group."""
        for record in self._registered.pop(group.key, []):
            self._store.pop(record.key, None)
        endpoint = group.parent
        assert endpoint is not None
        configs = get_path(self._store[group.key].body, "properties.privateDnsZoneConfigs") or []
        zones = [get_path(config, "properties.privateDnsZoneId") for config in configs]
        for zone in (ArmId.parse(zone) for zone in zones if zone):
            if zone.key in self._store:
                record = zone.child("A", endpoint.name)
                self._store[record.key] = _Stored(record, self._conform(record, {"properties": {"ttl": 10}}, None))
                self._registered.setdefault(group.key, []).append(record)

    def _conform(self, arm_id: ArmId, body: Json, existing: _Stored | None) -> Json:
        """The body Azure stores: what it computes dropped from the request, identities assigned on
        create and kept after, inline children left to their own endpoints, policy applied."""
        kind = arm_id.type.lower()
        stored = {key: copy.deepcopy(value) for key, value in body.items() if key not in ("id", "name", "type")}
        properties = stored.setdefault("properties", {})
        for name in READ_ONLY:
            properties.pop(name, None)
        for _child, path, _as_map in INLINE.get(kind, ()):
            _drop(stored, path)
        before = existing.body if existing else {}
        assigned = {
            "properties.resourceGuid": kind in RESOURCE_GUID_TYPES,
            "properties.workspaceId": kind == WORKSPACE,
            "properties.ipAddress": kind == PUBLIC_IP,
            STATUS: kind == WORKSPACE,
        }
        for path in (path for path, applies in assigned.items() if applies):  # a seed may bring its own
            set_path(stored, path, get_path(before, path) or get_path(stored, path) or self._assign(path))
        for arm_type, path, value in self._policies:
            if arm_type == kind:
                set_path(stored, path, value)
        stored["etag"] = self._etag()
        return stored

    def _assign(self, path: str) -> Any:
        serial = next(self._serial)
        if path == "properties.ipAddress":
            return f"20.0.{serial // 250}.{serial % 250 + 1}"
        if path == STATUS:
            return {"status": "Inactive", "sparkReady": False}
        return f"00000000-0000-4000-8000-{serial:012d}"

    def _etag(self) -> str:
        return f'W/"{next(self._serial)}"'

    def _render(self, key: str) -> Json:
        stored = self._store[key]
        kind = stored.id.type.lower()
        body = {"id": str(stored.id), "name": stored.id.name, "type": stored.id.type, **copy.deepcopy(stored.body)}
        body["properties"].setdefault("provisioningState", "Succeeded")
        for child_type, path, as_map in INLINE.get(kind, ()):
            listed = [self._render(child.id.key) for child in self._children(key, child_type)]
            set_path(body, path, {child["name"]: child["properties"] for child in listed} if as_map else listed)
        if kind == DNS_ZONE:
            records = self._children(key)
            links = sum(1 for record in records if record.id.types[-1].lower() == DNS_LINK)
            body["properties"]["numberOfVirtualNetworkLinks"] = links
            body["properties"]["numberOfRecordSets"] = len(records) - links + 1  # and its SOA
        return body

    def _children(self, key: str, child_type: str | None = None) -> list[_Stored]:
        return [
            stored
            for stored in self._store.values()
            if stored.id.parent is not None
            and stored.id.parent.key == key
            and (child_type is None or stored.id.types[-1].lower() == child_type)
        ]

    def _subtree(self, arm_id: ArmId) -> set[str]:
        return {key for key in self._store if key == arm_id.key or key.startswith(arm_id.key + "/")}


def _drop(body: Json, path: str) -> None:
    *parents, last = path.split(".")
    current = get_path(body, ".".join(parents)) if parents else body
    if isinstance(current, dict):
        current.pop(last, None)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a body: where a resource references others by id."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
