"""AWS Bedrock: SigV4-signed `GET /foundation-models` (the provider probe) and the model
check of `bedrock_models.py` (inference profiles, foundation models and their availability).

Credentials come from `http.identity` (`providers.identity`): static keys from the tenant's
Secret, the ModelProvider's ServiceAccount (IRSA convention: `AssumeRoleWithWebIdentity`) or,
in namespaces the administrator allows, the operator's ambient chain (botocore's default
chain, on the bounded ambient executor), optionally followed by an STS `AssumeRole` into
`role_arn` (role chaining, named after the ModelProvider). STS calls are Query POSTs through
`ProbeHTTP` to the regional STS endpoint or the operator's `AWS_ENDPOINT_URL_STS`. The
Bedrock endpoint is `endpoints.bedrock_endpoint`: `ProbeTarget.base_url`, else the operator's
`AWS_ENDPOINT_URL_BEDROCK` / `AWS_ENDPOINT_URL`, else `https://bedrock.{region}.amazonaws.com`
(`.amazonaws.com.cn` in the `cn-` regions).

The request is signed with botocore's `SigV4Auth` (service `bedrock`; CPU only, on the event
loop) and sent through `ProbeHTTP`, so the provider's TLS settings, proxies and default
headers apply exactly as for the other providers (default headers are signed too). A Bedrock
API key (`ProbeTarget.api_key`) replaces SigV4 with `Authorization: Bearer`. Credentials
obtained from an identity are sent only to Bedrock's own hosts (`check_identity`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from flokoa_controller.providers.endpoints import api_root
from flokoa_controller.providers.http import ProbeHTTP, build_headers
from flokoa_controller.providers.identity import IdentityError, check_identity, identity_failure
from flokoa_controller.providers.probe import join_url, probe_json
from flokoa_controller.providers.result import Check, ProbeResult
from flokoa_controller.providers.target import AWSCredentials, BedrockSettings, ProbeTarget

SIGNING_SERVICE = "bedrock"
"""SigV4 service name of the Bedrock control-plane API."""

MISSING_MODEL_MARKERS: tuple[bytes, ...] = (b"model identifier is invalid",)
"""Body fragment of Bedrock's 400 answer to a malformed model ID."""

# botocore logs signed canonical requests (with the session token) and STS response bodies
# (with the secret key) at DEBUG. Secrets never reach the logs, even when the operator runs
# at debug level: botocore's own loggers stay at INFO or above.
_BOTOCORE_LOGGER = logging.getLogger("botocore")
if _BOTOCORE_LOGGER.level == logging.NOTSET or _BOTOCORE_LOGGER.level < logging.INFO:
    _BOTOCORE_LOGGER.setLevel(logging.INFO)


def _settings(target: ProbeTarget) -> BedrockSettings:
    if target.bedrock is None:
        raise ValueError("a bedrock ProbeTarget needs BedrockSettings")
    return target.bedrock


def sign(target: ProbeTarget, url: str, credentials: AWSCredentials) -> dict[str, str]:
    """SigV4 headers for `GET url` (default headers included in the signature; CPU only)."""
    settings = _settings(target)
    request = AWSRequest(method="GET", url=url, headers=dict(build_headers(target, {}).items()))
    keys = Credentials(
        credentials.access_key_id, credentials.secret_access_key, credentials.session_token
    )
    SigV4Auth(keys, SIGNING_SERVICE, settings.region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


async def bedrock_get(
    target: ProbeTarget,
    http: ProbeHTTP,
    check: Check,
    segments: tuple[str, ...],
    *,
    subject: str = "",
) -> tuple[ProbeResult, dict[str, Any] | None]:
    """One authenticated control-plane GET of `{endpoint}/{segments}` (SigV4, or the API
    key as Bearer) and the JSON object of a successful answer."""
    started = time.monotonic()
    url = join_url(api_root(target), *segments)
    if target.api_key:
        headers = {"Authorization": f"Bearer {target.api_key}"}
        extra: tuple[str, ...] = ()
    else:
        try:
            check_identity(target, url, http.identity.settings)
            frozen = await http.identity.aws_credentials(target, http, check == "provider")
        except IdentityError as exc:
            return identity_failure(exc, target, subject=subject, started=started), None
        headers = sign(target, url, frozen)
        extra = tuple(v for v in (frozen.secret_access_key, frozen.session_token) if v)
    markers = MISSING_MODEL_MARKERS
    return await probe_json(
        http,
        target,
        check,
        url,
        headers,
        subject=subject,
        started=started,
        extra_secrets=extra,
        missing_model_markers=markers,
    )


async def _probe(
    target: ProbeTarget, http: ProbeHTTP, check: Check, model: str | None
) -> ProbeResult:
    segments = ("foundation-models",) if model is None else ("foundation-models", model)
    subject = f'model "{model}"' if model is not None else ""
    result, _body = await bedrock_get(target, http, check, segments, subject=subject)
    return result


async def probe_provider(target: ProbeTarget, http: ProbeHTTP) -> ProbeResult:
    """ListFoundationModels: SigV4 (or the API key) and the network path, free of charge."""
    return await _probe(target, http, "provider", None)


async def probe_model(target: ProbeTarget, model: str, http: ProbeHTTP) -> ProbeResult:
    """The model check of `providers/bedrock_models.py`: inference profiles with
    GetInferenceProfile, foundation models with GetFoundationModel and
    GetFoundationModelAvailability."""
    from flokoa_controller.providers.bedrock_models import check_model

    return await check_model(target, model, http)
