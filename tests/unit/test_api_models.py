"""The models refuse every invalid manifest of the shared table, with the rule's own message."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import pytest
import yaml
from apicases import CASES, Case, example
from apicases.admission import ACCEPTED, REFUSALS
from pydantic import BaseModel, ValidationError

from secureml_operator.api.crd import main as generate
from secureml_operator.api.duration import parse_duration
from secureml_operator.api.models import OutboundRule, Route, SecurityRule, Spec
from secureml_operator.api.presets import PRESET_FQDNS
from secureml_operator.api.rules import RULES
from secureml_operator.desired.azureml_network import SERVICE_TAG_REGIONS
from secureml_operator.desired.observed import Observed
from secureml_operator.desired.plan import plan

EXAMPLES = sorted(glob.glob(str(Path(__file__).resolve().parents[2] / "examples" / "*.yaml")))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).name)
def test_every_example_is_valid(path: str) -> None:
    Spec.model_validate(yaml.safe_load(Path(path).read_text())["spec"])


def test_there_is_one_example_per_seed_scenario() -> None:
    assert len(EXAMPLES) == 6


@pytest.mark.parametrize("case", [*CASES, *REFUSALS], ids=lambda c: c.id)
def test_invalid_manifest_is_refused_with_its_message(case: Case) -> None:
    with pytest.raises(ValidationError) as error:
        Spec.model_validate(case.manifest()["spec"])
    assert case.expected in str(error.value)


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.id)
def test_edge_values_that_work_are_accepted(case: Case) -> None:
    Spec.model_validate(case.manifest()["spec"])


def test_every_non_transition_rule_has_a_case() -> None:
    covered = {case.rule for case in [*CASES, *REFUSALS]}
    assert {rule.id for rule in RULES if not rule.transition} <= covered


def test_generated_crd_and_reference_are_current() -> None:
    assert generate(["--check"]) == 0, "crds/ or docs/api.md is stale: run `make crds`"


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("5m", 300), ("1h30m", 5400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "60", "1d", "s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


# A valid item of each list users can extend, but for its name, and the rule that reserves derived names.
EXTRA_ITEMS: dict[str, tuple[type[BaseModel], dict[str, Any], str]] = {
    "securityRules": (
        SecurityRule,
        {"priority": 300, "direction": "Outbound", "access": "Allow"},
        "nsg-rule-name-reserved",
    ),
    "routes": (Route, {"addressPrefix": "10.2.0.0/16", "nextHopType": "None"}, "route-name-reserved"),
    "outboundRules": (OutboundRule, {"fqdn": "example.com"}, "outbound-rule-name-reserved"),
}
MESSAGES = {rule.id: rule.message for rule in RULES}
DERIVING_EXAMPLES = (
    "02-managed-approved-outbound.yaml",
    "03-customer-vnet-nat.yaml",
    "04-customer-vnet-hub-firewall.yaml",
)


def _derived_children(name: str, location: str, public_ip: bool) -> list[tuple[str, str]]:
    """(child type, name) of every child the plan derives for an example without extras, in a location."""
    spec = example(name)["spec"]
    spec["azure"]["location"] = location
    if "customerNetwork" in spec["outbound"]:
        spec["outbound"]["customerNetwork"]["computePublicIp"] = public_ip
    else:
        spec["outbound"]["managedNetwork"].update(rules=[], presets=list(PRESET_FQDNS))
    graph = plan(Spec.model_validate(spec), Observed(firewall_private_ip="10.1.0.4"))
    return [(kids.child_type, child.name) for node in graph for kids in node.children for child in kids.children]


@pytest.mark.parametrize("location", [*SERVICE_TAG_REGIONS, "newregion2"])
def test_every_name_the_plan_derives_is_refused_for_extra_rules_and_routes(location: str) -> None:
    derived = {
        child
        for name in DERIVING_EXAMPLES
        for public_ip in (False, True)
        for child in _derived_children(name, location, public_ip)
        if child[0] in EXTRA_ITEMS
    }
    assert {kind for kind, _ in derived} == set(EXTRA_ITEMS)
    for kind, child in derived:
        model, item, rule = EXTRA_ITEMS[kind]
        for spelling in (child, child.swapcase()):  # ARM names ignore case
            with pytest.raises(ValidationError) as error:
                model.model_validate({"name": spelling, **item})
            assert MESSAGES[rule] in str(error.value)


def test_every_preset_fqdn_passes_the_fqdn_rules() -> None:
    for fqdns in PRESET_FQDNS.values():
        for fqdn in fqdns:
            OutboundRule.model_validate({"name": "preset-check", "fqdn": fqdn})
