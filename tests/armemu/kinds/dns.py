"""Private DNS: zones (with the counts a client reads before deleting one), their virtual network links
and A record sets, and a private endpoint's DNS zone groups, which write the endpoint's A records
into the zones they name."""

from __future__ import annotations

from armemu.arm import get_path, type_of
from armemu.kinds.base import ResourceBehaviour
from armemu.kinds.helpers import forget_records
from armemu.state import Json, Resource, State, new_etag

ZONE = "microsoft.network/privatednszones"


class PrivateDnsZone(ResourceBehaviour):
    kind = ZONE

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        records = state.children(resource.id)
        links = [r for r in records if type_of(r.id).endswith("virtualnetworklinks")]
        registering = [link for link in links if get_path(link.body, "properties.registrationEnabled")]
        body["properties"].update(
            numberOfRecordSets=len(records) - len(links) + 1,  # + the zone's SOA record
            maxNumberOfRecordSets=25000,
            numberOfVirtualNetworkLinks=len(links),
            maxNumberOfVirtualNetworkLinks=1000,
            numberOfVirtualNetworkLinksWithRegistration=len(registering),
            maxNumberOfVirtualNetworkLinksWithRegistration=100,
        )


class VirtualNetworkLink(ResourceBehaviour):
    kind = f"{ZONE}/virtualnetworklinks"
    references = (("properties.virtualNetwork.id", "virtualnetworks"),)

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        body["properties"]["virtualNetworkLinkState"] = "Completed"


class ARecordSet(ResourceBehaviour):
    kind = f"{ZONE}/a"
    lro = None
    tracked = False

    def derive(self, state: State, resource: Resource, body: Json, provisioning: str) -> None:
        properties = body["properties"]
        zone_name = (resource.parent or "").rsplit("/", 1)[-1]
        properties.setdefault("fqdn", f"{resource.id.rsplit('/', 1)[-1]}.{zone_name}.")
        properties.setdefault("isAutoRegistered", False)


class PrivateDnsZoneGroup(ResourceBehaviour):
    kind = "microsoft.network/privateendpoints/privatednszonegroups"
    tracked = False

    def after_put(self, state: State, resource: Resource, previous: Resource | None) -> None:
        """An A record for its endpoint's address in each zone it names, which goes with it."""
        endpoint = state.get(resource.parent or "")
        if endpoint is None:
            return
        ip = get_path(endpoint.body, "properties._ip")
        name = endpoint.id.rsplit("/", 1)[-1]
        for config in get_path(resource.body, "properties.privateDnsZoneConfigs") or []:
            zone = state.get(get_path(config, "properties.privateDnsZoneId") or "")
            if zone is not None and ip:
                record = {
                    "properties": {
                        "ttl": 10,
                        "aRecords": [{"ipv4Address": ip}],
                        "fqdn": f"{name}.{zone.id.rsplit('/', 1)[-1]}.",
                    }
                }
                body = {**record, "etag": new_etag(), "_registeredBy": endpoint.key}
                state.put(f"{zone.id}/A/{name}", body, zone.id)

    def after_delete(self, state: State, resource: Resource) -> None:
        forget_records(state, resource.parent)
