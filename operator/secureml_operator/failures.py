"""Every failure, mapped once to what it means for the resource: retry it or stall on it.

Transient failures (Kubernetes or ARM unreachable, 5xx, 429, conflicts) end as `Reconciling` and
are retried with the operator's own backoff; permanent ones (input Azure refuses, missing or
malformed credentials, a target the operator has no route for) end as `Stalled`, with no write
until the spec or access changes. `classify` is the one place that decides which is which.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes
import urllib3
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from secureml_operator.azure.ids import InvalidArmId

TRANSIENT_STATUS = frozenset({408, 409, 412, 429, 500, 502, 503, 504})
# Codes with which an accepted long-running operation fails for good (the input or access must change);
# any other failed operation is retried, as Azure's own guidance for async failures suggests.
PERMANENT_OPERATION_CODES = frozenset(
    {
        "AuthorizationFailed",
        "LinkedAuthorizationFailed",
        "InvalidParameter",
        "InvalidRequestFormat",
        "InvalidResourceReference",
        "LinkedInvalidPropertyId",
        "NetcfgInvalidSubnet",
        "NetcfgSubnetRangeOutsideVnet",
        "InUseSubnetCannotBeUpdated",
        "PrivateEndpointCannotBeCreatedInSubnetThatHasNetworkPoliciesEnabled",
        "QuotaExceeded",
    }
)
# Codes Azure answers with a 4xx that clear on their own or by someone else's action: another
# operation on the same resource, or a hub peering whose other side is being re-created.
ANOTHER_OPERATION_CODES = frozenset({"AnotherOperationInProgress", "RetryableErrorDueToAnotherOperation"})
TRANSIENT_CODES = ANOTHER_OPERATION_CODES | {"RemotePeeringIsDisconnected"}
UNEXPECTED = "InternalError"  # a failure no rule below foresaw: a bug, retried and logged with its traceback


class Failure(Exception):
    """A failure with a condition reason and a message a user can act on."""

    transient = True

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class PermanentFailure(Failure):
    """Bad input, missing access, or a resource that is not ours: retrying cannot help."""

    transient = False


class TransientFailure(Failure):
    """Throttling, Azure or Kubernetes unavailable: retrying should clear it."""


def classify(error: BaseException) -> Failure:
    """What a failure means for the resource, in words a user can act on."""
    if isinstance(error, Failure):
        return error
    if isinstance(error, ClientAuthenticationError):
        return PermanentFailure("AuthenticationFailed", _summary(error))
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return TransientFailure("AzureUnreachable", f"{type(error).__name__}: {_summary(error)}")
    if isinstance(error, HttpResponseError):
        return _classify_http(error)
    if isinstance(error, kubernetes.client.ApiException):
        return TransientFailure("KubernetesUnavailable", f"{error.status} {error.reason}")
    if isinstance(error, urllib3.exceptions.HTTPError):
        return TransientFailure("KubernetesUnavailable", f"{type(error).__name__}: {str(error)[:300]}")
    if isinstance(error, InvalidArmId):
        return PermanentFailure("InvalidResourceId", str(error))
    if isinstance(error, OSError):  # connections refused or reset, timeouts
        return TransientFailure("NetworkError", f"{type(error).__name__}: {str(error)[:300]}")
    return TransientFailure(UNEXPECTED, f"{type(error).__name__}: {str(error)[:300]}")


def _classify_http(error: HttpResponseError) -> Failure:
    status = error.status_code or 0
    code, detail = _detail(error)
    code = code or "HttpError"
    message = f"{code}: {_first_line(detail or error.message or str(error))}"
    if 200 <= status < 300:  # the request was accepted, its long-running operation failed
        if code in PERMANENT_OPERATION_CODES:
            return PermanentFailure("AzureRejected", message)
        return TransientFailure("OperationFailed", message)
    if status in TRANSIENT_STATUS or status == 0 or code in TRANSIENT_CODES:
        return TransientFailure("Throttled" if status == 429 else "AzureUnavailable", message)
    if status == 403:
        return PermanentFailure("AuthorizationFailed", message)
    return PermanentFailure("AzureRejected", message)


def another_operation(error: BaseException) -> bool:
    """Azure refused a write because another operation on the same resource (or its parent) runs:
    it ends within seconds, so the write is worth sending again soon."""
    if not isinstance(error, HttpResponseError):
        return False
    return error.status_code == 409 or _detail(error)[0] in ANOTHER_OPERATION_CODES


def _summary(error: AzureError) -> str:
    detail = error.error if isinstance(error, HttpResponseError) else None
    return _first_line((detail.message if detail else None) or error.message or str(error))


def _first_line(message: str) -> str:
    return message.splitlines()[0][:300] if message else ""


def _detail(error: HttpResponseError) -> tuple[str | None, str | None]:
    """(code, message) of Azure's answer: ARM's error object, or the error a provider wraps in
    ASP.NET's ModelState instead (Azure Firewall policies answer a refused rule collection group so)."""
    if error.error:
        return error.error.code, error.error.message
    try:
        body: Any = json.loads(error.response.text()) if error.response is not None else None
    except (ValueError, TypeError, AttributeError):  # no body, not JSON, or not read
        return None, None
    if not isinstance(body, dict):
        return None, None
    for entries in (body.get("ModelState") or {}).values():
        for entry in entries if isinstance(entries, list) else [entries]:
            try:
                inner = (json.loads(entry) or {}).get("Error") or {}
            except (TypeError, ValueError, AttributeError):
                continue
            code, message = (inner.get(key) for key in ("Code", "Message")) if isinstance(inner, dict) else (None, None)
            if code:
                return str(code), str(message or "")
    message = body.get("Message")
    return None, str(message) if message else None
