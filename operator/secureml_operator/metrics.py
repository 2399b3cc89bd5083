"""Prometheus metric families: one place, so names stay stable for dashboards and alerts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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


@dataclass(slots=True)
class _ResourceValues:
    conditions: dict[str, float] = field(default_factory=dict)
    conflicting_writer_fields: float | None = None
    last_check: float | None = None
    effective_interval: float | None = None


class ResourceGauges(Collector):
    """The per-SecureMLWorkspace gauges, kept as plain values and turned into samples at scrape time:
    as prometheus_client's labelled children they were ten objects, a lock each, per resource (about
    10 KB), and a scrape walked every one of them.

    Labels are `resource_namespace` / `resource_name`, not `namespace` / `name`: a scrape's own
    `namespace` label (the operator's pod) would rename the metric's to `exported_namespace`."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], _ResourceValues] = {}

    def _of(self, namespace: str, name: str) -> _ResourceValues:
        values = self._values.get((namespace, name))
        if values is None:
            values = self._values[namespace, name] = _ResourceValues()
        return values

    def condition(self, namespace: str, name: str, condition: str, true: bool) -> None:
        self._of(namespace, name).conditions[condition] = 1.0 if true else 0.0

    def conflicting_writer_fields(self, namespace: str, name: str, count: int) -> None:
        self._of(namespace, name).conflicting_writer_fields = float(count)

    def last_check(self, namespace: str, name: str, when: float) -> None:
        self._of(namespace, name).last_check = when

    def effective_interval(self, namespace: str, name: str, seconds: float) -> None:
        self._of(namespace, name).effective_interval = seconds

    def forget(self, namespace: str, name: str) -> None:
        """A resource that is gone: none of its series any more."""
        self._values.pop((namespace, name), None)

    def collect(self) -> Iterator[Metric]:
        labels = ["resource_namespace", "resource_name"]
        conditions = GaugeMetricFamily(
            "secureml_resource_condition",
            "1 while the SecureMLWorkspace's status condition is True, else 0",
            labels=[*labels, "condition"],
        )
        conflicting = GaugeMetricFamily(
            "secureml_conflicting_writer_fields",
            "Fields of the SecureMLWorkspace the operator stopped correcting: another writer keeps changing them back",
            labels=labels,
        )
        last_check = GaugeMetricFamily(
            "secureml_drift_last_check_timestamp_seconds",
            "When the operator last compared the SecureMLWorkspace with Azure (Unix time): "
            "status.drift.lastCheckTime is refreshed only every heartbeat",
            labels=labels,
        )
        effective = GaugeMetricFamily(
            "secureml_drift_effective_interval_seconds",
            "The drift interval in effect for the SecureMLWorkspace: spec.drift.interval, stretched when the "
            "sweeps of its subscriptions would not fit their share of ARM's read budget",
            labels=labels,
        )
        for (namespace, name), values in list(self._values.items()):
            for condition, value in values.conditions.items():
                conditions.add_metric([namespace, name, condition], value)
            for family, maybe in (
                (conflicting, values.conflicting_writer_fields),
                (last_check, values.last_check),
                (effective, values.effective_interval),
            ):
                if maybe is not None:
                    family.add_metric([namespace, name], maybe)
        yield from (conditions, conflicting, last_check, effective)


RESOURCES = ResourceGauges()
REGISTRY.register(RESOURCES)

SWEEP_START_DELAY = Histogram(
    "secureml_sweep_start_delay_seconds",
    "How long past its due time a drift sweep started: above a few seconds, sweeps wait for a free "
    "sweep worker, and resources go unchecked past their effective interval",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600),
)
SWEEP_STRETCH = Gauge(
    "secureml_sweep_interval_stretch",
    "How far the declared drift intervals of a subscription's resources are stretched to fit its ARM read "
    "budget (1: not at all)",
    ["subscription"],
)
