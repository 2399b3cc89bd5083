"""Operator-wide settings, from the environment (the Helm chart sets them)."""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass, field

from secureml_operator.api.duration import parse_duration
from secureml_operator.api.tenancy import GUID
from secureml_operator.azure.budget import BudgetSettings
from secureml_operator.azure.cloud import CloudSettings

MINIMUM_DRIFT_INTERVAL = datetime.timedelta(seconds=10)  # the CRD refuses shorter spec intervals too
ALLOWLIST_WIDEST_PREFIX = 8  # an inbound IP allowlist entry wider than this /n is not isolation


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as error:
        raise ValueError(f"{name}={raw!r} is not a number") from error


def _duration(
    env: dict[str, str], name: str, default: str, minimum: datetime.timedelta = MINIMUM_DRIFT_INTERVAL
) -> datetime.timedelta:
    raw = env.get(name) or default
    try:
        interval = parse_duration(raw)
    except ValueError as error:
        raise ValueError(f"{name}={raw!r}: {error}") from error
    if interval < minimum:
        raise ValueError(f"{name}={raw!r} is below the minimum of {minimum.total_seconds():g}s")
    return interval


def _prefix_length(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    if not raw.strip().isdigit() or int(raw) > 32:
        raise ValueError(f"{name}={raw!r} is not an IPv4 prefix length (0 to 32, e.g. 8 for /8)")
    return int(raw)


def _subscriptions(env: dict[str, str], name: str) -> frozenset[str]:
    """Comma-separated subscription ids, lower-cased; empty or unset: none."""
    raw = env.get(name) or ""
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    malformed = [entry for entry in entries if not re.fullmatch(GUID, entry)]
    if malformed:
        raise ValueError(
            f"{name}={raw!r}: {', '.join(repr(entry) for entry in malformed)} is not a subscription id "
            "(a GUID like 00000000-0000-0000-0000-000000000000; separate several with commas)"
        )
    return frozenset(entry.lower() for entry in entries)


@dataclass(frozen=True)
class OperatorSettings:
    cloud: CloudSettings
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    polling_interval_seconds: float = 5.0  # LRO polling when ARM sends no Retry-After
    retry_delay_seconds: float = 2.0  # first retry after a transient failure (then doubling, capped)
    max_workers: int = 20  # custom resources reconciled or deleted at once
    drift_interval: datetime.timedelta = datetime.timedelta(seconds=60)  # when spec.drift.interval is unset
    # A sweep that changes nothing in status still refreshes status.drift.lastCheckTime this often
    # (the metric secureml_drift_last_check_timestamp_seconds has every check).
    status_heartbeat: datetime.timedelta = datetime.timedelta(minutes=10)
    # The only subscriptions the operator may use while no SecureMLTenancyPolicy exists (api/tenancy.py).
    allowed_subscriptions: frozenset[str] = frozenset()
    # InboundIsolated is False when an IP allowlist entry is wider than this prefix (status/isolation.py).
    allowlist_widest_prefix: int = ALLOWLIST_WIDEST_PREFIX

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorSettings:
        values = dict(os.environ if env is None else env)
        defaults = BudgetSettings()
        return cls(
            cloud=CloudSettings.from_env(values),
            budget=BudgetSettings(
                reads_burst=_float(values, "SMLW_ARM_READS_BURST", defaults.reads_burst),
                reads_per_second=_float(values, "SMLW_ARM_READS_PER_SECOND", defaults.reads_per_second),
                writes_burst=_float(values, "SMLW_ARM_WRITES_BURST", defaults.writes_burst),
                writes_per_second=_float(values, "SMLW_ARM_WRITES_PER_SECOND", defaults.writes_per_second),
            ),
            polling_interval_seconds=_float(values, "SMLW_POLLING_INTERVAL_SECONDS", 5.0),
            retry_delay_seconds=_float(values, "SMLW_RETRY_DELAY_SECONDS", 2.0),
            max_workers=int(_float(values, "SMLW_MAX_WORKERS", 20)),
            drift_interval=_duration(values, "SMLW_DRIFT_INTERVAL", "60s"),
            status_heartbeat=_duration(values, "SMLW_STATUS_HEARTBEAT", "10m", minimum=datetime.timedelta(0)),
            allowed_subscriptions=_subscriptions(values, "SMLW_ALLOWED_SUBSCRIPTIONS"),
            allowlist_widest_prefix=_prefix_length(values, "SMLW_ALLOWLIST_WIDEST_PREFIX", ALLOWLIST_WIDEST_PREFIX),
        )
