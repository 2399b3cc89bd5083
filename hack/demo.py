"""`make demo`: watch the operator isolate a workspace and correct drift, without an Azure subscription.

It starts a local control plane (real kube-apiserver + etcd) and the ARM emulator (seeded with the
storage account, key vault, registry and data lake the examples reference), runs the operator, applies
the approved-outbound example, then changes Azure behind the operator's back three times and shows
each change detected and corrected. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any

import yaml
from sandbox import NAMESPACE, PROVIDERS, REPO, Sandbox

WORKSPACE = f"{PROVIDERS}/Microsoft.MachineLearningServices/workspaces/mlw-litware-approved"
INTERVAL = 10
CHANGES = [
    ("deletes the outbound rule 'huggingface'", "DELETE", f"{WORKSPACE}/outboundRules/huggingface", None),
    ("adds an unapproved FQDN rule to example.com", "PUT", f"{WORKSPACE}/outboundRules/exfil",
     {"properties": {"type": "FQDN", "destination": "example.com"}}),
    ("enables public network access", "PATCH", WORKSPACE, {"properties": {"publicNetworkAccess": "Enabled"}}),
]  # fmt: skip


def say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def corrections(sandbox: Sandbox, name: str) -> int:
    return int((sandbox.status(name).get("drift") or {}).get("correctionsTotal") or 0)


def run(sandbox: Sandbox) -> None:
    say("kubectl apply -f examples/02-managed-approved-outbound.yaml (with drift interval 10s)")
    name = sandbox.apply_example("02-managed-approved-outbound.yaml", drift={"mode": "Enforce", "interval": "10s"})
    started = time.monotonic()
    sandbox.wait("Ready", lambda: sandbox.condition(name, "Ready") == "True")
    print(f"Ready after {time.monotonic() - started:.1f}s\n")
    print(sandbox.kubectl("get", "smlw", "-n", NAMESPACE))
    status = sandbox.status(name)
    shown: dict[str, Any] = {key: status[key] for key in ("workspace", "privateEndpoint", "isolation") if key in status}
    shown["conditions"] = {c["type"]: f"{c['status']} ({c['reason']})" for c in status["conditions"]}
    print(yaml.safe_dump(shown, sort_keys=False))
    for number, (what, method, path, body) in enumerate(CHANGES, start=1):
        say(f"Someone {what} in Azure, behind the operator's back")
        before = corrections(sandbox, name)
        sandbox.arm.rest(method, path, body)
        changed = time.monotonic()
        sandbox.wait("the correction", lambda before=before: corrections(sandbox, name) > before, 3 * INTERVAL)
        latest = (sandbox.status(name).get("drift") or {}).get("items", [{}])[0]
        print(
            f"change {number} detected and corrected {time.monotonic() - changed:.1f}s later: "
            f"{latest.get('resource', '').rsplit('/', 1)[-1]} {latest.get('field')}: "
            f"found {latest.get('actual')}, expected {latest.get('expected')} -> {latest.get('action')}"
        )
    print()
    print(sandbox.kubectl("get", "smlw", "-n", NAMESPACE))
    columns = "custom-columns=REASON:.reason,MESSAGE:.message"
    print(sandbox.kubectl("get", "events", "-n", NAMESPACE, "--field-selector", "reason=DriftDetected", "-o", columns))
    say("Cleaning up: kubectl delete smlw (deletionPolicy Delete)")
    sandbox.kubectl("delete", "smlw", name, "-n", NAMESPACE, "--timeout=60s")
    left = [r["id"] for r in sandbox.arm.resources() if "mlw-litware-approved" in r["id"]]
    print(f"Azure resources of the workspace left after delete: {len(left)}")


def main() -> int:
    workdir = REPO / ".cache" / "demo"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    sandbox = Sandbox(workdir)
    try:
        say("Starting a local control plane (kube-apiserver + etcd), the ARM emulator and the operator")
        sandbox.start()
        print(f"kube-apiserver {sandbox.kube.server}; ARM emulator {sandbox.arm.endpoint}")
        print(f"operator log: {workdir / 'operator.log'}")
        run(sandbox)
    finally:
        sandbox.stop()
    say("Demo finished: everything it started is stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
