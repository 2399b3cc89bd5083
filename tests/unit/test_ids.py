"""ARM ids and the resource types the request budget counts by."""

from __future__ import annotations

import pytest

from secureml_operator.azure.budget import resource_type_of
from secureml_operator.azure.ids import ArmId, key_of, same_id

ROUTE = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/routeTables/rt/routes/default"


def test_parse_round_trips_and_exposes_type_and_parent() -> None:
    arm_id = ArmId.parse(ROUTE)
    assert str(arm_id) == ROUTE
    assert arm_id.type == "Microsoft.Network/routeTables/routes"
    assert arm_id.name == "default"
    assert arm_id.parent is not None and arm_id.parent.type == "Microsoft.Network/routeTables"
    assert arm_id.parent.child("routes", "default") == arm_id


def test_top_is_the_resource_a_child_lives_in_and_a_top_level_resource_itself() -> None:
    route = ArmId.parse(ROUTE)
    table = route.parent
    assert route.top == table
    assert table is not None and table.top == table


@pytest.mark.parametrize(
    "value", ["", "/subscriptions/s1", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/x"]
)
def test_parse_rejects_what_is_not_a_resource_id(value: str) -> None:
    with pytest.raises(ValueError, match="not an ARM resource id"):
        ArmId.parse(value)
    with pytest.raises(ValueError, match="not an ARM resource id"):
        key_of(value)


@pytest.mark.parametrize("value", [ROUTE, ROUTE.upper() + "/", "//" + ROUTE.lower().lstrip("/")])
def test_key_of_is_the_parsed_ids_key(value: str) -> None:
    assert key_of(value) == ArmId.parse(value).key == ROUTE.lower()


def test_ids_compare_case_insensitively() -> None:
    assert same_id(ROUTE.upper(), ROUTE + "/")
    assert ArmId.parse(ROUTE.lower()).key == ArmId.parse(ROUTE).key


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (ROUTE + "?api-version=2026-03-01", "Microsoft.Network/routeTables/routes"),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w"
            "/provisionManagedNetwork",
            "Microsoft.MachineLearningServices/workspaces/provisionManagedNetwork",
        ),
        ("/subscriptions/s/resourcegroups/rg", "Microsoft.Resources/resourceGroups"),
    ],
)
def test_resource_type_of_request_paths(path: str, expected: str) -> None:
    assert resource_type_of(path) == expected
