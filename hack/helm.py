#!/usr/bin/env python3
"""Build and cache the helm binary the chart tests and `make helm` use.

Like hack/testbin.py: no prebuilt binary can be downloaded here, so helm is built from its Go module
with the machine's Go toolchain, in a scratch module under a cache folder keyed by version, only
when missing. helm's go.mod has no replace directives, so requiring it from a scratch module
resolves the same dependency versions its own release build uses.

Usage: helm.py   (stdlib only; prints the path of the helm binary)
Environment: HELM_VERSION (v3.x or v4.x, default below), SMLW_HELM_DIR (cache root).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELM_VERSION = os.environ.get("HELM_VERSION", "v4.3.1")
CACHE_ROOT = Path(os.environ.get("SMLW_HELM_DIR", Path.home() / ".cache" / "secureml-operator"))


def module_path(version: str) -> str:
    """helm.sh/helm/v3 or helm.sh/helm/v4: the module path carries the major version."""
    major = version.removeprefix("v").split(".")[0]
    if major not in {"3", "4"}:
        raise SystemExit(f"helm: HELM_VERSION={version!r} is neither v3.x nor v4.x")
    return f"helm.sh/helm/v{major}"


def binary_path(version: str = HELM_VERSION) -> Path:
    return CACHE_ROOT / f"helm-{version}" / "helm"


def go(args: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "auto"),
    }
    result = subprocess.run(["go", *args], cwd=cwd, env=env, text=True, capture_output=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"helm: `go {' '.join(args)}` failed in {cwd}")
    return result.stdout


def v3_kube_version_flags(module: str, scratch: Path) -> str:
    """Helm 3 takes the Kubernetes version it assumes (chart kubeVersion checks, `helm template`) from
    -X flags derived from its client-go, as its Makefile does; without them it assumes 1.20."""
    client_go = go(["list", "-m", "-f", "{{.Version}}", "k8s.io/client-go"], scratch).strip()  # v0.37.0
    _, minor = client_go.removeprefix("v").split(".")[:2]
    return " ".join(
        f"-X {module}/pkg/{package}.k8sVersion{part}={value}"
        for package in ("lint/rules", "chartutil")
        for part, value in (("Major", "1"), ("Minor", minor))
    )


def build(version: str, out: Path) -> None:
    module = module_path(version)
    package = f"{module}/cmd/helm"
    # The same -X flags helm's Makefile sets for a tagged release: `helm version` then reports it.
    ldflags = (
        f"-s -w -X {module}/internal/version.version={version} -X {module}/internal/version.metadata="
        f" -X {module}/internal/version.gitTreeState=clean"
    )
    with tempfile.TemporaryDirectory(prefix="helm-build-") as tmp:
        scratch = Path(tmp)
        (scratch / "go.mod").write_text(f"module helmbuild\n\ngo 1.26\n\nrequire {module} {version}\n")
        # A blank import keeps the command's package in the module graph that `go mod tidy` resolves.
        (scratch / "tools.go").write_text(f'//go:build tools\n\npackage tools\n\nimport _ "{package}"\n')
        go(["mod", "tidy"], scratch)
        if module.endswith("/v3"):
            ldflags += " " + v3_kube_version_flags(module, scratch)
        partial = out.with_name(out.name + ".partial")
        go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), package], scratch)
        partial.replace(out)  # atomic: a reader never sees half a binary


def main() -> int:
    target = binary_path()
    if target.exists():
        print(target)
        return 0
    if shutil.which("go") is None:
        raise SystemExit("helm: the Go toolchain is required to build helm")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two test sessions may ask at once: the second waits for the first build instead of repeating it.
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            started = time.monotonic()
            build(HELM_VERSION, target)
            print(f"helm: built helm {HELM_VERSION} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
