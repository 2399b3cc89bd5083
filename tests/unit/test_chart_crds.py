"""The Helm chart ships a copy of the generated CRD: fail when `make crds` changed it and the copy lags."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]


def _sync_module() -> ModuleType:
    """hack/ is not a package: load the script by path."""
    spec = importlib.util.spec_from_file_location("sync_chart_crds", REPO_ROOT / "hack" / "sync_chart_crds.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chart_carries_the_generated_crds_unchanged() -> None:
    sync = _sync_module()
    generated = sorted(path.name for path in (REPO_ROOT / "crds").glob("*.yaml"))
    assert generated, "crds/ holds no generated CRD"
    assert sync.stale() == [], "charts/secureml-operator/crds is stale: run `make chart-crds`"


def test_a_changed_crd_is_reported_stale_until_synced(tmp_path: Path) -> None:
    sync = _sync_module()
    source, target = tmp_path / "crds", tmp_path / "chart-crds"
    source.mkdir()
    (source / "a.yaml").write_text("kind: CustomResourceDefinition\n")
    assert sync.stale(source, target) == ["a.yaml"]
    assert sync.sync(source, target) == ["a.yaml"]
    assert sync.stale(source, target) == []
    (source / "a.yaml").write_text("kind: CustomResourceDefinition\nspec: {}\n")
    assert sync.stale(source, target) == ["a.yaml"]
    (target / "kopf-peering.yaml").write_text("# not generated: left alone\n")
    assert sync.sync(source, target) == ["a.yaml"]
    assert (target / "kopf-peering.yaml").exists()
