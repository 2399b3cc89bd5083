"""One small interface over the Azure SDKs: GET / PUT / PATCH / DELETE a resource by its ARM id.

Each ARM type maps to the operations group of the SDK that owns it (azure-mgmt-network,
azure-mgmt-privatedns, azure-ai-ml's ARM client); dependency targets the operator only touches at
the edges (storage accounts, key vaults, registries) go through azure-mgmt-resource's generic
by-id operations. Bodies in and out are plain REST JSON, so the engine diffs what ARM really sent.
Every call goes to the subscription its id names, and is counted on that subscription's budget.
All SDK clients of a cloud send over one HTTP session (`arm_session`), so connections are reused.
GETs, nearly every call of a drift sweep, go through a shorter azure-core pipeline of their own
(`_read_pipeline`), at the api-version the SDK that owns the type sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import ssl
import sys
import time
import urllib.parse
import urllib.request
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ResourceNotModifiedError,
    map_error,
)
from azure.core.pipeline import AsyncPipeline, PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncRetryPolicy, RequestIdPolicy, UserAgentPolicy
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import AsyncHttpResponse, HttpRequest, HttpResponse
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.core.policies import AsyncARMChallengeAuthenticationPolicy
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.privatedns.aio import PrivateDnsManagementClient
from azure.mgmt.resource.resources.aio import ResourceManagementClient

from secureml_operator.azure import private_link
from secureml_operator.azure.budget import ArmBudgetPolicy, BudgetRegistry, SubscriptionBudget
from secureml_operator.azure.cloud import CloudSettings
from secureml_operator.azure.ids import ArmId
from secureml_operator.failures import PermanentFailure, another_operation

Json = dict[str, Any]
# The SDK's own retries of one request (5xx, 429 after its Retry-After, dropped connections): a few,
# then the failure reaches the engine and the operator's backoff takes over (azure-core's default of
# ten, backing off up to 120 s each, would hold a reconcile for minutes on a persistent 503).
SDK_RETRIES = 2
# A write refused because another operation on the same resource runs (someone else's: ours are one
# at a time) is sent again after these delays, before its failure reaches the engine's backoff.
CONFLICT_RETRY_DELAYS = (1.0, 2.0, 4.0)
# Reads `ArmClient.get(..., max_age=)` keeps at most (the oldest go first): far more than the shared
# targets one sweep window reads, and a bound on memory whatever the callers ask.
READ_CACHE_ENTRIES = 4096
Result = TypeVar("Result")
# How old a read of a resource others own (a dependency, the hub, a shared DNS zone) may be: set by a
# drift sweep to its interval, so one read per sweep window serves every workspace that shares it.
# 0 (reconciles, deletes): always read.
SHARED_READ_AGE: ContextVar[float] = ContextVar("SHARED_READ_AGE", default=0.0)


@dataclass(frozen=True)
class SdkRoute:
    """Where an ARM type lives in the SDKs: client, operations group, and its call style."""

    client: str
    operations: str
    long_running: bool = True
    type_is_argument: bool = False  # private DNS record sets take the record type ("A") as an argument


ROUTES: dict[str, SdkRoute] = {
    key.lower(): route
    for key, route in {
        "Microsoft.Network/virtualNetworks": SdkRoute("network", "virtual_networks"),
        "Microsoft.Network/virtualNetworks/subnets": SdkRoute("network", "subnets"),
        "Microsoft.Network/virtualNetworks/virtualNetworkPeerings": SdkRoute("network", "virtual_network_peerings"),
        "Microsoft.Network/networkSecurityGroups": SdkRoute("network", "network_security_groups"),
        "Microsoft.Network/networkSecurityGroups/securityRules": SdkRoute("network", "security_rules"),
        "Microsoft.Network/routeTables": SdkRoute("network", "route_tables"),
        "Microsoft.Network/routeTables/routes": SdkRoute("network", "routes"),
        "Microsoft.Network/natGateways": SdkRoute("network", "nat_gateways"),
        "Microsoft.Network/publicIPAddresses": SdkRoute("network", "public_ip_addresses"),
        "Microsoft.Network/privateEndpoints": SdkRoute("network", "private_endpoints"),
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups": SdkRoute("network", "private_dns_zone_groups"),
        "Microsoft.Network/serviceEndpointPolicies": SdkRoute("network", "service_endpoint_policies"),
        "Microsoft.Network/serviceEndpointPolicies/serviceEndpointPolicyDefinitions": SdkRoute(
            "network", "service_endpoint_policy_definitions"
        ),
        "Microsoft.Network/azureFirewalls": SdkRoute("network", "azure_firewalls"),
        "Microsoft.Network/firewallPolicies": SdkRoute("network", "firewall_policies"),
        "Microsoft.Network/firewallPolicies/ruleCollectionGroups": SdkRoute(
            "network", "firewall_policy_rule_collection_groups"
        ),
        "Microsoft.Network/privateDnsZones": SdkRoute("dns", "private_zones"),
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks": SdkRoute("dns", "virtual_network_links"),
        "Microsoft.Network/privateDnsZones/A": SdkRoute(
            "dns", "record_sets", long_running=False, type_is_argument=True
        ),
        "Microsoft.MachineLearningServices/workspaces": SdkRoute("ml", "workspaces"),
        "Microsoft.MachineLearningServices/workspaces/outboundRules": SdkRoute("ml", "managed_network_settings_rule"),
    }.items()
}

# Providers reached through the generic by-id operations, with the api-version each serves: the
# private-link targets' (azure/private_link.py), and Application Insights (the workspace references
# it; no private-link target).
GENERIC_API_VERSIONS = {**private_link.generic_api_versions(), "microsoft.insights": "2020-02-02"}
# The generated operations' error map (404 is a GET's None here)
SDK_ERRORS = {401: ClientAuthenticationError, 409: ResourceExistsError, 304: ResourceNotModifiedError}
# azure-ai-ml's generated ARM client, loaded as a package of its own (below).
ML_CLIENT_PACKAGE = "secureml_operator_arm_ml_service"


def _ml_client_class() -> Any:
    """azure-ai-ml's generated ARM client (azure.ai.ml._restclient.arm_ml_service), without running
    the azure.ai.ml package: its `__init__` imports the whole SDK (entities, schemas, 1,700 modules,
    about 45 MiB of the operator's idle RSS) for one client that imports only azure-core. The client's
    modules import each other relatively, so they load as a package of their own name, and whoever
    imports azure.ai.ml itself (a test, a tool in the same process) gets the real one, untouched."""
    package = sys.modules.get(ML_CLIENT_PACKAGE)
    if package is None:
        ml = importlib.util.find_spec("azure.ai.ml")  # imports only the azure.ai namespace
        if ml is None or not ml.submodule_search_locations:
            raise ImportError("azure-ai-ml is not installed")
        location = f"{next(iter(ml.submodule_search_locations))}/_restclient/arm_ml_service"
        spec = importlib.util.spec_from_file_location(
            ML_CLIENT_PACKAGE, f"{location}/__init__.py", submodule_search_locations=[location]
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"azure-ai-ml's ARM client is not at {location}")
        package = sys.modules[ML_CLIENT_PACKAGE] = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules[ML_CLIENT_PACKAGE]
            raise
    return importlib.import_module(f"{ML_CLIENT_PACKAGE}.aio").MachineLearningServicesMgmtClient


MachineLearningServicesMgmtClient = _ml_client_class()


def arm_session(cloud: CloudSettings) -> aiohttp.ClientSession:
    """One HTTP session for every SDK client of a cloud: one connection pool and one SSL context.

    Given `connection_verify` (a CA bundle), azure-core's aiohttp transport builds an SSL context per
    request, and aiohttp pools connections by context, so none was reused: every request loaded the
    bundle and made a TLS handshake, and each SDK client had a session of its own besides."""
    context = ssl.create_default_context(cafile=cloud.ca_bundle)  # no bundle: the system's CAs
    # No pool limit: the budget bounds the requests in flight (budget.IN_FLIGHT), and a pool limit
    # would make a request that holds its token wait for a connection.
    connector = aiohttp.TCPConnector(ssl=context, limit=0)
    # As azure-core's transport makes its own: proxies from the environment, no cookies, bodies
    # decompressed by the SDK's response. Only with a proxy configured does the session look at the
    # environment: trusting it makes aiohttp parse the proxy variables and ~/.netrc on every request,
    # about half the CPU of a GET when none is set.
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=bool(urllib.request.getproxies()),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )


@dataclass
class _Read:
    task: asyncio.Task[bytes | None]
    started: float  # an entry is as old as its GET: what it holds is at least that recent
    max_age: float  # its first caller's: past it, the entry is dropped


class ReadCache:
    """GETs of resources many workspaces share (a storage account every workspace has a private
    endpoint to, a hub VNet), read once per `max_age` instead of once per workspace.

    Keyed by `ids.id_key`. Callers of one id while its GET is out share that GET; a 404 (None) is
    kept, a failure is not. The body is kept as ARM sent it and every caller gets it parsed anew, its
    own to change: a few times cheaper than deep-copying a parsed one, and a fraction of its memory."""

    def __init__(self) -> None:
        self._reads: dict[str, _Read] = {}  # in the order their GETs started

    async def get(self, key: str, max_age: float, read: Callable[[], Coroutine[Any, Any, bytes | None]]) -> Json | None:
        now = time.monotonic()
        entry = self._reads.get(key)
        if entry is None or now - entry.started > max_age:
            self._reads.pop(key, None)
            self._prune(now)
            # A task, so a caller cancelled does not cancel the others' read; it carries the
            # context of the caller that starts it (whose walk counts the read, at whose priority).
            entry = self._reads[key] = _Read(asyncio.create_task(read()), now, max_age)
            entry.task.add_done_callback(lambda task: self._settled(key, task))
        return _parsed(await asyncio.shield(entry.task))

    def _prune(self, now: float) -> None:
        """Drop expired entries, oldest first, and the oldest past READ_CACHE_ENTRIES."""
        while self._reads:
            key, oldest = next(iter(self._reads.items()))
            if len(self._reads) < READ_CACHE_ENTRIES and now - oldest.started <= oldest.max_age:
                return
            del self._reads[key]

    def _settled(self, key: str, task: asyncio.Task[bytes | None]) -> None:
        """A failed read is not kept. Asking for its error here also spares asyncio's warning of an
        error never retrieved when its callers are gone."""
        if task.cancelled() or task.exception() is not None:
            entry = self._reads.get(key)
            if entry is not None and entry.task is task:
                del self._reads[key]

    def forget(self, key: str) -> None:
        """Drop the entries of `key`, of resources under it and of the resources it is under."""
        for cached in [cached for cached in self._reads if _related(cached, key)]:
            del self._reads[cached]

    def close(self) -> None:
        for entry in self._reads.values():
            entry.task.cancel()
        self._reads.clear()


def _related(one: str, other: str) -> bool:
    """Whether two id keys are the same resource, or one is under the other."""
    return one == other or one.startswith(other + "/") or other.startswith(one + "/")


def _raw_json(pipeline_response: PipelineResponse, _deserialized: object, _headers: object) -> Json:  # type: ignore[type-arg]
    return _json_of(pipeline_response.http_response)


def _http_response(pipeline_response: PipelineResponse, _deserialized: object, _headers: object) -> AsyncHttpResponse:  # type: ignore[type-arg]
    response: AsyncHttpResponse = pipeline_response.http_response
    return response


def _json_of(response: HttpResponse | AsyncHttpResponse) -> Json:
    body: Json = response.json() if response.text() else {}
    return body


def _parsed(body: bytes | None) -> Json | None:
    """A GET's body as JSON; None (a 404) stays None."""
    if body is None:
        return None
    parsed: Json = json.loads(body) if body.strip() else {}
    return parsed


class ArmClient:
    """SDK clients for one credential, routed by each id's subscription.

    A hub VNet or firewall may live in another subscription than the workspace (a connectivity
    subscription in hub-and-spoke): every call goes to the subscription its ARM id names. The SDK
    clients of a subscription are built on its first call, share the credential, and count each
    attempt on that subscription's request budget (ARM throttles per subscription). They send over
    `session` (AzureAccess shares one per cloud); without one, the client makes its own on first
    use and closes it with itself.
    """

    def __init__(
        self,
        credential: AsyncTokenCredential,
        cloud: CloudSettings,
        budgets: BudgetRegistry,
        polling_interval: float = 5,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.credential = credential
        self.cloud = cloud
        self.budgets = budgets
        self.polling_interval = polling_interval
        self._session = session
        self._owns_session = session is None
        self._subscriptions: dict[str, dict[str, Any]] = {}  # lower-cased subscription -> SDK clients
        self._read_pipelines: dict[str, AsyncPipeline[HttpRequest, AsyncHttpResponse]] = {}
        # The api-version the SDK that owns a type sends, learnt from the type's first GET (the SDKs
        # keep it inside each operation's code): later GETs of the type go through `_read_pipeline`.
        self._read_versions: dict[str, str] = {}
        self._writing: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._reads = ReadCache()

    @staticmethod
    def supports(arm_id: ArmId) -> bool:
        """Whether the operator has a route to resources of this type (checked before any write)."""
        return arm_id.type.lower() in ROUTES or arm_id.namespace.lower() in GENERIC_API_VERSIONS

    def budget(self, subscription_id: str) -> SubscriptionBudget:
        """The request budget calls in `subscription_id` draw on."""
        return self.budgets.for_subscription(subscription_id)

    def _clients(self, subscription_id: str) -> dict[str, Any]:
        key = subscription_id.lower()
        clients = self._subscriptions.get(key)
        if clients is None:
            common: dict[str, Any] = {
                "base_url": self.cloud.arm_endpoint,
                "credential_scopes": [self.cloud.credential_scope],
                "per_retry_policies": [ArmBudgetPolicy(self.budget(subscription_id))],
                "polling_interval": self.polling_interval,
                "retry_total": SDK_RETRIES,
                "transport": self._transport(),
            }
            credential = self.credential
            clients = self._subscriptions[key] = {
                "network": NetworkManagementClient(credential, subscription_id, **common),
                "dns": PrivateDnsManagementClient(credential, subscription_id, **common),
                "ml": MachineLearningServicesMgmtClient(credential, subscription_id, **common),
                "resources": ResourceManagementClient(credential, subscription_id, **common),
            }
        return clients

    def _transport(self) -> AioHttpTransport:
        """The session's SSL context verifies the cloud's certificates: no connection_verify, which
        would make the transport build a context (and a connection) per request."""
        if self._session is None:
            self._session = arm_session(self.cloud)
        return AioHttpTransport(session=self._session, session_owner=False)

    def _read_pipeline(self, subscription_id: str) -> AsyncPipeline[HttpRequest, AsyncHttpResponse]:
        """The policies of the SDK clients' pipeline a GET needs, in their order: a request id, the
        retries, the budget, the ARM token. Left out, for the third of a read's CPU they cost: request
        bodies, redirects, provider registration (a write's), tracing and logging (off)."""
        key = subscription_id.lower()
        pipeline = self._read_pipelines.get(key)
        if pipeline is None:
            policies: list[Any] = [
                RequestIdPolicy(),
                UserAgentPolicy(sdk_moniker="secureml-operator"),
                AsyncRetryPolicy(retry_total=SDK_RETRIES),
                ArmBudgetPolicy(self.budget(subscription_id)),
                AsyncARMChallengeAuthenticationPolicy(self.credential, self.cloud.credential_scope),
            ]
            pipeline = self._read_pipelines[key] = AsyncPipeline(self._transport(), policies)
        return pipeline

    async def _write(self, arm_id: ArmId, send: Callable[[], Awaitable[Result]]) -> Result:
        """One write, until its operation ends. Writes to one top-level resource and its children go
        one at a time: Azure refuses a second write to a VNet, NSG or route table while one runs
        (AnotherOperationInProgress), and concurrent outbound-rule writes on one workspace are known
        to drop each other's rules. A write refused for someone else's operation is sent again.
        Once it ends, in success or not, the cached reads of the resource, its children and its
        parents are dropped."""
        key = arm_id.top.key
        lock = self._writing.get(key)
        if lock is None:
            lock = self._writing[key] = asyncio.Lock()
        try:
            async with lock:
                for delay in CONFLICT_RETRY_DELAYS:
                    try:
                        return await send()
                    except HttpResponseError as error:
                        if not another_operation(error):
                            raise
                    await asyncio.sleep(delay)
                return await send()
        finally:
            self._reads.forget(arm_id.key)

    async def close(self) -> None:
        """The SDK clients, and the session only if this client made it (a shared one is its owner's)."""
        self._reads.close()
        for clients in self._subscriptions.values():
            for client in clients.values():
                await client.close()
        self._subscriptions.clear()
        self._read_pipelines.clear()
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _call(self, arm_id: ArmId, verb: str) -> tuple[Callable[..., Awaitable[Any]], list[str], SdkRoute]:
        route = ROUTES.get(arm_id.type.lower())
        if route is None:
            raise _unsupported(arm_id)
        operations = getattr(self._clients(arm_id.subscription)[route.client], route.operations)
        arguments = [arm_id.resource_group, *arm_id.names]
        if route.type_is_argument:
            arguments = [arm_id.resource_group, arm_id.names[0], arm_id.types[-1], arm_id.names[-1]]
        method = f"begin_{verb}" if route.long_running and verb != "get" else verb
        return getattr(operations, method), arguments, route

    def _generic(self, arm_id: ArmId) -> tuple[Any, str]:
        """The by-id operations of the id's subscription, and the api-version its provider serves."""
        version = GENERIC_API_VERSIONS.get(arm_id.namespace.lower())
        if version is None:
            raise _unsupported(arm_id)
        return self._clients(arm_id.subscription)["resources"].resources, version

    async def get(self, arm_id: ArmId, max_age: float = 0.0) -> Json | None:
        """The resource as ARM returns it, or None when it does not exist.

        With `max_age` (seconds), a GET of the same id sent through this client within that long, or
        still out, answers instead, with no ARM call: for targets many workspaces share, read once
        per sweep window. A write through this client of the id, a child or a parent drops it."""
        if max_age <= 0:
            return await self._read(arm_id)
        return await self._reads.get(arm_id.key, max_age, lambda: self._read_body(arm_id))

    async def get_shared(self, arm_id: ArmId) -> Json | None:
        """A resource others own, as recent as `SHARED_READ_AGE` asks (in a sweep: its window)."""
        return await self.get(arm_id, max_age=SHARED_READ_AGE.get())

    async def _read(self, arm_id: ArmId) -> Json | None:
        return _parsed(await self._read_body(arm_id))

    async def _read_body(self, arm_id: ArmId) -> bytes | None:
        """A GET, its body as ARM sent it (the engine diffs the JSON: no SDK model is built). None: the
        resource does not exist."""
        version = GENERIC_API_VERSIONS.get(arm_id.namespace.lower()) or self._read_versions.get(arm_id.type.lower())
        if version is None:  # a type the SDKs route (`_call` refuses any other) not read yet
            return await self._sdk_read_body(arm_id)
        request = HttpRequest(
            "GET",
            f"{self.cloud.arm_endpoint}{arm_id}",
            params={"api-version": version},
            headers={"Accept": "application/json"},
        )
        response = (await self._read_pipeline(arm_id.subscription).run(request, stream=True)).http_response
        body: bytes = await response.read()
        if response.status_code == 200:
            return body
        if response.status_code == 404:
            return None
        map_error(response.status_code, response, SDK_ERRORS)  # as the SDKs' own operations answer
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)

    async def _sdk_read_body(self, arm_id: ArmId) -> bytes | None:
        """The first GET of a type the SDKs route, through its SDK (streamed: no model is built), which
        tells the api-version it sends."""

        def learn(request: PipelineRequest[HttpRequest]) -> None:
            versions = urllib.parse.parse_qs(urllib.parse.urlsplit(request.http_request.url).query).get("api-version")
            if versions:
                self._read_versions[arm_id.type.lower()] = versions[0]

        method, arguments, _ = self._call(arm_id, "get")
        try:
            response = await method(*arguments, stream=True, cls=_http_response, raw_request_hook=learn)
            body: bytes = await response.read()
            return body
        except ResourceNotFoundError:
            return None

    async def put(self, arm_id: ArmId, body: Json, etag: str | None = None, *, create_only: bool = False) -> Json:
        """Create or replace. With `etag`, ARM refuses (412) when someone changed it since we read it;
        with `create_only`, ARM refuses (412 PreconditionFailed) when the resource already exists."""
        headers: dict[str, str] = {}
        if etag:
            headers["If-Match"] = etag
        if create_only:
            headers["If-None-Match"] = "*"

        async def send() -> Json:
            if arm_id.type.lower() in ROUTES:
                method, arguments, route = self._call(arm_id, "create_or_update")
                outcome = await method(*arguments, body, cls=_raw_json, headers=headers)
                return await _finish(outcome, route.long_running)
            resources, version = self._generic(arm_id)
            poller = await resources.begin_create_or_update_by_id(
                str(arm_id), body, api_version=version, cls=_raw_json, headers=headers
            )
            return await _finish(poller, True)

        return await self._write(arm_id, send)

    async def patch(self, arm_id: ArmId, body: Json) -> Json:
        """A partial update: only the fields in `body` change (workspaces and generic resources)."""

        async def send() -> Json:
            if arm_id.type.lower() in ROUTES:
                method, arguments, route = self._call(arm_id, "update")
                return await _finish(await method(*arguments, body, cls=_raw_json), route.long_running)
            resources, version = self._generic(arm_id)
            poller = await resources.begin_update_by_id(str(arm_id), body, api_version=version, cls=_raw_json)
            return await _finish(poller, True)

        return await self._write(arm_id, send)

    async def delete(self, arm_id: ArmId) -> None:
        async def send() -> None:
            if arm_id.type.lower() in ROUTES:
                method, arguments, route = self._call(arm_id, "delete")
                outcome = await method(*arguments)
                if route.long_running:
                    await outcome.result()
                return
            resources, version = self._generic(arm_id)
            poller = await resources.begin_delete_by_id(str(arm_id), api_version=version)
            await poller.result()

        with contextlib.suppress(ResourceNotFoundError):
            await self._write(arm_id, send)

    async def provision_managed_network(self, workspace: ArmId, include_spark: bool) -> Json:
        operations = self._clients(workspace.subscription)["ml"].managed_network_provisions

        async def send() -> Json:
            poller = await operations.begin_provision_managed_network(
                workspace.resource_group, workspace.name, {"includeSpark": include_spark}, cls=_raw_json
            )
            return await _finish(poller, True)

        return await self._write(workspace, send)


def _unsupported(arm_id: ArmId) -> PermanentFailure:
    return PermanentFailure(
        "UnsupportedTarget", f"{arm_id}: the operator has no route to resources of type {arm_id.type}"
    )


async def _finish(outcome: Any, long_running: bool) -> Json:
    if not long_running:
        return dict(outcome or {})
    result = await outcome.result()
    return dict(result or {})
