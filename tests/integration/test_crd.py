"""The generated CRD on a real kube-apiserver: examples accepted, each rule refused with its message,
transition rules on updates, `kubectl explain` descriptions, printer columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apicases import CASES, TRANSITIONS, Case, example

from kubeharness import ControlPlane

pytestmark = pytest.mark.integration
EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_every_example_is_accepted(kube: ControlPlane, crd: None, namespace: str) -> None:
    for path in EXAMPLES:
        kube.kubectl("apply", "-n", namespace, "-f", str(path))
    names = kube.kubectl("get", "smlw", "-n", namespace, "-o", "name").stdout.split()
    assert len(names) == len(EXAMPLES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_invalid_manifest_is_refused_with_its_message(
    kube: ControlPlane, crd: None, namespace: str, case: Case
) -> None:
    result = kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(case.manifest()), check=False)
    assert result.returncode != 0, f"{case.id} was accepted"
    assert case.server_expected in result.stderr


@pytest.mark.parametrize("case", TRANSITIONS, ids=lambda c: c.id)
def test_changes_azure_does_not_allow_are_refused(kube: ControlPlane, crd: None, namespace: str, case: Case) -> None:
    original = example(case.base)
    original["metadata"]["name"] = case.manifest()["metadata"]["name"]
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(original))
    result = kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(case.manifest()), check=False)
    assert result.returncode != 0, f"{case.id} was accepted"
    assert case.expected in result.stderr


def test_explain_teaches_the_outbound_fields(kube: ControlPlane, crd: None) -> None:
    text = kube.kubectl("explain", "securemlworkspace.spec.outbound").stdout
    assert "exactly one of managedNetwork or customerNetwork" in text
    assert "managedNetwork" in text and "The workspace's managed network." in text
    rules = kube.kubectl("explain", "smlw.spec.outbound.managedNetwork.rulesPolicy").stdout
    assert "Additive" in rules


def test_get_shows_the_printer_columns(kube: ControlPlane, crd: None, namespace: str) -> None:
    manifest = example("06-selected-ips.yaml")
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    status = {
        "status": {
            "isolation": "AllowInternetOutbound",
            "egressIPs": ["20.1.2.3"],
            "drift": {"correctionsTotal": 4, "items": []},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ],
        }
    }  # fmt: skip
    name = manifest["metadata"]["name"]
    kube.kubectl(
        "patch",
        "smlw",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    lines = kube.kubectl("get", "smlw", name, "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "ISOLATION", "PUBLIC", "EGRESS", "DRIFT", "AGE"]
    assert lines[1].split()[:6] == [
        name,
        "True",
        "AllowInternetOutbound",
        "EnabledFromSelectedIPs",
        "20.1.2.3",
        "4",
    ]
