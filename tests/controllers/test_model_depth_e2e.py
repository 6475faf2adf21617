"""End to end: provider depth (issue 14) through the real reconcilers and the fakes.

Bedrock inference profiles and model access, Vertex access in the project, resolved and
deprecated models, and an `api-version` header on a non-Azure gateway. Each test prints what
`kubectl get models` and the status columns (custom columns) show, so a run with `-s` gives the
tables of the issue's closing note.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY

from flokoa_controller.controllers.resources import MODELS
from flokoa_controller.controllers.setup import ControllerSettings

if TYPE_CHECKING:
    from conftest import Harness, MakeHarness
    from flokoa_envtest.testing import Kubectl

PROFILE = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
FOUNDATION = "anthropic.claude-3-5-sonnet-20240620-v1:0"


async def put_model(h: Harness, name: str, provider: str, model: str) -> None:
    await h.put_model(name, provider, model)


COLUMNS = ",".join(
    [
        "NAME:.metadata.name",
        "MODEL:.spec.model",
        "READY:.status.ready",
        'REASON:.status.conditions[?(@.type=="Ready")].reason',
        'DEPRECATED:.status.conditions[?(@.type=="Deprecated")].status',
        "RESOLVED:.status.resolvedModel",
    ]
)
"""The Model status fields this issue adds, as custom columns (the CRD's printer columns stay
those the recorded kube-apiserver answers pin)."""


async def show_models(h: Harness, kubectl: Kubectl, title: str) -> str:
    """`kubectl get models` with the status columns, printed under `title`."""
    plain = await kubectl("get", "models", "-n", h.namespace)
    assert plain.stdout.splitlines()[0].split() == ["NAME", "MODEL", "PROVIDER", "READY", "AGE"]
    listing = await kubectl("get", "models", "-n", h.namespace, "-o", f"custom-columns={COLUMNS}")
    print(f"\n--- {title}: kubectl get models\n{plain.stdout}")
    print(f"--- {title}: kubectl get models -o custom-columns=...\n{listing.stdout}")
    return str(listing.stdout)


async def bedrock_provider(h: Harness, name: str = "bedrock") -> str:
    aws = h.fakes.aws_credentials.add_static()
    await h.put_secret(
        f"{name}-keys",
        {"AWS_ACCESS_KEY_ID": aws.access_key_id, "AWS_SECRET_ACCESS_KEY": aws.secret_access_key},
    )
    spec = {
        "bedrock": {
            "region": "us-east-1",
            "endpointURL": h.fakes.bedrock.url,
            "credentialsSecretRef": {"name": f"{name}-keys"},
            "timeoutSeconds": 5,
        }
    }
    await h.put_provider(name, spec)
    await h.wait_reason("provider", name, "ProbeSucceeded")
    return aws.principal_arn


async def test_bedrock_profiles_and_model_access(harness: Harness, kubectl: Kubectl) -> None:
    h = harness
    bedrock = h.fakes.bedrock
    app_arn = bedrock.add_application_profile(
        "team-a-haiku", "anthropic.claude-3-haiku-20240307-v1:0"
    )
    bedrock.availability["amazon.titan-text-express-v1"] = {"authorizationStatus": "NOT_AUTHORIZED"}
    bedrock.models.add("cohere.command-r-v1:0")
    bedrock.availability["cohere.command-r-v1:0"] = {"agreement": "PENDING"}
    bedrock.models.add("mistral.mistral-large-2402-v1:0")
    bedrock.availability["mistral.mistral-large-2402-v1:0"] = {
        "regionAvailability": "NOT_AVAILABLE"
    }
    await bedrock_provider(h)
    await put_model(h, "profile", "bedrock", PROFILE)
    await put_model(h, "app-profile", "bedrock", app_arn)
    await put_model(h, "no-profile", "bedrock", "us.anthropic.claude-imaginary-v9:0")
    await put_model(h, "no-access", "bedrock", "amazon.titan-text-express-v1")
    await put_model(h, "no-agreement", "bedrock", "cohere.command-r-v1:0")
    await put_model(h, "not-here", "bedrock", "mistral.mistral-large-2402-v1:0")

    obj = await h.wait_reason("model", "profile", "ModelFound", status="True")
    assert obj["status"]["resolvedModel"] == FOUNDATION
    assert obj["status"]["memberModels"] == [
        f"arn:aws:bedrock:{region}::foundation-model/{FOUNDATION}"
        for region in ("us-east-1", "us-east-2", "us-west-2")
    ]
    assert "system-defined profile" in h.ready_condition(obj)["message"]  # type: ignore[index]
    obj = await h.wait_reason("model", "app-profile", "ModelFound", status="True")
    assert obj["status"]["resolvedModel"] == "anthropic.claude-3-haiku-20240307-v1:0"
    assert len(obj["status"]["memberModels"]) == 1
    # the ARN travels as one path segment (its "/" and ":" encoded), SigV4-signed
    lookups = bedrock.requests_to("/inference-profiles/")
    assert any(
        r.raw_path.endswith(app_arn.rsplit("/", 1)[1]) and "%2F" in r.raw_path for r in lookups
    )
    assert all(r.header("Authorization").startswith("AWS4-HMAC-SHA256 ") for r in lookups)

    obj = await h.wait_reason("model", "no-profile", "ModelNotFound", status="False")
    assert "resolvedModel" not in obj["status"]
    obj = await h.wait_reason("model", "no-access", "ModelAccessNotGranted", status="False")
    assert "authorizationStatus NOT_AUTHORIZED" in h.ready_condition(obj)["message"]  # type: ignore[index]
    assert h.condition(obj, "ModelAvailable")["status"] == "False"
    obj = await h.wait_reason("model", "no-agreement", "ModelAgreementNotAccepted", status="False")
    assert "agreementAvailability.status PENDING" in h.ready_condition(obj)["message"]  # type: ignore[index]
    obj = await h.wait_reason("model", "not-here", "ModelNotOfferedInRegion", status="False")
    assert "regionAvailability NOT_AVAILABLE" in h.ready_condition(obj)["message"]  # type: ignore[index]
    await h.wait_event("no-access", "ModelAccessNotGranted")

    table = await show_models(h, kubectl, "Bedrock")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert rows["profile"][2:4] == ["true", "ModelFound"]
    assert FOUNDATION in rows["profile"]
    assert rows["no-access"][2:4] == ["false", "ModelAccessNotGranted"]


async def test_deprecated_model_warns_once(make_harness: MakeHarness, kubectl: Kubectl) -> None:
    async with make_harness(settings=ControllerSettings(revalidate_interval=1.0)) as h:
        legacy = "meta.llama3-70b-instruct-v1:0"
        h.fakes.bedrock.lifecycles[legacy] = "LEGACY"
        await bedrock_provider(h)
        await put_model(h, "legacy", "bedrock", legacy)
        await put_model(h, "active", "bedrock", "amazon.titan-text-express-v1")
        obj = await h.wait_reason("model", "legacy", "ModelFound", status="True")
        deprecated = h.condition(obj, "Deprecated")
        assert (deprecated["status"], deprecated["reason"]) == ("True", "ModelLifecycleLegacy")
        assert "modelLifecycle.status LEGACY" in deprecated["message"]
        assert obj["status"]["ready"] is True
        obj = await h.wait_reason("model", "active", "ModelFound", status="True")
        assert (
            h.condition(obj, "Deprecated")["status"],
            h.condition(obj, "Deprecated")["reason"],
        ) == (
            "False",
            "NotDeprecated",
        )
        await h.wait_event("legacy", "ModelDeprecated")

        # re-checks (every second here) and a spec change keep it deprecated: no second event
        checks = lambda: len(h.fakes.bedrock.requests_to(f"/foundation-models/{legacy}"))  # noqa: E731
        seen = checks()
        await h.wait_for(lambda: checks() >= seen + 3, within=30, what="three re-checks")
        await h.client.patch(
            MODELS,
            "legacy",
            {"metadata": {"labels": {"touched": "yes"}}, "spec": {"settings": {"maxTokens": 8}}},
            h.namespace,
        )
        await h.wait_for(
            lambda: (h.model("legacy") or {}).get("status", {}).get("observedGeneration") == 2,
            what="the new generation checked",
        )
        await h.wait_for(lambda: checks() >= seen + 4, within=30, what="a check after the edit")
        await h.controllers.recorder.flush()
        events = [e for e in await h.events("legacy") if e["reason"] == "ModelDeprecated"]
        assert len(events) == 1, events
        assert events[0]["type"] == "Warning"
        assert events[0].get("count", 1) == 1
        await h.wait_for(
            lambda: (
                REGISTRY.get_sample_value("flokoa_models_deprecated", {"provider": "bedrock"}) == 1
            ),
            what="the deprecated gauge",
        )
        await show_models(h, kubectl, "Deprecation")


async def vertex_provider(
    h: Harness, name: str, *, location: str = "us-central1", project: str = "fake-project"
) -> str:
    sa = h.fakes.google_oauth.issue_service_account(project_id="fake-project")
    await h.put_secret(f"{name}-sa", {"credentials.json": json.dumps(sa)})
    spec = {
        "google": {
            "baseURL": h.fakes.vertex.base_url,
            "timeoutSeconds": 5,
            "vertex": {
                "projectID": project,
                "location": location,
                "serviceAccountKeySecretRef": {"name": f"{name}-sa"},
            },
        }
    }
    await h.put_provider(name, spec)
    return str(sa["client_email"])


async def test_vertex_access_in_the_project(harness: Harness, kubectl: Kubectl) -> None:
    h = harness
    vertex = h.fakes.vertex
    vertex.launch_stages["google/gemini-2.0-flash"] = "DEPRECATED"
    await vertex_provider(h, "vertex")
    denied_principal = await vertex_provider(h, "vertex-no-predict")
    vertex.predict_denied.add(denied_principal)
    await vertex_provider(h, "vertex-global", location="global")
    await vertex_provider(h, "vertex-global-elsewhere", location="global", project="not-mine")
    for name in ("vertex", "vertex-no-predict", "vertex-global"):
        await h.wait_reason("provider", name, "ProbeSucceeded")
    # with location global the provider probe checks the project too (countTokens)
    obj = await h.wait_reason("provider", "vertex-global-elsewhere", "InvalidCredentials")
    assert "not-mine" in h.ready_condition(obj)["message"]  # type: ignore[index]

    await put_model(h, "gemini", "vertex", "gemini-2.5-pro")
    await put_model(h, "gemini-denied", "vertex-no-predict", "gemini-2.5-pro")
    await put_model(h, "partner", "vertex", "anthropic/claude-sonnet-4")
    await put_model(h, "gemini-old", "vertex", "gemini-2.0-flash")
    await put_model(h, "gemini-global", "vertex-global", "gemini-2.5-pro")

    obj = await h.wait_reason("model", "gemini", "ModelFound", status="True")
    assert 'project "fake-project" in location us-central1' in h.ready_condition(obj)["message"]  # type: ignore[index]
    counted = [r for r in vertex.requests if r.path.endswith("gemini-2.5-pro:countTokens")]
    assert counted
    assert all(r.method == "POST" for r in counted)
    assert all((r.header("Authorization") or "").startswith("Bearer ") for r in counted)
    obj = await h.wait_reason("model", "gemini-denied", "InvalidCredentials", status="False")
    message = h.ready_condition(obj)["message"]  # type: ignore[index]
    assert "aiplatform.endpoints.predict" in message
    assert "403" in message
    assert h.condition(obj, "ModelAvailable")["status"] == "Unknown"
    obj = await h.wait_reason("model", "partner", "ModelAccessNotVerified", status="True")
    assert h.condition(obj, "ModelAvailable")["status"] == "Unknown"
    assert "cannot be checked for free" in h.ready_condition(obj)["message"]  # type: ignore[index]
    obj = await h.wait_reason("model", "gemini-old", "ModelFound", status="True")
    deprecated = h.condition(obj, "Deprecated")
    assert (deprecated["status"], deprecated["reason"]) == ("True", "LaunchStageDeprecated")
    await h.wait_event("gemini-old", "ModelDeprecated")
    await h.wait_reason("model", "gemini-global", "ModelFound", status="True")
    await show_models(h, kubectl, "Vertex")


async def test_anthropic_alias_and_gateway_api_version_header(
    harness: Harness, kubectl: Kubectl
) -> None:
    h = harness
    await h.put_secret("ant-key", {"api-key": h.fakes.anthropic.api_key})
    await h.put_provider(
        "anthropic",
        {
            "apiKeySecretRef": {"name": "ant-key"},
            "anthropic": {"baseURL": h.fakes.anthropic.base_url},
        },
    )
    await put_model(h, "sonnet", "anthropic", "claude-sonnet-4-0")
    await put_model(h, "haiku-dated", "anthropic", "claude-3-5-haiku-20241022")
    obj = await h.wait_reason("model", "sonnet", "ModelFound", status="True")
    assert obj["status"]["resolvedModel"] == "claude-sonnet-4-20250514"
    obj = await h.wait_reason("model", "haiku-dated", "ModelFound", status="True")
    assert "resolvedModel" not in obj["status"]

    # a non-Azure gateway with an api-version default header: Bearer, and the header as is
    await h.put_secret("gw-key", {"api-key": h.fakes.openai.api_key})
    await h.put_provider(
        "gateway",
        {**h.openai_spec(secret="gw-key"), "defaultHeaders": {"api-version": "2024-10-21"}},
    )
    await put_model(h, "via-gateway", "gateway", "gpt-4o-mini")
    await h.wait_reason("provider", "gateway", "ProbeSucceeded")
    await h.wait_reason("model", "via-gateway", "ModelFound", status="True")
    sent = [r for r in h.fakes.openai.requests if r.header("api-version") == "2024-10-21"]
    assert sent, "the header was not sent"
    for request in sent:
        assert request.header("Authorization") == f"Bearer {h.fakes.openai.api_key}"
        assert request.header("api-key") is None
        assert "api-version" not in request.query
    assert {r.path for r in sent} == {"/v1/models", "/v1/models/gpt-4o-mini"}
    await show_models(h, kubectl, "Anthropic alias and gateway")
