"""Owned-field comparison: what counts as drift, and how a correction body is built."""

from __future__ import annotations

from secureml_operator.desired.fields import Contains, Exact, FieldDiff, Members

LIVE = {
    "properties": {
        "nextHopType": "VirtualAppliance",
        "subnet": {"id": "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Network/virtualNetworks/v"},
        "networkAcls": {"ipRules": [{"value": "1.2.3.4/32"}, {"value": "5.6.7.8/32"}]},
    }
}


def test_exact_matches_ids_and_enums_case_insensitively() -> None:
    subnet_id = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/virtualnetworks/V/"
    assert Exact("properties.subnet.id", subnet_id).diff(LIVE) is None
    assert Exact("properties.nextHopType", "virtualappliance").diff(LIVE) is None


def test_exact_reports_expected_and_actual() -> None:
    diff = Exact("properties.nextHopType", "Internet").diff(LIVE)
    assert diff is not None
    assert (diff.field, diff.expected, diff.actual) == (
        "properties.nextHopType",
        "Internet",
        "VirtualAppliance",
    )
    missing = Exact("properties.addressPrefix", "0.0.0.0/0").diff(LIVE)
    assert missing is not None and missing.actual == "absent"


def test_exact_apply_creates_intermediate_objects() -> None:
    body: dict[str, object] = {}
    Exact("properties.routeTable.id", "/x").apply(body)
    assert body == {"properties": {"routeTable": {"id": "/x"}}}


def test_authoritative_members_flag_extras_and_missing() -> None:
    rule = Members("properties.networkAcls.ipRules", ({"value": "1.2.3.4/32"},), key="value")
    diff = rule.diff(LIVE)
    assert diff is not None and diff.actual == "1.2.3.4/32,5.6.7.8/32" and diff.expected == "1.2.3.4/32"
    body: dict[str, object] = {}
    rule.apply(body, LIVE)
    assert body == {"properties": {"networkAcls": {"ipRules": [{"value": "1.2.3.4/32"}]}}}


def test_additive_members_keep_what_others_added() -> None:
    rule = Members("properties.networkAcls.ipRules", ({"value": "9.9.9.9/32"},), key="value", authoritative=False)
    assert rule.diff(LIVE) is not None
    assert rule.extras(LIVE) == ["1.2.3.4/32", "5.6.7.8/32"]
    body: dict[str, object] = {}
    rule.apply(body, LIVE)
    values = [item["value"] for item in body["properties"]["networkAcls"]["ipRules"]]  # type: ignore[index]
    assert values == ["1.2.3.4/32", "5.6.7.8/32", "9.9.9.9/32"]
    satisfied = Members("properties.networkAcls.ipRules", ({"value": "5.6.7.8/32"},), "value", False)
    assert satisfied.diff(LIVE) is None


def test_additive_members_take_out_what_we_put_there_before() -> None:
    rules = Members(
        "acl.ipRules",
        ({"value": "20.0.0.2"},),
        key="value",
        authoritative=False,
        forbidden=({"value": "20.0.0.1"},),
    )
    live = {"acl": {"ipRules": [{"value": "198.51.100.10"}, {"value": "20.0.0.1"}, {"value": "20.0.0.2"}]}}
    assert rules.diff(live) is not None, "an old IP of ours still listed is drift"
    body: dict[str, object] = {}
    rules.apply(body, live)
    assert body == {"acl": {"ipRules": [{"value": "198.51.100.10"}, {"value": "20.0.0.2"}]}}
    assert rules.diff(body) is None


def test_contains_ignores_what_azure_fills_in_and_sees_every_declared_change() -> None:
    declared = [{"name": "azureml", "rules": [{"name": "api", "targetFqdns": ["*.azureml.ms"]}]}]
    rule = Contains("properties.ruleCollections", declared)
    filled_in = [{"name": "AzureML", "rules": [{"name": "api", "targetFqdns": ["*.AzureML.ms"], "fqdnTags": []}]}]
    assert rule.diff({"properties": {"ruleCollections": filled_in}}) is None
    for changed in (
        [{"name": "azureml", "rules": [{"name": "api", "targetFqdns": ["*.example.com"]}]}],  # a value
        [{"name": "azureml", "rules": []}],  # a rule less
        [*filled_in, {"name": "someone-elses", "rules": []}],  # an entry more
        [],
    ):
        diff = rule.diff({"properties": {"ruleCollections": changed}})
        assert diff is not None and diff.expected == "azureml", changed
    assert rule.diff({"properties": {}}) == FieldDiff("properties.ruleCollections", "azureml", "absent")
    body: dict[str, object] = {}
    rule.apply(body)
    assert body == {"properties": {"ruleCollections": declared}}
