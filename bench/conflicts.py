"""ARM calls per example to Ready when operations take time, with the emulator's conflicts off and on.

With conflicts on, a write to a VNet, NSG, route table or workspace while another operation on it runs
is refused as Azure refuses it (409 AnotherOperationInProgress or Conflict, 429 RetryableError), and
an outbound rule written during another rule's operation is dropped (`outbound_rule_loss`): what the
operator's own concurrency costs. Counts come from the emulator's request log, long-running-operation
polls included. Run with `make bench-conflicts` (OPERATION_SECONDS=2 for longer operations).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))

from arm_calls import EXAMPLES
from sandbox import Sandbox, per_example

from armemu.seed import seed_litware


def measure(sandbox: Sandbox, example: str, seconds: float, conflicts: bool) -> tuple[Counter[str], float]:
    """One example on a fresh Azure; what the operator sent until Ready: GETs, writes, refused, lost."""
    sandbox.arm.reset()
    seed_litware(sandbox.arm.state)
    # Polled every 0.2 s (the operator's interval), not after Retry-After's whole second.
    sandbox.arm.configure(lro_seconds=seconds, retry_after=0, conflicts=conflicts, outbound_rule_loss=conflicts)
    started = time.monotonic()
    name = sandbox.apply_example(example)
    sandbox.wait(f"{name} Ready", lambda: sandbox.condition(name, "Ready") == "True", 300)
    elapsed = time.monotonic() - started
    calls: Counter[str] = Counter()
    for request in sandbox.arm.requests():
        calls["GET" if request["method"] == "GET" else "write"] += 1
        calls["refused"] += int(request["status"] == 409 or (request["status"] == 429 and not request.get("throttled")))
        calls["lost"] += int(bool(request.get("lost")))
    sandbox.release(name)
    return calls, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description="ARM calls per example to Ready, with conflicts off and on")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long every operation runs")
    args = parser.parse_args()
    rows = per_example(
        "bench-conflicts",
        EXAMPLES,
        lambda sandbox, example: [measure(sandbox, example, args.seconds, on) for on in (False, True)],
    )
    print(f"operations take {args.seconds:g} s; ARM calls to Ready")
    print(
        f"{'example':38} {'off: GET':>9} {'writes':>7} {'seconds':>8} | "
        f"{'on: GET':>8} {'writes':>7} {'refused':>8} {'lost':>5} {'seconds':>8}"
    )
    for example, ((off, off_seconds), (on, on_seconds)) in rows:
        print(
            f"{example:38} {off['GET']:>9} {off['write']:>7} {off_seconds:>8.1f} | "
            f"{on['GET']:>8} {on['write']:>7} {on['refused']:>8} {on['lost']:>5} {on_seconds:>8.1f}"
        )
    print("(refused: 409 AnotherOperationInProgress/Conflict or 429 RetryableError; lost: rule writes Azure dropped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
