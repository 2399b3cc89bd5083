"""Auto-approval matches exactly the connections our workspace's managed network created."""

from __future__ import annotations

from typing import Any

from secureml_operator.desired.approvals import ours_pending

WORKSPACE_GUID = "4f5a0e3c-8a4b-4d4e-9a51-2c1d8e1f0a77"
WORKSPACE = {"name": "mlw-litware", "properties": {"workspaceId": WORKSPACE_GUID}}


def _connection(name: str, endpoint: str, status: str = "Pending") -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "privateEndpoint": {"id": endpoint},
            "privateLinkServiceConnectionState": {"status": status},
        },
    }


def _endpoint(group: str, name: str) -> str:
    return f"/subscriptions/ff/resourceGroups/{group}/providers/Microsoft.Network/privateEndpoints/{name}"


def test_only_our_rules_pending_connections_are_ours() -> None:
    managed = f"azureml-managed-{WORKSPACE_GUID}"
    target = {
        "properties": {
            "privateEndpointConnections": [
                _connection("ours", _endpoint(managed, "mlw-litware-dls")),
                _connection("approved", _endpoint(managed, "mlw-litware-dls"), status="Approved"),
                _connection("other-rule", _endpoint(managed, "mlw-litware-blob")),
                _connection("lookalike", _endpoint("evil", "mlw-litware-dls")),
                _connection("substring", _endpoint(managed, "x-mlw-litware-dls")),
                _connection("malformed", "not-an-id"),
            ]
        }
    }
    assert [c["name"] for c in ours_pending(target, WORKSPACE, ["dls"])] == ["ours"]
    assert ours_pending(target, None, ["dls"]) == [], "no workspace read yet: nothing is ours"
    assert ours_pending(target, {"name": "mlw-litware", "properties": {}}, ["dls"]) == []
