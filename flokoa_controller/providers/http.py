"""`ProbeHTTP`: the one HTTP client every provider probe goes through.

It sends requests exactly as real traffic to the provider would be sent:

- TLS from `TLSSettings`: the custom CA alone; the custom CA plus the system bundle when
  `use_system_cas`; the system bundle when there is no custom CA (the OpenSSL default paths,
  which honour `SSL_CERT_FILE`/`SSL_CERT_DIR`, with certifi as a fallback when they hold
  nothing); `insecure_skip_verify` turns verification and host-name checks off.
  `ssl.SSLContext` objects are cached per `TLSSettings` (bounded), and aiohttp keys its
  connection pool by context, so repeated probes of a provider reuse warm connections.
- Proxies from the environment, read at request time: `HTTPS_PROXY`/`HTTP_PROXY` (either
  case), skipped for hosts matching `NO_PROXY` (exact names and addresses, domain suffixes,
  `*`). HTTPS goes through the proxy with CONNECT, so TLS stays end to end. The parsed
  proxy table is reused while the variables in `PROXY_VARIABLES` keep their values (a
  full scan of the environment per request is costly).
- `default_headers` on every request, under the protocol's own headers.
- `timeout` as the total budget of one request, the connect phase bounded by
  `connect_timeout` as well. Time spent queueing for the per-host bound is not counted.
- At most `max_per_host` requests in flight per namespace and destination (scheme, host,
  port): one namespace's requests that never end cannot hold a destination that others
  probe too (a shared gateway); the probe caps bound the total.
- Redirects are never followed (a redirect would carry credentials to another URL); the
  caller reports them.
- The administrator's `DestinationPolicy` (`providers.destinations`) on every connection of
  the session: its resolver, socket factory and request-start hook refuse a denied
  destination before a byte is sent (`DestinationNotAllowed`); `check_destination()` is
  the same check for code that connects elsewhere.
- Names are looked up without threads (`probe_resolver`: aiohttp's `AsyncResolver`, aiodns
  on c-ares), each query bounded by `DNS_TIMEOUT`/`DNS_TRIES`, so a tenant naming hosts
  whose DNS never answers holds no thread and cannot starve other lookups; a probe's
  timeout abandons its lookup (c-ares drops the query at its own timeout). c-ares reads
  `/etc/hosts` (`localhost` resolves to both 127.0.0.1 and ::1 even where the hosts
  file lists one: allowing loopback takes both) and `/etc/resolv.conf`
  (`nameserver`, `search`, `ndots`, `rotate`, also `LOCALDOMAIN` and `RES_OPTIONS`; its
  `timeout`/`attempts` are replaced by ours) with its own parser; unlike glibc's
  `getaddrinfo` it consults no nsswitch.conf modules (mDNS, `myhostname`, LDAP,
  systemd-resolved's NSS module): only the hosts file, then DNS.

Transport failures are raised as `TransportError` carrying the probe `Reason`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import urllib.request
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict
from yarl import URL

from flokoa_controller import __version__
from flokoa_controller.providers.destinations import (
    VIA_PROXY,
    DestinationNotAllowed,
    DestinationPolicy,
    PolicyResolver,
    policy_socket_factory,
    policy_trace_config,
    probe_resolver,
)
from flokoa_controller.providers.result import Reason
from flokoa_controller.providers.target import ProbeTarget, TLSSettings

if TYPE_CHECKING:
    from flokoa_controller.providers.identity import IdentityBroker

USER_AGENT = f"flokoa-controller/{__version__}"
"""`User-Agent` of probe requests (a `User-Agent` default header replaces it)."""


class TransportError(Exception):
    """A request that got no HTTP response; `reason` is the probe `Reason` to report."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class HTTPResponse:
    """What a probe keeps of a response: status, headers and (at most `max_body`) body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def ssl_context(tls: TLSSettings) -> ssl.SSLContext:
    """A client `SSLContext` for `tls` (raises `TransportError(InvalidCACertificate)`)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if tls.ca_pem is not None:
        text = tls.ca_pem.decode("ascii", "replace")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise TransportError(
                Reason.INVALID_CA_CERTIFICATE, "the CA bundle holds no PEM certificate"
            )
        try:
            ctx.load_verify_locations(cadata=text)
        except (ssl.SSLError, ValueError) as exc:
            raise TransportError(
                Reason.INVALID_CA_CERTIFICATE, f"the CA bundle cannot be loaded: {exc}"
            ) from None
    if tls.ca_pem is None or tls.use_system_cas:
        _load_system_cas(ctx)
    return ctx


def _load_system_cas(ctx: ssl.SSLContext) -> None:
    before = ctx.cert_store_stats()["x509_ca"]
    ctx.set_default_verify_paths()
    if ctx.cert_store_stats()["x509_ca"] > before:
        return
    paths = ssl.get_default_verify_paths()
    if paths.capath and _nonempty_dir(paths.capath):
        return  # hashed directory: loaded lazily, so not counted above
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi ships with the dependencies
        return
    ctx.load_verify_locations(cafile=certifi.where())


def _nonempty_dir(path: str) -> bool:
    try:
        return any(True for _ in os.scandir(path))
    except OSError:
        return False


def build_headers(target: ProbeTarget, protocol: Mapping[str, str]) -> CIMultiDict[str]:
    """The headers of a probe request: user agent, then `default_headers`, then `protocol`."""
    headers: CIMultiDict[str] = CIMultiDict(
        {"User-Agent": USER_AGENT, "Accept": "application/json"}
    )
    for name, value in target.default_headers.items():
        headers[name] = value
    for name, value in protocol.items():
        headers[name] = value
    return headers


PROXY_VARIABLES = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "REQUEST_METHOD",
)
"""The environment variables whose values decide the proxy table; a change to any of them
makes `ProbeHTTP` read the environment again (other spellings, e.g. `Https_Proxy`, are
honoured as read at the first request but their later changes go unnoticed)."""


def proxy_environment_fingerprint() -> tuple[str | None, ...]:
    """The values of `PROXY_VARIABLES`: equal fingerprints mean the same proxy table."""
    return tuple(os.environ.get(name) for name in PROXY_VARIABLES)


def proxy_for(
    url: URL, proxies: Mapping[str, str] | None = None
) -> tuple[URL | None, dict[str, str]]:
    """The proxy the environment asks for `url` (None: direct) and the headers for it.

    `proxies`: the table of `urllib.request.getproxies_environment()` (read now when None).
    Credentials in the proxy URL (`http://user:pass@proxy:3128`) become a
    `Proxy-Authorization: Basic` header of the CONNECT (or absolute-form) request.
    """
    table = proxies if proxies is not None else urllib.request.getproxies_environment()
    host = url.host or ""
    # On Linux `proxy_bypass` is the NO_PROXY check (what aiohttp's trust_env uses too).
    if not host or urllib.request.proxy_bypass(host, table):
        return None, {}
    raw = table.get(url.scheme)
    if not raw:
        return None, {}
    if "://" not in raw:
        raw = f"http://{raw}"
    proxy = URL(raw)
    headers: dict[str, str] = {}
    if proxy.user is not None:
        token = base64.b64encode(f"{proxy.user}:{proxy.password or ''}".encode()).decode()
        headers["Proxy-Authorization"] = f"Basic {token}"
        proxy = proxy.with_user(None)
    return proxy, headers


def _destination(url: URL) -> str:
    return f"{url.scheme}://{url.host}:{url.port}"


def _refused(exc: BaseException) -> DestinationNotAllowed | None:
    """The `DestinationNotAllowed` behind `exc` (aiohttp may wrap it), if any."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, DestinationNotAllowed):
            return current
        inner = getattr(current, "os_error", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__
        seen += 1
    return None


def _classify(exc: BaseException, url: URL, proxy: URL | None) -> TransportError:
    where = f"{url.host}:{url.port}"
    refused = _refused(exc)
    if refused is not None:
        return TransportError(Reason.DESTINATION_NOT_ALLOWED, refused.message)
    via = f" via proxy {proxy.host}:{proxy.port}" if proxy is not None else ""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return TransportError(
            Reason.TLS_VERIFICATION_FAILED,
            f"TLS certificate of {where} not trusted{via}: {exc.certificate_error}",
        )
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        inner = getattr(exc, "os_error", exc)
        return TransportError(
            Reason.TLS_VERIFICATION_FAILED, f"TLS handshake with {where} failed{via}: {inner}"
        )
    if isinstance(exc, TimeoutError):
        return TransportError(Reason.TIMEOUT, f"no response from {where}{via} in time")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return TransportError(
            Reason.UNREACHABLE,
            f"the proxy refused to tunnel to {where}{via}: HTTP {exc.status}",
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return TransportError(
            Reason.UNREACHABLE, f"cannot connect to proxy for {where}{via}: {exc.os_error}"
        )
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return TransportError(Reason.UNREACHABLE, f"DNS lookup of {url.host} failed{via}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportError(
            Reason.UNREACHABLE, f"cannot connect to {where}{via}: {exc.os_error.strerror or exc}"
        )
    if isinstance(exc, aiohttp.InvalidURL):
        return TransportError(Reason.UNREACHABLE, f"invalid URL for {where}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return TransportError(
            Reason.UNREACHABLE, f"connection to {where}{via} failed: {type(exc).__name__}"
        )
    return TransportError(Reason.UNREACHABLE, f"request to {where}{via} failed")


class ProbeHTTP:
    """Shared state of every probe: the connection pool, TLS contexts, per-host bounds and
    the identity broker (credentials from cloud identities, in memory). Create it inside the
    running event loop; `close()` it at the end.

    - `max_per_host`: requests in flight per namespace (`ProbeTarget.namespace`) and
      destination.
    - `connect_timeout`: bound on the connect (TCP + TLS + proxy CONNECT) phase.
    - `max_contexts`: `SSLContext`s kept (one per distinct TLS configuration).
    - `max_body`: bytes of a response body kept (the rest is not read).
    - `identity`: the `IdentityBroker` that obtains credentials from cloud identities and
      service-account keys (token requests go through this client too, so the destination
      policy applies to them); by default one with the operator environment's settings and
      no ServiceAccount access.
    - `policy`: the administrator's `DestinationPolicy` (default: the built-in deny list,
      which refuses loopback — tests and `dev` pass one allowing
      `DEV_ALLOWED_DESTINATIONS`, 127.0.0.0/8 and ::1/128).
    - `resolver`: the aiohttp resolver names are looked up with (default
      `probe_resolver()`: c-ares, no threads); the policy checks what it answers.
    """

    def __init__(
        self,
        *,
        max_per_host: int = 8,
        connect_timeout: float = 10.0,
        max_contexts: int = 64,
        max_body: int = 8 << 20,
        identity: IdentityBroker | None = None,
        policy: DestinationPolicy | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.max_per_host = max_per_host
        self.policy = policy if policy is not None else DestinationPolicy.default()
        self._resolver = resolver
        self.connect_timeout = connect_timeout
        self.max_body = max_body
        self._max_contexts = max_contexts
        self._contexts: OrderedDict[TLSSettings, ssl.SSLContext] = OrderedDict()
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._proxy_env: tuple[tuple[str | None, ...], dict[str, str]] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._policy_resolver: PolicyResolver | None = None
        self._own_resolver = False
        self._closed = False
        self._identity = identity

    @property
    def identity(self) -> IdentityBroker:
        """The identity broker (created on first use)."""
        if self._identity is None:
            from flokoa_controller.providers.identity import IdentityBroker

            self._identity = IdentityBroker()
        return self._identity

    async def __aenter__(self) -> ProbeHTTP:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool (idempotent)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        resolver, self._policy_resolver = self._policy_resolver, None
        if resolver is not None:
            await resolver.close()  # and the inner one
        elif self._own_resolver and self._resolver is not None:
            await self._resolver.close()
        self._contexts.clear()
        if self._identity is not None:
            self._identity.close()

    def context(self, tls: TLSSettings) -> ssl.SSLContext:
        """The cached `SSLContext` for `tls`."""
        ctx = self._contexts.get(tls)
        if ctx is None:
            ctx = ssl_context(tls)
            self._contexts[tls] = ctx
            while len(self._contexts) > self._max_contexts:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(tls)
        return ctx

    def proxies(self) -> dict[str, str]:
        """The environment's proxy table, re-read only when `PROXY_VARIABLES` change."""
        fingerprint = proxy_environment_fingerprint()
        cached = self._proxy_env
        if cached is None or cached[0] != fingerprint:
            cached = self._proxy_env = (fingerprint, urllib.request.getproxies_environment())
        return cached[1]

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("ProbeHTTP is closed")
        if self._session is None:
            inner = self._resolver if self._resolver is not None else probe_resolver()
            self._resolver = inner
            self._policy_resolver = PolicyResolver(self.policy, inner)
            connector = aiohttp.TCPConnector(
                limit=0,
                limit_per_host=0,  # bounded per namespace and destination (`_host_bound`)
                ttl_dns_cache=30,
                resolver=self._policy_resolver,
                socket_factory=policy_socket_factory(self.policy),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                auto_decompress=True,
                trace_configs=[
                    policy_trace_config(self.policy, inner, lookup_timeout=self.connect_timeout)
                ],
            )
        return self._session

    async def check_destination(self, url: str) -> None:
        """The destination policy's check of `url`'s host (its name, then the addresses it
        resolves to), for code that opens a connection outside this client's session.

        Raises `TransportError(DestinationNotAllowed)`; a name that does not resolve passes
        (the connection will fail on its own).
        """
        try:
            parsed = URL(url, encoded=True)
        except ValueError:
            raise TransportError(Reason.ENDPOINT_NOT_FOUND, "invalid URL") from None
        if self._resolver is None:
            self._resolver = probe_resolver()
            self._own_resolver = True
        try:
            await self.policy.check(parsed.raw_host or "", parsed.port or 0, self._resolver)
        except DestinationNotAllowed as exc:
            raise TransportError(Reason.DESTINATION_NOT_ALLOWED, exc.message) from None
        except (OSError, TimeoutError):
            return

    def _host_bound(self, namespace: str, url: URL) -> asyncio.Semaphore:
        key = f"{namespace}/{_destination(url)}"
        sem = self._hosts.get(key)
        if sem is None:
            if len(self._hosts) >= 1024:  # forget idle destinations
                self._hosts = {k: s for k, s in self._hosts.items() if s.locked()}
            sem = self._hosts[key] = asyncio.Semaphore(self.max_per_host)
        return sem

    async def request(
        self,
        target: ProbeTarget,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        data: bytes | None = None,
    ) -> HTTPResponse:
        """Send one request for `target` (its TLS, timeout and default headers applied).

        `url` must already be percent-encoded; it is sent exactly as given.
        Raises `TransportError` when no HTTP response arrives.
        """
        try:
            parsed = URL(url, encoded=True)
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise ValueError("not an absolute http(s) URL")
        except ValueError as exc:
            raise TransportError(Reason.ENDPOINT_NOT_FOUND, f"invalid URL: {exc}") from None
        proxy, proxy_headers = proxy_for(parsed, self.proxies())
        ctx = self.context(target.tls)
        session = self._get_session()
        timeout = aiohttp.ClientTimeout(
            total=target.timeout, connect=min(target.timeout, self.connect_timeout)
        )
        # The sockets of a proxied request go to the administrator's proxy (exempt from the
        # destination policy); its CONNECT target is checked by the request-start hook.
        via = VIA_PROXY.set((proxy.host or "", proxy.port or 0) if proxy is not None else None)
        try:
            async with (
                self._host_bound(target.namespace, parsed),
                session.request(
                    method,
                    parsed,
                    headers=build_headers(target, headers or {}),
                    data=data,
                    ssl=ctx,
                    proxy=proxy,
                    proxy_headers=proxy_headers or None,
                    timeout=timeout,
                    allow_redirects=False,
                ) as resp,
            ):
                body = await _read_body(resp, self.max_body)
                return HTTPResponse(
                    status=resp.status, headers=dict(resp.headers.items()), body=body
                )
        except TransportError:
            raise
        except DestinationNotAllowed as exc:
            raise TransportError(Reason.DESTINATION_NOT_ALLOWED, exc.message) from None
        except (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError) as exc:
            raise _classify(exc, parsed, proxy) from None
        finally:
            VIA_PROXY.reset(via)


async def _read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 << 10):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]
