"""Verifying Kubernetes ServiceAccount tokens the way cloud token services do, for the fakes.

A cloud STS trusts a cluster by its OIDC issuer: it finds the issuer's keys through
``{iss}/.well-known/openid-configuration`` → ``jwks_uri`` (or keys registered with it), checks
the RS256 signature, ``iss``, ``aud``, ``exp``/``nbf``, and then decides from its own policy
which identity the token's subject may become. This module is that, shared by the fake AWS STS,
Google STS and Entra ID:

- :class:`IssuerKeys`: public keys per issuer, given in-process (``set_jwks(issuer,
  api.jwks())``) or fetched over HTTP(S) from the issuer's discovery document (``ca_pem`` to
  trust envtest's TLS CA); refetched once when a token names an unknown ``kid``.
- :func:`verify_token`: the checks above → :class:`VerifiedToken`, or :class:`TokenRejected`
  with a machine-readable ``reason`` each fake maps to its cloud's error code.
- :class:`TrustPolicy`: rules ``(issuer, subject, audience) → identity``, mutable at run time
  (tests rotate them: a subject no longer allowed is refused on its next exchange). A rule's
  subject may end in ``*`` (AWS ``StringLike``; Google attribute conditions on a prefix).
- :class:`FederatedTokenEndpoint`: the base of those three fakes (their ``keys`` and
  ``trust_policy``, and :meth:`~FederatedTokenEndpoint.verify` on their clock).

Nothing here imports the operator; verification is written against ``cryptography`` alone.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import aiohttp
import trustme
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from flokoa_envtest.fakes.server import FakeEndpoint

JSON = dict[str, Any]

REASONS = (
    "malformed",
    "algorithm",
    "issuer",
    "keys_unavailable",
    "unknown_key",
    "signature",
    "expired",
    "not_yet_valid",
    "audience",
    "subject",
)
"""Values of :attr:`TokenRejected.reason`, in the order the checks run."""


class TokenRejected(Exception):
    """A token that failed verification.

    - ``reason``: one of :data:`REASONS`.
    - ``claims``: the (unverified) claims when they could be decoded, for error messages.
    """

    def __init__(self, reason: str, message: str, claims: JSON | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.claims: JSON = claims or {}


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature, issuer, audience and lifetime were checked."""

    claims: JSON
    issuer: str
    subject: str
    audiences: tuple[str, ...]
    expires_at: int

    @property
    def namespace(self) -> str | None:
        """``kubernetes.io.namespace`` (None for a token that is no ServiceAccount token)."""
        private = self.claims.get("kubernetes.io")
        return str(private["namespace"]) if isinstance(private, dict) else None

    @property
    def service_account(self) -> str | None:
        """``kubernetes.io.serviceaccount.name`` (None for other tokens)."""
        private = self.claims.get("kubernetes.io")
        if not isinstance(private, dict) or not isinstance(private.get("serviceaccount"), dict):
            return None
        return str(private["serviceaccount"].get("name"))


def _b64decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def decode_unverified(token: str) -> tuple[JSON, JSON, bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS; ``malformed`` otherwise."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise TokenRejected("malformed", "not a compact JWT (three dot-separated parts)")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except ValueError:
        raise TokenRejected("malformed", "the JWT cannot be decoded") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenRejected("malformed", "the JWT header and payload must be JSON objects")
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), signature


def _jwks_keys(jwks: JSON) -> dict[str, rsa.RSAPublicKey]:
    """The RSA keys of a JWK Set by key ID (other entries are skipped)."""
    keys: dict[str, rsa.RSAPublicKey] = {}
    for jwk in jwks.get("keys") or []:
        key = _rsa_key(jwk) if isinstance(jwk, dict) else None
        if key is not None:
            keys[str(jwk.get("kid", ""))] = key
    return keys


def _rsa_key(jwk: JSON) -> rsa.RSAPublicKey | None:
    if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
        return None
    try:
        n = int.from_bytes(_b64decode(str(jwk["n"])), "big")
        e = int.from_bytes(_b64decode(str(jwk["e"])), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    except (KeyError, ValueError):
        return None


class IssuerKeys:
    """Signing keys per OIDC issuer: registered in-process or fetched from discovery.

    - ``ca_pem``: CA certificate(s) trusted when fetching over HTTPS (envtest's ``ca_path``
      contents); None: the system trust store.
    - ``timeout``: seconds for each discovery or JWKS request.
    """

    def __init__(self, *, ca_pem: bytes | None = None, timeout: float = 5.0) -> None:
        self.ca_pem = ca_pem
        self.timeout = timeout
        self._static: dict[str, dict[str, rsa.RSAPublicKey]] = {}
        self._fetched: dict[str, dict[str, rsa.RSAPublicKey]] = {}
        self.fetches = 0
        """How many times keys were fetched over HTTP (discovery + JWKS counts once)."""

    def set_jwks(self, issuer: str, jwks: JSON) -> None:
        """Trust these keys for ``issuer`` (no HTTP fetch for it from now on)."""
        self._static[issuer] = _jwks_keys(jwks)

    def forget(self, issuer: str) -> None:
        """Drop registered and cached keys of ``issuer``."""
        self._static.pop(issuer, None)
        self._fetched.pop(issuer, None)

    def _ssl(self) -> ssl.SSLContext | bool:
        if self.ca_pem is None:
            return True
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    async def _get_json(self, session: aiohttp.ClientSession, url: str) -> JSON:
        async with session.get(url, allow_redirects=False, ssl=self._ssl()) as resp:
            if resp.status != 200:
                raise TokenRejected("keys_unavailable", f"{url} answered {resp.status}")
            data = json.loads(await resp.read())
            if not isinstance(data, dict):
                raise TokenRejected("keys_unavailable", f"{url} did not answer a JSON object")
            return data

    async def _fetch(self, issuer: str) -> dict[str, rsa.RSAPublicKey]:
        self.fetches += 1
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                config = await self._get_json(
                    session, issuer.rstrip("/") + "/.well-known/openid-configuration"
                )
                if config.get("issuer") != issuer:
                    raise TokenRejected(
                        "keys_unavailable", "the discovery document names another issuer"
                    )
                jwks = await self._get_json(session, str(config.get("jwks_uri", "")))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TokenRejected(
                "keys_unavailable", f"cannot fetch the keys of {issuer}: {type(exc).__name__}"
            ) from None
        keys = _jwks_keys(jwks)
        self._fetched[issuer] = keys
        return keys

    async def key(self, issuer: str, kid: str) -> rsa.RSAPublicKey:
        """The key ``kid`` of ``issuer`` (``unknown_key``/``keys_unavailable`` otherwise)."""
        if issuer in self._static:
            found = self._static[issuer].get(kid)
            if found is None:
                raise TokenRejected("unknown_key", f"no key {kid!r} is registered for {issuer}")
            return found
        cached = self._fetched.get(issuer)
        if cached is not None and kid in cached:
            return cached[kid]
        keys = await self._fetch(issuer)  # unknown kid: the issuer may have rotated
        if kid not in keys:
            raise TokenRejected("unknown_key", f"the keys of {issuer} have no {kid!r}")
        return keys[kid]


async def verify_token(
    token: str,
    keys: IssuerKeys,
    *,
    issuers: Collection[str],
    audiences: Collection[str] | None,
    clock: Callable[[], float] = time.time,
    leeway: float = 0.0,
) -> VerifiedToken:
    """Check ``token`` as a cloud token service does; raise :class:`TokenRejected` if it fails.

    - ``issuers``: the issuers the caller trusts (``issuer`` reason otherwise, checked before
      any key is fetched).
    - ``audiences``: at least one must be in ``aud`` (None: no audience check).
    - ``clock``/``leeway``: ``exp`` must be later than now - leeway, ``nbf``/``iat`` not later
      than now + leeway.
    """
    header, claims, signing_input, signature = decode_unverified(token)
    if header.get("alg") != "RS256":
        raise TokenRejected("algorithm", f"unsupported JWT algorithm {header.get('alg')!r}", claims)
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or issuer not in issuers:
        raise TokenRejected("issuer", f"untrusted issuer {issuer!r}", claims)
    try:
        public = await keys.key(issuer, str(header.get("kid", "")))
    except TokenRejected as exc:
        exc.claims = claims
        raise
    try:
        public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise TokenRejected("signature", "the JWT signature does not verify", claims) from None
    now = clock()
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenRejected("malformed", "the JWT has no exp claim", claims)
    if exp <= now - leeway:
        raise TokenRejected("expired", "the JWT has expired", claims)
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if isinstance(value, int | float) and value > now + leeway:
            raise TokenRejected("not_yet_valid", f"the JWT's {name} is in the future", claims)
    aud = claims.get("aud")
    token_audiences = (aud,) if isinstance(aud, str) else tuple(str(a) for a in aud or ())
    if audiences is not None and not set(token_audiences) & set(audiences):
        raise TokenRejected("audience", f"audience {list(token_audiences)} not accepted", claims)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise TokenRejected("subject", "the JWT has no sub claim", claims)
    return VerifiedToken(claims, issuer, subject, token_audiences, int(exp))


@dataclass(frozen=True)
class TrustRule:
    """Tokens of ``issuer`` for ``subject`` with ``audience`` may become ``identity``.

    ``subject`` may end in ``*`` to match a prefix (``system:serviceaccount:team-a:*``).
    """

    issuer: str
    subject: str
    audience: str
    identity: str

    def matches(self, token: VerifiedToken) -> bool:
        """Whether ``token`` satisfies this rule (any identity)."""
        return (
            token.issuer == self.issuer
            and self.audience in token.audiences
            and fnmatchcase(token.subject, self.subject)
        )


class TrustPolicy:
    """Which (issuer, subject, audience) may get which identity; change it at any time."""

    def __init__(self) -> None:
        self.rules: list[TrustRule] = []

    def allow(self, issuer: str, subject: str, audience: str, identity: str) -> TrustRule:
        """Add a rule (idempotent) and return it."""
        rule = TrustRule(issuer, subject, audience, identity)
        if rule not in self.rules:
            self.rules.append(rule)
        return rule

    def revoke(
        self,
        *,
        issuer: str | None = None,
        subject: str | None = None,
        audience: str | None = None,
        identity: str | None = None,
    ) -> int:
        """Remove every rule matching all the given fields; returns how many."""

        def hit(rule: TrustRule) -> bool:
            return (
                (issuer is None or rule.issuer == issuer)
                and (subject is None or rule.subject == subject)
                and (audience is None or rule.audience == audience)
                and (identity is None or rule.identity == identity)
            )

        before = len(self.rules)
        self.rules = [r for r in self.rules if not hit(r)]
        return before - len(self.rules)

    def clear(self) -> None:
        """Remove every rule."""
        self.rules.clear()

    def identities(self, token: VerifiedToken) -> list[str]:
        """Every identity ``token`` may become (rule order, no duplicates)."""
        out: list[str] = []
        for rule in self.rules:
            if rule.matches(token) and rule.identity not in out:
                out.append(rule.identity)
        return out

    def allows(self, token: VerifiedToken, identity: str) -> bool:
        """Whether ``token`` may become ``identity``."""
        return any(r.identity == identity and r.matches(token) for r in self.rules)

    def rules_for(self, identity: str) -> list[TrustRule]:
        """The rules granting ``identity``."""
        return [r for r in self.rules if r.identity == identity]


class FederatedTokenEndpoint(FakeEndpoint):
    """A fake cloud token service that takes OIDC tokens (ServiceAccount tokens): it checks
    them with :attr:`keys` and grants the identities :attr:`trust_policy` allows."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        keys: IssuerKeys | None = None,
        tls: trustme.CA | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(tls=tls, host=host)
        self.keys = keys if keys is not None else IssuerKeys()
        """Where issuers' signing keys come from (shared with the other identity fakes)."""
        self.trust_policy = TrustPolicy()
        """Which subjects may become which identity (what an identity names: the subclass's)."""
        self._clock = clock

    async def verify(
        self, token: str, *, issuers: Collection[str], audiences: Collection[str] | None
    ) -> VerifiedToken:
        """:func:`verify_token` with this service's keys and clock."""
        return await verify_token(
            token, self.keys, issuers=issuers, audiences=audiences, clock=self._clock
        )


__all__ = [
    "REASONS",
    "FederatedTokenEndpoint",
    "IssuerKeys",
    "TokenRejected",
    "TrustPolicy",
    "TrustRule",
    "VerifiedToken",
    "decode_unverified",
    "verify_token",
]
