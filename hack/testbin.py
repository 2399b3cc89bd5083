#!/usr/bin/env python3
"""Build and cache the control-plane binaries the tests run (kube-apiserver and etcd).

Like controller-runtime's envtest, but built here from their Go modules with the
machine's Go toolchain, since no prebuilt binary can be downloaded. Each binary is
built in a scratch module under a cache folder keyed by version, only when missing.

kube-apiserver lives in k8s.io/kubernetes, whose go.mod requires its staging
modules as `k8s.io/X v0.0.0` and replaces them with local folders. A module that
depends on k/k must replace each of them with the published `v0.<minor>.<patch>`
tag; this script derives that list from k/k's own go.mod.

Usage: testbin.py [--print-dir]   (stdlib only; prints the binary folder)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KUBERNETES_VERSION = os.environ.get("KUBERNETES_VERSION", "v1.37.2")
ETCD_VERSION = os.environ.get("ETCD_VERSION", "v3.6.16")
CACHE_ROOT = Path(os.environ.get("SMLW_TESTBIN_DIR", Path.home() / ".cache" / "secureml-operator" / "testbin"))


def binary_dir() -> Path:
    return CACHE_ROOT / f"kubernetes-{KUBERNETES_VERSION}_etcd-{ETCD_VERSION}"


def go(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", **(env or {})}
    result = subprocess.run(["go", *args], cwd=cwd, env=full_env, text=True, capture_output=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"testbin: `go {' '.join(args)}` failed in {cwd}")
    return result.stdout


def staging_replacements(scratch: Path) -> list[str]:
    """`k8s.io/X => k8s.io/X v0.N.P` for every staging module k/k requires at v0.0.0."""
    info = json.loads(go(["mod", "download", "-json", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"], scratch))
    gomod = Path(info["GoMod"]).read_text()
    staging_tag = "v0." + KUBERNETES_VERSION.removeprefix("v1.")
    modules = sorted(set(re.findall(r"^\s*(k8s\.io/[\w.\-/]+) v0\.0\.0\s*$", gomod, re.MULTILINE)))
    if not modules:
        raise SystemExit("testbin: found no staging modules in k8s.io/kubernetes go.mod")
    return [f"{module} => {module} {staging_tag}" for module in modules]


def build(name: str, module_lines: list[str], package: str, ldflags: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f"testbin-{name}-") as tmp:
        scratch = Path(tmp)
        (scratch / "go.mod").write_text("module testbin\n\ngo 1.26\n")
        if name == "kube-apiserver":
            replaces = staging_replacements(scratch)
            module_lines = [*module_lines, "replace (", *(f"\t{r}" for r in replaces), ")"]
        (scratch / "go.mod").write_text("module testbin\n\ngo 1.26\n\n" + "\n".join(module_lines) + "\n")
        # A blank import makes the package part of the module graph that `go mod tidy` keeps.
        (scratch / "tools.go").write_text(f'//go:build tools\n\npackage tools\n\nimport _ "{package}"\n')
        go(["mod", "tidy"], scratch)
        go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(out), package], scratch)


def main() -> int:
    target = binary_dir()
    wanted = {"kube-apiserver": target / "kube-apiserver", "etcd": target / "etcd"}
    if all(path.exists() for path in wanted.values()):
        print(target)
        return 0
    if shutil.which("go") is None:
        raise SystemExit("testbin: the Go toolchain is required to build kube-apiserver and etcd")
    target.mkdir(parents=True, exist_ok=True)
    minor = KUBERNETES_VERSION.split(".")[1]
    version_pkg = "k8s.io/component-base/version"
    if not wanted["kube-apiserver"].exists():
        started = time.monotonic()
        build(
            "kube-apiserver",
            [f"require k8s.io/kubernetes {KUBERNETES_VERSION}"],
            "k8s.io/kubernetes/cmd/kube-apiserver",
            f"-s -w -X {version_pkg}.gitVersion={KUBERNETES_VERSION} -X {version_pkg}.gitMajor=1"
            f" -X {version_pkg}.gitMinor={minor} -X {version_pkg}.gitTreeState=clean",
            wanted["kube-apiserver"],
        )
        print(
            f"testbin: built kube-apiserver {KUBERNETES_VERSION} in {time.monotonic() - started:.0f}s",
            file=sys.stderr,
        )
    if not wanted["etcd"].exists():
        started = time.monotonic()
        build(
            "etcd",
            [f"require go.etcd.io/etcd/server/v3 {ETCD_VERSION}"],
            "go.etcd.io/etcd/server/v3",
            "-s -w",
            wanted["etcd"],
        )
        print(f"testbin: built etcd {ETCD_VERSION} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
