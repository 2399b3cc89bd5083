"""`make demo`: watch the operator isolate a workspace and correct drift, without an Azure subscription.

It starts a local control plane (real kube-apiserver + etcd) and the ARM emulator (seeded with the
storage account, key vault, registry and data lake the examples reference), runs the operator, applies
the approved-outbound example, then changes Azure behind the operator's back three times and shows
each change detected and corrected. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from armemu import Emulator  # noqa: E402
from armemu.seed import PROVIDERS, seed_litware  # noqa: E402
from kubeharness import ControlPlane, free_port  # noqa: E402

NAME, NAMESPACE = "litware-approved", "ml-platform"
WORKSPACE = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-litware-approved"
INTERVAL = 10


def say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.kube = ControlPlane(workdir / "cluster")
        self.arm = Emulator(workdir / "emulator")
        self.operator: subprocess.Popen[bytes] | None = None

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return self.kube.kubectl(*args, input=stdin).stdout

    def status(self) -> dict[str, Any]:
        body = json.loads(self.kubectl("get", "smlw", NAME, "-n", NAMESPACE, "-o", "json"))
        return dict(body.get("status") or {})

    def wait(self, what: str, check: Any, timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.5)
        raise SystemExit(f"demo: timed out waiting for {what}; operator log: {self.workdir / 'operator.log'}")

    def az_rest(self, method: str, path: str, body: Any = None) -> None:
        request = urllib.request.Request(
            f"{self.arm.endpoint}{path}?api-version=2025-12-01",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer a-colleague-in-the-portal", "Content-Type": "application/json"},
        )
        context = ssl.create_default_context(cafile=str(self.arm.ca_path))
        urllib.request.urlopen(request, context=context, timeout=30).close()

    def start(self) -> None:
        say("Starting a local control plane (kube-apiserver + etcd) and the ARM emulator")
        self.kube.start()
        seed_litware(self.arm.state)
        self.arm.start()
        print(f"kube-apiserver {self.kube.server}; ARM emulator {self.arm.endpoint}")
        self.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        self.kubectl("wait", "--for=condition=established", "crd/securemlworkspaces.secureml.io", "--timeout=60s")
        self.kubectl("create", "namespace", NAMESPACE)
        env = self.arm.env
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "azure-credentials", "namespace": NAMESPACE},
            "data": {
                key: base64.b64encode(env[var].encode()).decode()
                for key, var in (
                    ("tenantId", "AZURE_TENANT_ID"),
                    ("clientId", "AZURE_CLIENT_ID"),
                    ("clientSecret", "AZURE_CLIENT_SECRET"),
                )
            },
        }
        self.kubectl("apply", "-f", "-", stdin=json.dumps(secret))
        say("Running the operator (log: .cache/demo/operator.log)")
        operator_env = {
            **os.environ,
            **env,
            "KUBECONFIG": str(self.kube.kubeconfig),
            "SMLW_POLLING_INTERVAL_SECONDS": "0.2",
            "SMLW_RETRY_DELAY_SECONDS": "2",
        }
        with (self.workdir / "operator.log").open("wb") as log:
            self.operator = subprocess.Popen(
                [sys.executable, "-m", "secureml_operator", "--standalone", "--namespace", NAMESPACE,
                 "--liveness", f"http://127.0.0.1:{free_port()}/healthz"],
                env=operator_env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def run(self) -> None:
        manifest = yaml.safe_load((REPO / "examples" / "02-managed-approved-outbound.yaml").read_text())
        manifest["metadata"]["namespace"] = NAMESPACE
        manifest["spec"]["azure"]["credentialRef"] = {"name": "azure-credentials"}
        manifest["spec"]["drift"] = {"mode": "Enforce", "interval": f"{INTERVAL}s"}
        say("kubectl apply -f examples/02-managed-approved-outbound.yaml (drift interval 10s)")
        self.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
        started = time.monotonic()
        self.wait("Ready", lambda: _condition(self.status(), "Ready") == "True")
        print(f"Ready after {time.monotonic() - started:.1f}s")
        print(self.kubectl("get", "smlw", "-n", NAMESPACE))
        status = self.status()
        shown = {key: status[key] for key in ("workspace", "privateEndpoint", "isolation") if key in status}
        shown["conditions"] = {c["type"]: f"{c['status']} ({c['reason']})" for c in status["conditions"]}
        print(yaml.safe_dump(shown, sort_keys=False))

        changes = [
            ("deletes the outbound rule 'huggingface'", "DELETE", f"{WORKSPACE}/outboundRules/huggingface", None),
            ("adds an unapproved FQDN rule to example.com", "PUT", f"{WORKSPACE}/outboundRules/exfil",
             {"properties": {"type": "FQDN", "destination": "example.com"}}),
            ("enables public network access", "PATCH", WORKSPACE, {"properties": {"publicNetworkAccess": "Enabled"}}),
        ]  # fmt: skip
        for number, (what, method, path, body) in enumerate(changes, start=1):
            say(f"Someone {what} in Azure, behind the operator's back")
            before = int((self.status().get("drift") or {}).get("correctionsTotal") or 0)
            self.az_rest(method, path, body)
            changed = time.monotonic()
            self.wait(
                "the correction",
                lambda before=before: int((self.status().get("drift") or {}).get("correctionsTotal") or 0) > before,
                timeout=3 * INTERVAL,
            )
            latest = (self.status().get("drift") or {}).get("items", [{}])[0]
            print(
                f"change {number} detected and corrected {time.monotonic() - changed:.1f}s later: "
                f"{latest.get('resource', '').rsplit('/', 1)[-1]} {latest.get('field')}: "
                f"found {latest.get('actual')}, expected {latest.get('expected')} -> {latest.get('action')}"
            )
        print()
        print(self.kubectl("get", "smlw", "-n", NAMESPACE))
        events = self.kubectl("get", "events", "-n", NAMESPACE, "--field-selector", "reason=DriftDetected",
                              "-o", "custom-columns=REASON:.reason,MESSAGE:.message")  # fmt: skip
        print(events[:3000])

    def stop(self) -> None:
        say("Cleaning up: deleting the resource (deletionPolicy Delete), then stopping everything")
        try:
            if self.operator is not None and self.operator.poll() is None:
                self.kube.kubectl("delete", "smlw", NAME, "-n", NAMESPACE, "--timeout=60s")
                owned = [r["id"] for r in self.arm.resources() if "mlw-litware-approved" in r["id"]]
                print(f"Azure resources of the workspace left after delete: {len(owned)}")
        finally:
            if self.operator is not None:
                self.operator.terminate()
                self.operator.wait(20)
            self.arm.stop()
            self.kube.stop()


def _condition(status: dict[str, Any], kind: str) -> str | None:
    return next((c["status"] for c in status.get("conditions") or [] if c["type"] == kind), None)


def main() -> int:
    workdir = REPO / ".cache" / "demo"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    demo = Demo(workdir)
    try:
        demo.start()
        demo.run()
    finally:
        demo.stop()
    say("Demo finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
