"""`plan`'s view of a Detect-mode walk: steps, refusals, the text and JSON outputs, the exit code."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import ClientAuthenticationError

from secureml_operator.cli.planview import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_NO_CHANGES,
    Kept,
    PlanError,
    Refusal,
    Step,
    WorkspacePlan,
    as_json,
    exit_code,
    from_report,
    relative,
    render_text,
    step_of,
)
from secureml_operator.engine.engine import Action, Change, NodeResult, Outcome, RunReport
from secureml_operator.failures import PermanentFailure, TransientFailure

GROUP = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
WS = f"{GROUP}/providers/Microsoft.MachineLearningServices/workspaces/mlw"
RULE = f"{WS}/outboundRules/pypi"
EXTRA = f"{WS}/outboundRules/exfil"
HUB = (
    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/hub/providers/Microsoft.Network/natGateways/ng"
)
PE = f"{GROUP}/providers/Microsoft.Network/privateEndpoints/pe-mlw"


def _plan(
    steps: tuple[Step, ...] = (), kept: tuple[Kept, ...] = (), refusals: tuple[Refusal, ...] = ()
) -> WorkspacePlan:
    return WorkspacePlan("team", "mlw", False, GROUP, steps, kept, refusals)


def _report(*results: NodeResult) -> RunReport:
    return RunReport({result.id: result for result in results})


def test_each_difference_becomes_what_applying_would_do() -> None:
    assert step_of(Change(WS, "resource", "present", "absent", Action.DETECTED)) == Step("create", WS)
    assert step_of(Change(EXTRA, "resource", "absent", "present", Action.DETECTED)) == Step("remove", EXTRA)
    field = "properties.publicNetworkAccess"
    assert step_of(Change(WS, field, "Disabled", "Enabled", Action.DETECTED)) == Step(
        "change", WS, field, "Enabled", "Disabled"
    )
    assert step_of(Change(EXTRA, "resource", "absent", "present", Action.REPORTED)) == Kept(EXTRA, "AdditivePolicy")
    assert step_of(Change(WS, field, "Disabled", "Enabled", Action.SKIPPED)) == Kept(WS, "ConflictingWriter", field)


def test_a_walk_becomes_steps_refusals_and_blocked_resources() -> None:
    walked = NodeResult(WS, "Microsoft.MachineLearningServices/workspaces", Outcome.DRIFTED)
    walked.changes = [
        Change(WS, "properties.publicNetworkAccess", "Disabled", "Enabled", Action.DETECTED),
        Change(RULE, "resource", "present", "absent", Action.DETECTED),
        Change(EXTRA, "resource", "absent", "present", Action.REPORTED),
    ]
    refused = NodeResult(HUB, "Microsoft.Network/natGateways", Outcome.FAILED)
    refused.error = PermanentFailure("ExistsUnowned", f"{HUB} already exists")
    blocked = NodeResult(PE, "Microsoft.Network/privateEndpoints", Outcome.BLOCKED)
    plan = from_report("team", "mlw", True, GROUP, _report(walked, refused, blocked))
    assert plan.steps == (
        Step("change", WS, "properties.publicNetworkAccess", "Enabled", "Disabled"),
        Step("create", RULE),
    )
    assert plan.kept == (Kept(EXTRA, "AdditivePolicy"),)
    assert plan.refusals == (Refusal("ExistsUnowned", f"{HUB} already exists", HUB),)
    assert plan.blocked == (PE,)
    assert plan.summary() == {"create": 1, "change": 1, "remove": 0, "refused": 1}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TransientFailure("Throttled", "429"), "Throttled: 429"),
        (ClientAuthenticationError("no token"), "AuthenticationFailed: no token"),
        (PermanentFailure("InvalidSpec", "spec.x: bad"), "InvalidSpec: spec.x: bad"),
    ],
)
def test_what_kept_the_walk_from_seeing_azure_is_an_error_of_the_plan(error: Exception, expected: str) -> None:
    failed = NodeResult(WS, "Microsoft.MachineLearningServices/workspaces", Outcome.FAILED, error=error)
    with pytest.raises(PlanError) as raised:
        from_report("team", "mlw", False, GROUP, _report(failed))
    assert str(raised.value) == f"{WS}: {expected}"


def test_exit_codes_follow_terraform_plan_detailed_exitcode() -> None:
    assert exit_code([_plan(), _plan(kept=(Kept(EXTRA, "AdditivePolicy"),))], []) == EXIT_NO_CHANGES
    assert exit_code([_plan(), _plan(steps=(Step("remove", EXTRA),))], []) == EXIT_CHANGES
    assert exit_code([_plan(refusals=(Refusal("NotPermitted", "no"),))], []) == EXIT_CHANGES
    assert exit_code([_plan(steps=(Step("create", WS),))], ["team/other: InvalidSpec: x"]) == EXIT_ERROR
    assert exit_code([], []) == EXIT_NO_CHANGES


def test_fields_of_one_resource_count_as_one_change() -> None:
    steps = (
        Step("change", WS, "properties.publicNetworkAccess", "Enabled", "Disabled"),
        Step("change", WS.upper(), "tags", "other", "created by this resource"),
        Step("create", RULE),
        Step("create", PE),
    )
    assert _plan(steps=steps).summary() == {"create": 2, "change": 1, "remove": 0, "refused": 0}


def test_ids_in_the_workspace_resource_group_are_shown_short() -> None:
    assert relative(RULE, GROUP) == "Microsoft.MachineLearningServices/workspaces/mlw/outboundRules/pypi"
    assert relative(RULE.lower(), GROUP) == "microsoft.machinelearningservices/workspaces/mlw/outboundrules/pypi"
    assert relative(HUB, GROUP) == HUB


def test_text_has_one_line_per_resource_or_field_and_a_summary() -> None:
    busy = WorkspacePlan(
        "team",
        "mlw",
        True,
        GROUP,
        steps=(
            Step("create", RULE),
            Step("change", WS, "properties.publicNetworkAccess", "Enabled", "Disabled"),
            Step("remove", EXTRA),
        ),
        kept=(Kept(f"{WS}/outboundRules/mine", "AdditivePolicy"), Kept(WS, "ConflictingWriter", "tags")),
        refusals=(Refusal("ExistsUnowned", f"{HUB} already exists", HUB), Refusal("AzureRejected", "400", PE)),
        blocked=(f"{PE}/privateDnsZoneGroups/default",),
    )
    quiet = WorkspacePlan("team", "other", False, GROUP)
    assert render_text([busy, quiet]).splitlines() == [
        f"SecureMLWorkspace team/mlw in {GROUP} (in the cluster: ownership by its status.ledger)",
        "  + create Microsoft.MachineLearningServices/workspaces/mlw/outboundRules/pypi",
        "  ~ Microsoft.MachineLearningServices/workspaces/mlw properties.publicNetworkAccess: Enabled → Disabled",
        "  - remove Microsoft.MachineLearningServices/workspaces/mlw/outboundRules/exfil",
        "  = keep Microsoft.MachineLearningServices/workspaces/mlw/outboundRules/mine (not in the spec; kept under "
        "the Additive policy)",
        "  = leave Microsoft.MachineLearningServices/workspaces/mlw tags (another writer keeps changing it back)",
        f"  ! refused: ExistsUnowned: {HUB} already exists",
        "  ! refused: AzureRejected: Microsoft.Network/privateEndpoints/pe-mlw: 400",
        "  ! blocked: Microsoft.Network/privateEndpoints/pe-mlw/privateDnsZoneGroups/default: depends on a refused "
        "resource",
        f"SecureMLWorkspace team/other in {GROUP} (new: an empty ledger)",
        "  no changes: Azure matches the manifest",
        "Plan: 1 to create, 1 to change, 1 to remove, 2 refused.",
    ]


def test_json_keeps_full_ids_in_a_stable_shape() -> None:
    plan = _plan(
        steps=(Step("create", RULE), Step("change", WS, "tags", "other", "created by us")),
        kept=(Kept(EXTRA, "AdditivePolicy"),),
        refusals=(Refusal("NotPermitted", "namespace team may not use it"),),
    )
    document = as_json([plan], ["team/broken: InvalidSpec: spec.x"])
    assert json.loads(json.dumps(document)) == {
        "formatVersion": 1,
        "workspaces": [
            {
                "namespace": "team",
                "name": "mlw",
                "inCluster": False,
                "resourceGroup": GROUP,
                "changes": [
                    {"action": "create", "resource": RULE, "field": None, "from": None, "to": None},
                    {"action": "change", "resource": WS, "field": "tags", "from": "other", "to": "created by us"},
                ],
                "kept": [{"resource": EXTRA, "field": None, "why": "AdditivePolicy"}],
                "refused": [{"reason": "NotPermitted", "message": "namespace team may not use it", "resource": None}],
                "blocked": [],
                "summary": {"create": 1, "change": 1, "remove": 0, "refused": 1},
            }
        ],
        "summary": {"create": 1, "change": 1, "remove": 0, "refused": 1},
        "errors": ["team/broken: InvalidSpec: spec.x"],
    }
