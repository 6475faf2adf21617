"""Running one check against a provider: read the Secrets, build the target, probe, forget.

:class:`Prober` is shared by the two reconcilers. :meth:`Prober.resolve` reads the
referenced Secrets from the API server (in the object's own namespace only) and validates
them; :meth:`Prober.probe_provider` and :meth:`Prober.probe_model` run the provider's free
list/get call through the shared :class:`~flokoa_controller.providers.http.ProbeHTTP`, with
one overall deadline, metrics, and a guard that turns any unexpected exception into a
``ProbeError`` result whose message carries no secret (only the exception's type, never its
text, is reported).

Deadline: the tenant's ``timeoutSeconds`` is capped at ``max_timeout``
(``--max-probe-timeout``, default 30 s) and that one figure bounds the *whole* probe —
token exchange, credential calls, retries and the list/get call — and each request within
it (:meth:`Prober.bounded`). A probe never holds anything longer than that.

Secret values exist only inside one ``resolve → build_target → probe`` sequence of a
probe; nothing here keeps them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from yarl import URL

from flokoa_controller.api.modelprovider import ModelProviderSpec
from flokoa_controller.controllers.identity import AmbientPolicy, identity_of
from flokoa_controller.controllers.metrics import MODEL_CHECKS, PROBE_DURATION, PROBE_TOTAL
from flokoa_controller.controllers.secrets import (
    SecretKeyRef,
    SecretProblem,
    SecretReadDenied,
    SecretValues,
    ValidatedSecrets,
    fetch_values,
    validate_values,
)
from flokoa_controller.kube.errors import Forbidden, NotFound
from flokoa_controller.kube.resources import SECRETS, ResourceType
from flokoa_controller.providers import probe_model as default_probe_model
from flokoa_controller.providers import probe_provider as default_probe_provider
from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.result import ProbeResult, Reason, failure, raised_at
from flokoa_controller.providers.target import Identity, ProbeTarget

__all__ = ["DEFAULT_MAX_PROBE_TIMEOUT", "ModelProbe", "Prober", "ProviderProbe", "SecretReader"]

log = logging.getLogger(__name__)

DEFAULT_MAX_PROBE_TIMEOUT = 30.0
"""Seconds a whole probe may take at most, whatever the tenant's ``timeoutSeconds``
(``--max-probe-timeout``)."""

ProviderProbe = Callable[[ProbeTarget, ProbeHTTP], Awaitable[ProbeResult]]
"""``providers.probe_provider``'s signature."""
ModelProbe = Callable[[ProbeTarget, str, ProbeHTTP], Awaitable[ProbeResult]]
"""``providers.probe_model``'s signature."""


class SecretReader(Protocol):
    """The API call a :class:`Prober` makes: read a Secret (``KubeClient`` provides it)."""

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Any:
        """Read one object (raises ``NotFound``)."""
        ...


class Prober:
    """Reads Secrets and runs probes for the reconcilers (see the module docstring).

    ``client``: the API client (Secret reads). ``http``: the shared probe HTTP client.
    ``max_timeout``: the cap on the target's timeout; a whole probe (token exchange,
    retries and GET) is abandoned after ``min(timeoutSeconds, max_timeout)`` seconds and
    reported as ``Timeout``.
    ``probe_provider``/``probe_model``: the probe functions (the providers package's).
    ``ambient``: the namespaces allowed to use the operator's own cloud identity.
    """

    def __init__(
        self,
        client: SecretReader,
        http: ProbeHTTP,
        *,
        max_timeout: float = DEFAULT_MAX_PROBE_TIMEOUT,
        probe_provider: ProviderProbe = default_probe_provider,
        probe_model: ModelProbe = default_probe_model,
        ambient: AmbientPolicy | None = None,
    ) -> None:
        """Create the prober (see the class docstring)."""
        self.ambient = ambient or AmbientPolicy()
        self.client = client
        self.http = http
        if max_timeout <= 0:
            raise ValueError("max_timeout must be positive")
        self.max_timeout = max_timeout
        self._probe_provider = probe_provider
        self._probe_model = probe_model

    async def _get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        try:
            secret: Mapping[str, Any] = await self.client.get(SECRETS, name, namespace)
        except NotFound:
            return None
        except Forbidden:
            raise SecretReadDenied from None
        return secret

    async def resolve(
        self, namespace: str, refs: Sequence[SecretKeyRef]
    ) -> tuple[ValidatedSecrets | SecretProblem, str | None]:
        """Read and validate the referenced values.

        Returns the validated values (or the problem) and the ``secretHash`` of the bytes
        read (``None`` when a Secret or key was missing, or the read was refused).
        """
        fetched = await fetch_values(namespace, refs, self._get_secret)
        if isinstance(fetched, SecretProblem):
            return fetched, None
        digest = fetched.secret_hash
        validated = validate_values(namespace, refs, fetched)
        _forget(fetched)
        return validated, digest

    def identity(self, namespace: str, spec: ModelProviderSpec) -> Identity | None:
        """The cloud identity ``spec``'s probes use in ``namespace`` (``ambient`` policy)."""
        return identity_of(spec, namespace, self.ambient)

    def bounded(self, target: ProbeTarget) -> ProbeTarget:
        """``target`` with its timeout capped at ``max_timeout``."""
        if target.timeout <= self.max_timeout:
            return target
        return dataclasses.replace(target, timeout=self.max_timeout)

    async def _guarded(
        self, target: ProbeTarget, what: str, call: Callable[[], Awaitable[ProbeResult]]
    ) -> ProbeResult:
        start = time.monotonic()
        deadline = target.timeout
        try:
            async with asyncio.timeout(deadline):
                return await call()
        except TimeoutError:
            return failure(
                Reason.TIMEOUT,
                f"{what}{_destination(target)} did not complete within {deadline:g}s",
                url="",
                duration=time.monotonic() - start,
            )
        except Exception as exc:
            # Not the exception's text (see raised_at): its type and place suffice.
            log.warning("Probe failed unexpectedly: %s%s", type(exc).__name__, raised_at(exc))
            return failure(
                Reason.PROBE_ERROR,
                f"{what} failed unexpectedly: {type(exc).__name__}",
                url="",
                duration=time.monotonic() - start,
            )

    async def probe_provider(self, target: ProbeTarget) -> ProbeResult:
        """Probe the provider's credentials and network path (counted in the metrics)."""
        target = self.bounded(target)
        result = await self._guarded(
            target, "provider probe", lambda: self._probe_provider(target, self.http)
        )
        PROBE_TOTAL.labels(target.kind, result.reason).inc()
        PROBE_DURATION.labels(target.kind).observe(result.duration)
        return result

    async def probe_model(self, target: ProbeTarget, model: str) -> ProbeResult:
        """Check that ``model`` exists at the provider (counted in the metrics)."""
        target = self.bounded(target)
        result = await self._guarded(
            target, f'model check of "{model}"', lambda: self._probe_model(target, model, self.http)
        )
        MODEL_CHECKS.labels(target.kind, result.reason).inc()
        return result


def _destination(target: ProbeTarget) -> str:
    """`` of host:port`` of the target's endpoint override (nothing for the default one)."""
    if not target.base_url:
        return ""
    try:
        url = URL(target.base_url)
    except ValueError:
        return ""
    return f" of {url.host}:{url.port}" if url.host else ""


def _forget(values: SecretValues) -> None:
    """Drop the raw bytes as soon as they are decoded (best effort)."""
    values.clear()
