"""The identity fakes against real ServiceAccount tokens from envtest's TokenRequest API.

Each cloud's exchange is tried with a good token and then with a token of the wrong
namespace, ServiceAccount, audience or issuer, an expired one and a forged one; a trust policy
changed at run time refuses the next exchange. botocore drives AWS STS; the others are plain
aiohttp requests, as the operator sends them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import botocore.session
import pytest
import trustme
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from flokoa_controller.envtest import APIServer
from flokoa_controller.envtest.fakes import FakeProviders
from flokoa_controller.envtest.fakes.oidc import IssuerKeys, TokenRejected, verify_token
from flokoa_controller.envtest.timefmt import utcnow

AGENT = "system:serviceaccount:team-a:agent"
ROLE = "arn:aws:iam::123456789012:role/team-a-agent"
STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def forge(token: str, **changes: Any) -> str:
    """``token`` with ``changes`` to its claims, re-signed by an attacker's key (same kid)."""
    head = token.split(".")[0]
    claims = {**_claims(token), **changes}
    payload = _b64(json.dumps(claims).encode())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = key.sign(f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{payload}.{_b64(signature)}"


def tamper(token: str, **changes: Any) -> str:
    """``token`` with ``changes`` to its claims and the original signature kept."""
    head, _, sig = token.split(".")
    payload = _b64(json.dumps({**_claims(token), **changes}).encode())
    return f"{head}.{payload}.{sig}"


@contextmanager
def minted_in_the_past(api: APIServer, hours: float) -> Iterator[None]:
    """Tokens minted inside are dated ``hours`` ago (so a 10-minute token has expired)."""
    clock = api.issuer.clock
    api.issuer.clock = lambda: utcnow() - timedelta(hours=hours)
    try:
        yield
    finally:
        api.issuer.clock = clock


@pytest.fixture
async def api() -> AsyncIterator[APIServer]:
    """An HTTPS envtest with ServiceAccounts team-a/agent, team-a/other and team-b/agent."""
    async with APIServer(tls=True) as server:
        for ns in ("team-a", "team-b"):
            server.create_object(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
        for ns, name in (("team-a", "agent"), ("team-a", "other"), ("team-b", "agent")):
            meta = {"name": name, "namespace": ns}
            server.create_object({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
        yield server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def fakes(api: APIServer, ca: trustme.CA) -> AsyncIterator[FakeProviders]:
    """Every fake (TLS), finding envtest's keys over HTTPS from its discovery document."""
    async with FakeProviders(tls=ca) as providers:
        assert api.ca_path is not None
        providers.trust_issuer(api.service_account_issuer, ca_pem=api.ca_path.read_bytes())
        yield providers


@pytest.fixture
async def session(ca: trustme.CA) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client trusting the fakes' CA (what the operator's HTTP stack is)."""
    context = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as client:
        yield client


# --- the shared verifier ----------------------------------------------------------------------


async def test_verifier_checks_signature_issuer_audience_and_lifetime(api: APIServer) -> None:
    assert api.ca_path is not None
    keys = IssuerKeys(ca_pem=api.ca_path.read_bytes())
    issuer = api.service_account_issuer
    token = api.create_token("team-a", "agent", ["aud-1"], 600)
    verified = await verify_token(token, keys, issuers=[issuer], audiences=["aud-1"])
    assert (verified.subject, verified.namespace, verified.service_account) == (
        AGENT,
        "team-a",
        "agent",
    )
    assert keys.fetches == 1
    await verify_token(token, keys, issuers=[issuer], audiences=None)
    assert keys.fetches == 1, "keys are cached"

    async def reason(
        candidate: str, audience: str = "aud-1", issuers: list[str] | None = None
    ) -> str:
        with pytest.raises(TokenRejected) as refused:
            await verify_token(candidate, keys, issuers=issuers or [issuer], audiences=[audience])
        return refused.value.reason

    assert await reason(token, audience="aud-2") == "audience"
    assert await reason(token, issuers=["https://elsewhere.example"]) == "issuer"
    assert await reason(forge(token)) == "signature"
    assert await reason(tamper(token, sub="system:serviceaccount:team-b:agent")) == "signature"
    assert await reason("not-a-jwt") == "malformed"
    with minted_in_the_past(api, 2):
        old = api.create_token("team-a", "agent", ["aud-1"], 600)
    assert await reason(old) == "expired"
    keys.set_jwks(issuer, {"keys": []})
    assert await reason(token) == "unknown_key"
    keys.set_jwks(issuer, api.jwks())
    await verify_token(token, keys, issuers=[issuer], audiences=["aud-1"])


# --- AWS STS ----------------------------------------------------------------------------------


def _sts_client(url: str) -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        "sts",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
        config=Config(retries={"max_attempts": 1}),
    )


async def _web_identity(
    session: aiohttp.ClientSession, fakes: FakeProviders, token: str, **extra: str
) -> tuple[int, str, ElementTree.Element]:
    """POST AssumeRoleWithWebIdentity as a plain form; (status, error code or "", XML)."""
    form = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": ROLE,
        "RoleSessionName": "team-a.agent",
        "WebIdentityToken": token,
        **extra,
    }
    async with session.post(fakes.sts.url + "/", data=form) as resp:
        root = ElementTree.fromstring(await resp.read())
    code = root.findtext(f"{STS_NS}Error/{STS_NS}Code") or ""
    return resp.status, code, root


async def test_sts_web_identity_with_botocore_and_bedrock(
    api: APIServer, fakes: FakeProviders, ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    issuer = api.service_account_issuer
    fakes.sts.add_oidc_provider(issuer)
    fakes.sts.allow_web_identity(ROLE, issuer, AGENT)
    token = api.create_token("team-a", "agent", ["sts.amazonaws.com"], 600)
    client = _sts_client(fakes.sts.url)
    answer = await asyncio.to_thread(
        client.assume_role_with_web_identity,
        RoleArn=ROLE,
        RoleSessionName="team-a.agent",
        WebIdentityToken=token,
    )
    assert answer["SubjectFromWebIdentityToken"] == AGENT
    assert answer["AssumedRoleUser"]["Arn"].endswith(":assumed-role/team-a-agent/team-a.agent")
    (session,) = fakes.sts.sessions
    assert (session.action, session.role_arn, session.role_session_name, session.subject) == (
        "AssumeRoleWithWebIdentity",
        ROLE,
        "team-a.agent",
        AGENT,
    )
    creds = answer["Credentials"]
    bedrock = botocore.session.get_session().create_client(
        "bedrock",
        region_name="us-east-1",
        endpoint_url=fakes.bedrock.url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        verify=str(ca_file),
    )
    models = await asyncio.to_thread(bedrock.list_foundation_models)
    assert models["modelSummaries"]
    assert fakes.bedrock.principals[-1].endswith("assumed-role/team-a-agent/team-a.agent")


async def test_sts_refuses_other_tokens(
    api: APIServer, fakes: FakeProviders, session: aiohttp.ClientSession
) -> None:
    issuer = api.service_account_issuer
    fakes.sts.add_oidc_provider(issuer)
    fakes.sts.allow_web_identity(ROLE, issuer, AGENT)

    def token(ns: str = "team-a", name: str = "agent", aud: str = "sts.amazonaws.com") -> str:
        return api.create_token(ns, name, [aud], 600)

    good = token()
    assert (await _web_identity(session, fakes, good))[:2] == (200, "")
    cases = {
        "other namespace": (token("team-b"), 403, "AccessDenied"),
        "other ServiceAccount": (token(name="other"), 403, "AccessDenied"),
        "other audience": (token(aud="api://AzureADTokenExchange"), 400, "InvalidIdentityToken"),
        "forged": (forge(good), 400, "InvalidIdentityToken"),
        "tampered subject": (
            tamper(good, sub="system:serviceaccount:team-a:other"),
            400,
            "InvalidIdentityToken",
        ),
        "foreign issuer": (forge(good, iss="https://evil.example"), 400, "InvalidIdentityToken"),
    }
    with minted_in_the_past(api, 2):
        cases["expired"] = (token(), 400, "ExpiredTokenException")
    with minted_in_the_past(api, -1):
        cases["not yet valid"] = (token(), 403, "IDPRejectedClaim")
    for name, (candidate, status, code) in cases.items():
        got = await _web_identity(session, fakes, candidate)
        assert got[:2] == (status, code), name
    _, _, foreign = await _web_identity(session, fakes, forge(good, iss="https://evil.example"))
    assert foreign.findtext(f"{STS_NS}Error/{STS_NS}Message") == (
        "No OpenIDConnect provider found in your account for https://evil.example"
    )
    _, _, audience = await _web_identity(session, fakes, token(aud="other"))
    assert audience.findtext(f"{STS_NS}Error/{STS_NS}Message") == "Incorrect token audience"
    other_account = "arn:aws:iam::210987654321:role/team-a-agent"
    fakes.sts.allow_web_identity(other_account, issuer, AGENT)
    got = await _web_identity(session, fakes, good, RoleArn=other_account)
    assert got[:2] == (400, "InvalidIdentityToken"), "the provider is per account"
    assert len(fakes.sts.sessions) == 1, "no refused exchange issued keys"

    fakes.sts.trust_policy.revoke(subject=AGENT)  # rotation: the subject is no longer trusted
    assert (await _web_identity(session, fakes, token()))[:2] == (403, "AccessDenied")
    fakes.sts.allow_web_identity(ROLE, issuer, "system:serviceaccount:team-a:*")
    assert (await _web_identity(session, fakes, token(name="other")))[:2] == (200, "")
    bad_name = await _web_identity(session, fakes, token(), RoleSessionName="no spaces")
    assert bad_name[:2] == (400, "ValidationError")


async def test_sts_assume_role_chaining_honours_external_id_and_source_identity(
    api: APIServer, fakes: FakeProviders
) -> None:
    issuer = api.service_account_issuer
    fakes.sts.add_oidc_provider(issuer)
    fakes.sts.allow_web_identity(ROLE, issuer, AGENT)
    target = "arn:aws:iam::210987654321:role/bedrock-reader"
    fakes.sts.roles.add(target)
    fakes.sts.set_role_conditions(target, external_id="ext-123", source_identity="team-a*")
    first = await asyncio.to_thread(
        _sts_client(fakes.sts.url).assume_role_with_web_identity,
        RoleArn=ROLE,
        RoleSessionName="team-a.agent",
        WebIdentityToken=api.create_token("team-a", "agent", ["sts.amazonaws.com"], 600),
    )

    def client(creds: dict[str, Any]) -> Any:
        return botocore.session.get_session().create_client(
            "sts",
            region_name="us-east-1",
            endpoint_url=fakes.sts.url,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            config=Config(retries={"max_attempts": 1}),
        )

    async def assume(creds: dict[str, Any], role: str, **extra: str) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.to_thread(
            client(creds).assume_role, RoleArn=role, RoleSessionName="team-a.provider", **extra
        )
        return result

    web = first["Credentials"]
    refusals: list[dict[str, str]] = [
        {},
        {"ExternalId": "wrong", "SourceIdentity": "team-a"},
        {"ExternalId": "ext-123"},
        {"ExternalId": "ext-123", "SourceIdentity": "team-b"},
    ]
    for refused in refusals:
        with pytest.raises(ClientError) as denied:
            await assume(web, target, **refused)
        assert denied.value.response["Error"]["Code"] == "AccessDenied", refused
    answer = await assume(web, target, ExternalId="ext-123", SourceIdentity="team-a")
    assert answer["SourceIdentity"] == "team-a"
    last = fakes.sts.sessions[-1]
    assert (last.action, last.external_id, last.source_identity, last.role_session_name) == (
        "AssumeRole",
        "ext-123",
        "team-a",
        "team-a.provider",
    )
    assert last.caller is not None
    assert last.caller.endswith("assumed-role/team-a-agent/team-a.agent")

    # the source identity sticks: a further hop inherits it and may not change it
    fakes.sts.roles.add(ROLE)
    with pytest.raises(ClientError):
        await assume(answer["Credentials"], ROLE, SourceIdentity="team-b")
    again = await assume(answer["Credentials"], ROLE)
    assert again["SourceIdentity"] == "team-a"
