"""The harness runs a real apiserver: schemas, CEL, status subresource, kopf, clean teardown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kopf.testing import KopfRunner

from kubeharness import ControlPlane

pytestmark = pytest.mark.integration

SMOKE_CRD = Path(__file__).parent.parent / "data" / "smoke-crd.yaml"


@pytest.fixture(scope="module")
def smoke_crd(kube: ControlPlane) -> Iterator[None]:
    kube.kubectl("apply", "--server-side", "-f", str(SMOKE_CRD))
    kube.kubectl("wait", "--for=condition=established", "crd/widgets.smoke.secureml.io", "--timeout=60s")
    yield
    kube.kubectl("delete", "-f", str(SMOKE_CRD), "--wait=false", check=False)


def widget(name: str, namespace: str, low: int, high: int) -> str:
    return json.dumps(
        {
            "apiVersion": "smoke.secureml.io/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"min": low, "max": high},
        }
    )


def test_server_reports_its_stamped_version(kube: ControlPlane) -> None:
    version = json.loads(kube.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["major"] == "1"
    assert version["gitVersion"].startswith(f"v1.{version['minor']}.")


def test_status_subresource_separates_spec_and_status(
    kube: ControlPlane, namespace: str, smoke_crd: None
) -> None:
    kube.kubectl("apply", "-f", "-", input=widget("good", namespace, 1, 2))
    kube.kubectl(
        "patch", "widget", "good", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", '{"status": {"seen": "yes"}, "spec": {"max": 99}}',
    )  # fmt: skip
    stored = json.loads(kube.kubectl("get", "widget", "good", "-n", namespace, "-o", "json").stdout)
    assert stored["status"] == {"seen": "yes"}
    assert stored["spec"]["max"] == 2, "a status patch must not change spec"


def test_cel_rule_rejects_with_its_message(kube: ControlPlane, namespace: str, smoke_crd: None) -> None:
    result = kube.kubectl("apply", "-f", "-", input=widget("bad", namespace, 5, 1), check=False)
    assert result.returncode != 0
    assert "spec.min must not exceed spec.max" in result.stderr
    missing = kube.kubectl("get", "widget", "bad", "-n", namespace, check=False)
    assert missing.returncode != 0


def test_kopf_handler_reacts_to_an_object(
    kube: ControlPlane, namespace: str, smoke_crd: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handlers = tmp_path / "handlers.py"
    handlers.write_text(
        textwrap.dedent(
            """
            import kopf

            @kopf.on.login()
            def login(**kwargs):
                return kopf.login_with_kubeconfig(**kwargs)

            @kopf.on.create("smoke.secureml.io", "widgets")
            def created(spec, patch, **_):
                patch.status["seen"] = f"{spec['min']}..{spec['max']}"
            """
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    args = ["run", "--standalone", "--namespace", namespace, str(handlers)]
    with KopfRunner(args, timeout=60) as runner:
        kube.kubectl("apply", "-f", "-", input=widget("watched", namespace, 3, 4))
        deadline = time.monotonic() + 30
        seen = ""
        while time.monotonic() < deadline and not seen:
            seen = kube.kubectl(
                "get", "widget", "watched", "-n", namespace, "-o", "jsonpath={.status.seen}"
            ).stdout
            time.sleep(0.2)
    assert runner.exception is None
    assert seen == "3..4"


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
