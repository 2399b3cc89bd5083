"""The HTTPS front of the emulator: ARM routing, bearer auth, throttling, faults, long-running
operations, the Entra token endpoint and the admin API (`/_emulator/...`)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.parse
import uuid
from typing import Any

from aiohttp import web

from armemu import conflicts, kinds, schema, versions
from armemu.arm import ArmError, merge_patch, resource_group_id, type_of
from armemu.kinds import ResourceBehaviour, ml
from armemu.state import Json, Operation, Resource, State

ADMIN = "/_emulator"
OUT_OF_BAND = "someone-else"  # the bearer token of Emulator.rest(): changes made behind the client's back
FAIL_LRO = web.RequestKey("fail_lro", str)  # a fault asked this request's operation to fail with this code
DISCONNECT = web.RequestKey("disconnect", str)  # a fault asked to drop the connection once this request is handled
LOST = web.RequestKey("lost", bool)  # the outbound_rule_loss fault acknowledged this write and dropped it


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(ArmError(status, code, message).body(), status=status, headers=headers)


def _disconnect(request: web.Request) -> web.Response:
    """Close the connection without an answer; the client sees a dropped connection (logged as 504)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=504)


def _precondition_exists(path: str) -> web.Response:
    """`If-None-Match: *` (create only) on a resource that exists."""
    return _error(
        412,
        "PreconditionFailed",
        f"The condition specified using HTTP conditional header(s) is not met: '{path}' already exists "
        "and If-None-Match is '*'.",
    )


class ArmEmulator:
    def __init__(self, state: State, base_url_holder: list[str]) -> None:
        self.state = state
        self._base = base_url_holder  # filled in once the port is known
        self._location_targets: dict[str, str] = {}  # Location-style operation -> the resource it writes

    @property
    def base(self) -> str:
        return self._base[0]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    # middleware: auth, throttling, faults, logging ---------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith(ADMIN) or path.startswith("/metadata/") or "/oauth2/" in path or "/.well-known/" in path:
            return await handler(request)  # type: ignore[no-any-return]
        entry: Json = {
            "method": request.method,
            "path": path,
            "apiVersion": request.query.get("api-version"),
            "time": time.time(),
            "caller": OUT_OF_BAND if request.headers.get("Authorization") == f"Bearer {OUT_OF_BAND}" else "client",
        }
        if request.method in ("PUT", "PATCH", "POST") and request.body_exists:
            try:
                entry["body"] = await request.json()  # aiohttp caches it: the handler reads it again
            except ValueError:
                entry["body"] = None
        response = await self._guarded(request, handler, entry)
        entry["status"] = response.status
        if request.get(LOST):
            entry["lost"] = True
        self.state.requests.append(entry)
        return response

    async def _guarded(self, request: web.Request, handler: Any, entry: Json) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer ") or not authorization[7:].strip():
            return _error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        subscription = request.path.split("/")[2] if request.path.startswith("/subscriptions/") else "-"
        kind = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(request.method, "writes")
        bucket = self.state.bucket(subscription, kind)
        if not bucket.take():
            entry["throttled"] = True
            return _error(
                429,
                "TooManyRequests",
                "Number of requests exceeded the limit.",
                {
                    "Retry-After": str(self.state.config.retry_after),
                    f"x-ms-ratelimit-remaining-subscription-{kind}": "0",
                },
            )
        for fault in self.state.faults:
            if fault.matches(request.method, request.path) and random.random() < fault.probability:
                if fault.count is not None:
                    fault.count -= 1
                if fault.latency_ms:
                    await asyncio.sleep(fault.latency_ms / 1000)
                if fault.fail_lro:
                    request[FAIL_LRO] = fault.code
                    break
                if fault.disconnect == "after":
                    request[DISCONNECT] = fault.id
                    break
                if fault.disconnect == "before":
                    entry["fault"] = fault.id
                    return _disconnect(request)
                if fault.status >= 400:
                    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
                    entry["fault"] = fault.id
                    return _error(fault.status, fault.code, f"Injected fault {fault.id}.", headers)
        if request.path.startswith("/subscriptions/") and not request.query.get("api-version"):
            return _error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required.",
            )
        try:
            versions.check(self.state, request.path, request.query.get("api-version", ""))
            response: web.StreamResponse = await handler(request)
        except ArmError as error:
            response = web.json_response(error.body(), status=error.status)
        response.headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = str(bucket.remaining)
        response.headers["x-ms-request-id"] = str(uuid.uuid4())
        if DISCONNECT in request:
            entry["fault"] = request[DISCONNECT]
            entry["handledStatus"] = response.status
            return _disconnect(request)
        return response

    # routing ------------------------------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if path.startswith(ADMIN):
            return await self.admin(request, path[len(ADMIN) :])
        if path == "/metadata/endpoints":
            return web.json_response(self.metadata())
        if path.endswith("/.well-known/openid-configuration"):
            return web.json_response(self.openid(path.split("/")[1]))
        if path.endswith("/oauth2/v2.0/token"):
            return await self.token(request)
        parts = path.strip("/").split("/")
        if (
            len(parts) >= 4
            and parts[2].lower() == "providers"
            and parts[-2].lower() in ("operations", "operationresults")
        ):
            return self.operation(parts[-1])
        if len(parts) == 4 and parts[2].lower() == "resourcegroups":
            return await self.resource_group(request, path)
        if len(parts) == 7 and parts[4].lower() == "providers" and request.method == "GET":
            return self.list_in_group(request, path)
        if len(parts) < 8 or parts[4].lower() != "providers":
            return _error(404, "InvalidResourceType", f"No route for {path}.")
        if not self.state.get(resource_group_id(path)):
            return _error(404, "ResourceGroupNotFound", f"Resource group '{parts[3]}' could not be found.")
        if len(parts) % 2 == 1:  # a collection (GET list) or an action (POST)
            return await self.collection_or_action(request, path, parts[-1])
        kind = type_of(path)
        if kind not in kinds.BEHAVIOURS:
            return _error(400, "InvalidResourceType", f"The resource type '{kind}' is not supported here.")
        handler = {"GET": self.get, "PUT": self.put, "PATCH": self.patch, "DELETE": self.delete}.get(request.method)
        if handler is None:
            return _error(405, "MethodNotAllowed", f"{request.method} is not allowed on {kind}.")
        refused = self._conflict(request, path)
        return refused if refused is not None else await handler(request, path)

    def list_in_group(self, request: web.Request, path: str) -> web.StreamResponse:
        """GET .../providers/{namespace}/{type}: every resource of that type in the resource group."""
        kind = type_of(path + "/x")
        prefix = path.lower() + "/"
        return self._page(request, [r for r in self.state.of_type(kind) if r.key.startswith(prefix)])

    def _page(self, request: web.Request, found: list[Resource]) -> web.StreamResponse:
        """One page of a list (`page_size` items), and the `nextLink` to the rest, as ARM pages lists."""
        token = next((value for key, value in request.query.items() if key.lower() == "$skiptoken"), "0")
        if not token.isdigit():
            return _error(400, "InvalidSkipToken", f"The skip token '{token}' is not valid.")
        start, size = int(token), self.state.config.page_size
        end = start + size if size > 0 else len(found)
        next_link = None
        if end < len(found):
            query = {key: value for key, value in request.query.items() if key.lower() != "$skiptoken"}
            next_link = f"{self.base}{request.path}?{urllib.parse.urlencode({**query, '$skipToken': end})}"
        return web.json_response({"value": [self._render(r) for r in found[start:end]], "nextLink": next_link})

    async def resource_group(self, request: web.Request, path: str) -> web.StreamResponse:
        if request.method == "PUT":
            body = await request.json()
            created = self.state.get(path) is None
            if not created and request.headers.get("If-None-Match") == "*":
                return _precondition_exists(path)
            resource = self.state.put(
                path,
                {
                    "location": body.get("location"),
                    "tags": body.get("tags", {}),
                    "properties": {"provisioningState": "Succeeded"},
                },
                None,
            )
            return web.json_response(self._rendered(resource), status=201 if created else 200)
        resource = self.state.get(path)
        if resource is None:
            return _error(
                404,
                "ResourceGroupNotFound",
                f"Resource group '{path.rsplit('/', 1)[-1]}' could not be found.",
            )
        if request.method == "DELETE":
            self.state.delete(path)
            return web.Response(status=200)
        return web.json_response(self._rendered(resource))

    def _caller(self, request: web.Request) -> list[str]:
        """Who writes, as ARM's systemData names them: the client's application, or someone else."""
        if request.headers.get("Authorization") == f"Bearer {OUT_OF_BAND}":
            return [OUT_OF_BAND, "User"]
        return [self.state.config.client_id, "Application"]

    def _rendered(self, resource: Resource) -> Json:
        return {"id": resource.id, "name": resource.id.rsplit("/", 1)[-1], **resource.body}

    def _lro_state(self, resource: Resource) -> str:
        pending = resource.body.get("_pending")
        operation = self.state.operations.get(pending) if pending else None
        return "Updating" if operation is not None and operation.running else "Succeeded"

    def _render(self, resource: Resource) -> Json:
        rendered = kinds.render(self.state, resource, self._lro_state(resource))
        return {key: value for key, value in rendered.items() if not key.startswith("_")}

    async def get(self, request: web.Request, path: str) -> web.StreamResponse:
        resource = self.state.get(path)
        if resource is None:
            return _error(404, "ResourceNotFound", f"The Resource '{path}' under resource group was not found.")
        return web.json_response(self._render(resource), headers={"ETag": resource.body.get("etag", "")})

    async def put(self, request: web.Request, path: str, body: Json | None = None) -> web.StreamResponse:
        if body is None:
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return _error(
                    400,
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized.",
                )
        assert body is not None
        kind = type_of(path)
        body = self.state.apply_policies(kind, body)
        existing = self.state.get(path)
        if_match = request.headers.get("If-Match")
        if if_match and if_match != "*" and (existing is None or existing.body.get("etag") != if_match):
            return _error(412, "PreconditionFailed", "The etag in If-Match does not match the resource's etag.")
        if existing is not None and request.headers.get("If-None-Match") == "*":
            return _precondition_exists(path)
        parent_path = path.rsplit("/", 2)[0]
        behaviour = kinds.behaviour(kind)
        if not behaviour.tracked and not self.state.get(parent_path) and kind.count("/") > 1:
            return _error(404, "ParentResourceNotFound", f"Parent resource {parent_path} was not found.")
        behaviour.validate(self.state, path, body, existing)
        stored = behaviour.stored(self.state, path, body, existing) | {"_modifiedBy": self._caller(request)}
        parent = parent_path if kind.count("/") > 1 else None
        if conflicts.loses_rule(self.state, request.method, path):
            return self._drop(request, Resource(path, stored, parent))
        resource = self.state.put(path, stored, parent)
        self._replace_inline_children(path, body, behaviour)
        behaviour.after_put(self.state, resource, existing)
        status = behaviour.created_status if existing is None else 200
        return self._lro_response(request, resource, status, behaviour)

    def _replace_inline_children(self, path: str, body: Json, behaviour: ResourceBehaviour) -> None:
        """A parent PUT with a child list replaces the children; an omitted list keeps them."""
        properties = body.get("properties") or {}
        for prop, child_type in behaviour.inline.items():
            if prop not in properties:
                continue
            wanted = {child["name"].lower(): child for child in properties[prop] or [] if "name" in child}
            for existing_child in self.state.children(path, child_type):
                if existing_child.id.rsplit("/", 1)[-1].lower() not in wanted:
                    self.state.delete(existing_child.id)
            for child in wanted.values():
                child_id = f"{path}/{child_type}/{child['name']}"
                child_body = {"properties": dict(child.get("properties") or {})}
                previous = self.state.get(child_id)
                stored = kinds.behaviour(type_of(child_id)).stored(self.state, child_id, child_body, previous)
                self.state.put(child_id, stored, path)

    async def patch(self, request: web.Request, path: str) -> web.StreamResponse:
        existing = self.state.get(path)
        if existing is None:
            return _error(404, "ResourceNotFound", f"The Resource '{path}' was not found.")
        kind = type_of(path)
        behaviour = kinds.behaviour(kind)
        patch = schema.conform(kind, await request.json(), patch=True)
        merged = merge_patch({k: v for k, v in existing.body.items() if k != "etag"}, patch)
        merged = self.state.apply_policies(kind, merged)
        behaviour.validate(self.state, path, merged, existing)
        stored = behaviour.stored(self.state, path, merged, existing) | {"_modifiedBy": self._caller(request)}
        resource = self.state.put(path, stored, existing.parent)
        behaviour.after_put(self.state, resource, existing)
        return self._lro_response(request, resource, 200, behaviour)

    async def delete(self, request: web.Request, path: str) -> web.StreamResponse:
        resource = self.state.get(path)
        if resource is None:
            return web.Response(status=204)
        behaviour = kinds.behaviour(type_of(path))
        behaviour.check_delete(self.state, resource)
        self.state.delete(path)
        behaviour.after_delete(self.state, resource)
        if behaviour.lro is None:
            return web.Response(status=200)
        operation = self._start(request, path)
        return web.Response(status=202, headers=self._operation_headers(request, operation.id, behaviour.lro))

    def _start(self, request: web.Request, path: str, result: Json | None = None) -> Operation:
        """The operation of a write to `path`; it holds the lock of the path's VNet, NSG, route table or
        workspace while it runs (armemu/conflicts.py)."""
        return self.state.start_operation(
            result=result,
            failed=request.get(FAIL_LRO),
            scope=conflicts.scope_of(path),
            name=conflicts.operation_name(request.method, path),
            target=path,
        )

    def _conflict(self, request: web.Request, path: str) -> web.Response | None:
        """Azure's answer to a write while another operation holds the lock it needs, if it must wait."""
        if request.method in ("GET", "HEAD"):
            return None
        operation = conflicts.blocking(self.state, request.method, path)
        if operation is None:
            return None
        status_uri = self._operation_url(request, operation.id, "async")
        status, body, headers = conflicts.answer(request.method, path, operation, status_uri)
        return web.json_response(body, status=status, headers=headers)

    def _drop(self, request: web.Request, rule: Resource) -> web.StreamResponse:
        """The outbound_rule_loss fault: answered as a stored rule write is (202, then the rule as
        written), but nothing is stored and nothing else happens."""
        request[LOST] = True
        ml.rule_defaults(self.state, rule)
        operation = self._start(request, rule.id, result=self._render(rule))
        return web.Response(status=202, headers=self._operation_headers(request, operation.id, "location"))

    def _lro_response(
        self, request: web.Request, resource: Resource, status: int, behaviour: ResourceBehaviour
    ) -> web.StreamResponse:
        if behaviour.lro is None:
            return web.json_response(self._render(resource), status=status)
        operation = self._start(request, resource.id)
        resource.body["_pending"] = operation.id
        operation.result = None  # the Location poll renders the resource when it ends
        operation_headers = self._operation_headers(request, operation.id, behaviour.lro)
        if behaviour.lro == "location":
            self._location_targets[operation.id] = resource.id
            return web.Response(status=202, headers=operation_headers)
        return web.json_response(self._render(resource), status=status, headers=operation_headers)

    def _operation_headers(self, request: web.Request, operation_id: str, style: str) -> dict[str, str]:
        header = "Azure-AsyncOperation" if style == "async" else "Location"
        return {
            header: self._operation_url(request, operation_id, style),
            "Retry-After": str(self.state.config.retry_after),
        }

    def _operation_url(self, request: web.Request, operation_id: str, style: str) -> str:
        subscription = request.path.split("/")[2]
        namespace = request.path.split("/providers/")[1].split("/")[0]
        version = urllib.parse.quote(request.query.get("api-version", ""))
        kind = "operations" if style == "async" else "operationResults"
        return (
            f"{self.base}/subscriptions/{subscription}/providers/{namespace}/locations/emulator"
            f"/{kind}/{operation_id}?api-version={version}"
        )

    def operation(self, operation_id: str) -> web.StreamResponse:
        operation = self.state.operations.get(operation_id)
        if operation is None:
            return _error(404, "OperationNotFound", f"Operation {operation_id} was not found.")
        headers = {"Retry-After": str(self.state.config.retry_after)}
        target_id = self._location_targets.get(operation_id)
        if operation.running:
            if target_id is not None or operation.result is not None:
                return web.Response(status=202, headers=headers)
            return web.json_response({"status": "InProgress"}, headers=headers)
        if operation.failed:
            error = {"code": operation.failed, "message": f"Operation {operation_id} failed (injected)."}
            if target_id is not None:
                return web.json_response({"error": error}, status=500)
            return web.json_response({"status": "Failed", "error": error})
        if operation.result is not None:
            return web.json_response(operation.result)
        if target_id is not None:
            target = self.state.get(target_id)
            return web.json_response(self._render(target)) if target else web.Response(status=204)
        return web.json_response({"status": "Succeeded"})

    async def collection_or_action(self, request: web.Request, path: str, last: str) -> web.StreamResponse:
        parent_path = path.rsplit("/", 1)[0]
        parent = self.state.get(parent_path)
        if parent is None:
            return _error(404, "ResourceNotFound", f"The Resource '{parent_path}' was not found.")
        if request.method == "POST" and last.lower() == "provisionmanagednetwork":
            refused = self._conflict(request, path)
            if refused is not None:
                return refused
            body = await request.json() if request.body_exists else {}
            status = ml.provision(self.state, parent, bool(body.get("includeSpark")))
            operation = self._start(request, path, result=status)
            return web.Response(status=202, headers=self._operation_headers(request, operation.id, "location"))
        if request.method == "GET":
            return self._page(request, self.state.children(parent_path, last))
        return _error(405, "MethodNotAllowed", f"{request.method} {last} is not supported.")

    # identity and cloud metadata ------------------------------------------------------------------
    def metadata(self) -> Json:
        return {
            "name": "ArmEmulator",
            "resourceManager": self.base + "/",
            "authentication": {
                "loginEndpoint": self.base + "/",
                "audiences": [self.base + "/"],
                "tenant": "common",
            },
            "suffixes": {"storage": "core.windows.net", "keyVaultDns": "vault.azure.net"},
            "portal": self.base,
            "gallery": self.base,
            "graph": self.base,
            "activeDirectoryDataLake": self.base,
        }

    def openid(self, tenant: str) -> Json:
        issuer = f"{self.base}/{tenant}/v2.0"
        return {
            "issuer": issuer,
            "token_endpoint": f"{self.base}/{tenant}/oauth2/v2.0/token",
            "authorization_endpoint": f"{self.base}/{tenant}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{self.base}/{tenant}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{self.base}/{tenant}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "NA",
        }

    async def token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        config = self.state.config
        if form.get("client_id") != config.client_id or form.get("client_secret") != config.client_secret:
            return web.json_response(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                    "error_codes": [7000215],
                },
                status=401,
            )
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": 3600,
                "ext_expires_in": 3600,
                "access_token": f"emulator.{uuid.uuid4().hex}.token",
            }
        )

    # admin API --------------------------------------------------------------------------------
    async def admin(self, request: web.Request, route: str) -> web.StreamResponse:
        state = self.state
        if route == "/resources" and request.method == "GET":
            return web.json_response(state.snapshot())
        if route == "/requests" and request.method == "GET":
            return web.json_response(state.requests)
        if route == "/requests" and request.method == "DELETE":
            state.requests.clear()
            return web.json_response({"cleared": True})
        if route == "/faults" and request.method == "POST":
            try:
                fault = state.add_fault(await request.json())
            except ValueError as error:
                return web.json_response({"error": str(error)}, status=400)
            return web.json_response({"id": fault.id}, status=201)
        if route == "/faults" and request.method == "DELETE":
            state.faults.clear()
            return web.json_response({"cleared": True})
        if route == "/policies" and request.method == "POST":
            policy = state.add_policy(await request.json())
            return web.json_response({"id": policy.id}, status=201)
        if route == "/policies" and request.method == "DELETE":
            state.policies.clear()
            return web.json_response({"cleared": True})
        if route == "/reset" and request.method == "POST":
            state.reset()
            self._location_targets.clear()
            return web.json_response({"reset": True})
        if route == "/config" and request.method == "POST":
            for key, value in (await request.json()).items():
                if not hasattr(state.config, key):
                    return web.json_response({"error": f"unknown setting {key}"}, status=400)
                setattr(state.config, key, value)
            state.buckets.clear()
            return web.json_response(vars(state.config))
        if route == "/seed" and request.method == "POST":
            for item in await request.json():
                kind = type_of(item["id"])
                parent = item["id"].rsplit("/", 2)[0] if kind.count("/") > 1 else None
                body = {"etag": 'W/"seed"', "properties": {}, **item.get("body", {})}
                state.put(item["id"], kinds.behaviour(kind).seeded(item["id"], body), parent)
            return web.json_response({"seeded": True})
        return web.json_response({"error": f"no admin route {request.method} {route}"}, status=404)
