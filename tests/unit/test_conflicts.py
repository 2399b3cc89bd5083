"""A field corrected in several consecutive sweeps is another writer's: stop fighting, report it.
The counts live in status, so a restart or a failover remembers them."""

from __future__ import annotations

from secureml_operator.engine.conflicts import CONFLICT_THRESHOLD, Conflicts
from secureml_operator.engine.engine import Action, Change, NodeResult, Outcome, RunReport
from secureml_operator.status.report import sync_condition

WS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w"
RULE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n/securityRules/x"
FIELD = "properties.publicNetworkAccess"
CORRECTED = Change(WS, FIELD, "Disabled", "Enabled", Action.CORRECTED, "policy@contoso")
REVERTED = Change(WS, FIELD, "Disabled", "Enabled", Action.REVERTED)
SKIPPED = Change(WS, FIELD, "Disabled", "Enabled", Action.SKIPPED)
RE_ADDED = Change(RULE, "resource", "absent", "present", Action.CORRECTED)


def sweeps(conflicts: Conflicts, *each: list[Change]) -> Conflicts:
    for changes in each:
        conflicts = conflicts.after_sweep(changes, "2026-12-02T00:00:00Z")
    return conflicts


def report(*changes: Change) -> RunReport:
    result = NodeResult(WS, "Microsoft.MachineLearningServices/workspaces", Outcome.UPDATED, list(changes))
    return RunReport({WS.lower(): result})


def test_a_field_fought_in_consecutive_sweeps_is_stopped_and_names_its_writer() -> None:
    almost = sweeps(Conflicts(1), *[[CORRECTED]] * (CONFLICT_THRESHOLD - 1))
    assert almost.stopped == frozenset()
    stopped = sweeps(almost, [REVERTED])  # a write Azure did not keep counts like a correction
    assert stopped.stopped == {(WS.lower(), FIELD)}
    assert stopped.fights[(WS.lower(), FIELD)].writer == "policy@contoso"


def test_a_fight_over_existence_counts_like_a_field() -> None:
    stopped = sweeps(Conflicts(1), *[[RE_ADDED]] * CONFLICT_THRESHOLD)
    assert stopped.stopped == {(RULE.lower(), "resource")}


def test_a_quiet_sweep_resets_the_count_and_a_stopped_fight_lasts_while_it_still_differs() -> None:
    interrupted = sweeps(Conflicts(1), [CORRECTED], [], [CORRECTED])
    assert interrupted.fights[(WS.lower(), FIELD)].sweeps == 1
    stopped = sweeps(interrupted, *[[CORRECTED]] * CONFLICT_THRESHOLD)
    assert sweeps(stopped, [SKIPPED], [SKIPPED]).stopped == stopped.stopped
    assert sweeps(stopped, []).stopped == frozenset(), "Azure agrees with the spec again: forgotten"


def test_counts_survive_status_and_reset_with_a_new_generation_or_annotation() -> None:
    stopped = sweeps(Conflicts(4, "a"), *[[CORRECTED]] * CONFLICT_THRESHOLD)
    status = {"conflicts": stopped.as_status()}
    assert Conflicts.from_status(status, 4, "a").stopped == stopped.stopped, "a restart remembers"
    assert Conflicts.from_status(status, 5, "a").stopped == frozenset(), "a new spec resumes the fight"
    assert Conflicts.from_status(status, 4, "b").stopped == frozenset(), "so does a new reset annotation"


def test_stopped_fights_show_as_a_conflicting_writer_with_field_and_writer() -> None:
    stopped = sweeps(Conflicts(1), *[[CORRECTED]] * CONFLICT_THRESHOLD)
    condition = sync_condition(report(SKIPPED), stopped, detect=False)
    assert (condition.status, condition.reason) == (False, "ConflictingWriter")
    assert f"w:{FIELD} (last changed by policy@contoso)" in condition.message


def test_a_write_azure_did_not_keep_is_not_in_sync() -> None:
    condition = sync_condition(report(REVERTED), Conflicts(1), detect=False)
    assert (condition.status, condition.reason) == (False, "WriteReverted")
