"""The models refuse every invalid manifest of the shared table, with the rule's own message."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
import yaml
from apicases import CASES, Case
from pydantic import ValidationError

from secureml_operator.api.crd import main as generate
from secureml_operator.api.duration import parse_duration
from secureml_operator.api.models import Spec
from secureml_operator.api.rules import RULES

EXAMPLES = sorted(glob.glob(str(Path(__file__).resolve().parents[2] / "examples" / "*.yaml")))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).name)
def test_every_example_is_valid(path: str) -> None:
    Spec.model_validate(yaml.safe_load(Path(path).read_text())["spec"])


def test_there_is_one_example_per_seed_scenario() -> None:
    assert len(EXAMPLES) == 6


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_invalid_manifest_is_refused_with_its_message(case: Case) -> None:
    with pytest.raises(ValidationError) as error:
        Spec.model_validate(case.manifest()["spec"])
    assert case.expected in str(error.value)


def test_every_non_transition_rule_has_a_case() -> None:
    covered = {case.rule for case in CASES}
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
