"""``flokoa-controller run``: parse the flags, connect, build a manager, run it.

The runtime knows nothing of the concrete controllers: the CLI hands in a *setup plugin*,
an object (normally the module ``flokoa_controller.controllers.setup``) with

- ``add_flags(parser)`` (optional): add the controllers' own flags (use
  :func:`~flokoa_controller.runtime.options.add_env_flag` for the ``FLOKOA_*`` convention);
- ``setup_controllers(manager, options)``: create informers, indexes and controllers on the
  :class:`~flokoa_controller.runtime.manager.Manager` (``options.args`` holds every parsed
  flag); may be a coroutine function.

Exit codes: 0 after a graceful shutdown, 1 when leadership is lost, caches do not sync or a
component fails, 2 for invalid flags or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
from typing import Any

from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import ConfigError, load_config
from flokoa_controller.runtime.eventloop import loop_factory
from flokoa_controller.runtime.logging import configure_logging
from flokoa_controller.runtime.manager import CacheSyncTimeout, LeaderElectionLost, Manager
from flokoa_controller.runtime.options import ManagerOptions, add_manager_flags, options_from_args

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "add_run_parser", "run_command", "run_manager"]

log = logging.getLogger(__name__)

EXIT_OK = 0
"""Graceful shutdown."""
EXIT_FAILURE = 1
"""Leadership lost, caches not synced in time, or a component failed."""
EXIT_USAGE = 2
"""Invalid flags or configuration."""


def add_run_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], plugin: object | None
) -> argparse.ArgumentParser:
    """Register the ``run`` subcommand (with ``plugin``'s flags, if it has an ``add_flags``)."""
    parser = subparsers.add_parser(
        "run",
        help="Run the operator against a cluster.",
        description="Run the controllers against the cluster of the kubeconfig (or the "
        "in-cluster service account): caches, leader election, probes and metrics.",
    )
    add_manager_flags(parser)
    add_flags = getattr(plugin, "add_flags", None)
    if callable(add_flags):
        add_flags(parser)

    def handler(args: argparse.Namespace) -> int:
        return run_command(args, plugin)

    parser.set_defaults(handler=handler)
    return parser


def run_command(args: argparse.Namespace, plugin: object | None = None) -> int:
    """The ``run`` handler: returns the process exit code."""
    try:
        configure_logging(args.log_format, args.log_level)
        options = options_from_args(args)
        factory = loop_factory(options.event_loop)
    except ValueError as exc:
        log.error("Invalid configuration: %s", exc)
        return EXIT_USAGE
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run_manager(options, plugin))


async def run_manager(options: ManagerOptions, plugin: object | None = None) -> int:
    """Connect, set the controllers up through ``plugin``, run the manager; the exit code."""
    try:
        config = await asyncio.to_thread(load_config, options.kubeconfig, options.context)
    except ConfigError as exc:
        log.error("Cannot load the cluster configuration: %s", exc)
        return EXIT_USAGE
    async with KubeClient(config) as client:
        manager = Manager(client, options)
        try:
            if options.leader_elect:
                options.lease_namespace()  # off-cluster without the flag: a usage error
            await _setup(manager, options, plugin)
        except ValueError as exc:
            log.error("Invalid configuration: %s", exc)
            return EXIT_USAGE
        except Exception:
            log.exception("Exiting: setting the controllers up failed")
            return EXIT_FAILURE
        try:
            await manager.run()
        except (LeaderElectionLost, CacheSyncTimeout) as exc:
            log.error("Exiting: %s", exc)
            return EXIT_FAILURE
        except Exception:
            # A ValueError here is a failure at run time (exit 1), not a bad flag.
            log.exception("Exiting after a failure")
            return EXIT_FAILURE
    return EXIT_OK


async def _setup(
    manager: Manager[KubeClient], options: ManagerOptions, plugin: object | None
) -> None:
    setup: Any = getattr(plugin, "setup_controllers", None)
    if setup is None:
        log.warning("No controllers to run (no setup plugin); serving caches only")
        return
    result = setup(manager, options)
    if inspect.isawaitable(result):
        await result
