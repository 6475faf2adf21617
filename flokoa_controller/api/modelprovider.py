"""ModelProvider: how to reach and authenticate to one LLM provider.

A ModelProvider holds connection settings and references to Secrets; many Models share it.
Exactly one provider block (`openai`, `anthropic`, `google`, `bedrock`) says which API
it talks to. Which credential is required depends on that block:

============================  ===================================  ===========================
block                         credential                           apiKeySecretRef
============================  ===================================  ===========================
openai (and compatible/Azure) API key                              required
anthropic                     API key                              required
google (Gemini API)           API key                              required
google.vertex (Vertex AI)     OAuth2: service-account key Secret,  forbidden
                              serviceAccountName (Workload
                              Identity Federation) or ambient
bedrock                       SigV4: serviceAccountName (IRSA),    optional: a Bedrock API key
                              static keys in a Secret, or ambient  (Bearer) instead of SigV4
============================  ===================================  ===========================

`serviceAccountName` (Bedrock, Vertex AI, Azure OpenAI) reaches the provider with the workload
identity of a ServiceAccount in the ModelProvider's namespace, exactly as a pod running as it
would; it excludes the static credential Secrets of the same cloud. "Ambient" is the
operator's own identity, used only in namespaces the administrator allows
(`--ambient-identity-namespaces`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from flokoa_controller.api.base import APIModel
from flokoa_controller.api.common import (
    HTTPURL,
    PROVIDER_TYPES,
    VISIBLE_ASCII_PATTERN,
    Conditions,
    HeaderMap,
    ObjectMeta,
    ObjectName,
    ProviderType,
    SecretKey,
    Time,
    TimeoutSeconds,
)
from flokoa_controller.api.meta import MODEL_PROVIDER
from flokoa_controller.api.rules import PresenceRule, Rule, cel_string, exclusive, matches

DEFAULT_TIMEOUT_SECONDS = 60
"""Probe timeout when a provider block does not set `timeoutSeconds` (before the operator's cap)."""

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
"""The OpenAI API endpoint used when `openai.baseURL` is not set."""

ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com"
"""The Anthropic API endpoint used when `anthropic.baseURL` is not set."""

ANTHROPIC_DEFAULT_VERSION = "2023-06-01"
"""The `anthropic-version` header sent when `anthropic.version` is not set."""

GEMINI_DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
"""The Gemini API endpoint used when `google.baseURL` is not set and there is no vertex."""

AZURE_OPENAI_HOST_SUFFIXES: tuple[str, ...] = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
)
"""Hosts that are Azure OpenAI endpoints (`providers.endpoints.is_azure_host` reads this
tuple; the CRD's `serviceAccountName` rule needs it here, below the providers layer)."""

# --- Secret references ----------------------------------------------------------------------


class APIKeySecretRef(APIModel):
    """A key of a Secret in the ModelProvider's namespace holding an API key."""

    name: ObjectName
    """The Secret's name. The Secret must be in the same namespace as the ModelProvider."""
    key: SecretKey = "api-key"
    """The key in the Secret's data. Defaults to `api-key`, the key of
    `kubectl create secret generic NAME --from-literal=api-key=...`."""


class CASecretRef(APIModel):
    """A key of a Secret in the ModelProvider's namespace holding PEM CA certificates."""

    name: ObjectName
    """The Secret's name. The Secret must be in the same namespace as the ModelProvider."""
    key: SecretKey = "ca.crt"
    """The key holding one or more PEM certificates. Defaults to `ca.crt`, the key
    cert-manager and `kubectl create secret tls`-style tooling use for a CA bundle."""


class ServiceAccountKeySecretRef(APIModel):
    """A key of a Secret in the ModelProvider's namespace holding a Google service-account
    JSON key."""

    name: ObjectName
    """The Secret's name. The Secret must be in the same namespace as the ModelProvider."""
    key: SecretKey = "credentials.json"
    """The key holding the JSON key file. Defaults to `credentials.json`, the name
    `gcloud iam service-accounts keys create` is usually given."""


class AWSCredentialsSecretRef(APIModel):
    """A Secret in the ModelProvider's namespace holding static AWS access keys."""

    name: ObjectName
    """The Secret's name. The Secret must be in the same namespace as the ModelProvider."""
    access_key_id_key: SecretKey = Field(default="AWS_ACCESS_KEY_ID", alias="accessKeyIDKey")
    """The key holding the access key ID. Defaults to `AWS_ACCESS_KEY_ID` so a Secret made
    from an env file works as is."""
    secret_access_key_key: SecretKey = Field(
        default="AWS_SECRET_ACCESS_KEY", alias="secretAccessKeyKey"
    )
    """The key holding the secret access key. Defaults to `AWS_SECRET_ACCESS_KEY`."""
    session_token_key: SecretKey | None = Field(default=None, alias="sessionTokenKey")
    """The key holding a session token, for temporary credentials. Optional: unset means the
    keys are long-lived and no token is sent."""


# --- Provider blocks ------------------------------------------------------------------------

_API_OPENAI_COM = r"^https?://api[.]openai[.]com([:/]|$)"
_AZURE_OPENAI_URL = (
    r"^https?://[^/?#@]*("
    + "|".join(re.escape(suffix) for suffix in AZURE_OPENAI_HOST_SUFFIXES)
    + r")(:[0-9]+)?([/?#]|$)"
)
"""A URL whose host is an Azure OpenAI endpoint (the CEL twin of `providers.target.is_azure`
without `apiVersion`)."""
_is_azure_openai_url = matches(_AZURE_OPENAI_URL)
_is_api_openai_com = matches(_API_OPENAI_COM)

OPENAI_API_VERSION_RULE: Rule[OpenAIProvider] = Rule(
    rule=(
        "!has(self.apiVersion) || !has(self.baseURL) || "
        f"!self.baseURL.matches({cel_string(_API_OPENAI_COM)})"
    ),
    message=(
        "apiVersion is Azure OpenAI's api-version query parameter: set baseURL to the Azure "
        "endpoint, not api.openai.com"
    ),
    check=lambda o: o.api_version is None or not _is_api_openai_com(o.base_url),
    field_path=".apiVersion",
)
"""An Azure api-version makes the provider speak Azure (`api-key` header): refusing it with
OpenAI's own endpoint turns a guaranteed 401 into an immediate, explained error."""


class OpenAIProvider(APIModel):
    """The OpenAI API, any OpenAI-compatible server, or Azure OpenAI.

    Authentication: the API key from `apiKeySecretRef` (required) as
    `Authorization: Bearer`, or as an `api-key` header when the endpoint is Azure OpenAI:
    `apiVersion` is set, or the `baseURL` host ends in `.openai.azure.com`,
    `.cognitiveservices.azure.com` or `.services.ai.azure.com`.
    """

    __rules__ = (OPENAI_API_VERSION_RULE,)

    base_url: HTTPURL = Field(default=OPENAI_DEFAULT_BASE_URL, alias="baseURL")
    """The API root that paths such as `/models` are appended to. Defaults to
    `https://api.openai.com/v1`. For a compatible server, its `/v1` root; for Azure
    OpenAI's v1 API, `https://RESOURCE.openai.azure.com/openai/v1`; for classic Azure
    deployments, `https://RESOURCE.openai.azure.com/openai` together with `apiVersion`."""
    organization_id: Annotated[str, Field(max_length=256, pattern=VISIBLE_ASCII_PATTERN)] | None = (
        Field(default=None, alias="organizationID")
    )
    """Sent as the `OpenAI-Organization` header. Optional: unset uses the key's default
    organization."""
    project: Annotated[str, Field(max_length=256, pattern=VISIBLE_ASCII_PATTERN)] | None = None
    """Sent as the `OpenAI-Project` header. Optional: unset uses the key's default project."""
    api_version: (
        Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9][-A-Za-z0-9._]*$")] | None
    ) = Field(default=None, alias="apiVersion")
    """Azure OpenAI's `api-version` query parameter (e.g. `2024-10-21`), required by
    classic Azure deployments and sent on every request. Setting it also selects Azure
    authentication (`api-key` header). Optional: leave it unset for OpenAI, compatible
    servers and Azure's v1 API. An `api-version` entry in `defaultHeaders` is sent as a
    header; on an Azure OpenAI host it also gives this query parameter, on any other host
    it changes nothing else (authentication stays `Bearer`)."""
    timeout_seconds: TimeoutSeconds = Field(default=DEFAULT_TIMEOUT_SECONDS, alias="timeoutSeconds")
    """Timeout in seconds (1-600) of a whole probe, token exchange included. Defaults to 60;
    the operator caps it at its `--max-probe-timeout` (default 30)."""


class AnthropicProvider(APIModel):
    """Anthropic's Messages API.

    Authentication: the API key from `apiKeySecretRef` (required) as `x-api-key`, with
    the `anthropic-version` header from `version`.
    """

    base_url: HTTPURL = Field(default=ANTHROPIC_DEFAULT_BASE_URL, alias="baseURL")
    """The API root, without `/v1`. Defaults to `https://api.anthropic.com`."""
    version: Annotated[str, Field(max_length=32, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] = (
        ANTHROPIC_DEFAULT_VERSION
    )
    """The `anthropic-version` header. Defaults to `2023-06-01`, the current (and only
    stable) version of the API."""
    timeout_seconds: TimeoutSeconds = Field(default=DEFAULT_TIMEOUT_SECONDS, alias="timeoutSeconds")
    """Timeout in seconds (1-600) of a whole probe, token exchange included. Defaults to 60;
    the operator caps it at its `--max-probe-timeout` (default 30)."""


VERTEX_PRESENCE_RULE = PresenceRule(
    fields=("projectID", "location"),
    message="vertex requires projectID and location",
)
"""A Vertex AI endpoint is per project and region: neither has a sensible default."""


class VertexAI(APIModel):
    """Vertex AI, authenticated with OAuth2 access tokens (never with an API key).

    The token comes from the service-account JSON key in `serviceAccountKeySecretRef`, from
    the ModelProvider's `serviceAccountName` (Workload Identity Federation: the
    ServiceAccount's token exchanged at Google STS, optionally impersonating the Google
    service account of its `iam.gke.io/gcp-service-account` annotation) or, in namespaces
    the administrator allows, from the operator's Application Default Credentials.
    """

    __rules__ = (VERTEX_PRESENCE_RULE,)

    project_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100,
            pattern=r"^([a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$",
        ),
    ] = Field(alias="projectID")
    """The Google Cloud project ID (not its number or display name). Required."""
    location: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z][-a-z0-9]*$")]
    """The Vertex AI region, e.g. `us-central1`, or `global`. Required."""
    service_account_key_secret_ref: ServiceAccountKeySecretRef | None = Field(
        default=None, alias="serviceAccountKeySecretRef"
    )
    """A Secret holding a service-account JSON key (its `token_uri` must be Google's token
    endpoint). Optional: unset means the `serviceAccountName` identity or, in namespaces
    the administrator allows, the operator's Application Default Credentials."""


class GoogleProvider(APIModel):
    """Google's Gemini API (with an API key) or, when `vertex` is set, Vertex AI.

    Gemini API: the key from `apiKeySecretRef` (required) as `x-goog-api-key`. Vertex AI:
    OAuth2, see `vertex`; `apiKeySecretRef` must not be set.
    """

    base_url: HTTPURL | None = Field(default=None, alias="baseURL")
    """Overrides the API root. Optional: unset means
    `https://generativelanguage.googleapis.com` for the Gemini API and
    `https://LOCATION-aiplatform.googleapis.com` (`https://aiplatform.googleapis.com`
    for `global`) for Vertex AI. Set it for a private endpoint or a proxy."""
    timeout_seconds: TimeoutSeconds = Field(default=DEFAULT_TIMEOUT_SECONDS, alias="timeoutSeconds")
    """Timeout in seconds (1-600) of a whole probe, token exchange included. Defaults to 60;
    the operator caps it at its `--max-probe-timeout` (default 30)."""
    vertex: VertexAI | None = None
    """Use Vertex AI instead of the Gemini API. Optional: unset means the Gemini API."""


_AWS_REGION = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"
_EXTERNAL_ID = r"^[-A-Za-z0-9+=,.@:/_]+$"
ExternalID = Annotated[str, Field(min_length=2, max_length=1224, pattern=_EXTERNAL_ID)]
"""An STS `ExternalId`."""
_ROLE_ARN = r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[-A-Za-z0-9+=,.@_/]{1,512}$"


BEDROCK_EXTERNAL_ID_RULE: Rule[BedrockProvider] = Rule(
    rule="!has(self.externalID) || has(self.roleARN)",
    message="externalID is sent with roleARN's AssumeRole: it needs roleARN",
    check=lambda b: b.external_id is None or b.role_arn is not None,
    field_path=".externalID",
    reason="FieldValueForbidden",
)
"""An external ID without a role to assume would be silently ignored."""


class BedrockProvider(APIModel):
    """Amazon Bedrock.

    Authentication: SigV4 with the credentials of `serviceAccountName` (IRSA convention:
    its `eks.amazonaws.com/role-arn` annotation, `AssumeRoleWithWebIdentity`); SigV4 with
    static keys from `credentialsSecretRef`; a Bedrock API key from `apiKeySecretRef` sent
    as `Authorization: Bearer`; or, with none of these and only in namespaces the
    administrator allows, the operator's ambient chain (IRSA, EKS Pod Identity).
    """

    __rules__ = (BEDROCK_EXTERNAL_ID_RULE,)

    region: Annotated[str, Field(min_length=1, max_length=32, pattern=_AWS_REGION)]
    """The AWS region, e.g. `us-east-1`. Required: Bedrock endpoints and SigV4 signatures
    are per region, and the operator's own region is not necessarily the right one."""
    endpoint_url: HTTPURL | None = Field(default=None, alias="endpointURL")
    """Overrides the Bedrock control-plane endpoint, e.g. a VPC interface endpoint.
    Optional: unset means `https://bedrock.REGION.amazonaws.com`."""
    role_arn: Annotated[str, Field(max_length=2048, pattern=_ROLE_ARN)] | None = Field(
        default=None, alias="roleARN"
    )
    """An IAM role to assume (`sts:AssumeRole`) with the base credentials (the
    `serviceAccountName` identity, static keys, or an allowed ambient identity) before
    calling Bedrock, e.g. to reach another account. The session is named after the
    ModelProvider (`flokoa-NAMESPACE-NAME`) and carries the namespace as `SourceIdentity`,
    so the role's trust policy can tell tenants apart. Optional: unset uses the base
    credentials directly. Not for IRSA: IRSA's role comes from the ServiceAccount's
    `eks.amazonaws.com/role-arn` annotation."""
    external_id: (
        Annotated[str, Field(min_length=2, max_length=1224, pattern=_EXTERNAL_ID)] | None
    ) = Field(default=None, alias="externalID")
    """The `ExternalId` sent with `roleARN`'s AssumeRole, when the role's trust policy
    requires one (`sts:ExternalId`). Optional; needs `roleARN`."""
    credentials_secret_ref: AWSCredentialsSecretRef | None = Field(
        default=None, alias="credentialsSecretRef"
    )
    """Static access keys. Optional: unset means the `serviceAccountName` identity (IRSA
    convention) or, in namespaces the administrator allows, the operator's ambient chain."""
    timeout_seconds: TimeoutSeconds = Field(default=DEFAULT_TIMEOUT_SECONDS, alias="timeoutSeconds")
    """Timeout in seconds (1-600) of a whole probe, token exchange included. Defaults to 60;
    the operator caps it at its `--max-probe-timeout` (default 30)."""


# --- TLS ------------------------------------------------------------------------------------

TLS_SKIP_VERIFY_RULE: Rule[TLSConfig] = Rule(
    rule=(
        "!(has(self.insecureSkipVerify) && self.insecureSkipVerify) || "
        "(!has(self.caSecretRef) && !(has(self.useSystemCAs) && self.useSystemCAs))"
    ),
    message=(
        "insecureSkipVerify disables certificate verification: it cannot be combined with "
        "caSecretRef or useSystemCAs"
    ),
    check=lambda t: (
        not t.insecure_skip_verify or (t.ca_secret_ref is None and not t.use_system_cas)
    ),
    field_path=".insecureSkipVerify",
)
"""A CA that is silently ignored would make a reader believe the endpoint is verified."""


class TLSConfig(APIModel):
    """How the operator verifies the provider's TLS certificate.

    With no `tls` block (or an empty one) the system CA bundle is used.
    """

    __rules__ = (TLS_SKIP_VERIFY_RULE,)

    ca_secret_ref: CASecretRef | None = Field(default=None, alias="caSecretRef")
    """PEM CA certificates to trust, for private or self-signed endpoints. Optional: unset
    means the system CA bundle."""
    use_system_cas: bool = Field(default=False, alias="useSystemCAs")
    """Also trust the system CA bundle when `caSecretRef` is set (by default a custom CA
    replaces it, so a private endpoint cannot be impersonated by any public CA). Without
    `caSecretRef` the system bundle is always used. Defaults to false."""
    insecure_skip_verify: bool = Field(default=False, alias="insecureSkipVerify")
    """Do not verify the server certificate at all. Exposes the credentials to any
    man-in-the-middle: for local experiments only. Defaults to false."""


# --- Spec rules -----------------------------------------------------------------------------

EXACTLY_ONE_PROVIDER_RULE: Rule[ModelProviderSpec] = Rule(
    rule=" + ".join(f"(has(self.{p}) ? 1 : 0)" for p in PROVIDER_TYPES) + " == 1",
    message="exactly one of openai, anthropic, google or bedrock must be set",
    check=lambda s: sum(getattr(s, p) is not None for p in PROVIDER_TYPES) == 1,
)
"""The provider block is the provider's type: none is meaningless, two are ambiguous."""

OPENAI_API_KEY_RULE: Rule[ModelProviderSpec] = Rule(
    rule="!has(self.openai) || has(self.apiKeySecretRef) || has(self.serviceAccountName)",
    message="apiKeySecretRef is required with openai (or serviceAccountName for Azure OpenAI)",
    check=lambda s: (
        s.openai is None or s.api_key_secret_ref is not None or s.service_account_name is not None
    ),
    field_path=".apiKeySecretRef",
    reason="FieldValueRequired",
)
"""OpenAI, compatible servers and Azure (key auth) all need a key."""

ANTHROPIC_API_KEY_RULE: Rule[ModelProviderSpec] = Rule(
    rule="!has(self.anthropic) || has(self.apiKeySecretRef)",
    message="apiKeySecretRef is required with anthropic",
    check=lambda s: s.anthropic is None or s.api_key_secret_ref is not None,
    field_path=".apiKeySecretRef",
    reason="FieldValueRequired",
)
"""Anthropic's API has no other authentication."""

GEMINI_API_KEY_RULE: Rule[ModelProviderSpec] = Rule(
    rule="!has(self.google) || has(self.google.vertex) || has(self.apiKeySecretRef)",
    message="apiKeySecretRef is required with google unless google.vertex is set",
    check=lambda s: (
        s.google is None or s.google.vertex is not None or s.api_key_secret_ref is not None
    ),
    field_path=".apiKeySecretRef",
    reason="FieldValueRequired",
)
"""The Gemini API authenticates with an API key."""

VERTEX_NO_API_KEY_RULE: Rule[ModelProviderSpec] = exclusive(
    ("google", "google.vertex", "apiKeySecretRef"),
    (
        "apiKeySecretRef must not be set with google.vertex: Vertex AI authenticates with "
        "OAuth2 (vertex.serviceAccountKeySecretRef or workload identity)"
    ),
    field_path=".apiKeySecretRef",
)
"""A key that would be silently ignored is refused rather than mislead."""

BEDROCK_KEY_OR_SIGV4_RULE: Rule[ModelProviderSpec] = exclusive(
    ("bedrock", "apiKeySecretRef", "bedrock.credentialsSecretRef"),
    (
        "apiKeySecretRef (a Bedrock API key) and bedrock.credentialsSecretRef (SigV4 access "
        "keys) are mutually exclusive"
    ),
    field_path=".apiKeySecretRef",
)
"""One credential per provider: the operator never has to pick one silently."""

BEDROCK_KEY_NO_ROLE_RULE: Rule[ModelProviderSpec] = exclusive(
    ("bedrock", "apiKeySecretRef", "bedrock.roleARN"),
    "bedrock.roleARN needs SigV4 credentials: it cannot be used with apiKeySecretRef",
    field_path=".apiKeySecretRef",
)
"""A bearer API key cannot assume an IAM role."""


SERVICE_ACCOUNT_PROVIDER_RULE: Rule[ModelProviderSpec] = Rule(
    rule=(
        "!has(self.serviceAccountName) || has(self.bedrock) || "
        "(has(self.google) && has(self.google.vertex)) || "
        "(has(self.openai) && (has(self.openai.apiVersion) || "
        "(has(self.openai.baseURL) && "
        f"self.openai.baseURL.matches({cel_string(_AZURE_OPENAI_URL)}))))"
    ),
    message=(
        "serviceAccountName is a cloud workload identity: it works with bedrock, "
        "google.vertex and Azure OpenAI (an Azure baseURL or apiVersion) only"
    ),
    check=lambda s: (
        s.service_account_name is None
        or s.bedrock is not None
        or (s.google is not None and s.google.vertex is not None)
        or (
            s.openai is not None
            and (s.openai.api_version is not None or _is_azure_openai_url(s.openai.base_url))
        )
    ),
    field_path=".serviceAccountName",
    reason="FieldValueForbidden",
)
"""OpenAI, Anthropic and the Gemini API accept API keys only."""

SERVICE_ACCOUNT_NO_API_KEY_RULE: Rule[ModelProviderSpec] = exclusive(
    ("serviceAccountName", "apiKeySecretRef"),
    "serviceAccountName and apiKeySecretRef are mutually exclusive: pick one credential",
    field_path=".serviceAccountName",
)
"""One credential per provider: the operator never has to pick one silently."""

SERVICE_ACCOUNT_NO_AWS_KEYS_RULE: Rule[ModelProviderSpec] = exclusive(
    ("serviceAccountName", "bedrock", "bedrock.credentialsSecretRef"),
    (
        "serviceAccountName and bedrock.credentialsSecretRef are mutually exclusive: "
        "pick one credential"
    ),
    field_path=".serviceAccountName",
)
"""Static AWS keys and a workload identity are two credentials for the same cloud."""

SERVICE_ACCOUNT_NO_GOOGLE_KEY_RULE: Rule[ModelProviderSpec] = exclusive(
    ("serviceAccountName", "google", "google.vertex", "google.vertex.serviceAccountKeySecretRef"),
    (
        "serviceAccountName and google.vertex.serviceAccountKeySecretRef are mutually "
        "exclusive: pick one credential"
    ),
    field_path=".serviceAccountName",
)
"""A service-account key and a workload identity are two credentials for the same cloud."""


class ModelProviderSpec(APIModel):
    """The desired configuration of a ModelProvider: exactly one provider block, the
    credential references it needs, and optional headers and TLS settings."""

    __rules__ = (
        EXACTLY_ONE_PROVIDER_RULE,
        OPENAI_API_KEY_RULE,
        ANTHROPIC_API_KEY_RULE,
        GEMINI_API_KEY_RULE,
        VERTEX_NO_API_KEY_RULE,
        BEDROCK_KEY_OR_SIGV4_RULE,
        BEDROCK_KEY_NO_ROLE_RULE,
        SERVICE_ACCOUNT_PROVIDER_RULE,
        SERVICE_ACCOUNT_NO_API_KEY_RULE,
        SERVICE_ACCOUNT_NO_AWS_KEYS_RULE,
        SERVICE_ACCOUNT_NO_GOOGLE_KEY_RULE,
    )

    api_key_secret_ref: APIKeySecretRef | None = Field(default=None, alias="apiKeySecretRef")
    """The Secret key holding the API key. Required with openai (unless Azure OpenAI is
    reached with `serviceAccountName`), anthropic and google without vertex; forbidden with
    google.vertex; optional with bedrock, where it is a Bedrock API key sent as a Bearer
    token instead of SigV4 signing."""
    service_account_name: ObjectName | None = Field(default=None, alias="serviceAccountName")
    """A ServiceAccount in the ModelProvider's namespace whose cloud workload identity
    reaches the provider, exactly as a pod running as it would: the operator requests a
    short-lived token for it (TokenRequest) and exchanges it with the cloud. Bedrock: IRSA
    convention, annotation `eks.amazonaws.com/role-arn`. Vertex AI: Workload Identity
    Federation (the pool set by the administrator), optionally impersonating annotation
    `iam.gke.io/gcp-service-account`. Azure OpenAI: Entra Workload ID, annotations
    `azure.workload.identity/client-id` (and `azure.workload.identity/tenant-id`).
    Optional; excludes the static credential Secrets of the same cloud."""
    openai: OpenAIProvider | None = None
    """OpenAI, an OpenAI-compatible server, or Azure OpenAI."""
    anthropic: AnthropicProvider | None = None
    """Anthropic."""
    google: GoogleProvider | None = None
    """Google Gemini API, or Vertex AI with `vertex`."""
    bedrock: BedrockProvider | None = None
    """Amazon Bedrock."""
    default_headers: HeaderMap = Field(default_factory=dict, alias="defaultHeaders")
    """HTTP headers sent on every request to the provider (probes included), e.g. for
    routing through a gateway or tenant identification. At most 32. Headers that carry
    credentials or are set from other fields (Authorization, api-key, x-api-key,
    anthropic-version, ...) are refused: put credentials in Secrets."""
    tls: TLSConfig | None = None
    """TLS verification settings. Optional: unset means verify against the system CAs."""

    @property
    def provider(self) -> ProviderType:
        """Which provider block is set (validation guarantees exactly one)."""
        for name in PROVIDER_TYPES:
            if getattr(self, name) is not None:
                return name
        raise ValueError("no provider block is set")  # unreachable after validation


IdentitySource = Literal["Secret", "ServiceAccount", "Ambient"]
"""Where a ModelProvider's credential comes from."""


class ProviderIdentity(APIModel):
    """The identity a ModelProvider's probes use (never a credential)."""

    source: IdentitySource
    """`Secret` (keys in the provider's own Secrets), `ServiceAccount` (the workload
    identity of `serviceAccountName`) or `Ambient` (the spec names no credential: the
    operator's own cloud identity, used only in namespaces the administrator allows, else
    `AmbientIdentityNotAllowed`)."""
    service_account_name: Annotated[str, Field(max_length=253)] | None = Field(
        default=None, alias="serviceAccountName"
    )
    """The ServiceAccount whose identity was used (source `ServiceAccount`)."""


class ModelProviderStatus(APIModel):
    """What the operator found: the provider type, whether it is ready and the conditions
    behind that, and which Secret values and endpoint it used."""

    provider: ProviderType | None = None
    """The provider type, from the block that is set."""
    ready: bool = False
    """True when the Secrets resolve and the last probe authenticated successfully."""
    conditions: Conditions = Field(default_factory=list)
    """`Ready` and the conditions it sums up (e.g. `SecretResolved`,
    `CredentialsValid`, `EndpointReachable`)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = Field(
        default=None, alias="observedGeneration", json_schema_extra={"format": "int64"}
    )
    """The `metadata.generation` the status describes."""
    secret_hash: Annotated[str, Field(max_length=128)] | None = Field(
        default=None, alias="secretHash"
    )
    """A hash of every referenced Secret value; it changes when one of them changes, which
    triggers a new probe. Never the values themselves."""
    last_probe_time: Time | None = Field(default=None, alias="lastProbeTime")
    """When a probe last changed this status (its outcome, the spec generation or the Secret
    values it saw). A re-validation whose outcome is unchanged writes nothing, so this time
    does not move on every probe; probes still happen every re-validation interval."""
    endpoint: Annotated[str, Field(max_length=2048)] | None = None
    """The effective API root the operator talks to (defaults applied)."""
    identity: ProviderIdentity | None = None
    """Which identity authenticates the probes: a Secret, a ServiceAccount (its name, never
    a token) or the operator's ambient identity."""


class ModelProvider(APIModel):
    """Connection settings and credentials for one LLM provider, shared by many Models."""

    api_version: str = Field(default=MODEL_PROVIDER.api_version, alias="apiVersion")
    """`agent.flokoa.ai/v1alpha1`."""
    kind: str = MODEL_PROVIDER.kind
    """`ModelProvider`."""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""
    spec: ModelProviderSpec
    """The desired configuration."""
    status: ModelProviderStatus = Field(default_factory=ModelProviderStatus)
    """The observed state, written by the operator."""


def parse_model_provider(obj: Mapping[str, Any]) -> ModelProvider:
    """Validate a ModelProvider object (as read from the API server or a manifest).

    Raises `pydantic.ValidationError` with the CRD's messages when it breaks a rule.
    """
    return ModelProvider.model_validate(obj)
