"""A field corrected in several consecutive sweeps is another writer's: stop fighting, report it."""

from __future__ import annotations

from secureml_operator.engine.engine import Change, NodeResult, Outcome, RunReport
from secureml_operator.reconciler import CONFLICT_THRESHOLD, ResourceMemo
from secureml_operator.status.report import sync_condition

WS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w"


def report(*changes: Change) -> RunReport:
    result = NodeResult(WS, "Microsoft.MachineLearningServices/workspaces", Outcome.UPDATED, list(changes))
    return RunReport({WS.lower(): result})


CORRECTED = Change(WS, "properties.publicNetworkAccess", "Disabled", "Enabled", "Corrected")


def test_a_field_corrected_in_consecutive_sweeps_is_frozen() -> None:
    memo = ResourceMemo()
    for _ in range(CONFLICT_THRESHOLD - 1):
        memo.observe(1, report(CORRECTED))
    assert memo.frozen == set()
    memo.observe(1, report(CORRECTED))
    assert memo.frozen == {(WS.lower(), "properties.publicNetworkAccess")}


def test_a_quiet_sweep_resets_the_count_and_a_new_spec_unfreezes() -> None:
    memo = ResourceMemo()
    memo.observe(1, report(CORRECTED))
    memo.observe(1, report())
    memo.observe(1, report(CORRECTED))
    assert memo.corrections == {(WS.lower(), "properties.publicNetworkAccess"): 1}
    for _ in range(CONFLICT_THRESHOLD):
        memo.observe(1, report(CORRECTED))
    assert memo.frozen
    memo.observe(2, report())
    assert memo.frozen == set()


def test_skipped_fields_show_as_a_conflicting_writer() -> None:
    skipped = Change(WS, "properties.publicNetworkAccess", "Disabled", "Enabled", "Skipped")
    condition = sync_condition(report(skipped), detect=False)
    assert (condition.status, condition.reason) == (False, "ConflictingWriter")
    assert "w:properties.publicNetworkAccess" in condition.message
