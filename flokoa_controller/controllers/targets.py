"""From a ModelProvider spec to what the probe needs: Secret references and the ProbeTarget.

- :func:`secret_refs` lists every Secret key the spec references, in a fixed order (API key,
  Vertex service-account key, Bedrock static keys, CA bundle). The secret index, the
  ``secretHash`` and the reads all derive from this one list.
- :func:`build_target` combines the spec with the validated values into a
  :class:`~flokoa_controller.providers.target.ProbeTarget`, the only thing a probe sees.
- :func:`endpoint` is the effective API root for ``status.endpoint``: the root the probe of
  that target calls (:func:`~flokoa_controller.providers.endpoints.api_root`, which owns the
  defaults, the Bedrock endpoint overrides and partitions and the Vertex hosts).
"""

from __future__ import annotations

import functools
from dataclasses import replace

from flokoa_controller.api.modelprovider import ModelProviderSpec
from flokoa_controller.controllers.secrets import Role, SecretKeyRef, ValidatedSecrets
from flokoa_controller.providers.endpoints import api_root
from flokoa_controller.providers.identity import role_session_name
from flokoa_controller.providers.target import (
    AWSCredentials,
    BedrockSettings,
    Identity,
    ProbeTarget,
    TLSSettings,
    VertexSettings,
)

__all__ = ["build_target", "endpoint", "secret_names", "secret_refs"]


def secret_refs(spec: ModelProviderSpec) -> list[SecretKeyRef]:
    """Every Secret key ``spec`` references (all in the ModelProvider's own namespace)."""
    refs: list[SecretKeyRef] = []
    if spec.api_key_secret_ref is not None:
        ref = spec.api_key_secret_ref
        refs.append(SecretKeyRef(Role.API_KEY, ref.name, ref.key, "spec.apiKeySecretRef"))
    vertex = spec.google.vertex if spec.google is not None else None
    if vertex is not None and vertex.service_account_key_secret_ref is not None:
        sa = vertex.service_account_key_secret_ref
        refs.append(
            SecretKeyRef(
                Role.SERVICE_ACCOUNT_KEY,
                sa.name,
                sa.key,
                "spec.google.vertex.serviceAccountKeySecretRef",
            )
        )
    if spec.bedrock is not None and spec.bedrock.credentials_secret_ref is not None:
        creds = spec.bedrock.credentials_secret_ref
        where = "spec.bedrock.credentialsSecretRef"
        refs.append(SecretKeyRef(Role.ACCESS_KEY_ID, creds.name, creds.access_key_id_key, where))
        refs.append(
            SecretKeyRef(Role.SECRET_ACCESS_KEY, creds.name, creds.secret_access_key_key, where)
        )
        if creds.session_token_key is not None:
            refs.append(
                SecretKeyRef(Role.SESSION_TOKEN, creds.name, creds.session_token_key, where)
            )
    if spec.tls is not None and spec.tls.ca_secret_ref is not None:
        ca = spec.tls.ca_secret_ref
        refs.append(SecretKeyRef(Role.CA_BUNDLE, ca.name, ca.key, "spec.tls.caSecretRef"))
    return refs


def secret_names(spec: ModelProviderSpec) -> list[str]:
    """The distinct names of the Secrets ``spec`` references, in reference order."""
    return list(dict.fromkeys(ref.name for ref in secret_refs(spec)))


_NO_SECRETS = ValidatedSecrets(secret_hash="")
"""No Secret values: what :func:`endpoint` builds its target with (an endpoint needs none)."""


def endpoint(spec: ModelProviderSpec) -> str:
    """The API root the probes of ``spec`` call, with the provider's defaults and the
    operator's endpoint overrides applied (``status.endpoint``)."""
    return api_root(_build_target(spec, _NO_SECRETS, None, ""))


def build_target(
    spec: ModelProviderSpec,
    secrets: ValidatedSecrets,
    *,
    timeout_seconds: float | None = None,
    identity: Identity | None = None,
    namespace: str = "",
    name: str = "",
) -> ProbeTarget:
    """The :class:`ProbeTarget` for ``spec`` with the values in ``secrets``.

    ``timeout_seconds`` overrides the provider block's ``timeoutSeconds`` (a Model's own
    ``settings.timeoutSeconds``). ``identity`` is the cloud identity the credential comes
    from (:func:`.identity.identity_of`); ``namespace``/``name`` the ModelProvider's.
    """
    target = _build_target(spec, secrets, timeout_seconds, role_session_name(namespace, name))
    if identity is None and not namespace and not name:
        return target
    return replace(target, identity=identity, namespace=namespace, name=name)


def _build_target(
    spec: ModelProviderSpec,
    secrets: ValidatedSecrets,
    timeout_seconds: float | None,
    session_name: str,
) -> ProbeTarget:
    tls_spec = spec.tls
    tls = TLSSettings(
        ca_pem=secrets.ca_pem,
        use_system_cas=bool(tls_spec and tls_spec.use_system_cas),
        insecure_skip_verify=bool(tls_spec and tls_spec.insecure_skip_verify),
    )
    block = next(
        (b for b in (spec.openai, spec.anthropic, spec.google, spec.bedrock) if b is not None),
        None,
    )
    if block is None:
        raise ValueError("no provider block is set")  # unreachable for a validated spec
    target = functools.partial(
        ProbeTarget,
        api_key=secrets.api_key,
        default_headers=dict(spec.default_headers),
        timeout=float(timeout_seconds or block.timeout_seconds),
        tls=tls,
    )
    if spec.openai is not None:
        openai = spec.openai
        return target(
            kind="openai",
            base_url=openai.base_url,
            organization_id=openai.organization_id,
            project=openai.project,
            api_version=openai.api_version,
        )
    if spec.anthropic is not None:
        anthropic = spec.anthropic
        return target(
            kind="anthropic", base_url=anthropic.base_url, anthropic_version=anthropic.version
        )
    if spec.google is not None:
        google = spec.google
        vertex = None
        if google.vertex is not None:
            vertex = VertexSettings(
                project_id=google.vertex.project_id,
                location=google.vertex.location,
                service_account_info=(
                    secrets.service_account.info if secrets.service_account else None
                ),
            )
        return target(kind="google", base_url=google.base_url, vertex=vertex)
    assert spec.bedrock is not None
    bedrock = spec.bedrock
    static = None
    if secrets.access_key_id is not None and secrets.secret_access_key is not None:
        static = AWSCredentials(
            access_key_id=secrets.access_key_id,
            secret_access_key=secrets.secret_access_key,
            session_token=secrets.session_token,
        )
    settings = BedrockSettings(
        region=bedrock.region,
        role_arn=bedrock.role_arn,
        static_credentials=static,
        role_session_name=session_name,
        external_id=bedrock.external_id,
    )
    return target(kind="bedrock", base_url=bedrock.endpoint_url, bedrock=settings)
