"""Operator-wide settings from the environment: defaults, values, and clear errors."""

from __future__ import annotations

import datetime

import kopf
import pytest

from secureml_operator.reconciler import ResourceMemo, drift_interval
from secureml_operator.settings import OperatorSettings

MINUTE = datetime.timedelta(minutes=1)


def test_drift_interval_defaults_to_a_minute_and_reads_the_environment() -> None:
    assert OperatorSettings.from_env({}).drift_interval == MINUTE
    assert OperatorSettings.from_env({"SMLW_DRIFT_INTERVAL": "5m"}).drift_interval == 5 * MINUTE


@pytest.mark.parametrize(("value", "message"), [("5s", "below the minimum"), ("soon", "is not a duration")])
def test_bad_drift_interval_is_refused_by_name(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"SMLW_DRIFT_INTERVAL='{value}'.*{message}"):
        OperatorSettings.from_env({"SMLW_DRIFT_INTERVAL": value})


def _body(interval: str | None) -> kopf.Body:
    return kopf.Body({"metadata": {"generation": 1}, "spec": {"drift": {"interval": interval} if interval else {}}})


def test_sweep_uses_the_spec_interval_or_the_operator_default() -> None:
    assert drift_interval(_body(None), MINUTE) == 60
    assert drift_interval(_body(None), 5 * MINUTE) == 300
    assert drift_interval(_body("10m"), MINUTE) == 600
    assert drift_interval(_body("1m30s"), 5 * MINUTE) == 90


def test_status_heartbeat_defaults_to_ten_minutes_and_may_be_zero() -> None:
    assert OperatorSettings.from_env({}).status_heartbeat == 10 * MINUTE
    assert OperatorSettings.from_env({"SMLW_STATUS_HEARTBEAT": "0s"}).status_heartbeat == datetime.timedelta(0)
    with pytest.raises(ValueError, match=r"SMLW_STATUS_HEARTBEAT='often'.*is not a duration"):
        OperatorSettings.from_env({"SMLW_STATUS_HEARTBEAT": "often"})


SUB_A = "0000000A-0000-0000-0000-000000000000"
SUB_B = "11111111-1111-1111-1111-111111111111"


def test_allowed_subscriptions_default_to_none() -> None:
    assert OperatorSettings.from_env({}).allowed_subscriptions == frozenset()
    assert OperatorSettings.from_env({"SMLW_ALLOWED_SUBSCRIPTIONS": ""}).allowed_subscriptions == frozenset()


def test_allowed_subscriptions_are_read_comma_separated_and_lower_cased() -> None:
    settings = OperatorSettings.from_env({"SMLW_ALLOWED_SUBSCRIPTIONS": f" {SUB_A} ,{SUB_B},"})
    assert settings.allowed_subscriptions == frozenset({SUB_A.lower(), SUB_B})


@pytest.mark.parametrize("value", ["not-a-guid", f"{SUB_A};{SUB_B}", "0000000-0000-0000-0000-0000000000000"])
def test_a_malformed_subscription_is_refused_by_name(value: str) -> None:
    with pytest.raises(ValueError, match=r"SMLW_ALLOWED_SUBSCRIPTIONS=.*is not a subscription id \(a GUID"):
        OperatorSettings.from_env({"SMLW_ALLOWED_SUBSCRIPTIONS": value})


def test_a_failed_sweep_backs_off_doubling_until_it_recovers() -> None:
    memo = ResourceMemo()
    assert memo.back_off(2.0) == 2.0
    assert memo.not_before > 0, "not swept again before the backoff has passed"
    assert memo.back_off(2.0) == 4.0, "doubling"
    memo.recovered()
    assert (memo.failures, memo.not_before) == (0, 0.0)
