"""Conditions merge by type and keep lastTransitionTime unless the status flips."""

from __future__ import annotations

from secureml_operator.status.conditions import Condition, conditions_patch, merge_conditions

OLD = {
    "type": "Ready",
    "status": "False",
    "reason": "Progressing",
    "message": "m",
    "observedGeneration": 1,
    "lastTransitionTime": "2020-01-01T00:00:00Z",
}
FOREIGN = {"type": "SomeoneElses", "status": "True", "reason": "R", "message": "", "lastTransitionTime": "t"}


def test_other_writers_conditions_survive_a_merge() -> None:
    merged = merge_conditions([OLD, FOREIGN], [Condition("Ready", True, "Reconciled", "ok")], generation=2)
    assert [condition["type"] for condition in merged] == ["Ready", "SomeoneElses"]
    assert merged[1] == FOREIGN


def test_transition_time_moves_only_when_status_changes() -> None:
    same = merge_conditions([OLD], [Condition("Ready", False, "Other", "still not ready")], generation=2)
    assert same[0]["lastTransitionTime"] == OLD["lastTransitionTime"]
    assert same[0]["reason"] == "Other" and same[0]["observedGeneration"] == 2
    flipped = merge_conditions([OLD], [Condition("Ready", True, "Reconciled", "ok")], generation=2)
    assert flipped[0]["lastTransitionTime"] != OLD["lastTransitionTime"]
    assert flipped[0]["status"] == "True"


def test_patch_function_applies_to_the_freshest_body() -> None:
    body: dict[str, object] = {"status": {"conditions": [FOREIGN]}}
    conditions_patch([Condition("Stalled", True, "InvalidSpec", "bad")], generation=3)(body)
    conditions = body["status"]["conditions"]  # type: ignore[index]
    assert [condition["type"] for condition in conditions] == ["SomeoneElses", "Stalled"]
    assert conditions[1]["status"] == "True" and conditions[1]["observedGeneration"] == 3
