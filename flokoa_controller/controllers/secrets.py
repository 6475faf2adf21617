"""Resolve the Secrets a ModelProvider references, and compute its ``secretHash``.

Every reference names a Secret *in the ModelProvider's own namespace*: there is no namespace
field, so a reference can never reach into another namespace.

The informer cache keeps Secrets only as per-key SHA-256 digests (see
``controllers.secret_digest.secret_to_digest``, the Secrets informer's transform). That is
enough for two things, done on every reconcile without any API call:

- find missing Secrets and keys (``SecretNotFound``, ``SecretKeyNotFound``) and empty values;
- compute ``secretHash``: one SHA-256 over, for each reference in a canonical order, its role,
  Secret name, key, the Secret's UID and the value's digest (or a marker saying it is
  missing). It changes exactly when something the provider uses changes: a referenced value,
  a reference, a key appearing or disappearing, the Secret being replaced by a new one (a
  new UID); and never for unrelated keys or Secrets. It is the same for every replica and
  across restarts.

  The UID is there because ``status.secretHash`` is readable by everyone who may read the
  ModelProvider, a wider audience than the Secret's readers. Without it, the hash of a weak
  key (``changeme``) could be confirmed offline from the public names and keys alone; with
  it, a guess can only be tested by someone who can read the Secret's metadata.

The values themselves are read from the API server (:func:`fetch_values`) only when a probe
is about to run, validated (:func:`validate_values`), handed to the probe and dropped. They
live in a :class:`SecretValues`, whose ``repr`` never shows them, and no message built here
ever contains a value: messages name the Secret and the key only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from flokoa_controller.controllers.conditions import Reason
from flokoa_controller.controllers.secret_digest import DIGEST_FIELD, data_digests, secret_data
from flokoa_controller.runtime.meta import uid_of

__all__ = [
    "EMPTY_DIGEST",
    "CachedSecrets",
    "Role",
    "SecretKeyRef",
    "SecretProblem",
    "SecretReadDenied",
    "SecretValues",
    "ServiceAccountKey",
    "ValidatedSecrets",
    "fetch_values",
    "resolve_from_cache",
    "secret_hash",
    "validate_values",
]

EMPTY_DIGEST: Final = hashlib.sha256(b"").hexdigest()
"""Digest of an empty value: an empty key is detected from the cache without a read."""

_MISSING_SECRET: Final = "<secret-not-found>"
_MISSING_KEY: Final = "<key-not-found>"


class Role(StrEnum):
    """What a referenced value is used for."""

    API_KEY = "apiKey"
    """The API key (``spec.apiKeySecretRef``)."""
    SERVICE_ACCOUNT_KEY = "serviceAccountKey"
    """A Google service-account JSON key (``spec.google.vertex.serviceAccountKeySecretRef``)."""
    ACCESS_KEY_ID = "accessKeyID"
    """AWS access key ID (``spec.bedrock.credentialsSecretRef.accessKeyIDKey``)."""
    SECRET_ACCESS_KEY = "secretAccessKey"
    """AWS secret access key (``spec.bedrock.credentialsSecretRef.secretAccessKeyKey``)."""
    SESSION_TOKEN = "sessionToken"
    """AWS session token (``spec.bedrock.credentialsSecretRef.sessionTokenKey``)."""
    CA_BUNDLE = "caBundle"
    """PEM CA certificates (``spec.tls.caSecretRef``)."""


@dataclass(frozen=True, slots=True)
class SecretKeyRef:
    """One referenced key of one Secret (in the referencing object's namespace)."""

    role: Role
    """What the value is used for."""
    name: str
    """Secret name."""
    key: str
    """Key within the Secret's ``data``."""
    field: str
    """Spec field holding the reference, for messages (e.g. ``spec.apiKeySecretRef``)."""


@dataclass(frozen=True, slots=True)
class SecretProblem:
    """Why the referenced Secrets cannot be used: a condition reason and a safe message."""

    reason: str
    """``SecretNotFound``, ``SecretKeyNotFound``, ``InvalidSecret``, ``InvalidCACertificate``
    or ``SecretAccessDenied``."""
    message: str
    """Names the Secret, key and field; never contains a value."""
    ref: SecretKeyRef
    """The reference at fault."""


@dataclass(frozen=True, slots=True)
class CachedSecrets:
    """What the digest cache says about the references: the hash and the first problem."""

    secret_hash: str
    """``status.secretHash`` (see the module docstring)."""
    problem: SecretProblem | None
    """The first missing Secret/key or empty value, in reference order; ``None`` if none."""


class SecretValues:
    """The raw bytes of the referenced values, keyed by role. Never printed.

    Hold an instance only for the duration of one probe; do not store it on long-lived
    objects.
    """

    __slots__ = ("_values", "secret_hash")

    def __init__(self, values: Mapping[Role, bytes], secret_hash: str) -> None:
        """Wrap ``values`` and the ``secretHash`` computed from exactly these bytes."""
        self._values = dict(values)
        self.secret_hash = secret_hash

    def get(self, role: Role) -> bytes | None:
        """Return the value used as ``role`` (``None`` if not referenced)."""
        return self._values.get(role)

    def clear(self) -> None:
        """Drop the values (call once they have been validated)."""
        self._values.clear()

    def __repr__(self) -> str:
        """Show the roles only."""
        return f"SecretValues(roles={sorted(self._values)}, values=<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """A validated Google service-account key (the parsed JSON, for google-auth)."""

    info: Mapping[str, Any] = field(repr=False)
    """The key file's JSON object."""


@dataclass(frozen=True, slots=True)
class ValidatedSecrets:
    """Validated, decoded values ready for the probe target. ``repr`` hides the values."""

    secret_hash: str
    """``secretHash`` of the bytes these values come from."""
    api_key: str | None = field(default=None, repr=False)
    """The API key, surrounding whitespace removed."""
    service_account: ServiceAccountKey | None = field(default=None, repr=False)
    """The Vertex service-account key."""
    access_key_id: str | None = field(default=None, repr=False)
    """AWS access key ID."""
    secret_access_key: str | None = field(default=None, repr=False)
    """AWS secret access key."""
    session_token: str | None = field(default=None, repr=False)
    """AWS session token."""
    ca_pem: bytes | None = field(default=None, repr=False)
    """The PEM CA bundle (public material, but kept out of reprs all the same)."""


def _describe(namespace: str | None, ref: SecretKeyRef) -> str:
    secret = f"{namespace}/{ref.name}" if namespace else ref.name
    return f'Secret "{secret}" key "{ref.key}" (referenced by {ref.field})'


def secret_hash(entries: Iterable[tuple[SecretKeyRef, str, str]]) -> str:
    """SHA-256 over ``(role, name, key, secret UID, digest)`` in a canonical (sorted) order.

    ``entries`` are ``(reference, UID of the Secret or "", value digest or missing marker)``.
    """
    h = hashlib.sha256()
    for ref, uid, digest in sorted(entries, key=lambda e: (e[0].role.value, e[0].name, e[0].key)):
        for part in (ref.role.value, ref.name, ref.key, uid, digest):
            h.update(part.encode())
            h.update(b"\0")
        h.update(b"\n")
    return h.hexdigest()


def resolve_from_cache(
    namespace: str,
    refs: Sequence[SecretKeyRef],
    lookup: Callable[[str, str], Mapping[str, Any] | None],
) -> CachedSecrets:
    """Check ``refs`` against the digest cache and compute the ``secretHash``.

    ``lookup(namespace, name)`` returns the cached (digested) Secret or ``None``. Only the
    given namespace is ever consulted.
    """
    entries: list[tuple[SecretKeyRef, str, str]] = []
    problem: SecretProblem | None = None
    for ref in refs:
        cached = lookup(namespace, ref.name)
        digests = cached.get(DIGEST_FIELD) if cached is not None else None
        if cached is None or not isinstance(digests, Mapping):
            entries.append((ref, "", _MISSING_SECRET))
            problem = problem or SecretProblem(
                Reason.SECRET_NOT_FOUND,
                f'Secret "{namespace}/{ref.name}" (referenced by {ref.field}) not found',
                ref,
            )
            continue
        uid = uid_of(cached)
        digest = digests.get(ref.key)
        if not isinstance(digest, str):
            entries.append((ref, uid, _MISSING_KEY))
            problem = problem or SecretProblem(
                Reason.SECRET_KEY_NOT_FOUND,
                f'Secret "{namespace}/{ref.name}" has no key "{ref.key}" '
                f"(referenced by {ref.field})",
                ref,
            )
            continue
        entries.append((ref, uid, digest))
        if digest == EMPTY_DIGEST:
            problem = problem or _invalid(namespace, ref, "is empty")
    return CachedSecrets(secret_hash(entries), problem)


def _invalid(namespace: str | None, ref: SecretKeyRef, what: str) -> SecretProblem:
    reason = Reason.INVALID_CA_CERTIFICATE if ref.role is Role.CA_BUNDLE else Reason.INVALID_SECRET
    return SecretProblem(reason, f"{_describe(namespace, ref)} {what}", ref)


class SecretReadDenied(Exception):
    """Raised by a ``get`` callable given to :func:`fetch_values` when reading is forbidden."""


async def fetch_values(
    namespace: str,
    refs: Sequence[SecretKeyRef],
    get: Callable[[str, str], Awaitable[Mapping[str, Any] | None]],
) -> SecretValues | SecretProblem:
    """Read the referenced Secrets from the API server (each at most once).

    ``get(namespace, name)`` returns the Secret as the API server sent it, ``None`` when it
    does not exist, and raises :class:`SecretReadDenied` when access is forbidden (other
    errors propagate: the reconcile is retried). The ``secretHash`` of the result is computed
    from exactly the bytes read, with the same digests the cache uses.
    """
    secrets: dict[str, Mapping[str, Any] | None] = {}
    values: dict[Role, bytes] = {}
    entries: list[tuple[SecretKeyRef, str, str]] = []
    for ref in refs:
        if ref.name not in secrets:
            try:
                secrets[ref.name] = await get(namespace, ref.name)
            except SecretReadDenied:
                return SecretProblem(
                    Reason.SECRET_ACCESS_DENIED,
                    f'reading Secret "{namespace}/{ref.name}" (referenced by {ref.field}) is '
                    "forbidden: grant the controller get on it",
                    ref,
                )
        secret = secrets[ref.name]
        if secret is None:
            return SecretProblem(
                Reason.SECRET_NOT_FOUND,
                f'Secret "{namespace}/{ref.name}" (referenced by {ref.field}) not found',
                ref,
            )
        data = secret_data(secret)
        if ref.key not in data:
            return SecretProblem(
                Reason.SECRET_KEY_NOT_FOUND,
                f'Secret "{namespace}/{ref.name}" has no key "{ref.key}" '
                f"(referenced by {ref.field})",
                ref,
            )
        raw = data[ref.key]
        entries.append((ref, uid_of(secret), data_digests({ref.key: raw})[ref.key]))
        decoded = _decode(raw)
        if decoded is None:
            return _invalid(namespace, ref, "is not valid base64")
        values[ref.role] = decoded
    return SecretValues(values, secret_hash(entries))


def _decode(raw: object) -> bytes | None:
    if not isinstance(raw, str):
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None


def _token(namespace: str | None, ref: SecretKeyRef, raw: bytes) -> str | SecretProblem:
    """A credential sent in an HTTP header: printable ASCII without blanks inside.

    Surrounding whitespace (a trailing newline from ``--from-file``) is removed.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _invalid(namespace, ref, "is not UTF-8 text")
    text = text.strip()
    if not text:
        return _invalid(namespace, ref, "is empty or only whitespace")
    if "\r" in text or "\n" in text:
        return _invalid(namespace, ref, "contains a line break")
    if any(ch.isspace() for ch in text):
        return _invalid(namespace, ref, "contains whitespace")
    if not all(0x21 <= ord(ch) <= 0x7E for ch in text):
        return _invalid(namespace, ref, "contains non-printable or non-ASCII characters")
    return text


_SA_REQUIRED = ("client_email", "private_key", "token_uri")


def _service_account(
    namespace: str | None, ref: SecretKeyRef, raw: bytes
) -> ServiceAccountKey | SecretProblem:
    try:
        info = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting: RecursionError
        return _invalid(namespace, ref, "is not a JSON service-account key")
    if not isinstance(info, dict):
        return _invalid(namespace, ref, "is not a JSON object")
    if info.get("type") != "service_account":
        return _invalid(
            namespace, ref, 'is not a service-account key (type must be "service_account")'
        )
    for name in _SA_REQUIRED:
        if not isinstance(info.get(name), str) or not info[name].strip():
            return _invalid(namespace, ref, f'lacks the "{name}" field')
    try:
        serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    except (ValueError, TypeError):
        return _invalid(namespace, ref, "holds a private_key that is not an unencrypted PEM key")
    except Exception:  # cryptography raises UnsupportedAlgorithm and friends
        return _invalid(namespace, ref, "holds a private_key that cannot be loaded")
    return ServiceAccountKey(info)


def _ca_bundle(namespace: str | None, ref: SecretKeyRef, raw: bytes) -> bytes | SecretProblem:
    if not raw.strip():
        return _invalid(namespace, ref, "is empty")
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError:
        return _invalid(namespace, ref, "is not a PEM bundle of X.509 certificates")
    if not certs:
        return _invalid(namespace, ref, "holds no certificate")
    return raw


def validate_values(
    namespace: str | None, refs: Sequence[SecretKeyRef], values: SecretValues
) -> ValidatedSecrets | SecretProblem:
    """Decode and check every value for its role; return them ready for the probe target.

    Problems: ``InvalidSecret`` (empty, whitespace, not UTF-8, line breaks or blanks in a
    header credential, service-account JSON unparsable / not ``service_account`` / missing
    fields / bad private key) and ``InvalidCACertificate`` (not a PEM certificate bundle).
    """
    out: dict[str, Any] = {}
    for ref in refs:
        raw = values.get(ref.role)
        if raw is None:  # pragma: no cover - fetch_values fills every referenced role
            return _invalid(namespace, ref, "was not read")
        if ref.role is Role.CA_BUNDLE:
            ca = _ca_bundle(namespace, ref, raw)
            if isinstance(ca, SecretProblem):
                return ca
            out["ca_pem"] = ca
        elif ref.role is Role.SERVICE_ACCOUNT_KEY:
            sa = _service_account(namespace, ref, raw)
            if isinstance(sa, SecretProblem):
                return sa
            out["service_account"] = sa
        else:
            token = _token(namespace, ref, raw)
            if isinstance(token, SecretProblem):
                return token
            out[_TOKEN_FIELDS[ref.role]] = token
    return ValidatedSecrets(secret_hash=values.secret_hash, **out)


_TOKEN_FIELDS: Final = {
    Role.API_KEY: "api_key",
    Role.ACCESS_KEY_ID: "access_key_id",
    Role.SECRET_ACCESS_KEY: "secret_access_key",
    Role.SESSION_TOKEN: "session_token",
}
