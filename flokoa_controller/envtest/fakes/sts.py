"""Fake AWS STS (query protocol, XML answers): `AssumeRoleWithWebIdentity`, `AssumeRole`,
`GetCallerIdentity`, issuing temporary keys into a shared `AWSCredentialStore`.

- `AssumeRoleWithWebIdentity` (unsigned, as botocore's IRSA provider sends it): the
  `WebIdentityToken` must be one of `web_identity_tokens` (`new_web_identity_token()`) and
  `RoleArn` one of `roles`.
- `AssumeRole` must be SigV4-signed (service `sts`) by a known key; `RoleArn` must be in
  `roles` and, when `trust` names principals for it, the signer's principal among them.
- Errors are STS's XML `ErrorResponse` (`AccessDenied` 403, `InvalidIdentityToken` 400,
  `InvalidClientTokenId`/`SignatureDoesNotMatch` 403).

Point botocore at it with `AWS_ENDPOINT_URL_STS`. Plain HTTP.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from flokoa_controller.envtest.fakes.aws import AWSCredentialStore, AWSKey, verify_sigv4
from flokoa_controller.envtest.fakes.server import FakeEndpoint, random_token

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
"""STS's XML namespace."""

DEFAULT_ROLE_ARN = "arn:aws:iam::123456789012:role/flokoa-probe"
"""A role the fake STS lets callers assume from the start."""


class FakeSTS(FakeEndpoint):
    """AWS STS endpoint; `url` is the value for `AWS_ENDPOINT_URL_STS`."""

    name = "sts"

    def __init__(
        self, store: AWSCredentialStore, *, host: str = "127.0.0.1", lifetime: float = 3600
    ) -> None:
        super().__init__(tls=None, host=host)
        self.store = store
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
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else "123456789012"
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
            return self._with_web_identity(params)
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
                return self._ok(
                    action,
                    f"<Arn>{escape(signer.principal_arn)}</Arn><UserId>AIDAFAKE</UserId>"
                    "<Account>123456789012</Account>",
                )
            return self._assume_role(params, signer)
        return self._error(400, "InvalidAction", f"Could not find operation {action!r}")

    def _issue(self, action: str, role_arn: str, session: str) -> web.Response:
        role_name = role_arn.rsplit("/", 1)[-1]
        key = self.store.add_temporary(
            f"arn:aws:sts::123456789012:assumed-role/{role_name}/{session}", self.lifetime
        )
        self.calls[action] = self.calls.get(action, 0) + 1
        return self._ok(action, self._credentials_xml(key, role_arn, session))

    def _with_web_identity(self, params: dict[str, str]) -> web.Response:
        token = params.get("WebIdentityToken", "")
        role_arn = params.get("RoleArn", "")
        if token not in self.web_identity_tokens:
            return self._error(
                400,
                "InvalidIdentityToken",
                "Couldn't retrieve verification key from your identity provider",
            )
        if role_arn not in self.roles:
            return self._error(
                403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"
            )
        return self._issue(
            "AssumeRoleWithWebIdentity", role_arn, params.get("RoleSessionName", "session")
        )

    def _assume_role(self, params: dict[str, str], signer: AWSKey) -> web.Response:
        role_arn = params.get("RoleArn", "")
        trusted = self.trust.get(role_arn)
        if role_arn not in self.roles or (
            trusted is not None and signer.principal_arn not in trusted
        ):
            return self._error(
                403,
                "AccessDenied",
                f"User: {signer.principal_arn} is not authorized to perform: sts:AssumeRole on "
                f"resource: {role_arn}",
            )
        return self._issue("AssumeRole", role_arn, params.get("RoleSessionName", "session"))
