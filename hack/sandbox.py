"""A local sandbox for `make demo` and `make bench`: a real control plane, the ARM emulator (seeded
with what the examples reference) and the operator as a subprocess, all stopped by `stop()`."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from containerrecipe import operator_command  # noqa: E402

from armemu import Emulator  # noqa: E402
from armemu.seed import PROVIDERS, seed_litware  # noqa: E402
from kubeharness import ControlPlane, free_port, wait_for  # noqa: E402

NAMESPACE = "ml-platform"
__all__ = ["NAMESPACE", "PROVIDERS", "REPO", "Sandbox", "per_example"]
Measured = TypeVar("Measured")


class Sandbox:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.kube = ControlPlane(workdir / "cluster")
        self.arm = Emulator(workdir / "emulator")
        self.operator: subprocess.Popen[bytes] | None = None
        self.liveness = ""

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return self.kube.kubectl(*args, input=stdin).stdout

    def status(self, name: str) -> dict[str, Any]:
        body = json.loads(self.kubectl("get", "smlw", name, "-n", NAMESPACE, "-o", "json"))
        return dict(body.get("status") or {})

    def condition(self, name: str, kind: str) -> str | None:
        return next((c["status"] for c in self.status(name).get("conditions") or [] if c["type"] == kind), None)

    def apply_example(self, example: str, **spec: Any) -> str:
        """Apply examples/<example> with the emulator's credentials; returns the resource name."""
        manifest = yaml.safe_load((REPO / "examples" / example).read_text())
        manifest["metadata"]["namespace"] = NAMESPACE
        manifest["spec"]["azure"]["credentialRef"] = {"name": "azure-credentials"}
        manifest["spec"].update(spec)
        self.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
        return str(manifest["metadata"]["name"])

    def release(self, name: str) -> None:
        """Delete the custom resource and leave Azure as it is (deletionPolicy Retain): the next
        measurement starts from a reset emulator anyway."""
        retain = '{"spec":{"deletionPolicy":"Retain"}}'
        self.kubectl("patch", "smlw", name, "-n", NAMESPACE, "--type=merge", "-p", retain)
        self.kubectl("delete", "smlw", name, "-n", NAMESPACE, "--timeout=60s")

    def operator_up(self) -> bool:
        """The operator's liveness endpoint answers (it is started and connected)."""
        try:
            with urllib.request.urlopen(self.liveness, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def wait_operator_up(self) -> None:
        self.wait("the operator's liveness endpoint", self.operator_up, 120)

    def wait(self, what: str, check: Any, timeout: float = 90) -> Any:
        try:
            return wait_for(what, check, timeout, every=0.2)
        except TimeoutError as error:
            raise SystemExit(f"{error}; operator log: {self.workdir / 'operator.log'}") from None

    def start(self, **operator_settings: str) -> None:
        self.kube.start()
        seed_litware(self.arm.state)
        self.arm.start()
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
        self.start_operator(**operator_settings)

    def start_operator(self, **settings: str) -> None:
        """Run the operator as a subprocess (again, after a crash), as the image's entrypoint runs it
        (`python -OO`: so its memory is the pod's); `settings`: extra SMLW_* environment."""
        operator_env = {
            **os.environ,
            **self.arm.env,
            "KUBECONFIG": str(self.kube.kubeconfig),
            "SMLW_POLLING_INTERVAL_SECONDS": "0.2",
            "SMLW_RETRY_DELAY_SECONDS": "2",
            **settings,
        }
        self.liveness = f"http://127.0.0.1:{free_port()}/healthz"  # answers once the operator is up
        with (self.workdir / "operator.log").open("ab") as log:
            self.operator = subprocess.Popen(
                [*operator_command(sys.executable), "--standalone", "--namespace", NAMESPACE,
                 "--liveness", self.liveness],
                env=operator_env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def stop(self) -> None:
        """Stop the operator first (it may still be writing), then the emulator and the control plane."""
        try:
            if self.operator is not None and self.operator.poll() is None:
                self.operator.terminate()
                try:
                    self.operator.wait(20)
                except subprocess.TimeoutExpired:  # hung: killed, not left running past the sandbox
                    self.operator.kill()
                    self.operator.wait()
        finally:
            self.arm.stop()
            self.kube.stop()


def per_example(
    name: str, examples: Iterable[str], measure: Callable[[Sandbox, str], Measured], **operator_settings: str
) -> list[tuple[str, Measured]]:
    """A benchmark's runs: one sandbox in `.cache/<name>`, `measure` for each example in turn, and
    everything stopped at the end, whatever happens. `operator_settings`: extra SMLW_* environment."""
    workdir = REPO / ".cache" / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    sandbox = Sandbox(workdir)
    try:
        sandbox.start(**operator_settings)
        return [(example, measure(sandbox, example)) for example in examples]
    finally:
        sandbox.stop()
