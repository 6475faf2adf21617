"""Bedrock: real botocore SigV4 (static keys, IRSA web identity, AssumeRole) and API keys."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flokoa_envtest.fakes import DEFAULT_ROLE_ARN, FakeProviders

from flokoa_controller.providers import (
    AWSCredentials,
    BedrockSettings,
    ProbeHTTP,
    ProbeTarget,
    probe_model,
    probe_provider,
)
from flokoa_controller.providers.target import AmbientIdentity


def bedrock_target(
    fakes: FakeProviders | None = None,
    *,
    creds: AWSCredentials | None = None,
    role_arn: str | None = None,
    region: str = "us-east-1",
    **kw: object,
) -> ProbeTarget:
    if creds is None and "api_key" not in kw:
        kw.setdefault("identity", AmbientIdentity(allowed=True))  # the operator's own chain
    return ProbeTarget(
        kind="bedrock",
        base_url=fakes.bedrock.url if fakes is not None else None,
        bedrock=BedrockSettings(region=region, role_arn=role_arn, static_credentials=creds),
        **kw,  # type: ignore[arg-type]
    )


async def test_static_keys(fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace) -> None:
    creds = tools.static_key(fakes)
    target = bedrock_target(fakes, creds=creds)
    assert (await probe_provider(target, http)).ok
    model = await probe_model(target, "meta.llama3-70b-instruct-v1:0", http)
    assert model.ok, model
    get, availability = fakes.bedrock.requests[-2:]
    assert get.raw_path == "/foundation-models/meta.llama3-70b-instruct-v1%3A0"
    assert availability.raw_path == "/foundation-model-availability/meta.llama3-70b-instruct-v1%3A0"
    request = get
    auth = request.header("Authorization")
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={creds.access_key_id}/")
    assert "/us-east-1/bedrock/aws4_request" in auth
    assert request.header("X-Amz-Security-Token") is None
    assert fakes.sts.requests == []


async def test_signature_is_checked(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    creds = tools.static_key(fakes)
    wrong_region = await probe_provider(
        bedrock_target(fakes, creds=creds, region="eu-west-1"), http
    )
    assert (wrong_region.reason, wrong_region.http_status) == ("InvalidCredentials", 403)
    assert "region" in wrong_region.message
    unknown = AWSCredentials("AKIAUNKNOWN000000000", creds.secret_access_key)
    result = await probe_provider(bedrock_target(fakes, creds=unknown), http)
    assert result.reason == "InvalidCredentials"
    assert "security token included in the request is invalid" in result.message
    tools.assert_no_secrets(result, creds.secret_access_key)


async def test_iam_denial(fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace) -> None:
    creds = tools.static_key(fakes)
    fakes.bedrock.denied_principals.add(
        fakes.aws_credentials.keys[creds.access_key_id].principal_arn
    )
    result = await probe_provider(bedrock_target(fakes, creds=creds), http)
    assert (result.reason, result.http_status) == ("InvalidCredentials", 403)
    assert "bedrock:ListFoundationModels" in result.message


async def test_web_identity(
    fakes: FakeProviders, http: ProbeHTTP, web_identity: SimpleNamespace
) -> None:
    """botocore's default chain: AssumeRoleWithWebIdentity at AWS_ENDPOINT_URL_STS."""
    target = bedrock_target(fakes)
    assert (await probe_provider(target, http)).ok
    assert (await probe_model(target, "amazon.titan-text-express-v1", http)).ok
    assert fakes.sts.calls == {"AssumeRoleWithWebIdentity": 1}, "credentials were not cached"
    sts_request = fakes.sts.requests[-1]
    assert web_identity.token.encode() in sts_request.body
    assert fakes.bedrock.principals == [
        "arn:aws:sts::123456789012:assumed-role/flokoa-probe/" + p
        for p in [fakes.bedrock.principals[0].rsplit("/", 1)[1]] * 3  # list, get, access
    ]
    for request in fakes.bedrock.requests:
        key = request.header("Authorization").split("Credential=")[1].split("/")[0]
        assert key.startswith("ASIA")
        assert (
            request.header("X-Amz-Security-Token") == fakes.aws_credentials.keys[key].session_token
        )


async def test_web_identity_refused(
    fakes: FakeProviders, http: ProbeHTTP, web_identity: SimpleNamespace
) -> None:
    fakes.sts.web_identity_tokens.clear()
    result = await probe_provider(bedrock_target(fakes), http)
    assert (result.ok, result.reason) == (False, "InvalidCredentials")
    assert "InvalidIdentityToken" in result.message  # the code, not the message
    assert fakes.bedrock.requests == []
    assert web_identity.token not in result.message


async def test_endpoint_from_environment(
    fakes: FakeProviders,
    http: ProbeHTTP,
    web_identity: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", fakes.bedrock.url)
    result = await probe_provider(bedrock_target(None), http)
    assert result.ok, result
    assert result.url == fakes.bedrock.url + "/foundation-models"


async def test_assume_role_chained_on_web_identity(
    fakes: FakeProviders, http: ProbeHTTP, web_identity: SimpleNamespace
) -> None:
    target_role = "arn:aws:iam::210987654321:role/bedrock-reader"
    fakes.sts.roles.add(target_role)
    target = bedrock_target(fakes, role_arn=target_role)
    assert (await probe_provider(target, http)).ok
    assert (await probe_model(target, "amazon.titan-text-express-v1", http)).ok
    assert fakes.sts.calls == {"AssumeRoleWithWebIdentity": 1, "AssumeRole": 1}
    assert (await probe_provider(target, http)).ok  # a re-validation exchanges afresh
    assert fakes.sts.calls == {"AssumeRoleWithWebIdentity": 2, "AssumeRole": 2}
    assert fakes.bedrock.principals[-1].startswith(
        "arn:aws:sts::123456789012:assumed-role/bedrock-reader/flokoa-controller-probe"
    )


async def test_assume_role_from_static_keys_denied(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", fakes.sts.url)
    creds = tools.static_key(fakes)
    result = await probe_provider(
        bedrock_target(fakes, creds=creds, role_arn="arn:aws:iam::1:role/not-allowed"), http
    )
    assert (result.ok, result.reason) == (False, "TokenExchangeFailed")
    assert "AccessDenied" in result.message  # STS's error code, never its message
    assert "not authorized" not in result.message
    tools.assert_no_secrets(result, creds.secret_access_key)
    assert (
        await probe_provider(bedrock_target(fakes, creds=creds, role_arn=DEFAULT_ROLE_ARN), http)
    ).ok


async def test_revoked_temporary_keys_are_replaced(
    fakes: FakeProviders, http: ProbeHTTP, web_identity: SimpleNamespace
) -> None:
    target = bedrock_target(fakes)
    assert (await probe_provider(target, http)).ok
    for key in list(fakes.aws_credentials.keys):
        fakes.aws_credentials.revoke(key)
    rejected = await probe_model(target, "amazon.titan-text-express-v1", http)
    assert (rejected.reason, rejected.http_status) == ("InvalidCredentials", 403)
    assert (await probe_provider(target, http)).ok  # a provider probe exchanges afresh
    assert fakes.sts.calls == {"AssumeRoleWithWebIdentity": 2}


async def test_no_credentials(fakes: FakeProviders, http: ProbeHTTP) -> None:
    result = await probe_provider(bedrock_target(fakes), http)
    assert (result.ok, result.reason, result.retryable) == (False, "CredentialsUnavailable", False)
    assert "no AWS credentials" in result.message
    assert fakes.bedrock.requests == []


async def test_sts_unreachable(
    fakes: FakeProviders,
    http: ProbeHTTP,
    web_identity: SimpleNamespace,
    tools: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{tools.closed_port()}")
    result = await probe_provider(bedrock_target(fakes), http)
    assert (result.ok, result.reason) == (False, "Unreachable"), result


async def test_api_key(fakes: FakeProviders, http: ProbeHTTP) -> None:
    key = fakes.bedrock.api_keys.new()
    target = bedrock_target(fakes, api_key=key)
    assert (await probe_provider(target, http)).ok
    assert fakes.bedrock.requests[-1].header("Authorization") == f"Bearer {key}"
    assert fakes.bedrock.principals == ["api-key"]
    fakes.bedrock.api_keys.revoke(key)
    result = await probe_provider(target, http)
    assert result.reason == "InvalidCredentials"
    assert key not in result.message


def test_default_endpoint() -> None:
    from flokoa_controller.providers.endpoints import bedrock_default_endpoint as default_endpoint

    assert default_endpoint("us-west-2") == "https://bedrock.us-west-2.amazonaws.com"
    assert default_endpoint("cn-north-1") == "https://bedrock.cn-north-1.amazonaws.com.cn"


async def test_expiring_credentials_are_refreshed(
    fakes: FakeProviders, http: ProbeHTTP, web_identity: SimpleNamespace
) -> None:
    """Temporary keys that expire within the refresh margin are not reused (each request
    of a model check exchanges anew); keys with an hour left are."""
    fakes.sts.lifetime = 300
    target = bedrock_target(fakes)
    for _ in range(3):
        assert (await probe_model(target, "amazon.titan-text-express-v1", http)).ok
    short = fakes.sts.calls["AssumeRoleWithWebIdentity"]
    assert short >= 3
    fakes.sts.lifetime = 3600
    for _ in range(3):
        assert (await probe_model(target, "amazon.titan-text-express-v1", http)).ok
    assert fakes.sts.calls["AssumeRoleWithWebIdentity"] == short + 1


# -- the model check: inference profiles, access, lifecycle (issue 14) ----------------------


def test_model_identifier_kinds() -> None:
    from flokoa_controller.providers.bedrock_models import foundation_model_id, profile_identifier

    assert profile_identifier("us.anthropic.claude-sonnet-4-20250514-v1:0") is not None
    assert profile_identifier("global.anthropic.claude-sonnet-4-5-20250929-v1:0") is not None
    assert profile_identifier("apac.amazon.nova-pro-v1:0") is not None
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"
    assert profile_identifier(arn) == arn
    assert profile_identifier("anthropic.claude-3-haiku-20240307-v1:0") is None
    assert profile_identifier("usa.model") is None
    fm = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1"
    assert profile_identifier(fm) is None
    assert foundation_model_id(fm) == "amazon.titan-text-express-v1"
    assert foundation_model_id("amazon.titan-text-express-v1") == "amazon.titan-text-express-v1"


async def test_inference_profiles(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    target = bedrock_target(fakes, creds=tools.static_key(fakes))
    model = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    fakes.bedrock.lifecycles[model] = "LEGACY"
    system = await probe_model(target, f"us.{model}", http)
    assert (system.ok, system.reason) == (True, "ProbeSucceeded"), system
    assert system.model is not None
    assert system.model.resolved == model
    assert len(system.model.members) == 3
    assert system.model.lifecycle is not None
    assert system.model.lifecycle.deprecated
    assert "system-defined profile, routes to" in system.message
    arn = fakes.bedrock.add_application_profile("mine", "anthropic.claude-3-haiku-20240307-v1:0")
    app = await probe_model(target, arn, http)
    assert app.ok, app
    assert app.model is not None
    assert app.model.members == (fakes.bedrock.model_arn("anthropic.claude-3-haiku-20240307-v1:0"),)
    missing = await probe_model(target, "eu.anthropic.claude-nothing-v1:0", http)
    assert (missing.ok, missing.reason, missing.http_status) == (False, "ModelNotFound", 404)
    assert missing.model is None


async def test_model_access_reasons(
    fakes: FakeProviders, http: ProbeHTTP, tools: SimpleNamespace
) -> None:
    creds = tools.static_key(fakes)
    target = bedrock_target(fakes, creds=creds)
    model = "amazon.titan-text-express-v1"
    cases = [
        ({"authorizationStatus": "NOT_AUTHORIZED"}, "ModelAccessNotGranted", "NOT_AUTHORIZED"),
        ({"entitlementAvailability": "NOT_AVAILABLE"}, "ModelAccessNotGranted", "NOT_AVAILABLE"),
        ({"agreement": "ERROR"}, "ModelAgreementNotAccepted", "status ERROR"),
        ({"regionAvailability": "NOT_AVAILABLE"}, "ModelNotOfferedInRegion", "us-east-1"),
    ]
    for fields, reason, word in cases:
        fakes.bedrock.availability[model] = fields
        result = await probe_model(target, model, http)
        assert (result.ok, result.reason, result.retryable) == (False, reason, False), result
        assert word in result.message
    # an identity without GetFoundationModelAvailability: found, access not checked
    principal = fakes.aws_credentials.keys[creds.access_key_id].principal_arn
    fakes.bedrock.denied_actions[principal] = {"bedrock:GetFoundationModelAvailability"}
    result = await probe_model(target, model, http)
    assert (result.ok, result.reason) == (True, "ProbeSucceeded"), result
    assert "access not checked (GetFoundationModelAvailability: HTTP 403)" in result.message
    # GetInferenceProfile refused: a permission problem, not a missing model
    fakes.bedrock.denied_actions[principal] = {"bedrock:GetInferenceProfile"}
    result = await probe_model(target, "us.anthropic.claude-3-haiku-20240307-v1:0", http)
    assert (result.reason, result.http_status) == ("InvalidCredentials", 403)
    assert "bedrock:GetInferenceProfile" in result.message


async def test_profiles_with_an_api_key(fakes: FakeProviders, http: ProbeHTTP) -> None:
    target = bedrock_target(fakes, api_key=fakes.bedrock.api_keys.new())
    result = await probe_model(target, "global.anthropic.claude-3-haiku-20240307-v1:0", http)
    assert result.ok, result
    for request in fakes.bedrock.requests:
        assert request.header("Authorization") == f"Bearer {target.api_key}"
