"""Operator-wide settings from the environment: defaults, values, and clear errors."""

from __future__ import annotations

import datetime

import kopf
import pytest

from secureml_operator.reconciler import ResourceMemo, sweep_due
from secureml_operator.settings import OperatorSettings

MINUTE = datetime.timedelta(minutes=1)


def test_drift_interval_defaults_to_a_minute_and_reads_the_environment() -> None:
    assert OperatorSettings.from_env({}).drift_interval == MINUTE
    assert OperatorSettings.from_env({"SMLW_DRIFT_INTERVAL": "5m"}).drift_interval == 5 * MINUTE


@pytest.mark.parametrize(("value", "message"), [("5s", "below the minimum"), ("soon", "is not a duration")])
def test_bad_drift_interval_is_refused_by_name(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"SMLW_DRIFT_INTERVAL='{value}'.*{message}"):
        OperatorSettings.from_env({"SMLW_DRIFT_INTERVAL": value})


def _body(interval: str | None, checked_ago: datetime.timedelta) -> kopf.Body:
    checked = (datetime.datetime.now(datetime.UTC) - checked_ago).strftime("%Y-%m-%dT%H:%M:%SZ")
    drift = {"interval": interval} if interval else {}
    return kopf.Body(
        {
            "metadata": {"generation": 1},
            "spec": {"drift": drift},
            "status": {"observedGeneration": 1, "drift": {"lastCheckTime": checked}},
        }
    )


def test_sweep_uses_the_spec_interval_or_the_operator_default() -> None:
    two_minutes_ago = 2 * MINUTE
    assert sweep_due(_body(None, two_minutes_ago), MINUTE, ResourceMemo())
    assert not sweep_due(_body(None, two_minutes_ago), 5 * MINUTE, ResourceMemo())
    assert not sweep_due(_body("10m", two_minutes_ago), MINUTE, ResourceMemo())
    assert sweep_due(_body("30s", two_minutes_ago), 5 * MINUTE, ResourceMemo())


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


def test_a_failed_sweep_waits_out_its_backoff_before_the_timer_runs_it_again() -> None:
    long_ago = datetime.timedelta(days=1)
    memo = ResourceMemo()
    assert memo.back_off(2.0) == 2.0
    assert not sweep_due(_body(None, long_ago), MINUTE, memo), "due, but backing off"
    assert memo.back_off(2.0) == 4.0, "doubling"
    memo.not_before = 0.0
    just_checked = datetime.timedelta(seconds=1)
    assert sweep_due(_body(None, just_checked), MINUTE, memo), "a failed sweep is retried, not left for an interval"
    memo.recovered()
    assert sweep_due(_body(None, long_ago), MINUTE, memo)
