"""Input that cannot work in Azure is refused at `kubectl apply --server-side` with its rule's message,
and edge values that do work are accepted (issue #12; the table is tests/apicases/admission.py)."""

from __future__ import annotations

import json

import pytest
from apicases import Case
from apicases.admission import ACCEPTED, REFUSALS

from kubeharness import ControlPlane

pytestmark = pytest.mark.integration


def _apply(kube: ControlPlane, namespace: str, case: Case) -> tuple[int, str]:
    result = kube.kubectl(
        "apply", "--server-side", "-n", namespace, "-f", "-", input=json.dumps(case.manifest()), check=False
    )
    return result.returncode, result.stderr


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.id)
def test_what_cannot_work_is_refused_with_its_message(
    kube: ControlPlane, crd: None, namespace: str, case: Case
) -> None:
    returncode, stderr = _apply(kube, namespace, case)
    assert returncode != 0, f"{case.id} was accepted"
    assert case.server_expected in stderr


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.id)
def test_edge_values_that_work_are_accepted(kube: ControlPlane, crd: None, namespace: str, case: Case) -> None:
    returncode, stderr = _apply(kube, namespace, case)
    assert returncode == 0, stderr
