"""Run the real operator (kopf, in-process) against the real API server and the ARM emulator."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from apicases import example
from kopf.testing import KopfRunner
from prometheus_client import REGISTRY

from armemu import Emulator
from armemu.seed import PROVIDERS
from kubeharness import ControlPlane, wait_for
from secureml_operator.api.crd import CRD_PATH, TENANCY_CRD_PATH

Manifest = dict[str, Any]
CREDENTIAL_SECRET = "azure-credentials"
# For an operator in a process of its own: every sweep writes status.drift.lastCheckTime, so tests see
# each sweep (an operator in the test's process shows each one in its metric).
HEARTBEAT_ENV = {"SMLW_STATUS_HEARTBEAT": "0s"}
# Example 4 (customer VNet behind a hub firewall) in Azure, as tests of its drift and isolation name it.
NET = f"{PROVIDERS}/Microsoft.Network"
HUB = "litware-hub"
SPOKE = f"{NET}/virtualNetworks/vnet-litware-spoke"
NSG = f"{NET}/networkSecurityGroups/nsg-mlw-litware-hub-compute"
ROUTES = f"{NET}/routeTables/rt-mlw-litware-hub-compute"
# An NSG rule a person adds by hand: SSH from the internet, the classic hole drift tests open.
EXTRA_INBOUND = {
    "properties": {
        "priority": 300,
        "direction": "Inbound",
        "access": "Allow",
        "protocol": "Tcp",
        "sourceAddressPrefix": "Internet",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "22",
    }
}


@dataclass
class OperatorEnv:
    kube: ControlPlane
    arm: Emulator
    namespace: str

    def manifest(self, name: str, **spec_changes: Any) -> Manifest:
        """An example, with the emulator's service principal as credentialRef."""
        manifest = copy.deepcopy(example(name))
        manifest["spec"]["azure"]["credentialRef"] = {"name": CREDENTIAL_SECRET}
        manifest["spec"].update(spec_changes)
        return manifest

    def apply(self, manifest: Manifest) -> None:
        self.kube.kubectl("apply", "-n", self.namespace, "-f", "-", input=json.dumps(manifest))

    def get(self, name: str) -> Manifest:
        result = self.kube.kubectl("get", "smlw", name, "-n", self.namespace, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else {}

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        conditions = (self.get(name).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c.get("type") == kind), {})

    def drift(self, name: str) -> dict[str, Any]:
        """`status.drift` of one resource (empty before its first sweep)."""
        return dict((self.get(name).get("status") or {}).get("drift") or {})

    def last_check(self, name: str) -> tuple[float, str | None]:
        """When the operator last compared the resource with Azure: the metric, for an operator in
        this process (status.drift.lastCheckTime moves only when status changes or a heartbeat is
        due), and lastCheckTime, for an operator process run with a heartbeat of 0 (HEARTBEAT_ENV)."""
        labels = {"resource_namespace": self.namespace, "resource_name": name}
        metric = REGISTRY.get_sample_value("secureml_drift_last_check_timestamp_seconds", labels) or 0.0
        return metric, self.drift(name).get("lastCheckTime")

    def next_sweep(self, name: str, timeout: float) -> dict[str, Any]:
        """Wait for the next drift sweep to finish; return the drift report it left."""
        metric, stamp = self.last_check(name)
        moved = lambda: (now := self.last_check(name))[0] > metric or now[1] != stamp  # noqa: E731
        self.wait_for("a drift sweep", moved, timeout)
        return self.drift(name)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
        return wait_for(what, check, timeout)

    def wait_condition(
        self, name: str, kind: str, status: str, reason: str, timeout: float = 60, saying: str = ""
    ) -> dict[str, Any]:
        """Wait until condition `kind` has this status and reason, and its message has `saying` in it;
        return it (fail with the status)."""

        def reached() -> dict[str, Any] | None:
            condition = self.condition(name, kind)
            found = (condition.get("status"), condition.get("reason")) == (status, reason)
            return condition if found and saying in condition.get("message", "") else None

        try:
            found: dict[str, Any] = self.wait_for(f"{kind}={status} ({reason})", reached, timeout)
        except TimeoutError as error:
            raise AssertionError(f"{error}; status: {json.dumps(self.get(name).get('status'), indent=1)}") from None
        return found

    def wait_ready(self, name: str, timeout: float = 60) -> Manifest:
        def ready() -> Manifest | None:
            body = self.get(name)
            status = body.get("status") or {}
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            fresh = status.get("observedGeneration") == body.get("metadata", {}).get("generation")
            return body if fresh and conditions.get("Ready", {}).get("status") == "True" else None

        try:
            result: Manifest = self.wait_for(f"{name} Ready", ready, timeout)
        except TimeoutError as error:
            raise AssertionError(f"{error}; status: {json.dumps(self.get(name).get('status'), indent=1)}") from None
        return result

    def events(self, name: str) -> list[dict[str, Any]]:
        out = self.kube.kubectl(
            "get",
            "events",
            "-n",
            self.namespace,
            "--field-selector",
            f"involvedObject.name={name}",
            "-o",
            "json",
        ).stdout
        return list(json.loads(out)["items"])

    def arm_resource(self, suffix: str) -> dict[str, Any] | None:
        """The stored body of the emulator resource whose id ends with `suffix` (case-insensitive)."""
        found = [r for r in self.arm.resources() if r["id"].lower().endswith(suffix.lower())]
        return found[0]["body"] if found else None

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.arm.requests() if r["method"] != "GET"]

    def az_rest(self, method: str, path: str, body: Any = None, api_version: str | None = None) -> Any:
        return self.arm.rest(method, path, body, api_version)


def _secret(arm: Emulator) -> str:
    env = arm.env
    data = {
        "tenantId": env["AZURE_TENANT_ID"],
        "clientId": env["AZURE_CLIENT_ID"],
        "clientSecret": env["AZURE_CLIENT_SECRET"],
    }
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": CREDENTIAL_SECRET}, "data": encoded})


def prepare_cluster(kube: ControlPlane, arm: Emulator, namespace: str) -> None:
    """What an installation provides before the operator starts: the CRDs, and the credentials
    Secret that the examples' credentialRef names (set up as the cluster admin)."""
    for crd in (CRD_PATH, TENANCY_CRD_PATH):
        kube.kubectl("apply", "--server-side", "-f", str(crd))
    kube.kubectl("wait", "--for=condition=established", "crd/securemlworkspaces.secureml.io", "--timeout=60s")
    kube.kubectl("wait", "--for=condition=established", "crd/securemltenancypolicies.secureml.io", "--timeout=60s")
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=_secret(arm))


@contextmanager
def running_operator(
    kube: ControlPlane,
    arm: Emulator,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    kubeconfig: Path | None = None,
    scope: Sequence[str] | None = None,
) -> Iterator[OperatorEnv]:
    """`kubeconfig`: the operator's own credentials (e.g. a ServiceAccount token; set-up stays admin).
    `scope`: kopf's namespace and peering flags, instead of `--standalone --namespace <namespace>`."""
    prepare_cluster(kube, arm, namespace)
    for key, value in {
        **arm.env,
        "KUBECONFIG": str(kubeconfig or kube.kubeconfig),
        "SMLW_POLLING_INTERVAL_SECONDS": "0.05",
        "SMLW_RETRY_DELAY_SECONDS": "0.5",
    }.items():
        monkeypatch.setenv(key, value)
    flags = ["--standalone", "--namespace", namespace] if scope is None else list(scope)
    args = ["run", *flags, "-m", "secureml_operator.handlers"]
    served = {namespace, *(flags[i + 1] for i, flag in enumerate(flags[:-1]) if flag == "--namespace")}
    try:
        with KopfRunner(args, timeout=120) as runner:
            yield OperatorEnv(kube, arm, namespace)
    finally:
        for name in sorted(served):
            discard_workspaces(kube, name)
    assert runner.exception is None, runner.exception


def discard_workspaces(kube: ControlPlane, namespace: str) -> None:
    """What a namespace's deletion does in a cluster, where the test control plane (no controller
    manager) leaves them: SecureMLWorkspaces left by a test go, finalizers and all, so their ledgers
    claim nothing in later tests (a live resource's IP rules are kept for it)."""
    listed = kube.kubectl("get", "smlw", "-n", namespace, "-o", "name", check=False).stdout.split()
    for name in listed:
        unfinalized = json.dumps({"metadata": {"finalizers": None}})
        kube.kubectl("patch", name, "-n", namespace, "--type=merge", "-p", unfinalized, check=False)
        kube.kubectl("delete", name, "-n", namespace, "--wait=false", "--ignore-not-found", check=False)
