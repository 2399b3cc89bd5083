"""Every failure maps once to a condition: transient ones are retried with our backoff, permanent
ones stall. Each class below is what the operator meets in production, built as the libraries raise it."""

from __future__ import annotations

import base64

import kubernetes
import pytest
import urllib3
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from azure.core.rest import HttpRequest

from secureml_operator.azure.credentials import ServicePrincipal
from secureml_operator.azure.ids import ArmId
from secureml_operator.failures import Failure, another_operation, classify
from secureml_operator.reconciler import MAX_RETRY_DELAY_SECONDS, backoff


class _Response:
    """The least of an HTTP response azure-core needs to build an HttpResponseError."""

    def __init__(self, status: int, code: str) -> None:
        self.status_code = status
        self.reason = "reason"
        self.headers = {"content-type": "application/json"}
        self.request = HttpRequest("PUT", "https://arm.example/x")
        self._body = f'{{"error": {{"code": "{code}", "message": "{code} happened"}}}}'.encode()

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode()

    def body(self) -> bytes:
        return self._body


def http(status: int, code: str) -> HttpResponseError:
    return HttpResponseError(response=_Response(status, code))  # type: ignore[arg-type]


def arm_id_error() -> Exception:
    try:
        ArmId.parse("/subscriptions/s/resourceGroups")
    except ValueError as error:
        return error
    raise AssertionError("the id parsed")


def secret_error() -> Exception:
    try:
        ServicePrincipal.from_secret_data("ns/creds", {"tenantId": base64.b64encode(b"\xff\xfe").decode()})
    except Failure as error:
        return error
    raise AssertionError("the Secret was read")


@pytest.mark.parametrize(
    ("error", "transient", "reason"),
    [
        (http(429, "TooManyRequests"), True, "Throttled"),
        (http(503, "ServiceUnavailable"), True, "AzureUnavailable"),
        (http(409, "AnotherOperationInProgress"), True, "AzureUnavailable"),
        (http(400, "InvalidParameter"), False, "AzureRejected"),
        (http(400, "RemotePeeringIsDisconnected"), True, "AzureUnavailable"),
        (http(403, "AuthorizationFailed"), False, "AuthorizationFailed"),
        (ClientAuthenticationError("AADSTS7000215: Invalid client secret"), False, "AuthenticationFailed"),
        (ServiceRequestError("Cannot connect to host"), True, "AzureUnreachable"),
        (kubernetes.client.ApiException(status=503, reason="Service Unavailable"), True, "KubernetesUnavailable"),
        (urllib3.exceptions.MaxRetryError(None, "/api", "refused"), True, "KubernetesUnavailable"),  # type: ignore[arg-type]
        (ConnectionResetError("reset by peer"), True, "NetworkError"),
        (TimeoutError(), True, "NetworkError"),
        (arm_id_error(), False, "InvalidResourceId"),
        (secret_error(), False, "CredentialSecretInvalid"),
        (ZeroDivisionError("a bug"), True, "InternalError"),
    ],
)
def test_each_failure_class_has_one_meaning(error: Exception, transient: bool, reason: str) -> None:
    failure = classify(error)
    assert (failure.transient, failure.reason) == (transient, reason)
    assert failure.message


def test_the_first_retry_comes_within_seconds_and_the_delay_is_capped() -> None:
    assert backoff(2.0, 0) == 2.0
    assert backoff(2.0, 3) == 16.0
    assert backoff(2.0, 20) == MAX_RETRY_DELAY_SECONDS


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (http(409, "AnotherOperationInProgress"), True),
        (http(429, "RetryableErrorDueToAnotherOperation"), True),
        (http(409, "Conflict"), True),
        (http(429, "TooManyRequests"), False),
        (http(412, "PreconditionFailed"), False),
        (http(400, "InvalidRequestFormat"), False),
        (OSError("reset"), False),
    ],
)
def test_only_another_operation_on_the_resource_makes_a_write_worth_sending_again_soon(
    error: Exception, expected: bool
) -> None:
    assert another_operation(error) is expected
