"""`make cluster-up` / `make cluster-down`: a local control plane that outlives the command.

`up` starts a detached supervisor (`serve`) that owns etcd and kube-apiserver and stops them on
SIGTERM; `down` sends that signal and waits. State lives in --dir (kubeconfig, logs, pid).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kubeharness.controlplane import ControlPlane, testbin_dir


def serve(directory: Path) -> int:
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    control_plane = ControlPlane(directory, testbin_dir())
    control_plane.start()
    (directory / "ready").write_text(control_plane.server)
    try:
        while not stop_requested:
            time.sleep(0.5)
    finally:
        control_plane.stop()
        (directory / "ready").unlink(missing_ok=True)
        (directory / "supervisor.pid").unlink(missing_ok=True)
    return 0


def _running_pid(directory: Path) -> int | None:
    pid_file = directory / "supervisor.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pid_file.unlink()
        return None
    return pid


def up(directory: Path) -> int:
    directory = directory.resolve()
    if _running_pid(directory) is not None and (directory / "ready").exists():
        print(f"control plane already running; export KUBECONFIG={directory / 'kubeconfig'}")
        return 0
    testbin_dir()  # build the binaries in the foreground, where the user sees the progress
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ready").unlink(missing_ok=True)
    with (directory / "supervisor.log").open("ab") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "kubeharness", "serve", "--dir", str(directory)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
    (directory / "supervisor.pid").write_text(str(supervisor.pid))
    deadline = time.monotonic() + 120
    while not (directory / "ready").exists():
        if supervisor.poll() is not None or time.monotonic() > deadline:
            print(f"control plane failed to start; see {directory / 'supervisor.log'}", file=sys.stderr)
            if supervisor.poll() is None:
                supervisor.terminate()
            return 1
        time.sleep(0.25)
    print(f"kube-apiserver ready at {(directory / 'ready').read_text()} (logs: {directory / 'logs'})")
    print(f"export KUBECONFIG={directory / 'kubeconfig'}")
    return 0


def down(directory: Path) -> int:
    directory = directory.resolve()
    pid = _running_pid(directory)
    if pid is None:
        print("no control plane running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("control plane stopped")
            return 0
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)  # its children die with it (PR_SET_PDEATHSIG)
    print("control plane killed after 30s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="kubeharness")
    parser.add_argument("command", choices=["up", "down", "serve"])
    parser.add_argument("--dir", type=Path, default=Path(".cache/cluster"))
    args = parser.parse_args()
    return {"up": up, "down": down, "serve": serve}[args.command](args.dir)


if __name__ == "__main__":
    sys.exit(main())
