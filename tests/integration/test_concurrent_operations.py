"""Operations that take time and conflict, as in Azure: while one runs, another write to the same VNet
or workspace is refused (409 AnotherOperationInProgress / Conflict), and Azure ML can drop an outbound
rule written during another rule's operation. Someone else writing to the spoke VNet (a subnet of
their own) and to the workspace (a tag) keeps them busy while the operator works: it retries what is
refused, loses no rule, and restores a rule Azure dropped within a drift sweep.
"""

from __future__ import annotations

import threading
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from operatorharness import SPOKE, OperatorEnv

from armemu.seed import PROVIDERS

pytestmark = pytest.mark.integration
APPROVED, HUB = "litware-approved", "litware-hub"
WS = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-litware-approved"
NETWORK_API = "2024-05-01"
INTERVAL = 10
SECONDS = 0.5  # every operation runs this long: long enough to overlap, short enough for a quick test
CHILDREN = ("/outboundrules/", "/securityrules/", "/routes/", "/subnets/", "/virtualnetworkpeerings/")


@pytest.fixture
def operator(started_operator: OperatorEnv) -> OperatorEnv:
    return started_operator


@contextmanager
def someone_writing(operator: OperatorEnv, writes: list[tuple[str, str, Any, str]], every: float) -> Iterator[None]:
    """Another writer repeating `writes` (method, path, body, api-version) every `every` seconds, so the
    VNet or workspace each names is busy most of the time; what Azure refuses it is ignored."""
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.wait(every):
            for method, path, body, api_version in writes:
                try:
                    operator.az_rest(method, path, body, api_version)
                except urllib.error.HTTPError:
                    continue

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join(timeout=10)


def _client(operator: OperatorEnv) -> list[dict[str, Any]]:
    return [r for r in operator.arm.requests() if r.get("caller") == "client"]


def _children_written_and_gone(operator: OperatorEnv) -> list[str]:
    """Children the operator wrote (and Azure answered as written) that are not there, and it did not delete."""
    present = {resource["id"].lower() for resource in operator.arm.resources()}
    latest: dict[str, dict[str, Any]] = {}
    for request in _client(operator):
        path = request["path"].lower()
        if request["method"] in ("PUT", "DELETE") and any(child in path for child in CHILDREN):
            latest[path] = request
    return [
        path
        for path, request in latest.items()
        if request["method"] == "PUT" and request["status"] < 300 and path not in present
    ]


def _refused(operator: OperatorEnv) -> list[dict[str, Any]]:
    """The operator's requests answered with a conflict (409, or 429 that is not throttling)."""
    return [r for r in _client(operator) if r["status"] == 409 or (r["status"] == 429 and not r.get("throttled"))]


def test_with_conflicts_on_examples_2_and_4_reach_ready_retrying_and_losing_no_rule(operator: OperatorEnv) -> None:
    operator.arm.operations(SECONDS, conflicts=True, rule_loss=True)
    their_subnet = f"{SPOKE}/subnets/AzureBastionSubnet", {"properties": {"addressPrefix": "10.0.250.0/26"}}
    tag = {"tags": {"cost-center": "ml-platform"}}

    def refused_on_both() -> bool:
        types = {r["path"].split("/providers/")[1].split("/")[1] for r in _refused(operator)}
        return {"virtualNetworks", "workspaces"} <= types

    writes = [("PUT", *their_subnet, NETWORK_API), ("PATCH", WS, tag, "2025-12-01")]
    with someone_writing(operator, writes, every=0.1):
        operator.apply(operator.manifest("02-managed-approved-outbound.yaml"))
        operator.apply(operator.manifest("04-customer-vnet-hub-firewall.yaml"))
        operator.wait_for("conflicts on the spoke VNet and on the workspace", refused_on_both, 120)
    operator.wait_ready(APPROVED, timeout=180)
    operator.wait_ready(HUB, timeout=180)
    assert not [r for r in operator.arm.requests() if r.get("lost")], "one rule write at a time per workspace"
    assert _children_written_and_gone(operator) == []


def test_a_rule_azure_dropped_is_detected_and_restored_within_a_sweep(operator: OperatorEnv) -> None:
    manifest = operator.manifest("02-managed-approved-outbound.yaml", drift={"mode": "Enforce", "interval": "10s"})
    operator.apply(manifest)
    operator.wait_ready(APPROVED, timeout=120)
    operator.next_sweep(APPROVED, 3 * INTERVAL)
    operator.arm.operations(SECONDS, conflicts=False, rule_loss=True)
    monitor = operator.arm_resource(f"{WS}/outboundRules/monitor")
    assert monitor is not None
    same_rule = {"properties": {key: monitor["properties"][key] for key in ("type", "destination")}}
    operator.az_rest("DELETE", f"{WS}/outboundRules/huggingface")

    def lost_put() -> dict[str, Any] | None:
        puts = [r for r in _client(operator) if r["method"] == "PUT" and r["path"].endswith("/huggingface")]
        return next((r for r in puts if r.get("lost")), None)

    with someone_writing(operator, [("PUT", f"{WS}/outboundRules/monitor", same_rule, "2025-12-01")], every=0.3):
        lost = operator.wait_for("the operator's re-created rule dropped by Azure", lost_put, INTERVAL + 10)
    assert lost["status"] == 202, "Azure answered it as accepted"
    restored = operator.wait_for(
        "the rule restored", lambda: operator.arm_resource(f"{WS}/outboundRules/huggingface"), INTERVAL + 10
    )
    assert restored["properties"]["destination"] == "huggingface.co"
    puts = [r for r in _client(operator) if r["method"] == "PUT" and r["path"].endswith("/huggingface")]
    assert puts[-1]["time"] - lost["time"] <= INTERVAL + 5, "within a sweep of the loss"
    operator.wait_for(
        "the delete, then the loss, each corrected in the drift report",
        lambda: operator.drift(APPROVED).get("correctionsTotal", 0) >= 2,
        INTERVAL + 10,
    )
    operator.wait_ready(APPROVED, timeout=3 * INTERVAL)
