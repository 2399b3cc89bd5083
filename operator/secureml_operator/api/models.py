"""The SecureMLWorkspace API (secureml.io/v1alpha1): the single source of truth for spec and status.

The CRD in crds/ is generated from these models (`make crds`); field descriptions become
`kubectl explain` text, and each model's cross-field rules (api/rules.py) become CEL rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from secureml_operator.api.duration import DURATION
from secureml_operator.api.presets import PRESET_FQDNS
from secureml_operator.api.rules import MAX_PORT, SERVICE_TAG, Rule, rules_for

GROUP, VERSION, KIND, PLURAL = "secureml.io", "v1alpha1", "SecureMLWorkspace", "securemlworkspaces"

ARM_ID = r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^/]+/.+$"
NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$"
# RE2's \w, which the API server applies to the CRD's patterns, spelled out: pydantic's (Rust) regex
# reads \w as every Unicode word character, and these patterns' automata held 21 MiB of the RSS.
WORD = "A-Za-z0-9_"
RESOURCE_GROUP = rf"[-{WORD}.()]{{1,90}}"
CHILD_NAME = rf"^[{WORD}.-]{{1,80}}$"  # a subnet, security rule or route

ArmId = Annotated[str, Field(pattern=ARM_ID, max_length=400)]
Cidr = Annotated[str, Field(max_length=43)]
Policy = Literal["Authoritative", "Additive"]
PresetName = Literal["PythonPackages", "HuggingFace", "DockerHub", "VSCode"]


class Model(BaseModel):
    """camelCase on the wire, unknown fields refused, and the rules of api/rules.py enforced
    (`cross_field_rules` says where a family of models keeps its rules)."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        frozen=True,
        use_attribute_docstrings=True,
    )
    cross_field_rules: ClassVar[Callable[[str], Sequence[Rule]]] = staticmethod(rules_for)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Model:
        for rule in type(self).cross_field_rules(type(self).__name__):
            if rule.check is not None and not rule.check(self):
                raise ValueError(rule.message)
        return self


class CredentialRef(Model):
    """A Secret in the resource's namespace with keys tenantId, clientId and clientSecret."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")


class Azure(Model):
    """Where the workspace lives and how the operator authenticates."""

    subscription_id: str = Field(pattern=r"^[0-9a-fA-F-]{36}$", description="Azure subscription id (a GUID).")
    resource_group: str = Field(
        pattern=rf"^{RESOURCE_GROUP}$", description="Resource group of the workspace; it must already exist."
    )
    location: str = Field(
        pattern=r"^[a-z0-9]{2,40}$",
        description="Azure region, e.g. brazilsouth; also names regional service tags.",
    )
    credential_ref: CredentialRef | None = Field(
        default=None,
        description="Service principal Secret to use instead of the operator's own (workload) identity.",
    )


class Identity(Model):
    """The workspace's managed identity."""

    type: Literal["SystemAssigned", "UserAssigned"] = Field(
        default="SystemAssigned", description="SystemAssigned or UserAssigned."
    )
    user_assigned_identity_id: ArmId | None = Field(
        default=None, description="Resource id of the user-assigned identity (type UserAssigned)."
    )


class Workspace(Model):
    """The Azure ML workspace: created if absent, adopted if present and not owned by another resource."""

    name: str = Field(pattern=NAME, description="Workspace name (3-33 letters, digits, '-' or '_').")
    storage_account_id: ArmId = Field(description="Existing storage account (cannot change after creation).")
    key_vault_id: ArmId = Field(description="Existing key vault (cannot change after creation).")
    container_registry_id: ArmId | None = Field(
        default=None,
        description="Existing container registry; Premium when it sits behind a private endpoint.",
    )
    application_insights_id: ArmId | None = Field(default=None, description="Existing Application Insights.")
    identity: Identity = Field(default_factory=Identity, description="The workspace's managed identity.")
    image_build_compute: str | None = Field(
        default=None,
        max_length=64,
        description="Compute cluster that builds images when the registry is private.",
    )


class PrivateEndpoint(Model):
    """The workspace's private endpoint (group amlworkspace) and its DNS."""

    subnet_id: ArmId | None = Field(default=None, description="Subnet for the endpoint, by resource id.")
    subnet_name: Literal["privateEndpoints"] | None = Field(
        default=None, description="With customerNetwork: the subnet role to use (privateEndpoints)."
    )
    private_dns_zones: Literal["Managed", "External"] = Field(
        default="Managed",
        description="Managed: create privatelink.api.azureml.ms and privatelink.notebooks.azure.net, link "
        "them to the VNet and register the endpoint; External: your DNS resolves the workspace.",
    )


class Inbound(Model):
    """Who may reach the workspace."""

    public_network_access: Literal["Enabled", "EnabledFromSelectedIPs", "Disabled"] = Field(
        default="Disabled",
        description="Enabled (anyone), EnabledFromSelectedIPs (allowedIpRanges only) or Disabled (private only).",
    )
    allowed_ip_ranges: list[Cidr] = Field(
        default_factory=list, max_length=200, description="IP addresses or CIDR ranges allowed in."
    )
    private_endpoint: PrivateEndpoint | None = Field(
        default=None,
        description="Private endpoint for the workspace; required when public access is Disabled.",
    )


class PrivateEndpointDestination(Model):
    """A private endpoint from the managed network to an Azure resource."""

    service_resource_id: ArmId = Field(description="The target resource, e.g. a storage account.")
    subresource_target: str = Field(
        min_length=1, max_length=64, description="The target's group id: blob, dfs, file, vault, registry..."
    )
    spark_enabled: bool = Field(default=False, description="Make the endpoint usable by serverless Spark.")
    auto_approve: bool = Field(
        default=False, description="Approve the Pending connection this rule creates on the target resource."
    )


class ServiceTagDestination(Model):
    """Outbound traffic to an Azure service tag."""

    tag: str = Field(pattern=SERVICE_TAG, description="Service tag, e.g. Storage.BrazilSouth.")
    protocol: Literal["TCP", "UDP", "ICMP", "*"] = Field(default="TCP", description="Protocol.")
    port_ranges: str = Field(
        default="443", max_length=100, pattern=r"^(\*|[0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?)*)$",
        description=f"Ports 1-{MAX_PORT}, e.g. 443 or 80,443 or 1000-2000, or * for all.",
    )  # fmt: skip


class OutboundRule(Model):
    """One managed-network outbound rule: exactly one of fqdn, privateEndpoint or serviceTag."""

    name: str = Field(pattern=NAME, max_length=33, description="Rule name, unique in the workspace.")
    fqdn: str | None = Field(
        default=None,
        pattern=r"^(\*\.)?[a-zA-Z0-9.-]{1,253}$",
        max_length=255,
        description="Allowed host name, e.g. pypi.org.",
    )
    ports: list[int] | None = Field(
        default=None,
        max_length=2,
        description="Not supported: Azure's FQDN rules have no port setting and always allow ports 80 and 443 "
        "only, so a rule that sets ports is refused (rather than its ports dropped unnoticed).",
    )
    private_endpoint: PrivateEndpointDestination | None = Field(default=None, description="Private endpoint rule.")
    service_tag: ServiceTagDestination | None = Field(default=None, description="Service tag rule.")


class ManagedNetwork(Model):
    """Outbound isolation through the workspace's managed virtual network."""

    isolation_mode: Literal["AllowInternetOutbound", "AllowOnlyApprovedOutbound"] = Field(
        description="AllowInternetOutbound, or AllowOnlyApprovedOutbound (only the rules below leave)."
    )
    firewall_sku: Literal["Standard", "Basic"] | None = Field(
        default=None, description="Managed firewall SKU for FQDN rules (AllowOnlyApprovedOutbound only)."
    )
    provision_now: bool = Field(default=True, description="Provision the managed network now, not at first compute.")
    spark_ready: bool = Field(default=False, description="Provision it for serverless Spark too.")
    rules_policy: Policy = Field(
        default="Authoritative",
        description="Authoritative: rules not listed here are removed; Additive: they are kept and reported.",
    )
    rules: list[OutboundRule] = Field(default_factory=list, max_length=100, description="User-defined rules.")
    presets: list[PresetName] = Field(
        default_factory=list, max_length=4, description=f"Curated FQDN sets: {', '.join(PRESET_FQDNS)}."
    )


class VirtualNetwork(Model):
    """The VNet: created by name, or an existing one by id (then only our subnets are touched)."""

    name: str | None = Field(default=None, pattern=rf"^[{WORD}.-]{{2,64}}$", description="Name of the VNet to create.")
    existing_id: ArmId | None = Field(default=None, description="Resource id of an existing VNet.")
    address_space: list[Cidr] = Field(
        default_factory=list, max_length=8, description="Address space of a created VNet, e.g. [10.0.0.0/16]."
    )


class Subnet(Model):
    """One subnet of the customer VNet."""

    address_prefix: Cidr = Field(description="IPv4 CIDR, e.g. 10.0.40.0/24.")
    name: str | None = Field(default=None, pattern=CHILD_NAME, description="Subnet name (default: its role).")
    expected_addresses: int = Field(
        default=0, ge=0, le=65531, description="Addresses it must hold: compute nodes, or private endpoints."
    )


class Subnets(Model):
    """Subnets by role."""

    training: Subnet = Field(description="Compute clusters and instances for training.")
    scoring: Subnet | None = Field(default=None, description="Inference compute.")
    private_endpoints: Subnet | None = Field(default=None, description="Private endpoints.")

    def roles(self) -> list[tuple[str, Subnet]]:
        named = [
            ("training", self.training),
            ("scoring", self.scoring),
            ("privateEndpoints", self.private_endpoints),
        ]
        return [(role, subnet) for role, subnet in named if subnet is not None]


class NatGateway(Model):
    """Egress through a NAT gateway: one stable public IP for target allowlists."""

    public_ip_count: int = Field(default=1, ge=1, le=16, description="Public IPs on the gateway.")
    idle_timeout_minutes: int = Field(default=4, ge=4, le=120, description="TCP idle timeout.")


class Firewall(Model):
    """Egress through a hub firewall: a UDR 0.0.0.0/0 to its private IP."""

    id: ArmId | None = Field(
        default=None,
        description="The Azure Firewall (Microsoft.Network/azureFirewalls): its private IP becomes the routes' "
        "next hop and its public IPs the egress IPs.",
    )
    policy_id: ArmId | None = Field(
        default=None,
        description="The hub firewall's policy (Microsoft.Network/firewallPolicies): the operator keeps one rule "
        "collection group `secureml-<workspace name>` in it, holding the application (FQDN) and network (service "
        "tag) allow rules Azure ML needs in the workspace's region, from the compute subnets; the group is created, "
        "kept in sync and deleted with this resource.",
    )
    private_ip_address: str | None = Field(
        default=None,
        max_length=15,
        description="The firewall's private IPv4 address, the routes' next hop (without id).",
    )
    hub_virtual_network_id: ArmId | None = Field(default=None, description="The hub VNet to peer with.")
    peering: bool = Field(default=True, description="Create the spoke-to-hub peering.")
    peer_from_hub: bool = Field(
        default=False,
        description="Also create the hub's peering back to this spoke (`to-<spoke VNet>` on the hub VNet), for a "
        "hub this namespace may change; otherwise the hub's owner peers back, and the resource is not Ready until "
        "both sides are Connected.",
    )


class NoEgress(Model):
    """No egress path: only with computePublicIp."""


class Egress(Model):
    """How compute reaches the internet: exactly one of natGateway, firewall or none."""

    nat_gateway: NatGateway | None = Field(default=None, description="Through a NAT gateway.")
    firewall: Firewall | None = Field(default=None, description="Through a hub firewall.")
    none: NoEgress | None = Field(default=None, description="No managed egress (compute has public IPs).")


class SecurityRule(Model):
    """An extra NSG rule in ARM terms."""

    name: str = Field(pattern=CHILD_NAME, max_length=80, description="Rule name.")
    priority: int = Field(ge=100, le=4096, description="100-4096; lower wins.")
    direction: Literal["Inbound", "Outbound"] = Field(description="Inbound or Outbound.")
    access: Literal["Allow", "Deny"] = Field(description="Allow or Deny.")
    protocol: Literal["Tcp", "Udp", "Icmp", "*"] = Field(default="Tcp", description="Protocol.")
    source_address_prefix: str = Field(
        default="*", max_length=100, description="Source: *, an IPv4 address or CIDR, or a service tag."
    )
    destination_address_prefix: str = Field(
        default="*", max_length=100, description="Destination: *, an IPv4 address or CIDR, or a service tag."
    )
    destination_port_ranges: list[Annotated[str, Field(max_length=11)]] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=16,
        description=f"Destination ports 1-{MAX_PORT} and ranges, e.g. [443, 8000-8080], or [*] for all.",
    )


class NetworkSecurity(Model):
    """NSG rules and route policy for the compute subnets."""

    rules_policy: Policy = Field(
        default="Authoritative",
        description="Authoritative: NSG rules and routes not declared are removed; Additive: kept, reported.",
    )
    extra_rules: list[SecurityRule] = Field(default_factory=list, max_length=50, description="Extra NSG rules.")


class Route(Model):
    """An extra route on the compute subnets' route table."""

    name: str = Field(pattern=CHILD_NAME, max_length=80, description="Route name.")
    address_prefix: str = Field(max_length=64, description="Destination IPv4 CIDR or service tag.")
    next_hop_type: Literal["VirtualAppliance", "Internet", "VnetLocal", "VirtualNetworkGateway", "None"] = Field(
        description="Next hop type."
    )
    next_hop_ip_address: str | None = Field(
        default=None,
        max_length=15,
        description="The appliance's private IPv4 address: required with VirtualAppliance, refused otherwise.",
    )


class CustomerNetwork(Model):
    """Outbound isolation through your own VNet."""

    virtual_network: VirtualNetwork = Field(description="The VNet.")
    subnets: Subnets = Field(description="Subnets by role.")
    compute_public_ip: bool = Field(default=False, description="Give compute public IPs (false: no-public-IP compute).")
    private_endpoints_for_dependencies: bool = Field(
        default=True, description="Private endpoints for storage (blob, file), key vault and registry."
    )
    service_endpoints: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Service endpoints on compute subnets, e.g. Microsoft.Storage.",
    )
    data_exfiltration_protection: bool = Field(
        default=False,
        description="A service endpoint policy on the training subnet allowing only Azure ML and the "
        "workspace's storage account.",
    )
    egress: Egress = Field(description="How compute reaches the internet.")
    allowlist_egress_on: list[ArmId] = Field(
        default_factory=list, max_length=20, description="Resources whose IP rules get our egress IPs."
    )
    network_security: NetworkSecurity = Field(default_factory=NetworkSecurity, description="NSG rules and policy.")
    extra_routes: list[Route] = Field(default_factory=list, max_length=50, description="Extra routes.")


class Outbound(Model):
    """Where compute may go: exactly one of managedNetwork or customerNetwork."""

    managed_network: ManagedNetwork | None = Field(default=None, description="The workspace's managed network.")
    customer_network: CustomerNetwork | None = Field(default=None, description="Your own VNet.")

    @property
    def hub_firewall(self) -> Firewall | None:
        """The hub firewall a customer network's compute egresses through, if it has one."""
        return self.customer_network.egress.firewall if self.customer_network is not None else None


class Drift(Model):
    """How drift in Azure is handled."""

    mode: Literal["Enforce", "Detect"] = Field(default="Enforce", description="Enforce corrects; Detect reports.")
    interval: str | None = Field(
        default=None,
        pattern=DURATION,
        min_length=2,
        max_length=16,
        description="Time between sweeps (at least 10s), e.g. 60s; unset: the operator's default "
        "(SMLW_DRIFT_INTERVAL, 60s unless the installation says otherwise).",
    )


class Spec(Model):
    """How one Azure ML workspace is isolated."""

    azure: Azure = Field(description="Subscription, resource group, region, credentials.")
    workspace: Workspace = Field(description="The workspace and its dependencies.")
    inbound: Inbound = Field(description="Who may reach the workspace.")
    outbound: Outbound = Field(description="Where compute may go: exactly one of managedNetwork or customerNetwork.")
    drift: Drift = Field(default_factory=Drift, description="Drift detection and correction.")
    deletion_policy: Literal["Delete", "Retain"] = Field(
        default="Delete",
        description="Delete: remove what the operator created; Retain: leave Azure untouched.",
    )
    adoption: Literal["Never", "Adopt"] = Field(
        default="Never",
        description="What to do with a resource the spec names that exists and was not created by this resource "
        "(a workspace, or a subnet in an existing VNet): Never refuses it (Stalled, reason ExistsUnowned, nothing "
        "written); Adopt manages it to the spec and never deletes it.",
    )


SecureMLWorkspaceSpec = Spec


class Condition(BaseModel):
    """metav1.Condition."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    type: str = Field(description="Ready, Reconciling, Stalled, InboundIsolated, OutboundIsolated, InSync...")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason.")
    message: str = Field(description="Human-readable detail.")
    observed_generation: int | None = Field(default=None, description="Generation the condition describes.")
    last_transition_time: str = Field(description="When status last changed.")


class StatusModel(BaseModel):
    """Status objects: camelCase on the wire, like the spec."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class WorkspaceStatus(StatusModel):
    id: str | None = Field(default=None, description="ARM id of the workspace.")
    managed_network_status: str | None = Field(default=None, description="Inactive or Active.")
    spark_ready: bool | None = Field(default=None, description="Managed network provisioned for Spark.")


class PrivateEndpointStatus(StatusModel):
    ip_address: str | None = Field(default=None, description="Private IP of the workspace endpoint.")
    fqdns: list[str] = Field(default_factory=list, description="Names registered for the endpoint.")


class DriftItem(StatusModel):
    resource: str = Field(description="ARM id.")
    field: str = Field(description="The owned field that differed.")
    expected: str = Field(description="Value the spec declares.")
    actual: str = Field(description="Value found in Azure.")
    action: str = Field(description="Corrected, Detected, Reported (Additive) or Skipped (conflicting writer).")
    time: str = Field(description="When it was found.")


class DriftStatus(StatusModel):
    last_check_time: str | None = Field(
        default=None,
        description="A recent drift sweep: refreshed when status changes, else at most every heartbeat (10m by "
        "default); the metric secureml_drift_last_check_timestamp_seconds has every sweep.",
    )
    effective_interval: str | None = Field(
        default=None,
        description="The interval sweeps run at: spec.drift.interval, stretched when the sweeps of the subscription "
        "would not fit its share of ARM's read budget.",
    )
    corrections_total: int = Field(default=0, description="Differences corrected so far.")
    items: list[DriftItem] = Field(default_factory=list, description="Latest differences, newest first (max 20).")


class OwnedResource(BaseModel):
    id: str = Field(description="ARM id.")
    type: str = Field(description="ARM type.")
    state: str = Field(description="provisioningState.")


class LedgerEntry(StatusModel):
    id: str = Field(description="ARM id (for an ipRule: the target whose IP rules hold it).")
    type: str = Field(description="ARM type, or ipRule.")
    origin: Literal["Created", "Adopted", "Claimed", "Shared"] = Field(
        description="Created (deleted with this resource), Adopted (never deleted), Claimed (an IP rule that was "
        "there before us), Shared (private DNS zones and links: deleted only when nobody else uses them)."
    )
    identity: str | None = Field(default=None, description="Azure's identity for it (resourceGuid, workspaceId).")
    pending: bool | None = Field(default=None, description="A create announced and not confirmed yet.")
    name: str | None = Field(default=None, description="The IP address of an ipRule.")
    changed: list[str] = Field(default_factory=list, description="Adopted: the fields the operator changed.")


class SubnetStatus(StatusModel):
    role: str = Field(description="training, scoring or privateEndpoints.")
    name: str = Field(description="Subnet name.")
    address_prefix: str = Field(description="The subnet's CIDR.")
    capacity: int = Field(description="Usable addresses (Azure reserves 5 per subnet).")
    used: int = Field(description="Addresses in use: one per compute node and private endpoint.")
    expected: int | None = Field(default=None, description="spec expectedAddresses, when given.")


class DefaultRoute(StatusModel):
    next_hop_type: str = Field(description="Where 0.0.0.0/0 goes from the training subnet.")
    next_hop_ip_address: str | None = Field(default=None, description="For VirtualAppliance: the firewall.")
    source: str = Field(description="User (our route table) or Default (Azure's system route).")
    nat_gateway: str | None = Field(default=None, description="The NAT gateway that carries Internet traffic.")


class AllowlistEntry(StatusModel):
    target: str = Field(description="ARM id of an allowlistEgressOn target.")
    ips: list[str] = Field(default_factory=list, description="The egress IPs the operator put in its IP rules.")


class HubPeeringStatus(StatusModel):
    hub_virtual_network_id: str = Field(description="The hub VNet (egress.firewall.hubVirtualNetworkId).")
    name: str = Field(description="Our side of the peering, on the spoke VNet.")
    state: str = Field(description="Our side's peeringState: Initiated, Connected or Disconnected (Missing: absent).")
    remote_name: str | None = Field(default=None, description="The hub's peering back to the spoke, when it has one.")
    remote_state: str = Field(
        description="The hub side's peeringState; Missing when the hub has no peering back, Unknown when unread."
    )


class ConflictEntry(BaseModel):
    resource: str = Field(description="ARM id.")
    field: str = Field(description="The owned field, or `resource` when the fight is over its existence.")
    sweeps: int = Field(description="Consecutive sweeps that had to correct it, or whose correction did not stick.")
    since: str = Field(description="When the fight began.")
    stopped: bool = Field(description="True: the operator no longer corrects it (InSync=False, ConflictingWriter).")
    writer: str | None = Field(default=None, description="Who last changed it, where ARM says (systemData).")


class ConflictStatus(StatusModel):
    observed_generation: int = Field(description="The spec generation the counts belong to (a new one resets them).")
    reset: str | None = Field(
        default=None, description="The secureml.io/reset-conflicts annotation the counts began under."
    )
    fields: list[ConflictEntry] = Field(default_factory=list, description="Each field being fought over.")


class Status(BaseModel):
    """What the operator observed and did."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    observed_generation: int | None = Field(default=None, description="The spec generation last reconciled.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Reconciling, Stalled and more.")
    isolation: str | None = Field(default=None, description="Managed isolation mode, or CustomerVNet.")
    workspace: WorkspaceStatus | None = Field(default=None, description="The workspace in Azure.")
    private_endpoint: PrivateEndpointStatus | None = Field(default=None, description="The workspace endpoint.")
    egress_ips: list[str] = Field(
        default_factory=list, alias="egressIPs", description="Public IPs compute traffic leaves from."
    )
    subnets: list[SubnetStatus] = Field(default_factory=list, description="Customer VNet subnets and their capacity.")
    default_route: DefaultRoute | None = Field(
        default=None, description="The effective route for 0.0.0.0/0 from the training subnet."
    )
    allowlisted_egress: list[AllowlistEntry] = Field(
        default_factory=list, description="Egress IPs on allowlistEgressOn targets (removed when they change)."
    )
    drift: DriftStatus | None = Field(default=None, description="The drift report.")
    resources: list[OwnedResource] = Field(default_factory=list, description="What the operator owns in Azure.")
    ledger: list[LedgerEntry] | None = Field(
        default=None,
        description="Every Azure resource, child and IP rule this resource created or adopted: teardown deletes "
        "exactly its Created entries. Written only by the operator (users get no access to the status subresource).",
    )
    pending_private_endpoints: list[str] = Field(
        default_factory=list, description="Private endpoint connections still waiting for approval."
    )
    hub_peering: HubPeeringStatus | None = Field(
        default=None, description="Both sides of the peering with the hub; Ready needs both Connected."
    )
    conflicts: ConflictStatus | None = Field(
        default=None,
        description="Fields another writer keeps changing back, counted across sweeps (engine/conflicts.py).",
    )
