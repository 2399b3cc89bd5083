"""Status from a walk: every result carries its node's role, and status finds what it reports by role
(the workspace, its private endpoint, the subnets, our egress IPs, the approval targets), never by
ARM type or position."""

from __future__ import annotations

from collections import Counter
from typing import cast

import kopf
import pytest
from armfake import ArmFake
from litware import litware, seeded_fake, spec
from plancases import CASES, Case, pending_connection

from secureml_operator import preflight
from secureml_operator.api.models import SecureMLWorkspaceSpec, Subnet, Subnets
from secureml_operator.api.rules import SUBNET_ROLES
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.fields import Json, get_path
from secureml_operator.desired.graph import DesiredGraph
from secureml_operator.desired.observed import Observed
from secureml_operator.desired.plan import plan
from secureml_operator.desired.roles import Role, SubnetRole
from secureml_operator.engine.engine import Engine, Mode, RunReport
from secureml_operator.engine.ledger import Ledger
from secureml_operator.engine.ownership import Owner
from secureml_operator.reconciler import status_operations
from secureml_operator.status import report as status

OWNER = Owner("team-a", "litware", "0d5e1c2a-0000-4000-8000-00000000000a")
SEVERAL = {  # the roles several nodes of one graph may have; status asks for each other role's one node
    Role.APPROVAL_TARGET,
    Role.EGRESS_PUBLIC_IP,
    Role.DEPENDENCY_PRIVATE_ENDPOINT,
    Role.DNS_ZONE,
    Role.DNS_LINK,
    Role.DNS_ZONE_GROUP,
    Role.ALLOWLIST_TARGET,
}


async def _walk(
    fake: ArmFake, workspace: SecureMLWorkspaceSpec, ledger: Ledger, mode: Mode = Mode.ENFORCE
) -> tuple[DesiredGraph, RunReport]:
    graph = plan(workspace, await preflight.observe(cast(ArmClient, fake), workspace))
    return graph, await Engine(cast(ArmClient, fake), OWNER, ledger, mode).converge(graph)


def _addresses(fake: ArmFake) -> None:
    """What Azure fills in once things run: each private endpoint's NIC and DNS record, in each subnet
    a VM's NIC with two IP configurations."""
    for number, key in enumerate(sorted(fake.ids()), 1):
        arm_id = ArmId.parse(key)
        if arm_id.type.lower() == "microsoft.network/privateendpoints":
            dns = [{"fqdn": f"{arm_id.name}.example", "ipAddresses": [f"10.0.20.{number}"]}]
            fake.set_field(arm_id, "properties.customDnsConfigs", dns)
            fake.set_field(arm_id, "properties.networkInterfaces", [{"id": f"{key}.nic"}])
        if arm_id.type.lower() == "microsoft.network/virtualnetworks/subnets":
            nics = litware(f"Microsoft.Network/networkInterfaces/vm{number}")
            configs = [{"id": str(nics.child("ipConfigurations", name))} for name in ("ipconfig1", "ipconfig2")]
            fake.set_field(arm_id, "properties.ipConfigurations", configs)


def test_subnet_roles_are_the_ones_the_api_names() -> None:
    assert [role.value for role in SubnetRole] == list(SUBNET_ROLES)
    every = Subnets(training=Subnet(address_prefix="10.0.0.0/24"), scoring=Subnet(address_prefix="10.0.1.0/24"),
                    private_endpoints=Subnet(address_prefix="10.0.2.0/24"))  # fmt: skip
    assert [role for role, _ in every.roles()] == list(SubnetRole)
    assert [role for role in SubnetRole if role.compute] == [SubnetRole.TRAINING, SubnetRole.SCORING]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_role_for_one_resource_is_one_nodes(case: Case) -> None:
    counts = Counter(node.role for node in plan(case.spec(), case.observed))
    assert {role for role, count in counts.items() if count > 1} <= SEVERAL


async def test_results_carry_their_nodes_role_and_status_finds_them_by_it() -> None:
    fake, ledger, workspace = seeded_fake(), Ledger(), spec("03")
    graph, report = await _walk(fake, workspace, ledger)
    assert all(report.results[node.key].role is node.role for node in graph)
    training = report.one(Role.TRAINING_SUBNET)
    assert training is not None and training.id.endswith("/subnets/training")
    assert len(report.by_role(Role.DEPENDENCY_PRIVATE_ENDPOINT)) == 4
    with pytest.raises(ValueError, match="4 nodes have the role dependencyPrivateEndpoint"):
        report.one(Role.DEPENDENCY_PRIVATE_ENDPOINT)

    _addresses(fake)
    _, report = await _walk(fake, workspace, ledger, Mode.DETECT)
    endpoint = report.one(Role.WORKSPACE_PRIVATE_ENDPOINT)
    assert endpoint is not None and endpoint.id.endswith("/privateEndpoints/pe-mlw-litware-nat")
    (dns,) = get_path(endpoint.live or {}, "properties.customDnsConfigs")
    expected = {"ipAddress": dns["ipAddresses"][0], "fqdns": ["pe-mlw-litware-nat.example"]}
    assert status.facts(workspace, report)["privateEndpoint"] == expected
    network = status.customer_network_facts(workspace, report, Observed())
    used = {subnet["role"]: subnet["used"] for subnet in network["subnets"]}
    assert used == {"training": 1, "scoring": 1, "privateEndpoints": 1 + 5}, "one per NIC, and our 5 endpoints'"
    public_ip = report.one(Role.EGRESS_PUBLIC_IP)
    assert public_ip is not None and network["egressIPs"] == [get_path(public_ip.live or {}, "properties.ipAddress")]

    teardown = await Engine(cast(ArmClient, fake), OWNER, ledger).teardown(graph)
    roles = {result.role for result in teardown.results.values()}
    assert roles == {Role.ALLOWLIST_TARGET, None}, "the allowlist cleaned up is a node; what is deleted, ledger entries"


async def test_the_private_endpoint_reported_is_the_workspaces_not_a_dependencys() -> None:
    def public(body: Json) -> None:
        body["inbound"] = {"publicNetworkAccess": "Enabled"}

    fake, ledger, workspace = seeded_fake(), Ledger(), spec("03", public)
    await _walk(fake, workspace, ledger)
    _addresses(fake)
    _, report = await _walk(fake, workspace, ledger, Mode.DETECT)
    assert report.by_role(Role.DEPENDENCY_PRIVATE_ENDPOINT) and "privateEndpoint" not in status.facts(workspace, report)


async def test_pending_connections_are_found_on_the_approval_targets() -> None:
    case = next(case for case in CASES if case.name == "endpoint-rules-sharing-a-target")
    fake, ledger, workspace = seeded_fake(), Ledger(), case.spec()
    graph, report = await _walk(fake, workspace, ledger)
    assert status.pending_approvals(workspace, graph, report) == []
    result = report.one(Role.WORKSPACE)
    ours = result.live if result is not None else None
    managed = workspace.outbound.managed_network
    assert ours is not None and managed is not None
    group = f"resourceGroups/azureml-managed-{get_path(ours, 'properties.workspaceId')}"
    for rule in managed.rules:
        if rule.private_endpoint is not None:  # what Azure ML's managed network asks each target for
            target = ArmId.parse(rule.private_endpoint.service_resource_id)
            endpoint = f"/subscriptions/{target.subscription}/{group}/providers/Microsoft.Network/privateEndpoints"
            connection = pending_connection(f"{endpoint}/{ours['name']}-{rule.name}")
            fake.seed(target.child("privateEndpointConnections", connection["name"]), dict(connection))
    graph, report = await _walk(fake, workspace, ledger, Mode.DETECT)
    pending = status.pending_approvals(workspace, graph, report) or []
    assert sorted(name.split("/")[0] for name in pending) == ["dlslitware", "dlslitware", "kv-litware"]
    graph, report = await _walk(fake, workspace, ledger)
    assert [name.split("/")[0] for name in status.pending_approvals(workspace, graph, report) or []] == ["kv-litware"]


def test_status_operations_name_only_what_changed_dicts_key_by_key_lists_whole() -> None:
    stored = {
        "drift": {"lastCheckTime": "2026-12-03T07:00:00Z", "correctionsTotal": 2},
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "InSync", "status": "True"}],
        "hubPeering": {"state": "Connected"},
        "a/b~c": 1,
    }
    patch = kopf.Patch()
    patch.status["hubPeering"] = None
    patch.status["a/b~c"] = 2
    patch.status["pendingPrivateEndpoints"] = []

    def transform(body: kopf.RawBody) -> None:
        status = body["status"]  # type: ignore[index]
        status["drift"] = {**status["drift"], "lastCheckTime": "2026-12-03T07:04:00Z"}
        status["conditions"][1]["status"] = "False"

    patch.fns.append(transform)
    operations = status_operations(patch, stored)
    assert sorted(operations, key=lambda operation: operation["path"]) == [
        {"op": "replace", "path": "/status/a~1b~0c", "value": 2},
        {
            "op": "replace",
            "path": "/status/conditions",
            "value": [{"type": "Ready", "status": "True"}, {"type": "InSync", "status": "False"}],
        },
        {"op": "replace", "path": "/status/drift/lastCheckTime", "value": "2026-12-03T07:04:00Z"},
        {"op": "remove", "path": "/status/hubPeering"},
        {"op": "add", "path": "/status/pendingPrivateEndpoints", "value": []},
    ]
    assert stored["conditions"][1]["status"] == "True", "the stored status is left as it was"
    assert status_operations(kopf.Patch(), stored) == []
    first = kopf.Patch()
    first.status["phase"] = "new"
    assert status_operations(first, None) == [{"op": "add", "path": "/status", "value": {"phase": "new"}}]
