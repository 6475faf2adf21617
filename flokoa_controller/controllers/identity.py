"""Which cloud identity a ModelProvider uses, and the ServiceAccount access behind it.

- :func:`identity_of` maps a spec to the :mod:`providers.target` identity its probes use:
  ``spec.serviceAccountName`` → :class:`ServiceAccountIdentity`; a Bedrock or Vertex AI
  provider without any credential Secret → :class:`AmbientIdentity` (the operator's own),
  allowed only when :class:`AmbientPolicy` names the namespace (``--ambient-identity-
  namespaces``); anything else → ``None`` (the tenant's own Secrets).
- :func:`identity_status` is ``status.identity`` (which identity, never a credential).
- :class:`KubeServiceAccountTokens` reads ServiceAccounts and makes TokenRequests with the
  operator's API client. ServiceAccounts are read with a GET at each exchange rather than
  through an informer: exchanges happen at a provider probe (every re-validation interval)
  and when a cached credential is due, so the reads are few; a cluster-wide ServiceAccount
  cache would hold every namespace's ServiceAccounts (``default`` at least) for the few
  that matter, and need ``list``/``watch`` as well. A changed annotation is therefore
  seen at the next re-validation (or at once after an edit of the ModelProvider).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flokoa_controller.api.modelprovider import ModelProviderSpec
from flokoa_controller.kube.errors import ApiError, Forbidden, NotFound
from flokoa_controller.kube.resources import ResourceType
from flokoa_controller.providers.identity import IdentityError, ServiceAccountInfo
from flokoa_controller.providers.result import Reason
from flokoa_controller.providers.target import AmbientIdentity, Identity, ServiceAccountIdentity

__all__ = [
    "SERVICEACCOUNTS",
    "AmbientPolicy",
    "KubeServiceAccountTokens",
    "TokenRequestClient",
    "identity_of",
    "identity_status",
]

log = logging.getLogger(__name__)

SERVICEACCOUNTS = ResourceType("", "v1", "serviceaccounts", "ServiceAccount", namespaced=True)
"""core/v1 ServiceAccounts (``get``, and ``create`` on the ``token`` subresource)."""


@dataclass(frozen=True)
class AmbientPolicy:
    """The namespaces whose ModelProviders may use the operator's own cloud identity
    (``--ambient-identity-namespaces``; none by default)."""

    namespaces: frozenset[str] = frozenset()

    @classmethod
    def of(cls, names: Iterable[str]) -> AmbientPolicy:
        """The policy allowing ``names`` (blank entries ignored)."""
        return cls(frozenset(n.strip() for n in names if n.strip()))

    def allows(self, namespace: str) -> bool:
        """Whether ``namespace`` may use the ambient identity."""
        return namespace in self.namespaces


def _needs_ambient(spec: ModelProviderSpec) -> bool:
    if spec.bedrock is not None:
        return spec.api_key_secret_ref is None and spec.bedrock.credentials_secret_ref is None
    if spec.google is not None and spec.google.vertex is not None:
        return spec.google.vertex.service_account_key_secret_ref is None
    return False


def identity_of(spec: ModelProviderSpec, namespace: str, policy: AmbientPolicy) -> Identity | None:
    """The identity ``spec``'s probes use in ``namespace`` (see the module docstring)."""
    if spec.service_account_name is not None:
        return ServiceAccountIdentity(spec.service_account_name)
    if _needs_ambient(spec):
        return AmbientIdentity(allowed=policy.allows(namespace))
    return None


def identity_status(spec: ModelProviderSpec) -> dict[str, str]:
    """``status.identity`` for ``spec``: ``source`` and, for a ServiceAccount, its name."""
    if spec.service_account_name is not None:
        return {"source": "ServiceAccount", "serviceAccountName": spec.service_account_name}
    if _needs_ambient(spec):
        return {"source": "Ambient"}
    return {"source": "Secret"}


def _is(exc: ApiError, kind: type[ApiError], code: int) -> bool:
    # by class or by HTTP code (an error whose Status reason is unusual is still a 403/404)
    return isinstance(exc, kind) or exc.code == code


def _read_error(exc: ApiError, namespace: str, name: str) -> IdentityError:
    if _is(exc, NotFound, 404):
        return IdentityError(
            Reason.SERVICE_ACCOUNT_NOT_FOUND,
            f'ServiceAccount "{name}" not found in namespace "{namespace}" '
            "(serviceAccountName names a ServiceAccount of the ModelProvider's own namespace)",
        )
    if _is(exc, Forbidden, 403):
        return IdentityError(
            Reason.TOKEN_REQUEST_FORBIDDEN,
            f'the operator may not read ServiceAccount "{name}" (RBAC: serviceaccounts get)',
        )
    return IdentityError(
        Reason.TOKEN_REQUEST_FAILED,
        f'reading ServiceAccount "{name}" failed (HTTP {exc.code or "-"})',
    )


def _token_error(exc: ApiError, namespace: str, name: str) -> IdentityError:
    if _is(exc, NotFound, 404):
        return IdentityError(
            Reason.SERVICE_ACCOUNT_NOT_FOUND,
            f'ServiceAccount "{name}" not found in namespace "{namespace}"',
        )
    if _is(exc, Forbidden, 403):
        return IdentityError(
            Reason.TOKEN_REQUEST_FORBIDDEN,
            f'the operator may not request a token for ServiceAccount "{name}" '
            "(RBAC: serviceaccounts/token create)",
        )
    return IdentityError(
        Reason.TOKEN_REQUEST_FAILED,
        f'the TokenRequest for ServiceAccount "{name}" failed (HTTP {exc.code or "-"})',
    )


class TokenRequestClient(Protocol):
    """The API calls :class:`KubeServiceAccountTokens` makes (``KubeClient`` provides them):
    read a ServiceAccount, create its ``token`` subresource."""

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Any:
        """Read one object (raises ``NotFound``)."""
        ...

    async def request(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        """A JSON request on a raw path (the ``token`` subresource's POST)."""
        ...


class KubeServiceAccountTokens:
    """:class:`~flokoa_controller.providers.identity.ServiceAccountTokens` with the API
    client: ``GET`` ServiceAccount, ``POST`` its ``token`` subresource. Tokens are returned
    to the caller only (never logged, cached or stored here)."""

    def __init__(self, client: TokenRequestClient) -> None:
        """``client``: the API client (a :class:`~flokoa_controller.kube.client.KubeClient`)."""
        self.client = client

    async def service_account(self, namespace: str, name: str) -> ServiceAccountInfo:
        """Read the ServiceAccount (``ServiceAccountNotFound``, ``TokenRequestForbidden``)."""
        try:
            obj = await self.client.get(SERVICEACCOUNTS, name, namespace)
        except ApiError as exc:
            raise _read_error(exc, namespace, name) from None
        metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
        metadata = metadata if isinstance(metadata, Mapping) else {}
        annotations = metadata.get("annotations")
        clean = (
            {str(k): str(v) for k, v in annotations.items() if isinstance(v, str)}
            if isinstance(annotations, Mapping)
            else {}
        )
        return ServiceAccountInfo(uid=str(metadata.get("uid") or ""), annotations=clean)

    async def token(self, namespace: str, name: str, audience: str, expiration_seconds: int) -> str:
        """A TokenRequest for the ServiceAccount (``TokenRequestForbidden`` etc.)."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": [audience], "expirationSeconds": expiration_seconds},
        }
        path = SERVICEACCOUNTS.path(namespace, name, "token")
        try:
            answer = await self.client.request("POST", path, body=body)
        except ApiError as exc:
            raise _token_error(exc, namespace, name) from None
        status = answer.get("status") if isinstance(answer, Mapping) else None
        token = status.get("token") if isinstance(status, Mapping) else None
        if not isinstance(token, str) or not token:
            raise IdentityError(
                Reason.TOKEN_REQUEST_FAILED,
                f'the TokenRequest for ServiceAccount "{name}" returned no token',
            )
        return token
