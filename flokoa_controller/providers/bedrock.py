"""AWS Bedrock: SigV4-signed `GET /foundation-models` (the provider probe) and the model
check of `bedrock_models.py` (inference profiles, foundation models and their availability).

Credentials come from botocore: static keys (`BedrockSettings.static_credentials`) or its
default chain (environment, IRSA web identity via `AWS_ROLE_ARN` +
`AWS_WEB_IDENTITY_TOKEN_FILE`, EKS Pod Identity, shared config, instance metadata), optionally
followed by an STS `AssumeRole` into `role_arn` (role chaining). botocore honours
`AWS_ENDPOINT_URL_STS` for its STS calls. The endpoint is `ProbeTarget.base_url`, else what
botocore resolves for a `bedrock` client (`AWS_ENDPOINT_URL_BEDROCK`, `AWS_ENDPOINT_URL`, the
shared config, then `https://bedrock.{region}.amazonaws.com`).

The request is signed with botocore's `SigV4Auth` (service `bedrock`) and sent through
`ProbeHTTP`, so the provider's TLS settings, proxies and default headers apply exactly as for
the other providers (default headers are signed too). A Bedrock API key
(`ProbeTarget.api_key`) replaces SigV4 with `Authorization: Bearer`.

botocore is synchronous: credential resolution and refresh (STS calls) run in a worker thread,
bounded by the target's timeout. The credential object is cached per target fingerprint in
`http.credentials`; botocore refreshes temporary credentials itself shortly before they
expire. A 401/403 from Bedrock drops the cached credential. STS calls go through botocore's
own transport (proxies from the environment, `AWS_CA_BUNDLE`), not the provider's TLS
settings, which are for the Bedrock endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from flokoa_controller.providers.http import ProbeHTTP, build_headers
from flokoa_controller.providers.probe import join_url, probe_json
from flokoa_controller.providers.result import Check, ProbeResult, Reason, failure
from flokoa_controller.providers.target import BedrockSettings, ProbeTarget

_AWS_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,63}$")

SIGNING_SERVICE = "bedrock"
"""SigV4 service name of the Bedrock control-plane API."""

MISSING_MODEL_MARKERS: tuple[bytes, ...] = (b"model identifier is invalid",)
"""Body fragment of Bedrock's 400 answer to a malformed model ID."""

CREDENTIAL_SOURCE = "AWS credentials (STS)"
"""What messages call the credential chain."""

# botocore logs signed canonical requests (with the session token) and STS response bodies
# (with the secret key) at DEBUG. Secrets never reach the logs, even when the operator runs
# at debug level: botocore's own loggers stay at INFO or above.
_BOTOCORE_LOGGER = logging.getLogger("botocore")
if _BOTOCORE_LOGGER.level == logging.NOTSET or _BOTOCORE_LOGGER.level < logging.INFO:
    _BOTOCORE_LOGGER.setLevel(logging.INFO)


class CredentialError(Exception):
    """No AWS credentials could be obtained; carries the probe reason."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class AWSIdentity:
    """Cached per target: botocore's (possibly self-refreshing) credentials and the endpoint."""

    credentials: botocore.credentials.Credentials | None
    endpoint: str


def _client_config(timeout: float) -> botocore.config.Config:
    return botocore.config.Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": 2, "mode": "standard"},
    )


def _load(settings: BedrockSettings, timeout: float, base_url: str | None) -> AWSIdentity:
    session = botocore.session.Session()
    session.set_config_variable("region", settings.region)
    session.set_default_client_config(_client_config(timeout))
    static = settings.static_credentials
    if static is not None:
        session.set_credentials(
            static.access_key_id, static.secret_access_key, static.session_token
        )
    source = session.get_credentials()
    endpoint = base_url
    if not endpoint:
        client = session.create_client("bedrock", region_name=settings.region)
        endpoint = str(client.meta.endpoint_url)
        client.close()
    credentials = source
    if source is not None and settings.role_arn:
        fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
            client_creator=session.create_client,
            source_credentials=source,
            role_arn=settings.role_arn,
            extra_args={"RoleSessionName": settings.role_session_name},
        )
        credentials = botocore.credentials.DeferredRefreshableCredentials(
            method="assume-role", refresh_using=fetcher.fetch_credentials
        )
    return AWSIdentity(credentials=credentials, endpoint=endpoint)


def _freeze(identity: AWSIdentity) -> botocore.credentials.ReadOnlyCredentials:
    if identity.credentials is None:
        raise botocore.exceptions.NoCredentialsError()
    frozen: botocore.credentials.ReadOnlyCredentials = identity.credentials.get_frozen_credentials()
    if not frozen.access_key or not frozen.secret_key:
        raise botocore.exceptions.NoCredentialsError()
    return frozen


def _classify(exc: BaseException) -> CredentialError:
    errors = botocore.exceptions
    if isinstance(exc, TimeoutError | errors.ConnectTimeoutError | errors.ReadTimeoutError):
        return CredentialError(Reason.TIMEOUT, f"{CREDENTIAL_SOURCE}: no answer in time")
    if isinstance(exc, errors.SSLError):
        return CredentialError(
            Reason.TLS_VERIFICATION_FAILED, f"{CREDENTIAL_SOURCE}: TLS failure: {exc}"
        )
    if isinstance(exc, errors.EndpointConnectionError | errors.ConnectionClosedError):
        return CredentialError(Reason.UNREACHABLE, f"{CREDENTIAL_SOURCE}: {exc}")
    if isinstance(exc, errors.HTTPClientError):
        return CredentialError(Reason.UNREACHABLE, f"{CREDENTIAL_SOURCE}: {exc}")
    if isinstance(exc, errors.NoCredentialsError):
        return CredentialError(
            Reason.CREDENTIALS_UNAVAILABLE,
            "no AWS credentials found (no static keys, and botocore's default chain "
            "- environment, web identity, shared config, instance metadata - found none)",
        )
    if isinstance(exc, errors.ClientError):
        # the STS body is never quoted: only its error code (e.g. AccessDenied) is named
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        reason = Reason.PROVIDER_UNAVAILABLE if status >= 500 else Reason.INVALID_CREDENTIALS
        code = exc.response.get("Error", {}).get("Code")
        named = f" ({code})" if isinstance(code, str) and _AWS_CODE.match(code) else ""
        operation = getattr(exc, "operation_name", "") or "the request"
        return CredentialError(
            reason, f"{CREDENTIAL_SOURCE} refused {operation}{named} (HTTP {status or '?'})"
        )
    if isinstance(exc, errors.MetadataRetrievalError | errors.CredentialRetrievalError):
        # their text quotes what the metadata or credential endpoint answered
        return CredentialError(
            Reason.CREDENTIALS_UNAVAILABLE,
            f"{CREDENTIAL_SOURCE}: {type(exc).__name__} (the credential endpoint's answer is "
            "not quoted)",
        )
    if isinstance(exc, errors.BotoCoreError):
        return CredentialError(
            Reason.CREDENTIALS_UNAVAILABLE, f"{CREDENTIAL_SOURCE}: {type(exc).__name__}: {exc}"
        )
    if isinstance(exc, OSError):
        return CredentialError(
            Reason.CREDENTIALS_UNAVAILABLE,
            f"{CREDENTIAL_SOURCE}: {exc.strerror or type(exc).__name__}"
            + (f": {exc.filename}" if exc.filename else ""),
        )
    return CredentialError(Reason.INVALID_CREDENTIALS, f"{CREDENTIAL_SOURCE}: {type(exc).__name__}")


def _cache_key(target: ProbeTarget) -> str:
    return f"bedrock:{target.fingerprint()}"


def _settings(target: ProbeTarget) -> BedrockSettings:
    if target.bedrock is None:
        raise ValueError("a bedrock ProbeTarget needs BedrockSettings")
    return target.bedrock


async def _frozen_credentials(
    target: ProbeTarget, http: ProbeHTTP
) -> tuple[AWSIdentity, botocore.credentials.ReadOnlyCredentials]:
    """The endpoint and current credentials (STS only when botocore must refresh)."""
    settings = _settings(target)
    key = _cache_key(target)

    async def create() -> AWSIdentity:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(_load, settings, target.timeout, target.base_url),
                target.timeout,
            )
        except Exception as exc:
            raise _classify(exc) from None

    entry = await http.credentials.get(key, create)
    async with entry.lock:
        try:
            frozen = await asyncio.wait_for(asyncio.to_thread(_freeze, entry.value), target.timeout)
        except Exception as exc:
            http.credentials.invalidate(key)
            raise _classify(exc) from None
    return entry.value, frozen


def default_endpoint(region: str) -> str:
    """Bedrock's public endpoint for `region` (what botocore resolves without overrides)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://bedrock.{region}.{suffix}"


def sign(
    target: ProbeTarget, url: str, credentials: botocore.credentials.ReadOnlyCredentials
) -> dict[str, str]:
    """SigV4 headers for `GET url` (default headers included in the signature)."""
    settings = _settings(target)
    request = AWSRequest(method="GET", url=url, headers=dict(build_headers(target, {}).items()))
    SigV4Auth(credentials, SIGNING_SERVICE, settings.region).add_auth(request)
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
    if target.api_key:
        base = target.base_url or default_endpoint(_settings(target).region)
        url = join_url(base, *segments)
        headers = {"Authorization": f"Bearer {target.api_key}"}
        extra: tuple[str, ...] = ()
    else:
        try:
            identity, frozen = await _frozen_credentials(target, http)
        except CredentialError as exc:
            return failure(
                exc.reason,
                f"{subject + ': ' if subject else ''}{exc.message}",
                url="",
                duration=time.monotonic() - started,
                secrets=target.secret_values(),
            ), None
        url = join_url(identity.endpoint, *segments)
        headers = sign(target, url, frozen)
        extra = tuple(v for v in (frozen.secret_key, frozen.token) if v)
    result, body = await probe_json(
        http,
        target,
        check,
        url,
        headers,
        subject=subject,
        started=started,
        extra_secrets=extra,
        missing_model_markers=MISSING_MODEL_MARKERS,
    )
    if result.http_status in (401, 403):
        http.credentials.invalidate(_cache_key(target))
    return result, body


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
