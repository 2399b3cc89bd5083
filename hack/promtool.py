#!/usr/bin/env python3
"""Build and cache the promtool binary that checks and unit-tests the chart's alerting rules.

Like hack/helm.py (both through hack/gomodule.py): built from the github.com/prometheus/prometheus Go
module, cached by version. Prometheus 3.x publishes its Go module as v0.3XX.Y (v0.316.0 is Prometheus 3.16.0); its
go.mod has no replace or exclude directives, so requiring it from a scratch module resolves the same
dependency versions its release build uses.

Usage: promtool.py   (stdlib only; prints the path of the promtool binary)
Environment: PROMTOOL_VERSION (the Go module version, default below), SMLW_HELM_DIR (cache root,
shared with helm.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gomodule import CACHE_ROOT, build, cached

PROMTOOL_VERSION = os.environ.get("PROMTOOL_VERSION", "v0.316.0")
MODULE = "github.com/prometheus/prometheus"
PACKAGE = f"{MODULE}/cmd/promtool"


def binary_path(version: str = PROMTOOL_VERSION) -> Path:
    return CACHE_ROOT / f"promtool-{version}" / "promtool"


def release_version(module_version: str) -> str:
    """v0.316.0 -> 3.16.0: the release `promtool --version` should report."""
    parts = module_version.removeprefix("v").split(".")
    if len(parts) != 3 or parts[0] != "0" or not parts[1].isdigit() or int(parts[1]) < 300:
        raise SystemExit(
            f"promtool: PROMTOOL_VERSION={module_version!r} is not a Prometheus 3 module version (v0.3XX.Y)"
        )
    minor = int(parts[1])
    return f"{minor // 100}.{minor % 100}.{parts[2]}"


def build_promtool(out: Path) -> None:
    # The -X flags Prometheus' own release build (promu) sets: `promtool --version` then reports them.
    common = "github.com/prometheus/common/version"
    release = release_version(PROMTOOL_VERSION)
    ldflags = f"-s -w -X {common}.Version={release} -X {common}.Branch=release -X {common}.Revision="
    # remove_all_sd leaves out the service discovery plugins (the cloud SDKs: most of the build), which
    # promtool needs only for `check service-discovery`; rules, tests and queries are unaffected.
    build("promtool", MODULE, PROMTOOL_VERSION, PACKAGE, out, lambda _scratch: ldflags, tags="remove_all_sd")


if __name__ == "__main__":
    sys.exit(cached("promtool", PROMTOOL_VERSION, binary_path(), build_promtool))
