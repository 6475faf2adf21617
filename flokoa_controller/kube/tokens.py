"""Token sources: where the client gets the bearer token for the next request.

- `StaticTokenSource`: a fixed token (kubeconfig `token`).
- `FileTokenSource`: a file re-read when it changes (kubeconfig `tokenFile`, the in-cluster
  service-account token: bound tokens are rotated by the kubelet about hourly).
- `ExecTokenSource`: a client-go credential plugin (kubeconfig `exec`), run through the
  `kubernetes` package's `ExecProvider` and cached until its `expirationTimestamp`.
- `ConfigurationTokenSource`: whatever a `kubernetes.client.Configuration` refresh hook
  provides (legacy `auth-provider` entries such as gcp and oidc).

After a 401 the client calls `invalidate()` and asks again once: a file is then re-read and a
plugin re-run at once.

No token value appears in any `repr()` or exception text.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ConfigurationTokenSource",
    "ExecTokenSource",
    "FileTokenSource",
    "StaticTokenSource",
    "TokenError",
    "TokenSource",
]

log = logging.getLogger(__name__)


class TokenError(Exception):
    """A token could not be obtained (unreadable or empty file, failing plugin)."""


@runtime_checkable
class TokenSource(Protocol):
    """Supplies the current bearer token of a cluster identity."""

    async def token(self) -> str | None:
        """The bearer token to send now (without the "Bearer " prefix); None: send none."""
        ...

    def invalidate(self) -> None:
        """The server rejected the last token (401): fetch a fresh one on the next call."""
        ...


def _strip_bearer(value: str) -> str:
    """Drop a leading "Bearer " (any case), as the kubernetes loaders store it."""
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return value.strip()


class StaticTokenSource:
    """A token that never changes."""

    def __init__(self, token: str) -> None:
        self._token = _strip_bearer(token)

    async def token(self) -> str | None:
        """The fixed token."""
        return self._token

    def invalidate(self) -> None:
        """Nothing to refresh: the same token is used again (and the 401 stands)."""

    def __repr__(self) -> str:
        return "StaticTokenSource(<redacted>)"


class FileTokenSource:
    """A token read from a file, re-read when the file changes.

    The file is checked at most every `refresh_interval` seconds (by `stat`: a changed
    mtime, size or inode means a re-read) and at once after `invalidate()`. A read failure
    while a previous token is known keeps the previous token (the kubelet swaps the file
    atomically, but a transient error must not break every request); with no previous
    token it raises `TokenError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        refresh_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = os.fspath(path)
        """The token file."""
        self.refresh_interval = refresh_interval
        """Seconds between checks of the file for a rotated token."""
        self._clock = clock
        self._token: str | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = 0.0
        self._force = True

    async def token(self) -> str | None:
        """The current token, re-read if the file changed since the last check."""
        now = self._clock()
        if self._force or now >= self._next_check:
            self._refresh(now)
        return self._token

    def invalidate(self) -> None:
        """Re-read the file on the next call, changed or not."""
        self._force = True

    def _refresh(self, now: float) -> None:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if self._force or stamp != self._stamp or self._token is None:
                with open(self.path, encoding="utf-8") as f:
                    value = f.read().strip()
                if not value:
                    raise TokenError(f"token file {self.path} is empty")
                if self._token is not None and value != self._token:
                    log.info("bearer token re-read from %s (rotated)", self.path)
                self._token = _strip_bearer(value)
                self._stamp = stamp
        except (OSError, UnicodeDecodeError, TokenError) as exc:
            # OSError texts name the file only; a decode error would quote token bytes.
            detail = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
            if self._token is None:
                if isinstance(exc, TokenError):
                    raise
                raise TokenError(f"cannot read token file {self.path}: {detail}") from None
            log.warning(
                "cannot re-read token file %s, keeping the previous token: %s", self.path, detail
            )
        self._force = False
        self._next_check = now + self.refresh_interval

    def __repr__(self) -> str:
        return f"FileTokenSource({self.path!r}, refresh_interval={self.refresh_interval})"


class ExecRunner(Protocol):
    """What `ExecTokenSource` needs of `kubernetes.config.exec_provider.ExecProvider`."""

    def run(self, previous_response: Any = None) -> Mapping[str, Any]:
        """Run the plugin; return the ExecCredential `status`."""
        ...


def parse_timestamp(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp ("Z" or an offset)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


class ExecTokenSource:
    """A client-go credential plugin (`users[].user.exec`).

    The plugin runs in a worker thread (it is a subprocess) at most once at a time; its
    token is cached until `expirationTimestamp` minus `expiry_skew`, or, without an
    expiry, until the server rejects it (client-go's behaviour). A plugin that returns a
    client certificate instead of a token yields None (the certificate is used by TLS).
    """

    def __init__(
        self,
        runner: ExecRunner,
        *,
        token: str | None = None,
        expires_at: float | None = None,
        expiry_skew: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._runner = runner
        self._token = _strip_bearer(token) if token else None
        self._expires_at = expires_at
        self._valid = token is not None
        self.expiry_skew = expiry_skew
        """Seconds before `expirationTimestamp` at which the plugin is run again."""
        self._clock = clock
        self._lock = asyncio.Lock()
        self.runs = 0
        """How many times the plugin has been run (for diagnostics and tests)."""

    def _fresh(self) -> bool:
        if not self._valid:
            return False
        if self._expires_at is None:
            return True
        return self._clock() < self._expires_at - self.expiry_skew

    async def token(self) -> str | None:
        """The cached token, or a new one from the plugin when expired or invalidated."""
        if self._fresh():
            return self._token
        async with self._lock:
            if not self._fresh():
                await self._run()
        return self._token

    async def _run(self) -> None:
        try:
            status = await asyncio.to_thread(self._runner.run)
        except Exception as exc:
            raise TokenError(f"exec credential plugin failed: {exc}") from None
        self.runs += 1
        token = status.get("token")
        if token is not None and not isinstance(token, str):
            raise TokenError("exec credential plugin returned a non-string token")
        if token is None and "clientCertificateData" not in status:
            raise TokenError("exec credential plugin returned neither a token nor a certificate")
        self._token = token
        expiry = status.get("expirationTimestamp")
        try:
            self._expires_at = parse_timestamp(expiry) if isinstance(expiry, str) else None
        except ValueError:
            raise TokenError("exec credential plugin returned a bad expirationTimestamp") from None
        self._valid = True

    def invalidate(self) -> None:
        """Run the plugin again on the next call."""
        self._valid = False

    def __repr__(self) -> str:
        return "ExecTokenSource(<plugin>)"


class ConfigurationTokenSource:
    """The bearer token of a `kubernetes.client.Configuration`, refreshed by its hook.

    Used for kubeconfig `auth-provider` entries, whose refresh logic lives in the
    `kubernetes` package. The hook may do network I/O, so it runs in a worker thread.
    """

    def __init__(self, configuration: Any) -> None:
        self._configuration = configuration
        self._lock = asyncio.Lock()

    async def token(self) -> str | None:
        """The Configuration's current token (after its refresh hook ran)."""
        async with self._lock:
            value = await asyncio.to_thread(
                self._configuration.get_api_key_with_prefix, "BearerToken"
            )
        if not isinstance(value, str) or not value:
            return None
        return _strip_bearer(value)

    def invalidate(self) -> None:
        """Nothing to force: the hook decides from the token's expiry."""

    def __repr__(self) -> str:
        return "ConfigurationTokenSource(<kubernetes Configuration>)"
