"""ServiceAccount tokens as kube-apiserver issues them: the TokenRequest API and OIDC discovery.

- ``POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`` with an
  ``authentication.k8s.io/v1`` ``TokenRequest`` → 201 and the request back with
  ``status.token`` (an RS256 JWT) and ``status.expirationTimestamp``. As kube-apiserver:
  ``spec.expirationSeconds`` defaults to 3600 and must be at least 600 (422 ``Invalid``,
  ``may not specify a duration less than 10 minutes``) and at most 2^32; ``spec.audiences``
  defaults to the API server's audiences (its issuer); a missing ServiceAccount is 404
  ``serviceaccounts "x" not found``; ``metadata.name``/``namespace`` in the body must match
  the URL; ``spec.boundObjectRef`` may name a Secret (which must exist, with that uid if given)
  or a Pod/Node (none exist here: 404); other kinds are 400.
- The token's claims are kube-apiserver's: ``iss``, ``sub``
  (``system:serviceaccount:NS:NAME``), ``aud`` (a list), ``exp``, ``iat``, ``nbf``, ``jti``
  and ``kubernetes.io`` (``namespace``, ``serviceaccount {name, uid}``, and the bound object).
  The header carries ``kid``: base64url SHA-256 of the DER public key, as kube computes it.
- ``GET /.well-known/openid-configuration`` and ``GET /openid/v1/jwks``: the issuer's discovery
  document and key set (``application/jwk-set+json``), as kube serves them.

The signing key (RSA 2048) is generated on first use, one per :class:`ServiceAccountIssuer`;
``rotate_key()`` replaces it (the JWKS keeps the old public key unless told otherwise).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from flokoa_envtest import errors
from flokoa_envtest.fielderrors import FieldError, invalid, invalid_status
from flokoa_envtest.timefmt import Clock, format_time

JSON = dict[str, Any]

TOKEN_REQUEST_GROUP = "authentication.k8s.io"
"""API group of ``TokenRequest``."""
TOKEN_REQUEST_API_VERSION = "authentication.k8s.io/v1"
"""apiVersion of ``TokenRequest``."""
DEFAULT_EXPIRATION_SECONDS = 3600
"""``spec.expirationSeconds`` when the request leaves it out (kube's defaulting)."""
MIN_EXPIRATION_SECONDS = 600
"""The shortest ``spec.expirationSeconds`` kube-apiserver accepts (10 minutes)."""
MAX_EXPIRATION_SECONDS = 1 << 32
"""The longest ``spec.expirationSeconds`` kube-apiserver accepts (2^32 s)."""
JWKS_PATH = "/openid/v1/jwks"
"""Where the issuer's key set is served."""
OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"
"""Where the issuer's OIDC discovery document is served."""
JWKS_CONTENT_TYPE = "application/jwk-set+json"
"""Media type of the key set (as kube-apiserver answers)."""
BINDABLE_KINDS = ("Pod", "Secret", "Node")
"""Kinds a token may be bound to (``spec.boundObjectRef.kind``)."""


def b64url(data: bytes) -> str:
    """Unpadded base64url (JWT encoding)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class ServiceAccountIssuer:
    """The service-account token signer of one API server.

    - ``issuer``: a function returning the issuer URL (the server's URL is known only once it
      listens).
    - ``jwks_uri``: a function returning the URL of the key set.
    - ``clock``: the time source for ``iat``/``nbf``/``exp``.
    """

    def __init__(
        self, issuer: Callable[[], str], jwks_uri: Callable[[], str], clock: Clock
    ) -> None:
        self._issuer = issuer
        self._jwks_uri = jwks_uri
        self.clock = clock
        self._key: rsa.RSAPrivateKey | None = None
        self._kid = ""
        self._retired: list[tuple[str, rsa.RSAPublicKey]] = []
        self.minted = 0
        """How many tokens were signed (in-process and over HTTP)."""

    @property
    def issuer(self) -> str:
        """The ``iss`` of every token (and the default audience)."""
        return self._issuer()

    def _signing_key(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            der = self._key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            digest = hashes.Hash(hashes.SHA256())
            digest.update(der)
            self._kid = b64url(digest.finalize())
        return self._key

    def rotate_key(self, *, keep_old: bool = True) -> str:
        """Sign with a new key from now on; returns its ``kid``.

        ``keep_old``: the old public key stays in the JWKS (tokens signed before still verify),
        as when kube-apiserver is given the old key in ``--service-account-key-file``.
        """
        if self._key is not None and keep_old:
            self._retired.append((self._kid, self._key.public_key()))
        elif not keep_old:
            self._retired.clear()
        self._key = None
        return self.key_id

    @property
    def key_id(self) -> str:
        """The ``kid`` of the signing key."""
        self._signing_key()
        return self._kid

    def jwks(self) -> JSON:
        """The public key set (``/openid/v1/jwks``)."""
        current = (self.key_id, self._signing_key().public_key())
        keys = []
        for kid, public in [current, *self._retired]:
            numbers = public.public_numbers()
            keys.append(
                {
                    "use": "sig",
                    "kty": "RSA",
                    "kid": kid,
                    "alg": "RS256",
                    "n": _int_b64(numbers.n),
                    "e": _int_b64(numbers.e),
                }
            )
        return {"keys": keys}

    def openid_configuration(self) -> JSON:
        """The OIDC discovery document (``/.well-known/openid-configuration``)."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self._jwks_uri(),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def sign(self, claims: JSON) -> str:
        """An RS256 JWT of ``claims`` signed with this issuer's key."""
        key = self._signing_key()
        header = b64url(orjson.dumps({"alg": "RS256", "kid": self._kid}))
        payload = b64url(orjson.dumps(claims))
        signing_input = f"{header}.{payload}".encode()
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        self.minted += 1
        return f"{header}.{payload}.{b64url(signature)}"

    def mint(
        self,
        service_account: JSON,
        audiences: list[str],
        expiration_seconds: int,
        bound: JSON | None = None,
    ) -> tuple[str, int]:
        """(token, ``exp``) for ``service_account`` (a stored object), as kube-apiserver signs."""
        meta = service_account.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        now = int(self.clock().timestamp())
        private: JSON = {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": str(meta.get("uid", ""))},
        }
        if bound is not None:
            private[str(bound["kind"]).lower()] = {"name": bound["name"], "uid": bound["uid"]}
        exp = now + expiration_seconds
        claims = {
            "aud": list(audiences),
            "exp": exp,
            "iat": now,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "nbf": now,
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        return self.sign(claims), exp


def _field_problems(spec: JSON) -> list[FieldError]:
    """``ValidateTokenRequest``: the expiry bounds."""
    seconds = spec["expirationSeconds"]
    problems: list[FieldError] = []
    if seconds < MIN_EXPIRATION_SECONDS:
        problems.append(
            invalid(
                "spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes"
            )
        )
    if seconds > MAX_EXPIRATION_SECONDS:
        problems.append(
            invalid(
                "spec.expirationSeconds",
                seconds,
                "may not specify a duration larger than 2^32 seconds",
            )
        )
    return problems


def _invalid(name: str, problems: list[FieldError]) -> errors.StatusError:
    return errors.StatusError(invalid_status("TokenRequest", TOKEN_REQUEST_GROUP, name, problems))


def parse_spec(body: Any) -> JSON:
    """The request's ``spec`` with kube's defaults (400 for a body that is no TokenRequest)."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request was in an unknown format")
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if api_version not in (None, "", TOKEN_REQUEST_API_VERSION) or kind not in (
        None,
        "",
        "TokenRequest",
    ):
        raise errors.bad_request(
            f"no kind {kind!r} is registered for version {api_version!r}; expected "
            f"TokenRequest in {TOKEN_REQUEST_API_VERSION}"
        )
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise errors.bad_request("spec: expected an object")
    audiences = spec.get("audiences") or []
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise errors.bad_request("spec.audiences: expected a list of strings")
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        seconds = DEFAULT_EXPIRATION_SECONDS
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise errors.bad_request("spec.expirationSeconds: expected an integer")
    bound = spec.get("boundObjectRef")
    if bound is not None and not isinstance(bound, dict):
        raise errors.bad_request("spec.boundObjectRef: expected an object")
    return {"audiences": list(audiences), "expirationSeconds": seconds, "boundObjectRef": bound}


GetObject = Callable[[str, str, str], JSON]
"""Look up a stored object by (plural, namespace, name); raises the 404 StatusError."""


def create_token(
    issuer: ServiceAccountIssuer,
    get_object: GetObject,
    namespace: str,
    name: str,
    body: Any,
) -> JSON:
    """The answered ``TokenRequest`` (kube's ``TokenREST.Create``), or a StatusError."""
    spec = parse_spec(body)
    problems = _field_problems(spec)
    if problems:
        raise _invalid("", problems)
    meta = (body.get("metadata") if isinstance(body, dict) else None) or {}
    for key, want in (("name", name), ("namespace", namespace)):
        if meta.get(key) and meta[key] != want:
            raise _invalid(
                name,
                [
                    invalid(
                        f"metadata.{key}",
                        meta[key],
                        f"must match the service account {key} if specified",
                    )
                ],
            )
    service_account = get_object("serviceaccounts", namespace, name)
    audiences = spec["audiences"] or [issuer.issuer]
    bound = _bound_object(get_object, namespace, name, spec["boundObjectRef"])
    now = issuer.clock()
    token, exp = issuer.mint(service_account, audiences, spec["expirationSeconds"], bound)
    out_spec: JSON = {"audiences": audiences, "expirationSeconds": spec["expirationSeconds"]}
    out_spec["boundObjectRef"] = spec["boundObjectRef"]
    return {
        "kind": "TokenRequest",
        "apiVersion": TOKEN_REQUEST_API_VERSION,
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": format_time(now)},
        "spec": out_spec,
        "status": {
            "token": token,
            "expirationTimestamp": format_time(datetime.fromtimestamp(exp, UTC)),
        },
    }


def _bound_object(
    get_object: GetObject, namespace: str, sa_name: str, ref: JSON | None
) -> JSON | None:
    if ref is None:
        return None
    kind, name, uid = ref.get("kind", ""), ref.get("name", ""), ref.get("uid", "")
    if kind not in BINDABLE_KINDS:
        raise errors.bad_request(
            f'cannot bind token for serviceaccount "{sa_name}" to object of kind "{kind}"'
        )
    if kind in ("Pod", "Node"):  # envtest serves neither: the object cannot exist
        raise errors.not_found(f"{kind.lower()}s", "", str(name))
    obj = get_object("secrets", namespace, str(name))
    actual = str((obj.get("metadata") or {}).get("uid", ""))
    if uid and uid != actual:
        raise errors.StatusError(
            errors.status_body(
                409,
                "Conflict",
                f"the UID in the bound object reference ({uid}) does not match the UID in "
                "record. The object might have been deleted and then recreated",
            )
        )
    return {"kind": kind, "name": name, "uid": actual}


__all__ = [
    "DEFAULT_EXPIRATION_SECONDS",
    "JWKS_CONTENT_TYPE",
    "JWKS_PATH",
    "MIN_EXPIRATION_SECONDS",
    "OPENID_CONFIGURATION_PATH",
    "ServiceAccountIssuer",
    "create_token",
]
