"""The chart's alerts, Grafana dashboard and values schema, without a control plane: every metric
they name is one the operator exports, every alert has promtool unit tests that fire and that must
not, and the schema describes every value of values.yaml. (tests/integration/test_alerts.py runs
promtool itself; tests/integration/test_chart.py renders and installs.)"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

import secureml_operator
from secureml_operator.metrics import RESOURCES

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "secureml-operator"
ALERTS = CHART / "files" / "alerts.yaml"
DASHBOARD = CHART / "files" / "dashboard.json"
ALERT_TESTS = REPO_ROOT / "tests" / "promtool" / "alerts_test.yaml"
# Series Prometheus makes itself for every scrape target, not the operator.
SCRAPE_SERIES = {"up"}
# The exposition names each metric type adds to its family's name.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
PROMQL_WORDS |= {"offset", "inf", "nan"}


def exported_metric_names() -> set[str]:
    """Every name the operator's /metrics can show: the default registry after importing every module of
    the package (a metric defined anywhere in it registers on import), with each type's suffixes. A
    labelled family has no sample before its first use, so names come from families, not samples."""
    for module in pkgutil.walk_packages(secureml_operator.__path__, "secureml_operator."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
        names |= {sample.name for sample in family.samples}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: strings, label matchers, ranges, grouping label
    lists and Grafana variables removed, then every identifier that is neither a function or
    aggregation (followed by a parenthesis), a keyword nor part of a number or duration."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+(?::\w+)?\}?", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        before = text[: match.start()].rstrip()[-1:]
        if before.isdigit() or before == ".":
            continue  # 1e3, 5m
        if text[match.end() :].lstrip().startswith("(") or match.group().lower() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels") or [])


def dashboard_queries() -> list[str]:
    """Every panel target's expression, and the metric selector of each `label_values(...)` variable."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard_panels(dashboard["panels"]) for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else ""
        if variable["type"] == "query":
            selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", text)
            assert selector, f"dashboard variable {variable['name']}: unexpected query {text!r}"
            exprs.append(selector.group(1))
    return exprs


def test_metric_names_are_found_in_promql_and_nothing_else() -> None:
    expr = (
        'sum by (job, le) (rate(a_bucket{x="y(z)", job=~"$job"}[5m] offset 1h)) / on (job) group_left(instance)'
        " b_total + 1e3 and ignoring(pod) c > bool 0.5 or absent(up{job='x'} == 1) * histogram_quantile(0.9, d)"
        " unless e[$__rate_interval]"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "up", "d", "e"}


def test_the_operator_exports_its_families_with_their_suffixes() -> None:
    names = exported_metric_names()
    assert {"secureml_reconciles_total", "secureml_reconcile_duration_seconds_bucket"} <= names
    assert "secureml_reconciles" not in names, "a counter's samples end in _total"


def test_alerts_name_only_metrics_the_operator_exports() -> None:
    exported = exported_metric_names() | SCRAPE_SERIES
    rules = alert_rules()
    assert rules
    for rule in rules:
        named = metric_names(rule["expr"])
        assert named, f"{rule['alert']}: no metric found in {rule['expr']!r}"
        assert named <= exported, (
            f"{rule['alert']} names {sorted(named - exported)}, which the operator does not export"
        )


def test_dashboard_names_only_metrics_the_operator_exports() -> None:
    exported = exported_metric_names() | SCRAPE_SERIES
    named = {name for expr in dashboard_queries() for name in metric_names(expr)}
    assert named <= exported, f"the dashboard names {sorted(named - exported)}, which the operator does not export"
    # What the dashboard is for: resources by condition, drift by resource type, ARM calls and 429s by
    # subscription, reconcile latency.
    assert {
        "secureml_resource_condition",
        "secureml_drift_found_total",
        "secureml_drift_corrected_total",
        "secureml_arm_subscription_calls_total",
        "secureml_reconcile_duration_seconds_bucket",
    } <= named


def test_dashboard_panels_use_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = list(dashboard_panels(dashboard["panels"]))
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids are unique"
    for panel in panels:
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_promtool_series_name_only_exported_metrics() -> None:
    exported = exported_metric_names() | SCRAPE_SERIES
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    series = {item["series"].split("{")[0] for test in tests for item in test["input_series"]}
    assert series <= exported, f"promtool tests feed {sorted(series - exported)}, which the operator does not export"


def test_every_alert_has_a_promtool_case_that_fires_and_one_that_must_not() -> None:
    document = yaml.safe_load(ALERT_TESTS.read_text())
    assert (ALERT_TESTS.parent / document["rule_files"][0]).resolve() == ALERTS
    cases = [case for test in document["tests"] for case in test["alert_rule_test"]]
    for rule in alert_rules():
        outcomes = [bool(case["exp_alerts"]) for case in cases if case["alertname"] == rule["alert"]]
        assert True in outcomes, f"{rule['alert']}: no promtool case where it fires"
        assert False in outcomes, f"{rule['alert']}: no promtool case where it must not fire"


def test_alerts_name_the_scrape_job_the_chart_replaces() -> None:
    """templates/prometheusrule.yaml replaces this exact text with the release's job."""
    exprs = [rule["expr"] for rule in alert_rules() if "up{" in rule["expr"]]
    assert exprs and all('job="secureml-operator-metrics"' in expr for expr in exprs)


def schema_leaves(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, its schema) for every key of values.yaml, descending into objects the schema
    describes property by property."""
    for key, value in values.items():
        properties = schema.get("properties") or {}
        assert key in properties, f"values.schema.json lacks {prefix}{key}"
        node = properties[key]
        yield f"{prefix}{key}", node
        if isinstance(value, dict) and "properties" in node:
            yield from schema_leaves(value, node, f"{prefix}{key}.")


def test_values_schema_describes_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert schema["additionalProperties"] is False
    leaves = dict(schema_leaves(values, schema))
    assert "metrics.prometheusRule.enabled" in leaves and "operator.logFormat" in leaves
    for key, node in leaves.items():
        assert node.get("description"), f"values.schema.json: {key} has no description"
        assert "type" in node or "anyOf" in node, f"values.schema.json: {key} has no type"


@pytest.mark.parametrize(
    ("key", "allowed"),
    [("operator.logFormat", ["json", "plain"]), ("image.pullPolicy", ["Always", "IfNotPresent", "Never"])],
)
def test_values_schema_fixes_enumerated_values(key: str, allowed: list[str]) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    leaves = dict(schema_leaves(values, schema))
    assert leaves[key]["enum"] == allowed


def test_per_resource_gauges_show_what_was_set_until_the_resource_is_forgotten() -> None:
    labels = {"resource_namespace": "team-gauges", "resource_name": "ws"}
    RESOURCES.condition("team-gauges", "ws", "Ready", True)
    RESOURCES.condition("team-gauges", "ws", "Stalled", False)
    RESOURCES.last_check("team-gauges", "ws", 1700000000.5)
    RESOURCES.effective_interval("team-gauges", "ws", 240.0)
    sample = REGISTRY.get_sample_value
    assert sample("secureml_resource_condition", {**labels, "condition": "Ready"}) == 1.0
    assert sample("secureml_resource_condition", {**labels, "condition": "Stalled"}) == 0.0
    assert sample("secureml_resource_condition", {**labels, "condition": "InSync"}) is None, "never set"
    assert sample("secureml_drift_last_check_timestamp_seconds", labels) == 1700000000.5
    assert sample("secureml_drift_effective_interval_seconds", labels) == 240.0
    assert sample("secureml_conflicting_writer_fields", labels) is None, "never set"
    RESOURCES.conflicting_writer_fields("team-gauges", "ws", 2)
    assert sample("secureml_conflicting_writer_fields", labels) == 2.0
    exposition = generate_latest(REGISTRY).decode()
    assert 'secureml_resource_condition{condition="Ready",resource_name="ws",resource_namespace="team-gauges"} 1.0' in (
        exposition
    )
    RESOURCES.forget("team-gauges", "ws")
    assert 'resource_namespace="team-gauges"' not in generate_latest(REGISTRY).decode()
