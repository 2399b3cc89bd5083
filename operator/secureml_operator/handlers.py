"""kopf wiring: which events call which reconciler method. Nothing else lives here.

- create / update: converge Azure to the spec, in a walk the reconciler queues (the handler returns at
  once, holding no body while the walk waits for its turn);
- resume (the operator restarted): the same, unless the status says the current spec is Ready, when
  the resource's drift sweeps take over (no thousand walks at once after a restart);
- drift sweeps: not a kopf timer, but the reconciler's scheduler (sweeps.py), started here;
- delete, behind the `secureml.io/finalizer` finalizer, as `spec.deletionPolicy` says.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from typing import Any, cast

import kopf
import prometheus_client

from secureml_operator import kube, memory
from secureml_operator.api.models import GROUP, PLURAL, VERSION
from secureml_operator.api.tenancy import POLICY_NAME, TENANCY_PLURAL
from secureml_operator.azure.access import AzureAccess
from secureml_operator.reconciler import Reconciler, Target, settled
from secureml_operator.settings import OperatorSettings

FINALIZER = "secureml.io/finalizer"
API_ERROR_DELAYS = (1, 1, 2, 3, 5)
# kopf's retries of one API request (a status patch, an event) while the API server is away: every
# second or two for about a minute, instead of its default that waits 5, 8, 13 and 21 s between the
# last attempts. A sweep's status patch holds the resource's next sweep until it lands, so a long
# wait here is drift left uncorrected after the API server is back.
API_REQUEST_RETRY_DELAYS = (1,) * 10 + (2,) * 20
METRICS_PORT_ENV = "SMLW_METRICS_PORT"


class DiffBaseWithoutStatus(kopf.AnnotationsDiffBaseStorage):
    """kopf's essence of a body (what its spec handlers compare), built without copying the status
    first: kopf deep-copies the whole body and then drops the status, and a status holds the ledger,
    the resources and the drift items. Every watch event (most are the operator's own status
    patches) paid for that copy: 6 % of a profiled minute's CPU at 1000 resources."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        fields = list(extra_fields or [])
        if not any(_top_key(field) == "status" for field in fields):  # none asked for (handlers watch `spec`)
            body = kopf.Body(cast(kopf.RawBody, {key: value for key, value in body.items() if key != "status"}))
        return super().build(body=body, extra_fields=fields)


def _top_key(field: Any) -> str:
    """A kopf field path's first key: "status.x", or ("status", "x")."""
    return str(field).split(".", 1)[0] if isinstance(field, str) else str(next(iter(field), ""))


@kopf.on.startup()
async def configure(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    operator_settings = OperatorSettings.from_env()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="secureml.io")
    settings.persistence.diffbase_storage = DiffBaseWithoutStatus(
        prefix="secureml.io", key="last-handled-configuration"
    )
    # kopf's own backoff after an API error of its (a status patch while the API server restarts):
    # capped at 5 s instead of its Fibonacci default (up to 610 s), so sweeps resume within seconds.
    settings.queueing.error_delays = API_ERROR_DELAYS
    settings.networking.error_backoffs = API_REQUEST_RETRY_DELAYS
    settings.posting.level = logging.INFO
    logging.getLogger("azure").setLevel(logging.WARNING)
    # urllib3 warns of each retry of the Kubernetes client's connections (three lines a second per
    # credential watch while the API server is away); the watch reports its own interruption.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    settings.peering.name = "secureml-operator"
    if not await kube.served(GROUP, VERSION, TENANCY_PLURAL):
        # kopf would wait for the policy index forever and serve nothing: say why, and stop.
        raise kopf.PermanentError(
            f"the {TENANCY_PLURAL}.{GROUP} CRD is not installed: kubectl apply --server-side -f crds/ "
            "(or install the chart with its CRDs)"
        )
    memo.reconciler = Reconciler(AzureAccess(operator_settings))
    memo.reconciler.sweeps.start()
    memo.releasing_memory = asyncio.create_task(memory.release_periodically(), name="release freed memory")
    frozen = memory.freeze_startup_objects()
    memory.widen_young_generation()
    memory.shrink_tls_read_buffers()
    port = int(os.environ.get(METRICS_PORT_ENV, "0") or 0)
    if port:
        prometheus_client.start_http_server(port)
        logger.info("metrics served", extra={"port": port})
    cloud = operator_settings.cloud
    logger.info("operator configured", extra={"cloud": cloud.name, "arm": cloud.arm_endpoint, "frozen": frozen})


@kopf.on.cleanup()
async def close_clients(memo: kopf.Memo, **_: Any) -> None:
    await memo.reconciler.stop()
    await memo.reconciler.access.close()
    memo.releasing_memory.cancel()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod, the ServiceAccount; elsewhere `$KUBECONFIG` (read when called, not at import)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.index(GROUP, VERSION, TENANCY_PLURAL)
def tenancy_policies(name: str, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
    """The SecureMLTenancyPolicy the operator obeys, kept current by a watch. Its CRD admits only the
    object named `default`: the index holds one object at most, so it fills at once (kopf holds a
    worker per object while an index fills)."""
    return {name: dict(spec)} if name == POLICY_NAME else {}


def _reconciler(memo: kopf.Memo, kwargs: dict[str, Any]) -> Reconciler:
    reconciler: Reconciler = memo.reconciler
    reconciler.tenancy_index = kwargs["tenancy_policies"]  # for the sweeps, which run outside handlers
    return reconciler


def _target(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, kwargs: dict[str, Any], retry: int) -> Target:
    reconciler = _reconciler(memo, kwargs)
    meta = body.metadata
    return Target(body, patch, reconciler.memo(str(meta.namespace), str(meta.name)), retry, reconciler.policy())


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def reconcile(body: kopf.Body, memo: kopf.Memo, reason: str, **kwargs: Any) -> None:
    """Queues the walk and returns: the walk reads the resource when its turn comes (reconciler.py)."""
    reconciler = _reconciler(memo, kwargs)
    if reason == kopf.Reason.RESUME and settled(body):
        reconciler.track(body)
        return
    reconciler.request(body)


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def delete(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, **kwargs: Any) -> None:
    await memo.reconciler.delete(_target(body, patch, memo, kwargs, retry))
