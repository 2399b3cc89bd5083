"""allowlistEgressOn (Role.ALLOWLIST_TARGET): our egress IPs in each target's IP rules, everyone
else's kept (Additive).

The NAT gateway's IPs are known only once its public IPs exist, so the rules are resolved during
the walk. An IP rule is added only when absent; one we added and no longer use (or on a target no
longer listed) is removed unless another resource still needs it (the ledger counts them: Observed's
`allowlisted` and `removable`). Where a target keeps its IP rules comes from azure/private_link.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure import private_link
from secureml_operator.azure.ids import ArmId, id_key
from secureml_operator.desired.fields import FieldRule, Json, Members, get_path
from secureml_operator.desired.graph import DesiredGraph, LiveLookup, Node, Resolver, Write
from secureml_operator.desired.nat_gateway import public_ip_ids
from secureml_operator.desired.observed import Observed
from secureml_operator.desired.roles import Role


def add_allowlists(graph: DesiredGraph, spec: SecureMLWorkspaceSpec, observed: Observed) -> None:
    network = spec.outbound.customer_network
    assert network is not None
    egress_nodes = tuple(ip.key for ip in public_ip_ids(spec))
    for target, keep in _targets(network.allowlist_egress_on, observed):
        target_id = ArmId.parse(target)
        graph.add(
            Node.external(
                target_id,
                Role.ALLOWLIST_TARGET,
                egress_nodes if keep else (),
                write=Write.PATCH,
                resolve=_resolver(target_id, egress_nodes, observed, keep),
                must_exist=keep,
            )
        )


def _targets(targets: list[str], observed: Observed) -> list[tuple[str, bool]]:
    """(target, still listed): the spec's targets, then those we allowlisted before and must clean up."""
    declared = {id_key(target) for target in targets}
    released = [target for target in observed.allowlisted if id_key(target) not in declared]
    return [(target, True) for target in targets] + [(target, False) for target in released]


def _resolver(target: ArmId, egress_nodes: tuple[str, ...], observed: Observed, keep: bool) -> Resolver:
    ip_rules = private_link.ip_rules_for(target.type)  # where the target's provider keeps them
    removable = observed.removable_on(str(target))

    def resolve(live: LiveLookup) -> tuple[FieldRule, ...]:
        ips = egress_ips((live(key) for key in egress_nodes), observed) if keep else ()
        rules = tuple(ip_rules.rule(ip) for ip in ips)
        stale = tuple({"value": ip} for ip in removable if ip not in ips)
        return (Members(ip_rules.path, rules, key="value", authoritative=False, forbidden=stale),)

    return resolve


def egress_ips(public_ips: Iterable[Json | None], observed: Observed) -> tuple[str, ...]:
    """The addresses compute traffic leaves from: our NAT gateway's public IPs (their live bodies),
    or the firewall's."""
    addresses = [get_path(body or {}, "properties.ipAddress") for body in public_ips]
    return tuple(sorted({str(ip) for ip in addresses if ip} | set(observed.firewall_egress_ips)))
