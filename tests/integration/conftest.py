"""The operator under test: real kopf, real API server, the ARM emulator as Azure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from operatorharness import OperatorEnv, running_operator

from armemu import Emulator
from kubeharness import ControlPlane


@pytest.fixture
def operator(
    kube: ControlPlane, arm_emulator: Emulator, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OperatorEnv]:
    with running_operator(kube, arm_emulator, namespace, monkeypatch) as env:
        yield env
