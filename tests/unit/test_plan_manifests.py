"""`plan`'s input: manifests from files, directories and stdin, which objects it plans, where, and
its command line (usage errors exit 1: 2 means changes)."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from secureml_operator import __main__ as entrypoint
from secureml_operator import cli
from secureml_operator.cli.plan import (
    Cluster,
    Document,
    applied_generation,
    check,
    load_documents,
    namespace_of,
    select,
)
from secureml_operator.cli.planview import EXIT_ERROR, PlanError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "06-selected-ips.yaml"
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}


def _workspace() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return loaded


def test_documents_come_from_files_directories_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all([CONFIG_MAP, None, _workspace()]))
    (tmp_path / "b.json").write_text('{"kind": "SecureMLWorkspace"}')
    (tmp_path / "notes.txt").write_text("not a manifest")
    stdin = io.StringIO(yaml.safe_dump(_workspace()))
    documents = load_documents([str(tmp_path), "-"], stdin)
    assert [document.source for document in documents] == [
        f"{tmp_path}/a.yaml document 1",
        f"{tmp_path}/a.yaml document 2",
        f"{tmp_path}/b.json",
        "<stdin>",
    ]
    assert documents[1].body == _workspace()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: [unclosed", "not valid YAML"),
        ("- a list\n- of things\n", "not a Kubernetes object"),
    ],
)
def test_unusable_manifests_are_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PlanError, match=message):
        load_documents([str(path)], io.StringIO())
    with pytest.raises(PlanError, match="cannot read"):
        load_documents([str(tmp_path / "absent.yaml")], io.StringIO())


def test_only_secureml_workspaces_are_planned_and_the_rest_noted() -> None:
    workspace = Document("m.yaml document 2", _workspace())
    chosen, notes = select([Document("m.yaml document 1", CONFIG_MAP), workspace, Document("m.yaml document 3", {})])
    assert chosen == [workspace]
    assert notes == [
        "m.yaml document 1: ConfigMap settings: not planned",
        "m.yaml document 3: an object without kind: not planned",
    ]


def test_a_workspace_needs_its_api_version_and_a_name() -> None:
    body = _workspace()
    assert check(body) == "litware-selected-ips"
    with pytest.raises(PlanError, match=r"apiVersion 'secureml\.io/v1' is not secureml\.io/v1alpha1"):
        check({**body, "apiVersion": "secureml.io/v1"})
    with pytest.raises(PlanError, match=r"metadata\.name is missing"):
        check({**body, "metadata": {}})


def test_the_namespace_is_where_kubectl_apply_would_put_it() -> None:
    body = _workspace()
    assert namespace_of(body, None, "context-namespace") == "context-namespace"
    assert namespace_of(body, "team", "context-namespace") == "team"
    declared = {**body, "metadata": {"name": "x", "namespace": "team"}}
    assert namespace_of(declared, None, "default") == "team"
    assert namespace_of(declared, "team", "default") == "team"
    with pytest.raises(PlanError, match="does not match --namespace 'other'"):
        namespace_of(declared, "other", "default")


def test_the_generation_moves_only_when_the_spec_would_change() -> None:
    body = _workspace()
    existing = copy.deepcopy(body)
    existing["metadata"]["generation"] = 4
    existing["spec"]["deletionPolicy"] = "Delete"  # the API server's default, written out
    assert applied_generation(body, {}) == 1
    assert applied_generation(body, existing) == 4
    changed = copy.deepcopy(body)
    changed["spec"]["inbound"]["allowedIpRanges"] = ["203.0.113.0/24"]
    assert applied_generation(changed, existing) == 5
    assert applied_generation({**body, "spec": {"bad": True}}, existing) == 5


def test_usage_errors_exit_1_from_both_entry_points(capsys: pytest.CaptureFixture[str]) -> None:
    for main in (cli.main, entrypoint.main):
        with pytest.raises(SystemExit) as exited:
            main(["plan"])
        assert exited.value.code == EXIT_ERROR
        assert "the following arguments are required: -f/--filename" in capsys.readouterr().err


def test_a_manifest_without_workspaces_plans_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(CONFIG_MAP))
    assert cli.main(["plan", "-f", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == "Plan: 0 to create, 0 to change, 0 to remove, 0 refused.\n"
    assert err == f"note: {path}: ConfigMap settings: not planned\nnote: no SecureMLWorkspace to plan\n"


def test_without_a_namespace_the_kubeconfig_context_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def kubeconfig(namespace: str | None) -> Path:
        context: dict[str, Any] = {"cluster": "local", "user": "me"} | ({"namespace": namespace} if namespace else {})
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": "https://127.0.0.1:1"}}],
            "users": [{"name": "me", "user": {"token": "t"}}],
            "contexts": [{"name": "here", "context": context}],
            "current-context": "here",
        }
        path = tmp_path / f"kubeconfig-{namespace}"
        path.write_text(yaml.safe_dump(config))
        return path

    monkeypatch.setenv("KUBECONFIG", str(kubeconfig("ml-team")))
    assert Cluster().default_namespace == "ml-team"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(None)))
    assert Cluster().default_namespace == "default"
