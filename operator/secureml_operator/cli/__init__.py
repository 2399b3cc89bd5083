"""Commands for people, beside the operator: `kubectl smlw <command>` (the `kubectl-smlw` plugin
that installing the package puts on PATH) or `python -m secureml_operator <command>`."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from secureml_operator.cli import plan
from secureml_operator.cli.planview import EXIT_ERROR

COMMANDS = ("plan",)


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1: exit code 2 means "changes" (terraform plan -detailed-exitcode)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None, prog: str = "kubectl smlw") -> int:
    parser = _Parser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    plan.add_parser(commands)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
