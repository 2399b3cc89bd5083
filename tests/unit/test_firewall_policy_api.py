"""spec.outbound.customerNetwork.egress.firewall.policyId: the hub firewall's policy, in which the operator
keeps the rule collection group of a workspace. Only a Microsoft.Network/firewallPolicies id is taken (in
Python and, through the same rule of api/rules.py, in the CRD's CEL), and tenancy checks it like every
other referenced id."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from apicases import FIREWALL_ID, FIREWALL_POLICY_ID, example
from pydantic import ValidationError

from secureml_operator.api import tenancy
from secureml_operator.api.crd import CRD_PATH
from secureml_operator.api.models import Spec
from secureml_operator.api.rules import rules_for

HUB_EXAMPLE = "04-customer-vnet-hub-firewall.yaml"
PATH = "spec.outbound.customerNetwork.egress.firewall.policyId"
MESSAGE = "egress.firewall.policyId must be the id of a Microsoft.Network/firewallPolicies resource"
HUB_SUB = "11111111-1111-1111-1111-111111111111"


def _spec(policy_id: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(example(HUB_EXAMPLE)["spec"])
    firewall = spec["outbound"]["customerNetwork"]["egress"]["firewall"]
    firewall.pop("policyId", None)
    if policy_id is not None:
        firewall["policyId"] = policy_id
    return spec


def test_a_firewall_policy_id_is_accepted_under_its_camel_case_name() -> None:
    spec = Spec.model_validate(_spec(FIREWALL_POLICY_ID))
    firewall = spec.outbound.customer_network.egress.firewall  # type: ignore[union-attr]
    assert firewall is not None and firewall.policy_id == FIREWALL_POLICY_ID
    dumped = spec.model_dump(by_alias=True, exclude_none=True)
    assert dumped["outbound"]["customerNetwork"]["egress"]["firewall"]["policyId"] == FIREWALL_POLICY_ID


def test_it_is_optional() -> None:
    firewall = Spec.model_validate(_spec(None)).outbound.customer_network.egress.firewall  # type: ignore[union-attr]
    assert firewall is not None and firewall.policy_id is None


@pytest.mark.parametrize(
    "wrong",
    [
        FIREWALL_ID,  # the firewall itself, not its policy
        FIREWALL_POLICY_ID + "/ruleCollectionGroups/platform",  # a group of the policy
        FIREWALL_POLICY_ID.replace("firewallPolicies", "ApplicationGatewayWebApplicationFirewallPolicies"),
    ],
)
def test_an_id_of_another_type_is_refused_with_the_rules_message(wrong: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Spec.model_validate(_spec(wrong))
    assert MESSAGE in str(refused.value)


def test_something_that_is_no_arm_id_is_refused_by_the_schema() -> None:
    with pytest.raises(ValidationError) as refused:
        Spec.model_validate(_spec("afwp-hub"))
    assert "policyId" in str(refused.value) and "pattern" in str(refused.value)


def _firewall_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_PATH.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for key in ("outbound", "customerNetwork", "egress", "firewall"):
        schema = schema["properties"][key]
    return dict(schema)


def test_the_crd_refuses_it_with_the_same_rule_at_kubectl_apply() -> None:
    firewall = _firewall_schema()
    assert firewall["properties"]["policyId"]["type"] == "string"
    (rule,) = [rule for rule in rules_for("Firewall") if rule.id == "firewall-policy-id-type"]
    assert rule.message == MESSAGE
    assert rule.x_kubernetes_validation() in firewall["x-kubernetes-validations"]
    assert "Microsoft.Network/firewallPolicies" in str(rule.cel) and "!has(self.policyId)" in str(rule.cel)


def test_tenancy_sees_the_policy_id() -> None:
    assert (PATH, FIREWALL_POLICY_ID) in tenancy.referenced_ids(_spec(FIREWALL_POLICY_ID))
    refused = tenancy.evaluate(_spec(FIREWALL_POLICY_ID), "team-a", {}, None, {"00000000-0000-0000-0000-000000000000"})
    assert tenancy.UNLISTED_REFERENCE.format(path=PATH, id=FIREWALL_POLICY_ID, subscription=HUB_SUB) in refused


def test_the_admission_policy_checks_it_too() -> None:
    referenced = dict(tenancy.VARIABLES)["referenced"]
    assert f'"{PATH}"' in referenced and "egress.firewall.policyId)" in referenced
