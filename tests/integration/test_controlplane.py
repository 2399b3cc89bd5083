"""The harness runs a real apiserver: the CRD's status subresource, a kopf handler, clean teardown.
(CEL rules, printer columns and explain are covered by test_crd.py on the same server.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import kopf
import pytest
from apicases import example
from kopf.testing import KopfRunner

from kubeharness import ControlPlane
from secureml_operator.api.crd import CRD_PATH

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def crd(kube: ControlPlane) -> None:
    kube.kubectl("apply", "--server-side", "-f", str(CRD_PATH))
    kube.kubectl("wait", "--for=condition=established", "crd/securemlworkspaces.secureml.io", "--timeout=60s")


def test_server_reports_its_stamped_version(kube: ControlPlane) -> None:
    version = json.loads(kube.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["major"] == "1"
    assert version["gitVersion"].startswith(f"v1.{version['minor']}.")


def test_status_subresource_separates_spec_and_status(kube: ControlPlane, namespace: str, crd: None) -> None:
    manifest = example("06-selected-ips.yaml")
    name = manifest["metadata"]["name"]
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    kube.kubectl(
        "patch", "smlw", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", '{"status": {"isolation": "x"}, "spec": {"deletionPolicy": "Retain"}}',
    )  # fmt: skip
    stored = json.loads(kube.kubectl("get", "smlw", name, "-n", namespace, "-o", "json").stdout)
    assert stored["status"]["isolation"] == "x"
    assert stored["spec"]["deletionPolicy"] == "Delete", "a status patch must not change spec"


def test_kopf_handler_reacts_to_an_object(
    kube: ControlPlane,
    namespace: str,
    crd: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    handlers = tmp_path / "handlers.py"
    handlers.write_text(
        textwrap.dedent(
            """
            import kopf

            @kopf.on.login()
            def login(**kwargs):
                return kopf.login_with_kubeconfig(**kwargs)

            @kopf.on.create("secureml.io", "v1alpha1", "securemlworkspaces")
            def created(spec, patch, **_):
                patch.status["isolation"] = spec["inbound"]["publicNetworkAccess"]
            """
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    manifest = example("06-selected-ips.yaml")
    name = manifest["metadata"]["name"]
    args = ["run", "--standalone", "--namespace", namespace, str(handlers)]
    # kopf keeps handlers in a process-wide default registry: this throwaway handler gets its own, so
    # the operator's handlers (imported by other tests) do not run here, nor this one in their runs.
    previous = kopf.get_default_registry()
    kopf.set_default_registry(kopf.OperatorRegistry())
    request.addfinalizer(lambda: kopf.set_default_registry(previous))
    with KopfRunner(args, timeout=60) as runner:
        kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
        deadline = time.monotonic() + 30
        seen = ""
        while time.monotonic() < deadline and not seen:
            seen = kube.kubectl("get", "smlw", name, "-n", namespace, "-o", "jsonpath={.status.isolation}").stdout
            time.sleep(0.2)
    assert runner.exception is None
    assert seen == "EnabledFromSelectedIPs"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def test_killed_parent_leaves_no_control_plane_behind(kube: ControlPlane, tmp_path: Path) -> None:
    """SIGKILL a process that runs a control plane: its etcd and kube-apiserver must die too."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from kubeharness import ControlPlane
        plane = ControlPlane(Path({str(tmp_path / "victim")!r}), Path({str(kube.binaries)!r}))
        plane.start()
        print(" ".join(map(str, plane.pids)), flush=True)
        time.sleep(600)
        """
    )
    victim = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert victim.stdout is not None
    pids = [int(pid) for pid in victim.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), f"orphans left: {[p for p in pids if _alive(p)]}"


def test_apiserver_restart_keeps_etcd_and_the_port(kube: ControlPlane, tmp_path: Path) -> None:
    """`restart_apiserver()` (for chaos runs): a new kube-apiserver process on the same port, same state."""
    with ControlPlane(tmp_path / "restarted", kube.binaries) as plane:
        plane.kubectl("create", "namespace", "survivor")
        etcd, apiserver = plane.pids
        plane.restart_apiserver()
        assert plane.pids[0] == etcd and plane.pids[1] != apiserver and not _alive(apiserver)
        assert plane.kubectl("get", "namespace", "survivor", "-o", "name").stdout.strip() == "namespace/survivor"
