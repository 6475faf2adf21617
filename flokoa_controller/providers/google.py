"""Google: the Gemini API (API key) and Vertex AI (OAuth2 access token).

Gemini (`flavor == "gemini"`): `GET {base}/v1beta/models` and `GET {base}/v1beta/models/{id}`
with `x-goog-api-key` (never `Bearer`, which Gemini rejects); the list is `models[]`. Gemini
answers an unknown key with 400 `API_KEY_INVALID`, reported as `InvalidCredentials`.

Vertex AI (`flavor == "vertex"`): an access token for scope `cloud-platform` from
google-auth — the service-account key (`service_account_info`: an RS256 JWT grant at the
key's `token_uri`) or, without a key, Application Default Credentials (GKE Workload Identity /
the metadata server, honouring `GCE_METADATA_HOST`/`GCE_METADATA_IP`, or
`GOOGLE_APPLICATION_CREDENTIALS`). google-auth is synchronous, so credential loading and token
refresh run in a worker thread (its `requests` transport, proxies from the environment),
bounded by the target's timeout. Credential objects are cached per target fingerprint in
`http.credentials` and only refreshed when google-auth says the token is no longer valid; a
401/403 from Vertex drops the cached credential.

- Provider probe: `GET {base}/v1/projects/{project}/locations/{location}/models?pageSize=1`,
  the project's model-registry list. It is free and checks the token, the project, the region
  and the `aiplatform.models.list` permission at once (a wrong project or region is 403/404).
  For location `global`, which has no model registry, it is `countTokens` of
  `VERTEX_PROBE_MODEL` in the project instead (`POST .../projects/{project}/locations/global/
  publishers/google/models/{model}:countTokens`: free, no generation; it checks the token,
  the project and the `aiplatform.endpoints.predict` permission).
- Model probe: `providers/vertex_models.py` (the publisher-model GET, then `countTokens` in
  the project for Google models); `model` may be `gemini-2.0-flash` (publisher `google`),
  `anthropic/claude-...` or the full `publishers/{publisher}/models/{model}` name.

`{base}` is `base_url`, else `https://{location}-aiplatform.googleapis.com`
(`https://aiplatform.googleapis.com` for `global`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Mapping
from typing import Any

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account

from flokoa_controller.providers.http import ProbeHTTP, TransportError
from flokoa_controller.providers.probe import join_url, probe_get, probe_json
from flokoa_controller.providers.result import Check, ProbeResult, Reason, failure, redact_url
from flokoa_controller.providers.target import DEFAULT_GEMINI_BASE_URL, ProbeTarget

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
"""OAuth2 scope of the Vertex AI access token."""

VERTEX_PROBE_MODEL = "gemini-2.0-flash-001"
"""Publisher model fetched by the provider probe when the location is `global`."""

GEMINI_INVALID_KEY_MARKERS: tuple[bytes, ...] = (b"API_KEY_INVALID", b"API key not valid")
"""Body fragments of Gemini's 400 answer to a bad API key."""

ADC_DESCRIPTION = "application default credentials"
"""What messages call the keyless credential source."""

_STATUS = re.compile(r"[Ss]tatus: (\d{3})")

# google-auth logs every request and response at DEBUG (headers as they are, bodies with
# only some fields hashed). Secrets never reach the logs, even when the operator runs at
# debug level: google-auth's loggers stay at INFO or above.
for _name in ("google.auth", "google.oauth2"):
    _logger = logging.getLogger(_name)
    if _logger.level == logging.NOTSET or _logger.level < logging.INFO:
        _logger.setLevel(logging.INFO)


class CredentialError(Exception):
    """No access token could be obtained; carries the probe reason and where it failed."""

    def __init__(self, reason: Reason, message: str, url: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.url = url


# --- Gemini --------------------------------------------------------------------------------


def _gemini_base(target: ProbeTarget) -> str:
    base = (target.base_url or DEFAULT_GEMINI_BASE_URL).rstrip("/")
    last = base.rsplit("/", 1)[-1]
    if last.startswith("v1"):
        return base
    return base + "/v1beta"


def gemini_models_url(target: ProbeTarget, model: str | None = None) -> str:
    """The Gemini list URL (`model` None) or get-model URL (`models/` prefix accepted)."""
    base = _gemini_base(target)
    if model is None:
        return join_url(base, "models")
    return join_url(base, "models", model.removeprefix("models/"))


def _gemini_headers(target: ProbeTarget) -> dict[str, str]:
    return {"x-goog-api-key": target.api_key} if target.api_key else {}


# --- Vertex --------------------------------------------------------------------------------


def vertex_base(target: ProbeTarget) -> str:
    """The Vertex AI API root for `target`."""
    if target.base_url:
        return target.base_url.rstrip("/")
    assert target.vertex is not None
    location = target.vertex.location
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def publisher_model(model: str) -> tuple[str, str]:
    """`(publisher, model)` from `name`, `publisher/name` or `publishers/p/models/name`."""
    parts = model.split("/")
    if len(parts) == 4 and parts[0] == "publishers" and parts[2] == "models":
        return parts[1], parts[3]
    if len(parts) == 2:
        return parts[0], parts[1]
    return "google", model


def vertex_model_url(target: ProbeTarget, model: str) -> str:
    """The publisher-model GET URL for `model`."""
    publisher, name = publisher_model(model)
    return join_url(vertex_base(target), "v1beta1", "publishers", publisher, "models", name)


def count_tokens_url(target: ProbeTarget, model: str) -> str:
    """The project-scoped `countTokens` URL of Google model `model` (no generation, free)."""
    assert target.vertex is not None
    url = join_url(
        vertex_base(target),
        "v1",
        "projects",
        target.vertex.project_id,
        "locations",
        target.vertex.location,
        "publishers",
        "google",
        "models",
        model,
    )
    return f"{url}:countTokens"


COUNT_TOKENS_BODY = b'{"contents":[{"role":"user","parts":[{"text":"ping"}]}]}'
"""The request body of a `countTokens` check (one short user turn)."""


def vertex_provider_url(target: ProbeTarget) -> str:
    """The provider-probe URL: the project's model-registry list, or for `global` (no
    registry) `countTokens` of `VERTEX_PROBE_MODEL` in the project (POST)."""
    assert target.vertex is not None
    if target.vertex.location == "global":
        return count_tokens_url(target, VERTEX_PROBE_MODEL)
    return join_url(
        vertex_base(target),
        "v1",
        "projects",
        target.vertex.project_id,
        "locations",
        target.vertex.location,
        "models",
        query="pageSize=1",
    )


class _TimeoutRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport with a bounded timeout on every call."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        super().__init__(session=session)
        self._timeout = timeout

    def __call__(
        self,
        url: Any,
        method: Any = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        bounded = min(float(timeout or self._timeout), self._timeout)
        # google-auth's transport is untyped.
        return super().__call__(  # type: ignore[no-untyped-call]
            url, method, body=body, headers=headers, timeout=bounded, **kwargs
        )


def _credential_source(target: ProbeTarget) -> str:
    assert target.vertex is not None
    info = target.vertex.service_account_info
    if info is None:
        return ADC_DESCRIPTION
    token_uri = info.get("token_uri")
    # from the Secret: user info or query values in it must not reach status or events
    return redact_url(token_uri) if isinstance(token_uri, str) else "service account key"


def _load(info: Mapping[str, Any] | None) -> google.auth.credentials.Credentials:
    if info is not None:
        creds: google.auth.credentials.Credentials = (
            service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                dict(info), scopes=[CLOUD_PLATFORM_SCOPE]
            )
        )
        return creds
    loaded, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    adc: google.auth.credentials.Credentials = loaded
    return adc


def _refresh(creds: google.auth.credentials.Credentials, timeout: float) -> None:
    with requests.Session() as session:
        creds.refresh(_TimeoutRequest(session, timeout))  # type: ignore[no-untyped-call]


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _classify(exc: BaseException, source: str, secrets: tuple[str, ...]) -> CredentialError:
    chain = _cause_chain(exc)
    if any(isinstance(e, ssl.SSLError | requests.exceptions.SSLError) for e in chain):
        return CredentialError(
            Reason.TLS_VERIFICATION_FAILED, f"TLS failure talking to {source}", source
        )
    if any(isinstance(e, requests.exceptions.Timeout | TimeoutError) for e in chain):
        return CredentialError(Reason.TIMEOUT, f"no answer from {source} in time", source)
    if isinstance(exc, google.auth.exceptions.DefaultCredentialsError) and not isinstance(
        exc, ValueError
    ):
        return CredentialError(
            Reason.CREDENTIALS_UNAVAILABLE,
            f"no Google credentials found ({ADC_DESCRIPTION}): {_text(exc)}",
            source,
        )
    if any(isinstance(e, requests.exceptions.ConnectionError) for e in chain):
        return CredentialError(Reason.UNREACHABLE, f"cannot reach {source}", source)
    transport = [e for e in chain if isinstance(e, google.auth.exceptions.TransportError)]
    if transport:
        # The metadata server's answers surface as TransportError("... Status: 403 ...").
        match = _STATUS.search(str(transport[0]))
        if match is None:
            return CredentialError(Reason.UNREACHABLE, f"cannot reach {source}", source)
        status = int(match.group(1))
        reason = Reason.PROVIDER_UNAVAILABLE if status >= 500 else Reason.INVALID_CREDENTIALS
        return CredentialError(reason, f"{source} refused to issue a token (HTTP {status})", source)
    if isinstance(exc, google.auth.exceptions.RefreshError):
        if exc.retryable:
            return CredentialError(
                Reason.PROVIDER_UNAVAILABLE,
                f"token endpoint {source} failing{_oauth_error(exc)}",
                source,
            )
        return CredentialError(
            Reason.INVALID_CREDENTIALS,
            f"token request to {source} refused{_oauth_error(exc)}",
            source,
        )
    if isinstance(exc, ValueError | KeyError | TypeError):
        return CredentialError(
            Reason.INVALID_CREDENTIALS,
            f"the service-account key is malformed ({type(exc).__name__})",
            source,
        )
    return CredentialError(
        Reason.INVALID_CREDENTIALS,
        f"cannot obtain a token from {source}: {type(exc).__name__}",
        source,
    )


OAUTH_ERROR_CODES = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "server_error",
        "temporarily_unavailable",
    }
)
"""The OAuth 2.0 error codes (RFC 6749 5.2 and 4.1.2.1) a refusal message may name: a token
endpoint's body is never quoted, only its registered `error` code is recognised."""


def _oauth_error(exc: BaseException) -> str:
    """` (OAuth error invalid_grant)` when google-auth's error carries a registered code."""
    for arg in exc.args[1:]:
        if isinstance(arg, dict):
            code = arg.get("error")
            if isinstance(code, str) and code in OAUTH_ERROR_CODES:
                return f" (OAuth error {code})"
    return ""


def _text(exc: BaseException) -> str:
    first = exc.args[0] if exc.args else exc
    text = " ".join(str(first).split())
    return text if len(text) <= 200 else text[:199] + "…"


async def _check_token_uri(info: Mapping[str, Any] | None, http: ProbeHTTP, source: str) -> None:
    """The destination policy on a service-account key's `token_uri` (the Secret names it,
    so it is the tenant's choice), before google-auth's own transport connects to it."""
    token_uri = info.get("token_uri") if info is not None else None
    if not isinstance(token_uri, str):
        return
    try:
        await http.check_destination(token_uri)
    except TransportError as exc:
        raise CredentialError(exc.reason, exc.message, source) from None


def _cache_key(target: ProbeTarget) -> str:
    return f"google:{target.fingerprint()}"


async def access_token(target: ProbeTarget, http: ProbeHTTP) -> str:
    """A valid access token for `target` (cached; refreshed only when google-auth says so).

    Raises `CredentialError`.
    """
    assert target.vertex is not None
    info = target.vertex.service_account_info
    source = _credential_source(target)
    secrets = target.secret_values()
    budget = target.timeout

    async def create() -> google.auth.credentials.Credentials:
        try:
            return await asyncio.wait_for(asyncio.to_thread(_load, info), budget)
        except Exception as exc:
            raise _classify(exc, source, secrets) from None

    entry = await http.credentials.get(_cache_key(target), create)
    async with entry.lock:
        creds = entry.value
        if not creds.valid:
            await _check_token_uri(info, http, source)
            try:
                await asyncio.wait_for(asyncio.to_thread(_refresh, creds, budget), budget)
            except Exception as exc:
                http.credentials.invalidate(_cache_key(target))
                raise _classify(exc, source, secrets) from None
        token = creds.token
    if not isinstance(token, str) or not token:
        raise CredentialError(
            Reason.INVALID_CREDENTIALS, f"{source} returned no access token", source
        )
    return token


async def vertex_call(
    target: ProbeTarget,
    http: ProbeHTTP,
    url: str,
    check: Check,
    subject: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
) -> tuple[ProbeResult, dict[str, Any] | None]:
    """One Vertex AI request with the target's access token, and the JSON object of a
    successful answer."""
    started = time.monotonic()
    try:
        token = await access_token(target, http)
    except CredentialError as exc:
        return failure(
            exc.reason,
            f"{subject + ': ' if subject else ''}{exc.message}",
            url=exc.url if "://" in exc.url else "",
            duration=time.monotonic() - started,
            secrets=target.secret_values(),
        ), None
    result, body = await probe_json(
        http,
        target,
        check,
        url,
        {"Authorization": f"Bearer {token}"},
        method=method,
        data=data,
        subject=subject,
        started=started,
        extra_secrets=(token,),
    )
    if result.http_status in (401, 403):
        http.credentials.invalidate(_cache_key(target))
    return result, body


# --- probes --------------------------------------------------------------------------------


async def probe_provider(target: ProbeTarget, http: ProbeHTTP) -> ProbeResult:
    """Gemini: list models with the API key. Vertex: token, then the project model list."""
    if target.flavor == "vertex":
        assert target.vertex is not None
        url = vertex_provider_url(target)
        if target.vertex.location == "global":
            result, _ = await vertex_call(
                target, http, url, "provider", "", method="POST", data=COUNT_TOKENS_BODY
            )
        else:
            result, _ = await vertex_call(target, http, url, "provider", "")
        return result
    return await probe_get(
        http,
        target,
        "provider",
        gemini_models_url(target),
        _gemini_headers(target),
        invalid_key_markers=GEMINI_INVALID_KEY_MARKERS,
    )


async def probe_model(target: ProbeTarget, model: str, http: ProbeHTTP) -> ProbeResult:
    """Gemini: get `models/{model}`. Vertex: `providers/vertex_models.py`."""
    subject = f'model "{model}"'
    if target.flavor == "vertex":
        from flokoa_controller.providers.vertex_models import check_model

        return await check_model(target, model, http)
    return await probe_get(
        http,
        target,
        "model",
        gemini_models_url(target, model),
        _gemini_headers(target),
        subject=subject,
        invalid_key_markers=GEMINI_INVALID_KEY_MARKERS,
    )
