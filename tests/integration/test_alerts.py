"""The chart's alerts through promtool itself (built from its Go module by hack/promtool.py, like helm):
the rules file is valid, and the unit tests of tests/promtool/alerts_test.yaml pass on their synthetic
series, each alert firing where it should and not where it must not."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
ALERTS = REPO_ROOT / "charts" / "secureml-operator" / "files" / "alerts.yaml"
ALERT_TESTS = REPO_ROOT / "tests" / "promtool" / "alerts_test.yaml"


@pytest.fixture(scope="session")
def promtool() -> str:
    """hack/promtool.py builds promtool from its Go module once (cached like helm) and prints its path."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "hack" / "promtool.py")], check=True, text=True, stdout=subprocess.PIPE
    )
    return result.stdout.strip().splitlines()[-1]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, text=True, capture_output=True, timeout=120)


def test_promtool_checks_the_alert_rules(promtool: str) -> None:
    rules = sum(len(group["rules"]) for group in yaml.safe_load(ALERTS.read_text())["groups"])
    result = run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {rules} rules found" in result.stdout


def test_promtool_unit_tests_of_every_alert_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_fail_when_an_alert_changes(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: with a threshold of the reconcile-errors alert raised, the case where
    it fires does not, and promtool says which."""
    chart_files = tmp_path / "charts" / "secureml-operator" / "files"
    chart_files.mkdir(parents=True)
    text = ALERTS.read_text()
    assert text.count("> 0.25") == 1
    (chart_files / "alerts.yaml").write_text(text.replace("> 0.25", "> 0.9"))
    (tmp_path / "tests" / "promtool").mkdir(parents=True)
    shutil.copy(ALERT_TESTS, tmp_path / "tests" / "promtool" / "alerts_test.yaml")
    result = run(promtool, "test", "rules", str(tmp_path / "tests" / "promtool" / "alerts_test.yaml"))
    assert result.returncode != 0
    assert "alertname: SecureMLReconcileErrors" in result.stdout + result.stderr
