"""`ProbeTarget`: the resolved configuration one probe needs, free of API and Secret types.

The reconciler resolves a ModelProvider (spec plus the Secret values it references) into a
`ProbeTarget`; the provider modules only ever see this. Every object here is frozen, and
`repr()`/`str()` of each of them leaves secret values out (API keys, AWS secret keys and
session tokens, service-account private keys, CA bundles are shown as a size and digest).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from flokoa_controller.api.modelprovider import ANTHROPIC_DEFAULT_VERSION, DEFAULT_TIMEOUT_SECONDS
from flokoa_controller.providers.endpoints import is_azure_host

Kind = Literal["openai", "anthropic", "google", "bedrock"]
"""The provider block used in the ModelProvider spec."""

Flavor = Literal["openai", "azure-classic", "azure-v1", "anthropic", "gemini", "vertex", "bedrock"]
"""The wire protocol variant a probe speaks (derived from the kind and its settings)."""

KINDS: tuple[Kind, ...] = ("openai", "anthropic", "google", "bedrock")
"""Every provider kind, in the order the spec lists them."""

DEFAULT_AZURE_API_VERSION = "2024-10-21"
"""`api-version` used for classic Azure OpenAI when neither the spec nor a header gives one."""


def _digest(data: bytes, length: int = 64) -> str:
    return hashlib.sha256(data).hexdigest()[:length]


@dataclass(frozen=True)
class TLSSettings:
    """How the probe verifies the server's certificate.

    - `ca_pem`: PEM bundle of extra trusted CAs (from `tls.caSecretRef`), or None.
    - `use_system_cas`: also trust the system bundle when `ca_pem` is given (without
      `ca_pem` the system bundle is always used).
    - `insecure_skip_verify`: no certificate or host-name verification at all.
    """

    ca_pem: bytes | None = field(default=None, repr=False)
    use_system_cas: bool = False
    insecure_skip_verify: bool = False

    def __repr__(self) -> str:
        ca = (
            "None"
            if self.ca_pem is None
            else f"<{len(self.ca_pem)} bytes {_digest(self.ca_pem, 12)}>"
        )
        return (
            f"TLSSettings(ca={ca}, use_system_cas={self.use_system_cas}, "
            f"insecure_skip_verify={self.insecure_skip_verify})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class VertexSettings:
    """Vertex AI settings of a `google` provider.

    `service_account_info` is the parsed service-account key JSON; None means Application
    Default Credentials (GKE Workload Identity / the metadata server, or
    `GOOGLE_APPLICATION_CREDENTIALS`).
    """

    project_id: str
    location: str
    service_account_info: Mapping[str, Any] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        sa = "None"
        if self.service_account_info is not None:
            sa = f"<service account {self.service_account_info.get('client_email', '?')}>"
        return (
            f"VertexSettings(project_id={self.project_id!r}, location={self.location!r}, "
            f"service_account={sa})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class AWSCredentials:
    """Static AWS keys from a Secret (`bedrock.credentialsSecretRef`)."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        token = ", session_token=<set>" if self.session_token else ""
        return f"AWSCredentials(access_key_id=<{len(self.access_key_id)} chars>{token})"

    __str__ = __repr__


@dataclass(frozen=True)
class BedrockSettings:
    """AWS Bedrock settings.

    - `region`: signing region and default endpoint (`endpoints.bedrock_endpoint`).
    - `role_arn`: assume this role (STS AssumeRole) on top of the source credentials.
    - `static_credentials`: keys from a Secret; None means botocore's default chain
      (environment, IRSA web identity, EKS Pod Identity, shared config, IMDS).
    - `role_session_name`: the session name used for AssumeRole (the reconciler names it
      after the ModelProvider; see `providers.identity.role_session_name`).
    - `external_id`: `ExternalId` of the AssumeRole into `role_arn`.

    The endpoint override (`bedrock.endpointURL`) is `ProbeTarget.base_url`; a Bedrock API key
    (sent as `Authorization: Bearer`) is `ProbeTarget.api_key` and replaces SigV4.
    """

    region: str
    role_arn: str | None = None
    static_credentials: AWSCredentials | None = None
    role_session_name: str = "flokoa-controller-probe"
    external_id: str | None = None


@dataclass(frozen=True)
class ServiceAccountIdentity:
    """`spec.serviceAccountName`: the workload identity of a ServiceAccount in the
    ModelProvider's own namespace (`ProbeTarget.namespace`)."""

    name: str


@dataclass(frozen=True)
class AmbientIdentity:
    """The operator's own cloud identity (botocore's default chain, Google ADC).

    `allowed`: the administrator allows the ModelProvider's namespace to use it
    (`--ambient-identity-namespaces`); when False no request is made.
    """

    allowed: bool = False


Identity = ServiceAccountIdentity | AmbientIdentity
"""A cloud identity the operator obtains credentials for. A `ProbeTarget` without one
authenticates with what the tenant's own Secrets hold (or nothing)."""


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup."""
    lname = name.lower()
    for key, value in headers.items():
        if key.lower() == lname:
            return value
    return None


def is_azure(base_url: str | None, api_version: str | None) -> bool:
    """Whether an `openai` provider talks to Azure OpenAI (`api-key` authentication): when
    `api_version` (the spec's `openai.apiVersion`) is set, or the host is an Azure OpenAI
    host (`endpoints.is_azure_host`). The one rule: the probes, `controllers/targets.py` and the
    docs follow it. An `api-version` default header does not make a host Azure: on another
    host (a gateway) it is an ordinary header and authentication stays `Bearer`."""
    return api_version is not None or is_azure_host(base_url)


def detect_flavor(
    kind: Kind,
    *,
    base_url: str | None = None,
    api_version: str | None = None,
    vertex: VertexSettings | None = None,
) -> Flavor:
    """The protocol variant for a provider.

    `openai` is Azure by `is_azure`; the Azure v1 API is recognised by a base URL path
    ending in `/openai/v1`, everything else Azure is classic (an `api-version` default
    header then gives the query parameter's value, see `openai.azure_api_version`).
    `google` is Vertex AI when a `vertex` block is present, else the Gemini API.
    """
    if kind == "openai":
        if not is_azure(base_url, api_version):
            return "openai"
        path = urlsplit(base_url or "").path.rstrip("/")
        return "azure-v1" if path.endswith("/openai/v1") else "azure-classic"
    if kind == "anthropic":
        return "anthropic"
    if kind == "google":
        return "vertex" if vertex is not None else "gemini"
    if kind == "bedrock":
        return "bedrock"
    raise ValueError(f"unknown provider kind {kind!r}")


@dataclass(frozen=True)
class ProbeTarget:
    """Everything one probe needs, resolved from a ModelProvider and its Secrets.

    - `kind`: provider block (`openai`, `anthropic`, `google`, `bedrock`).
    - `flavor`: protocol variant; leave empty to derive it with `detect_flavor`.
    - `base_url`: endpoint override (`openai.baseURL`, `anthropic.baseURL`, `google.baseURL`,
      `bedrock.endpointURL`); None means the provider's default.
    - `api_key`: value of `apiKeySecretRef` (Bearer for OpenAI and Bedrock API keys,
      `api-key` for Azure, `x-api-key` for Anthropic, `x-goog-api-key` for Gemini).
    - `organization_id`, `project`: OpenAI `OpenAI-Organization` / `OpenAI-Project` headers.
    - `api_version`: Azure `api-version` query parameter.
    - `anthropic_version`: `anthropic-version` header.
    - `default_headers`: sent on every request of every provider (protocol headers win on a
      name clash).
    - `timeout`: seconds for one probe request (the connect phase is bounded separately).
    - `tls`, `vertex`, `bedrock`: see their classes.
    - `identity`: the cloud identity the credential comes from (None: the Secrets'
      values, if any); see `ServiceAccountIdentity`, `AmbientIdentity`.
    - `namespace`, `name`: the ModelProvider's (session names, ServiceAccount lookups).
    """

    kind: Kind
    flavor: Flavor | Literal[""] = ""
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    organization_id: str | None = None
    project: str | None = None
    api_version: str | None = None
    anthropic_version: str = ANTHROPIC_DEFAULT_VERSION
    default_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = float(DEFAULT_TIMEOUT_SECONDS)
    tls: TLSSettings = field(default_factory=TLSSettings)
    vertex: VertexSettings | None = None
    bedrock: BedrockSettings | None = None
    identity: Identity | None = None
    namespace: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown provider kind {self.kind!r}")
        object.__setattr__(self, "default_headers", MappingProxyType(dict(self.default_headers)))
        if not self.flavor:
            flavor = detect_flavor(
                self.kind,
                base_url=self.base_url,
                api_version=self.api_version,
                vertex=self.vertex,
            )
            object.__setattr__(self, "flavor", flavor)
        if self.kind == "bedrock" and self.bedrock is None:
            raise ValueError("a bedrock ProbeTarget needs BedrockSettings")
        if self.flavor == "vertex" and self.vertex is None:
            raise ValueError("a vertex ProbeTarget needs VertexSettings")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")

    def __repr__(self) -> str:
        parts = [
            f"kind={self.kind!r}",
            f"flavor={self.flavor!r}",
            f"base_url={self.base_url!r}",
            f"api_key={'<set>' if self.api_key else None}",
        ]
        for name in ("organization_id", "project", "api_version"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        if self.kind == "anthropic":
            parts.append(f"anthropic_version={self.anthropic_version!r}")
        if self.default_headers:
            parts.append(f"default_headers=<{', '.join(sorted(self.default_headers))}>")
        parts.append(f"timeout={self.timeout}")
        parts.append(f"tls={self.tls!r}")
        if self.vertex is not None:
            parts.append(f"vertex={self.vertex!r}")
        if self.bedrock is not None:
            parts.append(f"bedrock={self.bedrock!r}")
        if self.identity is not None:
            parts.append(f"identity={self.identity!r}")
        if self.namespace or self.name:
            parts.append(f"owner={self.namespace}/{self.name}")
        return f"ProbeTarget({', '.join(parts)})"

    __str__ = __repr__

    def secret_values(self) -> tuple[str, ...]:
        """Every secret string this target carries (to scrub from messages)."""
        values: list[str] = []
        if self.api_key:
            values.append(self.api_key)
        if self.bedrock is not None and self.bedrock.static_credentials is not None:
            creds = self.bedrock.static_credentials
            values.extend((creds.access_key_id, creds.secret_access_key))
            if creds.session_token:
                values.append(creds.session_token)
        if self.vertex is not None and self.vertex.service_account_info is not None:
            key = self.vertex.service_account_info.get("private_key")
            if isinstance(key, str):
                values.append(key)
        return tuple(v for v in values if v)

    def fingerprint(self) -> str:
        """A sha256 over every field (secrets included, as digests only): a cache key.

        Two targets with the same fingerprint authenticate identically, so credential objects
        (botocore sessions, google-auth tokens) can be reused between them.
        """
        data: dict[str, Any] = {
            "kind": self.kind,
            "flavor": self.flavor,
            "base_url": self.base_url,
            "api_key": _digest(self.api_key.encode()) if self.api_key else None,
            "organization_id": self.organization_id,
            "project": self.project,
            "api_version": self.api_version,
            "anthropic_version": self.anthropic_version,
            "default_headers": sorted(self.default_headers.items()),
            "timeout": self.timeout,
            "identity": repr(self.identity),
            "owner": [self.namespace, self.name],
            "tls": [
                _digest(self.tls.ca_pem) if self.tls.ca_pem else None,
                self.tls.use_system_cas,
                self.tls.insecure_skip_verify,
            ],
        }
        if self.vertex is not None:
            info = self.vertex.service_account_info
            data["vertex"] = [
                self.vertex.project_id,
                self.vertex.location,
                _digest(json.dumps(dict(info), sort_keys=True).encode()) if info else None,
            ]
        if self.bedrock is not None:
            creds = self.bedrock.static_credentials
            data["bedrock"] = [
                self.bedrock.region,
                self.bedrock.role_arn,
                self.bedrock.role_session_name,
                self.bedrock.external_id,
                _digest(
                    "\0".join(
                        [creds.access_key_id, creds.secret_access_key, creds.session_token or ""]
                    ).encode()
                )
                if creds
                else None,
            ]
        encoded = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(encoded).hexdigest()
