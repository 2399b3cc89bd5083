"""The container's entrypoint, as a process: `python -OO -m secureml_operator` with its liveness
endpoint, Prometheus metrics that move with what it does, and JSON logs without secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from containerrecipe import operator_command
from operatorharness import OperatorEnv, prepare_cluster
from prometheus_client.parser import text_string_to_metric_families

from armemu import Emulator
from armemu.seed import PROVIDERS
from kubeharness import ControlPlane, free_port

pytestmark = pytest.mark.integration
NAME = "litware-approved"
WS = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-litware-approved"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except OSError:
        return 0, ""


def _scrape(port: int) -> Samples:
    status, text = _get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("secureml_")
        for sample in family.samples
    }


def _total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all(dict(sample_labels).get(key) == wanted for key, wanted in labels.items())
    )


@pytest.fixture
def entrypoint(
    kube: ControlPlane, arm_emulator: Emulator, namespace: str, tmp_path: Path
) -> Iterator[tuple[OperatorEnv, int, int, Path]]:
    prepare_cluster(kube, arm_emulator, namespace)
    liveness, metrics = free_port(), free_port()
    log = tmp_path / "operator.log"
    env = {
        **os.environ,
        **arm_emulator.env,
        "KUBECONFIG": str(kube.kubeconfig),
        "SMLW_LOG_FORMAT": "json",
        "SMLW_METRICS_PORT": str(metrics),
        "SMLW_POLLING_INTERVAL_SECONDS": "0.05",
        "SMLW_RETRY_DELAY_SECONDS": "0.5",
    }
    command = [*operator_command(sys.executable), "--standalone", "--namespace", namespace]
    command += ["--liveness", f"http://127.0.0.1:{liveness}/healthz"]
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            yield OperatorEnv(kube, arm_emulator, namespace), liveness, metrics, log
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_entrypoint_serves_liveness_metrics_and_json_logs(entrypoint: tuple[OperatorEnv, int, int, Path]) -> None:
    operator, liveness, metrics, log = entrypoint
    operator.wait_for("liveness 200", lambda: _get(f"http://127.0.0.1:{liveness}/healthz")[0] == 200, 60)
    before = _scrape(metrics)
    assert _total(before, "secureml_reconciles_total") == 0

    operator.arm.fault(method="GET", path="/privateDnsZones/", status=429, count=2, retryAfter=1)
    operator.apply(operator.manifest("02-managed-approved-outbound.yaml", drift={"mode": "Enforce", "interval": "10s"}))
    operator.wait_ready(NAME, timeout=90)
    operator.az_rest("DELETE", f"{WS}/outboundRules/huggingface")
    operator.wait_for("the rule restored", lambda: operator.arm_resource(f"{WS}/outboundRules/huggingface"), 30)

    def corrected() -> Samples | None:
        samples = _scrape(metrics)
        return samples if _total(samples, "secureml_drift_corrected_total") >= 1 else None

    after = operator.wait_for("drift metrics", corrected, 15)
    rule_type = "Microsoft.MachineLearningServices/workspaces/outboundRules"
    assert _total(after, "secureml_reconciles_total", outcome="ready") >= 1
    assert _total(after, "secureml_reconcile_duration_seconds_count", mode="reconcile") >= 1
    assert _total(after, "secureml_reconcile_duration_seconds_count", mode="drift") >= 1
    assert _total(after, "secureml_drift_found_total", resource_type=rule_type) >= 1
    assert _total(after, "secureml_drift_corrected_total", resource_type=rule_type) >= 1
    assert _total(after, "secureml_arm_calls_total", method="PUT", resource_type=rule_type) >= 3
    assert _total(after, "secureml_arm_calls_total", status_code="429") == 2
    assert _total(after, "secureml_arm_throttled_total", method="GET") == 2

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any("Handler 'reconcile' succeeded" in record.get("message", "") for record in records)
    assert any(record.get("message") == "reconciled" and record.get("resource") for record in records)
    text = log.read_text()
    assert operator.arm.env["AZURE_CLIENT_SECRET"] not in text
    assert "Bearer " not in text and "access_token" not in text
