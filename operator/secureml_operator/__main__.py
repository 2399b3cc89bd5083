"""`python -m secureml_operator`: run the operator (the container's entrypoint runs it with -OO).

Peering keeps one active replica when several run; `--standalone` skips it (tests, `make run`).
`python -m secureml_operator plan ...` runs a command for people instead (secureml_operator.cli).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys

import kopf

from secureml_operator import cli, handlers  # noqa: F401  (importing handlers registers them)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments and arguments[0] in cli.COMMANDS:
        return cli.main(arguments, prog="python -m secureml_operator")
    parser = argparse.ArgumentParser(prog="secureml-operator", description=__doc__)
    parser.add_argument("--standalone", action="store_true", help="no peering: for one local instance")
    parser.add_argument("--namespace", "-n", action="append", default=[], help="watch only these namespaces")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="liveness endpoint URL")
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority; default: random, so replicas differ and exactly one is active",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(arguments)
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if os.environ.get("SMLW_LOG_FORMAT") == "json" else kopf.LogFormat.PLAIN,
    )
    asyncio.run(
        kopf.operator(
            standalone=args.standalone,
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness,
            # Equal priorities make every replica pause; distinct ones elect the highest.
            priority=args.priority if args.priority is not None else random.randint(1, 2**30),
            # Naming the peering makes it mandatory: replicas never run unpeered in a cluster.
            peering_name=None if args.standalone else "secureml-operator",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
