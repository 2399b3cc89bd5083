"""docs/troubleshooting.md explains every reason the operator can stall or retry with, so a reason
added in the code without a line of advice fails here rather than surprising a user."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "secureml_operator"
DOC = REPO / "docs" / "troubleshooting.md"


def failure_reasons() -> set[str]:
    """Reasons of Permanent/TransientFailure(...) anywhere in the package, and those errors.classify returns."""
    reasons: set[str] = set()
    for source in PACKAGE.rglob("*.py"):
        reasons |= set(re.findall(r'(?:Permanent|Transient)Failure\(\s*"([A-Za-z]+)"', source.read_text()))
    classify = (PACKAGE / "failures.py").read_text()
    returned = [line for line in classify.splitlines() if line.strip().startswith(("return", "UNEXPECTED ="))]
    reasons |= {name for line in returned for name in re.findall(r'"([A-Z][A-Za-z]+)"', line)}
    return reasons


def test_every_failure_reason_has_a_section() -> None:
    reasons = failure_reasons()
    assert {"InvalidSpec", "AuthorizationFailed", "Throttled", "RegistryNotPremium"} <= reasons
    sections = set(re.findall(r"^### (\w+)$", DOC.read_text(), re.MULTILINE))
    assert sorted(reasons - sections) == [], "add a `### Reason` section to docs/troubleshooting.md"
