#!/usr/bin/env python3
"""Copy the generated CRDs (crds/*.yaml) into the Helm chart's crds/ folder, or check the copy.

Helm only installs CRDs from the chart's own crds/ folder, so the chart carries a byte-for-byte
copy of what `make crds` generates; `--check` (and tests/unit/test_chart_crds.py) fail when that
copy is stale. The chart's other CRDs (kopf's peering) are not generated and are left alone.

Usage: sync_chart_crds.py [--check]   (stdlib only)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE = REPO_ROOT / "crds"
CHART_CRDS = REPO_ROOT / "charts" / "secureml-operator" / "crds"


def stale(source: Path = SOURCE, target: Path = CHART_CRDS) -> list[str]:
    """Names of the generated CRD files whose chart copy is missing or differs."""
    return sorted(
        path.name
        for path in source.glob("*.yaml")
        if not (target / path.name).exists() or (target / path.name).read_bytes() != path.read_bytes()
    )


def sync(source: Path = SOURCE, target: Path = CHART_CRDS) -> list[str]:
    """Copy the stale files; return their names."""
    names = stale(source, target)
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        (target / name).write_bytes((source / name).read_bytes())
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale copies; exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"chart CRD {CHART_CRDS.relative_to(REPO_ROOT) / name} is stale: run `make chart-crds`")
        return 1 if names else 0
    for name in sync():
        print(f"copied crds/{name} into {CHART_CRDS.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
