"""The ``flokoa-envtest`` command: ``serve`` (the in-memory API server until SIGINT/SIGTERM)
and ``dev`` (the operator on that server with fake providers, :mod:`flokoa_envtest.dev`).

The operator's own command reaches both as ``flokoa-controller envtest`` and
``flokoa-controller dev`` through :func:`add_operator_commands` when this distribution is
installed. ``serve`` needs nothing of the operator; ``dev`` imports it (and says how to
install it when it is missing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flokoa_envtest.server import APIServer
from flokoa_envtest.storage import DEFAULT_WATCH_HISTORY


def add_parser(subparsers: Any, name: str = "serve") -> argparse.ArgumentParser:
    """Register the API server's subcommand as ``name`` on ``subparsers`` (handler: :func:`run`)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help="run the in-memory Kubernetes API server",
        description=(
            "Serve an in-memory Kubernetes API server (kube-apiserver stand-in) and write a "
            "kubeconfig for kubectl and clients. Runs until SIGINT or SIGTERM."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    p.add_argument(
        "--kubeconfig-out", type=Path, default=None, help="where to write the kubeconfig"
    )
    p.add_argument(
        "--tls", action="store_true", help="serve HTTPS with a generated CA and require a token"
    )
    p.add_argument("--token", default=None, help="bearer token clients must send")
    p.add_argument(
        "--crd",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="CRD manifest file or directory to install at start (repeatable)",
    )
    p.add_argument(
        "--watch-history",
        type=int,
        default=DEFAULT_WATCH_HISTORY,
        help="changes kept per resource for watch resumption; older resourceVersions get 410",
    )
    p.add_argument(
        "--bookmark-interval",
        type=float,
        default=60.0,
        help="seconds between BOOKMARK events on watches that allow them",
    )
    p.add_argument(
        "--service-account-issuer",
        default=None,
        metavar="URL",
        help="the iss of ServiceAccount tokens and their default audience (kube-apiserver's "
        "flag of that name; default: the server's own URL, where /.well-known/"
        "openid-configuration and /openid/v1/jwks are served)",
    )
    faults = p.add_argument_group("fault injection (also at run time: POST /envtest/faults)")
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    faults.add_argument(
        "--error-rate", type=float, default=0.0, help="share of API requests that fail (0..1)"
    )
    faults.add_argument(
        "--error-code", type=int, default=503, help="HTTP status of failed requests (500, 503, 429)"
    )
    faults.add_argument(
        "--retry-after", type=int, default=1, help="Retry-After seconds sent with failures"
    )
    faults.add_argument(
        "--watch-max-seconds",
        type=float,
        default=None,
        help="end every watch this many seconds after it started",
    )
    faults.add_argument(
        "--expire-watch-resumes",
        type=int,
        default=0,
        help="answer the next N watch resumes with 410 Expired",
    )
    faults.add_argument(
        "--zombie-watches", action="store_true", help="keep watches open but send nothing"
    )
    faults.add_argument(
        "--refuse-streaming-list",
        action="store_true",
        help="answer streaming lists (sendInitialEvents) as kube-apiserver does over an etcd "
        "without watch progress notifications (an ERROR event with a 500 Status)",
    )
    faults.add_argument("--seed", type=int, default=None, help="seed of the random failures")
    p.set_defaults(handler=run)
    return p


async def serve(args: argparse.Namespace) -> None:
    """Run the server described by ``args`` until SIGINT/SIGTERM."""
    api = APIServer(
        host=args.host,
        port=args.port,
        tls=args.tls,
        token=args.token,
        crds=args.crd,
        kubeconfig_path=args.kubeconfig_out,
        watch_history=args.watch_history,
        bookmark_interval=args.bookmark_interval,
        seed=args.seed,
        service_account_issuer=args.service_account_issuer,
    )
    api.faults.latency = args.latency
    api.faults.error_rate = args.error_rate
    api.faults.error_code = args.error_code
    api.faults.retry_after = args.retry_after
    api.faults.watch_max_seconds = args.watch_max_seconds
    api.faults.expire_watch_resumes = args.expire_watch_resumes
    api.faults.zombie_watches = args.zombie_watches
    api.faults.refuse_streaming_list = args.refuse_streaming_list
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with api:
        print(f"envtest API server: {api.url}", flush=True)
        print(f"service account issuer: {api.service_account_issuer}", flush=True)
        print(f"kubeconfig: {api.kubeconfig_path}", flush=True)
        if api.token and args.token is None:
            print("bearer token: (in the kubeconfig)", flush=True)
        await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)


def run(args: argparse.Namespace) -> int:
    """The ``envtest`` subcommand: serve until interrupted; exit code 0."""
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"envtest: {exc}", file=sys.stderr)
        return 1
    return 0


OPERATOR_MISSING = (
    "the dev cluster runs the operator, which is not installed: "
    "pip install . (from a checkout; make dev installs both)"
)
"""The one-line hint of ``flokoa-envtest dev`` without the ``flokoa-controller`` distribution."""


def _add_dev_parser(subparsers: Any) -> None:
    """Register ``dev`` (with the controllers' flags), or a stand-in that says in one line
    why it cannot run: the operator is not installed, or is but cannot be imported (which
    must not take ``serve`` down with it)."""
    try:
        from flokoa_envtest import dev
    except ImportError as e:
        missing = isinstance(e, ModuleNotFoundError) and e.name == "flokoa_controller"
        why = (
            OPERATOR_MISSING
            if missing
            else f"cannot import the operator: {' '.join(str(e).split())}"
        )
        p: argparse.ArgumentParser = subparsers.add_parser(
            "dev", help="run the operator on this API server (needs flokoa-controller)"
        )
        p.set_defaults(handler=_operator_missing, why=why)
        return
    dev.add_parser(subparsers)


def _operator_missing(args: argparse.Namespace) -> int:
    print(f"flokoa-envtest dev: {args.why}", file=sys.stderr)
    return 2


def add_operator_commands(subparsers: Any) -> None:
    """Register ``envtest`` (the API server) and ``dev`` on the operator's command."""
    add_parser(subparsers, "envtest")
    _add_dev_parser(subparsers)


def build_parser() -> argparse.ArgumentParser:
    """The ``flokoa-envtest`` parser: ``serve`` and ``dev``."""
    parser = argparse.ArgumentParser(
        prog="flokoa-envtest",
        description="An in-memory stand-in for kube-apiserver, and the operator's dev cluster.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser(sub)
    _add_dev_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flokoa-envtest`` console script; returns the exit code."""
    parser = build_parser()
    # The stand-in of a command whose distribution is missing takes any arguments.
    args, extra = parser.parse_known_args(argv)
    if extra and args.handler is not _operator_missing:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    code: int = args.handler(args)
    return code
