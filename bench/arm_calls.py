"""ARM calls per example: to reach Ready, and per steady-state drift sweep (reads, writes).

Counts come from the ARM emulator's request log, so they are exactly what the operator sent through
the unmodified SDKs (including long-running-operation polls). Run with `make bench`.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))

from sandbox import Sandbox, per_example

from armemu.seed import seed_litware

EXAMPLES = [
    "01-managed-internet-outbound.yaml",
    "02-managed-approved-outbound.yaml",
    "03-customer-vnet-nat.yaml",
    "04-customer-vnet-hub-firewall.yaml",
    "05-fully-private.yaml",
    "06-selected-ips.yaml",
]
INTERVAL_SECONDS = 10


def counts(sandbox: Sandbox) -> Counter[str]:
    return Counter("GET" if r["method"] == "GET" else "write" for r in sandbox.arm.requests())


def last_check(sandbox: Sandbox, name: str) -> str | None:
    """Moved by every sweep here: the operator runs with a heartbeat of 0 (SMLW_STATUS_HEARTBEAT)."""
    return (sandbox.status(name).get("drift") or {}).get("lastCheckTime")


def measure(sandbox: Sandbox, example: str) -> tuple[Counter[str], float, Counter[str]]:
    """Each example on a fresh Azure: only what the emulator seeds exists beforehand."""
    sandbox.arm.reset()
    seed_litware(sandbox.arm.state)
    started = time.monotonic()
    name = sandbox.apply_example(example, drift={"mode": "Enforce", "interval": f"{INTERVAL_SECONDS}s"})
    sandbox.wait(f"{name} Ready", lambda: sandbox.condition(name, "Ready") == "True")
    seconds = time.monotonic() - started
    to_ready = counts(sandbox)
    before = last_check(sandbox, name)
    sandbox.wait("a sweep", lambda: last_check(sandbox, name) != before, 3 * INTERVAL_SECONDS)
    before = last_check(sandbox, name)
    sandbox.arm.clear_requests()
    sandbox.wait("another sweep", lambda: last_check(sandbox, name) != before, 3 * INTERVAL_SECONDS)
    per_sweep = counts(sandbox)
    sandbox.release(name)
    return to_ready, seconds, per_sweep


def main() -> int:
    rows = per_example("bench", EXAMPLES, measure, SMLW_STATUS_HEARTBEAT="0s")
    print(f"{'example':38} {'to Ready: GET':>14} {'writes':>7} {'seconds':>8} | {'per sweep: GET':>15} {'writes':>7}")
    for example, (to_ready, seconds, per_sweep) in rows:
        print(
            f"{example:38} {to_ready['GET']:>14} {to_ready['write']:>7} {seconds:>8.1f} | "
            f"{per_sweep['GET']:>15} {per_sweep['write']:>7}"
        )
    print("(GETs include long-running-operation polls; the emulator completes operations at the first poll)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
