"""plan → engine → status for one custom resource: what every kopf handler calls.

Handlers stay thin; this module decides what a walk means for the resource's status. Every failure,
at every stage (prepare, walk, status, delete), goes through `errors.classify` once: a transient one
sets `Reconciling` and is retried with the operator's own backoff (the resource's memo; a delete's via
kopf's delay); a permanent one sets `Stalled` and writes nothing more to Azure until the spec or access
changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import kopf
from pydantic import ValidationError

from secureml_operator import kube, metrics, preflight
from secureml_operator.api import tenancy
from secureml_operator.api.duration import format_duration, parse_duration
from secureml_operator.api.models import SecureMLWorkspaceSpec
from secureml_operator.azure.access import AzureAccess
from secureml_operator.azure.arm import SHARED_READ_AGE, ArmClient
from secureml_operator.azure.ids import ArmId, InvalidArmId
from secureml_operator.desired.graph import DesiredGraph
from secureml_operator.desired.observed import Observed
from secureml_operator.desired.plan import plan
from secureml_operator.engine.conflicts import RESET_ANNOTATION, Conflicts
from secureml_operator.engine.engine import Action, Change, Engine, Mode, OtherClaims, RunReport, nobody_else
from secureml_operator.engine.ledger import IP_RULE, Ledger, Origin, entry_key
from secureml_operator.engine.ownership import Owner
from secureml_operator.failures import UNEXPECTED, Failure, PermanentFailure, classify
from secureml_operator.status import conditions as c
from secureml_operator.status import isolation
from secureml_operator.status import report as status_report
from secureml_operator.status.conditions import Condition, conditions_patch
from secureml_operator.sweeps import Outcome, Pacing, SweepResult, SweepScheduler, cancelled
from secureml_operator.turns import Turns

MAX_RETRY_DELAY_SECONDS = 300
log = logging.getLogger(__name__)


@dataclass
class ResourceMemo:
    """Per custom resource, in the operator's memory: the lock that keeps its walks (reconcile,
    sweep, delete) one at a time, so each sees the ledger the last one left, and the sweep's backoff
    after transient failures. Everything that must survive a restart is in status."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failures: int = 0  # transient sweep failures in a row
    not_before: float = 0.0  # time.monotonic() before which no sweep is retried
    # A digest of status.ledger as this process last wrote or read it (not the ledger: a thousand
    # resources' ledgers would stay in memory for one comparison each).
    ledger_stored: str | None = None
    # Set by each request for a reconcile (create, spec change, resume), cleared as its walk reads the
    # resource: set again meanwhile, the resource is walked again, with the spec it has then.
    requested: asyncio.Event = field(default_factory=asyncio.Event)

    def back_off(self, first_delay: float) -> float:
        self.failures += 1
        delay = backoff(first_delay, self.failures - 1)
        self.not_before = time.monotonic() + delay
        return delay

    def recovered(self) -> None:
        self.failures, self.not_before = 0, 0.0


def ledger_digest(entries: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


def backoff(first_delay: float, retry: int) -> float:
    """The operator's retry delay: the first within seconds, doubling, capped."""
    return float(min(first_delay * 2**retry, MAX_RETRY_DELAY_SECONDS))


@dataclass(frozen=True)
class Target:
    """The custom resource one walk is for, as kopf hands it to a handler."""

    body: kopf.Body
    patch: kopf.Patch
    memo: ResourceMemo
    retry: int = 0  # how many times kopf already retried this (delete) handler, for its backoff
    policy: dict[str, Any] | None = None  # the SecureMLTenancyPolicy `default` (a kopf index); None: none

    @property
    def generation(self) -> int:
        return int(self.body.metadata.get("generation") or 0)

    def fixed(self) -> Target:
        """This walk's own copy of the resource. kopf can hand a handler a live body that it updates
        in place when a watch event arrives: a walk of the old spec would otherwise end by reporting
        the new generation as observed, Ready for a spec it never applied."""
        return dataclasses.replace(self, body=kopf.Body(cast(kopf.RawBody, copy.deepcopy(dict(self.body)))))

    @property
    def owner(self) -> Owner:
        meta = self.body.metadata
        return Owner(str(meta.namespace), str(meta.name), str(meta.uid))

    def set_conditions(self, *updates: Condition) -> None:
        self.patch.fns.append(conditions_patch(list(updates), self.generation))
        for update in updates:
            metrics.RESOURCES.condition(self.owner.namespace, self.owner.name, update.type, update.status)

    async def status(self) -> dict[str, Any]:
        """The status a walk starts from. kopf's body can predate this process's last ledger write
        (the watch event of that write may not have arrived yet): a ledger that is not the one last
        stored here is read again from the API server, so a walk never starts from a ledger that
        lacks what the last one recorded."""
        status = dict(self.body.get("status") or {})
        stored = self.memo.ledger_stored
        if stored is not None and ledger_digest(status.get("ledger") or []) != stored:
            status = await kube.read_status(self.owner.namespace, self.owner.name)
        self.memo.ledger_stored = ledger_digest(status.get("ledger") or [])
        return status

    async def _store(self, status: dict[str, Any]) -> None:
        try:
            await kube.patch_status(self.owner.namespace, self.owner.name, status)
        except Exception as error:  # nothing is sent to Azure on a ledger that was not stored
            raise classify(error) from error
        self.memo.ledger_stored = ledger_digest(status["ledger"])

    def ledger(self, status: dict[str, Any]) -> Ledger:
        """The ledger in `status`; a create announced mid-walk is written to status at once."""

        async def persist(entries: list[dict[str, Any]]) -> None:
            await self._store({"ledger": entries})

        return Ledger.from_status(status, persist)

    async def store_ledger(self, ledger: Ledger) -> None:
        """The ledger and what it implies, when it changed, written before the walk lets go of the
        resource's lock: kopf writes a handler's patch only after the handler has returned, when the
        next walk may already have started from the ledger before it."""
        facts = status_report.ledger_facts(ledger)
        if ledger_digest(facts["ledger"]) != self.memo.ledger_stored:
            await self._store(facts)

    def conflicts(self, status: dict[str, Any]) -> Conflicts:
        """The conflicting-writer counts in status, kept while the spec and the reset annotation stay."""
        reset = self.body.metadata.annotations.get(RESET_ANNOTATION)
        return Conflicts.from_status(status, self.generation, reset)


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


# How long a list of the other resources' IP rules serves. Between two lists this operator's own ledger
# writes keep it current; what a list adds is ledgers others wrote (another operator instance's, in a
# cluster-wide scope). Ten minutes: at 1000 resources a list once a minute took 13 % of the operator's
# sampled CPU (1000 bodies decoded to keep a few IP addresses each).
CLAIMS_LISTED_FOR_SECONDS = 600.0
Claim = tuple[str, str, Origin]  # (target key, address lower-cased, origin) of one IP rule in a ledger
# kube.workspace_statuses: what a function makes of every live resource's status, and whether cluster-wide
Lister = Callable[[str, Callable[[dict[str, Any]], list[Claim]]], Awaitable[tuple[dict[str, list[Claim]], bool]]]
CLUSTER = ""  # the scope of a cluster-wide list


@dataclass
class _Listed:
    at: float  # time.monotonic()
    claims: dict[str, list[Claim]]  # by uid
    # How many resources hold each claim, kept with `claims`: a sweep asks about its own targets in
    # constant time instead of going through every resource's claims (N sweeps of N ledgers).
    holders: Counter[Claim] = field(init=False)

    def __post_init__(self) -> None:
        self.holders = Counter(claim for rules in self.claims.values() for claim in rules)

    def hold(self, uid: str, rules: list[Claim]) -> None:
        """`uid`'s claims are now `rules`."""
        for claim in self.claims.get(uid, ()):
            self.holders[claim] -= 1
            if not self.holders[claim]:
                del self.holders[claim]
        self.holders.update(rules)
        self.claims[uid] = rules


class IpRuleClaims:
    """The IP rules the ledgers of other live SecureMLWorkspaces hold. Listed from the API server at
    most every CLAIMS_LISTED_FOR_SECONDS (cluster-wide, or per namespace where the operator may not
    list across them) and kept current in between with this operator's own ledger writes: a sweep of
    a resource with allowlists used to list every resource, N sweeps of N bodies."""

    def __init__(self, lister: Lister = kube.workspace_statuses) -> None:
        self._lists: dict[str, _Listed] = {}  # by scope: CLUSTER, or a namespace
        self._list = lister
        # One list at a time: when a list went stale, every sweep of a resource with allowlists listed
        # all the resources itself until one finished. At 5000 resources a list is 200 pages (about
        # 140 MB of JSON), each list holding one of the threads every Kubernetes call waits for.
        self._listing = asyncio.Lock()

    async def others(self, target: Target, spec: SecureMLWorkspaceSpec, ledger: Ledger) -> OtherClaims:
        """Read only when this resource has allowlists (or IP rules in its ledger)."""
        network = spec.outbound.customer_network
        ours = [entry for entry in ledger.entries.values() if entry.type == IP_RULE]
        if not ours and not (network and network.allowlist_egress_on):
            return nobody_else
        namespace = target.owner.namespace
        listed = self._fresh(namespace)
        if listed is None:
            async with self._listing:  # whoever waited finds the list the one before it made
                listed = self._fresh(namespace)
                if listed is None:
                    now = time.monotonic()
                    claims, cluster_wide = await self._list(namespace, _claims_in)
                    listed = self._lists[CLUSTER if cluster_wide else namespace] = _Listed(now, claims)
                    log.info(
                        "listed the IP rules other resources hold",
                        extra={
                            "scope": "cluster" if cluster_wide else namespace,
                            "resources": len(claims),
                            "seconds": round(time.monotonic() - now, 2),
                        },
                    )
        holders, mine = listed.holders, Counter(listed.claims.get(target.owner.uid, ()))

        def others(target_id: str, address: str) -> frozenset[Origin]:
            key, ip = entry_key(target_id), address.lower()
            return frozenset(origin for origin in Origin if holders[key, ip, origin] > mine[key, ip, origin])

        return others

    def _fresh(self, namespace: str) -> _Listed | None:
        """A list younger than CLAIMS_LISTED_FOR_SECONDS that covers `namespace`, if there is one."""
        now = time.monotonic()
        return next(
            (self._lists[scope] for scope in (CLUSTER, namespace)
             if scope in self._lists and now - self._lists[scope].at <= CLAIMS_LISTED_FOR_SECONDS),
            None,
        )  # fmt: skip

    def note(self, owner: Owner, ledger: Ledger | None) -> None:
        """A resource's ledger as this operator just stored it; None: the resource is going."""
        for scope in (CLUSTER, owner.namespace):
            if scope in self._lists:
                self._lists[scope].hold(owner.uid, _ip_rules(ledger) if ledger is not None else [])


def _claims_in(status: dict[str, Any]) -> list[Claim]:
    return _ip_rules(Ledger.from_status(status))


def _ip_rules(ledger: Ledger) -> list[Claim]:
    return [
        (entry_key(entry.id), entry.name.lower(), entry.origin)
        for entry in ledger.entries.values()
        if entry.type == IP_RULE and entry.name
    ]


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


def stall(target: Target, failure: Failure, way_out: str = "the spec or access must change first") -> None:
    """Stalled until the spec changes: kstatus reads this as Failed, Argo CD as Degraded."""
    target.set_conditions(
        Condition(c.STALLED, True, failure.reason, failure.message),
        Condition(c.RECONCILING, False, failure.reason, f"stopped: {way_out}"),
        Condition(c.READY, False, failure.reason, failure.message),
    )
    kopf.warn(target.body, reason=failure.reason, message=failure.message)
    metrics.RECONCILES.labels("stalled").inc()


def reconciling(target: Target, failure: Failure, delay: float) -> None:
    """Not Ready yet, still reconciling: the next attempt is `delay` seconds away."""
    target.set_conditions(
        Condition(c.READY, False, failure.reason, failure.message),
        Condition(c.RECONCILING, True, failure.reason, f"retrying in {delay:g}s: {failure.message}"),
        Condition(c.STALLED, False, failure.reason, "a transient failure: retried"),
    )
    kopf.warn(target.body, reason=failure.reason, message=f"retrying in {delay:g}s: {failure.message}")
    metrics.RECONCILES.labels("retrying").inc()


def classified(target: Target, error: BaseException) -> Failure:
    """`errors.classify`, and the traceback logged for what no rule foresaw (a bug to report)."""
    failure = classify(error)
    if failure.reason == UNEXPECTED:
        log.error(
            "unexpected failure",
            exc_info=error,
            extra={"resource": f"{target.owner.namespace}/{target.owner.name}"},  # `name` is the logger's
        )
    return failure


def _unreadable(walk: str, namespace: str, name: str, error: BaseException) -> None:
    """A walk that could not read its resource from the API server: said, and retried after the backoff."""
    failure = classify(error)
    log.warning(
        f"{walk} postponed: the resource cannot be read",
        extra={"resource": f"{namespace}/{name}", "reason": failure.reason, "error": failure.message},
    )


def _conditions(body: kopf.Body) -> dict[str, str] | None:
    """Condition statuses by type, when they are about the current generation (else None)."""
    status = body.get("status") or {}
    if status.get("observedGeneration") != body.metadata.get("generation"):
        return None
    return {str(condition.get("type")): str(condition.get("status")) for condition in status.get("conditions") or []}


def sweepable(body: kopf.Body) -> bool:
    """Drift sweeps run only on a resource whose current spec was reconciled and is not stalled."""
    conditions = _conditions(body)
    return conditions is not None and conditions.get(c.STALLED) != "True"


def settled(body: kopf.Body) -> bool:
    """Ready for its current spec: after a restart its sweeps suffice (one in Detect mode would
    never finish a walk a failure interrupted, so anything else is walked again)."""
    conditions = _conditions(body)
    return conditions is not None and conditions.get(c.READY) == "True" and conditions.get(c.STALLED) != "True"


def sweep_reads(graph: DesiredGraph) -> Counter[str]:
    """The ARM reads a sweep of the graph makes, by subscription: one per resource in it. A target
    many workspaces share is read once per sweep window for all of them, so this errs high, on the
    side of the budget, until a sweep counts what it really read."""
    return Counter(node.id.subscription.lower() for node in graph)


def drift_interval(body: kopf.Body, default: datetime.timedelta) -> float:
    """`spec.drift.interval`, or the operator's default, in seconds."""
    configured = ((body.get("spec") or {}).get("drift") or {}).get("interval")
    return (parse_duration(configured) if configured else default).total_seconds()


STALLED_DELETE_WAY_OUT = (
    "to finish deleting, fix the cause (restore the credential Secret, or grant the access), "
    "or set spec.deletionPolicy: Retain to leave Azure as it is"
)


class Reconciler:
    def __init__(self, access: AzureAccess) -> None:
        self.access = access
        pacing = Pacing(access.settings.budget.reads_per_second)
        self.sweeps = SweepScheduler(self.sweep, pacing, access.budgets.routine_wait)
        self._memos: dict[tuple[str, str], ResourceMemo] = {}
        # Reconciles and deletes at once (SMLW_MAX_WORKERS). Bounded here, not by kopf's worker
        # limit: kopf queues every watch event of an object waiting for a worker, each with the
        # whole body (46 MiB at 1000 resources, 20 workers, half of them Ready). A reconcile retried after
        # its backoff goes first: behind every queued reconcile, one retried after 2 s waited 17 minutes
        # while 5000 resources were applied, its status saying `retrying in 2s` all along.
        self._walking = Turns(access.settings.max_workers)
        self._requested: dict[tuple[str, str], asyncio.Task[None]] = {}  # reconciles queued or under way
        self.claims = IpRuleClaims()
        # The SecureMLTenancyPolicy kopf index, handed over by the first handler (sweeps run outside
        # handlers); kopf keeps the index object current.
        self.tenancy_index: Mapping[str, Iterable[dict[str, Any]]] = {}

    def memo(self, namespace: str, name: str) -> ResourceMemo:
        """The resource's memo: one lock for its reconciles, sweeps and delete, and its backoff."""
        return self._memos.setdefault((namespace, name), ResourceMemo())

    def track(self, body: kopf.Body, reconciling: bool = False) -> None:
        """Schedule the resource's drift sweeps at its declared interval (or the operator's default);
        when a reconcile of it is queued, from that reconcile on."""
        meta = body.metadata
        interval = drift_interval(body, self.access.settings.drift_interval)
        self.sweeps.track(str(meta.namespace), str(meta.name), interval, reconciling)

    def policy(self) -> dict[str, Any] | None:
        """The SecureMLTenancyPolicy `default`, or None while there is none."""
        return next(iter(self.tenancy_index.get(tenancy.POLICY_NAME, [])), None)

    def forget(self, namespace: str, name: str) -> None:
        """A resource that is gone: no more sweeps, no memo, no metric series."""
        self.sweeps.forget(namespace, name)  # and every gauge of it
        self._memos.pop((namespace, name), None)

    @property
    def first_retry_delay(self) -> float:
        return self.access.settings.retry_delay_seconds

    async def _arm(self, target: Target, spec: SecureMLWorkspaceSpec) -> ArmClient:
        credential = spec.azure.credential_ref.name if spec.azure.credential_ref else None
        return await self.access.client(target.owner.namespace, credential)

    def engine(self, target: Target, prepared: Prepared, ledger: Ledger, mode: Mode, conflicts: Conflicts) -> Engine:
        async def announce(verb: str, resource: str, why: str) -> None:
            kopf.info(target.body, reason=f"Azure{verb}", message=f"{verb} {resource}: {why}")

        return Engine(
            prepared.arm,
            target.owner,
            ledger,
            mode,
            announce,
            conflicts.stopped,
            adopt=prepared.spec.adoption == "Adopt",
            other_claims=prepared.other_claims,
        )

    async def prepare(self, target: Target, ledger: Ledger) -> Prepared:
        """Everything before the first write: parse, check the tenancy policy, authenticate, check
        what only Azure knows, learn which IP rules other resources hold, plan."""
        spec = parse_spec(target)
        labels = await _namespace_labels(target)
        self._check_permitted(target, spec, labels)
        arm = await self._arm(target, spec)
        observed = await preflight.observe(arm, spec)
        others = await self.claims.others(target, spec, ledger)
        observed = _observed_allowlists(ledger, others, observed)
        graph = plan(spec, observed)
        unsupported = sorted({node.id.type for node in graph if not arm.supports(node.id)})
        if unsupported:  # refused before the first write, not halfway through the walk
            raise PermanentFailure(
                "UnsupportedTarget", f"the operator has no route to resources of type {', '.join(unsupported)}"
            )
        return Prepared(spec, arm, observed, graph, others)

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

    def request(self, body: kopf.Body) -> None:
        """Create, spec change or resume: a reconcile of the resource (always enforcing: the spec
        changed), queued behind the `max_workers` under way, and its sweeps scheduled. The handler
        returns at once: a handler waiting for its turn held kopf's copy of the body (the watch event,
        the essence, the frames), about 75 KB a resource, and a thousand waiting filled pymalloc arenas
        that the few objects left in each kept for good. The walk reads the resource when its turn
        comes, as a sweep does; a request for one already queued, walking or backing off walks it again."""
        self.track(body, reconciling=True)
        key = (str(body.metadata.namespace), str(body.metadata.name))
        self.memo(*key).requested.set()
        if key not in self._requested:
            walk = self._reconcile_requested(key)
            name = f"reconcile {'/'.join(key)}"
            self._requested[key] = asyncio.create_task(walk, name=name, context=self.sweeps.task_context())

    async def _reconcile_requested(self, key: tuple[str, str]) -> None:
        """Walk the resource while requests come; after a transient failure, again once its backoff
        is over or at the next request, whichever is first, ahead of the walks not yet begun. The memo
        is looked up at each turn: a resource deleted and created again under its name has a new one."""
        retrying = False
        try:
            while (memo := self._memos.get(key)) is not None and memo.requested.is_set():
                async with self._walking.held(first=retrying), memo.lock:
                    memo.requested.clear()
                    retry_in = await self._reconcile_now(*key, memo)
                retrying = retry_in is not None
                if retrying:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(retry_in):
                            await memo.requested.wait()
                    memo.requested.set()
        finally:  # with no await since the last look at `requested`: a request from now on starts a task
            del self._requested[key]

    async def _reconcile_now(self, namespace: str, name: str, memo: ResourceMemo) -> float | None:
        """One reconcile of the resource as the API server has it now. The seconds until it is retried
        after a transient failure; None when it is done (Ready, stalled, or gone)."""
        result = await self._walk_stored(namespace, name, memo, sweep=False)
        return result.retry_after if result.outcome is Outcome.RETRY else None

    async def stop(self) -> None:
        """No more walks: the queued reconciles and the sweeps are cancelled (the clients close next)."""
        await cancelled(self._requested.values())
        await self.sweeps.stop()

    async def sweep(self, namespace: str, name: str, effective_interval: float) -> SweepResult:
        """One drift sweep, for the scheduler: the resource as the API server has it now, read once
        the resource's lock is held (so a spec changed meanwhile is its reconcile's), walked in its
        drift mode, and its status patched only where it changed."""
        memo = self.memo(namespace, name)
        if (wait := memo.not_before - time.monotonic()) > 0:
            return SweepResult(Outcome.RETRY, retry_after=wait)
        SHARED_READ_AGE.set(effective_interval)  # this sweep's task only
        async with memo.lock:
            return await self._walk_stored(namespace, name, memo, sweep=True)

    async def _walk_stored(self, namespace: str, name: str, memo: ResourceMemo, sweep: bool) -> SweepResult:
        """A reconcile or a sweep of the resource as the API server has it now (the caller holds its lock), its
        outcome patched into status. Failures never escape: a transient one is retried after the memo's
        backoff (RETRY), a permanent one stalls the resource (SKIPPED: a sweep waits for a new spec)."""
        walk, resource = "sweep" if sweep else "reconcile", f"{namespace}/{name}"
        try:
            raw = await kube.read_workspace(namespace, name)
        except Exception as error:  # the API server is away (or refuses): again after the backoff
            _unreadable(walk, namespace, name, error)
            return SweepResult(Outcome.RETRY, retry_after=memo.back_off(self.first_retry_delay))
        if raw is None or raw["metadata"].get("deletionTimestamp"):
            return SweepResult(Outcome.GONE)
        body = kopf.Body(cast(kopf.RawBody, raw))
        if sweep and not sweepable(body):
            return SweepResult(Outcome.SKIPPED)
        target = Target(body, kopf.Patch(body=body), memo, policy=self.policy())
        with metrics.RECONCILE_SECONDS.labels("drift" if sweep else "reconcile").time():
            failure = await self.converge(target, sweep)
        try:
            await self._write_status(target, raw)
        except Exception as error:
            classified(target, error)
            return SweepResult(Outcome.RETRY, retry_after=memo.back_off(self.first_retry_delay))
        if failure is None:
            metrics.RESOURCES.last_check(namespace, name, time.time())
            if not sweep:
                log.info("reconciled", extra={"resource": resource, "generation": target.generation})
            return SweepResult(Outcome.CHECKED)
        retry_in = max(0.0, memo.not_before - time.monotonic()) if failure.transient else None
        log.warning(
            f"{walk} failed: retried" if failure.transient else f"{walk} stalled",
            extra={"resource": resource, "reason": failure.reason, "error": failure.message, "retry_in": retry_in},
        )
        if retry_in is None:
            return SweepResult(Outcome.SKIPPED)
        return SweepResult(Outcome.RETRY, retry_after=retry_in)

    async def converge(self, target: Target, sweep: bool) -> Failure | None:
        """A walk whose outcome is its conditions in `target.patch`: a transient failure `Reconciling`
        with the memo's backoff, a permanent one `Stalled`. The failure, if any."""
        try:
            await self._walk(target, sweep)
        except Exception as error:
            failure = classified(target, error)
            if failure.transient:
                reconciling(target, failure, target.memo.back_off(self.first_retry_delay))
            else:
                stall(target, failure)
            return failure
        target.memo.recovered()
        return None

    async def _write_status(self, target: Target, raw: dict[str, Any]) -> None:
        """The sweep's status, as a JSON patch of what changed; nothing at all when only the
        last-check time would move and the stored one is younger than the heartbeat."""
        operations = status_operations(target.patch, raw.get("status"))
        last = ((raw.get("status") or {}).get("drift") or {}).get("lastCheckTime")
        fresh = last and _age(last) < self.access.settings.status_heartbeat
        if fresh and all(operation["path"] == "/status/drift/lastCheckTime" for operation in operations):
            return
        if operations:
            await kube.json_patch_status(target.owner.namespace, target.owner.name, operations)

    async def _walk(self, target: Target, sweep: bool) -> None:
        """One converge of the resource, its ledger stored and its outcome published: a reconcile
        enforces (the spec changed), a sweep walks in the spec's drift mode and counts fights with
        other writers. Raises the failure that keeps it from being Ready."""
        status = await target.status()
        ledger = target.ledger(status)
        prepared = await self.prepare(target, ledger)
        conflicts = target.conflicts(status)
        mode = Mode(prepared.spec.drift.mode) if sweep else Mode.ENFORCE
        report = await self.engine(target, prepared, ledger, mode, conflicts).converge(prepared.graph)
        await target.store_ledger(ledger)
        self.claims.note(target.owner, ledger)
        if sweep:
            conflicts = conflicts.after_sweep(report.changes, c.now())
        else:
            self.sweeps.expect(target.owner.namespace, target.owner.name, sweep_reads(prepared.graph))
        failure = self._publish(target, prepared, report, conflicts, sweep)
        if failure is not None:
            raise failure

    async def delete(self, target: Target) -> None:
        """deletionPolicy Delete removes what the ledger says we created (dependents first) and takes
        back the IP rules we added; Retain touches nothing. A resource that never owned anything
        makes no Azure call at all. A delete that cannot proceed keeps the finalizer and says why."""
        await self._delete(target)
        self.forget(target.owner.namespace, target.owner.name)

    async def _delete(self, target: Target) -> None:
        try:
            spec = parse_spec(target)
        except PermanentFailure:
            kopf.warn(target.body, reason="InvalidSpec", message="spec unreadable: leaving Azure as it is")
            return
        if spec.deletion_policy == "Retain":
            kopf.info(target.body, reason="Retained", message="deletionPolicy Retain: Azure left untouched")
            return
        async with self._walking.held(), target.memo.lock:
            target = target.fixed()
            try:
                await self._teardown(target, spec, target.ledger(await target.status()))
            except Exception as error:
                failure = classified(target, error)
                delay = backoff(self.first_retry_delay, target.retry)  # a stalled delete is checked again too
                if failure.transient:
                    reconciling(target, failure, delay)
                else:
                    stall(target, failure, STALLED_DELETE_WAY_OUT)
                raise kopf.TemporaryError(f"deleting Azure resources: {failure.message}", delay=delay) from error

    async def _teardown(self, target: Target, spec: SecureMLWorkspaceSpec, ledger: Ledger) -> None:
        self._drop_unreachable(target, ledger, await _namespace_labels(target))
        if not ledger:
            kopf.info(target.body, reason="NothingOwned", message="nothing in Azure was created by this resource")
            return
        others = await self.claims.others(target, spec, ledger)
        observed = _observed_allowlists(ledger, others)
        prepared = Prepared(spec, await self._arm(target, spec), observed, plan(spec, observed), others)
        engine = self.engine(target, prepared, ledger, Mode.ENFORCE, Conflicts(target.generation))
        report = await engine.teardown(prepared.graph)
        await target.store_ledger(ledger)
        self.claims.note(target.owner, None)
        failure = status_report.first_failure(report)
        if failure is not None:
            raise failure

    def _publish(
        self,
        target: Target,
        prepared: Prepared,
        report: RunReport,
        conflicts: Conflicts,
        sweep: bool,
    ) -> Failure | None:
        """Write what the walk found to status; the failure that stops it from being Ready, if any."""
        spec, observed, graph = prepared.spec, prepared.observed, prepared.graph
        status = target.patch.status
        network = status_report.customer_network_facts(spec, report, observed)
        for key, value in {**status_report.facts(spec, report), **network}.items():
            status[key] = value
        status["resources"] = status_report.owned_resources(graph, report)
        peering = isolation.hub_peering(spec, report.lookup)
        status["hubPeering"] = peering.as_status() if peering is not None else None
        status["conflicts"] = conflicts.as_status()
        metrics.RESOURCES.conflicting_writer_fields(target.owner.namespace, target.owner.name, len(conflicts.stopped))
        drift_changes = report.changes if sweep else []
        for change in drift_changes:
            metrics.DRIFT_FOUND.labels(_type_of(change.resource)).inc()
            if change.action is Action.CORRECTED:
                metrics.DRIFT_CORRECTED.labels(_type_of(change.resource)).inc()
            kopf.warn(
                target.body,
                reason="DriftDetected",
                message=f"{change.resource} {change.field}: expected {change.expected}, found {change.actual}"
                f" ({change.action.value})",
            )
        corrected = sum(1 for change in drift_changes if change.action is Action.CORRECTED)
        interval = self.sweeps.effective_interval(target.owner.namespace, target.owner.name)
        target.patch.fns.append(_drift_patch(drift_changes, corrected, interval))
        failure = status_report.first_failure(report) or isolation.peering_failure(spec, report.lookup)
        pending = status_report.pending_approvals(spec, graph, report)
        status["pendingPrivateEndpoints"] = pending or []
        sync = status_report.sync_condition(report, conflicts, detect=spec.drift.mode == "Detect")
        target.set_conditions(
            *status_report.isolation_conditions(spec, report, observed, self.access.settings.allowlist_widest_prefix),
            *([status_report.approval_condition(pending)] if pending is not None else []),
            sync,
            Condition(c.STALLED, False, "Progressing" if failure else "Reconciled", "no blocking problem"),
        )
        if failure is None and sync.reason in status_report.CONFLICT_REASONS:
            target.set_conditions(  # Azure does not match the spec, and correcting it again would not help
                Condition(c.READY, False, sync.reason, sync.message),
                Condition(c.RECONCILING, False, sync.reason, "waiting for the other writer to agree with the spec"),
            )
        elif failure is None:
            summary = status_report.outcome_summary(report)
            target.set_conditions(
                Condition(c.READY, True, "Reconciled", f"Azure matches the spec ({summary})"),
                Condition(c.RECONCILING, False, "Reconciled", "nothing left to do"),
            )
            metrics.RECONCILES.labels("ready").inc()
        return failure


def _type_of(resource: str) -> str:
    try:
        return ArmId.parse(resource).type
    except InvalidArmId:
        return "unknown"


def status_operations(patch: kopf.Patch, status: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The JSON patch that takes `status` to what `patch` (merge-patch fields, then its functions)
    makes of it. Not kopf's `as_json_patch`: that deep-copies the reference and diffs it with
    jsonpatch, whose minimal diffs of lists cost milliseconds a sweep. Here dicts are compared key
    by key and a list or value that differs is replaced whole."""
    before: dict[str, Any] = {"status": status} if status is not None else {}
    after: dict[str, Any] = json.loads(json.dumps(before))  # a deep copy, of JSON: far faster than copy's
    _merge(after, patch)
    for transform in patch.fns:
        transform(cast(kopf.RawBody, after))
    return list(_operations(before, after, ""))


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """A JSON merge patch (RFC 7386), in place: None removes a key, a mapping merges into one."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            _merge(target[key], value)
        else:
            target[key] = value


def _operations(before: dict[str, Any], after: dict[str, Any], path: str) -> Iterator[dict[str, Any]]:
    for key in before.keys() - after.keys():
        yield {"op": "remove", "path": f"{path}/{_pointer(key)}"}
    for key, value in after.items():
        here = f"{path}/{_pointer(key)}"
        if key not in before:
            yield {"op": "add", "path": here, "value": value}
        elif isinstance(value, dict) and isinstance(before[key], dict):
            yield from _operations(before[key], value, here)
        elif value != before[key]:
            yield {"op": "replace", "path": here, "value": value}


def _pointer(key: str) -> str:
    """A key as one step of a JSON pointer (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _age(timestamp: str) -> datetime.timedelta:
    checked = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return datetime.datetime.now(datetime.UTC) - checked


def _drift_patch(
    changes: list[Change], corrected: int, effective_interval: float | None
) -> Callable[[kopf.RawBody], None]:
    """status.drift after a walk, with the interval sweeps run at (`effectiveInterval`) once they are
    scheduled: a reconcile writes it too, so the first sweep has nothing new to write."""

    def apply(body: kopf.RawBody) -> None:
        status = cast(dict[str, Any], body).setdefault("status", {})
        drift = dict(status.get("drift") or {})
        drift["lastCheckTime"] = c.now()
        if effective_interval is not None:
            drift["effectiveInterval"] = format_duration(effective_interval)
        drift["correctionsTotal"] = int(drift.get("correctionsTotal") or 0) + corrected
        drift["items"] = status_report.drift_items(changes, list(drift.get("items") or []))
        status["drift"] = drift

    return apply
