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

import os
import sys
from pathlib import Path

from gomodule import CACHE_ROOT, build, cached, go

HELM_VERSION = os.environ.get("HELM_VERSION", "v4.3.1")


def module_path(version: str) -> str:
    """helm.sh/helm/v3 or helm.sh/helm/v4: the module path carries the major version."""
    major = version.removeprefix("v").split(".")[0]
    if major not in {"3", "4"}:
        raise SystemExit(f"helm: HELM_VERSION={version!r} is neither v3.x nor v4.x")
    return f"helm.sh/helm/v{major}"


def binary_path(version: str = HELM_VERSION) -> Path:
    return CACHE_ROOT / f"helm-{version}" / "helm"


def v3_kube_version_flags(module: str, scratch: Path) -> str:
    """Helm 3 takes the Kubernetes version it assumes (chart kubeVersion checks, `helm template`) from
    -X flags derived from its client-go, as its Makefile does; without them it assumes 1.20."""
    client_go = go("helm", ["list", "-m", "-f", "{{.Version}}", "k8s.io/client-go"], scratch).strip()  # v0.37.0
    _, minor = client_go.removeprefix("v").split(".")[:2]
    return " ".join(
        f"-X {module}/pkg/{package}.k8sVersion{part}={value}"
        for package in ("lint/rules", "chartutil")
        for part, value in (("Major", "1"), ("Minor", minor))
    )


def build_helm(out: Path) -> None:
    module = module_path(HELM_VERSION)

    def ldflags(scratch: Path) -> str:
        # The same -X flags helm's Makefile sets for a tagged release: `helm version` then reports it.
        release = (
            f"-s -w -X {module}/internal/version.version={HELM_VERSION} -X {module}/internal/version.metadata="
            f" -X {module}/internal/version.gitTreeState=clean"
        )
        return f"{release} {v3_kube_version_flags(module, scratch)}" if module.endswith("/v3") else release

    build("helm", module, HELM_VERSION, f"{module}/cmd/helm", out, ldflags)


if __name__ == "__main__":
    sys.exit(cached("helm", HELM_VERSION, binary_path(), build_helm))
