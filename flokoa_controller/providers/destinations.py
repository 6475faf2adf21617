"""The destination policy: which hosts and addresses a probe may connect to.

Every probe leaves from the operator pod, with the operator's network position, on behalf of
a namespace user who picks the URL. The administrator's `DestinationPolicy` decides which
destinations that user may make the operator reach:

- `deny`: CIDRs and host patterns refused. Always includes `DEFAULT_DENIED_DESTINATIONS`
  (loopback, link-local, `0.0.0.0/8` and `::`, the cloud metadata addresses and
  `metadata.google.internal`) and the Kubernetes API server's own addresses; the
  `--deny-destinations` flag adds to them. Private ranges stay allowed (in-cluster gateways
  are a real use).
- `allow`: CIDRs and host patterns that are allowed even when a deny entry matches
  (`--allow-destinations`; it takes precedence), e.g. `127.0.0.0/8` for
  `flokoa-controller dev` and the tests, `10.20.0.0/16` for a gateway subnet.

Syntax of one entry: a CIDR (`10.0.0.0/8`, `fd00::/8`), an address (`169.254.169.254`, a
/32 or /128), an exact host name (`metadata.google.internal`) or a suffix pattern
(`*.internal`: any name ending in `.internal`). Names compare case-insensitively, a trailing
dot ignored.

A destination (host name or address literal, and the addresses it resolves to) is allowed
when both hold:

1. its name is allowed: it matches no deny pattern, or it matches an allow pattern;
2. every address it resolves to is allowed: an address is refused when it (or the IPv4
   address embedded in it: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`,
   NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) lies in a deny CIDR and neither lies in an allow
   CIDR. Legacy numeric forms (`2130706433`, `0x7f.1`, `127.1`) are read the way the C
   library reads them, so they cannot slip past.

An allowed *name* does not vouch for its addresses (a name's answers can change, the
address connected to is what counts): a gateway name that resolves into a denied range
needs that address or CIDR in `--allow-destinations` too.

Where it is enforced (all inside `ProbeHTTP`'s aiohttp session, so nothing that uses that
session can bypass it):

- `PolicyResolver` (the connector's resolver) checks every name lookup on the *resolved*
  addresses, at connect time: DNS rebinding gets no second answer past it, and a redirect,
  were one ever followed, would be resolved through it too;
- `policy_socket_factory` (the connector's socket factory) checks the address of every
  socket before it connects, IP literals included — the last line, where not one byte has
  been sent;
- `policy_trace_config` checks each request's URL before anything is sent: host patterns and
  IP literals, and, when the request goes through a proxy from the environment, the CONNECT
  target's name resolved locally (the proxy is the administrator's and is not checked; it
  may resolve the name differently — a name that does not resolve locally is judged by the
  host patterns alone).

`DestinationPolicy.check()` (`ProbeHTTP.check_destination()`) is the same check for code
that opens connections elsewhere. The administrator's own endpoints — the proxy, and those
`trusted_endpoint()` names (the metadata server of the operator's own cloud identity, an STS
endpoint from the environment) — are not judged; nothing from a spec or a Secret may be.
A refusal raises `DestinationNotAllowed`, which the probes report as `DestinationNotAllowed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DENY_FLAG = "--deny-destinations"
"""The flag that adds to the denied destinations (named in refusal messages)."""
ALLOW_FLAG = "--allow-destinations"
"""The flag that allows destinations despite a deny entry (named in refusal messages)."""

DEFAULT_DENIED_DESTINATIONS: tuple[str, ...] = (
    "127.0.0.0/8",
    "::1/128",
    "169.254.0.0/16",
    "fe80::/10",
    "0.0.0.0/8",
    "::/128",
    "169.254.169.254/32",
    "fd00:ec2::254/128",
    "fd00:ec2::23/128",
    "fd20:ce::254/128",
    "100.100.100.200/32",
    "168.63.129.16/32",
    "metadata.google.internal",
)
"""Denied whatever the flags say (but for `--allow-destinations`): loopback, link-local,
`0.0.0.0/8` and `::` (both reach the local host on Linux), and the cloud metadata services
(AWS/GCP/Azure/OCI/OpenStack `169.254.169.254`, AWS IPv6 IMDS `fd00:ec2::254` and EKS Pod
Identity agent `fd00:ec2::23` — over IPv4 both are link-local already —, GCP's IPv6
metadata server `fd20:ce::254`, Alibaba `100.100.100.200`, Azure's WireServer
`168.63.129.16`, GCP's `metadata.google.internal`)."""

KUBERNETES_API_REASON = "the Kubernetes API server"
"""What refusal messages call a deny entry derived from the API server's addresses."""

_NUMERIC = frozenset("0123456789abcdefx.")
"""The characters of an IPv4 address in any numeric form the C library reads."""
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class DestinationNotAllowed(Exception):
    """A connection the destination policy refuses; `message` says which rule and flag."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(message)
        self.host = host
        self.message = message


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a deny or allow list: a network or a host pattern, and where it came from."""

    network: IPNetwork | None = None
    """The CIDR, or None for a host pattern."""
    host: str = ""
    """An exact name, or `.suffix` for a `*.suffix` pattern ('' for a network)."""
    source: str = ""
    """Why the entry exists (the flag, or `KUBERNETES_API_REASON`)."""

    def __str__(self) -> str:
        if self.network is not None:
            return str(self.network)
        return f"*{self.host}" if self.host.startswith(".") else self.host

    def matches_name(self, name: str) -> bool:
        """Whether host name `name` (normalized) matches this pattern."""
        if not self.host:
            return False
        if self.host.startswith("."):
            return name.endswith(self.host) and len(name) > len(self.host)
        return name == self.host


def normalize_host(host: str) -> str:
    """`host` lower-cased, without brackets and without a trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def parse_entry(text: str, source: str = "") -> Entry:
    """One list entry (raises `ValueError` naming the entry when it is neither a CIDR, an
    address, a host name nor a `*.suffix` pattern)."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty destination entry")
    try:
        return Entry(network=ipaddress.ip_network(raw.strip("[]"), strict=False), source=source)
    except ValueError:
        pass
    name = normalize_host(raw)
    suffix = name.startswith("*.")
    label_part = name[2:] if suffix else name
    labels = label_part.split(".")
    if not label_part or not all(
        label and len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)
        for label in labels
    ):
        raise ValueError(f"not a CIDR, address or host pattern: {raw!r}")
    if not suffix and _legacy_ipv4(name) is not None:
        raise ValueError(f"not a canonical address: {raw!r}")
    return Entry(host="." + label_part if suffix else name, source=source)


def parse_entries(text: str | Iterable[str], source: str = "") -> tuple[Entry, ...]:
    """A comma-separated list (or an iterable of entries) of destinations."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(parse_entry(item, source) for item in items if item.strip())


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address the C library reads in a numeric host (`2130706433`, `0x7f.1`), if any."""
    if not host or not all(c in "0123456789abcdefx." for c in host):
        return None
    if not any(c.isdigit() for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def parse_address(host: str) -> IPAddress | None:
    """The address `host` denotes when it is an IP literal in any encoding, else None."""
    name = normalize_host(host)
    name = name.partition("%")[0]  # an IPv6 zone id does not change the address
    if ":" not in name and not _NUMERIC.issuperset(name):
        return None  # a host name (the common case: no exception raised to find out)
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return _legacy_ipv4(name)


def _forms(address: IPAddress) -> list[IPAddress]:
    """`address` and every IPv4 address embedded in it."""
    forms: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            forms.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            forms.append(address.sixtofour)
        if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
            forms.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.teredo is not None:
            forms.append(address.teredo[1])
    return forms


def _in(address: IPAddress, entries: Iterable[Entry]) -> Entry | None:
    for entry in entries:
        network = entry.network
        if network is not None and address.version == network.version and address in network:
            return entry
    return None


@dataclass(frozen=True)
class DestinationPolicy:
    """The administrator's destination policy (see the module docstring).

    Build it with `DestinationPolicy.build(deny=..., allow=...)` (the default entries
    included) or `DestinationPolicy.default()`.
    """

    deny: tuple[Entry, ...] = ()
    """Denied networks and host patterns (the built-in ones included)."""
    allow: tuple[Entry, ...] = ()
    """Allowed networks and host patterns (take precedence over `deny`)."""
    kubernetes_hosts: tuple[str, ...] = field(default=(), compare=False)
    """Names of the Kubernetes API server to resolve and deny (see `resolve_kubernetes`)."""
    _resolved: dict[str, tuple[Entry, ...]] = field(default_factory=dict, compare=False)
    _refusals: dict[str, str | None] = field(default_factory=dict, compare=False)
    """`name_refusal` answers by host (bounded; cleared when API server names resolve)."""

    @classmethod
    def build(
        cls,
        *,
        deny: str | Iterable[str] = (),
        allow: str | Iterable[str] = (),
        kubernetes_api: Iterable[str] = (),
    ) -> DestinationPolicy:
        """The default deny entries plus `deny`, the `allow` entries, and the Kubernetes API
        server's hosts (`kubernetes_api`: addresses or names; names are resolved on the first
        check)."""
        entries = list(parse_entries(DEFAULT_DENIED_DESTINATIONS, "default"))
        entries += parse_entries(deny, DENY_FLAG)
        names: list[str] = []
        for host in kubernetes_api:
            address = parse_address(host)
            if address is not None:
                entries.append(
                    Entry(network=ipaddress.ip_network(address), source=KUBERNETES_API_REASON)
                )
            elif host:
                name = normalize_host(host)
                entries.append(Entry(host=name, source=KUBERNETES_API_REASON))
                names.append(name)
        return cls(
            deny=tuple(dict.fromkeys(entries)),
            allow=parse_entries(allow, ALLOW_FLAG),
            kubernetes_hosts=tuple(dict.fromkeys(names)),
        )

    @classmethod
    def default(cls) -> DestinationPolicy:
        """The built-in deny entries only (no allow entries, no API server addresses)."""
        return cls.build()

    @classmethod
    def allow_all(cls) -> DestinationPolicy:
        """A policy that refuses nothing (for tests of code unrelated to egress)."""
        return cls(deny=(), allow=())

    # -- name and address checks ---------------------------------------------------------

    def name_refusal(self, host: str) -> str | None:
        """Why `host` (a name or an address literal) is refused, before any lookup (None:
        not refused by its name; a name's addresses still need `address_refusal`)."""
        cache = self._refusals
        if host in cache:
            return cache[host]
        if len(cache) >= 4096:
            cache.clear()
        cache[host] = why = self._name_refusal(host)
        return why

    def _name_refusal(self, host: str) -> str | None:
        name = normalize_host(host)
        address = parse_address(name)
        if address is not None:
            return self.address_refusal(host, address)
        if any(entry.matches_name(name) for entry in self.allow):
            return None
        for entry in self.deny:
            if entry.matches_name(name):
                return self._message(name, None, entry)
        return None

    def address_refusal(self, host: str, address: IPAddress) -> str | None:
        """Why a connection to `address` (what `host` resolved to) is refused, or None."""
        forms = _forms(address)
        if any(_in(form, self.allow) for form in forms):
            return None
        for form in forms:
            entry = _in(form, self.deny) or _in(form, self._resolved_entries())
            if entry is not None:
                return self._message(normalize_host(host), address, entry)
        return None

    def _resolved_entries(self) -> Iterable[Entry]:
        for entries in self._resolved.values():
            yield from entries

    def _message(self, host: str, address: IPAddress | None, entry: Entry) -> str:
        shown = host
        if address is not None and parse_address(host) is None:
            shown = f"{host} (resolves to {address})"
        elif address is not None and host != str(address):
            shown = f"{host} ({address})"
        if entry.source == KUBERNETES_API_REASON:
            why = f"it is {KUBERNETES_API_REASON} ({DENY_FLAG})"
        elif entry.source == "default":
            why = f"{entry} is denied by default ({DENY_FLAG})"
        else:
            why = f"{entry} is denied ({DENY_FLAG})"
        return (
            f"destination {shown} is not allowed: {why}; ask the cluster administrator to add "
            f"it to {ALLOW_FLAG}"
        )

    # -- the full check ------------------------------------------------------------------

    def kubernetes_pending(self) -> bool:
        """Whether a name of the API server is still to be resolved."""
        return len(self._resolved) < len(self.kubernetes_hosts)

    async def resolve_kubernetes(self, resolver: AbstractResolver) -> None:
        """Resolve the API server's names into deny entries (once; failures retried on the
        next call)."""
        if not self.kubernetes_pending():
            return
        for name in self.kubernetes_hosts:
            if name in self._resolved:
                continue
            try:
                results = await resolver.resolve(name, 0, socket.AF_UNSPEC)
            except (TimeoutError, OSError):
                continue
            entries = []
            for result in results:
                address = parse_address(result["host"])
                if address is not None:
                    entries.append(
                        Entry(network=ipaddress.ip_network(address), source=KUBERNETES_API_REASON)
                    )
            self._resolved[name] = tuple(entries)
            self._refusals.clear()

    def check_results(self, host: str, results: Iterable[ResolveResult]) -> None:
        """Raise `DestinationNotAllowed` unless every resolved address of `host` is allowed."""
        for result in results:
            address = parse_address(result["host"])
            if address is None:
                raise DestinationNotAllowed(host, f"destination {host} resolved to no address")
            why = self.address_refusal(host, address)
            if why is not None:
                raise DestinationNotAllowed(normalize_host(host), why)

    async def check(
        self, host: str, port: int = 0, resolver: AbstractResolver | None = None
    ) -> None:
        """The whole check of a destination: its name, then (for a name) the addresses
        `resolver` gives for it. Raises `DestinationNotAllowed`; a name that does not
        resolve raises the resolver's `OSError`."""
        own = resolver is None
        active = resolver or probe_resolver()
        try:
            await self.resolve_kubernetes(active)
            why = self.name_refusal(host)
            if why is not None:
                raise DestinationNotAllowed(normalize_host(host), why)
            if parse_address(host) is not None:
                return
            results = await active.resolve(normalize_host(host), port, socket.AF_UNSPEC)
        finally:
            if own:
                await active.close()
        self.check_results(host, results)


def kubernetes_api_hosts(
    server: str | None = None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """The Kubernetes API server's hosts: the ClusterConfig `server` URL's host and the
    in-cluster `KUBERNETES_SERVICE_HOST`."""
    env = os.environ if environ is None else environ
    hosts: list[str] = []
    if server:
        try:
            host = urlsplit(server).hostname
        except ValueError:
            host = None
        if host:
            hosts.append(host)
    service_host = env.get("KUBERNETES_SERVICE_HOST")
    if service_host:
        hosts.append(service_host)
    return list(dict.fromkeys(normalize_host(h) for h in hosts))


# -- enforcement inside the aiohttp session --------------------------------------------------

VIA_PROXY: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "flokoa_probe_via_proxy", default=None
)
"""`(host, port)` of the environment's proxy the current request goes through (None: direct).

Set by `ProbeHTTP.request` around a proxied request: the sockets of that request go to the
administrator's proxy, which the policy does not judge (the CONNECT target is judged by
`policy_trace_config` instead)."""


TRUSTED_ENDPOINT: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "flokoa_probe_trusted_endpoint", default=None
)
"""`(host, port)` of an endpoint the administrator configured, which the current request
goes to (None: none); see `trusted_endpoint`."""


@contextlib.contextmanager
def trusted_endpoint(url: str) -> Iterator[None]:
    """Exempt requests to `url`'s host and port, made inside this block, from the policy.

    Only for endpoints the *administrator* configured, never one a spec or a Secret names:
    the metadata server of the operator's own identity (`GCE_METADATA_HOST`, IMDS, the EKS
    Pod Identity agent), an STS endpoint from `AWS_ENDPOINT_URL_STS`. A request inside the
    block to any other host is refused (`policy_trace_config`), so the exemption cannot
    spill over to a tenant's URL.
    """
    parsed = URL(url)
    port = parsed.port or 0
    token = TRUSTED_ENDPOINT.set((normalize_host(parsed.raw_host or ""), port))
    try:
        yield
    finally:
        TRUSTED_ENDPOINT.reset(token)


def _exempt() -> bool:
    return VIA_PROXY.get() is not None or TRUSTED_ENDPOINT.get() is not None


DNS_TIMEOUT = 2.0
"""Seconds a name server is given to answer a query of a probe's lookup, on the first try
(c-ares lengthens it on the next); with `DNS_TRIES` a name server that never answers costs
one search candidate about 5.5 s (measured against `FakeDNS`), inside a probe's deadline."""

DNS_TRIES = 2
"""Tries of each query of a probe's lookup per name server (c-ares `tries`)."""


def probe_resolver(nameservers: Sequence[str] | None = None) -> AbstractResolver:
    """The resolver probes look names up with: aiohttp's `AsyncResolver` (aiodns, c-ares).

    Every lookup is a c-ares query multiplexed on one event thread per resolver, so no
    thread is held per lookup and a black-holed name cannot starve other lookups (aiohttp's
    `ThreadedResolver` held a default-executor thread per pending `getaddrinfo`). Each
    query is bounded by `DNS_TIMEOUT` and `DNS_TRIES`. Create it inside the running loop.

    `nameservers`: `IP` or `IP:PORT` entries replacing resolv.conf's (tests).
    """
    options: dict[str, Any] = {"timeout": DNS_TIMEOUT, "tries": DNS_TRIES}
    if nameservers:
        options["nameservers"] = list(nameservers)
    return aiohttp.AsyncResolver(**options)


class PolicyResolver(AbstractResolver):
    """An aiohttp resolver that looks names up with `inner` and refuses (with
    `DestinationNotAllowed`) every name with a denied address."""

    def __init__(self, policy: DestinationPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner if inner is not None else probe_resolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve `host` and check every address it resolved to."""
        for exempt in (VIA_PROXY.get(), TRUSTED_ENDPOINT.get()):
            if exempt is not None and normalize_host(host) == normalize_host(exempt[0]):
                return await self.inner.resolve(host, port, family)  # the administrator's
        why = self.policy.name_refusal(host)
        if why is not None:
            raise DestinationNotAllowed(normalize_host(host), why)
        await self.policy.resolve_kubernetes(self.inner)
        results = await self.inner.resolve(host, port, family)
        self.policy.check_results(host, results)
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        await self.inner.close()


def policy_socket_factory(
    policy: DestinationPolicy,
) -> Callable[[tuple[Any, ...]], socket.socket]:
    """An aiohttp `socket_factory` that refuses to create a socket to a denied address
    (the sockets of a proxied request, `VIA_PROXY`, and of a request to a trusted endpoint,
    `TRUSTED_ENDPOINT`, excepted: they go to the administrator's proxy or endpoint)."""

    def factory(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _canonical, sockaddr = addr_info
        if not _exempt():
            address = parse_address(str(sockaddr[0]))
            why = (
                policy.address_refusal(str(sockaddr[0]), address)
                if address is not None
                else f"destination {sockaddr[0]} is not an address"
            )
            if why is not None:
                raise DestinationNotAllowed(str(sockaddr[0]), why)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def policy_trace_config(
    policy: DestinationPolicy,
    resolver: AbstractResolver,
    *,
    lookup_timeout: float = 10.0,
) -> aiohttp.TraceConfig:
    """An aiohttp `TraceConfig` whose request-start hook checks the request's host name
    and address literal, and — for a request through a proxy (`VIA_PROXY`) — the CONNECT
    target's locally resolved addresses, before anything is sent."""

    async def on_request_start(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        host = params.url.raw_host or ""
        trusted = TRUSTED_ENDPOINT.get()
        if trusted is not None:
            if (normalize_host(host), params.url.port or 0) == trusted:
                return  # the administrator's endpoint
            raise DestinationNotAllowed(
                normalize_host(host),
                f"destination {normalize_host(host)} is not the administrator-configured "
                f"endpoint {trusted[0]}:{trusted[1]} this request was made for",
            )
        if policy.kubernetes_pending():  # once: the API server's names
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(lookup_timeout):
                    await policy.resolve_kubernetes(resolver)
        why = policy.name_refusal(host)
        if why is not None:
            raise DestinationNotAllowed(normalize_host(host), why)
        if VIA_PROXY.get() is None or parse_address(host) is not None:
            return  # direct: PolicyResolver and the socket factory judge it at connect time
        try:
            async with asyncio.timeout(lookup_timeout):
                results = await resolver.resolve(
                    normalize_host(host), params.url.port or 0, socket.AF_UNSPEC
                )
        except (OSError, TimeoutError):
            return  # the proxy may know the name; only its host patterns applied
        policy.check_results(host, results)

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_request_start)
    config.freeze()
    return config


__all__ = [
    "ALLOW_FLAG",
    "DEFAULT_DENIED_DESTINATIONS",
    "DENY_FLAG",
    "DNS_TIMEOUT",
    "DNS_TRIES",
    "TRUSTED_ENDPOINT",
    "VIA_PROXY",
    "DestinationNotAllowed",
    "DestinationPolicy",
    "Entry",
    "PolicyResolver",
    "kubernetes_api_hosts",
    "normalize_host",
    "parse_address",
    "parse_entries",
    "parse_entry",
    "policy_socket_factory",
    "policy_trace_config",
    "probe_resolver",
    "trusted_endpoint",
]
