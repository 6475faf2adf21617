"""The ``flokoa-controller`` command: ``run``, ``dev`` and ``envtest``.

Each subcommand's flags live next to the code they configure; this module only dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="flokoa-controller",
        description="Kubernetes operator for agent.flokoa.ai ModelProvider and Model resources.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from flokoa_controller.controllers import setup as controllers_setup
    from flokoa_controller.runtime import command as run_command

    run_command.add_run_parser(sub, controllers_setup)

    from flokoa_controller import dev

    dev.add_parser(sub)

    from flokoa_controller.envtest import cli as envtest_cli

    envtest_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
