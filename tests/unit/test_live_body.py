"""kopf can hand a handler a live body: the same object, updated in place when a watch event
arrives. A walk must walk, and report, one version of the resource: the generation it says it
observed is the one whose spec it walked. (Before this, a drift sweep on kopf's live body that walked
the old spec ended by reporting the new generation Ready: `make chaos` found the new generation's NSG
rule missing while Ready. Sweeps now read the resource themselves once they hold its lock:
tests/integration/test_sweep_status.py.)"""

from __future__ import annotations

import copy
from typing import Any, cast

import kopf
import yaml
from armfake import ArmFake
from litware import example_file, seeded_fake, spec, workspace_of
from test_engine import OWNER, prepare

from armemu.seed import SUBSCRIPTIONS
from secureml_operator.azure.access import AzureAccess
from secureml_operator.azure.arm import ArmClient
from secureml_operator.azure.cloud import CloudSettings
from secureml_operator.engine.engine import Engine
from secureml_operator.engine.ledger import Ledger
from secureml_operator.failures import UNEXPECTED
from secureml_operator.reconciler import Reconciler, ResourceMemo, Target, classified
from secureml_operator.settings import OperatorSettings

EXAMPLE = "02"


class FakeAccess(AzureAccess):
    """The operator's access to Azure, answering every credential with the in-memory ARM."""

    def __init__(self, fake: ArmFake) -> None:
        cloud = CloudSettings("AzureCloud", "https://management.azure.com", "https://login.microsoftonline.com")
        super().__init__(OperatorSettings(cloud, allowed_subscriptions=frozenset(SUBSCRIPTIONS)))
        self.fake = fake

    async def client(self, namespace: str, secret_name: str | None) -> ArmClient:
        return cast(ArmClient, self.fake)


def _resource(generation: int, ledger: Ledger, changed: bool = False) -> dict[str, Any]:
    """Example 2 as the API server holds it, reconciled at `generation`; `changed`: with one more rule."""
    manifest: dict[str, Any] = yaml.safe_load(example_file(EXAMPLE).read_text())
    if changed:
        manifest["spec"]["outbound"]["managedNetwork"]["rules"].append({"name": "pytorch", "fqdn": "pypi.org"})
    meta = {"namespace": OWNER.namespace, "name": OWNER.name, "uid": OWNER.uid}
    manifest["metadata"] = {**manifest["metadata"], **meta, "generation": generation + changed}
    ready = {"type": "Ready", "status": "True", "reason": "Reconciled", "observedGeneration": generation}
    manifest["status"] = {"observedGeneration": generation, "ledger": ledger.as_status(), "conditions": [ready]}
    return manifest


async def _converged() -> tuple[ArmFake, Ledger]:
    fake, ledger, workspace = seeded_fake(), Ledger(), spec(EXAMPLE)
    report = await Engine(cast(ArmClient, fake), OWNER, ledger).converge(await prepare(fake, workspace, ledger))
    assert report.failures == []
    return fake, ledger


def _patched(patch: kopf.Patch) -> dict[str, Any]:
    """The status kopf would write with this handler's patch."""
    raw: dict[str, Any] = {"status": copy.deepcopy(dict(patch.get("status") or {}))}
    for change in patch.fns:
        change(cast(kopf.RawBody, raw))
    return dict(raw["status"])


async def test_a_walk_reports_the_generation_it_walked_when_the_spec_changes_during_it() -> None:
    fake, ledger = await _converged()
    live = kopf.Body(_resource(1, ledger))  # type: ignore[arg-type]
    # The change arrives while the walk reads the workspace: kopf replaces the body in place.
    fake.before("get", workspace_of(spec(EXAMPLE)), lambda: live._replace_with(_resource(1, ledger, changed=True)))
    target = Target(live, kopf.Patch(), ResourceMemo())
    writes_before = len(fake.writes)

    assert await Reconciler(FakeAccess(fake)).converge(target.fixed(), sweep=True) is None

    assert live.metadata["generation"] == 2, "the body did change under the walk"
    status = _patched(target.patch)
    assert status["observedGeneration"] == 1, "the walk walked generation 1's spec, so it observed generation 1"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["observedGeneration"]) == ("True", 1)
    assert fake.writes[writes_before:] == [], "a walk of an unchanged Azure writes nothing"


def test_an_unexpected_failure_is_logged_with_its_traceback_and_the_resource(caplog: Any) -> None:
    target = Target(kopf.Body(_resource(1, Ledger())), kopf.Patch(), ResourceMemo())  # type: ignore[arg-type]
    try:
        raise ZeroDivisionError("a bug")
    except ZeroDivisionError as error:
        failure = classified(target, error)
    assert failure.reason == UNEXPECTED
    (record,) = [r for r in caplog.records if r.getMessage() == "unexpected failure"]
    assert record.exc_info is not None and record.__dict__["resource"] == f"{OWNER.namespace}/{OWNER.name}"
