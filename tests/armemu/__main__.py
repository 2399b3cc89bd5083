"""`make emulator`: run the ARM emulator in the foreground and print the environment clients need."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from armemu.emulator import Emulator
from armemu.seed import CONNECTIVITY, LITWARE, seed_litware


def main() -> int:
    parser = argparse.ArgumentParser(prog="armemu", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8443")))
    parser.add_argument("--dir", type=Path, default=Path(".cache/emulator"))
    parser.add_argument(
        "--no-seed", action="store_true", help=f"start empty (default: seed {LITWARE} and {CONNECTIVITY})"
    )
    args = parser.parse_args()
    emulator = Emulator(args.dir.resolve(), args.port)
    if not args.no_seed:
        seed_litware(emulator.state)
    print(f"ARM emulator on {emulator.endpoint} (admin API: {emulator.endpoint}/_emulator/...)")
    print("Environment for a client or the operator:")
    for key, value in emulator.env.items():
        print(f"export {key}={value}")
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
