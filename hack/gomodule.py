"""Build a command from its Go module once and cache it: what hack/helm.py and hack/promtool.py share.

No prebuilt binary can be downloaded here, so a tool is built with the machine's Go toolchain
(GOTOOLCHAIN=auto fetches the Go version the module declares) in a scratch module that requires
the tool's module at one version, under a cache folder keyed by that version, only when missing.
Requiring it from a scratch module resolves the same dependency versions its own release build
uses, as long as its go.mod has no replace directives. Stdlib only.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CACHE_ROOT = Path(os.environ.get("SMLW_HELM_DIR", Path.home() / ".cache" / "secureml-operator"))


def go(tool: str, args: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "auto"),
    }
    result = subprocess.run(["go", *args], cwd=cwd, env=env, text=True, capture_output=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"{tool}: `go {' '.join(args)}` failed in {cwd}")
    return result.stdout


def build(
    tool: str,
    module: str,
    version: str,
    package: str,
    out: Path,
    ldflags: Callable[[Path], str],
    tags: str = "",
) -> None:
    """`go build` `package` of `module`@`version` into `out`; `ldflags` may ask the resolved
    scratch module (e.g. `go list -m`) for what the flags need."""
    with tempfile.TemporaryDirectory(prefix=f"{tool}-build-") as tmp:
        scratch = Path(tmp)
        (scratch / "go.mod").write_text(f"module {tool}build\n\ngo 1.26\n\nrequire {module} {version}\n")
        # A blank import keeps the command's package in the module graph that `go mod tidy` resolves.
        (scratch / "tools.go").write_text(f'//go:build tools\n\npackage tools\n\nimport _ "{package}"\n')
        go(tool, ["mod", "tidy"], scratch)
        partial = out.with_name(out.name + ".partial")
        flags = ["-tags", tags] if tags else []
        go(tool, ["build", "-trimpath", *flags, "-ldflags", ldflags(scratch), "-o", str(partial), package], scratch)
        partial.replace(out)  # atomic: a reader never sees half a binary


def cached(tool: str, version: str, target: Path, build_into: Callable[[Path], None]) -> int:
    """Print the path of the cached binary, building it first when missing."""
    if not target.exists():
        if shutil.which("go") is None:
            raise SystemExit(f"{tool}: the Go toolchain is required to build {tool}")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Two test sessions may ask at once: the second waits for the first build instead of repeating it.
        with (target.parent / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.exists():
                started = time.monotonic()
                build_into(target)
                print(f"{tool}: built {tool} {version} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    print(target)
    return 0
