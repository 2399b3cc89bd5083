"""What Flux (kstatus) and Argo CD (gitops/argocd/health.lua) would say about a SecureMLWorkspace at every
version the real operator writes: a watch records each one, then both verdicts are computed from it.

A watch (not polling) so that short-lived versions, such as a new generation not yet observed, are seen.
"""

from __future__ import annotations

import codecs
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from operatorharness import OperatorEnv

import gitops
from armemu.seed import PROVIDERS
from gitops import Verdict, argo_health, kstatus
from kubeharness import ControlPlane
from kubeharness.controlplane import kubectl_binary

pytestmark = pytest.mark.integration
Manifest = dict[str, Any]
INTERNET = "litware-internet"  # 01: reaches Ready, then a new generation, then deleted
APPROVED = "litware-approved"  # 02: stalls on a registry that is not Premium
REGISTRY = f"{PROVIDERS}/Microsoft.ContainerRegistry/registries/crlitware"
COLLECTION = "/apis/secureml.io/v1alpha1/namespaces/{namespace}/securemlworkspaces"


@dataclass
class Watch:
    """The watch events of a namespace's SecureMLWorkspaces: every version of every object, in order."""

    events: list[tuple[str, Manifest]] = field(default_factory=list)
    errors: list[Manifest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def versions(self, name: str) -> list[Manifest]:
        with self.lock:
            return [obj for kind, obj in self.events if kind != "DELETED" and obj["metadata"]["name"] == name]

    def deleted(self, name: str) -> bool:
        with self.lock:
            return any(kind == "DELETED" and obj["metadata"]["name"] == name for kind, obj in self.events)

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert not self.errors, f"the watch failed: {self.errors}"
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)

    def wait_version(self, name: str, what: str, check: Callable[[Manifest], bool], timeout: float = 60) -> None:
        self.wait(f"{name}: {what}", lambda: any(check(obj) for obj in self.versions(name)), timeout)

    def read(self, stream: Any) -> None:
        decoder, text = json.JSONDecoder(), codecs.getincrementaldecoder("utf-8")()
        buffer = ""
        for chunk in iter(lambda: stream.read1(65536), b""):
            buffer += text.decode(chunk)
            while buffer.strip():
                buffer = buffer.lstrip()
                try:
                    event, end = decoder.raw_decode(buffer)
                except json.JSONDecodeError:
                    break  # an object split across chunks: read more
                buffer = buffer[end:]
                with self.lock:
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self.events.append((event["type"], event["object"]))
                    else:  # ERROR (a Status, e.g. 410 Gone); no BOOKMARK unless asked for
                        self.errors.append(event)


@contextmanager
def watching(kube: ControlPlane, namespace: str) -> Iterator[Watch]:
    """A watch from the resourceVersion of an initial list: every later change is delivered, however
    long kubectl takes to connect, so nothing the caller creates afterwards can be missed."""
    listed = kube.kubectl("get", "--raw", f"{COLLECTION.format(namespace=namespace)}?limit=1").stdout
    version = json.loads(listed)["metadata"]["resourceVersion"]
    url = f"{COLLECTION.format(namespace=namespace)}?watch=1&resourceVersion={version}"
    process = subprocess.Popen(
        [kubectl_binary(), f"--kubeconfig={kube.kubeconfig}", "get", "--raw", url], stdout=subprocess.PIPE
    )
    watch = Watch()
    reader = threading.Thread(target=watch.read, args=(process.stdout,), daemon=True)
    reader.start()
    try:
        yield watch
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)


# ---- what a version says ------------------------------------------------------------------------


def generation(obj: Manifest) -> int:
    return int(obj["metadata"].get("generation") or 0)


def observed(obj: Manifest) -> int | None:
    value = (obj.get("status") or {}).get("observedGeneration")
    return None if value is None else int(value)


def condition(obj: Manifest, kind: str) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def ready_for(gen: int) -> Callable[[Manifest], bool]:
    return lambda obj: (
        generation(obj) == gen and observed(obj) == gen and condition(obj, "Ready").get("status") == "True"
    )


def is_stalled(obj: Manifest) -> bool:
    return observed(obj) == generation(obj) and condition(obj, "Stalled").get("status") == "True"


def is_deleting(obj: Manifest) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


@dataclass(frozen=True)
class Seen:
    """One recorded version and what each tool says about it."""

    obj: Manifest
    kstatus: Verdict
    argo: Verdict

    def __str__(self) -> str:
        conditions = {
            c["type"]: f"{c['status']}/{c.get('reason')}"
            for c in (self.obj.get("status") or {}).get("conditions") or []
        }
        return (
            f"rv={self.obj['metadata'].get('resourceVersion')} gen={generation(self.obj)} observed={observed(self.obj)}"
            f" deleting={is_deleting(self.obj)} kstatus={self.kstatus.status} argo={self.argo.status}"
            f" {json.dumps({k: conditions[k] for k in ('Ready', 'Reconciling', 'Stalled') if k in conditions})}"
        )


def replay(versions: list[Manifest]) -> list[Seen]:
    """Every version through the kstatus binary and the Argo CD health script."""
    return [Seen(obj, verdict, argo_health(obj)) for obj, verdict in zip(versions, kstatus(versions), strict=True)]


def until(seen: list[Seen], check: Callable[[Manifest], bool], after: int = 0) -> list[Seen]:
    """Versions from index `after` up to and including the first one `check` accepts."""
    for index in range(after, len(seen)):
        if check(seen[index].obj):
            return seen[after : index + 1]
    raise AssertionError(f"no recorded version matched {check}:\n" + "\n".join(map(str, seen)))


def steps(statuses: list[str]) -> list[str]:
    """The sequence without repeats: [InProgress, InProgress, Current] -> [InProgress, Current]."""
    return [status for index, status in enumerate(statuses) if index == 0 or statuses[index - 1] != status]


def timeline(seen: list[Seen]) -> str:
    return "\n".join(map(str, seen))


# ---- the lifecycle ------------------------------------------------------------------------------


def test_kstatus_and_argo_follow_ready_new_generation_stalled_and_deleting(operator: OperatorEnv) -> None:
    """One namespace's history: 01 created and Ready, changed and Ready again, deleted; 02 stalled."""
    with watching(operator.kube, operator.namespace) as watch:
        operator.apply(operator.manifest("01-managed-internet-outbound.yaml"))
        watch.wait_version(INTERNET, "Ready", ready_for(1))
        operator.apply(operator.manifest("01-managed-internet-outbound.yaml", drift={"interval": "300s"}))
        watch.wait_version(INTERNET, "Ready for generation 2", ready_for(2))

        operator.az_rest("PATCH", REGISTRY, {"sku": {"name": "Basic"}}, api_version="2023-07-01")
        operator.apply(operator.manifest("02-managed-approved-outbound.yaml"))
        watch.wait_version(APPROVED, "Stalled", is_stalled)

        operator.kube.kubectl("delete", "smlw", INTERNET, "-n", operator.namespace, "--wait=false")
        watch.wait(f"{INTERNET} deleted", lambda: watch.deleted(INTERNET), timeout=60)
        internet, approved = watch.versions(INTERNET), watch.versions(APPROVED)

    seen = replay(internet)
    log = timeline(seen)

    # Never Current/Healthy while the status is about an older spec (or, for Argo, about no spec at all).
    for item in seen:
        seen_generation = observed(item.obj)
        stale = seen_generation is not None and seen_generation < generation(item.obj)
        if stale:
            assert item.kstatus.status != "Current", f"{item}\n{log}"
            if not is_deleting(item.obj):
                assert item.kstatus.status == "InProgress", f"{item}\n{log}"
                assert "latest observed generation is" in item.kstatus.message
        if stale or seen_generation is None:
            assert item.argo.status == "Progressing", f"{item}\n{log}"

    # Create: Argo goes Progressing -> Healthy; kstatus ends Current (its start: see the test below).
    created = until(seen, ready_for(1))
    assert steps([s.argo.status for s in created]) == ["Progressing", "Healthy"], log
    assert created[-1].kstatus.status == "Current", log
    assert created[-1].argo.message.startswith("Reconciled: Azure matches the spec"), log

    # A new generation: InProgress -> Current and Progressing -> Healthy, from its first version on.
    start = next(index for index, item in enumerate(seen) if generation(item.obj) == 2)
    updated = until(seen, ready_for(2), after=start)
    assert steps([s.kstatus.status for s in updated]) == ["InProgress", "Current"], log
    assert steps([s.argo.status for s in updated]) == ["Progressing", "Healthy"], log
    assert observed(updated[0].obj) == 1 and "generation 2" in updated[0].argo.message

    # Deleting: Terminating for kstatus, Progressing for Argo, for every version with deletionTimestamp.
    deleting = [item for item in seen if is_deleting(item.obj)]
    assert deleting, f"no version with deletionTimestamp was recorded:\n{log}"
    assert {item.kstatus.status for item in deleting} == {"Terminating"}, log
    assert {item.argo.status for item in deleting} == {"Progressing"}, log
    assert all(item.argo.message.startswith("deleting") for item in deleting)
    assert seen.index(deleting[0]) > seen.index(updated[-1])

    # Stalled: Failed for kstatus, Degraded for Argo, with the operator's reason and message.
    stalled_seen = replay(approved)
    stalled_log = timeline(stalled_seen)
    first_stalled = until(stalled_seen, is_stalled)[-1]
    message = condition(first_stalled.obj, "Stalled")["message"]
    assert "must be Premium" in message
    assert first_stalled.kstatus == Verdict("Failed", message), stalled_log
    assert first_stalled.argo == Verdict("Degraded", f"RegistryNotPremium: {message}"), stalled_log
    assert {s.argo.status for s in stalled_seen} <= {"Progressing", "Degraded"}, stalled_log
    assert "Healthy" not in {s.argo.status for s in stalled_seen}
    assert "Current" not in {s.kstatus.status for s in stalled_seen if observed(s.obj) is not None}, stalled_log


def test_kstatus_reports_a_new_workspace_in_progress_until_ready(operator: OperatorEnv) -> None:
    """Flux must not call a workspace Current before the operator has reconciled it: the CRD defaults
    status.observedGeneration to 0, so even the versions before the first status are InProgress."""
    with watching(operator.kube, operator.namespace) as watch:
        operator.apply(operator.manifest("01-managed-internet-outbound.yaml"))
        watch.wait_version(INTERNET, "Ready", ready_for(1))
        versions = watch.versions(INTERNET)
    created = until(replay(versions), ready_for(1))
    assert [s.argo.status for s in created[:-1]] == ["Progressing"] * (len(created) - 1), timeline(created)
    assert steps([s.kstatus.status for s in created]) == ["InProgress", "Current"], timeline(created)


@pytest.mark.parametrize(
    ("name", "expected_kstatus", "expected_argo"),
    [
        ("ready", "Current", "Healthy"),
        ("retrying", "InProgress", "Progressing"),
        ("stalled", "Failed", "Degraded"),
        ("new_generation_not_observed", "InProgress", "Progressing"),
        ("deleting", "Terminating", "Progressing"),
    ],
)
def test_kstatus_and_argo_agree_on_each_status_the_operator_writes(
    name: str, expected_kstatus: str, expected_argo: str
) -> None:
    """The unit-test fixtures through the real kstatus too: both tools tell the same story."""
    body = getattr(gitops, name)()
    [verdict] = kstatus([body])
    assert (verdict.status, argo_health(body).status) == (expected_kstatus, expected_argo)
    if name in ("retrying", "stalled"):
        reason = {"retrying": "Reconciling", "stalled": "Stalled"}[name]
        assert verdict.message == condition(body, reason)["message"]
