"""Turn one engine walk into the status users read: conditions, discovered facts, the drift report."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.api.rules import usable_addresses
from secureml_operator.azure.ids import ArmId, id_key, same_id
from secureml_operator.desired.allowlists import egress_ips
from secureml_operator.desired.approvals import endpoint_rules, ours_pending
from secureml_operator.desired.fields import Json, get_path
from secureml_operator.desired.graph import DesiredGraph, Lifecycle, LiveLookup
from secureml_operator.desired.observed import Observed
from secureml_operator.desired.roles import PRIVATE_ENDPOINTS, Role
from secureml_operator.desired.vnet import declared_subnets, subnet_name
from secureml_operator.engine.conflicts import CONFLICT_THRESHOLD, RESET_ANNOTATION, Conflicts
from secureml_operator.engine.engine import Action, Change, NodeResult, Outcome, RunReport
from secureml_operator.engine.ledger import IP_RULE, Ledger
from secureml_operator.failures import Failure, classify
from secureml_operator.status import conditions as c
from secureml_operator.status import isolation
from secureml_operator.status.conditions import Condition, now

DRIFT_ITEMS_KEPT = 20


def first_failure(report: RunReport) -> Failure | None:
    """The failure to report: a permanent one wins, since retrying cannot clear it."""
    classified = [(result.id, classify(result.error)) for result in report.failures if result.error is not None]
    if not classified:
        return None
    resource, failure = min(classified, key=lambda item: item[1].transient)
    return type(failure)(failure.reason, f"{resource}: {failure.message}")


def _live(report: RunReport, role: Role) -> Json | None:
    """The live body the walk ended with for the one node of this role."""
    result = report.one(role)
    return result.live if result is not None else None


def facts(spec: SecureMLWorkspaceSpec, report: RunReport) -> dict[str, Any]:
    """What users need from Azure: workspace id and network status, private endpoint IP."""
    status: dict[str, Any] = {
        "isolation": spec.outbound.managed_network.isolation_mode if spec.outbound.managed_network else "CustomerVNet"
    }
    workspace = _live(report, Role.WORKSPACE)
    if workspace is not None:
        network = get_path(workspace, "properties.managedNetwork.status") or {}
        status["workspace"] = {
            "id": workspace.get("id"),
            "managedNetworkStatus": network.get("status"),
            "sparkReady": network.get("sparkReady"),
        }
    endpoint = _live(report, Role.WORKSPACE_PRIVATE_ENDPOINT)
    if endpoint:
        configs = get_path(endpoint, "properties.customDnsConfigs") or []
        addresses = [ip for config in configs for ip in config.get("ipAddresses", [])]
        fqdns = [config["fqdn"] for config in configs if config.get("fqdn")]
        status["privateEndpoint"] = {"ipAddress": addresses[0] if addresses else None, "fqdns": fqdns}
    return status


def customer_network_facts(spec: SecureMLWorkspaceSpec, report: RunReport, observed: Observed) -> dict[str, Any]:
    """egressIPs, subnet capacity and the effective default route."""
    network = spec.outbound.customer_network
    if network is None:
        return {}
    ips = egress_ips((result.live for result in report.by_role(Role.EGRESS_PUBLIC_IP)), observed)
    endpoints = report.by_role(*PRIVATE_ENDPOINTS)
    capacity = [
        {
            "role": role.value,
            "name": subnet_name(role, subnet),
            "addressPrefix": subnet.address_prefix,
            "capacity": usable_addresses(subnet.address_prefix),
            "used": len(_nics_in(report.one(role.node_role), endpoints)),
            "expected": subnet.expected_addresses,
        }
        for role, subnet in declared_subnets(network)
    ]
    return {
        "egressIPs": list(ips),
        "subnets": capacity,
        "defaultRoute": _default_route(_live(report, Role.TRAINING_SUBNET) or {}, report.lookup),
    }


def _nics_in(subnet: NodeResult | None, endpoints: list[NodeResult]) -> set[str]:
    """One address per NIC (compute node or private endpoint): those the subnet listed when read,
    and those of endpoints this walk created in it afterwards."""
    if subnet is None:
        return set()
    configurations = get_path(subnet.live or {}, "properties.ipConfigurations") or []
    nics = {id_key(str(config.get("id", ""))).split("/ipconfigurations/")[0] for config in configurations}
    for endpoint in endpoints:
        body = endpoint.live or {}
        if same_id(get_path(body, "properties.subnet.id"), subnet.id):
            nics |= {id_key(str(nic.get("id", ""))) for nic in get_path(body, "properties.networkInterfaces") or []}
    return nics


def _default_route(training: Json, live: LiveLookup) -> dict[str, Any]:
    """What 0.0.0.0/0 resolves to on the training subnet, from its route table and NAT gateway."""
    nat = get_path(training, "properties.natGateway.id")
    table_id = get_path(training, "properties.routeTable.id")
    table = live(ArmId.parse(table_id).key) if table_id else None
    routes = [route.get("properties") or {} for route in get_path(table or {}, "properties.routes") or []]
    default = next((route for route in routes if route.get("addressPrefix") == "0.0.0.0/0"), None)
    if default is not None:
        hop = {"nextHopType": default.get("nextHopType"), "nextHopIpAddress": default.get("nextHopIpAddress")}
        return {**hop, "source": "User"} | ({"natGateway": nat} if default.get("nextHopType") == "Internet" else {})
    return {"nextHopType": "Internet", "source": "Default"} | ({"natGateway": nat} if nat else {})


def ledger_facts(ledger: Ledger) -> dict[str, Any]:
    """`status.ledger`, and `status.allowlistedEgress`: the IPs each target's IP rules hold for us."""
    by_target: dict[str, list[str]] = {}
    for entry in ledger.entries.values():
        if entry.type == IP_RULE and entry.name:
            by_target.setdefault(entry.id, []).append(entry.name)
    allowlisted = [{"target": target, "ips": sorted(ips)} for target, ips in sorted(by_target.items())]
    return {"ledger": ledger.as_status(), "allowlistedEgress": allowlisted}


def owned_resources(graph: DesiredGraph, report: RunReport) -> list[dict[str, Any]]:
    """What the operator owns in Azure, with its provisioning state."""
    resources = []
    for node in graph:
        if node.lifecycle is Lifecycle.EXTERNAL:
            continue
        result = report.results.get(node.key)
        if result is None or result.live is None:
            continue
        resources.append({"id": str(node.id), "type": node.id.type, "state": result.state or "Succeeded"})
    return resources


def drift_items(changes: Iterable[Change], previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stamp = now()
    fresh = [
        {
            "resource": change.resource,
            "field": change.field,
            "expected": change.expected[:200],
            "actual": change.actual[:200],
            "action": change.action.value,
            "time": stamp,
        }
        for change in changes
    ]
    return (fresh + list(previous))[:DRIFT_ITEMS_KEPT]


def isolation_conditions(
    spec: SecureMLWorkspaceSpec,
    report: RunReport,
    observed: Observed,
    allowlist_widest_prefix: int,
) -> list[Condition]:
    """InboundIsolated and OutboundIsolated from the live bodies of this walk (status/isolation.py).
    `observed`: what preflight read (the firewall's private IP is the declared egress)."""
    workspace = _live(report, Role.WORKSPACE)
    inbound = isolation.inbound(workspace, allowlist_widest_prefix)
    managed = spec.outbound.managed_network
    if managed is not None:
        return [inbound, isolation.managed_outbound(workspace, managed.provision_now)]
    firewall_ip = (observed or Observed()).firewall_private_ip
    return [inbound, isolation.customer_outbound(spec, report, firewall_ip)]


def pending_approvals(spec: SecureMLWorkspaceSpec, graph: DesiredGraph, report: RunReport) -> list[str] | None:
    """Connections our PrivateEndpoint rules created that are still Pending after this walk
    (None when the spec has no PrivateEndpoint rule)."""
    managed = spec.outbound.managed_network
    if managed is None or not any(rule.private_endpoint for rule in managed.rules):
        return None
    pending = []
    rules = endpoint_rules(spec)
    workspace = _live(report, Role.WORKSPACE)
    for node in graph:
        result = report.results.get(node.key)
        if node.role is not Role.APPROVAL_TARGET or result is None:
            continue
        approved_now = {id_key(change.resource) for change in result.changes if change.action is Action.CORRECTED}
        for connection in ours_pending(result.live or {}, workspace, rules.get(node.key, [])):
            connection_id = node.id.child("privateEndpointConnections", connection["name"])
            if connection_id.key not in approved_now:
                pending.append(f"{node.id.name}/{connection['name']}")
    return pending


def approval_condition(pending: list[str]) -> Condition:
    if pending:
        return Condition(
            c.PRIVATE_ENDPOINTS_APPROVED, False, "ApprovalPending",
            f"waiting for approval on the target resources: {', '.join(pending)} (or set autoApprove)",
        )  # fmt: skip
    return Condition(c.PRIVATE_ENDPOINTS_APPROVED, True, "Approved", "every managed private endpoint is approved")


CONFLICT_REASONS = ("ConflictingWriter", "WriteReverted")  # InSync=False reasons that also mean not Ready


def sync_condition(report: RunReport, conflicts: Conflicts, detect: bool) -> Condition:
    by_action: dict[Action, list[Change]] = {}
    for change in report.changes:
        by_action.setdefault(change.action, []).append(change)
    if conflicts.stopped:
        fights = sorted((fight for fight in conflicts.fights.values() if fight.stopped), key=lambda fight: fight.key)
        named = ", ".join(
            f"{fight.resource.rsplit('/', 1)[-1]}:{fight.field}"
            + (f" (last changed by {fight.writer})" if fight.writer else "")
            for fight in fights
        )
        return Condition(
            c.IN_SYNC,
            False,
            "ConflictingWriter",
            f"another writer keeps changing {named} back; stopped correcting it after {CONFLICT_THRESHOLD} sweeps "
            f"(see status.conflicts; change the spec, or give the annotation {RESET_ANNOTATION} a new value, "
            "to resume)",
        )
    if reverted := by_action.get(Action.REVERTED):
        fields = ", ".join(sorted({f"{change.resource.rsplit('/', 1)[-1]}:{change.field}" for change in reverted}))
        return Condition(
            c.IN_SYNC,
            False,
            "WriteReverted",
            f"Azure did not keep {fields}: a policy or another writer set it back as it was written",
        )
    if detected := by_action.get(Action.DETECTED):
        mode = "Detect mode: not corrected" if detect else "not corrected yet"
        return Condition(c.IN_SYNC, False, "DriftDetected", f"{len(detected)} difference(s) found ({mode})")
    if reported := by_action.get(Action.REPORTED):
        return Condition(
            c.IN_SYNC,
            True,
            "InSyncWithExtras",
            f"{len(reported)} resource(s) not in the spec kept under the Additive policy (see status.drift)",
        )
    return Condition(c.IN_SYNC, True, "InSync", "Azure matches the spec")


def outcome_summary(report: RunReport) -> str:
    counts: dict[Outcome, int] = {}
    for result in report.results.values():
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return ", ".join(f"{count} {outcome.value.lower()}" for outcome, count in sorted(counts.items(), key=str))
