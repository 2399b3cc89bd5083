"""Which failures are worth retrying and which need a person to change something."""

from __future__ import annotations

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

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


class Failure(Exception):
    """A failure with a condition reason and a message a user can act on."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class PermanentFailure(Failure):
    """Bad input, missing access, or a resource that is not ours: retrying cannot help."""


class TransientFailure(Failure):
    """Throttling, Azure unavailable: retrying should clear it."""


def classify(error: Exception) -> tuple[bool, str, str]:
    """(transient, reason, message) for a failure of one node, in words a user can act on."""
    if isinstance(error, PermanentFailure):
        return False, error.reason, error.message
    if isinstance(error, ClientAuthenticationError):
        return False, "AuthenticationFailed", _summary(error)
    if isinstance(error, HttpResponseError):
        status = error.status_code or 0
        code = (error.error.code if error.error else None) or "HttpError"
        if 200 <= status < 300:  # the request was accepted, its long-running operation failed
            if code in PERMANENT_OPERATION_CODES:
                return False, "AzureRejected", f"{code}: {_summary(error)}"
            return True, "OperationFailed", f"{code}: {_summary(error)}"
        if status in TRANSIENT_STATUS or status == 0:
            return True, "Throttled" if status == 429 else "AzureUnavailable", f"{code}: {_summary(error)}"
        if status == 403:
            return False, "AuthorizationFailed", f"{code}: {_summary(error)}"
        return False, "AzureRejected", f"{code}: {_summary(error)}"
    return True, type(error).__name__, str(error)


def _summary(error: HttpResponseError) -> str:
    message = (error.error.message if error.error else None) or error.message or str(error)
    return message.splitlines()[0][:300]
