"""plan → engine → status for one custom resource: what every kopf handler calls.

Handlers stay thin; this module decides what a walk means for the resource's status, which
failures are retried (kopf.TemporaryError with backoff) and which stall it until the spec changes
(Stalled=True, no further writes to Azure).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import kopf
import kubernetes
from azure.core.exceptions import HttpResponseError
from pydantic import ValidationError

from secureml_operator import kube, metrics, preflight
from secureml_operator.api import tenancy
from secureml_operator.api.duration import parse_duration
from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.access import AzureAccess
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.ids import ArmId
from secureml_operator.desired.graph import DesiredGraph
from secureml_operator.desired.observed import Observed
from secureml_operator.desired.plan import plan
from secureml_operator.engine.engine import Change, Engine, Mode, OtherClaims, RunReport, nobody_else
from secureml_operator.engine.errors import PermanentFailure, TransientFailure, classify
from secureml_operator.engine.ledger import IP_RULE, Ledger, Origin, entry_key
from secureml_operator.engine.ownership import Owner
from secureml_operator.status import conditions as c
from secureml_operator.status import report as status_report
from secureml_operator.status.conditions import Condition, conditions_patch

MAX_RETRY_DELAY_SECONDS = 300
CONFLICT_THRESHOLD = 3  # corrections of one field in consecutive sweeps before we call it a conflict


@dataclass
class ResourceMemo:
    """Per custom resource, in the operator's memory: conflicting-writer bookkeeping, and the lock
    that keeps its walks (reconcile, sweep, delete) one at a time, so each sees the ledger the last
    one left."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    generation: int = 0
    corrections: dict[tuple[str, str], int] = field(default_factory=dict)
    frozen: set[tuple[str, str]] = field(default_factory=set)

    def observe(self, generation: int, report: RunReport) -> None:
        if generation != self.generation:
            self.generation, self.corrections, self.frozen = generation, {}, set()
        corrected = {
            (ArmId.parse(change.resource).key, change.field)
            for change in report.changes
            if change.action == "Corrected"
        }
        self.corrections = {key: self.corrections.get(key, 0) + 1 for key in corrected}
        self.frozen |= {key for key, count in self.corrections.items() if count >= CONFLICT_THRESHOLD}


@dataclass(frozen=True)
class Target:
    """The custom resource one walk is for, as kopf hands it to a handler."""

    body: kopf.Body
    patch: kopf.Patch
    memo: ResourceMemo
    retry: int = 0  # how many times kopf already retried this handler (for backoff)
    policy: dict[str, Any] | None = None  # the SecureMLTenancyPolicy `default` (a kopf index); None: none

    @property
    def generation(self) -> int:
        return int(self.body.metadata.get("generation") or 0)

    @property
    def owner(self) -> Owner:
        meta = self.body.metadata
        return Owner(str(meta.namespace), str(meta.name), str(meta.uid))

    def set_conditions(self, *updates: Condition) -> None:
        self.patch.fns.append(conditions_patch(list(updates), self.generation))

    def ledger(self) -> Ledger:
        """The ledger in status; a create announced mid-walk is written to status at once."""
        meta = self.body.metadata

        async def persist(entries: list[dict[str, Any]]) -> None:
            try:
                await kube.patch_status(str(meta.namespace), str(meta.name), {"ledger": entries})
            except kubernetes.client.ApiException as error:  # the create is not sent unannounced
                raise TransientFailure("KubernetesUnavailable", f"{error.status} {error.reason}") from error

        return Ledger.from_status(dict(self.body.get("status") or {}), persist)


@dataclass(frozen=True)
class Prepared:
    """What a walk needs, gathered before its first write."""

    spec: SecureMLWorkspaceSpec
    arm: ArmClient
    observed: Observed
    graph: DesiredGraph
    other_claims: OtherClaims


async def _namespace_labels(target: Target) -> dict[str, str]:
    """Labels of the resource's namespace: needed only when a tenancy policy may select by them."""
    return await kube.namespace_labels(target.owner.namespace) if target.policy is not None else {}


async def _other_claims(target: Target, spec: SecureMLWorkspaceSpec, ledger: Ledger) -> OtherClaims:
    """IP rules other SecureMLWorkspaces' ledgers hold, read only when this one has allowlists."""
    network = spec.outbound.customer_network
    ours = [entry for entry in ledger.entries.values() if entry.type == IP_RULE]
    if not ours and not (network and network.allowlist_egress_on):
        return nobody_else
    claims: dict[tuple[str, str], set[Origin]] = {}
    for item in await kube.workspace_statuses(target.owner.namespace):
        if item["uid"] == target.owner.uid:
            continue
        for entry in Ledger.from_status(item["status"]).entries.values():
            if entry.type == IP_RULE and entry.name:
                claims.setdefault((entry_key(entry.id), entry.name.lower()), set()).add(entry.origin)

    def others(target_id: str, address: str) -> frozenset[Origin]:
        return frozenset(claims.get((entry_key(target_id), address.lower()), ()))

    return others


def _observed_allowlists(ledger: Ledger, others: OtherClaims, observed: Observed | None = None) -> Observed:
    """The IP rules in our ledger by target, and those we alone may take off again: added by us,
    and needed by no other live resource."""
    listed: dict[str, list[str]] = {}
    removable: dict[str, list[str]] = {}
    for entry in ledger.entries.values():
        if entry.type != IP_RULE or not entry.name:
            continue
        listed.setdefault(entry.id, []).append(entry.name)
        if entry.origin is Origin.CREATED and not others(entry.id, entry.name):
            removable.setdefault(entry.id, []).append(entry.name)
    return dataclasses.replace(
        observed or Observed(),
        allowlisted={target: tuple(ips) for target, ips in listed.items()},
        removable={target: tuple(ips) for target, ips in removable.items()},
    )


def parse_spec(target: Target) -> SecureMLWorkspaceSpec:
    try:
        return SecureMLWorkspaceSpec.model_validate(dict(target.body.spec))
    except ValidationError as error:
        problems = "; ".join(
            f"spec.{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()
        )
        raise PermanentFailure("InvalidSpec", problems) from error


def stall(target: Target, failure: PermanentFailure) -> kopf.PermanentError:
    """Stalled until the spec changes: kstatus reads this as Failed, Argo CD as Degraded."""
    target.set_conditions(
        Condition(c.STALLED, True, failure.reason, failure.message),
        Condition(c.RECONCILING, False, failure.reason, "stopped: the spec or access must change first"),
        Condition(c.READY, False, failure.reason, failure.message),
    )
    kopf.warn(target.body, reason=failure.reason, message=failure.message)
    metrics.RECONCILES.labels("stalled").inc()
    return kopf.PermanentError(failure.message)


def sweepable(body: kopf.Body, **_: Any) -> bool:
    """Drift sweeps run only on a resource whose current spec was reconciled and is not stalled."""
    status = body.get("status") or {}
    if status.get("observedGeneration") != body.metadata.get("generation"):
        return False
    conditions = {condition.get("type"): condition for condition in status.get("conditions") or []}
    return bool(conditions.get("Stalled", {}).get("status") != "True")


def sweep_due(body: kopf.Body, default_interval: datetime.timedelta) -> bool:
    """Sweepable, and `spec.drift.interval` (or the operator's default) has passed since the last check."""
    if not sweepable(body):
        return False
    last = ((body.get("status") or {}).get("drift") or {}).get("lastCheckTime")
    if not last:
        return True
    configured = ((body.get("spec") or {}).get("drift") or {}).get("interval")
    interval = parse_duration(configured) if configured else default_interval
    checked = datetime.datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return datetime.datetime.now(datetime.UTC) - checked >= interval


class Reconciler:
    def __init__(self, access: AzureAccess) -> None:
        self.access = access

    async def _arm(self, target: Target, spec: SecureMLWorkspaceSpec) -> ArmClient:
        credential = spec.azure.credential_ref.name if spec.azure.credential_ref else None
        return await self.access.client(target.owner.namespace, credential)

    def _engine(self, target: Target, prepared: Prepared, ledger: Ledger, mode: Mode) -> Engine:
        async def announce(verb: str, resource: str, why: str) -> None:
            kopf.info(target.body, reason=f"Azure{verb}", message=f"{verb} {resource}: {why}")

        return Engine(
            prepared.arm,
            target.owner,
            ledger,
            mode,
            announce,
            frozenset(target.memo.frozen),
            adopt=prepared.spec.adoption == "Adopt",
            other_claims=prepared.other_claims,
        )

    async def _prepare(self, target: Target, ledger: Ledger) -> Prepared:
        """Everything before the first write: parse, check the tenancy policy, authenticate, check
        what only Azure knows, learn which IP rules other resources hold, plan."""
        spec = parse_spec(target)
        try:
            labels = await _namespace_labels(target)
            self._check_permitted(target, spec, labels)
            arm = await self._arm(target, spec)
            observed = await preflight.observe(arm, spec)
            others = await _other_claims(target, spec, ledger)
        except HttpResponseError as error:  # also ClientAuthenticationError: no token, no access
            transient, reason, message = classify(error)
            if transient:
                raise TransientFailure(reason, message) from error
            raise PermanentFailure(reason, message) from error
        except kubernetes.client.ApiException as error:
            raise TransientFailure("KubernetesUnavailable", f"{error.status} {error.reason}") from error
        observed = _observed_allowlists(ledger, others, observed)
        return Prepared(spec, arm, observed, plan(spec, observed), others)

    def _check_permitted(self, target: Target, spec: SecureMLWorkspaceSpec, labels: dict[str, str]) -> None:
        """The tenancy policy, checked again before any Azure call (admission may have been off)."""
        settings = self.access.settings
        violations = tenancy.evaluate(
            spec, target.owner.namespace, labels, target.policy, settings.allowed_subscriptions
        )
        if violations:
            raise PermanentFailure("NotPermitted", tenancy.admission_message(violations))

    def _drop_unreachable(self, target: Target, ledger: Ledger, labels: dict[str, str]) -> None:
        """Teardown touches only ledger entries inside what the namespace may reach: an entry outside
        it (status edited by hand, or the policy narrowed since) is left alone and reported."""
        namespace, allowed = target.owner.namespace, self.access.settings.allowed_subscriptions
        for entry in list(ledger.entries.values()):
            if not tenancy.may_reach(entry.id, namespace, labels, target.policy, allowed):
                ledger.forget(entry.id, entry.name)
                kopf.warn(
                    target.body,
                    reason="NotPermitted",
                    message=f"{entry.id} is outside what namespace {namespace} may reach: left alone",
                )

    async def reconcile(self, target: Target) -> None:
        """Create/update/resume: converge Azure to the spec (always enforcing: the spec changed)."""
        async with target.memo.lock:
            with metrics.RECONCILE_SECONDS.labels("reconcile").time():
                ledger = target.ledger()
                try:
                    prepared = await self._prepare(target, ledger)
                except PermanentFailure as failure:
                    raise stall(target, failure) from failure
                except TransientFailure as failure:
                    raise self._retry_later(target, [], failure.reason, failure.message) from failure
                report = await self._engine(target, prepared, ledger, Mode.ENFORCE).converge(prepared.graph)
                self._publish(target, prepared, report, ledger, sweep=False)

    async def sweep(self, target: Target) -> None:
        """The drift timer: the same walk (Detect mode only reports). Failures are published, never
        raised: the next sweep is the retry, and a stalled resource waits for its spec to change."""
        if not sweep_due(target.body, self.access.settings.drift_interval):
            return
        async with target.memo.lock:
            with metrics.RECONCILE_SECONDS.labels("drift").time():
                ledger = target.ledger()
                try:
                    prepared = await self._prepare(target, ledger)
                except PermanentFailure as failure:
                    stall(target, failure)
                    return
                except TransientFailure as failure:
                    kopf.warn(target.body, reason=failure.reason, message=f"drift sweep skipped: {failure.message}")
                    return
                mode = Mode(prepared.spec.drift.mode)
                report = await self._engine(target, prepared, ledger, mode).converge(prepared.graph)
                target.memo.observe(target.generation, report)
                with contextlib.suppress(kopf.PermanentError, kopf.TemporaryError):
                    self._publish(target, prepared, report, ledger, sweep=True)

    async def delete(self, target: Target) -> None:
        """deletionPolicy Delete removes what the ledger says we created (dependents first) and takes
        back the IP rules we added; Retain touches nothing. A resource that never owned anything
        makes no Azure call at all."""
        try:
            spec = parse_spec(target)
        except PermanentFailure:
            kopf.warn(target.body, reason="InvalidSpec", message="spec unreadable: leaving Azure as it is")
            return
        if spec.deletion_policy == "Retain":
            kopf.info(target.body, reason="Retained", message="deletionPolicy Retain: Azure left untouched")
            return
        async with target.memo.lock:
            ledger = target.ledger()
            try:
                self._drop_unreachable(target, ledger, await _namespace_labels(target))
                if not ledger:
                    kopf.info(
                        target.body, reason="NothingOwned", message="nothing in Azure was created by this resource"
                    )
                    return
                others = await _other_claims(target, spec, ledger)
            except kubernetes.client.ApiException as error:
                message = f"reading the namespace or other resources failed: {error.status} {error.reason}"
                kopf.warn(target.body, reason="KubernetesUnavailable", message=message)
                raise kopf.TemporaryError(message, delay=15) from error
            observed = _observed_allowlists(ledger, others)
            prepared = Prepared(spec, await self._arm(target, spec), observed, plan(spec, observed), others)
            report = await self._engine(target, prepared, ledger, Mode.ENFORCE).teardown(prepared.graph)
            target.patch.status.update(status_report.ledger_facts(ledger))
            failure = status_report.first_failure(report)
            if failure is not None:
                kopf.warn(target.body, reason="DeleteFailed", message=failure.message)
                raise kopf.TemporaryError(f"deleting Azure resources: {failure.message}", delay=15)

    def _publish(self, target: Target, prepared: Prepared, report: RunReport, ledger: Ledger, sweep: bool) -> None:
        spec, observed, graph = prepared.spec, prepared.observed, prepared.graph
        status = target.patch.status
        network = status_report.customer_network_facts(spec, report, observed)
        facts = {**status_report.facts(spec, report), **network, **status_report.ledger_facts(ledger)}
        for key, value in facts.items():
            status[key] = value
        status["resources"] = status_report.owned_resources(graph, report)
        drift_changes = report.changes if sweep else []
        for change in drift_changes:
            metrics.DRIFT_FOUND.labels(_type_of(change.resource)).inc()
            if change.action == "Corrected":
                metrics.DRIFT_CORRECTED.labels(_type_of(change.resource)).inc()
            kopf.warn(
                target.body,
                reason="DriftDetected",
                message=f"{change.resource} {change.field}: expected {change.expected}, found {change.actual}"
                f" ({change.action})",
            )
        corrected = sum(1 for change in drift_changes if change.action == "Corrected")
        target.patch.fns.append(_drift_patch(drift_changes, corrected))
        failure = status_report.first_failure(report)
        pending = status_report.pending_approvals(spec, graph, report)
        status["pendingPrivateEndpoints"] = pending or []
        updates = [
            *status_report.isolation_conditions(spec, report),
            *([status_report.approval_condition(pending)] if pending is not None else []),
            status_report.sync_condition(report, detect=spec.drift.mode == "Detect"),
            Condition(c.STALLED, False, "Progressing" if failure else "Reconciled", "no blocking problem"),
        ]
        if failure is None:
            summary = status_report.outcome_summary(report)
            updates += [
                Condition(c.READY, True, "Reconciled", f"Azure matches the spec ({summary})"),
                Condition(c.RECONCILING, False, "Reconciled", "nothing left to do"),
            ]
            target.set_conditions(*updates)
            metrics.RECONCILES.labels("ready").inc()
            return
        if not failure.transient:
            target.set_conditions(*updates)
            raise stall(target, PermanentFailure(failure.reason, failure.message))
        raise self._retry_later(target, updates, failure.reason, failure.message)

    def _retry_later(self, target: Target, updates: list[Condition], reason: str, message: str) -> kopf.TemporaryError:
        """Not Ready yet, still reconciling; kopf retries with exponential backoff."""
        target.set_conditions(
            *updates,
            Condition(c.READY, False, reason, message),
            Condition(c.RECONCILING, True, reason, f"retrying: {message}"),
        )
        metrics.RECONCILES.labels("retrying").inc()
        delay = min(self.access.settings.retry_delay_seconds * 2**target.retry, MAX_RETRY_DELAY_SECONDS)
        return kopf.TemporaryError(message, delay=delay)


def _type_of(resource: str) -> str:
    try:
        return ArmId.parse(resource).type
    except ValueError:
        return "unknown"


def _drift_patch(changes: list[Change], corrected: int) -> Callable[[kopf.RawBody], None]:
    def apply(body: kopf.RawBody) -> None:
        status = cast(dict[str, Any], body).setdefault("status", {})
        drift = dict(status.get("drift") or {})
        drift["lastCheckTime"] = c.now()
        drift["correctionsTotal"] = int(drift.get("correctionsTotal") or 0) + corrected
        drift["items"] = status_report.drift_items(changes, list(drift.get("items") or []))
        status["drift"] = drift

    return apply
