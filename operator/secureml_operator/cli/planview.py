"""What `plan` found, as data, as text for people and as JSON for CI, and its exit code.

Pure functions over the engine's Detect-mode report: no I/O. The JSON shape (`FORMAT_VERSION`) is
documented in docs/plan.md; a change to it that is not an addition bumps the version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from secureml_operator.engine.engine import Action, Change, Outcome, RunReport
from secureml_operator.failures import Failure, classify

FORMAT_VERSION = 1
EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2  # terraform plan -detailed-exitcode
PRESENT = "present"
# Failures that mean the plan itself could not look (no credentials, a spec the operator cannot
# read): an error of the plan, not something applying would run into.
PLAN_ERRORS = frozenset({"InvalidSpec", "AuthenticationFailed", "CredentialSecretNotFound", "CredentialSecretInvalid"})

Verb = Literal["create", "change", "remove"]


class PlanError(Exception):
    """The plan could not be made: one line for stderr, exit code 1."""


@dataclass(frozen=True)
class Step:
    """One thing applying the manifest would do in Azure."""

    action: Verb
    resource: str
    field: str | None = None
    before: str | None = None  # the live value ("from")
    after: str | None = None  # the spec's value ("to")


@dataclass(frozen=True)
class Kept:
    """A difference applying would leave alone."""

    resource: str
    why: Literal["AdditivePolicy", "ConflictingWriter"]  # an extra kept; a field another writer won
    field: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Something the operator would refuse or stall on (its Stalled reason), writing nothing for it."""

    reason: str
    message: str
    resource: str | None = None


@dataclass(frozen=True)
class WorkspacePlan:
    namespace: str
    name: str
    in_cluster: bool  # the SecureMLWorkspace exists: ownership was judged by its status.ledger
    resource_group: str  # the workspace's resource group id: text output shows ids relative to it
    steps: tuple[Step, ...] = ()
    kept: tuple[Kept, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    blocked: tuple[str, ...] = ()  # not looked at: a resource they depend on was refused

    def summary(self) -> dict[str, int]:
        return summarize([self])


def plan_error(failure: Failure) -> PlanError | None:
    """The error a failure is for the plan itself, or None when it is a refusal to report."""
    if failure.transient or failure.reason in PLAN_ERRORS:
        return PlanError(f"{failure.reason}: {failure.message}")
    return None


def step_of(change: Change) -> Step | Kept:
    """What applying would do about one difference a Detect-mode walk found."""
    if change.action is Action.SKIPPED:
        return Kept(change.resource, "ConflictingWriter", change.field)
    if change.action is Action.REPORTED:
        return Kept(change.resource, "AdditivePolicy")
    if change.field == "resource" and change.expected == PRESENT:
        return Step("create", change.resource)
    if change.field == "resource" and change.actual == PRESENT:
        return Step("remove", change.resource)
    return Step("change", change.resource, change.field, change.actual, change.expected)


def from_report(namespace: str, name: str, in_cluster: bool, resource_group: str, report: RunReport) -> WorkspacePlan:
    """The plan of one Detect-mode walk. Raises PlanError when the walk could not see Azure."""
    steps: list[Step] = []
    kept: list[Kept] = []
    refusals: list[Refusal] = []
    blocked: list[str] = []
    for result in report.results.values():
        for change in result.changes:
            step = step_of(change)
            if isinstance(step, Kept):
                kept.append(step)
            else:
                steps.append(step)
        if result.outcome is Outcome.FAILED and result.error is not None:
            failure = classify(result.error)
            error = plan_error(failure)
            if error is not None:
                raise PlanError(f"{result.id}: {error}") from result.error
            refusals.append(Refusal(failure.reason, failure.message, result.id))
        elif result.outcome is Outcome.BLOCKED:
            blocked.append(result.id)
    return WorkspacePlan(
        namespace, name, in_cluster, resource_group, tuple(steps), tuple(kept), tuple(refusals), tuple(blocked)
    )


def summarize(plans: Sequence[WorkspacePlan]) -> dict[str, int]:
    """Resources to create, to change (one or more fields) and to remove, and refusals."""
    steps = [step for plan in plans for step in plan.steps]
    return {
        "create": sum(1 for step in steps if step.action == "create"),
        "change": len({step.resource.lower() for step in steps if step.action == "change"}),
        "remove": sum(1 for step in steps if step.action == "remove"),
        "refused": sum(len(plan.refusals) for plan in plans),
    }


def exit_code(plans: Sequence[WorkspacePlan], errors: Sequence[str]) -> int:
    """1 on any error; 2 when applying would change something or be refused; 0 when nothing would."""
    if errors:
        return EXIT_ERROR
    return EXIT_CHANGES if any(summarize(plans).values()) else EXIT_NO_CHANGES


def summary_line(plans: Sequence[WorkspacePlan]) -> str:
    counts = summarize(plans)
    return (
        f"Plan: {counts['create']} to create, {counts['change']} to change, "
        f"{counts['remove']} to remove, {counts['refused']} refused."
    )


def relative(resource: str, resource_group: str) -> str:
    """An ARM id as text shows it: after `providers/` when it is in the workspace's resource group."""
    prefix = f"{resource_group}/providers/"
    return resource[len(prefix) :] if resource.lower().startswith(prefix.lower()) else resource


def _lines(plan: WorkspacePlan) -> list[str]:
    def short(resource: str) -> str:
        return relative(resource, plan.resource_group)

    lines = []
    for step in plan.steps:
        if step.action == "change":
            lines.append(f"  ~ {short(step.resource)} {step.field}: {step.before} → {step.after}")
        else:
            lines.append(f"  {'+' if step.action == 'create' else '-'} {step.action} {short(step.resource)}")
    for kept in plan.kept:
        if kept.why == "AdditivePolicy":
            lines.append(f"  = keep {short(kept.resource)} (not in the spec; kept under the Additive policy)")
        else:
            lines.append(f"  = leave {short(kept.resource)} {kept.field} (another writer keeps changing it back)")
    for refusal in plan.refusals:
        about = refusal.resource if refusal.resource and refusal.resource not in refusal.message else None
        lines.append(f"  ! refused: {refusal.reason}: " + (f"{short(about)}: " if about else "") + refusal.message)
    lines += [f"  ! blocked: {short(resource)}: depends on a refused resource" for resource in plan.blocked]
    return lines or ["  no changes: Azure matches the manifest"]


def render_text(plans: Sequence[WorkspacePlan]) -> str:
    lines: list[str] = []
    for plan in plans:
        judged = "in the cluster: ownership by its status.ledger" if plan.in_cluster else "new: an empty ledger"
        lines.append(f"SecureMLWorkspace {plan.namespace}/{plan.name} in {plan.resource_group} ({judged})")
        lines += _lines(plan)
    lines.append(summary_line(plans))
    return "\n".join(lines) + "\n"


def _step_json(step: Step) -> dict[str, Any]:
    return {
        "action": step.action,
        "resource": step.resource,
        "field": step.field,
        "from": step.before,
        "to": step.after,
    }


def as_json(plans: Sequence[WorkspacePlan], errors: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "formatVersion": FORMAT_VERSION,
        "workspaces": [
            {
                "namespace": plan.namespace,
                "name": plan.name,
                "inCluster": plan.in_cluster,
                "resourceGroup": plan.resource_group,
                "changes": [_step_json(step) for step in plan.steps],
                "kept": [{"resource": kept.resource, "field": kept.field, "why": kept.why} for kept in plan.kept],
                "refused": [
                    {"reason": refusal.reason, "message": refusal.message, "resource": refusal.resource}
                    for refusal in plan.refusals
                ],
                "blocked": list(plan.blocked),
                "summary": plan.summary(),
            }
            for plan in plans
        ],
        "summary": summarize(plans),
        "errors": list(errors),
    }


def render_json(plans: Sequence[WorkspacePlan], errors: Sequence[str] = ()) -> str:
    return json.dumps(as_json(plans, errors), indent=2) + "\n"
