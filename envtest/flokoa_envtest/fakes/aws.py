"""AWS credentials the fake STS issues and the fake Bedrock accepts, and SigV4 verification.

`AWSCredentialStore` holds access keys (static, or temporary with a session token and an
expiry). `verify_sigv4()` recomputes an `AWS4-HMAC-SHA256` signature from the request as
received — canonical request (URI-encoded twice, as for every service but S3), string to
sign, HMAC key derivation — independently of any AWS SDK, and compares it with the one sent.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, unquote

from aiohttp import web

ALGORITHM = "AWS4-HMAC-SHA256"
"""The only signing algorithm the fakes accept."""

MAX_CLOCK_SKEW = 15 * 60
"""Seconds a signature's `X-Amz-Date` may differ from now (AWS uses 15 minutes)."""


@dataclass
class AWSKey:
    """One access key: its secret, the session token of temporary keys, its principal."""

    access_key_id: str
    secret_access_key: str
    principal_arn: str
    session_token: str | None = None
    expires_at: float | None = None


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class AWSCredentialStore:
    """Access keys known to the fake AWS services."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.keys: dict[str, AWSKey] = {}

    def add_static(self, principal_arn: str = "arn:aws:iam::123456789012:user/probe") -> AWSKey:
        """Create a long-term key (`AKIA...`)."""
        return self._add("AKIA", principal_arn)

    def add_temporary(self, principal_arn: str, lifetime: float) -> AWSKey:
        """Create a temporary key (`ASIA...`) with a session token, valid `lifetime` s."""
        return self._add(
            "ASIA",
            principal_arn,
            session_token=_random(string.ascii_letters + string.digits + "/+=", 256),
            expires_at=self.clock() + lifetime,
        )

    def _add(
        self,
        id_prefix: str,
        principal_arn: str,
        *,
        session_token: str | None = None,
        expires_at: float | None = None,
    ) -> AWSKey:
        key = AWSKey(
            access_key_id=id_prefix + _random(string.ascii_uppercase + string.digits, 16),
            secret_access_key=_random(string.ascii_letters + string.digits + "/+", 40),
            principal_arn=principal_arn,
            session_token=session_token,
            expires_at=expires_at,
        )
        self.keys[key.access_key_id] = key
        return key

    def revoke(self, access_key_id: str) -> None:
        """Forget a key: requests signed with it are refused."""
        self.keys.pop(access_key_id, None)


@dataclass(frozen=True)
class SigV4Failure:
    """Why a request's signature was refused (AWS error code and message, HTTP 403/400)."""

    status: int
    code: str
    message: str


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _canonical_uri(raw_path: str) -> str:
    segments = [s for s in raw_path.split("/") if s and s != "."]
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        else:
            out.append(segment)
    path = "/" + "/".join(out)
    if raw_path.endswith("/") and out:
        path += "/"
    return quote(path, safe="/~")


def _canonical_query(raw_query: str) -> str:
    pairs = [
        (quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~"))
        for k, v in parse_qsl(raw_query, keep_blank_values=True)
    ]
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _parse_authorization(value: str) -> dict[str, str] | None:
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, _, val = part.strip().partition("=")
        fields[name] = val
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields


def verify_sigv4(
    request: web.Request,
    body: bytes,
    store: AWSCredentialStore,
    *,
    service: str,
    region: str | None = None,
) -> AWSKey | SigV4Failure:
    """The key that signed `request`, or why the signature is refused."""
    fields = _parse_authorization(request.headers.get("Authorization", ""))
    if fields is None:
        return SigV4Failure(
            403, "MissingAuthenticationTokenException", "Missing Authentication Token"
        )
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return SigV4Failure(403, "IncompleteSignatureException", "Malformed credential scope")
    access_key_id, date, scope_region, scope_service, _ = scope
    key = store.keys.get(access_key_id)
    if key is None:
        return SigV4Failure(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    if scope_service != service:
        return SigV4Failure(
            403,
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'.",
        )
    if region is not None and scope_region != region:
        return SigV4Failure(
            403,
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{scope_region}'.",
        )
    amz_date = request.headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return SigV4Failure(
            403, "IncompleteSignatureException", "X-Amz-Date is missing or malformed"
        )
    if amz_date[:8] != date or abs(signed_at.timestamp() - store.clock()) > MAX_CLOCK_SKEW:
        return SigV4Failure(403, "InvalidSignatureException", "Signature expired or not yet valid")
    if key.session_token is not None:
        if request.headers.get("X-Amz-Security-Token") != key.session_token:
            return SigV4Failure(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        if key.expires_at is not None and key.expires_at <= store.clock():
            return SigV4Failure(
                403,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            )
    signed_headers = fields["SignedHeaders"].split(";")
    if "host" not in signed_headers or "x-amz-date" not in signed_headers:
        return SigV4Failure(403, "InvalidSignatureException", "host and x-amz-date must be signed")
    canonical_headers = "".join(
        f"{name}:{','.join(' '.join(v.split()) for v in request.headers.getall(name, []))}\n"
        for name in signed_headers
    )
    payload_hash = request.headers.get("X-Amz-Content-SHA256") or hashlib.sha256(body).hexdigest()
    canonical_request = "\n".join(
        [
            request.method,
            _canonical_uri(request.rel_url.raw_path),
            _canonical_query(request.rel_url.raw_query_string),
            canonical_headers,
            fields["SignedHeaders"],
            payload_hash,
        ]
    )
    credential_scope = f"{date}/{scope_region}/{scope_service}/aws4_request"
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            amz_date,
            credential_scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    k_date = _sign(f"AWS4{key.secret_access_key}".encode(), date)
    k_signing = _sign(_sign(_sign(k_date, scope_region), scope_service), "aws4_request")
    expected = hmac.new(k_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"]):
        return SigV4Failure(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return key
