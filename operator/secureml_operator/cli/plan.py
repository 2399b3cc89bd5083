"""`plan`: what applying a manifest would do in Azure, without writing anything anywhere.

For each SecureMLWorkspace in the manifest, the operator's own preparation runs (the same spec
parse, the tenancy check against the cluster's SecureMLTenancyPolicy, the same credentials and
preflight checks), then the engine walks the desired graph in Detect mode: it only reads Azure.
Ownership is judged exactly as the operator would: by the resource's `status.ledger` when it exists
in the cluster, otherwise with an empty ledger, so what already exists and is not the resource's
own shows as refused (ExistsUnowned) unless the spec says `adoption: Adopt`. The cluster is only read.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

import kopf
import kubernetes
import urllib3
import yaml
from pydantic import ValidationError

from secureml_operator import kube
from secureml_operator.api.models import GROUP, KIND, PLURAL, VERSION, SecureMLWorkspaceSpec
from secureml_operator.api.tenancy import POLICY_NAME, TENANCY_PLURAL
from secureml_operator.azure.access import AzureAccess
from secureml_operator.cli.planview import (
    EXIT_ERROR,
    PlanError,
    Refusal,
    WorkspacePlan,
    exit_code,
    from_report,
    plan_error,
    render_json,
    render_text,
)
from secureml_operator.engine.engine import Mode
from secureml_operator.engine.ledger import Ledger
from secureml_operator.failures import classify
from secureml_operator.reconciler import Reconciler, ResourceMemo, Target
from secureml_operator.settings import OperatorSettings

Manifest = dict[str, Any]
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True)
class Document:
    source: str  # where it came from, for messages: "<file>" or "<file> document <n>"
    body: Manifest


def _read(path: str, stdin: TextIO) -> list[tuple[str, str]]:
    """(source, text) of `-` (stdin), a file, or the manifests directly in a directory."""
    if path == "-":
        return [("<stdin>", stdin.read())]
    location = Path(path)
    try:
        files = (
            sorted(f for f in location.iterdir() if f.suffix in MANIFEST_SUFFIXES) if location.is_dir() else [location]
        )
        return [(str(file), file.read_text()) for file in files]
    except OSError as error:
        raise PlanError(f"{path}: cannot read: {error.strerror or error}") from error


def load_documents(paths: Sequence[str], stdin: TextIO) -> list[Document]:
    """Every YAML document of the manifests (empty documents skipped)."""
    documents: list[Document] = []
    for path in paths:
        for source, text in _read(path, stdin):
            try:
                loaded = [body for body in yaml.safe_load_all(text) if body is not None]
            except yaml.YAMLError as error:
                raise PlanError(f"{source}: not valid YAML: {' '.join(str(error).split())}") from error
            for index, body in enumerate(loaded, start=1):
                label = f"{source} document {index}" if len(loaded) > 1 else source
                if not isinstance(body, dict):
                    raise PlanError(f"{label}: not a Kubernetes object (a YAML mapping)")
                documents.append(Document(label, body))
    return documents


def select(documents: Sequence[Document]) -> tuple[list[Document], list[str]]:
    """The SecureMLWorkspaces to plan, and a note for each other object (left alone)."""
    chosen, notes = [], []
    for document in documents:
        kind = document.body.get("kind")
        name = (document.body.get("metadata") or {}).get("name")
        if kind == KIND:
            chosen.append(document)
        else:
            notes.append(
                f"{document.source}: {kind or 'an object without kind'} {name or ''}".rstrip() + ": not planned"
            )
    return chosen, notes


def check(body: Manifest) -> str:
    """The workspace's name, once its apiVersion and name are usable."""
    if body.get("apiVersion") != API_VERSION:
        raise PlanError(f"apiVersion {body.get('apiVersion')!r} is not {API_VERSION}")
    name = (body.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise PlanError("metadata.name is missing")
    return name


def namespace_of(body: Manifest, flag: str | None, fallback: str) -> str:
    """Where `kubectl apply` would put it: the manifest's namespace, -n, or the context's namespace."""
    declared = (body.get("metadata") or {}).get("namespace")
    if flag and declared and flag != declared:
        raise PlanError(f"the manifest's namespace {declared!r} does not match --namespace {flag!r}")
    return str(declared or flag or fallback)


class Cluster:
    """The reads plan makes in the cluster: the tenancy policy, and the resource's own status."""

    def __init__(self) -> None:
        try:
            self.api = kubernetes.client.CustomObjectsApi(kube.api_client())
        except kubernetes.config.ConfigException as error:
            raise PlanError(
                "no Kubernetes cluster configured (KUBECONFIG or ~/.kube/config): plan judges ownership by "
                "the resource's status.ledger and checks the cluster's tenancy policy"
            ) from error
        self.default_namespace = self._context_namespace()

    @staticmethod
    def _context_namespace() -> str:
        """The current kubeconfig context's namespace, or `default`."""
        try:
            # $KUBECONFIG as it is now: the library's own default was fixed when it was imported.
            path = os.environ.get("KUBECONFIG")
            _, active = kubernetes.config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:  # in a pod: no kubeconfig context
            return "default"
        return str((active.get("context") or {}).get("namespace") or "default")

    def _read(self, what: str, call: Any, *arguments: str) -> Manifest | None:
        try:
            return cast(Manifest, call(GROUP, VERSION, *arguments))
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise PlanError(f"reading {what} from the cluster: {error.status} {error.reason}") from error
        except urllib3.exceptions.HTTPError as error:
            raise PlanError(f"reading {what} from the cluster: {type(error).__name__}") from error

    def policy(self) -> dict[str, Any] | None:
        """The spec of the SecureMLTenancyPolicy `default` (None: none, so SMLW_ALLOWED_SUBSCRIPTIONS rules)."""
        found = self._read(
            f"SecureMLTenancyPolicy {POLICY_NAME}", self.api.get_cluster_custom_object, TENANCY_PLURAL, POLICY_NAME
        )
        return dict(found.get("spec") or {}) if found is not None else None

    def workspace(self, namespace: str, name: str) -> Manifest | None:
        return self._read(
            f"SecureMLWorkspace {namespace}/{name}", self.api.get_namespaced_custom_object, namespace, PLURAL, name
        )


@dataclass(frozen=True)
class Planned:
    """One workspace to plan: the manifest's body in its namespace, and the live object if any."""

    namespace: str
    name: str
    body: Manifest
    existing: Manifest | None


def applied_generation(body: Manifest, existing: Manifest) -> int:
    """The generation the resource would have once applied: unchanged while its spec is (the
    conflicting-writer counts in status last as long as the generation does)."""
    if not existing:
        return 1
    generation = int((existing.get("metadata") or {}).get("generation") or 1)
    try:
        same = SecureMLWorkspaceSpec.model_validate(body.get("spec") or {}) == SecureMLWorkspaceSpec.model_validate(
            existing.get("spec") or {}
        )
    except ValidationError:
        same = False
    return generation if same else generation + 1


def _target(item: Planned, policy: dict[str, Any] | None) -> Target:
    """The resource as the operator would see it once the manifest is applied."""
    existing = item.existing or {}
    live = existing.get("metadata") or {}
    declared = item.body.get("metadata") or {}
    metadata = {
        **declared,
        "namespace": item.namespace,
        "uid": str(live.get("uid") or ""),  # a new resource: nobody's uid yet
        "generation": applied_generation(item.body, existing),
        "annotations": {**(live.get("annotations") or {}), **(declared.get("annotations") or {})},
    }
    body = cast(kopf.RawBody, {**item.body, "metadata": metadata, "status": existing.get("status") or {}})
    return Target(kopf.Body(body), kopf.Patch(), ResourceMemo(), policy=policy)


async def plan_workspace(reconciler: Reconciler, item: Planned, policy: dict[str, Any] | None) -> WorkspacePlan:
    """The operator's preparation and a Detect-mode walk, with the ledger kept in memory only."""
    target = _target(item, policy)
    azure = (item.body.get("spec") or {}).get("azure") or {}
    resource_group = f"/subscriptions/{azure.get('subscriptionId')}/resourceGroups/{azure.get('resourceGroup')}"
    status = dict(target.body.get("status") or {})
    ledger = Ledger.from_status(status)  # no persistence: plan writes nothing
    in_cluster = item.existing is not None
    try:
        prepared = await reconciler.prepare(target, ledger)
    except Exception as error:
        failure = classify(error)
        problem = plan_error(failure)
        if problem is not None:
            raise problem from error
        refusal = Refusal(failure.reason, failure.message)
        return WorkspacePlan(item.namespace, item.name, in_cluster, resource_group, refusals=(refusal,))
    engine = reconciler.engine(target, prepared, ledger, Mode.DETECT, target.conflicts(status))
    report = await engine.converge(prepared.graph)
    return from_report(item.namespace, item.name, in_cluster, resource_group, report)


async def plan_all(items: Sequence[Planned], policy: dict[str, Any] | None) -> tuple[list[WorkspacePlan], list[str]]:
    plans, errors = [], []
    try:
        access = AzureAccess(OperatorSettings.from_env())
    except ValueError as error:
        return [], [f"settings: {error}"]
    reconciler = Reconciler(access)
    try:
        for item in items:
            try:
                plans.append(await plan_workspace(reconciler, item, policy))
            except PlanError as error:
                errors.append(f"{item.namespace}/{item.name}: {error}")
            except Exception as error:  # whatever it is, one line, never a traceback
                failure = classify(error)
                errors.append(f"{item.namespace}/{item.name}: {failure.reason}: {failure.message}")
    finally:
        await access.close()
    return plans, errors


def _targets(documents: Sequence[Document], cluster: Cluster, flag: str | None) -> tuple[list[Planned], list[str]]:
    items, errors = [], []
    for document in documents:
        try:
            name = check(document.body)
            namespace = namespace_of(document.body, flag, cluster.default_namespace)
            items.append(Planned(namespace, name, document.body, cluster.workspace(namespace, name)))
        except PlanError as error:
            errors.append(f"{document.source}: {error}")
    return items, errors


@contextmanager
def _quiet() -> Iterator[None]:
    """Only errors are logged meanwhile: the SDKs' retry and credential chatter stays out of the output."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def run(args: argparse.Namespace) -> int:
    try:
        documents, notes = select(load_documents(args.filename, sys.stdin))
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        if not documents:
            print("note: no SecureMLWorkspace to plan", file=sys.stderr)
            items: list[Planned] = []
            errors: list[str] = []
            policy = None
        else:
            cluster = Cluster()
            items, errors = _targets(documents, cluster, args.namespace)
            policy = cluster.policy() if items else None
    except PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    with _quiet():
        plans, failures = asyncio.run(plan_all(items, policy)) if items else ([], [])
    errors += failures
    sys.stdout.write(render_json(plans, errors) if args.output == "json" else render_text(plans))
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    return exit_code(plans, errors)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "plan",
        help="show what applying a manifest would do in Azure (writes nothing)",
        description="Show what applying SecureMLWorkspace manifests would do in Azure: resources to create, "
        "fields to change, extras to remove, what the operator would refuse. Reads Azure and the cluster, "
        "writes nothing. Exit code 0: no changes; 2: changes or refusals; 1: error.",
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        help="a manifest file, a directory of them, or - for stdin (repeatable)",
    )
    parser.add_argument(
        "-n", "--namespace", help="namespace of manifests that name none (default: the kubeconfig context's)"
    )
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")
    parser.set_defaults(run=run)
