"""Drift in Azure, changed out of band the way a person with `az rest` would: corrected within one
interval in Enforce mode, reported and left alone in Detect mode; transient ARM faults lose nothing."""

from __future__ import annotations

import pytest
from operatorharness import OperatorEnv

from armemu.seed import PROVIDERS

pytestmark = pytest.mark.integration
NAME = "litware-approved"
WS = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-litware-approved"
INTERVAL = 10


def _ready_with_interval(operator: OperatorEnv, mode: str = "Enforce") -> None:
    drift = {"mode": mode, "interval": f"{INTERVAL}s"}
    operator.apply(operator.manifest("02-managed-approved-outbound.yaml", drift=drift))
    operator.wait_ready(NAME)


def _tamper(operator: OperatorEnv) -> None:
    operator.az_rest("DELETE", f"{WS}/outboundRules/huggingface")
    operator.az_rest("PUT", f"{WS}/outboundRules/exfil", {"properties": {"type": "FQDN", "destination": "example.com"}})
    operator.az_rest("PATCH", WS, {"properties": {"publicNetworkAccess": "Enabled"}})


def test_steady_state_sweep_makes_no_writes(operator: OperatorEnv) -> None:
    _ready_with_interval(operator)
    operator.next_sweep(NAME, 3 * INTERVAL)
    operator.arm.clear_requests()
    operator.next_sweep(NAME, 3 * INTERVAL)
    requests = operator.arm.requests()
    assert requests, "a sweep reads Azure"
    assert [r for r in requests if r["method"] != "GET"] == []


def test_a_sweep_that_finds_nothing_leaves_status_alone(operator: OperatorEnv) -> None:
    """Quiet status: no patch (and so no watch event) for a sweep that changes nothing in it; the
    last-check time waits for the heartbeat (10 minutes), the metric has every sweep."""
    _ready_with_interval(operator)
    operator.next_sweep(NAME, 3 * INTERVAL)
    before = operator.get(NAME)
    operator.next_sweep(NAME, 3 * INTERVAL)
    operator.next_sweep(NAME, 3 * INTERVAL)
    after = operator.get(NAME)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], "two sweeps, no patch"
    assert after["status"]["drift"]["effectiveInterval"] == f"{INTERVAL}s", "not stretched: one resource"
    _tamper(operator)
    operator.next_sweep(NAME, 3 * INTERVAL)
    assert operator.get(NAME)["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]
    assert operator.drift(NAME)["correctionsTotal"] == 3, "a sweep that corrects says so at once"


def test_out_of_band_changes_are_corrected_within_one_interval(operator: OperatorEnv) -> None:
    _ready_with_interval(operator)
    operator.next_sweep(NAME, 3 * INTERVAL)
    _tamper(operator)
    drift = operator.wait_for(
        "three corrections", lambda: (d := operator.drift(NAME)).get("correctionsTotal", 0) >= 3 and d, INTERVAL + 10
    )
    fields = {(item["resource"].rsplit("/", 1)[-1], item["field"], item["action"]) for item in drift["items"]}
    assert ("huggingface", "resource", "Corrected") in fields
    assert ("exfil", "resource", "Corrected") in fields
    assert ("mlw-litware-approved", "properties.publicNetworkAccess", "Corrected") in fields
    assert operator.arm_resource(f"{WS}/outboundRules/huggingface") is not None
    assert operator.arm_resource(f"{WS}/outboundRules/exfil") is None
    workspace = operator.arm_resource(WS)
    assert workspace is not None and workspace["properties"]["publicNetworkAccess"] == "Disabled"
    assert any(event["reason"] == "DriftDetected" for event in operator.events(NAME))
    assert operator.condition(NAME, "Ready")["status"] == "True"


def test_detect_mode_reports_and_leaves_azure_alone(operator: OperatorEnv) -> None:
    _ready_with_interval(operator, mode="Detect")
    operator.next_sweep(NAME, 3 * INTERVAL)
    _tamper(operator)
    in_sync = lambda: operator.condition(NAME, "InSync").get("status") == "False"  # noqa: E731
    operator.wait_for("InSync False", in_sync, INTERVAL + 10)
    condition = operator.condition(NAME, "InSync")
    assert condition["reason"] == "DriftDetected"
    assert operator.drift(NAME).get("correctionsTotal") == 0
    assert operator.arm_resource(f"{WS}/outboundRules/exfil") is not None
    assert operator.arm_resource(f"{WS}/outboundRules/huggingface") is None
    workspace = operator.arm_resource(WS)
    assert workspace is not None and workspace["properties"]["publicNetworkAccess"] == "Enabled"


def test_transient_faults_delay_ready_but_lose_nothing(operator: OperatorEnv) -> None:
    # More 500s than the SDK's own retries absorb, so the operator's retry path runs too.
    operator.arm.fault(method="PUT", path="/workspaces/mlw-litware-approved$", status=500, count=6)
    operator.arm.fault(method="GET", path="/privateDnsZones/", status=429, count=3, retryAfter=1)
    operator.apply(operator.manifest("02-managed-approved-outbound.yaml"))
    operator.wait_ready(NAME, timeout=120)
    statuses = [r["status"] for r in operator.arm.requests()]
    assert statuses.count(500) == 6 and statuses.count(429) == 3
    workspaces = [r for r in operator.arm.resources() if r["id"].lower().endswith("/workspaces/mlw-litware-approved")]
    assert len(workspaces) == 1
    rules = [r for r in operator.arm.resources() if "/outboundrules/" in r["id"].lower()]
    assert len(rules) == 3 + 8 + 4  # declared + PythonPackages preset + Azure's required rules
