"""Fake AWS STS (query protocol, XML answers): `AssumeRoleWithWebIdentity`, `AssumeRole`,
`GetCallerIdentity`, issuing temporary keys into a shared `AWSCredentialStore`.

- `AssumeRoleWithWebIdentity` (unsigned, as botocore's IRSA provider sends it) takes a real
  Kubernetes ServiceAccount token: its `iss` must be an OIDC provider registered in the role's
  account (`add_oidc_provider(issuer, account=...)`), its RS256 signature must verify against
  the issuer's keys (`keys`, an `IssuerKeys`: fetched from the issuer's discovery document or
  given in-process), `aud` must be one of the provider's client IDs (`sts.amazonaws.com`),
  `exp`/`nbf` current, and the role's trust policy (`trust_policy`, identity = role ARN; add
  rules with `allow_web_identity(role, issuer, subject)`) must allow its `sub`. Legacy: a token
  from `new_web_identity_token()` (in `web_identity_tokens`) is accepted for any role in `roles`
  without those checks, for tests of the SDK plumbing alone.
- `AssumeRole` must be SigV4-signed (service `sts`) by a known key; `RoleArn` must be in
  `roles` and, when `trust` names principals for it, the signer's principal among them.
- Both honour `set_role_conditions(role, external_id=..., source_identity=...)` (the trust
  policy's `sts:ExternalId` and `sts:SourceIdentity` conditions; source identity may end in
  `*`), and `SourceIdentity` sticks to a session: a chained `AssumeRole` inherits it and may
  not change it (AssumeRoleWithWebIdentity takes it only from the token's
  `https://aws.amazon.com/source_identity` claim, which ServiceAccount tokens do not carry).
- Each success is in `sessions` (`AssumedSession`: action, role, RoleSessionName, subject,
  source identity, external ID, the key issued); `calls` counts successes per action.
- Errors are STS's XML `ErrorResponse` with AWS's codes: `InvalidIdentityToken` (400: bad
  signature, unknown issuer, wrong audience), `ExpiredTokenException` (400), `IDPRejectedClaim`
  (403: `nbf`/`iat` in the future, no `sub`), `AccessDenied` (403: role or trust policy or
  condition), `ValidationError` (400), `InvalidClientTokenId`/`SignatureDoesNotMatch` (403).

Point botocore at it with `AWS_ENDPOINT_URL_STS`. Plain HTTP.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from flokoa_envtest.fakes.aws import AWSCredentialStore, AWSKey, verify_sigv4
from flokoa_envtest.fakes.oidc import (
    FederatedTokenEndpoint,
    IssuerKeys,
    TokenRejected,
    VerifiedToken,
    decode_unverified,
)
from flokoa_envtest.fakes.server import random_token

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
"""STS's XML namespace."""

DEFAULT_ROLE_ARN = "arn:aws:iam::123456789012:role/flokoa-probe"
"""A role the fake STS lets callers assume from the start."""

DEFAULT_ACCOUNT = "123456789012"
"""The account of the default role and of OIDC providers unless another is named."""

SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity"
"""The token claim AssumeRoleWithWebIdentity takes the SourceIdentity from (it has no
`SourceIdentity` parameter)."""

STS_AUDIENCE = "sts.amazonaws.com"
"""The client ID (token audience) of an EKS-style OIDC provider."""

NAME_PATTERN = re.compile(r"[\w+=,.@-]{2,64}")
r"""`RoleSessionName` and `SourceIdentity`: 2-64 of `[\w+=,.@-]`."""

INVALID_TOKEN_MESSAGE = (
    "The web identity token that was passed could not be validated by AWS. Get a new identity "
    "token from the identity provider and then retry the request."
)


@dataclass(frozen=True)
class OIDCProvider:
    """An IAM OIDC identity provider: the issuer URL it trusts and its client IDs."""

    arn: str
    account: str
    issuer: str
    client_ids: tuple[str, ...]


@dataclass(frozen=True)
class RoleConditions:
    """Trust-policy conditions of a role (None: no condition on that key)."""

    external_id: str | None = None
    """`sts:ExternalId` must equal this."""
    source_identity: str | None = None
    """`sts:SourceIdentity` must match this (`*` suffix for a prefix)."""


@dataclass(frozen=True)
class AssumedSession:
    """One successful AssumeRole* call, as CloudTrail would show it."""

    action: str
    role_arn: str
    role_session_name: str
    access_key_id: str
    subject: str | None = None
    """`sub` of the web identity token (AssumeRoleWithWebIdentity)."""
    issuer: str | None = None
    source_identity: str | None = None
    external_id: str | None = None
    caller: str | None = None
    """The signer's principal ARN (AssumeRole)."""


def role_account(role_arn: str) -> str:
    """The account ID in a role ARN (`arn:aws:iam::ACCOUNT:role/NAME`)."""
    parts = role_arn.split(":")
    return parts[4] if len(parts) >= 6 else ""


class FakeSTS(FederatedTokenEndpoint):
    """AWS STS endpoint; `url` is the value for `AWS_ENDPOINT_URL_STS`.

    `trust_policy`: who may AssumeRoleWithWebIdentity into which role (identity = role ARN).
    """

    name = "sts"

    def __init__(
        self,
        store: AWSCredentialStore,
        *,
        host: str = "127.0.0.1",
        lifetime: float = 3600,
        keys: IssuerKeys | None = None,
    ) -> None:
        super().__init__(clock=store.clock, keys=keys, tls=None, host=host)
        self.store = store
        self.oidc_providers: dict[tuple[str, str], OIDCProvider] = {}
        """(account, issuer URL) → the IAM OIDC provider."""
        self.role_conditions: dict[str, RoleConditions] = {}
        self.sessions: list[AssumedSession] = []
        """Every successful AssumeRole* call, oldest first."""
        self.source_identities: dict[str, str] = {}
        """Access key ID → the SourceIdentity set on its session (sticky when chaining)."""
        self.lifetime = lifetime
        """Seconds the temporary keys it issues are valid."""
        self.roles: set[str] = {DEFAULT_ROLE_ARN}
        self.trust: dict[str, set[str]] = {}
        """Role ARN → principals allowed to AssumeRole into it (absent: anyone)."""
        self.web_identity_tokens: set[str] = set()
        self.calls: dict[str, int] = {}
        """Successful calls per action (tests count STS round trips with it)."""

    def new_web_identity_token(self) -> str:
        """A JWT-looking projected service-account token the fake accepts."""
        token = "eyJhbGciOiJSUzI1NiJ9." + random_token("", 64) + "." + random_token("", 43)
        self.web_identity_tokens.add(token)
        return token

    def add_oidc_provider(
        self,
        issuer: str,
        *,
        account: str = DEFAULT_ACCOUNT,
        client_ids: Iterable[str] = (STS_AUDIENCE,),
    ) -> str:
        """Register an IAM OIDC identity provider for `issuer` in `account`; returns its ARN."""
        host_path = issuer.split("://", 1)[-1].rstrip("/")
        arn = f"arn:aws:iam::{account}:oidc-provider/{host_path}"
        self.oidc_providers[(account, issuer)] = OIDCProvider(
            arn, account, issuer, tuple(client_ids)
        )
        return arn

    def remove_oidc_provider(self, issuer: str, *, account: str = DEFAULT_ACCOUNT) -> None:
        """Delete the provider: its tokens get `InvalidIdentityToken` from now on."""
        self.oidc_providers.pop((account, issuer), None)

    def allow_web_identity(
        self, role_arn: str, issuer: str, subject: str, *, audience: str = STS_AUDIENCE
    ) -> None:
        """Create `role_arn` if needed and trust tokens of `issuer` for `subject` in it.

        The trust policy `Condition` EKS documents: `ISSUER:sub` = `subject` (`*` suffix:
        StringLike) and `ISSUER:aud` = `audience`.
        """
        self.roles.add(role_arn)
        self.trust_policy.allow(issuer, subject, audience, role_arn)

    def set_role_conditions(
        self, role_arn: str, *, external_id: str | None = None, source_identity: str | None = None
    ) -> None:
        """Require `sts:ExternalId` / `sts:SourceIdentity` for assuming `role_arn`."""
        self.role_conditions[role_arn] = RoleConditions(external_id, source_identity)

    def error_body(self, status: int, message: str) -> Any:
        """Not used: STS errors are XML (see `_error`)."""
        return {"Error": {"Code": str(status), "Message": message}}

    def routes(self) -> list[web.RouteDef]:
        """The query API on `/` (POST form and GET query)."""
        return [web.post("/", self._dispatch), web.get("/", self._dispatch)]

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{secrets.token_hex(16)}</RequestId></ErrorResponse>"
        )
        return web.Response(text=body, status=status, content_type="text/xml")

    @staticmethod
    def _ok(action: str, result: str) -> web.Response:
        body = (
            f'<{action}Response xmlns="{NAMESPACE}"><{action}Result>{result}</{action}Result>'
            f"<ResponseMetadata><RequestId>{secrets.token_hex(16)}</RequestId>"
            f"</ResponseMetadata></{action}Response>"
        )
        return web.Response(text=body, content_type="text/xml")

    def _credentials_xml(self, key: AWSKey, role_arn: str, session: str) -> str:
        assert key.expires_at is not None
        expiration = datetime.fromtimestamp(key.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        role_name = role_arn.rsplit("/", 1)[-1]
        account = role_account(role_arn) or DEFAULT_ACCOUNT
        return (
            f"<Credentials><AccessKeyId>{key.access_key_id}</AccessKeyId>"
            f"<SecretAccessKey>{escape(key.secret_access_key)}</SecretAccessKey>"
            f"<SessionToken>{escape(key.session_token or '')}</SessionToken>"
            f"<Expiration>{expiration}</Expiration></Credentials>"
            f"<AssumedRoleUser><AssumedRoleId>AROAFAKE:{escape(session)}</AssumedRoleId>"
            f"<Arn>arn:aws:sts::{account}:assumed-role/{escape(role_name)}/{escape(session)}"
            f"</Arn></AssumedRoleUser>"
        )

    async def _dispatch(self, request: web.Request) -> web.Response:
        body = await request.read()
        params: dict[str, str] = dict(request.query)
        if request.method == "POST":
            form = await request.post()
            params.update({k: str(v) for k, v in form.items()})
        action = params.get("Action", "")
        if action == "AssumeRoleWithWebIdentity":
            return await self._with_web_identity(params)
        if action in ("AssumeRole", "GetCallerIdentity"):
            signer = verify_sigv4(request, body, self.store, service="sts")
            if not isinstance(signer, AWSKey):
                code = {
                    "UnrecognizedClientException": "InvalidClientTokenId",
                    "InvalidSignatureException": "SignatureDoesNotMatch",
                }.get(signer.code, signer.code)
                return self._error(signer.status, code, signer.message)
            if action == "GetCallerIdentity":
                self.calls[action] = self.calls.get(action, 0) + 1
                account = signer.principal_arn.split(":")[4] or DEFAULT_ACCOUNT
                return self._ok(
                    action,
                    f"<Arn>{escape(signer.principal_arn)}</Arn><UserId>AIDAFAKE</UserId>"
                    f"<Account>{escape(account)}</Account>",
                )
            return self._assume_role(params, signer)
        return self._error(400, "InvalidAction", f"Could not find operation {action!r}")

    @staticmethod
    def _validation(params: dict[str, str], *required: str) -> web.Response | None:
        """AWS's `ValidationError` for a missing parameter or a bad name, else None."""
        for name in required:
            if not params.get(name):
                member = name[0].lower() + name[1:]
                return FakeSTS._error(
                    400,
                    "ValidationError",
                    f"1 validation error detected: Value null at '{member}' failed to satisfy "
                    "constraint: Member must not be null",
                )
        for name in ("RoleSessionName", "SourceIdentity"):
            value = params.get(name)
            if value is not None and not NAME_PATTERN.fullmatch(value):
                member = name[0].lower() + name[1:]
                return FakeSTS._error(
                    400,
                    "ValidationError",
                    f"1 validation error detected: Value '{value}' at '{member}' failed to "
                    "satisfy constraint: Member must satisfy regular expression pattern: "
                    "[\\w+=,.@-]*",
                )
        duration = params.get("DurationSeconds")
        if duration is not None and (not duration.isdigit() or not 900 <= int(duration) <= 43200):
            return FakeSTS._error(
                400,
                "ValidationError",
                f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed "
                "to satisfy constraint: Member must have value greater than or equal to 900",
            )
        return None

    def _conditions_met(
        self, role_arn: str, external_id: str | None, source_identity: str | None
    ) -> bool:
        conditions = self.role_conditions.get(role_arn)
        if conditions is None:
            return True
        if conditions.external_id is not None and external_id != conditions.external_id:
            return False
        return conditions.source_identity is None or (
            source_identity is not None and fnmatchcase(source_identity, conditions.source_identity)
        )

    def _issue(
        self,
        action: str,
        role_arn: str,
        params: dict[str, str],
        *,
        source_identity: str | None = None,
        token: VerifiedToken | None = None,
        caller: str | None = None,
    ) -> web.Response:
        session = params.get("RoleSessionName", "session")
        role_name = role_arn.rsplit("/", 1)[-1]
        duration = params.get("DurationSeconds")
        # the key's principal keeps the default account whatever the role's (as the fake
        # always did; existing tests match it), the XML's AssumedRoleUser has the role's
        key = self.store.add_temporary(
            f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/{role_name}/{session}",
            float(duration) if duration else self.lifetime,
        )
        if source_identity is not None:
            self.source_identities[key.access_key_id] = source_identity
        self.sessions.append(
            AssumedSession(
                action=action,
                role_arn=role_arn,
                role_session_name=session,
                access_key_id=key.access_key_id,
                subject=token.subject if token else None,
                issuer=token.issuer if token else None,
                source_identity=source_identity,
                external_id=params.get("ExternalId"),
                caller=caller,
            )
        )
        self.calls[action] = self.calls.get(action, 0) + 1
        extra = ""
        if token is not None:
            extra = (
                f"<SubjectFromWebIdentityToken>{escape(token.subject)}"
                f"</SubjectFromWebIdentityToken><Audience>{escape(STS_AUDIENCE)}</Audience>"
                f"<Provider>{escape(token.issuer.split('://', 1)[-1])}</Provider>"
            )
        if source_identity is not None:
            extra += f"<SourceIdentity>{escape(source_identity)}</SourceIdentity>"
        return self._ok(action, self._credentials_xml(key, role_arn, session) + extra)

    def _web_identity_denied(self) -> web.Response:
        return self._error(
            403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"
        )

    async def _with_web_identity(self, params: dict[str, str]) -> web.Response:
        invalid = self._validation(params, "RoleArn", "RoleSessionName", "WebIdentityToken")
        if invalid is not None:
            return invalid
        token = params["WebIdentityToken"]
        role_arn = params["RoleArn"]
        source_identity: str | None = None  # only from the token's claim, as AWS
        if token in self.web_identity_tokens:  # legacy opaque token: SDK plumbing tests
            if role_arn not in self.roles or not self._conditions_met(
                role_arn, None, source_identity
            ):
                return self._web_identity_denied()
            return self._issue(
                "AssumeRoleWithWebIdentity", role_arn, params, source_identity=source_identity
            )
        try:
            _, claims, _, _ = decode_unverified(token)
        except TokenRejected:
            return self._error(400, "InvalidIdentityToken", INVALID_TOKEN_MESSAGE)
        issuer = str(claims.get("iss", ""))
        provider = self.oidc_providers.get((role_account(role_arn), issuer))
        if provider is None:
            return self._error(
                400,
                "InvalidIdentityToken",
                f"No OpenIDConnect provider found in your account for {issuer}",
            )
        try:
            verified = await self.verify(
                token, issuers=[provider.issuer], audiences=provider.client_ids
            )
        except TokenRejected as exc:
            return self._rejected(exc)
        claimed = verified.claims.get(SOURCE_IDENTITY_CLAIM)
        source_identity = claimed if isinstance(claimed, str) else None
        if (
            role_arn not in self.roles
            or not self.trust_policy.allows(verified, role_arn)
            or not self._conditions_met(role_arn, None, source_identity)
        ):
            return self._web_identity_denied()
        return self._issue(
            "AssumeRoleWithWebIdentity",
            role_arn,
            params,
            source_identity=source_identity,
            token=verified,
        )

    def _rejected(self, exc: TokenRejected) -> web.Response:
        """STS's answer for a token that failed verification."""
        if exc.reason == "expired":
            return self._error(
                400,
                "ExpiredTokenException",
                f"Token expired: current date/time {int(self.store.clock())} must be before the "
                f"expiration date/time{exc.claims.get('exp')}",
            )
        if exc.reason in ("not_yet_valid", "subject"):
            return self._error(
                403,
                "IDPRejectedClaim",
                "The identity provider (IdP) reported that authentication failed. This might be "
                "because the claim is invalid.",
            )
        if exc.reason == "audience":
            return self._error(400, "InvalidIdentityToken", "Incorrect token audience")
        if exc.reason == "keys_unavailable":
            return self._error(
                400,
                "InvalidIdentityToken",
                "Couldn't retrieve verification key from your identity provider,  please "
                "reference AssumeRoleWithWebIdentity documentation for requirements",
            )
        return self._error(400, "InvalidIdentityToken", INVALID_TOKEN_MESSAGE)

    def _assume_role(self, params: dict[str, str], signer: AWSKey) -> web.Response:
        invalid = self._validation(params, "RoleArn", "RoleSessionName")
        if invalid is not None:
            return invalid
        role_arn = params["RoleArn"]
        trusted = self.trust.get(role_arn)
        inherited = self.source_identities.get(signer.access_key_id)
        requested = params.get("SourceIdentity")
        source_identity = inherited if inherited is not None else requested
        if (
            role_arn not in self.roles
            or (trusted is not None and signer.principal_arn not in trusted)
            or (inherited is not None and requested is not None and requested != inherited)
            or not self._conditions_met(role_arn, params.get("ExternalId"), source_identity)
        ):
            return self._error(
                403,
                "AccessDenied",
                f"User: {signer.principal_arn} is not authorized to perform: sts:AssumeRole on "
                f"resource: {role_arn}",
            )
        return self._issue(
            "AssumeRole",
            role_arn,
            params,
            source_identity=source_identity,
            caller=signer.principal_arn,
        )
