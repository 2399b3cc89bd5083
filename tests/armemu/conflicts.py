"""Operations that take time and conflict, answered as Azure's resource providers answer them.

A write to a virtual network, NSG, route table, Azure Firewall policy or Azure ML workspace, or to one
of their children (subnets, peerings, security rules, routes, rule collection groups, outbound rules),
holds its parent's lock while its operation runs (`lro_seconds`). With `conflicts` on, another write
under a held lock is refused the way the provider refuses it; with `outbound_rule_loss` on, an
outbound-rule write that arrives while another rule operation of the same workspace runs is
acknowledged and silently dropped. What each answer is based on, and what is not verified, is in
docs/emulator.md.
"""

from __future__ import annotations

import math
import time

from armemu.arm import type_of
from armemu.kinds.firewall import FIREWALL_POLICY, RULE_COLLECTION_GROUP
from armemu.kinds.ml import OUTBOUND_RULE, WORKSPACE
from armemu.state import Json, Operation, State

LOCKED_TYPES = frozenset(
    {
        "microsoft.network/virtualnetworks",
        "microsoft.network/networksecuritygroups",
        "microsoft.network/routetables",
        FIREWALL_POLICY,
        WORKSPACE,
    }
)


def scope_of(resource_id: str) -> str | None:
    """The resource whose lock a write to `resource_id` takes (itself or its parent), if any."""
    parts = resource_id.strip("/").split("/")
    if len(parts) < 8 or parts[4].lower() != "providers" or f"{parts[5]}/{parts[6]}".lower() not in LOCKED_TYPES:
        return None
    return "/" + "/".join(parts[:8])


def operation_name(method: str, path: str) -> str:
    """How the network provider names an operation in its answers: `PutSubnetOperation`."""
    segments = path.rstrip("/").split("/")
    if method == "POST":  # an action: provisionManagedNetwork
        return f"{segments[-1][:1].upper()}{segments[-1][1:]}Operation"
    plural = segments[-2]
    return f"{'Delete' if method == 'DELETE' else 'Put'}{plural[:1].upper()}{plural[1:].removesuffix('s')}Operation"


def loses_rule(state: State, method: str, path: str) -> bool:
    """The `outbound_rule_loss` fault: a rule PUT while another rule operation of its workspace runs."""
    scope = scope_of(path)
    if not state.config.outbound_rule_loss or method != "PUT" or scope is None or type_of(path) != OUTBOUND_RULE:
        return False
    return any(type_of(operation.target) == OUTBOUND_RULE for operation in state.running_in(scope))


def blocking(state: State, method: str, path: str) -> Operation | None:
    """The running operation that refuses this write (`conflicts` on), if any: the one ending last."""
    scope = scope_of(path)
    if not state.config.conflicts or scope is None or loses_rule(state, method, path):
        return None
    return max(state.running_in(scope), key=lambda operation: operation.done_at, default=None)


def answer(method: str, path: str, operation: Operation, status_uri: str) -> tuple[int, Json, dict[str, str]]:
    """Status, body and headers of the refusal: Network answers a write to the locked resource itself
    429 RetryableError (RetryableErrorDueToAnotherOperation) and a write to a child 409
    AnotherOperationInProgress, but the delete of a rule collection group with its own code; Machine
    Learning answers 409 Conflict."""
    scope = scope_of(path) or path
    wait = max(1, math.ceil(operation.done_at - time.monotonic()))
    if method == "DELETE" and type_of(path) == RULE_COLLECTION_GROUP:
        message = (
            f"Firewall Policy Rule Collection Group {path.rstrip('/').rsplit('/', 1)[-1]} can not be deleted because "
            f"it is in Updating state from previous operation ID : {operation.id}."
        )
        return 409, _error("FirewallPolicyRuleCollectionGroupDeleteNotAllowedWhenUpdatingOrDeleting", message), {}
    if type_of(scope) == WORKSPACE:
        message = (
            "Conflict of operation, another operation on same entity is already running in workspace "
            f"{scope.rsplit('/', 1)[-1]}."
        )
        return 409, _error("Conflict", message), {}
    if path.rstrip("/").lower() == scope.lower():
        detail = {
            "code": "RetryableErrorDueToAnotherOperation",
            "message": f"Operation {operation.name} ({operation.id}) is updating resource {scope}. "
            f"The call can be retried in {wait} seconds.",
        }
        return 429, _error("RetryableError", "A retryable error occurred.", [detail]), {"Retry-After": str(wait)}
    message = (
        "Another operation on this or dependent resource is in progress. To retrieve status of the operation "
        f"use uri: {status_uri}."
    )
    return 409, _error("AnotherOperationInProgress", message), {}


def _error(code: str, message: str, details: list[Json] | None = None) -> Json:
    return {"error": {"code": code, "message": message, "details": details or []}}
