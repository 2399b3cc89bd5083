"""The built image, run as a container: `make image` builds it (hack/image.py: buildah, on a base made
from Debian packages), then podman runs it as the image says (uid 65532) with a read-only root
filesystem, on the host's network so that it reaches the local kube-apiserver and the ARM emulator,
and an example reaches Ready through it. Prints the image's size and the container's start-up time
(from `podman start` to /healthz answering 200)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from operatorharness import OperatorEnv, discard_workspaces, prepare_cluster

from armemu import Emulator
from kubeharness import ControlPlane, free_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
NAME = "litware-selected-ips"
MOUNTS = Path("/etc/secureml-test")  # where the container finds the kubeconfig and the emulator's CA


@dataclass
class Container:
    name: str
    podman: list[str]
    liveness: int
    created_seconds: float
    started: float  # time.monotonic() at `podman start`

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self.podman, *args], capture_output=True, text=True, timeout=120)
        assert not check or result.returncode == 0, f"podman {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result

    def logs(self) -> str:
        result = self.run("logs", self.name, check=False)
        return (result.stdout + result.stderr)[-6000:]

    def state(self) -> str:
        return self.run("container", "inspect", "--format", "{{.State.Status}}", self.name, check=False).stdout.strip()


@pytest.fixture(scope="module")
def image() -> dict[str, Any]:
    """What `make image` builds (once; later runs reuse the cached base and layers)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "hack" / "image.py"), "--json"], capture_output=True, text=True, timeout=3000
    )
    assert result.returncode == 0, (
        "`make image` failed; it needs buildah, mmdebstrap, podman and runc, which it installs with apt-get "
        f"when run as root (else `apt-get install buildah mmdebstrap podman runc`):\n{result.stderr[-6000:]}"
    )
    built: dict[str, Any] = json.loads(result.stdout)
    return built


def _healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return int(response.status)
    except OSError:
        return 0


@pytest.fixture
def container(
    image: dict[str, Any], kube: ControlPlane, arm_emulator: Emulator, namespace: str, tmp_path: Path
) -> Iterator[Container]:
    prepare_cluster(kube, arm_emulator, namespace)
    # The container's user is not root: it gets its own readable copies, self-contained, of the
    # admin kubeconfig (client certificate and key inline) and of the emulator's CA certificate.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(kube.kubectl("config", "view", "--raw", "--flatten").stdout)
    ca = tmp_path / "emulator-ca.pem"
    ca.write_bytes(arm_emulator.ca_path.read_bytes())
    for path in (kubeconfig, ca):
        path.chmod(0o644)
    liveness = free_port()
    env = {
        **arm_emulator.env,
        "SMLW_CA_BUNDLE": str(MOUNTS / ca.name),
        "REQUESTS_CA_BUNDLE": str(MOUNTS / ca.name),
        "SSL_CERT_FILE": str(MOUNTS / ca.name),
        "KUBECONFIG": str(MOUNTS / kubeconfig.name),
        "SMLW_METRICS_PORT": str(free_port()),  # the host's network: not the image's 9090
        "SMLW_POLLING_INTERVAL_SECONDS": "0.05",
        "SMLW_RETRY_DELAY_SECONDS": "0.5",
    }
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    name = f"smlw-image-test-{uuid.uuid4().hex[:8]}"
    podman: list[str] = image["podman"]
    create = [*podman, "create", "--name", name, "--pull", "never", "--read-only", "--network", "host"]
    create += [*image["run_flags"], "--env-file", str(env_file)]
    create += ["--volume", f"{kubeconfig}:{MOUNTS / kubeconfig.name}:ro", "--volume", f"{ca}:{MOUNTS / ca.name}:ro"]
    # Arguments after the image go to its entrypoint; the later --liveness wins over the image's.
    create += [image["image"], "--standalone", "--namespace", namespace]
    create += ["--liveness", f"http://127.0.0.1:{liveness}/healthz"]
    began = time.monotonic()
    created = subprocess.run(create, capture_output=True, text=True, timeout=600)
    assert created.returncode == 0, created.stdout + created.stderr
    box = Container(name, podman, liveness, time.monotonic() - began, 0.0)
    try:
        box.started = time.monotonic()
        box.run("start", name)
        yield box
    finally:
        discard_workspaces(kube, namespace)
        box.run("rm", "--force", "--time", "10", name, check=False)


def test_image_runs_read_only_as_non_root_and_reconciles_an_example(
    image: dict[str, Any],
    container: Container,
    kube: ControlPlane,
    arm_emulator: Emulator,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    operator = OperatorEnv(kube, arm_emulator, namespace)

    def healthy() -> bool:
        if _healthz(container.liveness) == 200:
            return True
        assert container.state() in {"created", "running"}, f"the container stopped:\n{container.logs()}"
        return False

    operator.wait_for("the container's /healthz 200", healthy, 180)
    startup = time.monotonic() - container.started

    probe = (
        "import os\n"
        "print(os.getuid(), os.getgid())\n"
        "for path in ('/probe', '/opt/venv/probe'):\n"
        "    try:\n"
        "        open(path, 'w').close(); print('wrote', path)\n"
        "    except OSError as error:\n"
        "        print(error.strerror)\n"
    )
    seen = container.run("exec", container.name, "python", "-c", probe).stdout.split("\n")
    assert seen[:3] == ["65532 65532", "Read-only file system", "Read-only file system"], seen

    operator.apply(operator.manifest("06-selected-ips.yaml"))
    try:
        operator.wait_ready(NAME, timeout=180)
    except AssertionError as error:
        raise AssertionError(f"{error}\ncontainer log:\n{container.logs()}") from None
    workspace = operator.arm_resource("/workspaces/mlw-litware-ips")
    assert workspace is not None, "the operator in the container created the workspace in the emulator"
    acls = workspace["properties"]["networkAcls"]
    assert acls["defaultAction"] == "Deny"
    assert {rule["value"] for rule in acls["ipRules"]} == {"203.0.113.0/24", "198.51.100.7"}

    size = image["size_bytes"] / 1e6
    summary = (
        f"image {image['image']}: {size:.0f} MB ({image['storage_driver']} storage, built or checked in "
        f"{image['build_seconds']:.0f}s); rootfs prepared by `podman create` in {container.created_seconds:.1f}s; "
        f"`podman start` to /healthz 200 in {startup:.1f}s"
    )
    with capsys.disabled():  # the figures the README quotes, in every run's output
        print(f"\n{summary}")
