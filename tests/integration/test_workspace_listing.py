"""Listing every SecureMLWorkspace for the IP rules others claim (kube.workspace_statuses), against
the API server: page by page, each status reduced by the caller as its page arrives, the whole list
whatever the page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kubeharness import ControlPlane
from secureml_operator import kube as kube_api

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "01-managed-internet-outbound.yaml"
COPIES = 5


def ledger_entry(index: int) -> dict[str, str]:
    route_table = f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/rt-{index}"
    return {"id": route_table, "type": "Microsoft.Network/routeTables", "origin": "Created"}


@pytest.mark.usefixtures("crd")
async def test_every_workspace_comes_back_in_pages_with_only_its_ledger(
    kube: ControlPlane, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = yaml.safe_load(EXAMPLE.read_text())
    uids = {}
    for index in range(COPIES):
        copy = {**manifest, "metadata": {"name": f"listed-{index}", "namespace": namespace}}
        kube.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(copy))
        ledger = [ledger_entry(index)]
        status = {"status": {"ledger": ledger, "observedGeneration": 1}}
        kube.kubectl(
            "patch", "smlw", f"listed-{index}", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps(status),
        )  # fmt: skip
        uid = kube.kubectl("get", "smlw", f"listed-{index}", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
        uids[uid] = index
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    monkeypatch.setattr(kube_api, "LIST_PAGE", 2)  # three pages

    listed, cluster_wide = await kube_api.workspace_statuses(
        namespace, lambda status: [entry["id"] for entry in status.get("ledger") or []]
    )

    assert cluster_wide
    assert set(uids) <= set(listed), "every page was read"
    for uid, index in uids.items():
        assert listed[uid] == [ledger_entry(index)["id"]], "what the caller keeps of each status"
