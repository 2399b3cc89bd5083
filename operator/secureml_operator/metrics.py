"""Prometheus metric families: one place, so names stay stable for dashboards and alerts."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("secureml_reconciles_total", "Reconciles of SecureMLWorkspace resources by outcome", ["outcome"])
RECONCILE_SECONDS = Histogram(
    "secureml_reconcile_duration_seconds",
    "Time one reconcile or drift sweep took",
    ["mode"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
DRIFT_FOUND = Counter(
    "secureml_drift_found_total",
    "Differences between Azure and the spec, by resource type",
    ["resource_type"],
)
DRIFT_CORRECTED = Counter(
    "secureml_drift_corrected_total",
    "Differences the operator corrected, by resource type",
    ["resource_type"],
)
ARM_CALLS = Counter(
    "secureml_arm_calls_total",
    "HTTP requests sent to Azure Resource Manager",
    ["method", "resource_type", "status_code"],
)
ARM_THROTTLED = Counter(
    "secureml_arm_throttled_total", "ARM responses with status 429 (throttled)", ["method", "resource_type"]
)
ARM_CALLS_BY_SUBSCRIPTION = Counter(
    "secureml_arm_subscription_calls_total",
    "HTTP requests sent to Azure Resource Manager, by subscription (the budget's unit) and status code",
    ["subscription", "status_code"],
)
# Per SecureMLWorkspace. Not `namespace`/`name`: a scrape's own `namespace` label (the operator's pod)
# would rename the metric's to `exported_namespace`.
RESOURCE_CONDITION = Gauge(
    "secureml_resource_condition",
    "1 while the SecureMLWorkspace's status condition is True, else 0",
    ["resource_namespace", "resource_name", "condition"],
)
CONFLICTING_WRITER_FIELDS = Gauge(
    "secureml_conflicting_writer_fields",
    "Fields of the SecureMLWorkspace the operator stopped correcting: another writer keeps changing them back",
    ["resource_namespace", "resource_name"],
)
DRIFT_LAST_CHECK = Gauge(
    "secureml_drift_last_check_timestamp_seconds",
    "When the operator last compared the SecureMLWorkspace with Azure (Unix time): status.drift.lastCheckTime "
    "is refreshed only every heartbeat",
    ["resource_namespace", "resource_name"],
)
DRIFT_EFFECTIVE_INTERVAL = Gauge(
    "secureml_drift_effective_interval_seconds",
    "The drift interval in effect for the SecureMLWorkspace: spec.drift.interval, stretched when the sweeps of "
    "its subscriptions would not fit their share of ARM's read budget",
    ["resource_namespace", "resource_name"],
)
SWEEP_STRETCH = Gauge(
    "secureml_sweep_interval_stretch",
    "How far the declared drift intervals of a subscription's resources are stretched to fit its ARM read "
    "budget (1: not at all)",
    ["subscription"],
)
