"""Conflicting writers, as they happen in a subscription: an outside writer that keeps re-adding an
NSG rule the operator removes, and an Azure Policy `modify` that sets a field back inside the
operator's own write. Each is detected within CONFLICT_THRESHOLD sweeps, stops the fight, survives a
restart of the operator (the counts live in status), and resumes when the reset annotation changes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from operatorharness import EXTRA_INBOUND, Manifest, OperatorEnv

from armemu.seed import PROVIDERS
from secureml_operator.engine.conflicts import CONFLICT_THRESHOLD, RESET_ANNOTATION

pytestmark = pytest.mark.integration
INTERVAL = 10
NAT = "litware-nat"
NSG = f"{PROVIDERS}/Microsoft.Network/networkSecurityGroups/nsg-mlw-litware-nat-compute"
SSH_RULE = f"{NSG}/securityRules/AllowSshFromInternet"
IPS = "litware-selected-ips"
WORKSPACE = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-litware-ips"
Start = Callable[[], Any]


def _swept_often(manifest: Manifest) -> Manifest:
    manifest["spec"]["drift"] = {"mode": "Enforce", "interval": f"{INTERVAL}s"}
    return manifest


def _stopped_fight(operator: OperatorEnv, name: str, resource: str, field: str) -> dict[str, Any]:
    def stopped() -> dict[str, Any] | None:
        fields = ((operator.get(name).get("status") or {}).get("conflicts") or {}).get("fields") or []
        return next(
            (f for f in fields if f["resource"].lower() == resource.lower() and f["field"] == field and f["stopped"]),
            None,
        )

    found: dict[str, Any] = operator.wait_for(
        f"a stopped fight over {field}", stopped, timeout=(CONFLICT_THRESHOLD + 2) * INTERVAL + 20
    )
    return found


def _restarted_without_a_fight(operator: OperatorEnv, start: Start, process: Any, name: str, resource: str) -> None:
    """SIGKILL the operator, start another, and see two sweeps leave the fought resource alone."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    start()
    since = len(operator.arm.requests())
    operator.next_sweep(name, 3 * INTERVAL)
    operator.next_sweep(name, 3 * INTERVAL)
    requests = operator.arm.requests()[since:]
    # The operator's writes only: the outside writer may still be re-adding what the last one removed.
    writes = [
        r["method"]
        for r in requests
        if r["method"] != "GET" and r["path"].lower() == resource.lower() and r.get("caller") == "client"
    ]
    assert writes == [], "the restarted operator remembers the conflict: no fight"
    assert operator.condition(name, "InSync")["reason"] == "ConflictingWriter"


def _resume(operator: OperatorEnv, name: str, value: str) -> None:
    operator.kube.kubectl(
        "annotate", "smlw", name, "-n", operator.namespace, f"{RESET_ANNOTATION}={value}", "--overwrite"
    )


@pytest.fixture
def readding_writer(operator_process: tuple[OperatorEnv, Start]) -> Iterator[threading.Event]:
    """Someone's pipeline that puts the SSH rule back whenever it is gone; set the event to stop it."""
    operator, _ = operator_process
    stop = threading.Event()

    def keep_adding() -> None:
        while not stop.wait(0.3):
            if operator.arm_resource(NSG) is not None and operator.arm_resource(SSH_RULE) is None:
                operator.az_rest("PUT", SSH_RULE, EXTRA_INBOUND)

    writer = threading.Thread(target=keep_adding, daemon=True)
    writer.start()
    yield stop
    stop.set()
    writer.join(timeout=10)


def test_an_outside_writer_re_adding_a_rule_is_a_conflict_that_survives_a_restart(
    operator_process: tuple[OperatorEnv, Start], readding_writer: threading.Event
) -> None:
    operator, start = operator_process
    process = start()
    operator.apply(_swept_often(operator.manifest("03-customer-vnet-nat.yaml")))
    operator.wait_ready(NAT, timeout=90)
    fight = _stopped_fight(operator, NAT, SSH_RULE, "resource")
    assert fight["sweeps"] >= CONFLICT_THRESHOLD
    in_sync = operator.condition(NAT, "InSync")
    assert (in_sync["status"], in_sync["reason"]) == ("False", "ConflictingWriter")
    assert "AllowSshFromInternet:resource" in in_sync["message"]
    assert operator.condition(NAT, "Ready")["reason"] == "ConflictingWriter"

    _restarted_without_a_fight(operator, start, process, NAT, SSH_RULE)

    readding_writer.set()
    _resume(operator, NAT, "writer-stopped")
    operator.wait_for("the rule removed again", lambda: operator.arm_resource(SSH_RULE) is None, 3 * INTERVAL)
    operator.wait_for("in sync", lambda: operator.condition(NAT, "InSync").get("reason") == "InSync", 3 * INTERVAL)
    operator.wait_ready(NAT, timeout=3 * INTERVAL)


def test_a_policy_that_reverts_a_write_is_a_conflict_not_success(operator_process: tuple[OperatorEnv, Start]) -> None:
    operator, start = operator_process
    process = start()
    # The built-in "Azure Machine Learning workspaces should disable public network access", as `modify`.
    operator.arm.policy(
        type="Microsoft.MachineLearningServices/workspaces", path="properties.publicNetworkAccess", value="Disabled"
    )
    operator.apply(_swept_often(operator.manifest("06-selected-ips.yaml")))
    operator.wait_for(
        "the write reported as not kept", lambda: operator.condition(IPS, "InSync").get("reason") == "WriteReverted"
    )
    assert operator.condition(IPS, "Ready")["status"] == "False", "a write Azure did not keep is not Ready"
    fight = _stopped_fight(operator, IPS, WORKSPACE, "properties.publicNetworkAccess")
    assert fight["writer"] == operator.arm.env["AZURE_CLIENT_ID"], "ARM's systemData names the last writer"
    assert operator.condition(IPS, "InSync")["reason"] == "ConflictingWriter"

    _restarted_without_a_fight(operator, start, process, IPS, WORKSPACE)

    operator.arm.clear_policies()
    _resume(operator, IPS, "policy-exempted")
    operator.wait_ready(IPS, timeout=3 * INTERVAL)
    assert operator.arm_resource(WORKSPACE)["properties"]["publicNetworkAccess"] == "Enabled"
    assert operator.condition(IPS, "InSync")["reason"] == "InSync"
