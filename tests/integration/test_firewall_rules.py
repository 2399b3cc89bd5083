"""The hub firewall's rules for a workspace (egress.firewall.policyId, example 4): the operator keeps
exactly one rule collection group of its own in the platform's firewall policy, corrects it when it
drifts, and deletes it with the resource; the platform team's own group in that policy comes out
unchanged at every step."""

from __future__ import annotations

import json

import pytest
from operatorharness import HUB, OperatorEnv

from armemu.seed import HUB_FIREWALL_POLICY, PLATFORM_RULES

pytestmark = pytest.mark.integration
INTERVAL = 10
OURS = f"{HUB_FIREWALL_POLICY}/ruleCollectionGroups/secureml-mlw-litware-hub"


def _collections(operator: OperatorEnv) -> dict[str, list[str]]:
    body = operator.arm_resource(OURS)
    assert body is not None, "our rule collection group exists"
    return {c["name"]: [r["name"] for r in c["rules"]] for c in body["properties"]["ruleCollections"]}


def test_our_rule_collection_group_is_kept_in_sync_and_goes_with_the_resource(operator: OperatorEnv) -> None:
    platform = operator.arm_resource(PLATFORM_RULES)
    manifest = operator.manifest("04-customer-vnet-hub-firewall.yaml")
    manifest["spec"]["drift"] = {"mode": "Enforce", "interval": f"{INTERVAL}s"}
    operator.apply(manifest)
    status = operator.wait_ready(HUB, timeout=90)["status"]

    collections = _collections(operator)
    assert set(collections) == {"azureml-service-tags", "azureml-fqdns"}
    assert "AzureMachineLearning-Udp" in collections["azureml-service-tags"]
    assert {"entra-id", "azureml", "compute"} <= set(collections["azureml-fqdns"])
    fqdns = next(
        rule["targetFqdns"]
        for c in (operator.arm_resource(OURS) or {})["properties"]["ruleCollections"]
        for rule in c["rules"]
        if rule["name"] == "compute"
    )
    assert "*.brazilsouth.batch.azure.com" in fqdns, "derived from the workspace's region"
    assert [entry["origin"] for entry in status["ledger"] if entry["id"].lower() == OURS.lower()] == ["Created"]

    # Someone drops our FQDN collection: the next sweep puts it back.
    body = operator.arm_resource(OURS) or {}
    trimmed = [c for c in body["properties"]["ruleCollections"] if c["name"] != "azureml-fqdns"]
    operator.az_rest("PUT", OURS, {"properties": {**body["properties"], "ruleCollections": trimmed}})
    operator.wait_for("the FQDN collection back", lambda: "azureml-fqdns" in _collections(operator), INTERVAL + 10)
    # The sweep reports it in status once its walk is over: a moment after the write.
    corrected = lambda: any(  # noqa: E731
        i["field"] == "properties.ruleCollections" and i["action"] == "Corrected"
        for i in operator.drift(HUB).get("items") or []
    )
    operator.wait_for("the correction reported in status.drift", corrected, 10)
    assert operator.arm_resource(PLATFORM_RULES) == platform, "the platform's group is untouched"

    operator.kube.kubectl("delete", "smlw", HUB, "-n", operator.namespace, "--timeout=90s")
    assert operator.arm_resource(OURS) is None, "our group goes with the resource"
    assert operator.arm_resource(PLATFORM_RULES) == platform, json.dumps(operator.arm_resource(PLATFORM_RULES))
