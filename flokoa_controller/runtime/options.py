"""Manager options and the controller-runtime-style flags of ``flokoa-controller run``.

Every flag can also be set from the environment: ``--leader-elect`` is
``FLOKOA_LEADER_ELECT``, ``--metrics-bind-address`` is ``FLOKOA_METRICS_BIND_ADDRESS`` and
so on (upper case, dashes as underscores; a repeatable flag takes a comma-separated list).
A flag given on the command line wins over the environment. Durations accept Go's syntax
(``15s``, ``1m30s``, ``500ms``, ``2h``) or plain seconds (``15``, ``0.5``).

Controllers add their own flags with :func:`add_env_flag` (same naming and environment
convention) from the ``add_flags(parser)`` hook of their setup module.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flokoa_controller.runtime.eventloop import EVENT_LOOPS
from flokoa_controller.runtime.logging import LOG_FORMATS, LOG_LEVELS

__all__ = [
    "DEFAULT_LEADER_ELECTION_ID",
    "ENV_PREFIX",
    "SERVICE_ACCOUNT_NAMESPACE_FILE",
    "ManagerOptions",
    "add_env_flag",
    "add_manager_flags",
    "env_name",
    "options_from_args",
    "parse_bind_address",
    "parse_bool",
    "parse_duration",
    "pod_namespace",
]

ENV_PREFIX = "FLOKOA_"
"""Prefix of the environment variable of each flag."""
DEFAULT_LEADER_ELECTION_ID = "flokoa-controller.agent.flokoa.ai"
"""Name of the Lease used for leader election unless ``--leader-election-id`` says otherwise."""
SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
"""Where a pod finds its own namespace."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (``1m30s``, ``500ms``) or a plain number of seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds < 0:
            raise argparse.ArgumentTypeError(f"negative duration: {text!r}")
        return seconds
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(value) or not value:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r} (examples: 15s, 1m30s, 500ms, 2h, 15)"
        )
    return total


def parse_bool(text: str) -> bool:
    """A boolean from an environment variable: true/false, 1/0, yes/no, on/off."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r} (use true or false)")


def parse_bind_address(address: str) -> tuple[str, int] | None:
    """``host:port`` (Go style: ``:8080`` means every interface) → ``(host, port)``.

    ``"0"`` (or empty) disables the server: ``None``. IPv6 hosts go in brackets
    (``[::1]:8080``). Port 0 picks a free port.
    """
    text = address.strip()
    if text in ("", "0"):
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"invalid bind address {address!r} (use host:port)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port in bind address {address!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range in bind address {address!r}")
    return (host or "0.0.0.0", port)


def _bind_address(text: str) -> str:
    parse_bind_address(text)
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def pod_namespace(path: Path = SERVICE_ACCOUNT_NAMESPACE_FILE) -> str | None:
    """The namespace this pod runs in (from the service-account mount), or ``None``."""
    try:
        namespace = path.read_text().strip()
    except OSError:
        return None
    return namespace or None


def env_name(flag: str) -> str:
    """The environment variable of a flag: ``--lease-duration`` → ``FLOKOA_LEASE_DURATION``."""
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")


class _AppendFromEnv(argparse.Action):
    """``append`` whose first use on the command line replaces the environment's list; each
    comma-separated item is converted by ``item_type`` (a usage error when it raises)."""

    def __init__(self, *args: Any, item_type: Callable[[str], Any] = str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item_type = item_type

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        seen_attr = f"_{self.dest}_from_cli"
        current = (
            getattr(namespace, self.dest, None) if getattr(namespace, seen_attr, False) else []
        )
        items = list(current or [])
        for item in str(values).split(","):
            if not item:
                continue
            try:
                items.append(self.item_type(item))
            except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
                raise argparse.ArgumentError(self, f"invalid value {item!r}: {exc}") from None
        setattr(namespace, self.dest, items)
        setattr(namespace, seen_attr, True)


def add_env_flag(
    parser: argparse.ArgumentParser | Any,
    flag: str,
    *,
    help: str,
    default: Any = None,
    type: Callable[[str], Any] = str,
    repeatable: bool = False,
    boolean: bool = False,
    **kwargs: Any,
) -> None:
    """Add ``flag`` to ``parser`` (or an argument group) with its ``FLOKOA_*`` variable.

    The variable, when set, replaces ``default``; the help text gains the variable's name
    and the default. ``repeatable`` flags may be given several times (and take a
    comma-separated list in the environment); ``boolean`` flags come with ``--no-<flag>``.
    """
    variable = env_name(flag)
    raw = os.environ.get(variable)
    if boolean:
        flag_on = parse_bool(raw) if raw is not None else bool(default)
        parser.add_argument(
            flag,
            action=argparse.BooleanOptionalAction,
            default=flag_on,
            help=f"{help} [env {variable}; default: {str(flag_on).lower()}]",
            **kwargs,
        )
        return
    if repeatable:
        items = [v.strip() for v in raw.split(",") if v.strip()] if raw is not None else []
        values: list[Any] = [type(v) for v in items] if items else list(default or [])
        listed = ",".join(str(v) for v in values) or "none"
        parser.add_argument(
            flag,
            action=_AppendFromEnv,
            item_type=type,
            default=values,
            help=f"{help} Repeatable, or comma-separated. [env {variable}; default: {listed}]",
            **kwargs,
        )
        return
    value = raw if raw is not None else default
    shown = "none" if value is None else value
    parser.add_argument(
        flag,
        type=type,
        default=value,
        help=f"{help} [env {variable}; default: {shown}]",
        **kwargs,
    )


@dataclass
class ManagerOptions:
    """Everything a :class:`~flokoa_controller.runtime.manager.Manager` is configured with."""

    namespaces: tuple[str, ...] = ()
    """Namespaces whose objects are cached and reconciled; empty: all namespaces."""
    leader_elect: bool = False
    """Run controllers only while holding the leader-election Lease."""
    leader_election_id: str = DEFAULT_LEADER_ELECTION_ID
    """Name of the leader-election Lease."""
    leader_election_namespace: str | None = None
    """Namespace of the Lease; ``None``: the pod's own namespace (required off-cluster)."""
    lease_duration: float = 15.0
    """Seconds a standby waits after the last observed renewal before taking over."""
    renew_deadline: float = 10.0
    """Seconds the leader keeps trying to renew before it gives up leading."""
    retry_period: float = 2.0
    """Seconds between leader-election attempts."""
    metrics_bind_address: str = ":8080"
    """``host:port`` of the ``/metrics`` endpoint; ``"0"`` disables it."""
    health_probe_bind_address: str = ":8081"
    """``host:port`` of ``/healthz`` and ``/readyz``; ``"0"`` disables them."""
    max_concurrent_reconciles: int = 4
    """Default number of reconcile workers per controller (see ``--help`` for why 4)."""
    graceful_shutdown_timeout: float = 30.0
    """Seconds in-flight work gets to finish on shutdown before it is cancelled."""
    cache_sync_timeout: float = 120.0
    """Seconds the caches get to fill at start; exceeding it is a fatal error."""
    watch_inactivity_timeout: float | None = 90.0
    """Seconds of silence (no event, no bookmark) after which a watch is restarted."""
    streaming_list: bool = True
    """Try the streaming list (WatchList) before falling back to list+watch."""
    resync_period: float | None = None
    """Seconds between replays of each cache to its handlers; ``None``: never."""
    install_signal_handlers: bool = True
    """Turn SIGTERM/SIGINT into a graceful shutdown while the manager runs."""
    kubeconfig: str | None = None
    """Path of a kubeconfig file (else ``$KUBECONFIG``, in-cluster, ``~/.kube/config``)."""
    context: str | None = None
    """kubeconfig context to use (else the current one)."""
    event_loop: str = "auto"
    """``auto`` (uvloop when installed), ``uvloop`` or ``asyncio``."""
    log_format: str = "auto"
    """``json``, ``text`` or ``auto`` (JSON in a cluster or when not on a terminal)."""
    log_level: str = "info"
    """Least severe level logged: debug, info, warning, error."""
    args: argparse.Namespace = field(default_factory=argparse.Namespace)
    """All parsed flags, controllers' own included (for their setup hook)."""

    def validate(self) -> None:
        """Raise ``ValueError`` for inconsistent values (the CLI reports it as a usage error)."""
        if self.leader_elect:
            if not self.lease_duration > self.renew_deadline:
                raise ValueError("--lease-duration must be greater than --renew-deadline")
            if not self.renew_deadline > 1.2 * self.retry_period:
                raise ValueError("--renew-deadline must be greater than 1.2 * --retry-period")
            if not self.leader_election_id:
                raise ValueError("--leader-election-id must not be empty")
        if self.max_concurrent_reconciles < 1:
            raise ValueError("--max-concurrent-reconciles must be at least 1")
        parse_bind_address(self.metrics_bind_address)
        parse_bind_address(self.health_probe_bind_address)

    def lease_namespace(self) -> str:
        """The leader-election namespace: the flag, else the pod's namespace; else an error."""
        if self.leader_election_namespace:
            return self.leader_election_namespace
        namespace = pod_namespace()
        if namespace is None:
            raise ValueError(
                "--leader-election-namespace is required when not running in a cluster"
            )
        return namespace


_HELP_EPILOG = """\
Every flag can also be set with an environment variable: FLOKOA_ followed by the flag name in
upper case with dashes as underscores (e.g. FLOKOA_LEADER_ELECT=true,
FLOKOA_NAMESPACE=team-a,team-b). A flag on the command line wins over the environment.
Durations: Go syntax (15s, 1m30s, 500ms) or plain seconds.

Exit codes: 0 after a graceful shutdown (SIGTERM/SIGINT); 1 when leadership is lost, the
caches do not sync in time, or a component fails; 2 for invalid flags.
"""


def add_manager_flags(parser: argparse.ArgumentParser) -> None:
    """Add the manager's flags (connection, scope, leader election, servers, logging)."""
    parser.epilog = _HELP_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter

    conn = parser.add_argument_group("connection")
    add_env_flag(
        conn,
        "--kubeconfig",
        help="Path to a kubeconfig file. Unset: $KUBECONFIG, then the in-cluster service "
        "account, then ~/.kube/config.",
    )
    add_env_flag(conn, "--context", help="kubeconfig context to use (unset: the current one).")

    scope = parser.add_argument_group("scope")
    add_env_flag(
        scope,
        "--namespace",
        dest="namespaces",
        repeatable=True,
        metavar="NAMESPACE",
        help="Watch and reconcile only this namespace (unset: all namespaces).",
    )

    election = parser.add_argument_group("leader election")
    add_env_flag(
        election,
        "--leader-elect",
        boolean=True,
        default=False,
        help="Hold a coordination.k8s.io/v1 Lease so that only one replica reconciles; "
        "standbys keep warm caches and take over when the leader goes.",
    )
    add_env_flag(
        election,
        "--leader-election-id",
        default=DEFAULT_LEADER_ELECTION_ID,
        help="Name of the Lease.",
    )
    add_env_flag(
        election,
        "--leader-election-namespace",
        help="Namespace of the Lease (unset: the pod's own namespace; required outside a cluster).",
    )
    add_env_flag(
        election,
        "--lease-duration",
        type=parse_duration,
        default="15s",
        help="How long standbys wait after the last renewal they saw before taking over.",
    )
    add_env_flag(
        election,
        "--renew-deadline",
        type=parse_duration,
        default="10s",
        help="How long the leader retries renewing before it stops leading (and exits).",
    )
    add_env_flag(
        election,
        "--retry-period",
        type=parse_duration,
        default="2s",
        help="Interval between leader-election attempts.",
    )

    servers = parser.add_argument_group("servers")
    add_env_flag(
        servers,
        "--metrics-bind-address",
        type=_bind_address,
        default=":8080",
        help='Address of the Prometheus /metrics endpoint ("0" disables it).',
    )
    add_env_flag(
        servers,
        "--health-probe-bind-address",
        type=_bind_address,
        default=":8081",
        help='Address of the /healthz and /readyz probes ("0" disables them).',
    )

    work = parser.add_argument_group("reconciling and caching")
    add_env_flag(
        work,
        "--max-concurrent-reconciles",
        type=_positive_int,
        default="4",
        help="Reconcile workers per controller. One object is never reconciled twice at "
        "once whatever the value. controller-runtime defaults to 1; ours is 4 because "
        "reconciles wait on provider probes over the network, and asyncio workers are cheap.",
    )
    add_env_flag(
        work,
        "--graceful-shutdown-timeout",
        type=parse_duration,
        default="30s",
        help="On SIGTERM/SIGINT, time in-flight reconciles get to finish before they are "
        "cancelled.",
    )
    add_env_flag(
        work,
        "--cache-sync-timeout",
        type=parse_duration,
        default="2m",
        help="Time the caches get to fill at start; exceeded, the process exits with 1.",
    )
    add_env_flag(
        work,
        "--watch-inactivity-timeout",
        type=parse_duration,
        default="90s",
        help='Restart a watch that sent no event and no bookmark for this long ("0" '
        "disables the check).",
    )
    add_env_flag(
        work,
        "--streaming-list",
        boolean=True,
        default=True,
        help="Fill caches with the streaming list (watch with sendInitialEvents) when the "
        "server supports it, else list+watch.",
    )

    add_env_flag(
        work,
        "--sync-period",
        type=parse_duration,
        default="10h",
        help="Replay every cached object to the controllers this often (controller-runtime's "
        "SyncPeriod), a safety net for missed events; a converged object costs no probe and "
        'no write on a replay ("0" disables it).',
    )
    add_env_flag(
        work,
        "--event-loop",
        choices=EVENT_LOOPS,
        default="auto",
        help="auto: uvloop when installed (less CPU per request), else asyncio's own loop.",
    )

    logs = parser.add_argument_group("logging")
    add_env_flag(
        logs,
        "--log-format",
        choices=LOG_FORMATS,
        default="auto",
        help="json, text, or auto: JSON in a cluster or when stderr is not a terminal.",
    )
    add_env_flag(
        logs,
        "--log-level",
        choices=LOG_LEVELS,
        type=str.lower,
        default="info",
        help="Least severe level logged.",
    )


def options_from_args(args: argparse.Namespace) -> ManagerOptions:
    """Build (and validate) the manager's options from parsed flags."""
    inactivity: float | None = args.watch_inactivity_timeout
    options = ManagerOptions(
        namespaces=tuple(dict.fromkeys(args.namespaces or ())),
        leader_elect=args.leader_elect,
        leader_election_id=args.leader_election_id,
        leader_election_namespace=args.leader_election_namespace or None,
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
        metrics_bind_address=args.metrics_bind_address,
        health_probe_bind_address=args.health_probe_bind_address,
        max_concurrent_reconciles=args.max_concurrent_reconciles,
        graceful_shutdown_timeout=args.graceful_shutdown_timeout,
        cache_sync_timeout=args.cache_sync_timeout,
        watch_inactivity_timeout=inactivity if inactivity else None,
        streaming_list=args.streaming_list,
        kubeconfig=args.kubeconfig or None,
        context=args.context or None,
        resync_period=args.sync_period or None,
        event_loop=args.event_loop,
        log_format=args.log_format,
        log_level=args.log_level,
        args=args,
    )
    options.validate()
    return options
