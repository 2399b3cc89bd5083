"""What GitOps tools would say about a SecureMLWorkspace: Argo CD's health script (run under Lua 5.1,
the dialect of Argo CD's gopher-lua) and kstatus, the library Flux uses (a small Go program built from
hack/kstatus once per source hash and cached like the control-plane binaries)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51

REPO_ROOT = Path(__file__).resolve().parents[2]
HEALTH_LUA = REPO_ROOT / "gitops" / "argocd" / "health.lua"
ARGOCD_CM = REPO_ROOT / "gitops" / "argocd" / "argocd-cm.yaml"
HEALTH_KEY = "resource.customizations.health.secureml.io_SecureMLWorkspace"
KSTATUS_SOURCE = REPO_ROOT / "hack" / "kstatus"
KSTATUS_INPUTS = ("go.mod", "go.sum", "main.go")
CACHE_ROOT = Path.home() / ".cache" / "secureml-operator"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    status: str
    message: str


# ---- Argo CD ----------------------------------------------------------------------------------


def argo_health(obj: Manifest, script: str | None = None) -> Verdict:
    """Run the health script the way Argo CD does: `obj` as a global table, the chunk returns `hs`."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, obj)
    result = runtime.execute(script if script is not None else HEALTH_LUA.read_text())
    if result is None:
        raise AssertionError("the health script returned nothing")
    return Verdict(str(result["status"]), str(result["message"]))


def _to_lua(runtime: Any, value: Any) -> Any:
    """JSON → Lua tables (arrays 1-based), as Argo CD converts the live object."""
    if isinstance(value, dict):
        return runtime.table_from({key: _to_lua(runtime, item) for key, item in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, item) for item in value])
    return value


def render_argocd_cm(script: str | None = None) -> str:
    """gitops/argocd/argocd-cm.yaml: the argocd-cm entries, with health.lua embedded verbatim."""
    body = script if script is not None else HEALTH_LUA.read_text()
    indented = "".join(f"    {line}" if line.strip() else line for line in body.splitlines(keepends=True))
    return (
        "# Generated from gitops/argocd/health.lua by `PYTHONPATH=tests .venv/bin/python -m gitops`: edit health.lua.\n"
        "# Merge into Argo CD's ConfigMap (docs/gitops.md):\n"
        "#   kubectl patch configmap argocd-cm -n argocd --type merge --patch-file gitops/argocd/argocd-cm.yaml\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: argocd-cm\n"
        "  namespace: argocd\n"
        "  labels:\n"
        "    app.kubernetes.io/name: argocd-cm\n"
        "    app.kubernetes.io/part-of: argocd\n"
        "data:\n"
        f"  {HEALTH_KEY}: |\n"
        f"{indented}"
    )


# ---- kstatus ----------------------------------------------------------------------------------


def kstatus_binary() -> Path:
    """hack/kstatus built once into ~/.cache/secureml-operator/kstatus-<hash of its sources>/."""
    digest = hashlib.sha256()
    for name in KSTATUS_INPUTS:
        digest.update(name.encode() + b"\0" + (KSTATUS_SOURCE / name).read_bytes() + b"\0")
    target = CACHE_ROOT / f"kstatus-{digest.hexdigest()[:16]}" / "kstatus"
    if target.exists():
        return target
    if shutil.which("go") is None:
        raise RuntimeError("the Go toolchain is required to build hack/kstatus")
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "auto"}
    # Build beside the target and rename: a concurrent run never sees a half-written binary.
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / "kstatus"
        result = subprocess.run(
            ["go", "build", "-trimpath", "-o", str(built), "."],
            cwd=KSTATUS_SOURCE,
            env=env,
            text=True,
            capture_output=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building hack/kstatus failed:\n{result.stdout}{result.stderr}")
        built.replace(target)
    return target


def kstatus(objects: Iterable[Manifest]) -> list[Verdict]:
    """kstatus's verdict for each object, in order (one process for the whole batch)."""
    batch = list(objects)
    lines = "".join(json.dumps(obj) + "\n" for obj in batch)
    result = subprocess.run(
        [str(kstatus_binary())], input=lines, text=True, capture_output=True, check=True, timeout=60
    )
    verdicts = []
    for line in result.stdout.splitlines():
        answer = json.loads(line)
        if answer.get("error"):
            raise AssertionError(f"kstatus: {answer['error']}")
        verdicts.append(Verdict(answer["status"], answer.get("message", "")))
    assert len(verdicts) == len(batch), result.stderr
    return verdicts


# ---- fixture objects ----------------------------------------------------------------------------


def condition(kind: str, status: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def workspace(
    generation: int = 1,
    observed: int | None = None,
    conditions: list[dict[str, Any]] | None = None,
    deleting: bool = False,
) -> Manifest:
    """A SecureMLWorkspace as the API server returns it, with the status the operator writes."""
    metadata: dict[str, Any] = {"name": "litware", "namespace": "ml", "generation": generation, "uid": "u-1"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:05:00Z"
        metadata["finalizers"] = ["secureml.io/finalizer"]
    body: Manifest = {"apiVersion": "secureml.io/v1alpha1", "kind": "SecureMLWorkspace", "metadata": metadata}
    body["spec"] = {"workspace": {"name": "mlw-litware"}}
    if observed is not None or conditions is not None:
        body["status"] = {"conditions": conditions or []}
        if observed is not None:
            body["status"]["observedGeneration"] = observed
    return body


def ready(generation: int = 1) -> Manifest:
    return workspace(
        generation,
        generation,
        [
            condition("Ready", True, "Reconciled", "Azure matches the spec (3 created)", generation),
            condition("Reconciling", False, "Reconciled", "nothing left to do", generation),
            condition("Stalled", False, "Reconciled", "no blocking problem", generation),
            condition("InSync", True, "InSync", "Azure matches the spec", generation),
        ],
    )


def retrying(generation: int = 1) -> Manifest:
    message = "workspaces/mlw-litware: 503 ServiceUnavailable"
    return workspace(
        generation,
        generation,
        [
            condition("Ready", False, "ServiceUnavailable", message, generation),
            condition("Reconciling", True, "ServiceUnavailable", f"retrying: {message}", generation),
            condition("Stalled", False, "Progressing", "no blocking problem", generation),
        ],
    )


def stalled(generation: int = 1) -> Manifest:
    message = "container registry crlitware is Basic; a registry behind a private endpoint must be Premium"
    return workspace(
        generation,
        generation,
        [
            condition("Stalled", True, "RegistryNotPremium", message, generation),
            condition("Reconciling", False, "RegistryNotPremium", "stopped: the spec or access must change first", 1),
            condition("Ready", False, "RegistryNotPremium", message, generation),
        ],
    )


def new_generation_not_observed() -> Manifest:
    """Ready for generation 1, then the spec changed: the conditions are about the old spec."""
    body = ready(1)
    body["metadata"]["generation"] = 2
    return body


def deleting() -> Manifest:
    body = ready(1)
    body["metadata"].update(workspace(deleting=True)["metadata"])
    return body
