"""Run the emulator: an aiohttp HTTPS server on loopback with a certificate from a test CA it makes.

`Emulator.start()` runs it on its own event loop in a background thread, so sync SDK clients, async
tests and a kopf operator in the same process can all use it; `python -m armemu` runs it in the
foreground for `make emulator` and `make demo`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
import urllib.request
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

from armemu import versions
from armemu.app import OUT_OF_BAND, ArmEmulator
from armemu.seed import SUBSCRIPTIONS
from armemu.state import Config, Json, State


class Emulator:
    def __init__(self, workdir: Path, port: int = 0, config: Config | None = None) -> None:
        self.workdir = workdir
        self.state = State(config)
        self.port = port or _free_port()
        self.endpoint = f"https://127.0.0.1:{self.port}"
        self.ca_path = workdir / "emulator-ca.pem"
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    @property
    def metadata_url(self) -> str:
        return f"{self.endpoint}/metadata/endpoints?api-version=2022-09-01"

    @property
    def env(self) -> dict[str, str]:
        """What a client, or the operator, needs to use this emulator as its cloud."""
        config = self.state.config
        return {
            "SMLW_ARM_ENDPOINT": self.endpoint,
            "AZURE_AUTHORITY_HOST": self.endpoint,
            "SMLW_CA_BUNDLE": str(self.ca_path),
            "REQUESTS_CA_BUNDLE": str(self.ca_path),
            "SSL_CERT_FILE": str(self.ca_path),
            "ARM_CLOUD_METADATA_URL": self.metadata_url,
            "AZURE_TENANT_ID": config.tenant_id,
            "AZURE_CLIENT_ID": config.client_id,
            "AZURE_CLIENT_SECRET": config.client_secret,
            # The subscriptions the seed writes to: without a tenancy policy, the operator acts only in these.
            "SMLW_ALLOWED_SUBSCRIPTIONS": ",".join(SUBSCRIPTIONS),
        }

    def _tls(self) -> ssl.SSLContext:
        self.workdir.mkdir(parents=True, exist_ok=True)
        authority = trustme.CA(organization_name="secureml ARM emulator test CA")
        authority.cert_pem.write_to_path(str(self.ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context

    async def _serve(self, context: ssl.SSLContext) -> None:
        self._runner = web.AppRunner(ArmEmulator(self.state, [self.endpoint]).app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=context).start()

    def start(self) -> Emulator:
        context = self._tls()
        # azure-ai-ml is imported here, not by the first workspace request in the loop: importing it
        # fetches ARM_CLOUD_METADATA_URL, which may point at this emulator, whose loop would then
        # wait on itself.
        versions.ml_client_versions()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve(context))
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="arm-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("the ARM emulator did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def serve_forever(self) -> None:
        """Foreground mode for `python -m armemu`."""
        context = self._tls()

        async def main() -> None:
            await self._serve(context)
            await asyncio.Event().wait()

        asyncio.run(main())

    def _send(self, method: str, url: str, body: Any, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(
            url,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **headers},
        )
        context = ssl.create_default_context(cafile=str(self.ca_path))
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def rest(self, method: str, path: str, body: Any = None, api_version: str | None = None) -> Any:
        """An ordinary ARM call, the way `az rest` or the portal changes Azure behind the operator
        (by default at the newest api-version the addressed provider serves)."""
        url = f"{self.endpoint}{path}?api-version={api_version or versions.latest(path)}"
        return self._send(method, url, body, {"Authorization": f"Bearer {OUT_OF_BAND}"})

    # admin API, over HTTPS like any other client -------------------------------------------------
    def admin(self, method: str, route: str, body: Any = None) -> Any:
        return self._send(method, f"{self.endpoint}/_emulator{route}", body, {})

    def resources(self) -> list[Json]:
        return list(self.admin("GET", "/resources"))

    def requests(self) -> list[Json]:
        return list(self.admin("GET", "/requests"))

    def clear_requests(self) -> None:
        self.admin("DELETE", "/requests")

    def fault(self, **spec: Any) -> str:
        return str(self.admin("POST", "/faults", spec)["id"])

    def clear_faults(self) -> None:
        self.admin("DELETE", "/faults")

    def policy(self, **spec: Any) -> str:
        """An Azure Policy `modify` effect on every write of a type: type, path (dotted), value."""
        return str(self.admin("POST", "/policies", spec)["id"])

    def clear_policies(self) -> None:
        self.admin("DELETE", "/policies")

    def reset(self) -> None:
        self.admin("POST", "/reset")

    def configure(self, **settings: Any) -> None:
        self.admin("POST", "/config", settings)

    def operations(self, seconds: float, conflicts: bool = True, rule_loss: bool = False) -> None:
        """Operations take `seconds`; with `conflicts`, another write to a VNet, NSG, route table, firewall
        policy or workspace meanwhile gets Azure's conflict answer; `rule_loss` acknowledges and drops an outbound
        rule written while another rule operation of its workspace runs (armemu/conflicts.py)."""
        self.configure(lro_seconds=seconds, conflicts=conflicts, outbound_rule_loss=rule_loss)

    def seed(self, items: list[Json]) -> None:
        self.admin("POST", "/seed", items)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
