"""The ``flokoa-controller`` command: ``run``, and ``dev`` and ``envtest`` when installed.

Each subcommand's flags live next to the code they configure; this module only dispatches.
``dev`` (the operator on an embedded cluster) and ``envtest`` (that cluster's API server
alone) belong to the separate ``flokoa-envtest`` distribution: this is the one operator
module that may import it, and only here, so the operator's wheel and image run without it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

ENVTEST_MISSING = (
    "needs the flokoa-envtest distribution, which is not installed: "
    "pip install ./envtest (from a checkout; make dev installs it)"
)
"""The one-line hint of ``dev`` and ``envtest`` in an install without ``flokoa-envtest``."""


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
    _add_envtest_commands(sub)
    return parser


def _add_envtest_commands(sub: Any) -> None:
    """``dev`` and ``envtest`` from ``flokoa-envtest``, or stand-ins that say in one line why
    they cannot run: envtest is not installed, or is but cannot be imported (a broken
    install must not take ``run`` down with it)."""
    try:
        from flokoa_envtest import cli as envtest_cli
    except ImportError as e:
        missing = isinstance(e, ModuleNotFoundError) and e.name == "flokoa_envtest"
        why = (
            ENVTEST_MISSING
            if missing
            else f"flokoa-envtest cannot be imported: {' '.join(str(e).split())}"
        )
        for name, what in (
            ("dev", "run the operator on an embedded cluster with fake providers"),
            ("envtest", "run the in-memory Kubernetes API server"),
        ):
            p: argparse.ArgumentParser = sub.add_parser(name, help=f"{what} (needs flokoa-envtest)")
            p.set_defaults(handler=_envtest_missing, why=why)
        return
    envtest_cli.add_operator_commands(sub)


def _envtest_missing(args: argparse.Namespace) -> int:
    print(f"flokoa-controller {args.command}: {args.why}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    # The stand-in of a command whose distribution is missing takes any arguments.
    args, extra = parser.parse_known_args(argv)
    if extra and args.handler is not _envtest_missing:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
