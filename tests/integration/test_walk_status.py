"""A walk starts from the ledger the last walk wrote. kopf can hand a handler an older body: the watch
event of the ledger the last walk wrote may not have reached it yet, so it lacks what that walk
recorded; and kopf writes a handler's status patch only after the handler has
returned, when the next walk may already hold the lock. Starting from either would forget resources
we created (a later walk then stalls ExistsUnowned on them, or a delete leaves them behind). So a walk
stores a changed ledger itself before it lets go, and reads status again when kopf's body does not
show the ledger last stored. Checked on a real API server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from kubeharness import ControlPlane
from secureml_operator.engine.ledger import Ledger, Origin
from secureml_operator.reconciler import ResourceMemo, Target, ledger_digest

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "01-managed-internet-outbound.yaml"
ENTRY = {
    "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-litware/providers/"
    "Microsoft.Network/privateEndpoints/pe-mlw-litware-internet",
    "type": "Microsoft.Network/privateEndpoints",
    "origin": "Created",
    "changed": [],
}


def _body(manifest: dict[str, Any], status: dict[str, Any]) -> kopf.Body:
    return kopf.Body({**manifest, "status": status})  # type: ignore[arg-type]


@pytest.fixture
def manifest(kube: ControlPlane, crd: None, namespace: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Example 1 applied in the test's namespace, with the operator's Kubernetes client pointed at it."""
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    applied: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    applied["metadata"]["namespace"] = namespace
    kube.kubectl("apply", "-f", "-", input=json.dumps(applied))
    return applied


def test_a_body_older_than_the_last_ledger_written_is_read_again(
    kube: ControlPlane, namespace: str, manifest: dict[str, Any]
) -> None:
    name = manifest["metadata"]["name"]
    written = {"ledger": [ENTRY], "observedGeneration": 1}
    kube.kubectl(
        "patch", "smlw", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": written}),
    )  # fmt: skip
    memo = ResourceMemo(ledger_stored=ledger_digest([ENTRY]))

    stale = Target(_body(manifest, {"observedGeneration": 1}), kopf.Patch(), memo)
    assert asyncio.run(stale.status())["ledger"] == [ENTRY]

    # A body that already shows the ledger written is used as it is: no read (the marker is only there).
    current = Target(_body(manifest, {**written, "marker": "kopf's body"}), kopf.Patch(), memo)
    assert asyncio.run(current.status())["marker"] == "kopf's body"

    # Before this process wrote any ledger, kopf's body is all there is to go by.
    first = Target(_body(manifest, {"marker": "kopf's body"}), kopf.Patch(), ResourceMemo())
    assert asyncio.run(first.status()) == {"marker": "kopf's body"}


def test_a_walk_stores_a_changed_ledger_before_it_ends_and_an_unchanged_one_not_at_all(
    kube: ControlPlane, namespace: str, manifest: dict[str, Any]
) -> None:
    name = manifest["metadata"]["name"]

    def stored() -> tuple[str, list[dict[str, Any]]]:
        body = json.loads(kube.kubectl("get", "smlw", name, "-n", namespace, "-o", "json").stdout)
        return body["metadata"]["resourceVersion"], (body.get("status") or {}).get("ledger") or []

    target = Target(_body(manifest, {}), kopf.Patch(), ResourceMemo())
    ledger = target.ledger(asyncio.run(target.status()))
    ledger.confirm(ENTRY["id"], ENTRY["type"], Origin.CREATED, None)
    asyncio.run(target.store_ledger(ledger))
    version, entries = stored()
    assert entries == [ENTRY]
    assert not target.patch, "the ledger is not left for kopf's patch after the handler"

    asyncio.run(target.store_ledger(Ledger.from_status({"ledger": [ENTRY]})))
    assert stored()[0] == version, "an unchanged ledger is not written again"
