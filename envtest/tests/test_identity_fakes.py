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
from flokoa_envtest import APIServer
from flokoa_envtest.fakes import FakeProviders
from flokoa_envtest.fakes.oidc import IssuerKeys, TokenRejected, verify_token
from flokoa_envtest.testing import closed_port
from flokoa_envtest.timefmt import utcnow

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
    api.issuer.rotate_key()  # a new kid: the verifier fetches the keys again
    rotated = api.create_token("team-a", "agent", ["aud-1"], 600)
    await verify_token(rotated, keys, issuers=[issuer], audiences=["aud-1"])
    assert keys.fetches == 2
    await verify_token(token, keys, issuers=[issuer], audiences=["aud-1"])  # old key kept
    api.issuer.rotate_key(keep_old=False)  # old keys dropped: their tokens no longer verify
    fresh = api.create_token("team-a", "agent", ["aud-1"], 600)
    await verify_token(fresh, keys, issuers=[issuer], audiences=["aud-1"])
    assert await reason(token) == "unknown_key"
    assert await reason(rotated) == "unknown_key"
    keys.set_jwks(issuer, {"keys": []})  # keys given in-process: never fetched
    assert await reason(fresh) == "unknown_key"
    keys.set_jwks(issuer, api.jwks())
    await verify_token(fresh, keys, issuers=[issuer], audiences=["aud-1"])


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


# --- Google STS, IAM Credentials, Vertex ------------------------------------------------------

GSA = "vertex-caller@fake-project.iam.gserviceaccount.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


async def _exchange(
    session: aiohttp.ClientSession, fakes: FakeProviders, audience: str, token: str, **extra: str
) -> tuple[int, dict[str, Any]]:
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "audience": audience,
        "scope": CLOUD_PLATFORM,
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "subject_token": token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        **extra,
    }
    async with session.post(fakes.google_sts.token_url, data=form) as resp:
        return resp.status, await resp.json()


async def _vertex_list(
    session: aiohttp.ClientSession, fakes: FakeProviders, token: str, project: str = "fake-project"
) -> int:
    url = f"{fakes.vertex.url}/v1/projects/{project}/locations/us-central1/models"
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status


async def _generate(
    session: aiohttp.ClientSession, fakes: FakeProviders, token: str, email: str = GSA
) -> tuple[int, dict[str, Any]]:
    async with session.post(
        fakes.iam_credentials.generate_access_token_url(email),
        json={"scope": [CLOUD_PLATFORM], "lifetime": "3600s"},
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        return resp.status, await resp.json()


async def test_google_federation_impersonation_and_direct_access(
    api: APIServer, fakes: FakeProviders, session: aiohttp.ClientSession
) -> None:
    audience = fakes.google_sts.add_provider("123456", "cluster", "k8s", api.service_account_issuer)
    assert audience == (
        "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/cluster/"
        "providers/k8s"
    )
    fakes.google_sts.allow_subject(audience, AGENT)
    principal = fakes.google_sts.principal(audience, AGENT)
    assert principal == (
        "principal://iam.googleapis.com/projects/123456/locations/global/"
        f"workloadIdentityPools/cluster/subject/{AGENT}"
    )
    k8s_token = api.create_token("team-a", "agent", ["https:" + audience], 600)
    status, body = await _exchange(session, fakes, audience, k8s_token)
    assert status == 200, body
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["token_type"] == "Bearer"
    federated = body["access_token"]
    (exchange,) = fakes.google_sts.exchanges
    assert (exchange.subject, exchange.principal) == (AGENT, principal)

    # used directly: Vertex accepts the federated token only where the principal is granted
    assert await _vertex_list(session, fakes, federated) == 403
    fakes.vertex.grant("fake-project", principal)
    assert await _vertex_list(session, fakes, federated) == 200
    fakes.vertex.revoke("fake-project", principal)
    assert await _vertex_list(session, fakes, federated) == 403

    # impersonation: only with workloadIdentityUser on the service account
    status, denied = await _generate(session, fakes, federated)
    assert status == 403
    assert denied["error"]["status"] == "PERMISSION_DENIED"
    assert "iam.serviceAccounts.getAccessToken" in denied["error"]["message"]
    fakes.iam_credentials.allow_impersonation(GSA, principal)
    status, granted = await _generate(session, fakes, federated)
    assert status == 200, granted
    assert granted["expireTime"].endswith("Z")
    assert await _vertex_list(session, fakes, granted["accessToken"]) == 200
    (impersonation,) = fakes.iam_credentials.grants
    assert (impersonation.principal, impersonation.email) == (principal, GSA)
    status, unauthenticated = await _generate(session, fakes, "ya29.not-issued")
    assert (status, unauthenticated["error"]["status"]) == (401, "UNAUTHENTICATED")
    fakes.iam_credentials.revoke_impersonation(GSA, principal)
    assert (await _generate(session, fakes, federated))[0] == 403


async def test_google_sts_refuses_other_tokens(
    api: APIServer, fakes: FakeProviders, session: aiohttp.ClientSession
) -> None:
    audience = fakes.google_sts.add_provider("123456", "cluster", "k8s", api.service_account_issuer)
    fakes.google_sts.allow_subject(audience, AGENT)

    def token(ns: str = "team-a", name: str = "agent", aud: str = audience) -> str:
        return api.create_token(ns, name, [aud], 600)

    good = token()
    assert (await _exchange(session, fakes, audience, good))[0] == 200
    cases = {
        "other namespace": (token("team-b"), "unauthorized_client"),
        "other ServiceAccount": (token(name="other"), "unauthorized_client"),
        "other audience": (token(aud="sts.amazonaws.com"), "invalid_grant"),
        "forged": (forge(good), "invalid_grant"),
        "tampered": (tamper(good, sub="system:serviceaccount:team-b:agent"), "invalid_grant"),
        "foreign issuer": (forge(good, iss="https://evil.example"), "invalid_grant"),
    }
    with minted_in_the_past(api, 2):
        cases["expired"] = (token(), "invalid_grant")
    for name, (candidate, error) in cases.items():
        status, body = await _exchange(session, fakes, audience, candidate)
        assert (status, body["error"]) == (400, error), name
        assert candidate not in json.dumps(body), "the token is never echoed"
    status, body = await _exchange(session, fakes, audience, token("team-b"))
    assert body["error_description"] == (
        "The given credential is rejected by the attribute condition."
    )
    _, foreign = await _exchange(session, fakes, audience, forge(good, iss="https://evil.example"))
    assert foreign["error_description"].startswith(
        "The issuer in ID Token https://evil.example does not match the expected ones"
    )
    other_pool = audience.replace("/cluster/", "/elsewhere/")
    status, body = await _exchange(session, fakes, other_pool, good)
    assert (status, body["error"]) == (400, "invalid_target")
    status, body = await _exchange(session, fakes, audience, good, grant_type="password")
    assert body["error"] == "unsupported_grant_type"
    assert len(fakes.google_sts.exchanges) == 1, "no refused exchange issued a token"

    fakes.google_sts.trust_policy.revoke(subject=AGENT)  # rotation
    status, body = await _exchange(session, fakes, audience, token())
    assert (status, body["error"]) == (400, "unauthorized_client")


# --- Entra ID and Azure OpenAI ----------------------------------------------------------------

TENANT = "00000000-0000-0000-0000-0000000000aa"
CLIENT = "11111111-2222-3333-4444-555555555555"


async def _entra(
    session: aiohttp.ClientSession, fakes: FakeProviders, assertion: str, **extra: str
) -> tuple[int, dict[str, Any]]:
    tenant = extra.pop("tenant", TENANT)
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "scope": "https://cognitiveservices.azure.com/.default",
        **extra,
    }
    async with session.post(fakes.entra.token_url(tenant), data=form) as resp:
        return resp.status, await resp.json()


async def _azure_models(session: aiohttp.ClientSession, fakes: FakeProviders, token: str) -> int:
    statuses = []
    for url in (
        f"{fakes.azure.url}/openai/models?api-version=2024-10-21",
        f"{fakes.azure.v1_base_url}/models",
    ):
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            statuses.append(resp.status)
    assert statuses[0] == statuses[1], "classic and v1 authenticate alike"
    return statuses[0]


async def test_entra_client_assertion_and_azure_openai_bearer(
    api: APIServer, fakes: FakeProviders, session: aiohttp.ClientSession
) -> None:
    fakes.entra.add_federated_credential(TENANT, CLIENT, api.service_account_issuer, AGENT)
    assertion = api.create_token("team-a", "agent", ["api://AzureADTokenExchange"], 3600)
    status, body = await _entra(session, fakes, assertion)
    assert status == 200, body
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int)
    access = body["access_token"]
    (grant,) = fakes.entra.grants
    assert (grant.tenant, grant.client_id, grant.subject) == (TENANT, CLIENT, AGENT)
    assert await _azure_models(session, fakes, access) == 200
    assert fakes.azure.bearer_principals == [f"{TENANT}/{CLIENT}"] * 2
    assert await _azure_models(session, fakes, fakes.azure.api_key) == 401, "a key is no token"
    async with session.get(
        f"{fakes.azure.v1_base_url}/models", headers={"api-key": fakes.azure.api_key}
    ) as resp:
        assert resp.status == 200, "api-key still works"
    fakes.azure.entra_principals = {f"{TENANT}/someone-else"}
    assert await _azure_models(session, fakes, access) == 401  # no role assignment


async def test_entra_refuses_other_assertions(
    api: APIServer, fakes: FakeProviders, session: aiohttp.ClientSession
) -> None:
    issuer = api.service_account_issuer
    fakes.entra.add_federated_credential(TENANT, CLIENT, issuer, AGENT)

    def token(
        ns: str = "team-a", name: str = "agent", aud: str = "api://AzureADTokenExchange"
    ) -> str:
        return api.create_token(ns, name, [aud], 600)

    good = token()
    assert (await _entra(session, fakes, good))[0] == 200
    cases: dict[str, tuple[str, int]] = {
        "other namespace": (token("team-b"), 700213),
        "other ServiceAccount": (token(name="other"), 700213),
        "other audience": (token(aud="sts.amazonaws.com"), 700212),
        "forged": (forge(good), 700027),
        "tampered": (tamper(good, sub="system:serviceaccount:team-b:agent"), 700027),
        "foreign issuer": (forge(good, iss="https://evil.example"), 700211),
    }
    with minted_in_the_past(api, 2):
        cases["expired"] = (token(), 700024)
    for name, (candidate, code) in cases.items():
        status, body = await _entra(session, fakes, candidate)
        assert (status, body["error"], body["error_codes"]) == (400, "invalid_client", [code]), name
        assert body["error_description"].startswith(f"AADSTS{code}: ")
    _, subject = await _entra(session, fakes, token("team-b"))
    assert subject["error_description"].startswith(
        "AADSTS700213: No matching federated identity record found for presented assertion "
        "subject 'system:serviceaccount:team-b:agent'."
    )
    status, body = await _entra(session, fakes, good, tenant="ffffffff-0000-0000-0000-000000000000")
    assert body["error_codes"] == [90002]
    status, body = await _entra(session, fakes, good, client_id="unknown-client")
    assert (body["error"], body["error_codes"]) == ("unauthorized_client", [700016])
    status, body = await _entra(session, fakes, good, scope="https://cognitiveservices.azure.com")
    assert body["error_codes"] == [1002012]
    assert len(fakes.entra.grants) == 1, "no refused request got a token"

    assert fakes.entra.remove_federated_credential(TENANT, CLIENT, subject=AGENT) == 1  # rotation
    status, body = await _entra(session, fakes, token())
    assert (status, body["error_codes"]) == (400, [700211])


async def test_keys_given_in_process_need_no_discovery() -> None:
    """`trust_issuer(jwks=...)`: an issuer not reachable over HTTP (plain fakes, no TLS)."""
    async with APIServer(service_account_issuer="https://oidc.example/cluster") as api:
        api.create_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
        meta = {"name": "agent", "namespace": "team-a"}
        api.create_object({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
        async with FakeProviders() as fakes, aiohttp.ClientSession() as session:
            fakes.trust_issuer(api.service_account_issuer, jwks=api.jwks())
            fakes.sts.add_oidc_provider(api.service_account_issuer)
            fakes.sts.allow_web_identity(ROLE, api.service_account_issuer, AGENT)
            token = api.create_token("team-a", "agent", ["sts.amazonaws.com"], 600)
            assert _claims(token)["iss"] == "https://oidc.example/cluster"
            assert (await _web_identity(session, fakes, token))[:2] == (200, "")
            (provider,) = fakes.sts.oidc_providers.values()
            assert provider.arn == "arn:aws:iam::123456789012:oidc-provider/oidc.example/cluster"
            assert fakes.oidc_keys.fetches == 0


async def test_vertex_publisher_models_need_a_grant_for_federated_tokens(
    api: APIServer, fakes: FakeProviders, session: aiohttp.ClientSession
) -> None:
    audience = fakes.google_sts.add_provider("42", "pool", "k8s", api.service_account_issuer)
    fakes.google_sts.allow_subject(audience, "system:serviceaccount:team-a:*")
    k8s_token = api.create_token("team-a", "other", [audience], 600)
    status, body = await _exchange(session, fakes, audience, k8s_token)
    assert status == 200, body
    url = f"{fakes.vertex.url}/v1beta1/publishers/google/models/gemini-2.0-flash"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    async with session.get(url, headers=headers) as resp:
        assert resp.status == 403
    pool = "principalSet://iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/pool/*"
    fakes.vertex.grant("fake-project", pool)
    async with session.get(url, headers=headers) as resp:
        assert resp.status == 200


async def test_irsa_credential_chain_with_a_projected_token_file(
    api: APIServer, fakes: FakeProviders, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore's own IRSA provider (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE) end to end."""
    issuer = api.service_account_issuer
    fakes.sts.add_oidc_provider(issuer)
    fakes.sts.allow_web_identity(ROLE, issuer, AGENT)
    token_file = tmp_path / "token"
    token_file.write_text(api.create_token("team-a", "agent", ["sts.amazonaws.com"], 600))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "team-a.agent")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", fakes.sts.url)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = botocore.session.get_session()
    session.set_config_variable("region", "us-east-1")
    credentials = await asyncio.to_thread(
        lambda: session.get_credentials().get_frozen_credentials()
    )
    assert credentials.access_key.startswith("ASIA")
    (assumed,) = fakes.sts.sessions
    assert (assumed.subject, assumed.role_session_name) == (AGENT, "team-a.agent")

    token_file.write_text(api.create_token("team-b", "agent", ["sts.amazonaws.com"], 600))
    refused = botocore.session.get_session()
    refused.set_config_variable("region", "us-east-1")
    with pytest.raises(ClientError) as denied:
        await asyncio.to_thread(lambda: refused.get_credentials().get_frozen_credentials())
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


async def test_unreachable_issuer_keys_are_refused_in_each_clouds_terms(
    fakes: FakeProviders, session: aiohttp.ClientSession
) -> None:
    issuer = f"http://127.0.0.1:{closed_port()}"
    async with APIServer(service_account_issuer=issuer) as api:
        api.create_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
        meta = {"name": "agent", "namespace": "team-a"}
        api.create_object({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
        fakes.sts.add_oidc_provider(issuer)
        fakes.sts.allow_web_identity(ROLE, issuer, AGENT)
        status, code, root = await _web_identity(
            session, fakes, api.create_token("team-a", "agent", ["sts.amazonaws.com"], 600)
        )
        assert (status, code) == (400, "InvalidIdentityToken")
        message = root.findtext(f"{STS_NS}Error/{STS_NS}Message") or ""
        assert message.startswith("Couldn't retrieve verification key from your identity provider")
        fakes.entra.add_federated_credential(TENANT, CLIENT, issuer, AGENT)
        assertion = api.create_token("team-a", "agent", ["api://AzureADTokenExchange"], 600)
        status, body = await _entra(session, fakes, assertion)
        assert (status, body["error_codes"]) == (400, [50166])
