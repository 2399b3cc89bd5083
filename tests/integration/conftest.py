"""The operator under test: real kopf, real API server, the ARM emulator as Azure."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from containerrecipe import operator_command
from operatorharness import HEARTBEAT_ENV, OperatorEnv, discard_workspaces, prepare_cluster, running_operator

from armemu import Emulator
from kubeharness import ControlPlane
from secureml_operator.api.crd import CRD_PATH


@pytest.fixture(scope="module")
def crd(kube: ControlPlane) -> Iterator[None]:
    """The SecureMLWorkspace CRD, installed and established (what `kubectl apply` is checked against)."""
    kube.kubectl("apply", "--server-side", "-f", str(CRD_PATH))
    kube.kubectl("wait", "--for=condition=established", "crd/securemlworkspaces.secureml.io", "--timeout=60s")
    yield


@pytest.fixture
def operator(
    kube: ControlPlane, arm_emulator: Emulator, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OperatorEnv]:
    with running_operator(kube, arm_emulator, namespace, monkeypatch) as env:
        yield env


@pytest.fixture
def operator_process(
    kube: ControlPlane, arm_emulator: Emulator, namespace: str, tmp_path: Path
) -> Iterator[tuple[OperatorEnv, Any]]:
    """The operator as its own process, so a test can SIGKILL it mid-reconcile and start another.
    Each process logs to `tmp_path / operator-N.log`."""
    prepare_cluster(kube, arm_emulator, namespace)
    env = {
        **os.environ,
        **arm_emulator.env,
        "KUBECONFIG": str(kube.kubeconfig),
        "SMLW_POLLING_INTERVAL_SECONDS": "0.05",
        "SMLW_RETRY_DELAY_SECONDS": "0.5",
        **HEARTBEAT_ENV,
    }
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"operator-{len(processes)}.log").open("w")
        command = [*operator_command(sys.executable), "--standalone", "--namespace", namespace]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        processes.append(process)
        return process

    try:
        yield OperatorEnv(kube, arm_emulator, namespace), start
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=30)
        discard_workspaces(kube, namespace)


@pytest.fixture
def started_operator(operator_process: tuple[OperatorEnv, Any], tmp_path: Path) -> Iterator[OperatorEnv]:
    """The operator as its own process, started; afterwards its log must hold no traceback: every
    expected failure (a fault, a conflict) ends as a condition, not a stack."""
    env, start = operator_process
    start()
    yield env
    logs = "\n".join(log.read_text() for log in sorted(tmp_path.glob("operator-*.log")))
    assert "Traceback" not in logs, "an expected failure reached the log as a traceback"
    assert "unexpected failure" not in logs
