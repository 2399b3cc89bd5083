"""kopf's essence of a SecureMLWorkspace, built without copying its status first: the same essence."""

from __future__ import annotations

from typing import Any, cast

import kopf

from secureml_operator.handlers import DiffBaseWithoutStatus

BODY: dict[str, Any] = {
    "apiVersion": "secureml.io/v1alpha1",
    "kind": "SecureMLWorkspace",
    "metadata": {"name": "ws", "labels": {"team": "a"}, "annotations": {"note": "kept"}, "uid": "u1"},
    "spec": {"workspace": {"name": "ws"}, "drift": {"interval": "60s"}},
    "status": {"ledger": [{"id": "/subscriptions/s/x"}], "observedGeneration": 3},
}


def _essences(extra_fields: list[Any]) -> tuple[Any, Any]:
    body = kopf.Body(cast(kopf.RawBody, BODY))
    ours = DiffBaseWithoutStatus(prefix="secureml.io", key="last-handled-configuration")
    kopfs = kopf.AnnotationsDiffBaseStorage(prefix="secureml.io", key="last-handled-configuration")
    return ours.build(body=body, extra_fields=extra_fields), kopfs.build(body=body, extra_fields=extra_fields)


def test_the_essence_is_kopfs_for_spec_handlers() -> None:
    ours, kopfs = _essences([("spec",)])
    assert ours == kopfs and "status" not in ours
    assert ours["spec"] == BODY["spec"] and ours["spec"] is not BODY["spec"], "a copy, as kopf's"


def test_a_status_field_asked_for_is_kept_as_kopf_keeps_it() -> None:
    ours, kopfs = _essences([("status", "observedGeneration"), "spec"])
    assert ours == kopfs and ours["status"] == {"observedGeneration": 3}
